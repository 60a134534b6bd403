"""Runs that failed to train: far below the other seeds of their strength, or at chance.

A collapsed run (the first steps at full learning rate killed most ReLU units of a layer; see
``bench/stability.py``) ends far below its seeds. Averaged into its strength, it reads as the
regularizer's effect. The rule, per strength and per accuracy a run has (validation, from its
predictions; training, when the run recorded it):

* **outlier**: with at least :data:`MIN_SEEDS` seeds at the strength, a run whose accuracy is
  below ``median − max(Z · 1.4826 · MAD, FLOOR)`` of the strength's seeds (the run included):
  Iglewicz and Hoaglin's modified z-score below −3.5 (1.4826·MAD estimates the standard
  deviation of normal seeds and ignores the outliers themselves), and at least
  :data:`FLOOR` (5 points) below the median, so that seeds which agree to a tenth of a point
  do not flag a run half a point lower;
* **at chance**: a validation accuracy below ``CHANCE / K`` (1.5 / K), whatever the other
  seeds did (only validation: under mixup or label noise the training accuracy can be low in
  every healthy run).

Only low runs are flagged; nothing here removes a run (the analysis does, when asked).

>>> flag_failed([0.83, 0.78, 0.81, 0.81, 0.83, 0.31, 0.81, 0.74], n_classes=10).tolist()
[False, False, False, False, False, True, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from classgap._validation import check_positive_int, fail

__all__ = ["CHANCE", "FLOOR", "MIN_SEEDS", "Z", "failed_reasons", "failed_table", "flag_failed",
           "low_outliers"]

Z = 3.5  # modified z-score cut (Iglewicz & Hoaglin 1993)
MAD_SCALE = 1.4826  # MAD × this estimates the standard deviation of normal data
FLOOR = 0.05  # a run must also be at least 5 points below the median
MIN_SEEDS = 3  # a median of fewer seeds cannot tell the outlier from the rest
CHANCE = 1.5  # validation accuracy below CHANCE / K is at chance


def _accuracies(values: ArrayLike, name: str) -> np.ndarray:
    acc = np.asarray(values, dtype=float)
    if acc.ndim != 1 or np.any((acc < 0) | (acc > 1)):  # NaN passes: a missing accuracy
        raise fail(name, "be a 1-D sequence of accuracies in [0, 1]", values)
    return acc


def low_outliers(acc: ArrayLike, *, z: float = Z, floor: float = FLOOR,
                 min_seeds: int = MIN_SEEDS) -> tuple[np.ndarray, float]:
    """Which of one strength's runs lie far below the others, and the threshold.

    Parameters
    ----------
    acc : array-like of float, shape (S,)
        One accuracy per seed, fractions in [0, 1]; NaN for a run without this accuracy.
    z, floor, min_seeds
        The rule of the module docstring.

    Returns
    -------
    flags : np.ndarray of bool, shape (S,)
    threshold : float
        ``median − max(z · 1.4826 · MAD, floor)``; NaN (and no flag) with fewer than
        ``min_seeds`` accuracies.

    Examples
    --------
    >>> flags, cut = low_outliers([0.80, 0.81, 0.82, 0.40])
    >>> flags.tolist(), round(cut, 3)
    ([False, False, False, True], 0.753)
    """
    values = _accuracies(acc, "acc")
    flags = np.zeros(values.shape, dtype=bool)
    known = values[np.isfinite(values)]
    if len(known) < min_seeds:
        return flags, float("nan")
    median = float(np.median(known))
    mad = float(np.median(np.abs(known - median)))
    threshold = median - max(z * MAD_SCALE * mad, floor)
    with np.errstate(invalid="ignore"):
        flags = values < threshold  # NaN compares False: never flagged
    return flags, threshold


def flag_failed(val_acc: ArrayLike, train_acc: ArrayLike | None = None, *,
                n_classes: int) -> np.ndarray:
    """Which runs of one strength look failed (either rule of the module docstring).

    Parameters
    ----------
    val_acc : array-like of float, shape (S,)
        Validation accuracy per seed.
    train_acc : array-like of float, shape (S,), optional
        Training accuracy per seed (NaN where a run did not record it).
    n_classes : int
        K, for the chance level.

    Returns
    -------
    np.ndarray of bool, shape (S,)
    """
    return failed_reasons(val_acc, train_acc, n_classes=n_classes)[0]


def failed_reasons(val_acc: ArrayLike, train_acc: ArrayLike | None = None, *,
                   n_classes: int) -> tuple[np.ndarray, list[str]]:
    """:func:`flag_failed` with the reason of each flag (``""`` for a run not flagged)."""
    k = check_positive_int(n_classes, "n_classes")
    val = _accuracies(val_acc, "val_acc")
    train = (np.full(val.shape, np.nan) if train_acc is None
             else _accuracies(train_acc, "train_acc"))
    if train.shape != val.shape:
        raise fail("train_acc", f"have one value per run ({len(val)})", f"{len(train)} values")
    reasons: list[list[str]] = [[] for _ in val]
    for name, acc in (("validation", val), ("training", train)):
        flags, cut = low_outliers(acc)
        median = float(np.nanmedian(acc)) if np.isfinite(acc).any() else float("nan")
        for i in np.flatnonzero(flags):
            reasons[i].append(f"{name} accuracy {100 * acc[i]:.1f}% < {100 * cut:.1f}% (median "
                              f"{100 * median:.1f}% of {int(np.isfinite(acc).sum())} seeds)")
    if k > 1:
        for i in np.flatnonzero(val < CHANCE / k):
            reasons[i].append(f"validation accuracy {100 * val[i]:.1f}% is at chance "
                              f"({100 / k:.1f}% for {k} classes)")
    text = ["; ".join(r) for r in reasons]
    return np.array([bool(t) for t in text], dtype=bool), text


def failed_table(strengths: Sequence[Any], seeds: Sequence[Sequence[int]],
                 val_acc: Sequence[ArrayLike], train_acc: Sequence[ArrayLike | None], *,
                 n_classes: int) -> pd.DataFrame:
    """The runs that look failed, strength by strength.

    Parameters
    ----------
    strengths : sequence, length M
    seeds : M sequences of int
        The seeds of each strength.
    val_acc, train_acc : M array-likes of shape (S_m,)
        Their validation and training accuracies (``train_acc[m]`` None or NaN where unknown).
    n_classes : int

    Returns
    -------
    pd.DataFrame
        One row per flagged run: ``strength, seed, val_acc, train_acc, reason`` (accuracies as
        fractions, ``train_acc`` NaN where unknown); empty (same columns) when none is.
    """
    rows = []
    for strength, ss, val, train in zip(strengths, seeds, val_acc, train_acc, strict=True):
        flags, why = failed_reasons(val, train, n_classes=n_classes)
        train_values = np.full(len(ss), np.nan) if train is None else np.asarray(train, float)
        seed_list = [int(s) for s in ss]
        for i in np.flatnonzero(flags):
            rows.append({"strength": strength, "seed": seed_list[i],
                         "val_acc": float(np.asarray(val, float)[i]),
                         "train_acc": float(train_values[i]), "reason": why[i]})
    out = pd.DataFrame(rows, columns=["strength", "seed", "val_acc", "train_acc", "reason"])
    out["strength"] = pd.Series([r["strength"] for r in rows], dtype=object)
    return out
