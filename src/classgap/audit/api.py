"""File-level entry points: prediction files in, audit or comparison out (what the CLI calls)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classgap.audit.compare import Comparison, compare_predictions
from classgap.audit.frame import ClassAudit, audit_predictions
from classgap.audit.io import align_runs, load_runs, read_class_names

PathLike = str | Path


def _class_names(classes: PathLike | Sequence[str] | None) -> tuple[str, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, str | Path):
        return read_class_names(classes)
    return tuple(classes)


def audit_files(paths: Sequence[PathLike], *, classes: PathLike | Sequence[str] | None = None,
                **kwargs: Any) -> ClassAudit:
    """Audit one model from its prediction files (several files = several seeds).

    ``classes`` is a list of class names or a JSON/txt file holding them; other keyword
    arguments go to :func:`classgap.audit.audit`.
    """
    names = _class_names(classes)
    return audit_predictions(load_runs(paths, classes=names), class_names=names, **kwargs)


def compare_files(baseline: Sequence[PathLike], candidate: Sequence[PathLike], *,
                  classes: PathLike | Sequence[str] | None = None, **kwargs: Any) -> Comparison:
    """Compare two recipes per class from their prediction files on the same test set.

    Each side is one or more files (seeds). Files are aligned by ``sample_id`` when present,
    otherwise they must list the same ``y_true`` in the same order. Keyword arguments go to
    :func:`classgap.audit.compare_predictions`.
    """
    names = _class_names(classes)
    (base, cand), n_classes, class_names = align_runs(
        load_runs(baseline, classes=names), load_runs(candidate, classes=names)
    )
    return compare_predictions(
        base[0].y_true,
        [r.y_pred for r in base],
        [r.y_pred for r in cand],
        n_classes,
        class_names=names or class_names,
        **kwargs,
    )
