"""Multiple-comparison adjustment of per-class p-values (K classes = K tests)."""

from __future__ import annotations

from typing import Any

import numpy as np

from classgap._validation import check_choice, fail

__all__ = ["CORRECTIONS", "adjust_pvalues"]

CORRECTIONS = ("bh", "holm", "none")


def adjust_pvalues(p: Any, method: str = "bh") -> np.ndarray:
    """Adjusted p-values (q-values) across classes.

    ``"bh"``: Benjamini-Hochberg step-up (controls the false discovery rate);
    ``"holm"``: Holm step-down (controls the family-wise error rate); ``"none"``: unchanged.
    Equal to ``statsmodels.stats.multitest.multipletests(p, method="fdr_bh" / "holm")[1]``.
    NaN p-values (untestable classes) are left out of the count m and stay NaN.

    Parameters
    ----------
    p : array of float in [0, 1] or NaN, shape (K,)
    method : {"bh", "holm", "none"}

    Returns
    -------
    ndarray of float, shape (K,)

    Examples
    --------
    >>> adjust_pvalues([0.01, 0.04, 0.03, np.nan]).round(3).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    method = check_choice(method, "method", CORRECTIONS)
    pv = np.asarray(p, dtype=np.float64)
    if pv.ndim != 1:
        raise fail("p", "be a 1-D array of p-values", f"shape {pv.shape}")
    bad = np.isinf(pv) | (pv < 0) | (pv > 1)
    if bad.any():
        raise fail("p", "hold p-values in [0, 1] (or NaN)", float(pv[bad][0]))
    q = np.full_like(pv, np.nan)
    valid = np.flatnonzero(~np.isnan(pv))
    m = valid.size
    if m == 0 or method == "none":
        q[valid] = pv[valid]
        return q
    order = valid[np.argsort(pv[valid], kind="stable")]
    ranked = pv[order]  # ascending
    rank = np.arange(1, m + 1)
    if method == "bh":
        # q_(i) = min_{j >= i} p_(j) m / j: a reversed running minimum.
        adj = np.minimum.accumulate((ranked * m / rank)[::-1])[::-1]
    else:
        # q_(i) = max_{j <= i} (m - j + 1) p_(j): a running maximum.
        adj = np.maximum.accumulate(ranked * (m - rank + 1))
    q[order] = np.minimum(adj, 1.0)
    return q
