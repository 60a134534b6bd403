"""Where lost samples go (confusion shifts) and what ensembling the seeds changes.

A class that drops has to lose its samples to some other class: the confusion pair that grows
most tells whether the drop is a fine-grained confusion (Kirichenko et al.) or a collapse.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from classgap.audit import compare_predictions, confusion_matrix, sparse_confusion
from classgap.audit.intervals import ClippedIntervalWarning
from classgap.audit.multiplicity import adjust_pvalues
from classgap.audit.paired import crossed_test

__all__ = ["confusion_group", "confusion_shifts", "ensemble_labels", "ensemble_table",
           "mean_confusion_rates"]


def mean_confusion_rates(y_true: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Row-normalised dense confusion matrix averaged over runs (K² cells: small K only).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    preds : array of int, shape (S, N)

    Returns
    -------
    ndarray of float, shape (K, K)
        ``[t, p]`` = fraction of class t's samples predicted as p, mean over the S runs; rows of
        absent classes are NaN.
    """
    support = np.bincount(y_true, minlength=n_classes).astype(float)[:, None]  # (K, 1)
    total = sum(confusion_matrix(y_true, row, n_classes) for row in preds)  # (K, K)
    out = np.full((n_classes, n_classes), np.nan)
    np.divide(np.asarray(total, float) / len(preds), support, out=out, where=support > 0)
    return out


def _pair_rates(y_true: np.ndarray, preds: np.ndarray, n_classes: int) -> pd.Series:
    """Mean rate of each off-diagonal (true, predicted) cell that occurs, keyed by cell index."""
    preds = np.asarray(preds)
    counts = sparse_confusion(y_true, preds, n_classes).tocoo()
    support = np.bincount(y_true, minlength=n_classes)
    off = counts.row != counts.col
    t, p = counts.row[off].astype(np.int64), counts.col[off].astype(np.int64)
    rate = counts.data[off] / (len(preds) * support[t])
    return pd.Series(rate, index=t * n_classes + p)


def confusion_shifts(y_true: np.ndarray, preds_reference: np.ndarray,
                     preds_selected: np.ndarray, n_classes: int, class_names: Sequence[str],
                     *, top: int | None = None) -> pd.DataFrame:
    """Off-diagonal confusion pairs sorted by how much they moved (largest ``|change|`` first).

    Only pairs that occur in either run set are listed (a pair at 0 in both did not move), so
    the table has at most ``S N`` rows and costs nothing like K² at 10,000 classes.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    preds_reference, preds_selected : array of int, shape (S, N)
    n_classes : int
    class_names : sequence of K str
    top : int, optional
        Keep only the first ``top`` rows.

    Returns
    -------
    DataFrame
        ``true, predicted, true_index, predicted_index, rate_reference, rate_selected, change``
        (fractions of the true class's samples; ``change = selected - reference``), so a
        positive change on ``(t, p)`` means class p absorbs samples class t lost. Ties in
        ``|change|`` keep row-major (true, predicted) order.
    """
    ref = _pair_rates(y_true, preds_reference, n_classes)
    sel = _pair_rates(y_true, preds_selected, n_classes)
    cells = ref.index.union(sel.index)  # sorted: row-major (true, predicted) order
    ref, sel = ref.reindex(cells, fill_value=0.0), sel.reindex(cells, fill_value=0.0)
    t, p = cells.to_numpy() // n_classes, cells.to_numpy() % n_classes
    names = np.asarray(list(class_names), dtype=object)
    table = pd.DataFrame({
        "true": names[t], "predicted": names[p], "true_index": t, "predicted_index": p,
        "rate_reference": ref.to_numpy(), "rate_selected": sel.to_numpy(),
        "change": sel.to_numpy() - ref.to_numpy(),
    })
    order = np.argsort(-np.abs(table["change"].to_numpy()), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    return table if top is None else table.head(top)


def confusion_group(y_true: np.ndarray, preds_reference: np.ndarray,
                    preds_selected: np.ndarray, n_classes: int, cls: int, *,
                    alpha: float = 0.05, correction: str = "bh") -> pd.DataFrame:
    """The confusion pairs of class ``cls`` whose rate shifted significantly between two sets of
    runs: the classes ``cls`` loses samples to or takes samples from.

    Every off-diagonal cell in the row and the column of ``cls`` that occurs in either run set
    is tested: ``(cls, j)``, the share of ``cls``'s samples predicted as ``j``, and ``(j, cls)``,
    the share of ``j``'s samples predicted as ``cls``. A cell's rate is the accuracy of the
    indicator "predicted as the cell's column" on the row class's samples, so it gets the
    study's own crossed seeds × images test (:func:`~classgap.audit.paired.crossed_test`);
    q-values adjust over the cells tested (``correction``).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    preds_reference, preds_selected : array of int, shape (S_A, N) and (S_B, N); at least
        2 runs a side
    n_classes : int
    cls : int
        The class whose row and column are tested.
    alpha, correction : level and correction over the tested cells.

    Returns
    -------
    DataFrame
        ``true_index, predicted_index, partner, direction`` (``"out"`` for ``(cls, j)``,
        ``"in"`` for ``(j, cls)``), ``change, low, high, p_value, q_value, significant``
        (rates as fractions; ``change = selected - reference``), in row-major cell order.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 400)
    >>> ref = np.where(rng.random((6, 1200)) < 0.9, y, (y + 1) % 3)
    >>> sel = np.where((y == 0) & (rng.random((6, 1200)) < 0.15), 2, ref)  # 0 now goes to 2
    >>> g = confusion_group(y, ref, sel, 3, 0)
    >>> g.loc[g["significant"], ["true_index", "predicted_index"]].values.tolist()
    [[0, 2]]
    """
    y = np.asarray(y_true).astype(np.int64)
    ref, sel = np.asarray(preds_reference), np.asarray(preds_selected)
    k, cls = int(n_classes), int(cls)
    occurs = np.zeros((k, k), dtype=bool)
    for runs in (ref, sel):
        occurs |= sparse_confusion(y, runs, k).toarray() > 0
    rows: list[tuple[int, int]] = []
    stats: list[tuple[float, ...]] = []
    with warnings.catch_warnings():  # a cell's interval clipped to [-1, 1] is no news here
        warnings.simplefilter("ignore", ClippedIntervalWarning)
        # the column (j, cls): one test gives every class's share predicted as cls
        into = crossed_test(y, ref == cls, sel == cls, k)
        mine = y == cls
        for j in range(k):
            if j == cls:
                continue
            if occurs[cls, j]:  # the row (cls, j) on cls's samples only
                res = crossed_test(y[mine], ref[:, mine] == j, sel[:, mine] == j, k)
                rows.append((cls, j))
                stats.append(tuple(float(res[f][cls])
                                   for f in ("delta", "low", "high", "p_value")))
            if occurs[j, cls]:
                rows.append((j, cls))
                stats.append(tuple(float(into[f][j])
                                   for f in ("delta", "low", "high", "p_value")))
    order = sorted(range(len(rows)), key=lambda i: rows[i])
    t = np.array([rows[i][0] for i in order], dtype=np.int64)
    p = np.array([rows[i][1] for i in order], dtype=np.int64)
    vals = np.array([stats[i] for i in order], dtype=float).reshape(-1, 4)
    q = adjust_pvalues(vals[:, 3], correction) if len(vals) else np.zeros(0)
    return pd.DataFrame({
        "true_index": t, "predicted_index": p, "partner": np.where(t == cls, p, t),
        "direction": np.where(t == cls, "out", "in"), "change": vals[:, 0],
        "low": vals[:, 1], "high": vals[:, 2], "p_value": vals[:, 3], "q_value": q,
        "significant": q < alpha})


def ensemble_labels(scores: Sequence[np.ndarray | None], kinds: Sequence[str | None],
                    labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Top-1 of the seed ensemble: mean softmax over runs (FAIR-Ensemble).

    Parameters
    ----------
    scores : sequence of S arrays of shape (N, K), or None
        Logits or probabilities per run; a run without scores votes with a one-hot row, so the
        ensemble degrades to a majority vote rather than failing.
    kinds : sequence of S ``"logits"`` / ``"probs"`` / None
    labels : array of int, shape (S, N)
        The runs' predicted labels (used for runs without scores).

    Returns
    -------
    ndarray of int64, shape (N,)
    """
    total = np.zeros((labels.shape[1], n_classes))
    for score, kind, lab in zip(scores, kinds, labels, strict=True):
        if score is None:
            total += np.eye(n_classes)[lab]
        else:
            total += softmax(score, axis=1) if kind == "logits" else score
    return np.argmax(total, axis=1).astype(np.int64)


def ensemble_table(y_true: np.ndarray, ensemble_reference: np.ndarray,
                   ensemble_selected: np.ndarray, n_classes: int, **compare: Any,
                   ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-class comparison of the two seed ensembles (one run per side, so McNemar's score test).

    ``compare`` goes to :func:`~classgap.audit.compare_predictions` (``class_names``,
    ``alpha``, ``correction``, ``random_state``).

    Returns
    -------
    classes : DataFrame
        ``class, acc_reference, acc_selected, delta, delta_low, delta_high, p_value, q_value,
        verdict`` (the ensembles' per-class accuracies).
    overall : dict
        ``acc_reference, acc_selected, delta, std_reference, std_selected, n_drop``; the stds are
        the spread of per-class accuracy (a disparity measure ensembling may narrow).
    """
    comp = compare_predictions(y_true, [ensemble_reference], [ensemble_selected], n_classes,
                               test="mcnemar", **compare)
    t = comp.classes.rename(columns={"acc_baseline": "acc_reference",
                                     "acc_candidate": "acc_selected"})
    t = t[["class", "acc_reference", "acc_selected", "delta", "delta_low", "delta_high",
           "p_value", "q_value", "verdict"]]
    o = comp.overall
    overall = {"acc_reference": o["acc_baseline"], "acc_selected": o["acc_candidate"],
               "delta": o["delta"], "n_drop": o["n_drop"],
               "std_reference": float(np.nanstd(t["acc_reference"])),
               "std_selected": float(np.nanstd(t["acc_selected"]))}
    return t, overall
