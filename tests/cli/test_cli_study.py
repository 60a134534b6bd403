"""``classgap study`` and ``classgap report``: end to end on digits, one-line errors."""

from __future__ import annotations

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
    # the axis is a config key the script reads as its own regularization strength
    cmd = f"{sys.executable} {tmp_path / 'train.py'} --l2 {{optim.weight_decay}} " \
          f"--seed {{seed}} --out {{out}}"
    code, out, err = invoke(capsys, "study", "--set", "data.dataset=digits", "--axis",
                            "optim.weight_decay=0,1", "--seeds", "2", "--train-cmd", cmd,
                            "--out", tmp_path / "ext")
    assert code == 0, err
    summary = json.loads((tmp_path / "ext" / "summary.json").read_text())
    assert summary["reference"] == 0.0 and len(summary["classes"]) == 10
    assert "report.html" in out


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
