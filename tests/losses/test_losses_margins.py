"""LDAM, VS, logit adjustment, balanced softmax and post-hoc adjustment, by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from classgap.errors import InputError
from classgap.losses import (
    LDAMLoss,
    create_loss,
    ldam_loss,
    ldam_margins,
    posthoc_adjust,
)


def _ce(z: list[float], y: int) -> float:
    return -(z[y] - math.log(sum(math.exp(v) for v in z)))


def _random(seed: int, n: int = 16, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 2, torch.randint(0, k, (n,), generator=g)


def test_ldam_margins_follow_n_to_the_minus_quarter_with_max_max_m():
    counts = [625, 81, 16, 1]
    m = ldam_margins(counts, max_m=0.5)
    # n^(-1/4) = 1/5, 1/3, 1/2, 1; scaled so the largest (n = 1) is 0.5
    assert m.tolist() == pytest.approx([0.1, 0.5 / 3, 0.25, 0.5], rel=1e-6)
    assert float(m.max()) == pytest.approx(0.5)
    m3 = ldam_margins([1000, 10], max_m=0.3)
    assert m3.tolist() == pytest.approx([0.3 * (10 / 1000) ** 0.25, 0.3], rel=1e-6)


def test_ldam_hand_value():
    counts, s = [16, 1], 30.0
    loss = LDAMLoss(counts, max_m=0.5, s=s)  # margins 0.25 and 0.5
    z = [[0.5, 0.2], [0.5, 0.2]]
    y = [0, 1]
    # sample 0: true class 0 loses 0.25; sample 1: true class 1 loses 0.5; then × s
    ell0 = _ce([s * (0.5 - 0.25), s * 0.2], 0)
    ell1 = _ce([s * 0.5, s * (0.2 - 0.5)], 1)
    got = loss(torch.tensor(z), torch.tensor(y))
    assert float(got) == pytest.approx((ell0 + ell1) / 2, rel=1e-6)


def test_ldam_zero_margin_unit_scale_is_exactly_ce():
    logits, targets = _random(0)
    got = ldam_loss(logits, targets, torch.zeros(5), s=1.0)
    torch.testing.assert_close(got, F.cross_entropy(logits, targets), rtol=0, atol=0)


def test_vs_hand_value():
    counts, gamma, tau = [8, 2], 0.5, 1.0
    # Δ = (n/n_max)^γ = [1, 0.5]; ι = τ log π = [log 0.8, log 0.2]
    z, y = [1.0, 2.0], 1
    adjusted = [1.0 * z[0] + tau * math.log(0.8), 0.5 * z[1] + tau * math.log(0.2)]
    got = create_loss("vs", class_counts=counts, gamma=gamma, tau=tau)(
        torch.tensor([z]), torch.tensor([y]))
    assert float(got) == pytest.approx(_ce(adjusted, y), rel=1e-6)


def test_vs_with_gamma_and_tau_zero_is_ce():
    logits, targets = _random(1)
    got = create_loss("vs", class_counts=[100, 40, 20, 5, 1], gamma=0.0, tau=0.0)(logits, targets)
    torch.testing.assert_close(got, F.cross_entropy(logits, targets))


def test_logit_adjusted_hand_value_and_ce_of_shifted_logits():
    counts, tau = [3, 1], 0.7
    z, y = [0.4, 0.1], 1
    adjusted = [z[0] + tau * math.log(0.75), z[1] + tau * math.log(0.25)]
    loss = create_loss("logit_adjusted", class_counts=counts, tau=tau)
    assert float(loss(torch.tensor([z]), torch.tensor([y]))) == pytest.approx(
        _ce(adjusted, y), rel=1e-6)
    counts5 = [100, 40, 20, 5, 1]
    logits, targets = _random(2)
    log_pi = torch.log(torch.tensor(counts5, dtype=torch.float32) / sum(counts5))
    loss5 = create_loss("logit_adjusted", class_counts=counts5, tau=tau)
    torch.testing.assert_close(loss5(logits, targets),
                               F.cross_entropy(logits + tau * log_pi, targets))


def test_balanced_softmax_equals_logit_adjusted_at_tau_one():
    counts = [100, 40, 20, 5, 1]
    logits, targets = _random(3)
    bs = create_loss("balanced_softmax", class_counts=counts)(logits, targets)
    la = create_loss("logit_adjusted", class_counts=counts, tau=1.0)(logits, targets)
    torch.testing.assert_close(bs, la)
    z, y = [0.2, 0.9], 0  # and by hand: CE(z + log n)
    got = create_loss("balanced_softmax", class_counts=[9, 1])(torch.tensor([z]),
                                                               torch.tensor([y]))
    assert float(got) == pytest.approx(_ce([z[0] + math.log(9), z[1] + math.log(1)], y),
                                       rel=1e-6)


def test_posthoc_adjust_shifts_the_argmax_to_the_rare_class():
    z = torch.tensor([[2.0, 1.0]])
    counts = [90, 10]
    assert int(z.argmax(1)) == 0
    adjusted = posthoc_adjust(z, counts)
    assert adjusted[0].tolist() == pytest.approx([2.0 - math.log(0.9), 1.0 - math.log(0.1)],
                                                 rel=1e-6)
    assert int(adjusted.argmax(1)) == 1  # log(0.9/0.1) ≈ 2.20 > the 1.0 logit gap
    # a weaker τ does not cross the gap: 0.4 · 2.20 = 0.88 < 1
    assert int(posthoc_adjust(z, counts, tau=0.4).argmax(1)) == 0
    assert torch.equal(posthoc_adjust(z, counts, tau=0.0), z)


def test_posthoc_adjust_checks_counts_against_logits():
    with pytest.raises(InputError, match=r"'class_counts' must have one entry per class \(2\)"):
        posthoc_adjust(torch.zeros(3, 2), [1, 2, 3])
