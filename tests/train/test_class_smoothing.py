"""Class-conditional label smoothing: one epsilon per class, checked against its formula."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from classgap.config import load_config
from classgap.errors import ConfigError, InputError
from classgap.train.criterion import build_criterion
from classgap.train.evaluate import loss_fn


def test_equal_values_are_the_scalar_loss() -> None:
    torch.manual_seed(0)
    z, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    for eps in (0.0, 0.1, 0.3):
        assert loss_fn(z, y, label_smoothing=[eps] * 5).item() == pytest.approx(
            F.cross_entropy(z, y, label_smoothing=eps).item(), rel=1e-6)
    p = torch.softmax(torch.randn(8, 5), 1)  # mixup-style probability targets
    assert loss_fn(z, p, label_smoothing=(0.2,) * 5).item() == pytest.approx(
        F.cross_entropy(z, p, label_smoothing=0.2).item(), rel=1e-6)


def test_hand_computed_two_samples() -> None:
    # Two classes, logits 0: log p = log 1/2 for both, so each sample's loss is log 2 whatever
    # its epsilon; with logits (2, 0) the smoothed target of class 0 is (1 - e/2, e/2).
    z = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([0, 1])
    eps = (0.4, 0.0)
    logp = [2 - math.log(math.exp(2) + 1), -math.log(math.exp(2) + 1)]
    first = -((1 - 0.2) * logp[0] + 0.2 * logp[1])  # class 0: eps 0.4 -> target (0.8, 0.2)
    second = -logp[1]  # class 1: eps 0 -> plain cross-entropy
    assert loss_fn(z, y, label_smoothing=eps).item() == pytest.approx((first + second) / 2)


def test_only_the_smoothed_class_changes() -> None:
    torch.manual_seed(1)
    z, y = torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    per = F.cross_entropy(z, y, reduction="none")
    got = loss_fn(z, y, label_smoothing=[0.0, 0.0, 0.5])
    logp = F.log_softmax(z, 1)
    smooth_2 = -(0.5 * logp[4:, 2] + 0.5 * logp[4:].mean(1))
    want = torch.cat([per[:4], smooth_2]).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_config_and_criterion_checks() -> None:
    cfg = load_config(overrides=["optim.label_smoothing=[0.1,0,0.3]"])
    assert cfg.optim.label_smoothing == (0.1, 0.0, 0.3)
    with pytest.raises(ConfigError, match=r"'optim.label_smoothing' must be in \[0, 1\)"):
        load_config(overrides=["optim.label_smoothing=[0.1,1.5]"])
    with pytest.raises(ConfigError, match="a per-class value is for plain cross-entropy"):
        load_config(overrides=["optim.label_smoothing=[0.1,0.2]", "loss.name=focal"])
    with pytest.raises(ConfigError, match=r"one value per class \(4\); got 3 values"):
        build_criterion(cfg, class_counts=[5, 5, 5, 5])
    with pytest.raises(InputError, match="one value per class"):
        loss_fn(torch.zeros(2, 4), torch.tensor([0, 1]), label_smoothing=[0.1, 0.2])



def test_a_wrong_length_vector_fails_before_the_run_directory_appears(tmp_path) -> None:
    from classgap.train import train

    cfg = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                 "optim.label_smoothing=[0.1,0.2]", "train.progress=false"])
    with pytest.raises(ConfigError, match=r"one value per class \(10\); got 2 values"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing half-written
