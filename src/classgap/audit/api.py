"""File-level entry points: prediction files in, audit or comparison out (what the CLI calls)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from classgap._validation import fail
from classgap.audit.compare import Comparison, compare_predictions
from classgap.audit.disparity import difficulty_tertiles
from classgap.audit.frame import ClassAudit, audit_predictions
from classgap.audit.io import Predictions, align_runs, load_groups, read_class_names
from classgap.audit.perclass import class_counts
from classgap.errors import DataFormatError

if TYPE_CHECKING:  # the grouped audits load on demand
    from classgap.audit.grouped import GroupAudit, GroupComparison
    from classgap.audit.groups import GroupMap
    from classgap.audit.hierarchical import TreeComparison

PathLike = str | Path


def _class_names(classes: PathLike | Sequence[str] | None) -> tuple[str, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, str | Path):
        return read_class_names(classes)
    return tuple(classes)


def _load(groups: Sequence[Sequence[PathLike] | PathLike],
          classes: PathLike | Sequence[str] | None,
          names: tuple[str, ...] | None) -> list[list[Predictions]]:
    """The runs of each group of files, read together: class-name labels map through
    ``names``, else through one class list for all the files. A name count that does not fit
    the files is an error about the names (the file, both counts), not about a prediction
    field."""
    where = str(classes) if isinstance(classes, str | Path) else "'classes'"
    lists = [[g] if isinstance(g, str | Path) else list(g) for g in groups]
    for group in lists:
        if not group:
            raise fail("paths", "hold at least one prediction file", group)
    return load_groups(lists, classes=names, classes_from=where if names is not None else None)


def read_class_counts(path: PathLike) -> np.ndarray:
    """Per-class training counts from a JSON list or a text file with one integer per line."""
    source, file = str(path), Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{source}: cannot be read ({exc.__class__.__name__})") from exc
    try:
        values = json.loads(text) if file.suffix.lower() == ".json" else [
            int(line) for line in text.split() if line.strip()]
    except ValueError as exc:
        raise DataFormatError(f"{source}: must hold one integer count per class ({exc})") from exc
    counts = np.asarray(values)
    if counts.ndim != 1 or counts.size == 0 or counts.dtype.kind not in "iu" or (counts < 0).any():
        raise fail("counts", "be a non-empty list of integers >= 0", str(values)[:60],
                   source=source, error=DataFormatError)
    return counts.astype(np.int64)


def audit_files(paths: Sequence[PathLike], *, classes: PathLike | Sequence[str] | None = None,
                train_counts: PathLike | Sequence[int] | None = None,
                reference: Sequence[PathLike] | None = None, top_k: int | None = None,
                posthoc_tau: float | None = None,
                adjust: Callable[[Predictions], Predictions] | None = None,
                **kwargs: Any) -> ClassAudit:
    """Audit one model from its prediction files (several files = several seeds).

    Parameters
    ----------
    paths : prediction files of one recipe.
    classes : class names, or a JSON/txt file holding them.
    train_counts : per-class training counts (or a file of them); adds many / medium / few
        group accuracies (> 100, 20–100, < 20 training images).
    reference : prediction files of a reference model on the same test set; adds
        easy / medium / hard group accuracies (tertiles of the reference's per-class accuracy).
    top_k : also report per-class top-k accuracy (needs scores in the files).
    posthoc_tau : audit post-hoc logit-adjusted predictions ``argmax(z - τ log π)`` (Menon et
        al. 2021) instead of the files' own: needs logits in the files and ``train_counts``
        (π = the training class frequencies).
    adjust : a function applied to each run of ``paths`` (not the reference) before the
        audit, e.g. a post-hoc decision rule (``functools.partial(classgap.fix.apply_rule,
        rule)``): the audit is then of the adjusted predictions.
    **kwargs : passed to :func:`classgap.audit.audit` (``n_boot``, ``confidence``, ...).
    """
    names = _class_names(classes)
    runs, summary_groups = _audit_runs(paths, classes, names, train_counts, reference,
                                       posthoc_tau, adjust)
    return audit_predictions(runs, class_names=names, groups=summary_groups or None,
                             top_k=top_k, **kwargs)


def _audit_runs(paths: Sequence[PathLike], classes: PathLike | Sequence[str] | None,
                names: tuple[str, ...] | None, train_counts: PathLike | Sequence[int] | None,
                reference: Sequence[PathLike] | None, posthoc_tau: float | None,
                adjust: Callable[[Predictions], Predictions] | None,
                ) -> tuple[list[Predictions], dict[str, np.ndarray]]:
    """The runs :func:`audit_files` audits (adjusted, or logit-adjusted), and the class
    groups of its disparity summary (frequency, difficulty)."""
    # the reference is read with the runs: name labels then map to one class list for both
    loaded = _load([paths, reference] if reference is not None else [paths], classes, names)
    runs = loaded[0] if adjust is None else [adjust(r) for r in loaded[0]]
    groups: dict[str, np.ndarray] = {}
    if train_counts is not None:
        from classgap.audit.disparity import frequency_groups

        counts = (read_class_counts(train_counts) if isinstance(train_counts, str | Path)
                  else np.asarray(train_counts))
        (runs,), n_classes, _ = align_runs(runs)
        if len(counts) != n_classes:
            raise DataFormatError(f"{train_counts}: must hold one count per class "
                                  f"({n_classes}); got {len(counts)} counts")
        groups["frequency"] = frequency_groups(counts)
        if posthoc_tau is not None:
            runs = [_posthoc(r, counts, posthoc_tau) for r in runs]
    elif posthoc_tau is not None:
        raise fail("posthoc_tau", "come with train_counts (the prior it removes)", posthoc_tau)
    if reference is not None:
        (runs, ref), n_classes, _ = align_runs(runs, loaded[1])
        accuracy = np.mean([_accuracy(r.y_true, r.y_pred, n_classes) for r in ref], axis=0)
        groups["difficulty"] = difficulty_tertiles(accuracy)
    return runs, groups


def _posthoc(run: Predictions, counts: np.ndarray, tau: float) -> Predictions:
    """``run`` with predictions ``argmax(logits - tau * log(prior))``."""
    if run.scores is None or run.score_kind != "logits":
        raise fail("posthoc_tau", "be used with prediction files holding logits", tau,
                   source=run.source)
    if (counts <= 0).any():
        raise fail("train_counts", "be > 0 for every class (log prior)", counts.tolist())
    log_prior = np.log(counts / counts.sum())
    adjusted = run.scores - float(tau) * log_prior  # (N, K)
    return Predictions(y_true=run.y_true, y_pred=adjusted.argmax(axis=1), scores=adjusted,
                       score_kind="logits", sample_id=run.sample_id, seed=run.seed,
                       classes=run.classes, source=run.source)


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    support, correct = class_counts(y_true, y_pred, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / support


def compare_files(baseline: Sequence[PathLike], candidate: Sequence[PathLike], *,
                  classes: PathLike | Sequence[str] | None = None,
                  adjust: Callable[[Predictions], Predictions] | None = None,
                  **kwargs: Any) -> Comparison:
    """Compare two recipes per class from their prediction files on the same test set.

    Each side is one or more files (seeds). Files are aligned by ``sample_id`` when present,
    otherwise they must list the same ``y_true`` in the same order. ``adjust`` is applied to
    each candidate run first (a post-hoc decision rule fit for the candidate recipe). Keyword
    arguments go to :func:`classgap.audit.compare_predictions`.
    """
    pair = _paired_runs(baseline, candidate, classes, adjust)
    return compare_predictions(pair.y_true, pair.baseline, pair.candidate, pair.n_classes,
                               class_names=pair.classes, **kwargs)


@dataclass(frozen=True)
class _Paired:
    """Both sides' predictions aligned on one test set."""

    y_true: np.ndarray        # (N,)
    baseline: list[np.ndarray]   # one (N,) array per run
    candidate: list[np.ndarray]
    n_classes: int
    classes: tuple[str, ...]


def _paired_runs(baseline: Sequence[PathLike], candidate: Sequence[PathLike],
                 classes: PathLike | Sequence[str] | None,
                 adjust: Callable[[Predictions], Predictions] | None) -> _Paired:
    names = _class_names(classes)
    base_runs, cand_runs = _load([baseline, candidate], classes, names)
    if adjust is not None:
        cand_runs = [adjust(r) for r in cand_runs]
    (base, cand), n_classes, file_names = align_runs(base_runs, cand_runs)
    return _Paired(base[0].y_true, [r.y_pred for r in base], [r.y_pred for r in cand],
                   n_classes, _names_or_indices(names or file_names, n_classes))


def _names_or_indices(names: Sequence[str] | None, n_classes: int) -> tuple[str, ...]:
    """The class names an audit shows: the given ones, else ``"0"`` .. ``"K-1"``."""
    return tuple(str(c) for c in (names if names is not None else range(n_classes)))


# -- grouped audits (``--groups``) -----------------------------------------------------------
GroupSource = Union["GroupMap", Callable[[tuple[str, ...]], "GroupMap"]]
"""A group map, or a function of the audit's class names returning one aligned to them (what
the CLI passes: it reads ``--groups`` once the class names are known)."""


@dataclass(frozen=True)
class GroupedAudit:
    """One model's per-class audit and its per-group statistics, on one group map."""

    audit: ClassAudit
    groups: GroupAudit
    group_map: GroupMap


@dataclass(frozen=True)
class GroupedComparison:
    """A per-class comparison, its per-group comparisons (each level on its own) and the
    hierarchical test over the whole tree."""

    comparison: Comparison
    groups: GroupComparison
    tree: TreeComparison
    group_map: GroupMap


def audit_group_files(paths: Sequence[PathLike], groups: GroupSource, *,
                      classes: PathLike | Sequence[str] | None = None,
                      train_counts: PathLike | Sequence[int] | None = None,
                      reference: Sequence[PathLike] | None = None, top_k: int | None = None,
                      posthoc_tau: float | None = None,
                      adjust: Callable[[Predictions], Predictions] | None = None,
                      n_boot: int = 1000, confidence: float = 0.95, interval: str = "auto",
                      random_state: int | None = 0, **kwargs: Any) -> GroupedAudit:
    """:func:`audit_files`, and the same runs audited per group of ``groups``.

    The group map is resolved (and so checked against the class names) before any statistic
    is computed. ``n_boot``, ``confidence``, ``interval`` and ``random_state`` apply to both
    audits; other keyword arguments go to :func:`classgap.audit.audit`.
    """
    from classgap.audit.grouped import audit_groups

    names = _class_names(classes)
    runs, summary_groups = _audit_runs(paths, classes, names, train_counts, reference,
                                       posthoc_tau, adjust)
    (runs,), n_classes, file_names = align_runs(runs)
    group_map = _group_map(groups, _names_or_indices(names or file_names, n_classes))
    shared: dict[str, Any] = {"n_boot": n_boot, "confidence": confidence,
                              "interval": interval, "random_state": random_state}
    result = audit_predictions(runs, class_names=names, groups=summary_groups or None,
                               top_k=top_k, **shared, **kwargs)
    grouped = audit_groups(runs[0].y_true, [r.y_pred for r in runs], group_map,
                           n_classes=n_classes, class_audit=result, **shared)
    return GroupedAudit(result, grouped, group_map)


def compare_group_files(baseline: Sequence[PathLike], candidate: Sequence[PathLike],
                        groups: GroupSource, *,
                        classes: PathLike | Sequence[str] | None = None,
                        adjust: Callable[[Predictions], Predictions] | None = None,
                        alpha: float = 0.05, correction: str = "bh", test: str = "auto",
                        confidence: float | None = None,
                        random_state: int | None = None,
                        tree_levels: Sequence[str] | None = None,
                        tree_method: str = "fdr") -> GroupedComparison:
    """:func:`compare_files`, each level's groups compared on their own (``correction`` over
    the groups of a level), and the hierarchical test of the whole tree
    (:func:`~classgap.audit.hierarchical.compare_tree`, its own error control), run on the
    per-group comparison rather than computing it again; ``tree_levels`` picks the levels it
    goes down (default all), ``tree_method`` its procedure (``fdr``, ``fwer``,
    ``yekutieli``)."""
    from classgap.audit.grouped import compare_groups
    from classgap.audit.hierarchical import tree_comparison

    pair = _paired_runs(baseline, candidate, classes, adjust)
    group_map = _group_map(groups, pair.classes)
    sides = (pair.y_true, pair.baseline, pair.candidate)
    shared: dict[str, Any] = {"alpha": alpha, "test": test, "confidence": confidence,
                              "random_state": random_state}
    comparison = compare_predictions(*sides, pair.n_classes, class_names=pair.classes,
                                     correction=correction, **shared)
    by_group = compare_groups(*sides, group_map, n_classes=pair.n_classes,
                              correction=correction, **shared)
    tree = tree_comparison(by_group, group_map, levels=tree_levels, alpha=alpha,
                           method=tree_method)
    return GroupedComparison(comparison, by_group, tree, group_map)


def _group_map(groups: GroupSource, classes: tuple[str, ...]) -> GroupMap:
    from classgap.audit.groups import GroupMap

    return groups.align(classes) if isinstance(groups, GroupMap) else groups(classes)
