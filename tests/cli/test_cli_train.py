"""``classgap train`` and ``classgap list``: end to end, one-line errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classgap.cli import run


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


TINY = ("train", "--dataset", "digits", "--model", "mlp", "--epochs", "1",
        "--set", "train.progress=false")


def test_train_then_audit(capsys, tmp_path: Path) -> None:
    out = tmp_path / "tmp"
    code, stdout, err = invoke(capsys, *TINY, "--lr", "0.1", "--batch-size", "64",
                               "--aug", "crop=1", "--weight-decay", "0", "--out", out)
    assert code == 0, err
    assert "test accuracy" in stdout and f"classgap audit {out / 'test.npz'}" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["optim"]["lr"] == 0.1 and config["optim"]["batch_size"] == 64
    assert config["aug"] == {"crop": 1.0} and config["optim"]["weight_decay"] == 0.0
    code, stdout, err = invoke(capsys, "audit", out / "test.npz", "-f", "json")
    assert code == 0, err
    assert len(json.loads(stdout)["classes"]) == 10


def test_config_file_and_set(capsys, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[optim]\nname = "adamw"\nlr = 0.01\n')
    out = tmp_path / "run"
    code, _, err = invoke(capsys, *TINY, "--config", toml, "--set", "optim.lr=0.002",
                          "--out", out)
    assert code == 0, err
    optim = json.loads((out / "config.json").read_text())["optim"]
    assert optim["name"] == "adamw" and optim["lr"] == 0.002


def test_different_config_needs_overwrite(capsys, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert invoke(capsys, *TINY, "--out", out)[0] == 0
    code, _, err = invoke(capsys, *TINY, "--seed", "1", "--out", out)
    assert code == 1 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert invoke(capsys, *TINY, "--seed", "1", "--out", out, "--overwrite")[0] == 0


@pytest.mark.parametrize("args, needle", [
    (("--set", "optim.wd=1"), "optim.wd"),
    (("--aug", "rrc=2"), "got 2.0"),
    (("--model", "nope"), "'nope'"),
    (("--dataset", "digitz"), "did you mean 'digits'"),
    (("--precision", "fp16"), "'train.precision'"),
])
def test_errors_are_one_line(capsys, tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    code, _, err = invoke(capsys, *TINY, *args, "--out", tmp_path / "x")
    assert code == 1
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing written for a rejected run


@pytest.mark.parametrize("topic, needle", [("presets", "aug.mixup"), ("models", "resnet32"),
                                           ("augs", "mixup"),
                                           ("datasets", "fashion-mnist")])
def test_list(capsys, topic: str, needle: str) -> None:
    code, out, _ = invoke(capsys, "list", topic)
    assert code == 0 and needle in out


def test_list_devices_shows_what_was_measured(capsys, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSGAP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CLASSGAP_PRECISION", raising=False)
    code, out, _ = invoke(capsys, "list", "devices")
    text = " ".join(out.split())
    assert code == 0 and "This machine:" in text and "none yet" in text
    code, _, err = invoke(capsys, *TINY, "--set", "train.threads=1", "--out", tmp_path / "run")
    assert code == 0, err
    path = json.loads((tmp_path / "run" / "provenance.json").read_text())["numeric_path"]
    code, out, _ = invoke(capsys, "list", "devices")
    row = next(line for line in out.splitlines() if " mlp " in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:5] == ["mlp", "1x8x8", "10", "128", "1"]
    assert cells[9] == path["path"]  # the path the run took is the one listed
    assert cells[5] == f"{path['timings_ms']['fp32']:.2f}"


def test_list_unknown_topic(capsys) -> None:
    code, _, err = invoke(capsys, "list", "modles")
    assert code == 1 and "did you mean 'models'" in err


def test_several_seeds_then_audit_over_seeds(capsys, tmp_path: Path) -> None:
    out = tmp_path / "seeds"
    code, stdout, err = invoke(capsys, *TINY, "--seed", "3", "--seeds", "2", "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["seed3", "seed4"]
    for seed in (3, 4):
        config = json.loads((out / f"seed{seed}" / "config.json").read_text())
        assert config["train"]["seed"] == seed
    code, stdout, err = invoke(capsys, "audit", out / "seed3" / "test.npz",
                               out / "seed4" / "test.npz", "-f", "json")
    assert code == 0, err
    assert json.loads(stdout)["n_runs"] == 2


def test_several_seeds_bad_engine(capsys, tmp_path: Path) -> None:
    code, _, err = invoke(capsys, *TINY, "--seeds", "2", "--engine", "threads",
                          "--out", tmp_path / "x")
    assert code == 1 and "'engine'" in err and "threads" in err


def test_the_run_line_says_n_a_for_a_missing_accuracy_as_every_table_does() -> None:
    from types import SimpleNamespace

    from classgap.cli.render import train_line

    run = SimpleNamespace(val_accuracy=None, test_accuracy=0.8123, wall_time=1.23,
                          images_per_second=1234.5)
    assert train_line(run, 2) == ("val accuracy [bold]n/a[/], test accuracy [bold]81.23%[/], "
                                  "2 epoch(s) in 1.2 s (1,234 images/s)")


def test_cmd_keys_are_refused_without_a_training_command(capsys, tmp_path: Path) -> None:
    # cmd.* fills a study's --train-cmd template; classgap train would silently ignore it
    code, _, err = invoke(capsys, *TINY, "--set", "cmd.C=0.1", "--out", tmp_path / "run")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "'cmd.C' is a parameter of a --train-cmd template ({C}) and classgap train has no " \
           "use for it: drop the key, or train with classgap study --train-cmd; got cmd.C=0.1" \
           in err
    assert not (tmp_path / "run").exists()
