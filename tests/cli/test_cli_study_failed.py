"""A study with a collapsed seed: ``classgap study`` shows it, ``--exclude-failed`` leaves it
out (and says so), ``classgap report --keep-failed`` puts it back; a normal study flags
nothing. The runs come from a numpy ``--train-cmd`` script (fast, no torch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from classgap.cli import run

# argv: seed, strength (a per-class list on a refit run), out, the seed/strength that collapses
# ("none" for none).
SCRIPT = '''
import json, sys
import numpy as np
seed, crop, out, victim = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
refit = crop.startswith("[")  # a refit run: one strength per class
strength = float(np.mean(json.loads(crop))) if refit else float(crop)
collapsed = not refit and victim == f"{seed}/{strength:g}"
rng = np.random.default_rng([seed, int(10 * strength)])
y = np.arange(600) % 4
for split in ("val", "test"):
    hit = rng.random(600) < 0.8 - 0.05 * strength * (y == 2)
    logits = rng.normal(size=(600, 4))
    logits[np.arange(600), y] += 4 * hit
    if collapsed:  # one class for every image: the run learned nothing
        logits = np.tile([0.0, 0.0, 0.0, 5.0], (600, 1))
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
train = 0.26 if collapsed else 0.85 + 0.01 * seed
with open(f"{out}/history.csv", "w") as f:
    f.write(f"epoch,train_acc\\n1,{train}\\n")
'''


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _study(capsys: pytest.CaptureFixture[str], tmp_path: Path, victim: str,
           *extra: str) -> tuple[int, str, str, Path]:
    (tmp_path / "train.py").write_text(SCRIPT)
    cmd = f"{sys.executable} {tmp_path / 'train.py'} {{seed}} {{aug.crop}} {{out}} {victim}"
    out = tmp_path / f"study-{victim.replace('/', '-')}"
    code, text, err = invoke(capsys, "study", "--set", "data.dataset=digits", "--axis",
                             "aug.crop=0,1", "--seeds", "4", "--train-cmd", cmd, "--out", out,
                             "--workers", "1", *extra)
    return code, _flat(text), err, out


def _flat(text: str) -> str:
    """The printed text as one line: the notes panel's borders and wrapping removed."""
    return " ".join(text.replace("│", " ").split())


def test_collapsed_seed_is_shown_then_excluded_on_request(capsys, tmp_path: Path) -> None:
    code, text, err, out = _study(capsys, tmp_path, "2/1")
    assert code == 0, err
    assert "1 run(s) look failed" in text and "strength=1.0, seed=2" in text
    assert "--exclude-failed leaves them out" in text
    summary = json.loads((out / "summary.json").read_text())
    failed = summary["failed_runs"]
    assert [(r["strength"], r["seed"], r["excluded"]) for r in failed] == [(1.0, 2, False)]
    assert failed[0]["train_acc"] == pytest.approx(0.26)  # read from the run's history.csv
    assert "at chance" in failed[0]["reason"] and summary["exclude_failed"] is False
    n_seeds = {r["strength"]: r["n_seeds"] for r in summary["validation"]}
    assert n_seeds == {0.0: 4, 1.0: 4}
    html = (out / "report.html").read_text()
    assert 'id="failed-runs"' in html and "look failed" in html

    code, text, err = invoke(capsys, "report", out, "--exclude-failed")
    assert code == 0, err
    text = _flat(text)
    assert "were left out of the statistics, as --exclude-failed asks" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exclude_failed"] is True and summary["failed_runs"][0]["excluded"] is True
    assert {r["strength"]: r["n_seeds"] for r in summary["validation"]} == {0.0: 4, 1.0: 3}
    assert "left out" in (out / "report.html").read_text()

    code, text, err = invoke(capsys, "report", out, "--keep-failed")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exclude_failed"] is False
    assert {r["strength"]: r["n_seeds"] for r in summary["validation"]} == {0.0: 4, 1.0: 4}


def test_study_with_exclude_failed_and_a_normal_study(capsys, tmp_path: Path) -> None:
    code, text, err, out = _study(capsys, tmp_path, "1/0", "--exclude-failed", "--refit")
    assert code == 0, err
    assert "were left out of the statistics" in text and "strength=0.0, seed=1" in text
    summary = json.loads((out / "summary.json").read_text())
    assert {r["strength"]: r["n_seeds"] for r in summary["validation"]} == {0.0: 3, 1.0: 4}
    # the refit is trained and audited on the selected strength's kept seeds only
    assert summary["selected"] == 0.0
    refit = json.loads((out / "refit.json").read_text())
    assert len(refit["runs"]) == 3
    code, text, err, out = _study(capsys, tmp_path, "none")
    assert code == 0, err
    assert "look failed" not in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed_runs"] == [] and 'id="failed-runs"' not in \
        (out / "report.html").read_text()
