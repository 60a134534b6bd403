"""Output details of the CLI: the gate's verdict in compare's JSON, ``data info -f csv``, and
errors that point at the fix for inputs that look right but are not."""

from __future__ import annotations

import io
import json
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
