"""Every interval the CLI prints or writes stays inside what is possible (issue 20).

Few seeds and few images make t intervals reach past [0, 1] (accuracy) and [-1, 1] (Δ): the
issue's `compare` with 3 seeds a side and 4 images a class printed -58.3 [-129.5, +12.8].
Here the same shape of data goes through the table, JSON and CSV of `compare` and `audit`,
and the CLI says in one line that intervals were clipped.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classgap.audit.io import write_predictions
from classgap.cli import run

K = 5
INTERVAL = re.compile(r"\[\s*([+-]?\d+(?:\.\d+)?),\s*([+-]?\d+(?:\.\d+)?)\]")


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def few(tmp_path: Path) -> dict[str, list[Path]]:
    """3 seeds a side, 4 images a class; the candidate's seeds disagree wildly."""
    y = np.repeat(np.arange(K), 4)
    rng = np.random.default_rng(0)
    files: dict[str, list[Path]] = {"a": [], "b": []}
    for side in ("a", "b"):
        for seed in range(3):
            acc = 0.9 if side == "a" else (0.05, 0.5, 0.95)[seed]
            pred = np.where(rng.random(y.size) < acc, y, (y + 1) % K)
            files[side].append(write_predictions(tmp_path / f"{side}{seed}.npz", y_true=y,
                                                 y_pred=pred))
    return files


def _printed_intervals(text: str) -> np.ndarray:
    found = np.array([[float(lo), float(hi)] for lo, hi in INTERVAL.findall(text)])
    assert found.size, text
    return found


def test_compare_intervals_stay_in_range_in_every_format(capsys, few) -> None:
    args = ["compare", "-b", *few["a"], "-c", *few["b"]]
    code, out, err = invoke(capsys, *args)
    assert code == 0, err
    shown = _printed_intervals(out)  # points
    assert np.all((shown >= -100) & (shown <= 100))
    assert "interval(s) reached past [-1, 1] and were clipped" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2

    code, out, _ = invoke(capsys, *args, "--format", "json")
    payload = json.loads(out)
    rows = [*payload["classes"], payload["overall"]]
    lows = np.array([r["delta_low"] for r in rows], dtype=float)
    highs = np.array([r["delta_high"] for r in rows], dtype=float)
    assert np.all((lows >= -1) & (highs <= 1) & (lows <= highs))
    assert (lows == -1).any()  # this data does reach the edge: the clip is exercised

    code, out, _ = invoke(capsys, *args, "--format", "csv")
    table = pd.read_csv(io.StringIO(out))
    assert table["delta_low"].between(-1, 1).all() and table["delta_high"].between(-1, 1).all()
    for col in ("acc_baseline", "acc_candidate"):
        assert table[col].between(0, 1).all()


def test_compare_one_run_a_side_stays_in_range(capsys, few) -> None:
    code, out, err = invoke(capsys, "compare", "-b", few["a"][0], "-c", few["b"][0],
                            "--format", "json")
    assert code == 0, err
    rows = [*json.loads(out)["classes"], json.loads(out)["overall"]]
    for r in rows:
        assert -1 <= r["delta_low"] <= r["delta"] <= r["delta_high"] <= 1
        # one procedure: the interval excludes 0 exactly when p < 1 - confidence
        assert (r["delta_low"] > 0 or r["delta_high"] < 0) == (r["p_value"] < 0.05)


@pytest.mark.parametrize("interval", ["seeds", "bootstrap", "auto"])
def test_audit_intervals_stay_in_range(capsys, few, interval) -> None:
    code, out, err = invoke(capsys, "audit", *few["b"], "--interval", interval,
                            "--format", "json", "--seed", "0")
    assert code == 0, err
    if interval == "seeds":  # 3 seeds at 5%, 50% and 95%: the t interval needs the clip
        assert "accuracy interval(s) reached past [0, 1] and were clipped" in err
    payload = json.loads(out)
    classes = payload["classes"]
    for row in classes:
        assert 0 <= row["accuracy_low"] <= row["accuracy_high"] <= 1
    for name, stat in payload["overall"].items():
        if name != "cv" and isinstance(stat, dict) and stat.get("low") is not None:
            assert stat["low"] >= 0 and stat["high"] <= 1, name
    code, out, _ = invoke(capsys, "audit", *few["b"], "--interval", interval, "--seed", "0")
    shown = _printed_intervals(out)
    assert np.all((shown >= 0) & (shown <= 100))
