"""BCa machinery shared by the bootstrap intervals: acceleration and quantiles at given levels.

Pure array arithmetic on replicates and weighted jackknife values (no validation, no
sampling); :func:`classgap.audit.intervals.bootstrap_interval` is the public entry point.
"""

from __future__ import annotations

import numpy as np

__all__ = ["acceleration"]


def _quantiles_at(sorted_reps: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per-column quantile of column-sorted ``(B, M)`` replicates at ``levels`` (M,).

    Linear interpolation, as ``np.quantile``'s default (and ``scipy.stats.bootstrap``).
    """
    b = sorted_reps.shape[0]
    pos = np.clip(levels, 0.0, 1.0) * (b - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, b - 1)
    frac = pos - lo
    cols = np.arange(sorted_reps.shape[1])
    a, z = sorted_reps[lo, cols], sorted_reps[hi, cols]
    with np.errstate(invalid="ignore"):
        return a + (z - a) * frac


def acceleration(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """BCa acceleration ``a = sum w d^3 / (6 (sum w d^2)^(3/2))`` from weighted jackknife values.

    ``d`` = weighted jackknife mean - value. Rows with a NaN value get zero weight; a column
    whose jackknife values are all equal gets ``a = 0``.

    Parameters
    ----------
    values : (J, M)
    weights : (J,) or (J, M)
    """
    weights = np.asarray(weights, dtype=np.float64)
    w = np.broadcast_to(weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim)),
                        values.shape)
    ok = np.isfinite(values) & (w > 0)
    w = np.where(ok, w, 0.0)
    v = np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * v).sum(axis=0) / w.sum(axis=0)
        d = np.where(ok, mean - v, 0.0)
        num = (w * d**3).sum(axis=0)
        den = 6.0 * (w * d**2).sum(axis=0) ** 1.5
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
