"""``classgap study`` and ``classgap report``: end to end on digits, one-line errors."""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import pytest

from classgap.cli import run

TINY = ("--set", "data.dataset=digits", "--set", "model.name=mlp", "--set", "train.epochs=1",
        "--set", "train.threads=1", "--set", "train.precision=fp32")

# The example script users copy (examples/sklearn_train.py) is the trainer under test.
SKLEARN_SCRIPT = (Path(__file__).resolve().parents[2] / "examples" / "sklearn_train.py").read_text()


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_study_then_report(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(capsys, "study", *TINY, "--axis", "aug.flip=0,0.5", "--seeds", "2",
                            "--out", "tmp")
    assert code == 0, err
    text = " ".join(out.split())
    assert "tmp/report.html" in text
    summary = json.loads((tmp_path / "tmp" / "summary.json").read_text())
    assert summary["axis"] == "aug.flip" and len(summary["classes"]) == 10
    code, out, err = invoke(capsys, "report", "tmp")
    assert code == 0, err
    assert "tmp/report.html" in " ".join(out.split())
    assert json.loads((tmp_path / "tmp" / "summary.json").read_text()) == summary
    # --alpha is what the summary then speaks of (it used to print q < 0.05 regardless)
    code, out, err = invoke(capsys, "report", "tmp", "--alpha", "0.01")
    assert code == 0, err
    text = " ".join(out.split())
    assert "q < 0.05" not in text and "q < 0.01" in text
    summary = json.loads((tmp_path / "tmp" / "summary.json").read_text())
    assert all(c["delta_low"] <= c["delta"] <= c["delta_high"] for c in summary["classes"])
    # study.json and summary.json have the usual file mode, not mkstemp's 0600
    for name in ("study.json", "summary.json"):
        assert (tmp_path / "tmp" / name).stat().st_mode & 0o777 != 0o600


@pytest.mark.parametrize("args, needle", [
    (("--axis", "aug.flp=0,1"), "aug.flp"),
    (("--axis", "aug.flip"), "--axis"),
    (("--preset", "dropot"), "did you mean 'dropout'"),
    (("--axis", "aug.flip=0,1", "--backend", "rey"), "did you mean 'ray'"),
    (("--axis", "aug.flip=0,1", "--mode", "diagonal"), "mode"),
    (("--axis", "aug.mixup=0,1", "--refit"), "cannot train 'aug.mixup' per class"),
    (("--axis", "aug.flip=0,1", "--seeds", "5-2"), "'seeds' must be a count"),
])
def test_errors_are_one_line(capsys, tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    code, _, err = invoke(capsys, "study", *TINY, *args, "--out", tmp_path / "x")
    assert code == 1, err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_report_of_a_non_study(capsys, tmp_path: Path) -> None:
    code, _, err = invoke(capsys, "report", tmp_path)
    assert code == 1 and "not a study directory" in err and len(err.strip().splitlines()) == 1


def test_own_training_command(capsys, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SKLEARN_SCRIPT)
    # the axis is the script's own hyperparameter: --axis cmd.C fills {C}
    cmd = f"{sys.executable} {tmp_path / 'train.py'} --C {{C}} --seed {{seed}} --out {{out}}"
    code, out, err = invoke(capsys, "study", "--axis", "cmd.C=100,1,0.01", "--seeds", "2",
                            "--train-cmd", cmd, "--out", tmp_path / "ext")
    assert code == 0, err
    study = tmp_path / "ext"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["axis"] == "cmd.C" and summary["strengths"] == [100, 1, 0.01]
    assert summary["reference"] == 100 and len(summary["classes"]) == 10
    assert "report.html" in out
    # each value is its own run (the run id hashes the config, cmd.C included)
    runs = sorted(study.glob("runs/*/config.json"))
    assert len(runs) == 6
    logs = " ".join((r.parent / "train.log").read_text() for r in runs)
    assert all(f"--C {c} " in logs for c in ("100", "1", "0.01"))
    # study.json and the report say what trained the runs, not the built-in recipe
    grid = json.loads((study / "study.json").read_text())["grids"][-1]
    assert grid["train_cmd"] == cmd and grid["axes"] == {"cmd.C": [100, 1, 0.01]}
    for _ in range(2):  # the study, then a re-report from the study directory
        footer = (study / "report.html").read_text().split('id="provenance"')[1]
        assert html.escape(cmd) in footer and "<dt>axis</dt><dd>cmd.C</dd>" in footer
        assert not any(f"<dt>{k}</dt>" in footer for k in ("dataset", "model", "epochs"))
        assert "fashion-mnist" not in footer
        code, out, err = invoke(capsys, "report", study)
        assert code == 0, err


def test_a_missing_program_fails_once_before_the_study_exists(capsys, tmp_path: Path) -> None:
    cmd = "pyhton-not-here train.py --C {C} --seed {seed} --out {out}"
    code, out, err = invoke(capsys, "study", "--axis", "cmd.C=1,0.1", "--seeds", "3",
                            "--train-cmd", cmd, "--out", tmp_path / "ext")
    assert code == 1 and out == ""  # not even the header line
    assert err.strip() == "error: --train-cmd: program 'pyhton-not-here' not found"
    assert not (tmp_path / "ext").exists()


@pytest.mark.parametrize("args, needle", [
    (("--backend", "nope"), "'backend' must be one of"),
    (("--workers", "0"), "'workers' must be an integer >= 1; got 0"),
    (("--alpha", "2"), "'alpha' must be in (0, 1); got 2.0"),
    (("--max-drop", "-1"), "'max_drop' must be in [0.0, 100.0]; got -1.0"),
    (("--transfer-to", "nope"), "--transfer-to: 'dataset' must be one of"),
    (("--reweight", "nope"), "'loss.reweight' must be one of"),
    (("--multi-label", "missing.json"), "missing.json: multi-label file does not exist"),
    (("--set", "cmd.C=1"), "'cmd.C' is a parameter of a --train-cmd template ({C}) and "
                           "classgap's own trainer has no use for it"),
    (("--axis", "cmd.C=1,2"), "drop the key, or train with classgap study --train-cmd"),
])
def test_options_are_checked_before_anything_is_created(capsys, tmp_path: Path,
                                                        args: tuple[str, ...],
                                                        needle: str) -> None:
    code, out, err = invoke(capsys, "study", *TINY, "--axis", "aug.flip=0,1", "--seeds", "1",
                            *args, "--out", tmp_path / "x")
    assert code == 1 and out == "", out  # no header line
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_processes_backend_and_transfer(capsys, tmp_path: Path) -> None:
    # The whole command with two worker processes and a linear probe of every backbone on a
    # downstream dataset (digits again here: what matters is the path, not the task).
    code, out, err = invoke(capsys, "study", *TINY, "--axis", "aug.flip=0,0.5", "--seeds", "2",
                            "--backend", "processes", "--workers", "2",
                            "--transfer-to", "digits", "--out", tmp_path / "p")
    assert code == 0, err
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert len(summary["classes"]) == 10
    assert "transfer" in summary and len(summary["transfer"]["classes"]) == 10
    html = (tmp_path / "p" / "report.html").read_text()
    assert "Transfer" in html
    # a re-report keeps the transfer analysis (nothing already written is lost)
    code, out, err = invoke(capsys, "report", tmp_path / "p")
    assert code == 0, err
    again = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert again["transfer"] == summary["transfer"]
    assert "Transfer (frozen backbones" in out
