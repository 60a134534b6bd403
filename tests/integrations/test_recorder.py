"""PredictionRecorder and the drop gate in a plain PyTorch loop (examples/torch_loop.py)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from classgap.audit import read_predictions
from classgap.cli import run
from classgap.errors import DropGateError, InputError
from classgap.integrations import PredictionRecorder, check_drops

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_loop.py"


def test_batches_are_concatenated_and_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(70, 4)).astype(np.float32), rng.integers(0, 4, 70)
    rec = PredictionRecorder(classes=["a", "b", "c", "d"], seed=3)
    for start in range(0, 70, 32):  # tensors in bf16 and arrays alike
        part = slice(start, start + 32)
        rec.update(torch.from_numpy(z[part]).bfloat16() if start == 0 else z[part],
                   torch.from_numpy(y[part]), sample_ids=np.arange(70)[part])
    assert len(rec) == 70
    pred = read_predictions(rec.write(tmp_path / "deep" / "test.npz"))
    np.testing.assert_array_equal(pred.y_true, y)
    np.testing.assert_array_equal(pred.sample_id, np.arange(70))
    assert pred.classes == ("a", "b", "c", "d") and pred.seed == 3
    np.testing.assert_allclose(pred.scores[32:], z[32:])  # float32 batches kept exactly
    assert rec.accuracy() == pytest.approx(float((pred.scores.argmax(1) == y).mean()))
    rec.reset()
    assert len(rec) == 0


@pytest.mark.parametrize(("logits", "targets", "match"), [
    (np.zeros((3,)), np.zeros(3), "'logits'"),
    (np.zeros((3, 2)), np.zeros(4), "'targets'"),
    (np.zeros((2, 3)), np.zeros(2), "one column per class name"),
    (torch.zeros(2, 2), torch.zeros(2, 1), "'targets'"),
])
def test_bad_batches_are_one_clear_error(logits, targets, match) -> None:
    with pytest.raises(InputError, match=match):
        PredictionRecorder(classes=["a", "b"]).update(logits, targets)
    with pytest.raises(InputError, match="at least one batch"):
        PredictionRecorder().write("never.npz")


def test_values_are_checked_when_the_batches_are_read(tmp_path: Path) -> None:
    rec = PredictionRecorder()
    rec.update(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    bad = torch.zeros(2, 2)
    bad[1, 0] = float("nan")
    rec.update(bad, torch.zeros(2, dtype=torch.long))  # shapes only: no wait for the device
    with pytest.raises(InputError, match=r"'logits'.*finite.*1 row\(s\), the first at row 4"):
        rec.write(tmp_path / "never.npz")
    assert not (tmp_path / "never.npz").exists()
    with pytest.raises(InputError, match="every batch or for none"):
        rec.update(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), sample_ids=[7])


def test_kept_batches_do_not_follow_the_callers_buffers() -> None:
    rec = PredictionRecorder()
    z, y = torch.ones(2, 2), np.array([0, 1])
    rec.update(z, y)
    z.zero_()
    y[:] = 1
    logits, targets, _ = rec.arrays()
    assert logits.sum() == 4 and targets.tolist() == [0, 1]


def test_repeated_ids_keep_their_first_row_when_asked(tmp_path: Path) -> None:
    rec = PredictionRecorder()  # a distributed sampler's padding: sample 0 again at the end
    rec.update(np.eye(3, dtype=np.float32), [0, 1, 2], sample_ids=[10, 11, 12])
    rec.update(np.eye(3, dtype=np.float32)[:1] * 5, [0], sample_ids=[10])
    pred = read_predictions(rec.write(tmp_path / "t.npz", drop_repeated_ids=True))
    assert pred.sample_id.tolist() == [10, 11, 12] and pred.scores[0, 0] == 1
    with pytest.raises(Exception, match="unique"):
        rec.write(tmp_path / "dup.npz")


def _loop(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path / name),
                           "--epochs", "3", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_example_loop_writes_files_the_audit_reads_and_gates(tmp_path: Path,
                                                                 capsys) -> None:
    base = _loop(tmp_path, "base")
    assert base.returncode == 0, base.stderr
    assert run(["audit", str(tmp_path / "base" / "test.npz")]) == 0
    assert "Per-class accuracy" in capsys.readouterr().out
    planted = _loop(tmp_path, "bad", "--drop-class", "3", "--baseline",
                    str(tmp_path / "base" / "test.npz"))
    assert planted.returncode == 3 and "gate failed" in planted.stderr
    assert "3 (" in planted.stderr  # the class that was never trained on is named
    clean = _loop(tmp_path, "again", "--seed", "1", "--baseline",
                  str(tmp_path / "base" / "test.npz"))
    assert clean.returncode == 0 and "gate passed" in clean.stdout
    # The function itself: raises, or only warns.
    with pytest.raises(DropGateError, match="dropped significantly"):
        check_drops(tmp_path / "base" / "test.npz", tmp_path / "bad" / "test.npz",
                    fail_on_drop=5)
    with pytest.warns(RuntimeWarning, match="dropped significantly"):
        check_drops([tmp_path / "base" / "test.npz"], tmp_path / "bad" / "test.npz",
                    fail_on_drop=5, warn_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = check_drops(tmp_path / "base" / "test.npz", tmp_path / "again" / "test.npz",
                             fail_on_drop=5)
    assert result.overall["n_drop"] == 0 or result.drops(5).empty


def test_a_missing_lightning_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from classgap.errors import ClassgapError

    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    monkeypatch.delitem(sys.modules, "classgap.integrations.lightning", raising=False)
    with pytest.raises(ClassgapError, match=r"pip install 'classgap\[lightning\]'"):
        importlib.import_module("classgap.integrations.lightning")
    import classgap.integrations  # the core keeps importing without it

    assert classgap.integrations.PredictionRecorder is PredictionRecorder


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_batches_beyond_the_device_budget_go_to_the_host() -> None:
    rec = PredictionRecorder(device_memory=64 * 10 * 4 + 64 * 8)  # one batch of logits+labels
    for _ in range(3):
        rec.update(torch.randn(64, 10, device="cuda"), torch.randint(0, 10, (64,), device="cuda"))
    assert [t.device.type for t in rec._logits] == ["cuda", "cpu", "cpu"]
    assert rec.arrays()[0].shape == (192, 10)


def test_the_device_budget_is_checked() -> None:
    with pytest.raises(InputError, match="device_memory"):
        PredictionRecorder(device_memory=-1)
    rec = PredictionRecorder(device_memory=0)  # CPU tensors are not counted against it
    rec.update(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    assert rec._on_device == 0 and len(rec) == 2
