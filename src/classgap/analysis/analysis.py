"""The study's analysis (spec steps 5-9): select a strength, then show which classes pay.

Input: one :class:`RunRecord` per (strength, seed) with its predictions on the shared
validation split and the shared test set. Output: a :class:`~classgap.analysis.result.StudyResult`.
Every statistic comes from :mod:`classgap.audit`; this module only arranges the comparisons:

* **select** ``s*`` = argmax of mean validation accuracy over seeds, never the test set
  (ties go to the strength closest to the reference, then to sweep order);
* **who pays**: per class, ``s*`` versus the reference with
  :func:`~classgap.audit.compare_predictions` (the crossed seeds × test-images test with >= 2
  seeds per side, McNemar's score test with one; each with the interval it inverts), BH q-values;
  the average gain that bought it;
* **is the drop real**: the confusion pairs that moved, the seed ensembles, and optionally a
  multi-label (ReaL-style) truth;
* **which group pays** (with a class grouping, :mod:`classgap.analysis.groups`): the same
  comparison per group of every level (BH over the groups of a level), and the tree test that
  goes down only into the groups it finds;
* **class-aware selection**: the best validation mean among strengths where no class drops
  significantly by more than ``max_drop`` points, and a per-class strength vector;
* **runs that failed to train** (:mod:`classgap.analysis.failed`): flagged and reported, left
  out of every statistic only with ``exclude_failed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from classgap._validation import check_in_range, fail
from classgap.analysis.confusion import confusion_shifts, ensemble_labels, ensemble_table
from classgap.analysis.failed import failed_table
from classgap.analysis.groups import Grouping, compare_study_groups
from classgap.analysis.multilabel import acceptance_matrix, check_multi_label, multilabel_view
from classgap.analysis.plan import SeedPlan, plan_seeds
from classgap.analysis.result import StudyResult
from classgap.analysis.select import (
    class_aware_select,
    per_class_accuracy,
    per_class_strengths,
    pick_best,
    validation_table,
)
from classgap.analysis.summary import summary_dict
from classgap.audit import Comparison, Predictions, compare_predictions, seed_interval
from classgap.audit.intervals import ClipCounter
from classgap.errors import InputError

__all__ = ["RunRecord", "analyze", "plan_records", "summary_dict"]

TOP_PAIRS = 50  # confusion pairs kept in the result: K(K-1) rows is too many at K = 1000


@dataclass(frozen=True, eq=False)
class RunRecord:
    """One trained run: its grid point, its strength on the study axis, its seed, predictions
    and, when the run recorded it, its training accuracy (last epoch, fraction)."""

    point: Mapping[str, Any]
    strength: Any
    seed: int
    val: Predictions  # the shared validation split
    test: Predictions  # the shared test set
    train_accuracy: float | None = None

    @property
    def label(self) -> str:
        """``"strength=0.5, seed=1"``: how errors name the run."""
        return f"strength={self.strength!r}, seed={self.seed}"


@dataclass(frozen=True, eq=False)
class _Sweep:
    """Records arranged by strength (sweep order); ``val[m]``/``test[m]`` are (S_m, N) labels."""

    strengths: tuple[Any, ...]
    runs: list[list[RunRecord]]
    y_val: np.ndarray
    y_test: np.ndarray
    val: list[np.ndarray]
    test: list[np.ndarray]
    n_classes: int
    names: list[str]


def _same_truth(runs: list[RunRecord], split: str) -> np.ndarray:
    first = getattr(runs[0], split).y_true
    for r in runs[1:]:
        y = getattr(r, split).y_true
        if len(y) != len(first) or not np.array_equal(y, first):
            at = (f"lengths {len(first)} and {len(y)}" if len(y) != len(first)
                  else f"first difference at sample {int(np.flatnonzero(y != first)[0])}")
            raise InputError(f"runs ({runs[0].label}) and ({r.label}) must share the {split} "
                             f"labels 'y_true'; got {at}")
    return np.asarray(first)


def _collect(records: Sequence[RunRecord], reference: Any) -> _Sweep:
    runs = list(records)
    if not runs or not all(isinstance(r, RunRecord) for r in runs):
        raise fail("records", "be a non-empty sequence of RunRecord", f"{len(runs)} items")
    strengths: list[Any] = []
    groups: list[list[RunRecord]] = []
    for r in runs:  # == search, not a dict: strengths need not be hashable
        m = next((i for i, s in enumerate(strengths) if s == r.strength), None)
        if m is None:
            strengths.append(r.strength)
            groups.append([])
            m = len(groups) - 1
        if any(o.seed == r.seed for o in groups[m]):
            raise InputError(f"runs must have one record per (strength, seed); got ({r.label}) "
                             "twice (filter a multi-axis grid to one axis first)")
        groups[m].append(r)
    if not any(s == reference for s in strengths):
        raise fail("reference", f"be one of the strengths {strengths}", reference)
    y_val, y_test = _same_truth(runs, "val"), _same_truth(runs, "test")
    k = max(max(r.val.n_classes_hint, r.test.n_classes_hint) for r in runs)
    named = [r.test.classes for r in runs if r.test.classes is not None]
    names = list(named[0]) if named else [str(c) for c in range(k)]
    if len(names) != k:
        raise fail("classes", f"hold one name per class ({k})", f"{len(names)} names")
    return _Sweep(tuple(strengths), groups, y_val, y_test,
                  [np.stack([r.val.y_pred for r in g]) for g in groups],
                  [np.stack([r.test.y_pred for r in g]) for g in groups], k, names)


def _failed_runs(sweep: _Sweep) -> pd.DataFrame:
    """The runs that look failed (:func:`~classgap.analysis.failed.failed_table`)."""
    return failed_table(sweep.strengths, [[r.seed for r in g] for g in sweep.runs],
                        [(p == sweep.y_val).mean(1) for p in sweep.val],
                        [[np.nan if r.train_accuracy is None else r.train_accuracy for r in g]
                         for g in sweep.runs], n_classes=sweep.n_classes)


def _leave_out_failed(sweep: _Sweep, failed: pd.DataFrame, reference: Any,
                      ) -> tuple[_Sweep, pd.DataFrame, list[str]]:
    """The sweep without its failed runs, ``failed`` with ``excluded`` set, and notes.

    A strength whose every seed looks failed keeps them all (nothing would be left to
    compare), and a note says so.
    """
    excluded = np.zeros(len(failed), dtype=bool)
    keep: list[RunRecord] = []
    notes = []
    for m, group in enumerate(sweep.runs):
        rows = [i for i, s in enumerate(failed["strength"]) if s == sweep.strengths[m]]
        bad = {int(failed["seed"].iloc[i]) for i in rows}
        if len(bad) == len(group):
            notes.append(f"every seed of strength {sweep.strengths[m]!r} looks failed; they "
                         "are kept in the statistics (nothing else is left at that strength)")
            keep += group
            continue
        excluded[rows] = True
        keep += [r for r in group if r.seed not in bad]
    out = failed.copy()
    out["excluded"] = excluded
    return _collect(keep, reference), out, notes


def _failed_notes(failed: pd.DataFrame, exclude: bool) -> list[str]:
    """The note that names the runs that look failed and says what was done with them."""
    if failed.empty:
        return []
    runs = "; ".join(f"strength={r['strength']!r}, seed={r['seed']} ({r['reason']})"
                     for _, r in failed.head(5).iterrows()) + (" ..." if len(failed) > 5 else "")
    what = ("collapsed training: far below their strength's other seeds, or at chance")
    n_out = int(failed["excluded"].sum())
    if n_out:
        return [f"{n_out} run(s) that look failed ({what}) were left out of the statistics, as "
                f"--exclude-failed asks: {runs}"]
    advice = "" if exclude else "; --exclude-failed leaves them out"
    return [f"{len(failed)} run(s) look failed ({what}) and are kept in the statistics, where "
            f"they pull their strength down: {runs}{advice}"]


def _classes_table(comp: Comparison, strengths: tuple[Any, ...],
                   test_class_mean: np.ndarray) -> pd.DataFrame:
    """Rename the comparison to reference/selected and add each class's own best strength.

    ``test_class_mean`` is (M, K): mean test accuracy per strength and class.
    """
    t = comp.classes.rename(columns={"acc_baseline": "acc_reference",
                                     "acc_candidate": "acc_selected",
                                     "acc_baseline_std": "acc_reference_std",
                                     "acc_candidate_std": "acc_selected_std"})
    # Each class's own best strength by mean *test* accuracy: a test-set oracle that
    # describes the sweep (how far s* is from each class's optimum); it never selects.
    best = np.argmax(np.nan_to_num(test_class_mean, nan=-1.0), axis=0)  # (K,)
    t["acc_own_best"] = test_class_mean[best, np.arange(test_class_mean.shape[1])]
    t["own_best"] = pd.Series([strengths[int(m)] for m in best], dtype=object)
    t["delta_own_best"] = t["acc_selected"] - t["acc_own_best"]
    return t


def _add_multilabel(classes: pd.DataFrame, sweep: _Sweep, ref: int, sel: int,
                    multi_label: Any, kw: dict[str, Any]) -> pd.DataFrame:
    labels = check_multi_label(multi_label, len(sweep.y_test), sweep.n_classes)
    accept = acceptance_matrix(labels, sweep.n_classes)  # (N, K)
    y, ref_view = multilabel_view(sweep.y_test, sweep.test[ref], accept)
    _, sel_view = multilabel_view(sweep.y_test, sweep.test[sel], accept)
    ml = compare_predictions(y, list(ref_view), list(sel_view), sweep.n_classes, test="auto",
                             **kw).classes
    out = classes.copy()
    for src, dst in [("acc_baseline", "acc_reference_multilabel"),
                     ("acc_candidate", "acc_selected_multilabel"), ("delta", "delta_multilabel"),
                     ("delta_low", "delta_multilabel_low"), ("delta_high", "delta_multilabel_high"),
                     ("q_value", "q_value_multilabel"), ("verdict", "verdict_multilabel")]:
        out[dst] = ml[src].to_numpy()
    return out


def _notes(sweep: _Sweep, validation: pd.DataFrame, classes: pd.DataFrame, ref: int, sel: int,
           gain: Mapping[str, float], class_aware: Mapping[str, Any], alpha: float,
           multi_label: bool) -> list[str]:
    s_ref, s_sel = sweep.strengths[ref], sweep.strengths[sel]
    notes = []
    if validation["n_seeds"].min() == 1:
        notes.append("one seed: seed noise not estimated (per-class tests are McNemar's score "
                     "test on one run pair)")
    if sel == ref:
        notes.append(f"validation selects the reference ({s_ref!r}): no strength raises the "
                     "mean validation accuracy, so no class pays for a regularizer")
    else:
        v = validation.iloc[[sel, ref]]
        diff = float(v["val_mean"].iloc[0] - v["val_mean"].iloc[1])
        se = math.sqrt(float((v["val_std"] ** 2 / v["n_seeds"]).sum()))
        if math.isfinite(se) and diff <= se:
            notes.append(f"the selection is within seed noise: mean validation accuracy at "
                         f"{s_sel!r} exceeds the reference by {100 * diff:.2f} points, within "
                         f"one standard error over seeds ({100 * se:.2f})")
        if sel in (0, len(sweep.strengths) - 1):
            notes.append(f"the selected strength {s_sel!r} is at the edge of the grid")
        # p and the interval come from one procedure, so p < alpha iff the interval is above 0.
        if not (gain["delta"] > 0 and gain["p_value"] < alpha):
            notes.append(f"the mean test accuracy gain is not clearly established: "
                         f"{100 * gain['delta']:+.2f} points [{100 * gain['low']:+.2f}, "
                         f"{100 * gain['high']:+.2f}], p = {gain['p_value']:.3g}")
    drops = classes[classes["verdict"] == "drop"].sort_values("delta", kind="stable")
    if sel != ref and drops.empty:
        notes.append(f"no class drops significantly at {s_sel!r} versus {s_ref!r} "
                     f"(q < {alpha})")
    elif not drops.empty:
        listed = ", ".join(f"{r['class']} {100 * r['delta']:+.1f} points" for _, r in
                           drops.head(10).iterrows())
        notes.append(f"{len(drops)} class(es) drop significantly at {s_sel!r} (q < {alpha}): "
                     f"{listed}")
        if multi_label:
            gone = drops[drops["verdict_multilabel"] != "drop"]["class"].tolist()
            notes.append(f"{len(gone)} of {len(drops)} significant drops vanish under the "
                         f"multi-label truth" + (f": {', '.join(map(str, gone))}" if gone else ""))
    if class_aware["selected"] != s_sel:
        notes.append(f"class-aware selection (no significant class drop > "
                     f"{class_aware['max_drop']:g} points) picks {class_aware['selected']!r} "
                     f"instead of {s_sel!r}")
    return notes


def strength_table(strengths: tuple[Any, ...], validation: pd.DataFrame,
                   comparisons: Mapping[int, Comparison], ref: int, sel: int) -> pd.DataFrame:
    """One row per strength against the reference: the whole sweep's who-pays at a glance.

    Columns ``strength, selected, val_mean, test_mean, delta, delta_low, delta_high, n_drop,
    n_gain, drop_classes, gain_classes, worst_class, worst_delta``: the mean test change with
    its interval,
    how many classes drop / gain significantly and which drop (worst first), and the class
    with the most negative change (whether significant or not). The reference row compares
    with itself and has no deltas.
    """
    rows = []
    for m, strength in enumerate(strengths):
        row: dict[str, Any] = {"strength": strength, "selected": m == sel,
                               "val_mean": float(validation["val_mean"].iloc[m]),
                               "test_mean": float(validation["test_mean"].iloc[m]),
                               "delta": np.nan, "delta_low": np.nan, "delta_high": np.nan,
                               "n_drop": 0, "n_gain": 0, "drop_classes": [],
                               "gain_classes": [],
                               "worst_class": None, "worst_delta": np.nan}
        if m != ref and m in comparisons:
            comp = comparisons[m]
            t = comp.classes
            worst = int(np.nanargmin(t["delta"].to_numpy()))
            drops = t[t["verdict"] == "drop"].sort_values("delta")
            row.update(delta=comp.overall["delta"], delta_low=comp.overall["delta_low"],
                       delta_high=comp.overall["delta_high"],
                       n_drop=int((t["verdict"] == "drop").sum()),
                       n_gain=int((t["verdict"] == "gain").sum()),
                       gain_classes=[str(c) for c in t[t["verdict"] == "gain"]
                                     .sort_values("delta", ascending=False)["class"]],
                       drop_classes=[str(c) for c in drops["class"]],
                       worst_class=str(t["class"].iloc[worst]),
                       worst_delta=float(t["delta"].iloc[worst]))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["strength"] = pd.Series(list(strengths), dtype=object)
    return out


def analyze(records: Sequence[RunRecord], *, axis: str, reference: Any, alpha: float = 0.05,
            correction: str = "bh", max_drop: float = 2.0, random_state: int = 0,
            multi_label: Sequence[Sequence[int]] | None = None,
            exclude_failed: bool = False, groups: Grouping | None = None) -> StudyResult:
    """Select a strength on validation and show, per class on the test set, who pays for it.

    Parameters
    ----------
    records : sequence of RunRecord
        One per (strength, seed) on one axis; all share the validation and test labels.
    axis : str
        The swept config key (recorded only).
    reference : one of the records' strengths
        The regularizer-off setting every strength is compared with.
    alpha, correction : float, {"bh", "holm", "none"}
        Significance level of q-values and the correction across classes.
    max_drop : float
        Class-aware selection: largest tolerated significant class drop, in points (0-100).
    random_state
        Seed of every comparison's random parts (all use the same seed).
    multi_label : list of N lists of int, optional
        Acceptable labels per test sample (see :func:`~classgap.analysis.load_multi_label`).
    exclude_failed : bool
        Leave the runs that look failed (:mod:`classgap.analysis.failed`) out of every
        statistic; by default they are only flagged (``failed_runs`` and the first note).
    groups : Grouping, optional
        A class grouping (:mod:`classgap.analysis.groups`): the selected strength against the
        reference per group of every level, and down the tree, in ``result.groups``.

    Returns
    -------
    StudyResult
        ``classes`` also has ``acc_own_best``/``own_best``: each class's best strength by mean
        *test* accuracy, a test-set oracle that describes the sweep and never selects; with
        ``multi_label``, ``*_multilabel`` columns; ``ensemble``: the seed ensembles (mean
        softmax) at ``selected`` versus ``reference``, per class.
    """
    alpha = float(check_in_range(alpha, "alpha", 0, 1, inclusive=(False, False)))
    max_drop = float(check_in_range(max_drop, "max_drop", 0.0, 100.0))
    sweep = _collect(records, reference)
    failed = _failed_runs(sweep)
    failed["excluded"] = False
    kept_all: list[str] = []
    if exclude_failed and not failed.empty:
        sweep, failed, kept_all = _leave_out_failed(sweep, failed, reference)
    strengths, k, y_test = sweep.strengths, sweep.n_classes, sweep.y_test
    ref = next(i for i, s in enumerate(strengths) if s == reference)
    kw: dict[str, Any] = {"class_names": sweep.names, "alpha": alpha, "correction": correction,
                          "random_state": random_state}

    validation = validation_table(strengths, [(p == sweep.y_val).mean(1) for p in sweep.val],
                                  [(p == y_test).mean(1) for p in sweep.test])
    sel = pick_best(strengths, validation["val_mean"].to_numpy(), reference)

    clipped = ClipCounter()  # the t intervals that reach past [0, 1] or [-1, 1]: one note
    rows, test_class_mean = [], np.empty((len(strengths), k))  # (M, K)
    for m, preds in enumerate(sweep.test):
        mean, low, high = clipped(seed_interval, per_class_accuracy(y_test, preds, k),
                                  support=np.bincount(y_test, minlength=k))
        test_class_mean[m] = mean
        rows.append(pd.DataFrame({"strength": pd.Series([strengths[m]] * k, dtype=object),
                                  "class": sweep.names, "acc_mean": mean,
                                  "acc_low": low, "acc_high": high, "n_seeds": len(preds)}))
    per_class = pd.concat(rows, ignore_index=True)

    comparisons = {m: clipped(compare_predictions, y_test, list(sweep.test[ref]),
                              list(sweep.test[m]), k, test="auto", **kw)
                   for m in range(len(strengths)) if m != ref or m == sel}
    who_pays = comparisons[sel]
    classes = _classes_table(who_pays, strengths, test_class_mean)
    if multi_label is not None:
        classes = _add_multilabel(classes, sweep, ref, sel, multi_label, kw)
    o = who_pays.overall
    mean_gain = {"delta": o["delta"], "low": o["delta_low"], "high": o["delta_high"],
                 "p_value": o["p_value"]}

    # (M, K) mean validation accuracy per class; absent classes stay NaN (mean, not nanmean)
    val_class = np.stack([per_class_accuracy(sweep.y_val, p, k).mean(axis=0)
                          for p in sweep.val])
    class_aware = class_aware_select(strengths, validation["val_mean"].to_numpy(), reference,
                                     comparisons, max_drop)
    class_aware["per_class_strengths"] = per_class_strengths(strengths, val_class, reference)

    ens = [ensemble_labels([r.test.scores for r in sweep.runs[m]],
                           [r.test.score_kind for r in sweep.runs[m]], sweep.test[m], k)
           for m in (ref, sel)]
    ensemble, ensemble_overall = ensemble_table(y_test, ens[0], ens[1], k, **kw)

    by_strength = strength_table(strengths, validation, comparisons, ref, sel)
    notes = _notes(sweep, validation, classes, ref, sel, mean_gain, class_aware, alpha,
                   multi_label is not None)
    grouped = None
    if groups is not None and sel != ref:
        grouped = compare_study_groups(y_test, list(sweep.test[ref]), list(sweep.test[sel]),
                                       groups, sweep.names, alpha=alpha,
                                       correction=correction, random_state=random_state)
    elif groups is not None:
        notes.append(f"groups ({groups.source}): validation keeps the reference, so no group "
                     "is compared")
    if clipped.count:
        notes.append(f"{clipped.count} interval(s) of a class's accuracy or change reached past "
                     "what is possible ([0, 1], [-1, 1]) and were clipped: those classes have "
                     "too few test images or seeds to say much")
    meta = {"n_classes": k, "n_val": len(sweep.y_val), "n_test": len(y_test),
            "n_seeds": validation["n_seeds"].tolist(), "test": o["test"], "alpha": alpha,
            "correction": correction, "random_state": random_state,
            "tie_rule": "closest to the reference, then sweep order",
            "ensemble": ensemble_overall, "exclude_failed": bool(exclude_failed)}
    if len(strengths) > 1 and validation["n_seeds"].min() >= 2:
        meta["detectable_drop"] = _detectable(sweep, ref, alpha, correction)
    return StudyResult(axis=axis, strengths=strengths, reference=strengths[ref],
                       selected=strengths[sel], mean_gain=mean_gain, validation=validation,
                       per_class=per_class, classes=classes,
                       confusion_shifts=confusion_shifts(y_test, sweep.test[ref],
                                                         sweep.test[sel], k, sweep.names,
                                                         top=TOP_PAIRS),
                       class_aware=class_aware,
                       notes=(*_failed_notes(failed, exclude_failed), *kept_all, *notes), meta=meta,
                       ensemble=ensemble, by_strength=by_strength, failed_runs=failed,
                       groups=grouped)


def _detectable(sweep: _Sweep, ref: int, alpha: float, correction: str) -> dict[str, Any]:
    """What the study can detect per class with its seeds (points), for the result's meta."""
    plan = plan_seeds(sweep.y_test, sweep.test, reference=ref, class_names=sweep.names,
                      n_classes=sweep.n_classes, drop=1.0, alpha=alpha, correction=correction)
    return {**plan.detectable(),
            "by_class": plan.classes["min_detectable_drop"].astype(float).tolist(),
            "by_class_note": plan.classes["note"].astype(str).tolist()}


def plan_records(records: Sequence[RunRecord], *, reference: Any, drop: float = 1.0,
                 power: float = 0.8, alpha: float = 0.05, correction: str = "bh") -> SeedPlan:
    """:func:`~classgap.analysis.plan.plan_seeds` on a study's records (one axis, as ``analyze``).

    Examples
    --------
    >>> from classgap.audit import Predictions
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 200)
    >>> def run(s, seed):
    ...     pred = Predictions.from_arrays(y, y_pred=np.where(rng.random(400) < 0.8, y, 1 - y))
    ...     return RunRecord({"aug.flip": s}, s, seed, pred, pred)
    >>> plan = plan_records([run(s, k) for s in (0.0, 0.5) for k in range(3)], reference=0.0)
    >>> plan.seeds, len(plan.classes)
    (3, 2)
    """
    sweep = _collect(records, reference)
    ref = next(i for i, s in enumerate(sweep.strengths) if s == reference)
    return plan_seeds(sweep.y_test, sweep.test, reference=ref, class_names=sweep.names,
                      n_classes=sweep.n_classes, drop=drop, power=power, alpha=alpha,
                      correction=correction)
