"""Warnings in the CLI: one clean line each (``warning: MESSAGE``), each distinct one once, from
this process and from the study's worker processes alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classgap.audit.io import write_predictions
from classgap.cli import run

NAMES = ["cat", "dog", "owl"]
TINY = ("--set", "data.dataset=digits", "--set", "model.name=mlp", "--set", "train.epochs=1",
        "--set", "train.threads=1")


def stderr_lines(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, list[str]]:
    code = run([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    for line in lines:  # Python's own format: "path.py:12: UserWarning: ...", then the code
        assert line.startswith(("warning: ", "error: ")), err
        assert ".py:" not in line and "Warning:" not in line, err
    assert len(set(lines)) == len(lines), err
    return code, lines


@pytest.fixture
def owl_absent(tmp_path: Path) -> list[Path]:
    """Three runs on six images of 'cat' and 'dog'; 'owl' has no test image."""
    y = np.array([0, 0, 0, 1, 1, 1])
    files = []
    for seed, pred in enumerate(([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0], [0, 0, 0, 1, 0, 1])):
        files.append(tmp_path / f"run{seed}.npz")
        write_predictions(files[-1], y_true=y, y_pred=np.array(pred), seed=seed, classes=NAMES)
    return files


def test_audit_of_several_runs_says_each_warning_once(capsys, owl_absent) -> None:
    # The empty class is seen by every step (each run, the mean over runs, the intervals);
    # numpy's "Mean of empty slice" from the mean over runs used to follow it.
    code, lines = stderr_lines(capsys, "audit", *owl_absent, "--interval", "seeds")
    assert code == 0
    assert lines == [
        "warning: 1 class(es) absent from y_true (support 0) get NaN accuracy: owl",
        "warning: 2 accuracy interval(s) reached past [0, 1] and were clipped to it: those "
        "classes have too few images or seeds to say much"]


def test_compare_says_each_warning_once(capsys, owl_absent) -> None:
    # The classes' intervals and the whole test set's are clipped in two steps: one warning
    # with the total (it was two, "2 change ..." then "1 change ...").
    code, lines = stderr_lines(capsys, "compare", "-b", *owl_absent[:2], "-c", *owl_absent[1:],
                               "--test", "welch")
    assert code == 0
    assert lines == [
        "warning: 1 class(es) absent from y_true (support 0) get NaN accuracy: owl",
        "warning: 3 change (Δ) interval(s) reached past [-1, 1] and were clipped to it: those "
        "classes have too few images or seeds to say much"]


def test_an_error_is_not_preceded_by_warnings(capsys, owl_absent) -> None:
    code, lines = stderr_lines(capsys, "audit", *owl_absent, "--method", "bca")
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: 'method' must be")


def test_study_workers_warnings_are_one_line_in_the_study(capsys, tmp_path, monkeypatch) -> None:
    # Both worker processes find the precision cache unreadable: the study prints it once,
    # as its own line, not in Python's format from each worker. The intervals clipped by the
    # analysis are said once too, in the notes, not as warnings besides.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "precision.json").write_text("not json")
    monkeypatch.setenv("CLASSGAP_CACHE_DIR", str(cache))
    monkeypatch.delenv("CLASSGAP_PRECISION", raising=False)  # make test-precisions forces it
    code, lines = stderr_lines(capsys, "study", *TINY, "--set", "train.precision=auto",
                               "--axis", "aug.flip=0,0.5", "--seeds", "2",
                               "--backend", "processes", "--workers", "2",
                               "--out", tmp_path / "s")
    assert code == 0
    assert lines == [f"warning: {cache / 'precision.json'}: unreadable precision cache "
                     "(Expecting value: line 1 column 1 (char 0)); measuring again"]
