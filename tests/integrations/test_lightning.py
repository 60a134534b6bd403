"""The Lightning callback, on a real Lightning run (examples/lightning_digits.py, 2 epochs)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("lightning")

from classgap.audit import read_predictions
from classgap.cli import run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lightning_digits.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lightning_digits", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def base(example: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lightning") / "base"
    assert example.main(["--out", str(out), "--epochs", "8"]) == 0
    return out


def test_files_per_validation_epoch_and_test_that_the_audit_reads(base: Path, capsys) -> None:
    assert {p.name for p in base.glob("*.npz")} == {*(f"val_epoch{e}.npz" for e in range(1, 9)),
                                                     "test.npz"}
    test = read_predictions(base / "test.npz")
    assert test.classes == tuple(str(c) for c in range(10)) and test.seed == 0
    assert len(test.y_true) == 540 and test.scores.shape == (540, 10)  # every test sample once
    assert (test.y_pred == test.y_true).mean() > 0.8
    val = read_predictions(base / "val_epoch8.npz")
    assert len(val.y_true) == 252
    assert run(["audit", str(base / "test.npz")]) == 0
    assert "Per-class accuracy" in capsys.readouterr().out


def test_per_class_accuracy_with_its_interval_reaches_the_logger(base: Path) -> None:
    with open(next((base / "logs").rglob("metrics.csv")), newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("val_class_acc/3")]
    assert len(rows) == 8  # one per validation epoch
    low, acc, high = (float(rows[-1][f"val_class_acc/3{s}"]) for s in ("_low", "", "_high"))
    assert 0 <= low <= acc <= high <= 1
    val = read_predictions(base / "val_epoch8.npz")
    mine = val.y_true == 3
    assert acc == pytest.approx(float((val.y_pred[mine] == 3).mean()))


def test_the_gate_fails_on_a_planted_drop_and_passes_without(
        example: ModuleType, base: Path, tmp_path: Path) -> None:
    planted = example.main(["--out", str(tmp_path / "bad"), "--drop-class", "3", "--epochs", "8",
                            "--baseline", str(base / "test.npz")])
    assert planted == 3
    clean = example.main(["--out", str(tmp_path / "same"), "--seed", "1", "--epochs", "8",
                          "--baseline", str(base / "test.npz"), "--fail-on-drop", "10"])
    assert clean == 0
    assert np.isfinite(read_predictions(tmp_path / "same" / "test.npz").scores).all()
