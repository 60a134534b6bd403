"""File-level entry points: prediction files in, audit or comparison out (what the CLI calls)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classgap._validation import fail
from classgap.audit.compare import Comparison, compare_predictions
from classgap.audit.disparity import difficulty_tertiles
from classgap.audit.frame import ClassAudit, audit_predictions
from classgap.audit.io import Predictions, align_runs, load_groups, read_class_names
from classgap.audit.perclass import class_counts
from classgap.errors import DataFormatError

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
    return audit_predictions(runs, class_names=names, groups=groups or None, top_k=top_k,
                             **kwargs)


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
    names = _class_names(classes)
    base_runs, cand_runs = _load([baseline, candidate], classes, names)
    if adjust is not None:
        cand_runs = [adjust(r) for r in cand_runs]
    (base, cand), n_classes, class_names = align_runs(base_runs, cand_runs)
    return compare_predictions(
        base[0].y_true,
        [r.y_pred for r in base],
        [r.y_pred for r in cand],
        n_classes,
        class_names=names or class_names,
        **kwargs,
    )
