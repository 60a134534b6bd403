"""``classgap study --verify`` and a study whose run files were damaged, through the CLI.

A finished study (a numpy ``--train-cmd`` script: fast, no torch) gets one file of one run
truncated, edited or deleted. ``classgap study --verify`` lists the run and exits 1,
``classgap report`` refuses in one line that says how to go on, and re-running the study warns
once naming the file, trains that run again and writes the summary of the untouched study.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from classgap.cli import run

SCRIPT = '''
import sys
import numpy as np
seed, crop, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng([seed, int(10 * crop)])
y = np.arange(300) % 4
for split in ("val", "test"):
    hit = rng.random(300) < 0.8 - 0.1 * crop * (y == 2)
    logits = rng.normal(size=(300, 4))
    logits[np.arange(300), y] += 4 * hit
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
with open(f"{out}/history.csv", "w") as f:
    f.write(f"epoch,train_acc\\n1,{0.85 + 0.01 * seed}\\n")
'''


def study_args(folder: Path, out: Path) -> list[str]:
    cmd = f"{sys.executable} {folder / 'train.py'} {{seed}} {{aug.crop}} {{out}}"
    return ["study", "--set", "data.dataset=digits", "--axis", "aug.crop=0,1", "--seeds", "3",
            "--train-cmd", cmd, "--out", str(out), "--workers", "1"]


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def summary(study: Path) -> dict[str, Any]:
    return json.loads((study / "summary.json").read_text())  # holds no time or path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("verify")
    (folder / "train.py").write_text(SCRIPT)
    assert run(study_args(folder, folder / "study")) == 0
    return folder


def test_verify_an_intact_study(capsys: pytest.CaptureFixture[str], finished: Path) -> None:
    code, out, err = invoke(capsys, "study", "--verify", finished / "study")
    assert code == 0, err
    assert "all 6 finished runs intact" in out and "MB checked in" in out


def _edit_config(path: Path) -> None:
    config = json.loads(path.read_text())
    config["optim"]["lr"] = 0.5
    path.write_text(json.dumps(config, indent=2))


DAMAGE = {"test.npz": (lambda p: p.write_bytes(p.read_bytes()[:100]), "truncated"),
          "config.json": (_edit_config, "no longer matches run id"),
          "history.csv": (Path.unlink, "missing")}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_run_is_listed_refused_by_report_and_retrained(
        capsys: pytest.CaptureFixture[str], finished: Path, tmp_path: Path, name: str) -> None:
    study = tmp_path / "study"
    shutil.copytree(finished / "study", study)
    expected = summary(study)
    victim = sorted(p.name for p in (study / "runs").iterdir() if not p.name.startswith("."))[2]
    damage, problem = DAMAGE[name]
    damage(study / "runs" / victim / name)

    code, out, err = invoke(capsys, "study", "--verify", study)
    assert code == 1, err
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{victim}: ") and f"{name}: " in lines[0] and problem in out
    assert "1 of 6 finished runs" in lines[-1] and "would be trained again" in lines[-1]
    assert (study / "runs" / victim).is_dir()  # --verify changes nothing
    assert invoke(capsys, "report", study, "--verify")[0] == 1

    code, out, err = invoke(capsys, "report", study)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert "must be trained again" in err and f"{victim}/{name}" in err
    assert "re-run the 'classgap study' command" in err

    code, out, err = invoke(capsys, *study_args(finished, study))
    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and f"{victim}/{name}: " in warned[0], err
    assert summary(study) == expected
    assert invoke(capsys, "study", "--verify", study)[0] == 0
    [aside] = (study / "runs" / ".quarantine").iterdir()
    assert aside.name.startswith(f"{victim}.")
