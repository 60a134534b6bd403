"""Worst-class reweighting rules (CLAM, tilted CE, GGF, AP*) on hand-computed vectors, and the
polynomially weighted loss against its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classgap.errors import InputError
from classgap.losses import (
    REWEIGHT_METHODS,
    class_weights_update,
    create_loss,
    initial_state,
    poly_loss,
)


def test_clam_by_hand() -> None:
    # d = exp(-acc) / mean(exp(-acc)); w <- clip(w d, 0.5, 2); w <- w / mean(w).
    acc = np.array([0.9, 0.6, 0.3])
    d = np.exp(-acc) / np.exp(-acc).mean()
    w, state = class_weights_update("clam", [1.0, 1.0, 1.0], train_acc=acc)
    np.testing.assert_allclose(w, d / d.mean())
    assert state is None
    # From uneven weights the clip binds before the renormalisation.
    w2, _ = class_weights_update("clam", [0.4, 1.0, 1.9], train_acc=acc)
    raw = np.clip(np.array([0.4, 1.0, 1.9]) * d, 0.5, 2.0)
    np.testing.assert_allclose(w2, raw / raw.mean())
    assert raw[0] == 0.5 and raw[2] == 2.0


def test_tilted_by_hand() -> None:
    loss = np.array([0.2, 1.0, 3.0])
    t = 3 * np.exp(loss) / np.exp(loss).sum()
    w, _ = class_weights_update("tilted", [1.0, 2.0, 0.5], train_loss=loss)
    old = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(w, (0.5 * old + 0.5 * t) / (0.5 * old + 0.5 * t).mean())


def test_ggf_by_hand() -> None:
    # Worst loss first: discount^rank floored at min_weight, then mean 1.
    loss = np.array([0.5, 2.0, 1.0, 0.1])
    w, _ = class_weights_update("ggf", np.ones(4), train_loss=loss, discount=0.5,
                                min_weight=0.2)
    per_rank = np.array([1.0, 0.5, 0.25, 0.2])
    want = np.empty(4)
    want[[1, 2, 0, 3]] = per_rank / per_rank.mean()
    np.testing.assert_allclose(w, want)


def test_apstar_by_hand_and_its_counter() -> None:
    # K = 10 classes: the worst 10% is one class. Step 1 from w = 1, k = 1:
    # worst: 0.5 * 1 + 0.5 * 10 / 1 = 5.5 -> clip 2; others 0.5; mean 0.65.
    loss = np.linspace(1.0, 2.0, 10)
    w, state = class_weights_update("apstar", np.ones(10), train_loss=loss)
    np.testing.assert_allclose(w[9], 2.0 / 0.65)
    np.testing.assert_allclose(w[:9], 0.5 / 0.65)
    assert state == {"k": 1, "best_loss": 2.0}  # 2.0 < 10: a new best, k back to k_min
    # No new best: k grows, and the boost is divided by it.
    w2, state2 = class_weights_update("apstar", w, train_loss=loss, state=state)
    assert state2 == {"k": 2, "best_loss": 2.0}
    raw = 0.5 * w + 0.5 * np.r_[np.zeros(9), 10.0] / 1  # the update uses the old k (1)
    raw = np.clip(raw, 0.5, 2.0)
    np.testing.assert_allclose(w2, raw / raw.mean())
    # A new best resets k to k_min.
    _, state3 = class_weights_update("apstar", w2, train_loss=loss - 0.5, state=state2)
    assert state3 == {"k": 1, "best_loss": 1.5}
    assert initial_state("apstar") == {"k": 1, "best_loss": 10.0}


@pytest.mark.parametrize("method", REWEIGHT_METHODS)
def test_neutral_statistics_keep_weights_at_one(method: str) -> None:
    stats = {"train_acc": np.full(7, 0.8)} if method == "clam" else \
        {"train_loss": np.full(7, 0.4)}
    w, state = np.ones(7), None
    for _ in range(3):
        w, state = class_weights_update(method, w, state=state, **stats)
    np.testing.assert_allclose(w, 1.0)


@pytest.mark.parametrize("method", REWEIGHT_METHODS)
def test_weights_keep_mean_one_over_many_epochs(method: str) -> None:
    rng = np.random.default_rng(0)
    w, state = np.ones(20), None
    for _ in range(30):
        stats = {"train_acc": rng.uniform(0.3, 1.0, 20)} if method == "clam" else \
            {"train_loss": rng.uniform(0.05, 2.0, 20)}
        w, state = class_weights_update(method, w, state=state, **stats)
        assert w.mean() == pytest.approx(1.0)
        assert (w > 0).all()
        if method == "clam":  # the clip binds before the renormalisation: bounded ratio
            assert w.max() / w.min() <= 4.0 + 1e-9


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "clamp", "weights": [1, 1], "train_acc": [0.5, 0.5]}, "'method'"),
    ({"method": "clam", "weights": [1, 1, 1], "train_acc": [0.5, 0.5]}, "'train_acc'"),
    ({"method": "clam", "weights": [1, 1], "train_acc": [0.5, float("nan")]}, "finite"),
    ({"method": "clam", "weights": [1, 1], "train_acc": [0.5, 1.5]}, r"\[0, 1\]"),
    ({"method": "tilted", "weights": [1, 1]}, "'train_loss'"),
    ({"method": "ggf", "weights": [1, -1], "train_loss": [1, 2]}, "'weights'"),
    ({"method": "ggf", "weights": [1, 1], "train_loss": [1, 2], "discunt": 0.9}, "'discunt'"),
    ({"method": "apstar", "weights": [1, 1], "train_loss": [1, 2], "state": {"k": 0}},
     "'state'"),
])
def test_bad_input_is_one_clear_error(kwargs: dict, match: str) -> None:
    method, weights = kwargs.pop("method"), kwargs.pop("weights")
    with pytest.raises(InputError, match=match):
        class_weights_update(method, weights, **kwargs)


def test_poly_loss_formula_and_limits() -> None:
    torch.manual_seed(0)
    z, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 5, (16,))
    p = F.softmax(z, dim=1)[torch.arange(16), y]
    want = (-(torch.log(p)) * (0.8 + (1 - p) ** 2)).mean()
    torch.testing.assert_close(poly_loss(z, y), want)
    # θ = 0 is focal with the same γ; θ = 1 with a huge γ is cross-entropy.
    focal = create_loss("focal", num_classes=5, gamma=2.0)
    torch.testing.assert_close(poly_loss(z, y, theta=0.0, gamma=2.0), focal(z, y))
    fitted = z.clone()
    fitted[torch.arange(16), y] += 4.0  # p_y > 0.5, so (1 - p_y)^200 vanishes
    torch.testing.assert_close(poly_loss(fitted, y, theta=1.0, gamma=200.0),
                               F.cross_entropy(fitted, y), atol=1e-12, rtol=0)
    module = create_loss("poly", num_classes=5, theta=0.3, gamma=1.0)
    assert math.isclose(float(module(z, y)), float(poly_loss(z, y, theta=0.3, gamma=1.0)))
