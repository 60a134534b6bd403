"""Shared helpers for the audit statistics tests: simulated predictions with known accuracy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def _simulate(n: int, k: int, seed: int, acc: float | np.ndarray = 0.7,
              ) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` uniform over ``k`` classes; each prediction right with prob. ``acc[y]``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = np.broadcast_to(np.asarray(acc, dtype=float), (k,))[y]
    wrong = (y + rng.integers(1, max(k, 2), n)) % k if k > 1 else y
    return y, np.where(rng.random(n) < p, y, wrong)


@pytest.fixture
def simulate() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return _simulate


class CountingGenerator(np.random.Generator):
    """A Generator that counts its calls, to check that draws are vectorised (one call)."""

    def __init__(self, seed: int) -> None:
        super().__init__(np.random.PCG64(seed))
        self.calls: dict[str, int] = {}

    def binomial(self, *args, **kwargs):  # type: ignore[override]
        self.calls["binomial"] = self.calls.get("binomial", 0) + 1
        return super().binomial(*args, **kwargs)

    def random(self, *args, **kwargs):  # type: ignore[override]
        self.calls["random"] = self.calls.get("random", 0) + 1
        return super().random(*args, **kwargs)

    def multinomial(self, *args, **kwargs):  # type: ignore[override]
        self.calls["multinomial"] = self.calls.get("multinomial", 0) + 1
        return super().multinomial(*args, **kwargs)


@pytest.fixture
def counting_rng() -> CountingGenerator:
    return CountingGenerator(0)
