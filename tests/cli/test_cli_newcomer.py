"""What a newcomer hit (issue 10): each mistake gets an error about the right thing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classgap.audit.io import write_predictions
from classgap.cli import run


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def pred(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 40)
    probs = rng.dirichlet(np.ones(5), len(y))
    path = tmp_path / "pred.npz"
    write_predictions(path, y_true=y, probs=probs)
    return path


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_classes_file_of_the_wrong_length_is_named(capsys, pred, tmp_path) -> None:
    names = tmp_path / "names3.txt"
    names.write_text("a\nb\nc\n")
    code, _, err = invoke(capsys, "audit", pred, "--classes", names)
    line = one_line(err)
    assert code == 1 and str(names) in line and "3 class names" in line and "5 classes" in line


def test_a_directory_is_not_a_prediction_file(capsys, tmp_path) -> None:
    code, _, err = invoke(capsys, "audit", tmp_path)
    line = one_line(err)
    assert code == 1 and "is a directory" in line and "*.npz" in line


def test_zero_epochs_blames_the_epochs(capsys) -> None:
    code, _, err = invoke(capsys, "train", "--dataset", "digits", "--epochs", "0")
    assert code == 1 and "'train.epochs' must be >= 1; got 0" in one_line(err)


def test_csv_typo_suggests_the_column(capsys, tmp_path) -> None:
    path = tmp_path / "typo.csv"
    pd.DataFrame({"y_ture": [0, 1], "y_pred": [0, 1]}).to_csv(path, index=False)
    code, _, err = invoke(capsys, "audit", path)
    line = one_line(err)
    assert code == 1 and "did you mean 'y_true'?" in line and "->" not in line


def test_fail_on_drop_says_it_passed(capsys, pred) -> None:
    code, out, err = invoke(capsys, "compare", "-b", pred, "-c", pred, "--fail-on-drop", "5",
                            "--format", "json")
    assert code == 0 and "fail-on-drop: passed" in err
    json.loads(out)  # the gate's line does not spoil the JSON on stdout


def test_csv_output_writes_the_overall_summary_beside_it(capsys, pred, tmp_path) -> None:
    out = tmp_path / "audit.csv"
    code, _, err = invoke(capsys, "audit", pred, "--format", "csv", "--out", out)
    assert code == 0, err
    overall = pd.read_csv(tmp_path / "audit.overall.csv")
    assert len(overall) == 1 and "accuracy.estimate" in overall.columns
    code, _, err = invoke(capsys, "audit", pred, "--format", "csv")
    assert code == 0 and "overall and disparity summary is in --format json" in err


def test_study_help_keeps_brackets_and_flags_take_no_value(capsys) -> None:
    code, out, _ = invoke(capsys, "study", "--help")
    assert code == 0
    assert "[study]" in out and "[base]" in out  # not eaten as rich markup
    assert "<bool>" not in out


def test_posthoc_adjustment_of_a_cosine_head_run_keeps_it_trained(capsys, tmp_path) -> None:
    out = tmp_path / "lt"
    code, _, err = invoke(capsys, "train", "--recipe", "ldam-drw", "--dataset", "digits",
                          "--model", "mlp", "--imbalance", "10", "--epochs", "12",
                          "--set", "loss.drw_epoch=9", "--set", "data.val_size=300",
                          "--set", "train.progress=false", "--set", "train.threads=1",
                          "--out", out)
    assert code == 0, err
    logits = np.load(out / "test.npz")["logits"]
    assert np.abs(logits).max() > 1.0  # s · cos, the logits the loss saw; not raw cosines
    accs = []
    for extra in ([], ["--posthoc-tau", "1"]):
        code, text, err = invoke(capsys, "audit", out / "test.npz", "--train-counts",
                                 out / "train_counts.json", "--format", "json", *extra)
        assert code == 0, err
        accs.append(json.loads(text)["overall"]["accuracy"]["estimate"])
    assert "post-hoc logit adjustment" in err and str(out / "train_counts.json") in err
    assert accs[1] > accs[0] - 0.1  # adjusted, not collapsed (it fell to 25% before)
