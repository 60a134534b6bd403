"""Output details of the CLI: the gate's verdict in compare's JSON, ``data info -f csv``, and
errors that point at the fix for inputs that look right but are not."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classgap.audit.io import write_predictions
from classgap.cli import run

NAMES = ["cat", "dog", "owl"]


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Baseline 90% on every class; the candidate drops 'cat' to 50% (300 images a class)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 300)
    files = []
    for side, acc in (("base", [0.9, 0.9, 0.9]), ("cand", [0.5, 0.9, 0.9])):
        hit = rng.random(len(y)) < np.array(acc)[y]
        files.append(tmp_path / f"{side}.npz")
        write_predictions(files[-1], y_true=y, y_pred=np.where(hit, y, (y + 1) % 3),
                          classes=NAMES)
    return files[0], files[1]


def test_compare_json_holds_the_gate_verdict(capsys, pair) -> None:
    base, cand = pair
    code, out, _ = invoke(capsys, "compare", "-b", base, "-c", cand, "-f", "json",
                          "--fail-on-drop", "5")
    gate = json.loads(out)["fail_on_drop"]
    assert code == 3 and gate["points"] == 5 and gate["passed"] is False
    assert [d["class"] for d in gate["drops"]] == ["cat"]
    assert gate["drops"][0]["delta"] < -0.3 and gate["drops"][0]["q_value"] < 0.05
    code, out, _ = invoke(capsys, "compare", "-b", base, "-c", base, "-f", "json",
                          "--fail-on-drop", "5")
    assert code == 0 and json.loads(out)["fail_on_drop"] == {"points": 5, "passed": True,
                                                              "drops": []}
    code, out, _ = invoke(capsys, "compare", "-b", base, "-c", cand, "-f", "json")
    assert code == 0 and "fail_on_drop" not in json.loads(out)  # no gate asked, none said


def test_data_info_csv_is_csv(capsys) -> None:
    code, out, err = invoke(capsys, "data", "info", "digits", "-f", "csv")
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert list(table.columns) == ["class", "train", "test"] and len(table) == 10
    code, out, _ = invoke(capsys, "data", "info", "digits", "-f", "json")
    splits = json.loads(out)["splits"]
    assert table["train"].tolist() == splits["train"]["class_counts"]
    assert table["test"].tolist() == splits["test"]["class_counts"]


def test_a_pipe_is_an_error_that_says_to_write_a_file(capsys, tmp_path) -> None:
    # `classgap audit <(cat preds.csv)`: the shell passes /dev/fd/N, a pipe with no suffix
    read, write = os.pipe()
    try:
        os.write(write, b"y_true,y_pred\n0,0\n1,1\n")
        code, _, err = invoke(capsys, "audit", f"/dev/fd/{read}")
    finally:
        os.close(read)
        os.close(write)
    line = one_error(err)
    assert code == 1 and f"/dev/fd/{read}: is a pipe" in line
    assert "write the predictions to a file with a suffix first, e.g. 'cmd > preds.csv'" in line
    fifo = tmp_path / "preds"
    os.mkfifo(fifo)
    code, _, err = invoke(capsys, "compare", "-b", fifo, "-c", fifo)
    assert code == 1 and "is a pipe" in one_error(err)


def _png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)


def test_split_folders_at_the_wrong_level_name_the_folder_to_give(capsys, tmp_path) -> None:
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            _png(tmp_path / "top" / "ds" / split / name / "0.png")
    # one level too high: ds/ is the dataset
    code, _, err = invoke(capsys, "data", "info", f"folder:{tmp_path / 'top'}")
    line = one_error(err)
    assert code == 1 and "its folder ds/ holds the split folders test/, train/ of a dataset" in line
    assert line.endswith(f"give that folder: folder:{tmp_path / 'top' / 'ds'}")
    # train/ and test/ without class folders inside
    for split in ("train", "test"):
        _png(tmp_path / "flat" / split / "0.png")
    code, _, err = invoke(capsys, "data", "info", f"folder:{tmp_path / 'flat'}")
    assert code == 1 and "test/ and train/ hold images directly, without class folders" in \
        one_error(err)


@pytest.mark.parametrize("columns, classes, needle", [
    (["probs_0", "probs_1", "probs_2"], None, "rename probs_0 → prob_0, probs_1 → prob_1"),
    (["cat", "dog", "owl"], None, "look like class scores; name them prob_<class> "
     "(probabilities) or logit_<class> (logits): cat → prob_cat"),
    (["prob_1", "prob_2", "prob_3"], None, "score columns are numbered from 0 (prob_0 is class "
     "0); got prob_1..prob_3: rename them prob_0..prob_2"),
    (["prob_cat", "prob_dog", "prob_owl"], ["cat", "dog", "bird"], "class 'bird' of "
     "classes.json has no column prob_bird; the file's score columns are prob_cat, prob_dog, "
     "prob_owl"),
    (["prob_cat", "prob_dog", "prob_owl"], ["cat", "dog"], "column prob_owl names a class "
     "that classes.json does not list"),
])
def test_score_columns_errors_point_at_the_fix(capsys, tmp_path, monkeypatch, columns, classes,
                                               needle) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 4)
    frame = pd.DataFrame(rng.dirichlet(np.ones(3), len(y)), columns=columns)
    frame.insert(0, "y_true", y)
    path = Path("preds.csv")
    frame.to_csv(path, index=False)
    extra: list[object] = []
    if classes is not None:
        Path("classes.json").write_text(json.dumps(classes))
        extra = ["--classes", "classes.json"]
    code, _, err = invoke(capsys, "audit", path, *extra)
    assert code == 1 and needle in one_error(err)
