"""MR²: statistics, EMA, margins, and the vectorised loss against a per-class loop reference."""

from __future__ import annotations

import math

import pytest
import torch

from classgap.losses import MR2Loss, create_loss, mr2_margins


def _norm_sq(x: torch.Tensor, p: float) -> float:
    """|x|_p² written out: (Σ |x_i|^p)^(2/p)."""
    return float(sum(abs(float(v)) ** p for v in x) ** (2.0 / p))


class LoopMR2:
    """A straightforward reference: Python loops over classes, samples and pairs, float64."""

    def __init__(self, k: int, *, c_bar: float, lam: float, ema: float, p: float,
                 temperature: float | None) -> None:
        self.k, self.c_bar, self.lam, self.ema, self.p, self.t = k, c_bar, lam, ema, p, temperature
        self.m, self.v, self.seen = [0.0] * k, [0.0] * k, [False] * k

    def margins(self) -> list[float]:
        a = [(self.m[c] + self.v[c]) ** (1 / 3) for c in range(self.k)]
        seen_a = [a[c] for c in range(self.k) if self.seen[c]]
        mean_a = sum(seen_a) / len(seen_a) if seen_a else 0.0
        return [self.c_bar * a[c] / mean_a if self.seen[c] else self.c_bar
                for c in range(self.k)]

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor,
                 feats: torch.Tensor) -> float:
        n, d = feats.shape
        y = targets.tolist()
        for c in range(self.k):  # 1. statistics, EMA (first sighting initialises)
            rows = [i for i in range(n) if y[i] == c]
            if not rows:
                continue
            mu = feats[rows].mean(0)
            m = _norm_sq(mu, self.p)
            v = sum(_norm_sq(feats[i] - mu, self.p) for i in rows) / len(rows)
            if self.seen[c]:
                self.m[c] = self.ema * self.m[c] + (1 - self.ema) * m
                self.v[c] = self.ema * self.v[c] + (1 - self.ema) * v
            else:
                self.m[c], self.v[c], self.seen[c] = m, v, True
        gamma = self.margins()  # 2. margins
        ce = 0.0  # 3. logit term
        for i in range(n):
            z = [float(v) / gamma[y[i]] for v in logits[i]]
            ce += -(z[y[i]] - math.log(sum(math.exp(v) for v in z)))
        ce /= n
        s_bar = sum(self.v[c] for c in range(self.k) if self.seen[c]) / sum(self.seen)
        temp = self.t if self.t is not None else 10.0 * d
        terms = []  # 4. representation term
        for i in range(n):
            partners = [j for j in range(n) if j != i and y[j] == y[i]]
            if partners:
                s = sum(math.exp((float(((feats[i] - feats[j]) ** 2).sum()) - 2 * s_bar) / temp)
                        for j in partners)
                terms.append(math.log(1 + s))
        rep = sum(terms) / len(terms) if terms else 0.0
        return ce + self.lam * rep


@pytest.mark.parametrize(("p", "temperature", "lam"), [(2.0, None, 0.1), (5.0, 3.0, 0.5),
                                                       (2.0, 1.5, 1.0)])
def test_vectorised_mr2_matches_the_loop_reference(p, temperature, lam):
    k, d, n = 6, 5, 30
    g = torch.Generator().manual_seed(int(p * 10 + lam * 100))
    centers = torch.randn(k, d, generator=g, dtype=torch.float64) * 2
    spreads = torch.linspace(0.2, 1.5, k, dtype=torch.float64)
    params = {"c_bar": 1.3, "lam": lam, "ema": 0.8, "p": p, "temperature": temperature}
    module = create_loss("mr2", num_classes=k, **params)
    loop = LoopMR2(k, **params)
    for step in range(3):
        targets = torch.randint(0, k - 1, (n,), generator=g)  # class 5 never seen
        targets[targets == 4] = 3
        targets[step] = 4  # class 4: a single sample
        feats = centers[targets] + spreads[targets, None] * torch.randn(n, d, generator=g,
                                                                         dtype=torch.float64)
        logits = torch.randn(n, k, generator=g, dtype=torch.float64) * 3
        got = module(logits, targets, features=feats)
        expected = loop(logits, targets, feats)
        assert float(got) == pytest.approx(expected, rel=1e-5)
        assert module.margins.tolist() == pytest.approx(loop.margins(), rel=1e-5)
        assert float(module.margins[5]) == pytest.approx(1.3)  # unseen → c̄


def _two_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    f1 = torch.tensor([[1.0, 1.0], [3.0, 3.0], [0.0, 1.0]])
    y1 = torch.tensor([0, 0, 1])
    f2 = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 3.0], [0.0, 1.0]])
    y2 = torch.tensor([1, 1, 2, 2])
    return [(f1, y1), (f2, y2)]


def test_ema_two_steps_first_sighting_initialises_p2():
    loss = MR2Loss(3, ema=0.9, p=2.0, lam=0.0)
    (f1, y1), (f2, y2) = _two_batches()
    loss(torch.zeros(3, 3), y1, features=f1)
    # class 0: μ = (2, 2), M = 8, V = mean(|(-1,-1)|², |(1,1)|²) = 2; class 1: μ = (0, 1), M = 1
    assert loss.stat_m.tolist() == pytest.approx([8.0, 1.0, 0.0])
    assert loss.stat_v.tolist() == pytest.approx([2.0, 0.0, 0.0])
    assert loss.seen.tolist() == [True, True, False]
    a0 = 10 ** (1 / 3)  # (M + V)^(1/3) of class 0; class 1 has a = 1
    assert loss.margins.tolist() == pytest.approx([2 * a0 / (a0 + 1), 2 / (a0 + 1), 1.0],
                                                  rel=1e-6)
    loss(torch.zeros(4, 3), y2, features=f2)
    # class 1 again: batch M = |(1, 0)|² = 1, V = 1 → 0.9·old + 0.1·new; class 2 first seen:
    # μ = (0, 2), M = 4, V = 1; class 0 absent, unchanged
    assert loss.stat_m.tolist() == pytest.approx([8.0, 0.9 * 1 + 0.1 * 1, 4.0])
    assert loss.stat_v.tolist() == pytest.approx([2.0, 0.9 * 0 + 0.1 * 1, 1.0])
    assert loss.seen.tolist() == [True, True, True]


def test_statistics_with_p5():
    loss = MR2Loss(3, p=5.0, lam=0.0)
    (f1, y1), _ = _two_batches()
    loss(torch.zeros(3, 3), y1, features=f1)
    # class 0: |(2, 2)|_5² = (2·2⁵)^(2/5) = 64^0.4; deviations (±1, ±1): (1 + 1)^(2/5) = 2^0.4
    assert loss.stat_m.tolist() == pytest.approx([64 ** 0.4, 1.0, 0.0], rel=1e-6)
    assert loss.stat_v.tolist() == pytest.approx([2 ** 0.4, 0.0, 0.0], rel=1e-6)
    assert MR2Loss(3).p == 2.0  # the paper's p is the default


def test_margins_have_mean_c_bar_and_grow_with_spread():
    m = torch.ones(5)
    v = torch.tensor([0.0, 0.5, 1.0, 2.0, 4.0])
    gamma = mr2_margins(m, v, torch.ones(5, dtype=torch.bool), c_bar=1.5)
    assert float(gamma.mean()) == pytest.approx(1.5, rel=1e-6)
    assert torch.all(gamma[1:] > gamma[:-1])
    # with unseen classes: they sit at c̄, and the mean over all K is still c̄
    seen = torch.tensor([True, True, False, True, False])
    gamma = mr2_margins(m, v, seen, c_bar=1.5)
    assert gamma[2] == pytest.approx(1.5) and gamma[4] == pytest.approx(1.5)
    assert float(gamma.mean()) == pytest.approx(1.5, rel=1e-6)


def test_module_margins_grow_with_a_class_spread():
    """Two classes with equal |μ| and different spread: the wider one gets the larger margin."""
    f = torch.tensor([[1.1, 0.0], [0.9, 0.0], [0.0, 3.0], [0.0, -1.0]])  # |μ| = 1 for both
    y = torch.tensor([0, 0, 1, 1])
    loss = MR2Loss(2, c_bar=2.0)
    loss(torch.zeros(4, 2), y, features=f)
    gamma = loss.margins
    assert float(gamma[1]) > float(gamma[0])
    assert float(gamma.mean()) == pytest.approx(2.0, rel=1e-6)


def test_unseen_classes_get_c_bar():
    loss = MR2Loss(4, c_bar=0.7)
    assert loss.margins.tolist() == pytest.approx([0.7] * 4)
    (f1, y1), _ = _two_batches()
    loss(torch.zeros(3, 4), y1, features=f1)
    assert loss.margins[2:].tolist() == pytest.approx([0.7, 0.7])
    assert loss.margins[:2].tolist() != pytest.approx([0.7, 0.7])


def test_gradients_are_finite_with_duplicates_and_lone_samples():
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(8, 3, generator=g)
    feats[1] = feats[0]  # identical pair: distance exactly 0
    feats = feats.requires_grad_(True)
    logits = torch.randn(8, 4, generator=g, requires_grad=True)
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])  # class 2 is alone
    for p in (2.0, 5.0):
        loss = MR2Loss(4, p=p, lam=1.0, temperature=0.5)
        out = loss(logits, targets, features=feats)
        feats.grad = logits.grad = None
        out.backward()
        assert torch.isfinite(out)
        assert torch.isfinite(feats.grad).all() and torch.isfinite(logits.grad).all()
        assert feats.grad.abs().sum() > 0  # the representation term reaches the features
    # a batch where no class has two samples: the representation term is 0, still differentiable
    out = MR2Loss(4, lam=1.0)(logits[:4], torch.tensor([0, 1, 2, 3]), features=feats[:4])
    out.backward()
    assert torch.isfinite(out)


def test_reset_and_reset_every_epoch():
    (f1, y1), _ = _two_batches()
    keep = MR2Loss(3)
    keep(torch.zeros(3, 3), y1, features=f1)
    keep.on_epoch_start(1)
    assert keep.seen.any()  # default: statistics persist across epochs
    keep.reset()
    assert not keep.seen.any() and keep.margins.tolist() == pytest.approx([1.0] * 3)
    fresh = MR2Loss(3, reset_every_epoch=True)
    fresh(torch.zeros(3, 3), y1, features=f1)
    fresh.on_epoch_start(1)
    assert not fresh.seen.any() and float(fresh.stat_m.abs().sum()) == 0.0


def test_eval_mode_freezes_statistics_and_default_temperature_is_10d():
    (f1, y1), (f2, y2) = _two_batches()
    loss = MR2Loss(3)
    loss(torch.zeros(3, 3), y1, features=f1)
    before = loss.stat_m.clone()
    loss.eval()
    loss(torch.zeros(4, 3), y2, features=f2)
    assert torch.equal(loss.stat_m, before) and not bool(loss.seen[2])
    explicit = MR2Loss(3, temperature=20.0)  # D = 2
    explicit.load_state_dict(loss.state_dict())
    explicit.eval()
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss(z, y2, features=f2), explicit(z, y2, features=f2))
