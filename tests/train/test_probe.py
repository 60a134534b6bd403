"""Linear probe and feature extraction for the transfer step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classgap.errors import InputError
from classgap.train.probe import extract_features, linear_probe


def _features(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """3 classes in 6 dimensions: classes 0/1 differ along dim 0, class 2 only along dim 5.

    Dim 5 has a tiny scale (1e-3), so only a probe that standardises features finds class 2
    with a reasonable C; the other dimensions are noise of unit scale.
    """
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    x = rng.standard_normal((len(y), 6))
    x[:, 0] += np.where(y == 1, 4.0, 0.0)
    x[:, 5] = 1e-3 * (rng.standard_normal(len(y)) * 0.2 + np.where(y == 2, 2.0, 0.0))
    return x, y


def test_probe_separates_and_is_deterministic() -> None:
    xtr, ytr = _features(200, 0)
    xte, yte = _features(100, 1)
    logits = linear_probe(xtr, ytr, xte, yte, random_state=0)
    assert logits.shape == (300, 3) and logits.dtype == np.float64
    pred = logits.argmax(1)
    assert (pred == yte).mean() > 0.95
    assert (pred[yte == 2] == 2).mean() > 0.95  # the class separable along dim 5 only
    again = linear_probe(xtr, ytr, xte, yte, random_state=0)
    np.testing.assert_array_equal(logits, again)


def test_probe_binary_gives_two_logit_columns() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(100) % 2
    x = rng.standard_normal((100, 2)) + 3.0 * y[:, None]
    logits = linear_probe(x, y, x, y, random_state=0)
    assert logits.shape == (100, 2)
    assert (logits.argmax(1) == y).mean() > 0.9


def test_probe_validates_inputs() -> None:
    xtr, ytr = _features(10, 0)
    with pytest.raises(InputError, match="'features_test' must be 2-D"):
        linear_probe(xtr, ytr, xtr[:, :3], ytr, random_state=0)
    with pytest.raises(InputError, match="'y_train' must hold every class"):
        linear_probe(xtr[:21], ytr[:21], xtr, ytr, random_state=0)
    with pytest.raises(InputError, match="'y_test' must hold integers in"):
        linear_probe(xtr, ytr, xtr, ytr + 1, random_state=0)


class _Net(torch.nn.Module):
    """Features = flattened normalised pixels; logits = their sum (a stand-in model)."""

    def forward(self, x: torch.Tensor, return_features: bool = False):  # type: ignore[no-untyped-def]
        features = x.flatten(1)
        logits = features.sum(1, keepdim=True)
        return (logits, features) if return_features else logits


def test_extract_features_normalises_in_eval_mode() -> None:
    images = np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2) * 10
    net = _Net().train()
    out = extract_features(net, images, mean=[0.5], std=[0.25], batch_size=1)
    expected = (images.reshape(2, -1) / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32
    assert net.training  # mode restored
    with pytest.raises(InputError, match="'images_uint8' must be a uint8 array"):
        extract_features(net, images.astype(np.float32), [0.5], [0.25])
