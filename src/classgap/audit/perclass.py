"""Per-class counts and metrics from true and predicted labels.

Everything here is a count: per-class support and number correct (bincounts of length K), the
confusion matrix, and the tidy per-class table built from them. The confusion is sparse by
default where it is built for the audit (:func:`sparse_confusion`: the cells that occur, at
most N of them, so 10,000 classes cost what their predictions cost, not 10^8 cells); the dense
K x K matrix is there on request (:func:`confusion_matrix`). Class order is fixed by
``n_classes``; a class that never occurs in ``y_true`` keeps its row, with NaN accuracy and
one ``UserWarning``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from classgap._validation import check_finite, check_labels, check_positive_int, fail

__all__ = ["EmptyClassWarning", "class_counts", "confusion_matrix", "per_class_metrics",
           "sparse_confusion", "topk_correct"]

METRIC_COLUMNS = ("support", "correct", "accuracy", "precision", "f1", "false_positives",
                  "predicted")


def check_n_classes(n_classes: Any) -> int:
    """``n_classes`` as a positive int, or raise with the template."""
    return check_positive_int(n_classes, "n_classes")


def check_label_pair(y_true: Any, y_pred: Any, n_classes: int | None,
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate a (y_true, y_pred) pair; infer ``n_classes`` from the labels when None."""
    if n_classes is not None:
        n_classes = check_n_classes(n_classes)
    yt = check_labels(y_true, "y_true", n_classes=n_classes)
    yp = check_labels(y_pred, "y_pred", n_classes=n_classes)
    if len(yp) != len(yt):
        raise fail("y_pred", f"have the same length as 'y_true' ({len(yt)})", len(yp))
    if n_classes is None:
        if yt.size == 0:
            raise fail("y_true", "be non-empty when 'n_classes' is not given", "0 samples")
        n_classes = int(max(yt.max(), yp.max())) + 1
    return yt, yp, n_classes


def check_class_names(class_names: Sequence[Any] | None, n_classes: int) -> list[str]:
    """Class names as strings (default ``"0".."K-1"``), ``n_classes`` of them."""
    if class_names is None:
        return [str(k) for k in range(n_classes)]
    names = [str(name) for name in class_names]
    if len(names) != n_classes:
        raise fail("class_names", f"have one name per class ({n_classes})", f"{len(names)} names")
    return names


class EmptyClassWarning(UserWarning):
    """Some classes have no test samples (support 0): their accuracy is NaN, not 0."""


def warn_absent(support: np.ndarray, class_names: Sequence[str] | None = None) -> None:
    """One :class:`EmptyClassWarning` naming every class with support 0 (their accuracy is NaN).

    When class 0 alone is empty, the labels run 1..K-1: the warning asks whether they are
    1-based (labels 1..K read as K+1 classes with an empty class 0).
    """
    support = np.asarray(support)
    absent = np.flatnonzero(support == 0)
    if not absent.size:
        return
    names = [class_names[k] if class_names is not None else str(k) for k in absent[:10]]
    if absent.tolist() == [0] and len(support) > 2:
        named = f" ({names[0]!r})" if class_names is not None and names[0] != "0" else ""
        message = (f"class 0{named} has no test samples and the labels run 1..{len(support) - 1}"
                   f": are the labels 1-based? If so, subtract 1 from y_true and y_pred; as "
                   "given, class 0 is reported with no samples (accuracy NaN)")
    else:
        more = f" and {absent.size - 10} more" if absent.size > 10 else ""
        message = (f"{absent.size} class(es) absent from y_true (support 0) get NaN accuracy: "
                   f"{', '.join(names)}{more}")
    warnings.warn(message, EmptyClassWarning, stacklevel=3)


def _confusion(yt: np.ndarray, yp: np.ndarray, n_classes: int) -> np.ndarray:
    # One bincount over the flattened (true, pred) cell index: O(N + K²), no Python loop.
    flat = np.bincount(yt * n_classes + yp, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64, copy=False)


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Dense confusion matrix with rows = true class, columns = predicted class.

    K² cells: 800 MB at K = 10,000. For many classes use :func:`sparse_confusion`, which holds
    only the cells that occur.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (N,)
        Class indices in ``[0, n_classes - 1]``.
    n_classes : int
        Number of classes K (absent classes keep their row and column).

    Returns
    -------
    ndarray of int64, shape (K, K)
        Same as ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(K))``.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1], [0, 1, 1], 2).tolist()
    [[1, 1], [0, 1]]
    """
    yt, yp, k = check_label_pair(y_true, y_pred, n_classes)
    return _confusion(yt, yp, k)


def _sparse_confusion(yt: np.ndarray, yp: np.ndarray, n_classes: int) -> sparse.csr_array:
    # The distinct (true, pred) cells and their counts: O(N log N), never O(K²). The flat
    # index fits int64 for any K below 3e9.
    cells, counts = np.unique(yt.astype(np.int64) * n_classes + yp, return_counts=True)
    return sparse.csr_array((counts.astype(np.int64), (cells // n_classes, cells % n_classes)),
                            shape=(n_classes, n_classes))


def sparse_confusion(y_true: Any, y_pred: Any, n_classes: int | None = None,
                     ) -> sparse.csr_array:
    """Confusion matrix as a SciPy sparse array: only the (true, predicted) cells that occur.

    At most N stored cells whatever K, so it is what the audit keeps (``ClassAudit.confusion``)
    and what the study's confusion shifts are computed from. ``.toarray()`` gives the dense
    matrix, ``[t, p]`` one cell, ``.diagonal()`` the correct counts, ``.sum(axis=1)`` the support.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (N,), or sequences of such arrays
        Several ``y_pred`` runs on one ``y_true`` (a 2-D array or a list) give the confusion
        summed over the runs.
    n_classes : int, optional
        K; default ``max(label) + 1``.

    Returns
    -------
    scipy.sparse.csr_array of int64, shape (K, K)
        ``.toarray()`` equals ``sklearn.metrics.confusion_matrix(y_true, y_pred,
        labels=range(K))``.

    Examples
    --------
    >>> cm = sparse_confusion([0, 0, 1], [0, 1, 1], 2)
    >>> cm.nnz, cm.toarray().tolist()
    (3, [[1, 1], [0, 1]])
    """
    runs = np.asarray(y_pred)
    if runs.ndim == 2:
        if runs.shape[1] != np.size(y_true):
            raise fail("y_pred", f"hold runs of the length of 'y_true' ({np.size(y_true)})",
                       f"shape {runs.shape}")
        yt = np.tile(np.asarray(y_true), runs.shape[0])
        yp = runs.reshape(-1)
    else:
        yt, yp = y_true, y_pred
    yt, yp, k = check_label_pair(yt, yp, n_classes)
    return _sparse_confusion(yt, yp, k)


def _counts(yt: np.ndarray, yp: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    support = np.bincount(yt, minlength=n_classes).astype(np.int64, copy=False)
    correct = np.bincount(yt[yt == yp], minlength=n_classes).astype(np.int64, copy=False)
    return support, correct


def class_counts(y_true: Any, y_pred: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class support and number of correct predictions.

    Returns
    -------
    support, correct : ndarray of int64, shape (K,)

    Examples
    --------
    >>> support, correct = class_counts([0, 0, 1], [0, 1, 1], 2)
    >>> support.tolist(), correct.tolist()
    ([2, 1], [1, 1])
    """
    yt, yp, k = check_label_pair(y_true, y_pred, n_classes)
    return _counts(yt, yp, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float, NaN where ``den == 0`` (no RuntimeWarning)."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=np.asarray(den) != 0)
    return out


def per_class_metrics(y_true: Any, y_pred: Any, *, n_classes: int | None = None,
                      class_names: Sequence[Any] | None = None) -> pd.DataFrame:
    """Tidy per-class table: support, correct, accuracy (recall), precision, F1, FP, predicted.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (N,)
    n_classes : int, optional
        K; default ``len(class_names)`` if given, else ``max(label) + 1``.
    class_names : sequence of K names, optional
        Row labels (as str); default ``"0".."K-1"``.

    Returns
    -------
    DataFrame, K rows indexed by class name (index name ``"class"``), columns
    ``support, correct, accuracy, precision, f1, false_positives, predicted``: counts are
    int64, ratios float64. ``accuracy`` is NaN when support is 0 (with one ``UserWarning``),
    ``precision`` is NaN when nothing was predicted as the class, ``f1`` is NaN when both are 0
    (otherwise ``2 TP / (support + predicted)``, which is 0 when either ratio is 0).

    Examples
    --------
    >>> per_class_metrics([0, 0, 1, 1], [0, 1, 1, 1])["accuracy"].tolist()
    [0.5, 1.0]
    """
    if n_classes is None and class_names is not None:
        n_classes = len(class_names)
    yt, yp, k = check_label_pair(y_true, y_pred, n_classes)
    names = check_class_names(class_names, k)
    support, correct = _counts(yt, yp, k)
    predicted = np.bincount(yp, minlength=k).astype(np.int64, copy=False)
    warn_absent(support, names)
    table = pd.DataFrame(
        {
            "support": support,
            "correct": correct,
            "accuracy": _ratio(correct, support),
            "precision": _ratio(correct, predicted),
            "f1": _ratio(2 * correct, support + predicted),
            "false_positives": predicted - correct,
            "predicted": predicted,
        },
        index=pd.Index(names, name="class", dtype=object),
    )
    return table


def topk_correct(y_true: Any, scores: Any, k: int) -> np.ndarray:
    """Whether the true class is among the ``k`` highest scores of each sample.

    Ties are counted in the sample's favour: the sample is correct when fewer than ``k``
    classes score strictly higher than the true class (frameworks break ties arbitrarily).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    scores : array of float, shape (N, K)
        Logits or probabilities (finite).
    k : int in [1, K]

    Returns
    -------
    ndarray of bool, shape (N,)

    Examples
    --------
    >>> topk_correct([2, 0], [[0.1, 0.5, 0.4], [0.2, 0.3, 0.5]], 2).tolist()
    [True, False]
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise fail("scores", "be a 2-D array of shape (N, K)", f"shape {s.shape}")
    s = check_finite(s, "scores")
    n_samples, n_classes = s.shape
    yt = check_labels(y_true, "y_true", n_classes=n_classes)
    if len(yt) != n_samples:
        raise fail("scores", f"have one row per label in 'y_true' ({len(yt)})", n_samples)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n_classes:
        raise fail("k", f"be an integer in [1, {n_classes}]", k)
    true_score = s[np.arange(n_samples), yt]  # (N,)
    n_higher = (s > true_score[:, None]).sum(axis=1)  # (N,)
    return n_higher < k
