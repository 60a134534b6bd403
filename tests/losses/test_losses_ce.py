"""Cross-entropy variants, focal loss, class-balanced weights and DRW, against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from classgap.errors import ConfigError, InputError
from classgap.losses import (
    DRW,
    ClassBalancedLoss,
    CrossEntropyLoss,
    FocalLoss,
    class_balanced_weights,
    create_loss,
    focal_loss,
)


def _log_softmax(z: list[float]) -> list[float]:
    lse = math.log(sum(math.exp(v) for v in z))
    return [v - lse for v in z]


def test_ce_hand_value():
    z = [1.0, 2.0, 0.0]
    expected = -(2.0 - math.log(math.exp(1.0) + math.exp(2.0) + math.exp(0.0)))
    got = create_loss("ce")(torch.tensor([z]), torch.tensor([1]))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_hand_value():
    z, y, eps, k = [1.0, 2.0, 0.0], 0, 0.1, 3
    logp = _log_softmax(z)
    # target (1-ε)·onehot + ε/K
    expected = -((1 - eps) * logp[y] + eps / k * sum(logp))
    got = CrossEntropyLoss(label_smoothing=eps)(torch.tensor([z]), torch.tensor([y]))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_weighted_ce_is_the_weighted_mean():
    z = [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]]
    y = [0, 2]
    w = [2.0, 1.0, 0.25]
    ell = [-_log_softmax(z[i])[y[i]] for i in range(2)]
    expected = (w[0] * ell[0] + w[2] * ell[1]) / (w[0] + w[2])
    logits, targets = torch.tensor(z), torch.tensor(y)
    got = create_loss("ce", num_classes=3, weight=w)(logits, targets)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert float(F.cross_entropy(logits, targets, weight=torch.tensor(w))) == pytest.approx(
        expected, rel=1e-6)


def test_focal_hand_value():
    z, y, gamma = [0.3, 1.5, -0.2], 1, 2.0
    p = math.exp(z[1]) / sum(math.exp(v) for v in z)
    expected = (1 - p) ** gamma * -math.log(p)
    got = create_loss("focal", gamma=gamma)(torch.tensor([z]), torch.tensor([y]))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_focal_weighted_mean_and_gamma_half_gradient_is_finite():
    z = [[0.3, 1.5, -0.2], [2.0, 0.0, 0.0]]
    y, w, gamma = [1, 0], [1.0, 3.0, 1.0], 1.0
    terms = []
    for i in range(2):
        p = math.exp(z[i][y[i]]) / sum(math.exp(v) for v in z[i])
        terms.append((1 - p) ** gamma * -math.log(p))
    expected = (w[1] * terms[0] + w[0] * terms[1]) / (w[1] + w[0])
    got = FocalLoss(gamma=gamma, weight=w)(torch.tensor(z), torch.tensor(y))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # a sample fitted exactly (p_y = 1 in float32) must not give a NaN gradient for γ < 1
    logits = torch.tensor([[60.0, -60.0]], requires_grad=True)
    focal_loss(logits, torch.tensor([0]), gamma=0.5).backward()
    assert torch.isfinite(logits.grad).all()


def test_class_balanced_weights_hand_values_sum_to_k():
    counts, beta = [100, 10, 1], 0.99
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    expected = [3 * r / sum(raw) for r in raw]
    w = class_balanced_weights(counts, beta)
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx(expected, rel=1e-6)
    assert float(w.sum()) == pytest.approx(3.0, rel=1e-6)
    assert w[0] < w[1] < w[2]  # rarer classes weigh more


def test_class_balanced_weights_limits():
    assert class_balanced_weights([100, 10, 1], 0.0).tolist() == [1.0, 1.0, 1.0]
    # β → 1: inverse frequency, normalised to sum K
    inv = [1 / 100, 1 / 10, 1 / 1]
    assert class_balanced_weights([100, 10, 1], 0.999999).tolist() == pytest.approx(
        [3 * v / sum(inv) for v in inv], rel=1e-3)


def test_class_balanced_loss_is_ce_with_those_weights():
    counts = [100, 10, 1]
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(9, 3, generator=g), torch.tensor([0, 1, 2] * 3)
    loss = ClassBalancedLoss(counts, beta=0.99)
    expected = F.cross_entropy(logits, targets, weight=class_balanced_weights(counts, 0.99))
    torch.testing.assert_close(loss(logits, targets), expected)


def test_drw_weights_before_and_after_start_epoch():
    counts = [5000, 500, 50]
    drw = DRW(counts, start_epoch=160)
    beta = 0.9999  # the reference's β once re-weighting starts
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    cb = [3 * r / sum(raw) for r in raw]
    for epoch in (0, 1, 159):
        assert drw.weights_at(epoch).tolist() == [1.0, 1.0, 1.0]
        assert not drw.is_active(epoch)
    for epoch in (160, 199):
        assert drw.weights_at(epoch).tolist() == pytest.approx(cb, rel=1e-6)
        assert drw.is_active(epoch)


def test_drw_bad_arguments():
    with pytest.raises(ConfigError, match=r"'start_epoch' must be an integer >= 0; got -1"):
        DRW([10, 1], start_epoch=-1)
    with pytest.raises(ConfigError, match=r"'beta' must be a finite number in \[0, 1\); got 1"):
        DRW([10, 1], start_epoch=1, beta=1)
    with pytest.raises(InputError, match=r"'class_counts' must hold integers > 0"):
        DRW([10, 0], start_epoch=1)
    with pytest.raises(InputError, match=r"'epoch' must be an integer >= 0; got -3"):
        DRW([10, 1], start_epoch=1).weights_at(-3)
