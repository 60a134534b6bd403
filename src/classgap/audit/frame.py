"""`ClassAudit`: the per-class audit of one model, in the MetricFrame vocabulary.

A thin, frozen frame over tidy tables. Every accessor returns the same type whatever the input
(one run or several seeds, with or without absent classes):

========================  ==========================================================
``overall``               ``pd.Series``: metric → estimate (accuracy, balanced accuracy,
                          worst class, worst-k mean, gap, std, cv, harmonic mean, groups)
``overall_ci()``          ``pd.DataFrame``: metric × (estimate, low, high)
``by_class``              ``pd.DataFrame``: class × (support, accuracy, precision, f1, ...)
``by_class_ci()``         ``pd.DataFrame``: class × (estimate, low, high) of accuracy
``worst_class()``         ``pd.Series``: metric → minimum over classes
``worst_class_ci()``      ``pd.DataFrame``: one row (accuracy) × (estimate, low, high)
``difference()``          ``pd.Series``: metric → best − worst over classes
``difference_ci()``       ``pd.DataFrame``: one row (accuracy) × (estimate, low, high)
========================  ==========================================================

The intervals of worst class and difference come from the class-stratified bootstrap, never
from the interval of the observed worst class (the observed minimum is biased low).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from classgap._files import jsonable
from classgap._validation import (
    check_choice,
    check_in_range,
    check_labels,
    check_positive_int,
    check_random_state,
    check_same_length,
)
from classgap.audit._labels import name_labels
from classgap.audit._runs import is_single_run
from classgap.audit._sampling import block_rows
from classgap.audit.disparity import (
    clip_to_range,
    disparity_summary,
    replicate_values,
    summary_statistics,
)
from classgap.audit.intervals import (
    METHODS,
    bootstrap_interval,
    class_percentile_interval,
    quiet,
    seed_interval,
    two_level_bootstrap_accuracy,
    wilson_interval,
)
from classgap.audit.io import Predictions, align_runs
from classgap.audit.perclass import (
    EmptyClassWarning,
    class_counts,
    per_class_metrics,
    sparse_confusion,
    warn_absent,
)
from classgap.errors import InputError

_CLASS_METRICS = ("accuracy", "precision", "f1")
_INTERVALS = ("auto", "wilson", "bootstrap", "seeds")


@dataclass(frozen=True)
class ClassAudit:
    """Per-class audit of one model (one run or several seeds) on one test set.

    Build it with :func:`audit` (arrays) or :func:`audit_predictions` (prediction files).
    """

    by_class: pd.DataFrame
    """class × (support, correct, accuracy, precision, f1, false_positives, predicted,
    accuracy_std); means over runs when there are several."""
    class_intervals: pd.DataFrame
    """class × (estimate, low, high): interval of each class's accuracy."""
    summary: pd.DataFrame
    """metric × (estimate, low, high): overall and disparity metrics with bootstrap intervals."""
    confusion: sparse.csr_array
    """(K, K) confusion matrix summed over runs, rows = true class, as a SciPy sparse array
    holding only the cells that occur (``.toarray()`` for the dense matrix; see
    :func:`~classgap.audit.perclass.sparse_confusion`)."""
    n_runs: int
    confidence: float
    interval: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    # -- MetricFrame vocabulary -------------------------------------------------------------
    @property
    def overall(self) -> pd.Series:
        """metric → point estimate."""
        return self.summary["estimate"].copy()

    def overall_ci(self) -> pd.DataFrame:
        """metric × (estimate, low, high)."""
        return self.summary.copy()

    def by_class_ci(self) -> pd.DataFrame:
        """class × (estimate, low, high) of per-class accuracy."""
        return self.class_intervals.copy()

    def worst_class(self) -> pd.Series:
        """metric → minimum over classes (NaN classes ignored)."""
        return self.by_class[list(_CLASS_METRICS)].min(skipna=True)

    def worst_class_ci(self) -> pd.DataFrame:
        """accuracy × (estimate, low, high) of the worst-class accuracy (bootstrap)."""
        return self.summary.loc[["worst_class"]].rename(index={"worst_class": "accuracy"})

    def difference(self) -> pd.Series:
        """metric → best − worst over classes."""
        values = self.by_class[list(_CLASS_METRICS)]
        return values.max(skipna=True) - values.min(skipna=True)

    def difference_ci(self) -> pd.DataFrame:
        """accuracy × (estimate, low, high) of the best − worst accuracy gap (bootstrap)."""
        return self.summary.loc[["best_worst_gap"]].rename(index={"best_worst_gap": "accuracy"})

    def worst_classes(self, k: int = 5) -> pd.DataFrame:
        """The ``k`` classes with the lowest accuracy, with their intervals, worst first."""
        table = self.by_class[["support", "accuracy"]].join(
            self.class_intervals[["low", "high"]].add_prefix("accuracy_")
        )
        return table.sort_values("accuracy", kind="stable").head(k)

    # -- serialisation ----------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per class: name, metrics and the accuracy interval (for CSV output)."""
        table = self.by_class.copy()
        table.insert(2, "accuracy_low", self.class_intervals["low"])
        table.insert(3, "accuracy_high", self.class_intervals["high"])
        return table.rename_axis("class").reset_index()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``overall`` (metric → estimate/low/high), ``classes`` records and
        ``classes_without_samples`` (the names of classes with support 0, accuracy null)."""
        overall = {
            metric: {k: jsonable(v) for k, v in row.items()}
            for metric, row in self.summary.iterrows()
        }
        classes = [
            {k: jsonable(v) for k, v in record.items()}
            for record in self.to_frame().to_dict(orient="records")
        ]
        return {
            "overall": overall,
            "classes": classes,
            # classes absent from the test set: accuracy null (unknown), never 0
            "classes_without_samples": [str(c) for c, n in self.by_class["support"].items()
                                        if n == 0],
            "n_runs": self.n_runs,
            "confidence": self.confidence,
            "interval": self.interval,
            **{k: jsonable(v) for k, v in self.meta.items()},
        }


def audit(
    y_true: Any,
    y_pred: Any,
    *,
    n_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    groups: Mapping[str, Any] | None = None,
    k: int | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    interval: str = "auto",
    method: str = "basic",
    random_state: int | np.random.Generator | None = 0,
) -> ClassAudit:
    """Audit per-class accuracy of one model on one test set.

    Parameters
    ----------
    y_true : array of shape (N,)
        True class indices in ``[0, K)``, or class names (str): names map through
        ``class_names``, else through their sorted unique names (with one warning).
    y_pred : array of shape (N,), or a sequence of such arrays
        Predicted class indices (or names, as ``y_true``); several arrays are several runs
        (seeds) of one recipe on the same test set.
    n_classes : int, optional
        Number of classes ``K`` (default: ``len(class_names)`` or the largest label + 1).
    class_names : sequence of str, optional
        Names of the classes, in index order.
    groups : mapping of str to array of shape (K,), optional
        Class groupings whose mean accuracy is reported, e.g. ``{"frequency": many/medium/few}``.
    k : int, optional
        How many classes the worst-k mean averages (default: the worst 10%).
    n_boot : int
        Bootstrap replicates for the disparity intervals.
    confidence : float
        Confidence level of every interval.
    interval : {"auto", "wilson", "bootstrap", "seeds"}
        Per-class accuracy interval. ``auto``: Wilson for one run, the two-level bootstrap
        (seeds, then samples) for several; ``seeds``: mean ± t-interval across runs.
    method : {"basic", "percentile", "bca"}
        Bootstrap interval of the summary metrics. ``basic`` (default) corrects the bias of
        worst-class, worst-k, std and harmonic mean (see
        :func:`~classgap.audit.disparity.disparity_summary`); ``bca`` only for one run.
    random_state : int, Generator or None
        Seed of the bootstrap; the same seed gives identical intervals.

    Returns
    -------
    ClassAudit

    Examples
    --------
    >>> import numpy as np
    >>> result = audit(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 1, 0, 2, 2]))
    >>> result.by_class["accuracy"].tolist()
    [1.0, 0.5, 1.0]
    >>> float(result.overall["worst_class"])
    0.5
    """
    runs = [y_pred] if is_single_run(y_pred) else list(y_pred)
    if not runs:
        raise InputError("'y_pred' must hold at least one run; got an empty sequence")
    check_positive_int(n_boot, "n_boot")
    check_in_range(confidence, "confidence", 0.0, 1.0, inclusive=(False, False))
    interval = check_choice(interval, "interval", _INTERVALS)
    method = check_choice(method, "method", METHODS)
    if method == "bca" and len(runs) > 1:  # before any work, so that the error is all it says
        raise InputError("'method' must be 'basic' or 'percentile' for several runs (BCa "
                         "needs a jackknife over samples of one run); got 'bca'")
    y_true, runs, class_names = name_labels(y_true, runs, class_names)
    y_true = check_labels(y_true, "y_true")
    runs = [check_labels(r, "y_pred") for r in runs]
    check_same_length([("y_true", y_true)] + [("y_pred", r) for r in runs])
    n_labels = int(max(y_true.max(initial=-1), *(r.max(initial=-1) for r in runs))) + 1
    if n_classes is None:
        n_classes = len(class_names) if class_names is not None else n_labels
    if class_names is not None and len(class_names) != n_classes:
        raise InputError(f"'class_names' must have one name per class ({n_classes}); "
                         f"got {len(class_names)}")
    if n_labels > n_classes:
        what = f"{len(class_names)} class names" if class_names is not None else (
            f"n_classes={n_classes}")
        raise InputError(f"labels go up to {n_labels - 1} but {what} were given; "
                         f"'class_names' / 'n_classes' must cover every label")
    names = _class_names(class_names, n_classes)
    rng = check_random_state(random_state)

    counts = [class_counts(y_true, np.asarray(r), n_classes) for r in runs]
    support = counts[0][0]
    warn_absent(support, names)  # once here; the steps below would each say it again
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyClassWarning)
        tables = [per_class_metrics(y_true, r, n_classes=n_classes, class_names=names)
                  for r in runs]
        by_class = _mean_tables(tables)
        correct = np.stack([c for _, c in counts])  # (S, K)
        confusion = sparse_confusion(y_true, np.stack(runs), n_classes)

        if interval == "auto":
            interval = "wilson" if len(runs) == 1 else "bootstrap"
        if len(runs) == 1:
            summary = disparity_summary(
                y_true, np.asarray(runs[0]), n_classes, k=k, groups=groups, n_boot=n_boot,
                confidence=confidence, method=method, random_state=rng,
            )
            replicates = None
        else:
            replicates = two_level_bootstrap_accuracy(correct, support, n_boot=n_boot,
                                                      random_state=rng)
            summary = _seed_summary(correct, support, replicates, k=k, groups=groups,
                                    confidence=confidence, method=method)
        class_intervals = _class_intervals(interval, correct, support, replicates, confidence,
                                           n_boot, rng)
    class_intervals.index = by_class.index
    return ClassAudit(
        by_class=by_class,
        class_intervals=class_intervals,
        summary=summary,
        confusion=confusion,
        n_runs=len(runs),
        confidence=confidence,
        interval=interval,
        meta={"n_samples": len(y_true), "n_classes": int(n_classes), "n_boot": n_boot,
              "method": method},
    )


def audit_predictions(
    runs: Sequence[Predictions],
    *,
    class_names: Sequence[str] | None = None,
    top_k: int | None = None,
    **kwargs: Any,
) -> ClassAudit:
    """Audit prediction files read by :func:`classgap.audit.io.read_predictions`.

    Several :class:`Predictions` are several runs (seeds) on the same test set; they are
    aligned by ``sample_id`` when present. ``top_k`` adds a ``top{k}_accuracy`` column
    (mean over runs; needs scores). Other keyword arguments go to :func:`audit`.
    """
    (aligned,), n_classes, names = align_runs(list(runs))
    if class_names is not None:
        names = tuple(class_names)
    result = audit(
        aligned[0].y_true,
        [r.y_pred for r in aligned],
        n_classes=n_classes,
        class_names=names,
        **kwargs,
    )
    if top_k is None:
        return result
    k = check_positive_int(top_k, "top_k")
    support = np.bincount(aligned[0].y_true, minlength=n_classes)
    hits = np.mean([np.bincount(r.y_true, weights=r.topk_correct(k), minlength=n_classes)
                    for r in aligned], axis=0)
    by_class = result.by_class.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        by_class.insert(by_class.columns.get_loc("accuracy") + 1, f"top{k}_accuracy",
                        np.where(support > 0, hits / np.maximum(support, 1), np.nan))
    return replace(result, by_class=by_class)


# -- helpers --------------------------------------------------------------------------------
def _class_names(class_names: Sequence[str] | None, n_classes: int) -> tuple[str, ...]:
    if class_names is None:
        return tuple(str(i) for i in range(n_classes))
    return tuple(str(c) for c in class_names)


def _mean_tables(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean of per-run per-class tables; adds ``accuracy_std`` (NaN for a single run)."""
    if len(tables) == 1:
        out = tables[0].copy()
        out["accuracy_std"] = np.nan
        return out
    stacked = np.stack([t.to_numpy(dtype=float) for t in tables])  # (S, K, M)
    with quiet():  # a class without samples is NaN in every run: its mean is NaN, said once
        mean = np.nanmean(stacked, axis=0)
    out = pd.DataFrame(mean, index=tables[0].index, columns=tables[0].columns)
    for col in ("support",):
        out[col] = tables[0][col]
    acc = np.stack([t["accuracy"].to_numpy(dtype=float) for t in tables])
    out["accuracy_std"] = np.std(acc, axis=0, ddof=1)
    return out


def _class_intervals(kind: str, correct: np.ndarray, support: np.ndarray,
                     replicates: np.ndarray | None, confidence: float, n_boot: int,
                     rng: np.random.Generator) -> pd.DataFrame:
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = correct / support  # (S, K)
    estimate = acc.mean(axis=0)
    if kind == "wilson":
        # Several runs: Wilson on the pooled counts treats seeds as extra samples; that
        # ignores seed variance, which is why "auto" picks the bootstrap for several runs.
        low, high = wilson_interval(correct.sum(axis=0), support * len(correct), confidence)
    elif kind == "seeds":
        _, low, high = seed_interval(acc, confidence, support=support)
    elif replicates is None:  # one run: the bootstrap's percentiles are binomial quantiles
        low, high = class_percentile_interval(correct[0], support, confidence)
    else:
        low, high = bootstrap_interval(estimate, replicates, confidence=confidence,
                                       method="percentile")
    return pd.DataFrame({"estimate": estimate, "low": low, "high": high})


def _row_blocks(replicates: np.ndarray, present: np.ndarray) -> Iterator[np.ndarray]:
    """The present classes' columns of ``replicates``, in the row blocks of the sampler."""
    start = 0
    for rows in block_rows(len(replicates), int(present.sum())):
        yield replicates[start:start + rows, present]
        start += rows


def _seed_summary(correct: np.ndarray, support: np.ndarray, replicates: np.ndarray, *,
                  k: int | None, groups: Mapping[str, Any] | None,
                  confidence: float, method: str) -> pd.DataFrame:
    """Disparity metrics of the seed-mean accuracies, intervals from two-level replicates."""
    k = max(1, round(0.1 * support.shape[0])) if k is None else check_positive_int(k, "k")
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (correct / support).mean(axis=0)  # (K,)
    present = support > 0
    statistics = summary_statistics(support, k, groups, keep=present)
    estimate = np.array([stat(acc[present]) for stat in statistics.values()],
                        dtype=np.float64)
    values = replicate_values(statistics, _row_blocks(replicates, present))
    low, high = bootstrap_interval(estimate, values, confidence=confidence, method=method)
    low, high = clip_to_range(list(statistics), low, high)
    return pd.DataFrame({"estimate": estimate, "low": low, "high": high},
                        index=pd.Index(list(statistics), name="metric", dtype=object))
