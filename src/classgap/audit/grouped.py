"""Per-group audits and paired per-group comparisons: which group of classes pays.

With 10 test images a class (iNaturalist-2021's validation set), one class's accuracy has a
standard error of ~15 points and no per-class test sees a 10-point drop; a genus of five
classes has 50 images, a family hundreds. :func:`audit_groups` gives every group of every
level of a :class:`~classgap.audit.groups.GroupMap` its accuracy with an interval, and every
level its disparity over groups; :func:`compare_groups` tests every group for a change,
paired, as :func:`~classgap.audit.compare.compare_predictions` tests classes.

Both reuse the per-class machinery rather than a copy of it:

* A group's *pooled* accuracy (its correct images over its images) is the support-weighted
  mean of its classes' accuracies; its *mean class accuracy* is the unweighted mean. Their
  bootstrap replicates are the class-stratified replicates of per-class accuracy (one run) or
  the two-level ones (several runs: seeds, then images) of :mod:`classgap.audit.intervals`,
  aggregated for every group of every level by a chain of sparse products (the finest level
  from the classes, each coarser level from its children), never a loop over groups.
* A group's comparison is the per-class comparison with each test label replaced by its
  group and whether a prediction was right left as it was: the same test and the interval
  that inverts it (McNemar's score test for one run a side, the crossed seeds x images test
  for several), then BH or Holm over the groups of each level (each level is one family).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from classgap._files import jsonable
from classgap._validation import (
    check_choice,
    check_labels,
    check_positive_int,
    check_random_state,
    check_same_length,
    fail,
    fmt_value,
)
from classgap.audit._labels import name_labels
from classgap.audit._runs import as_runs, check_runs, is_single_run
from classgap.audit._sampling import block_rows
from classgap.audit.compare import compare_predictions, paired_class_test
from classgap.audit.disparity import accuracy_std, best_worst_gap, worst_class
from classgap.audit.frame import ClassAudit, audit
from classgap.audit.groups import GroupMap
from classgap.audit.intervals import (
    ClipCounter,
    accuracy_blocks,
    binomial_floor,
    bootstrap_interval,
    check_confidence,
    clip_interval,
    quiet,
    seed_interval,
    two_level_bootstrap_accuracy,
    warn_clipped,
    wilson_interval,
)
from classgap.audit.multiplicity import adjust_pvalues
from classgap.audit.perclass import EmptyClassWarning
from classgap.errors import InputError

__all__ = ["GroupAudit", "GroupComparison", "audit_groups", "compare_groups"]

INTERVALS = ("auto", "bootstrap", "wilson", "seeds")
GROUP_COLUMNS = ("level", "group", "parent", "n_classes", "support", "accuracy", "low", "high",
                 "mean_class_accuracy", "mean_low", "mean_high", "worst_class",
                 "worst_class_accuracy")
LEVEL_COLUMNS = ("level", "n_groups", "worst_group", "worst_accuracy", "worst_low",
                 "worst_high", "best_worst_gap", "gap_low", "gap_high", "accuracy_std",
                 "std_low", "std_high")
COMPARE_COLUMNS = ("level", "group", "parent", "n_classes", "support", "acc_baseline",
                   "acc_candidate", "delta", "delta_low", "delta_high", "p_value", "q_value",
                   "verdict", "test", "b", "c", "mean_class_delta", "n_class_drop")


# ------------------------------------------------------------------------- result frames
def _locate(levels: Sequence[str], table: pd.DataFrame, group: Any, level: Any) -> str:
    """The level holding ``group`` (``level`` when given), or one error naming both."""
    if level is not None:
        level = check_choice(level, "level", levels)
    where = table["group"] == str(group)
    found = table.loc[where, "level"].tolist()
    if level is not None and level in found:
        return str(level)
    if level is None and len(found) == 1:
        return str(found[0])
    if level is None and found:
        raise fail("level", f"name one of the levels {', '.join(map(repr, found))}, at "
                   f"which {str(group)!r} is a group", None)
    known = table.loc[table["level"] == level, "group"] if level is not None else table["group"]
    close = difflib.get_close_matches(str(group), known.astype(str).tolist(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    at = f"at level {level!r}" if level is not None else "at any level"
    raise InputError(f"'group' must be a group of the map {at}; got "
                     f"{fmt_value(str(group))}{hint}")


@dataclass(frozen=True)
class GroupAudit:
    """Per-group audit of one model (one run or several seeds): :func:`audit_groups`.

    Attributes
    ----------
    groups : DataFrame
        One row per (level, group), levels coarse to fine, the worst group (lowest pooled
        accuracy) first within a level; columns ``level, group, parent, n_classes, support,
        accuracy, low, high`` (pooled over the group's images), ``mean_class_accuracy,
        mean_low, mean_high`` (the unweighted mean of its classes' accuracies),
        ``worst_class, worst_class_accuracy``. ``parent`` is None at the coarsest level.
    levels : DataFrame
        Disparity over the groups of each level (of their pooled accuracy): ``level,
        n_groups, worst_group, worst_accuracy, worst_low, worst_high, best_worst_gap,
        gap_low, gap_high, accuracy_std, std_low, std_high``, intervals from the bootstrap.
    classes : DataFrame
        The per-class audit table (:meth:`ClassAudit.to_frame`) and one column per level.
    """

    groups: pd.DataFrame
    levels: pd.DataFrame
    classes: pd.DataFrame
    n_runs: int
    confidence: float
    interval: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def worst_groups(self, level: str | None = None, k: int = 5) -> pd.DataFrame:
        """The ``k`` groups of lowest pooled accuracy of ``level`` (default: of every level),
        worst first."""
        k = check_positive_int(k, "k")
        table = self.groups
        if level is not None:
            table = table[table["level"] == check_choice(level, "level", self.levels["level"])]
        return table.groupby("level", sort=False).head(k)

    def expand(self, group: str, level: str | None = None) -> pd.DataFrame:
        """The classes of ``group`` (at ``level``; needed only when two levels share the
        name), worst first."""
        level = _locate(self.levels["level"].tolist(), self.groups, group, level)
        inside = self.classes[self.classes[level] == str(group)]
        return inside.sort_values("accuracy", kind="stable", na_position="last")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``groups``, ``levels`` and ``classes`` records, the settings."""
        return {"groups": jsonable(self.groups), "levels": jsonable(self.levels),
                "classes": jsonable(self.classes), "n_runs": self.n_runs,
                "confidence": self.confidence, "interval": self.interval,
                **{k: jsonable(v) for k, v in self.meta.items()}}


@dataclass(frozen=True)
class GroupComparison:
    """Paired per-group comparison of a baseline and a candidate: :func:`compare_groups`.

    Attributes
    ----------
    groups : DataFrame
        One row per (level, group), levels coarse to fine, the largest drop first within a
        level; columns ``level, group, parent, n_classes, support, acc_baseline,
        acc_candidate, delta, delta_low, delta_high, p_value, q_value, verdict, test, b, c,
        mean_class_delta, n_class_drop``: as :class:`~classgap.audit.compare.Comparison`'s
        per-class table, for the group's pooled images, with ``q_value`` over the groups of
        its level; ``mean_class_delta`` is the mean change of its classes (descriptive),
        ``n_class_drop`` how many of them the flat per-class comparison finds dropping.
    classes : DataFrame
        The per-class comparison table and one column per level.
    overall : dict
        :attr:`Comparison.overall`, and ``levels``: level -> ``n_groups, n_drop, n_gain``.
    """

    groups: pd.DataFrame
    classes: pd.DataFrame
    overall: dict[str, Any]

    def expand(self, group: str, level: str | None = None) -> pd.DataFrame:
        """The classes of ``group`` (at ``level``; needed only when two levels share the
        name), largest drop first."""
        levels = list(dict.fromkeys(self.groups["level"]))
        level = _locate(levels, self.groups, group, level)
        inside = self.classes[self.classes[level] == str(group)]
        return inside.sort_values("delta", kind="stable", na_position="last")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``overall``, ``groups`` and ``classes`` records."""
        return {"overall": jsonable(self.overall), "groups": jsonable(self.groups),
                "classes": jsonable(self.classes)}


# ------------------------------------------------------------------------- the flat index
@dataclass(frozen=True)
class _Flat:
    """Every group of every level in one index: group ``g`` of level ``l`` is
    ``start[l] + g``, so that one bincount serves all levels."""

    groups: GroupMap
    start: np.ndarray  # (L + 1,) offsets of the levels
    codes: np.ndarray  # (L, K) flat index of each class's group at each level

    @classmethod
    def of(cls, groups: GroupMap) -> _Flat:
        start = np.concatenate([[0], np.cumsum([len(n) for n in groups.names])])
        return cls(groups, start.astype(np.int64), groups.codes + start[:-1, None])

    @property
    def size(self) -> int:
        return int(self.start[-1])

    def level(self, i: int) -> slice:
        return slice(int(self.start[i]), int(self.start[i + 1]))

    def total(self, values: Any, keep: np.ndarray | None = None) -> np.ndarray:
        """(T,) sum of the per-class ``values`` (K,) over each group's classes (those in the
        boolean mask ``keep`` only, when given)."""
        codes, v = self.codes, np.asarray(values, dtype=np.float64)
        if keep is not None:
            codes, v = codes[:, keep], v[keep]
        return np.bincount(codes.ravel(), weights=np.broadcast_to(v, codes.shape).ravel(),
                           minlength=self.size)

    def frame(self) -> pd.DataFrame:
        """``level, group, parent, n_classes``: one row per group of the flat index."""
        g = self.groups
        parents: list[Any] = [None] * len(g.names[0])
        for i in range(1, len(g.levels)):
            parents += [g.names[i - 1][p] for p in g.parents(i).tolist()]
        return pd.DataFrame({
            "level": pd.Series(np.repeat(g.levels, np.diff(self.start)), dtype=object),
            "group": pd.Series([n for names in g.names for n in names], dtype=object),
            "parent": pd.Series(parents, dtype=object),
            "n_classes": self.total(np.ones(g.n_classes)).astype(np.int64),
        })

    def worst_first(self, table: pd.DataFrame, by: str) -> pd.DataFrame:
        """``table`` (one row per group) ordered by level, then ``by`` ascending (NaN last)."""
        level = np.repeat(np.arange(len(self.start) - 1), np.diff(self.start))
        value = table[by].to_numpy(dtype=np.float64)
        order = np.lexsort((np.where(np.isnan(value), np.inf, value), level))
        return table.iloc[order].reset_index(drop=True)


def _check_map(groups: Any, n_classes: Any) -> GroupMap:
    if not isinstance(groups, GroupMap):
        raise fail("groups", "be a GroupMap (read_group_map, GroupMap.from_columns)",
                   type(groups).__name__)
    if n_classes is not None and check_positive_int(n_classes, "n_classes") != groups.n_classes:
        raise fail("groups", f"map the {n_classes} classes of the predictions, in their "
                   "order (GroupMap.align(class_names))", f"a map of {groups.n_classes} classes")
    return groups


def _encode(y_true: Any, runs: list[Any], groups: GroupMap, names: list[str], run_name: str,
            ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels as class indices of the map (names map through its classes), each checked
    (``names``: what an error calls each run), and a label past the map's classes reported
    as a map that does not fit the predictions."""
    y_true, runs, _ = name_labels(y_true, runs, groups.classes, run_name=run_name)
    yt = check_labels(y_true, "y_true")
    checked = [check_labels(r, name) for r, name in zip(runs, names, strict=True)]
    top = max(int(y.max(initial=-1)) for y in [yt, *checked])
    if top >= groups.n_classes:
        raise fail("groups", f"map every class of the predictions (labels go up to {top}); "
                   "align it to their class names with GroupMap.align",
                   f"a map of {groups.n_classes} classes")
    return yt, checked


def _with_levels(table: pd.DataFrame, groups: GroupMap) -> pd.DataFrame:
    """``table`` (one row per class) with one column of group names per level."""
    clash = [level for level in groups.levels if level in table.columns]
    if clash:
        raise fail("groups", "name its levels unlike the columns of the class table "
                   f"({', '.join(map(repr, table.columns))})", f"level {clash[0]!r}")
    out = table.copy()
    for level, row, names in zip(groups.levels, groups.codes, groups.names, strict=True):
        out[level] = np.asarray(names, dtype=object)[row]
    return out


# ------------------------------------------------------------------------- audit_groups
@dataclass(frozen=True)
class _Aggregator:
    """Class accuracies -> every group's pooled accuracy and mean class accuracy, at every
    level, for many replicates at once.

    A chain of sparse products, finest level first: the classes' accuracies are added up
    into the finest groups' (weights ``n_k / n_group`` for the pooled accuracy and ``1 /
    classes`` for the mean), and each coarser level's from its children's (weights: the
    children's share of the parent's images, of its classes). Each step reads the level
    below once, so the classes' values are read once whatever the number of levels (one
    product per level over the classes read all 10,000 of them five times and took 35 ms a
    block of 200 replicates instead of 6 ms).
    """

    flat: _Flat
    steps: tuple[sparse.csr_array, ...]  # finest first: (2 G_fine, K'), then (2 G_l, 2 G_l+1)
    empty: np.ndarray  # (2T,) groups without images (no accuracy: NaN)

    @classmethod
    def of(cls, flat: _Flat, support: np.ndarray) -> _Aggregator:
        groups = flat.groups
        present = support > 0
        images, classes = flat.total(support), flat.total(np.ones(support.size), present)
        fine = len(groups.levels) - 1
        codes = groups.codes[fine][present]
        part = flat.level(fine)
        steps = [_two_sums(codes, support[present] / images[part][codes],
                           1.0 / classes[part][codes], len(groups.names[fine]), one_input=True)]
        for level in range(fine - 1, -1, -1):
            parent = groups.parents(level + 1)
            child, up = flat.level(level + 1), flat.level(level)
            with quiet():  # a parent without images: its children weigh 0 (and it is NaN)
                of_images = np.nan_to_num(images[child] / images[up][parent])
                of_classes = np.nan_to_num(classes[child] / classes[up][parent])
            steps.append(_two_sums(parent, of_images, of_classes, len(groups.names[level]),
                                   one_input=False))
        return cls(flat, tuple(steps), np.tile(images == 0, 2))

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """``(rows, K')`` accuracies of the classes with images -> ``(2T, rows)``: pooled
        accuracies (rows ``:T``), then mean class accuracies, in the flat order."""
        t = self.flat.size
        out = np.empty((2 * t, len(acc)))
        values = np.ascontiguousarray(acc.T)  # (K', rows): each class's values contiguous
        for step, level in zip(self.steps, range(len(self.steps) - 1, -1, -1), strict=True):
            values = step @ values  # (2 G_level, rows): pooled rows, then mean rows
            part, g = self.flat.level(level), len(self.flat.groups.names[level])
            out[part], out[t + part.start:t + part.stop] = values[:g], values[g:]
        out[self.empty] = np.nan
        return out


def _two_sums(rows: np.ndarray, pooled: np.ndarray, mean: np.ndarray, n_rows: int, *,
              one_input: bool) -> sparse.csr_array:
    """The sparse step adding entry ``j`` of the input into group ``rows[j]``, weighted by
    ``pooled[j]`` for the pooled accuracy (output rows ``:n_rows``) and ``mean[j]`` for the
    mean class accuracy (rows ``n_rows:``): from one input (the classes' accuracies) or from
    the pooled and mean rows of the level below, stacked."""
    n = rows.size
    cols = np.arange(n)
    shape = (2 * n_rows, n if one_input else 2 * n)
    return sparse.csr_array((np.concatenate([pooled, mean]),
                             (np.concatenate([rows, rows + n_rows]),
                              np.concatenate([cols, cols if one_input else cols + n]))),
                            shape=shape)


def _group_replicates(correct: np.ndarray, support: np.ndarray, aggregate: _Aggregator,
                      n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(2T, n_boot)`` bootstrap replicates of every group's pooled and mean class
    accuracy: the class-stratified replicates of the classes' accuracies (the two-level ones
    for several runs) aggregated per group, a block of replicates at a time; rows of groups
    without images are NaN (100 MB at 6,000 groups: float64, so that an interval's bound
    lands exactly on an accuracy, 2 x 0.6 - 0.4 = 0.8, as the estimates do)."""
    present = support > 0
    c, n = correct[:, present], support[present]
    if len(c) == 1:
        blocks = accuracy_blocks(c[0], n, n_boot, rng)
    else:
        reps = two_level_bootstrap_accuracy(c, n, n_boot=n_boot, random_state=rng)
        step = next(block_rows(n_boot, n.size))
        blocks = (reps[i:i + step] for i in range(0, n_boot, step))
    out = np.empty((2 * aggregate.flat.size, n_boot))
    done = 0
    for block in blocks:
        out[:, done:done + len(block)] = aggregate(block)
        done += len(block)
    return out


def _wilson_path(correct: np.ndarray, support: np.ndarray, flat: _Flat, mean: np.ndarray,
                 confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Sampling-free ``(low, high)``, shape (2T,): Wilson on each group's pooled counts, and
    a normal interval with the stratified variance for the mean class accuracy.

    Wilson treats the group's images as one binomial sample, the mix of classes random too;
    the stratified bootstrap holds each class's images fixed. The two variances differ by
    ``sum_k n_k (p_k - p)^2 / n^2`` (the spread of the class accuracies around the group's),
    so Wilson is the wider of the two, equal when the classes are equally hard. The normal
    interval of the mean class accuracy has the bootstrap's variance, ``sum_k p_k (1 - p_k) /
    n_k / m^2`` over the ``m`` classes with images (a class at 0 or 100% counts the variance
    of :func:`~classgap.audit.intervals.binomial_floor`, not 0). Several runs count as more
    images of each class (seed variance ignored, as Wilson does in :func:`audit`).
    """
    s = len(correct)
    present = support > 0
    low_p, high_p = wilson_interval(flat.total(correct.sum(axis=0)), s * flat.total(support),
                                    confidence)
    with quiet():
        m = s * support
        p = correct.sum(axis=0) / m
        var = np.where(present, p * (1.0 - p) / m, 0.0)
        var = np.where(present & (var == 0), binomial_floor(p, m), var)  # 10/10 is not certain
        half = (stats.norm.isf((1.0 - confidence) / 2.0) * np.sqrt(flat.total(var, present))
                / flat.total(np.ones(support.size), present))
    low_m, high_m = clip_interval(mean - half, mean + half, (0.0, 1.0), "mean class accuracy")
    return np.concatenate([low_p, low_m]), np.concatenate([high_p, high_m])


def _seeds_path(correct: np.ndarray, support: np.ndarray, aggregate: _Aggregator,
                confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``, shape (2T,): mean +/- t across runs of each group's per-run pooled
    and mean class accuracy (:func:`~classgap.audit.intervals.seed_interval`, its floor
    from the group's images)."""
    present = support > 0
    runs = aggregate(correct[:, present] / support[present]).T  # (S, 2T)
    images = np.tile(aggregate.flat.total(support), 2)
    _, low, high = seed_interval(runs, confidence, support=images)
    return low, high


def _worst_classes(flat: _Flat, accuracy: np.ndarray) -> np.ndarray:
    """(T,) the class of lowest accuracy in each group (the first on ties; -1 where no class
    of the group has images): one sort of (group, accuracy) pairs for all levels."""
    kept = np.flatnonzero(~np.isnan(accuracy))
    codes = flat.codes[:, kept].ravel()
    cls = np.tile(kept, flat.codes.shape[0])
    order = np.lexsort((accuracy[cls], codes))
    codes, cls = codes[order], cls[order]
    first = np.r_[True, codes[1:] != codes[:-1]]
    worst = np.full(flat.size, -1, dtype=np.int64)
    worst[codes[first]] = cls[first]
    return worst


_LEVEL_STATISTICS = (worst_class, best_worst_gap, accuracy_std)  # over the groups of a level


def _disparity(flat: _Flat, pooled: np.ndarray, replicates: np.ndarray,
               confidence: float) -> pd.DataFrame:
    """The ``levels`` table: worst group, best - worst gap and std of the groups' pooled
    accuracy per level, with basic bootstrap intervals from the groups' replicates
    (``(T, B)``): the interval of the worst-group accuracy, never that of the group that
    came out worst, whose accuracy is biased low (the basic interval reflects the bias back,
    as :func:`~classgap.audit.disparity.disparity_summary` does for classes)."""
    rows = []
    for i, level in enumerate(flat.groups.levels):
        part = flat.level(i)
        estimate = np.array([f(pooled[part]) for f in _LEVEL_STATISTICS])
        values = np.stack([f(replicates[part].T) for f in _LEVEL_STATISTICS], axis=1)
        low, high = bootstrap_interval(estimate, values, confidence=confidence, method="basic")
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
        worst = flat.groups.names[i][int(np.nanargmin(pooled[part]))]
        rows.append([level, part.stop - part.start, worst,
                     *np.stack([estimate, low, high], axis=1).ravel().tolist()])
    return pd.DataFrame(rows, columns=list(LEVEL_COLUMNS))


def audit_groups(y_true: Any, y_pred: Any, groups: GroupMap, *, n_classes: int | None = None,
                 confidence: float = 0.95, interval: str = "auto", n_boot: int = 1000,
                 random_state: int | np.random.Generator | None = 0,
                 class_audit: ClassAudit | None = None) -> GroupAudit:
    """Audit accuracy per group, at every level of a group map, with intervals.

    Parameters
    ----------
    y_true : array of shape (N,)
        True class indices in ``[0, K)``, or class names (mapped through ``groups.classes``).
    y_pred : array of shape (N,), or a sequence of such arrays / an (S, N) array
        Predicted classes (as ``y_true``); several arrays are several runs (seeds).
    groups : GroupMap
        Each class's group at each level, in the predictions' class order
        (:meth:`GroupMap.align`).
    n_classes : int, optional
        K, to check the map against (default: the map's number of classes).
    confidence : float
        Level of every interval.
    interval : {"auto", "bootstrap", "wilson", "seeds"}
        The groups' ``low, high`` and ``mean_low, mean_high``. ``"bootstrap"`` (``"auto"``):
        percentiles of the class-stratified bootstrap replicates aggregated per group (the
        two-level bootstrap, seeds then images, for several runs); the target is the group's
        accuracy on new test images of its classes, as many per class as here.
        ``"wilson"``: sampling-free, Wilson on the pooled counts (its target: the group's
        images as one binomial sample, the mix of classes random too, so it is wider when
        the group's classes differ) and a normal interval with the stratified variance for
        the mean class accuracy. ``"seeds"``: mean +/- t across runs. The ``levels`` table
        always uses the bootstrap replicates.
    n_boot : int
        Bootstrap replicates.
    random_state : int, Generator or None
        Seed of the bootstrap; the same seed gives the same intervals.
    class_audit : ClassAudit, optional
        The per-class audit of these predictions, when the caller has it (the CLI does):
        its table is reused, not computed again. Default: :func:`audit` with this call's
        settings.

    Returns
    -------
    GroupAudit

    Examples
    --------
    >>> gm = GroupMap.from_columns(["cat", "dog", "oak", "elm"],
    ...                            {"kind": ["animal", "animal", "plant", "plant"]})
    >>> y = np.repeat([0, 1, 2, 3], 10)
    >>> pred = y.copy()
    >>> pred[[0, 1, 2, 10]] = 2  # three cats and a dog taken for oaks
    >>> res = audit_groups(y, pred, gm, n_boot=200)
    >>> res.groups[["group", "support", "accuracy", "mean_class_accuracy", "worst_class"]]
        group  support  accuracy  mean_class_accuracy worst_class
    0  animal       20       0.8                  0.8         cat
    1   plant       20       1.0                  1.0         oak
    >>> res.expand("animal")["class"].tolist()
    ['cat', 'dog']
    """
    groups = _check_map(groups, n_classes)
    confidence = check_confidence(confidence)
    interval = check_choice(interval, "interval", INTERVALS)
    n_boot = check_positive_int(n_boot, "n_boot")
    runs = [y_pred] if is_single_run(y_pred) else list(y_pred)
    if not runs:
        raise fail("y_pred", "hold at least one run", "an empty sequence")
    names = ["y_pred"] if len(runs) == 1 else [f"y_pred[{i}]" for i in range(len(runs))]
    yt, runs = _encode(y_true, runs, groups, names, "y_pred")
    check_same_length([("y_true", yt), *zip(names, runs, strict=True)])
    rng = check_random_state(random_state)
    k = groups.n_classes
    if class_audit is None:
        class_audit = audit(yt, runs, n_classes=k, class_names=groups.classes, n_boot=n_boot,
                            confidence=confidence, interval=interval, random_state=rng)
    support = np.bincount(yt, minlength=k)
    if not np.array_equal(class_audit.by_class["support"].to_numpy(), support):
        raise fail("class_audit", "be the per-class audit of these predictions",
                   f"an audit of {len(class_audit.by_class)} classes with other supports")
    correct = np.stack([np.bincount(yt[r == yt], minlength=k) for r in runs])  # (S, K)

    flat = _Flat.of(groups)
    present = support > 0
    images = flat.total(support)
    with quiet():  # a class or group without images is NaN
        class_acc = (correct / support).mean(axis=0)
        pooled = flat.total(correct.mean(axis=0)) / images
        mean = (flat.total(np.nan_to_num(class_acc), present)
                / flat.total(np.ones(k), present))
    aggregate = _Aggregator.of(flat, support)
    replicates = _group_replicates(correct, support, aggregate, n_boot, rng)  # (2T, B)
    if interval in ("auto", "bootstrap"):
        interval = "bootstrap"
        tail = (1.0 - confidence) / 2.0  # percentile, along the contiguous rows
        low, high = np.quantile(replicates, [tail, 1.0 - tail], axis=1)
    elif interval == "wilson":
        low, high = _wilson_path(correct, support, flat, mean, confidence)
    else:
        low, high = _seeds_path(correct, support, aggregate, confidence)

    t = flat.size
    worst = _worst_classes(flat, class_acc)
    table = flat.frame()
    table["support"] = images.astype(np.int64)
    table["accuracy"], table["low"], table["high"] = pooled, low[:t], high[:t]
    table["mean_class_accuracy"], table["mean_low"], table["mean_high"] = mean, low[t:], high[t:]
    table["worst_class"] = pd.Series(np.where(worst >= 0, np.asarray(groups.classes,
                                                                      dtype=object)[worst], None),
                                     dtype=object)
    table["worst_class_accuracy"] = np.where(worst >= 0, class_acc[worst], np.nan)
    return GroupAudit(
        groups=flat.worst_first(table, "accuracy"),
        levels=_disparity(flat, pooled, replicates[:t], confidence),
        classes=_with_levels(class_audit.to_frame(), groups),
        n_runs=len(runs), confidence=confidence, interval=interval,
        meta={"n_boot": n_boot, "n_samples": len(yt), "n_classes": k},
    )


# ------------------------------------------------------------------------- compare_groups
def compare_groups(y_true: Any, preds_a: Any, preds_b: Any, groups: GroupMap, *,
                   n_classes: int | None = None, alpha: float = 0.05, correction: str = "bh",
                   test: str = "auto", confidence: float | None = None,
                   random_state: int | np.random.Generator | None = None) -> GroupComparison:
    """Compare a baseline (``preds_a``) and a candidate (``preds_b``) per group, paired.

    Each level is tested as classes are by
    :func:`~classgap.audit.compare.compare_predictions`, with each test label replaced by its
    group at that level and whether a prediction was right left as it was: the same test
    (``"auto"``: McNemar's score test for one run a side, the crossed seeds x images test for
    several), ``delta`` with the interval that inverts it (``p < 1 - confidence`` exactly when
    it excludes 0), q-values by ``correction`` over the groups of each level (a level is one
    family), and the verdict ``"drop"`` / ``"gain"`` / ``"none"`` at ``alpha``. The per-class
    comparison is computed once and gives each group's ``n_class_drop`` and
    ``mean_class_delta``.

    Parameters
    ----------
    y_true : array of shape (N,)
        Class indices, or class names (mapped through ``groups.classes``).
    preds_a, preds_b : array of shape (N,), sequence of such arrays, or (S, N) array
        One array per run (seed) of the baseline / the candidate.
    groups : GroupMap
        Each class's group at each level, in the predictions' class order.
    n_classes : int, optional
        K, to check the map against.
    alpha, correction, test, confidence, random_state
        As in :func:`~classgap.audit.compare.compare_predictions`.

    Returns
    -------
    GroupComparison

    Examples
    --------
    >>> gm = GroupMap.from_columns(["cat", "dog", "oak", "elm"],
    ...                            {"kind": ["animal", "animal", "plant", "plant"]})
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2, 3], 100)
    >>> a = np.where(rng.random(400) < 0.9, y, (y + 1) % 4)
    >>> b = np.where((y < 2) & (rng.random(400) < 0.2), 3, a)  # animals pay
    >>> res = compare_groups(y, a, b, gm)
    >>> res.groups[["group", "verdict", "n_class_drop"]].values.tolist()
    [['animal', 'drop', 2], ['plant', 'none', 0]]
    """
    groups = _check_map(groups, n_classes)
    a_runs, b_runs = as_runs(preds_a), as_runs(preds_b)
    names = ([f"preds_a[{i}]" for i in range(len(a_runs))]
             + [f"preds_b[{i}]" for i in range(len(b_runs))])
    yt, runs = _encode(y_true, [*a_runs, *b_runs], groups, names, "preds")
    a_runs, b_runs = runs[:len(a_runs)], runs[len(a_runs):]
    rng = check_random_state(random_state)
    k = groups.n_classes
    comparison = compare_predictions(yt, a_runs, b_runs, k, class_names=groups.classes,
                                     alpha=alpha, correction=correction, test=test,
                                     confidence=confidence, random_state=rng)
    overall = comparison.overall
    runs_a = check_runs(a_runs, "preds_a", len(yt), k)  # (Sa, N)
    runs_b = check_runs(b_runs, "preds_b", len(yt), k)  # (Sb, N)
    flat = _Flat.of(groups)
    support = flat.total(np.bincount(yt, minlength=k))
    if runs_a.shape == runs_b.shape and np.array_equal(runs_a, runs_b):
        # the same runs on both sides: no change whatever the noise, as compare_predictions
        p, low, high = (np.where(support > 0, v, np.nan) for v in (1.0, 0.0, 0.0))
    else:
        p, low, high = _group_tests(flat, yt, runs_a == yt, runs_b == yt, overall["test"],
                                    overall["confidence"], rng)
    p = np.where(support > 0, p, np.nan)

    classes = comparison.classes
    n = classes["support"].to_numpy(dtype=np.float64)
    present = n > 0
    with quiet():
        acc_a = flat.total(np.nan_to_num(classes["acc_baseline"].to_numpy() * n)) / support
        acc_b = flat.total(np.nan_to_num(classes["acc_candidate"].to_numpy() * n)) / support
        mean_delta = (flat.total(np.nan_to_num(classes["delta"].to_numpy()), present)
                      / flat.total(np.ones(k), present))
    delta = acc_b - acc_a
    q = np.concatenate([adjust_pvalues(p[flat.level(i)], overall["correction"])
                        for i in range(len(groups.levels))])
    significant = q < overall["alpha"]
    verdict = np.where(significant & (delta < 0), "drop",
                       np.where(significant & (delta > 0), "gain", "none"))
    table = flat.frame()
    table["support"] = support.astype(np.int64)
    for column, values in (("acc_baseline", acc_a), ("acc_candidate", acc_b), ("delta", delta),
                           ("delta_low", low), ("delta_high", high), ("p_value", p),
                           ("q_value", q)):
        table[column] = values
    table["verdict"] = pd.Series(verdict, dtype=object)
    table["test"] = overall["test"]
    table["b"] = flat.total(classes["b"]).round().astype(np.int64)
    table["c"] = flat.total(classes["c"]).round().astype(np.int64)
    table["mean_class_delta"] = mean_delta
    table["n_class_drop"] = flat.total(classes["verdict"] == "drop").astype(np.int64)
    by_level = {level: {"n_groups": len(names),
                        "n_drop": int((verdict[flat.level(i)] == "drop").sum()),
                        "n_gain": int((verdict[flat.level(i)] == "gain").sum())}
                for i, (level, names) in enumerate(zip(groups.levels, groups.names,
                                                       strict=True))}
    return GroupComparison(groups=flat.worst_first(table, "delta")[list(COMPARE_COLUMNS)],
                           classes=_with_levels(classes, groups),
                           overall={**overall, "levels": by_level})


def _group_tests(flat: _Flat, yt: np.ndarray, ok_a: np.ndarray, ok_b: np.ndarray, test: str,
                 confidence: float, rng: np.random.Generator,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p, low, high)`` of every group of every level: compare.py's per-class procedure on
    the images repeated once per level, each labelled with its group there (``(S, L N)``
    booleans: a few MB at 100,000 images, 5 levels and 5 runs), so all levels take one call.
    Interval clipping is said once, as compare_predictions says it."""
    n_levels = flat.codes.shape[0]
    y_group = flat.codes[:, yt].ravel()  # (L N,)
    clipped = ClipCounter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyClassWarning)
        p, low, high = clipped(paired_class_test, test, y_group, np.tile(ok_a, n_levels),
                               np.tile(ok_b, n_levels), flat.size, confidence, rng)
    if clipped.count:
        warn_clipped(clipped.count, (-1.0, 1.0), "change (Δ)", stacklevel=3)
    return p, low, high
