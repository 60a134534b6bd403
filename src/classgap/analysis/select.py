"""Choosing a strength: the usual argmax of mean validation accuracy, and class-aware variants.

Pure functions on arrays indexed by strength position (sweep order). Ties are broken towards
the reference (the weaker intervention wins when the data cannot tell them apart), then by
sweep order, so every choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from classgap.audit import Comparison, class_counts

__all__ = ["class_aware_select", "per_class_accuracy", "per_class_strengths", "pick_best",
           "validation_table"]

TIE_TOL = 1e-12  # accuracies that differ by float rounding only count as tied


def per_class_accuracy(y_true: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-run per-class accuracy (recall).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    preds : array of int, shape (S, N)
        One row per run (seed).
    n_classes : int

    Returns
    -------
    ndarray of float, shape (S, K)
        NaN for classes absent from ``y_true``.
    """
    out = np.full((len(preds), n_classes), np.nan)
    for s, row in enumerate(preds):
        support, correct = class_counts(y_true, row, n_classes)
        np.divide(correct, support, out=out[s], where=support > 0)
    return out


def _distance(strengths: Sequence[Any], reference: Any) -> np.ndarray:
    """Distance of each strength to the reference: numeric when all are numbers, else positional."""
    try:
        values = np.array([float(s) for s in strengths])
        return np.abs(values - float(reference))
    except (TypeError, ValueError):
        ref = list(strengths).index(reference)
        return np.abs(np.arange(len(strengths)) - ref).astype(float)


def pick_best(strengths: Sequence[Any], scores: Any, reference: Any,
              allowed: Any = None) -> int:
    """Index of the best score; ties go to the strength closest to ``reference``, then sweep order.

    Parameters
    ----------
    strengths : sequence of length M
    scores : array of float, shape (M,)
        NaN counts as the worst score.
    reference : one of ``strengths``
    allowed : array of bool, shape (M,), optional
        Only these strengths may be picked (the reference must be among them).

    Examples
    --------
    >>> pick_best([0.0, 0.5, 1.0], [0.8, 0.9, 0.9], 0.0)
    1
    """
    s = np.where(np.isnan(np.asarray(scores, float)), -np.inf, np.asarray(scores, float))
    if allowed is not None:
        s = np.where(np.asarray(allowed, bool), s, -np.inf)
    if not np.isfinite(s).any():  # nothing scoreable: the reference is the safe answer
        return list(strengths).index(reference)
    tied = np.flatnonzero(s >= s.max() - TIE_TOL)
    dist = _distance(strengths, reference)[tied]
    return int(tied[np.argmin(dist)])  # argmin keeps the first (sweep order) among equals


def validation_table(strengths: Sequence[Any], val_acc: Sequence[np.ndarray],
                     test_acc: Sequence[np.ndarray]) -> pd.DataFrame:
    """One row per strength: ``strength, val_mean, val_std, test_mean, test_std, n_seeds``.

    ``val_acc[m]`` and ``test_acc[m]`` are the (S_m,) overall accuracies of the seeds at
    strength m; std is the sample std (ddof=1), NaN with one seed.
    """
    def std(a: np.ndarray) -> float:
        return float(np.std(a, ddof=1)) if len(a) > 1 else float("nan")

    return pd.DataFrame({
        "strength": pd.Series(list(strengths), dtype=object),
        "val_mean": [float(np.mean(a)) for a in val_acc],
        "val_std": [std(a) for a in val_acc],
        "test_mean": [float(np.mean(a)) for a in test_acc],
        "test_std": [std(a) for a in test_acc],
        "n_seeds": [len(a) for a in val_acc],
    })


def class_aware_select(strengths: Sequence[Any], val_mean: Any, reference: Any,
                       comparisons: Mapping[int, Comparison], max_drop: float,
                       ) -> dict[str, Any]:
    """The best mean validation accuracy among strengths where no class pays more than allowed.

    A strength is excluded when some class drops significantly versus the reference (verdict
    ``"drop"``, i.e. q < alpha) by more than ``max_drop`` accuracy points on the test set; the
    reference always qualifies. The test set only vetoes, validation still ranks.

    Parameters
    ----------
    strengths : sequence of length M
    val_mean : array of float, shape (M,)
    reference : one of ``strengths``
    comparisons : mapping strength index -> Comparison (reference vs that strength)
    max_drop : float
        Largest tolerated significant drop, in accuracy points (0-100).

    Returns
    -------
    dict
        ``selected`` (strength), ``index``, ``val_mean``, ``max_drop``, ``qualifying`` (list of
        strengths) and ``excluded`` (list of ``{"strength", "classes"}``).
    """
    ref = list(strengths).index(reference)
    allowed = np.zeros(len(strengths), bool)
    allowed[ref] = True
    excluded = []
    for m, comp in comparisons.items():
        if m == ref:
            continue
        payers = comp.drops(min_points=max_drop)["class"].tolist()
        allowed[m] = not payers
        if payers:
            excluded.append({"strength": strengths[m], "classes": payers})
    best = pick_best(strengths, val_mean, reference, allowed)
    return {"max_drop": float(max_drop), "selected": strengths[best], "index": best,
            "val_mean": float(np.asarray(val_mean, float)[best]),
            "qualifying": [strengths[int(m)] for m in np.flatnonzero(allowed)],
            "excluded": excluded}


def per_class_strengths(strengths: Sequence[Any], val_class_mean: np.ndarray,
                        reference: Any) -> list[Any]:
    """For each class, the strength maximising its mean *validation* accuracy over seeds.

    Validation, not test: the vector is a recipe to train (``--refit``), so choosing it on the
    test set would leak; ties and classes absent from validation go to the reference.

    Parameters
    ----------
    val_class_mean : array of float, shape (M, K)
        Mean validation per-class accuracy at each strength.

    Returns
    -------
    list of length K, ordered by class index
    """
    return [strengths[pick_best(strengths, val_class_mean[:, c], reference)]
            for c in range(val_class_mean.shape[1])]
