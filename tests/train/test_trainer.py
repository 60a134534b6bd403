"""Trainer: determinism, learning, run directory, precision, param groups, schedules, mixup."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from classgap.audit.io import read_predictions
from classgap.cli import run
from classgap.config import DEFAULT_WARMUP_EPOCHS, Config, load_config
from classgap.errors import ConfigError
from classgap.models import create_model
from classgap.train import lr_factor, param_groups, train
from classgap.train.optim import build_optimizer
from classgap.train.rundir import HISTORY_COLUMNS

TINY = ["data.dataset=digits", "model.name=mlp", "train.epochs=1", "train.progress=false",
        "optim.batch_size=64"]


def tiny(*extra: str) -> Config:
    return load_config(overrides=[*TINY, *extra])


def test_same_seed_same_logits_bitwise() -> None:
    cfg = tiny("model.name=cnn", "aug.crop=1", "model.dropout=0.1")
    a, b = train(cfg), train(cfg)
    assert np.array_equal(a.test_logits, b.test_logits)
    assert np.array_equal(a.val_logits, b.val_logits)
    c = train(tiny("model.name=cnn", "aug.crop=1", "model.dropout=0.1", "train.seed=1"))
    assert not np.array_equal(a.test_logits, c.test_logits)


def test_run_is_deterministic_inside_and_restores_the_flag_without_the_compiler() -> None:
    """CPU determinism holds during the run, without the NaN fill of fresh tensors (7% of a
    bf16 epoch), and the caller's settings come back; setting it does not import
    torch._inductor.config (1.3 s of every fresh process)."""
    code = ("import sys, torch\n"
            "from torch.utils import deterministic\n"
            "from classgap.config import load_config\n"
            "from classgap.train import trainer\n"
            "seen = []\n"
            "with trainer.numerics(0, 1, torch.device('cpu')):\n"
            "    seen.append(torch.are_deterministic_algorithms_enabled())\n"
            "    seen.append(torch.is_deterministic_algorithms_warn_only_enabled())\n"
            "    seen.append(deterministic.fill_uninitialized_memory)\n"
            "seen.append(torch.are_deterministic_algorithms_enabled())\n"
            "seen.append(deterministic.fill_uninitialized_memory)\n"
            "print(seen, 'torch._inductor.config' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["[True,", "True,", "False,", "False,", "True]", "False"]


def test_loss_decreases() -> None:
    result = train(tiny("train.epochs=3", "optim.lr=0.1"))
    losses = [row["train_loss"] for row in result.history]
    assert losses[0] > losses[1] > losses[2]
    assert result.test_accuracy > 0.8


def test_run_directory_and_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    cfg = tiny("train.checkpoint=true")
    result = train(cfg, out)
    for name in ("config.json", "provenance.json", "history.csv", "metrics.json", "val.npz",
                 "test.npz", "model.pt"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))
    assert Config.from_dict(json.loads((out / "config.json").read_text())) == cfg
    prov = json.loads((out / "provenance.json").read_text())
    assert {"seed", "git_hash", "python", "torch", "numpy", "classgap", "device", "precision",
            "hostname", "start_time"} <= set(prov)
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert tuple(rows[0]) == HISTORY_COLUMNS and len(rows) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(result.test_accuracy)
    test = read_predictions(out / "test.npz")
    assert test.classes == tuple("0123456789") and test.seed == 0
    np.testing.assert_array_equal(test.scores, result.test_logits.astype(np.float64))
    val = read_predictions(out / "val.npz")
    assert val.sample_id is not None and val.sample_id.max() < 1348
    model = create_model("mlp", num_classes=10, in_channels=1, image_size=(8, 8))
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert run(["audit", str(out / "test.npz"), "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["accuracy"]["estimate"] == \
        pytest.approx(result.test_accuracy)


def test_refuses_a_different_config(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), out)
    train(tiny(), out)  # same config: fine
    with pytest.raises(ConfigError, match=r"different config.*--overwrite"):
        train(tiny("train.seed=1"), out)
    train(tiny("train.seed=1"), out, overwrite=True)
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precisions_run(precision: str) -> None:
    result = train(tiny("model.name=cnn", f"train.precision={precision}"))
    assert result.test_logits.dtype == np.float32 and np.isfinite(result.test_logits).all()


def test_weight_decay_exempts_norm_and_bias() -> None:
    model = create_model("cnn", num_classes=10, in_channels=1, image_size=(8, 8))
    groups = param_groups(model, 5e-4)
    decay, no_decay = groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    norm_and_bias = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
                     for p in m.parameters()}
    norm_and_bias |= {id(p) for n, p in model.named_parameters() if n.endswith("bias")}
    assert {id(p) for p in no_decay["params"]} == norm_and_bias
    assert all(p.ndim > 1 for p in decay["params"])
    assert len(param_groups(model, 5e-4, exempt_norm_bias=False)) == 1
    opt = build_optimizer(model, load_config(overrides=["optim.name=adamw"]).optim)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[1]["weight_decay"] == 0


def _curve(name: str, total: int, spe: int, **kw: object) -> np.ndarray:
    return np.array([lr_factor(s, name=name, total_steps=total, steps_per_epoch=spe, **kw)
                     for s in range(total)])


def _torch_curve(make: object, total: int) -> np.ndarray:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make(opt)  # type: ignore[operator]
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs)


def test_cosine_with_warmup() -> None:
    curve = _curve("cosine", 100, 10, warmup_epochs=1)
    np.testing.assert_allclose(curve[:10], np.arange(1, 11) / 10)  # linear warm-up to 1
    assert np.all(np.diff(curve[10:]) < 0) and curve[-1] < 1e-3  # cosine down to ~0
    assert curve[10 + 45] == pytest.approx(0.5)  # half way through the cosine
    ref = _torch_curve(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=100), 100)
    np.testing.assert_allclose(_curve("cosine", 100, 10, warmup_epochs=0), ref, atol=1e-12)


@pytest.mark.parametrize("name", ["cosine", "step", "constant"])
def test_default_is_a_half_epoch_linear_warm_up(name: str) -> None:
    # None (the config's default): DEFAULT_WARMUP_EPOCHS, never the peak rate at step 0
    assert DEFAULT_WARMUP_EPOCHS == 0.5 and load_config().schedule.warmup_epochs is None
    curve = _curve(name, 100, 10)
    np.testing.assert_allclose(curve[:5], np.arange(1, 6) / 5)
    np.testing.assert_array_equal(curve, _curve(name, 100, 10, warmup_epochs=0.5))
    assert curve[5] == pytest.approx(1.0)


def test_step_milestones() -> None:
    curve = _curve("step", 60, 10, milestones=(2, 4), gamma=0.1, warmup_epochs=0)
    np.testing.assert_allclose(curve, np.repeat([1.0, 0.1, 0.01], 20))
    ref = _torch_curve(lambda o: torch.optim.lr_scheduler.MultiStepLR(
        o, milestones=[20, 40], gamma=0.1), 60)
    np.testing.assert_allclose(curve, ref, rtol=1e-12)


def test_onecycle_matches_torch() -> None:
    curve = _curve("onecycle", 100, 10)
    assert int(np.argmax(curve)) == 29 and curve.max() == pytest.approx(1.0)
    assert curve[0] == pytest.approx(1 / 25) and curve[-1] == pytest.approx(1 / 25 / 1e4)
    ref = _torch_curve(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=1.0, total_steps=100, cycle_momentum=False), 100)
    np.testing.assert_allclose(curve, ref, rtol=1e-9)


def test_constant_and_trainer_lr_history() -> None:
    assert np.all(_curve("constant", 20, 5, warmup_epochs=2)[10:] == 1.0)
    result = train(tiny("train.epochs=3", "schedule.name=step", "schedule.milestones=[1, 2]",
                        "optim.lr=0.1", "schedule.warmup_epochs=0"))
    np.testing.assert_allclose([r["lr"] for r in result.history], [0.1, 0.01, 0.001])
    # by default the first epoch starts warming up: its first step is at lr / (steps / 2)
    warm = train(tiny("train.epochs=3", "schedule.name=step", "schedule.milestones=[1, 2]",
                      "optim.lr=0.1"))
    assert warm.history[0]["lr"] < 0.1 and warm.history[1]["lr"] == pytest.approx(0.01)


def test_mixup_soft_targets_and_smoothing() -> None:
    result = train(tiny("aug.mixup=1", "optim.label_smoothing=0.1"))
    assert np.isfinite(result.history[0]["train_loss"])
    assert 0 <= result.history[0]["train_acc"] <= 1


def test_track_test_records_a_test_curve_without_changing_training() -> None:
    plain, tracked = train(tiny("train.epochs=2")), train(tiny("train.epochs=2",
                                                              "train.track_test=true"))
    assert "test_acc" not in plain.history[0]
    assert [0.0 <= row["test_acc"] <= 1.0 for row in tracked.history] == [True, True]
    assert tracked.history[-1]["test_acc"] == pytest.approx(tracked.test_accuracy)
    assert np.array_equal(plain.test_logits, tracked.test_logits)
