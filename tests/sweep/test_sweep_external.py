"""Bring your own trainer: a scikit-learn script per grid point, errors named before runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from classgap.audit.io import read_predictions
from classgap.config import load_config
from classgap.errors import ConfigError
from classgap.sweep import ExternalTrainer, Grid, Store, parse_axis, run_grid

# The example script users copy (examples/sklearn_train.py) is the trainer under test.
SKLEARN_SCRIPT = (Path(__file__).resolve().parents[2] / "examples" / "sklearn_train.py").read_text()


def grid(axis: str = "optim.weight_decay=0.01,1.0", seeds: int = 1) -> Grid:
    return Grid(load_config(overrides=["data.dataset=digits"]), [parse_axis(axis)], seeds=seeds)


def test_sklearn_script_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SKLEARN_SCRIPT)
    # the axis is the script's own parameter: cmd.C fills {C}
    trainer = ExternalTrainer(f"{sys.executable} train.py --C {{C}} --seed {{seed}} "
                              "--out {out}", cwd=tmp_path)
    runs = grid("cmd.C=100,0.01").runs()
    with Store(tmp_path / "study") as store:
        summary = run_grid(store, runs, progress=False, train_fn=trainer)
        assert summary.complete and summary.failed == 0, summary.errors
        done = store.done_runs()
        frame = store.status().set_index("run_id")
    assert [spec.run_id for spec, _ in done] == [s.run_id for s in runs]
    accs = []
    for spec, run_dir in done:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        test = read_predictions(run_dir / "test.npz")
        assert metrics["test_accuracy"] == pytest.approx(np.mean(test.y_pred == test.y_true))
        assert frame.loc[spec.run_id, "test_acc"] == metrics["test_accuracy"]
        assert metrics["n_test"] == 540 and metrics["n_val"] == 315
        assert f"--C {spec.point['cmd.C']!r}" in (run_dir / "train.log").read_text()
        config = json.loads((run_dir / "config.json").read_text())
        assert config == spec.config.to_dict() and config["cmd"] == {"C": spec.point["cmd.C"]}
        accs.append(metrics["test_accuracy"])
    assert min(accs) > 0.85 and accs[0] != accs[1]  # C changes the model


def test_unknown_placeholder_fails_before_any_run(tmp_path: Path) -> None:
    trainer = ExternalTrainer("python train.py --rrc {aug.rcc} --out {out}")
    with Store(tmp_path / "s") as store:
        with pytest.raises(ConfigError, match=r"unknown placeholder \{aug.rcc\}.*aug.mixup"):
            run_grid(store, grid("aug.mixup=0,1").runs(), progress=False, train_fn=trainer)
        assert store.status().empty


def test_failing_command_records_its_stderr(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('boom at seed {seed}'); sys.exit(3)"
    trainer = ExternalTrainer(f"{sys.executable} -c \"{code}\"")
    with Store(tmp_path / "s") as store:
        summary = run_grid(store, grid(seeds=1).runs()[:1], progress=False, train_fn=trainer)
        assert summary.failed == 1
        error = store.status().error[0]
    assert "status 3" in error and "boom at seed 0" in error


def test_missing_predictions_fail_the_run(tmp_path: Path) -> None:
    trainer = ExternalTrainer(f"{sys.executable} -c pass")
    with Store(tmp_path / "s") as store:
        summary = run_grid(store, grid().runs()[:1], progress=False, train_fn=trainer)
    [error] = summary.errors.values()
    assert "left no val predictions" in error


def test_command_fills_each_argument_without_a_shell(tmp_path: Path) -> None:
    spec = grid("data.data_dir=my data,x").runs()[0]
    trainer = ExternalTrainer("t --dir {data.data_dir} --id={run_id} '{{literal}}' {optim.lr}")
    assert trainer.placeholders() == ["data.data_dir", "run_id", "optim.lr"]
    argv = trainer.command(spec, tmp_path)
    lr = str(spec.config.optim.lr)  # the resolved config's value, whatever the default
    assert argv == ["t", "--dir", "my data", f"--id={spec.run_id}", "{literal}", lr]
    with pytest.raises(ConfigError, match="valid command line"):
        ExternalTrainer("t 'unclosed")


def test_cmd_keys_fill_their_placeholders_and_the_run_id(tmp_path: Path) -> None:
    base = load_config(overrides=["data.dataset=digits", "cmd.solver=lbfgs"])
    runs = Grid(base, [parse_axis("cmd.C=0.001,0.1,1")], seeds=1).runs()
    assert len({s.run_id for s in runs}) == 3  # each value of the script's own axis is a run
    trainer = ExternalTrainer(f"{sys.executable} --C {{C}} --again {{cmd.C}} "
                              "--solver {solver} --lr {optim.lr}")
    trainer.check(runs)  # every placeholder has a value, the program is there
    assert trainer.command(runs[1], tmp_path)[1:] == [
        "--C", "0.1", "--again", "0.1", "--solver", "lbfgs", "--lr", str(base.optim.lr)]


def test_a_placeholder_without_a_value_names_the_cmd_key() -> None:
    trainer = ExternalTrainer(f"{sys.executable} train.py --C {{C}} --out {{out}}")
    with pytest.raises(ConfigError, match=r"\{C\} has no value; set it with --set cmd.C="):
        trainer.check(grid().runs())


def test_a_missing_program_fails_once_before_any_run(tmp_path: Path) -> None:
    trainer = ExternalTrainer("pyhton-not-here train.py --seed {seed} --out {out}")
    with Store(tmp_path / "s") as store:
        with pytest.raises(ConfigError) as err:
            run_grid(store, grid(seeds=2).runs(), progress=False, train_fn=trainer)
        assert store.status().empty  # no run was registered, let alone failed
    assert str(err.value) == "--train-cmd: program 'pyhton-not-here' not found"
    # a path is looked up from the working directory; a file there must be executable
    (tmp_path / "train.sh").write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match=r"program '\./train\.sh' is not executable"):
        ExternalTrainer("./train.sh {out}", cwd=tmp_path).check(grid().runs())
    (tmp_path / "train.sh").chmod(0o755)
    assert ExternalTrainer("./train.sh {out}", cwd=tmp_path).check_program() == \
        str(tmp_path / "train.sh")
    # the program itself may be a placeholder: it is filled before it is looked up
    runs = Grid(load_config(overrides=[f"cmd.python={sys.executable}"]),
                [parse_axis("cmd.C=1,2")]).runs()
    ExternalTrainer("{python} train.py {out}").check(runs)
    runs = Grid(load_config(overrides=["cmd.python=pyhton-not-here"]),
                [parse_axis("cmd.C=1,2")]).runs()
    with pytest.raises(ConfigError, match="program 'pyhton-not-here' not found"):
        ExternalTrainer("{python} train.py {out}").check(runs)


def test_the_built_in_trainer_refuses_cmd_keys(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        with pytest.raises(ConfigError, match=r"'cmd.C' is a parameter of a --train-cmd "
                                              r"template \(\{C\}\)"):
            run_grid(store, grid("cmd.C=1,2").runs(), progress=False)
        assert store.status().empty
