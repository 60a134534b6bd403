"""``classgap study`` and ``classgap report``: end to end on digits, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from classgap.cli import run

TINY = ("--set", "data.dataset=digits", "--set", "model.name=mlp", "--set", "train.epochs=1",
        "--set", "train.threads=1", "--set", "train.precision=fp32")

SKLEARN_SCRIPT = '''
import argparse
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

p = argparse.ArgumentParser()
p.add_argument("--C", type=float, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
X_tr, X_va, y_tr, y_va = train_test_split(X_tr, y_tr, test_size=0.25, random_state=0,
                                          stratify=y_tr)
rng = np.random.default_rng(a.seed)
keep = rng.choice(len(y_tr), size=len(y_tr) * 3 // 4, replace=False)
model = LogisticRegression(C=1.0 / (a.C + 1e-3), max_iter=300).fit(X_tr[keep], y_tr[keep])
for name, X_, y_ in (("val", X_va, y_va), ("test", X_te, y_te)):
    np.savez(f"{a.out}/{name}.npz", y_true=y_, probs=model.predict_proba(X_))
'''


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


@pytest.mark.parametrize("args, needle", [
    (("--axis", "aug.flp=0,1"), "aug.flp"),
    (("--axis", "aug.flip"), "--axis"),
    (("--preset", "dropot"), "did you mean 'dropout'"),
    (("--axis", "aug.flip=0,1", "--backend", "rey"), "did you mean 'ray'"),
    (("--axis", "aug.flip=0,1", "--mode", "diagonal"), "mode"),
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
    cmd = f"{sys.executable} {tmp_path / 'train.py'} --C {{optim.weight_decay}} " \
          f"--seed {{seed}} --out {{out}}"
    code, out, err = invoke(capsys, "study", "--set", "data.dataset=digits", "--axis",
                            "optim.weight_decay=0,1", "--seeds", "2", "--train-cmd", cmd,
                            "--out", tmp_path / "ext")
    assert code == 0, err
    summary = json.loads((tmp_path / "ext" / "summary.json").read_text())
    assert summary["reference"] == 0.0 and len(summary["classes"]) == 10
    assert "report.html" in out
