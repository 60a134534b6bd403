"""The runs (seeds) of one side: one (N,) array, an (S, N) array or a sequence of S arrays.

Shared by :func:`~classgap.audit.frame.audit`,
:func:`~classgap.audit.compare.compare_predictions` and the grouped audits of
:mod:`classgap.audit.grouped`, so that all of them read a prediction argument the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from classgap._validation import check_labels, fail

__all__ = ["as_runs", "check_runs", "is_single_run"]


def is_single_run(y_pred: Any) -> bool:
    """True when ``y_pred`` is one run's labels, not a sequence of runs."""
    if isinstance(y_pred, np.ndarray):
        return y_pred.ndim == 1
    first = y_pred[0] if len(y_pred) else None
    return not (isinstance(first, Sequence | np.ndarray) and not isinstance(first, str))


def check_runs(preds: Any, name: str, n: int, k: int) -> np.ndarray:
    """Predictions of one or several runs as an (S, N) int64 array."""
    if isinstance(preds, np.ndarray) and preds.ndim in (1, 2):
        runs = [preds] if preds.ndim == 1 else list(preds)
    elif isinstance(preds, Sequence) and not isinstance(preds, str):
        runs = list(preds)
    else:
        raise fail(name, "be a sequence of prediction arrays (one per run)", type(preds))
    if not runs:
        raise fail(name, "hold at least one run", "an empty sequence")
    out = []
    for i, run in enumerate(runs):
        y = check_labels(run, f"{name}[{i}]", n_classes=k)
        if len(y) != n:
            raise fail(f"{name}[{i}]", f"have the same length as 'y_true' ({n})", len(y))
        out.append(y)
    return np.stack(out)


def as_runs(preds: Any) -> list[Any]:
    """The runs of one side as a list (validated later by :func:`check_runs`)."""
    if isinstance(preds, np.ndarray):
        return list(preds) if preds.ndim == 2 else [preds]
    if isinstance(preds, Sequence) and not isinstance(preds, str):
        return [preds] if len(preds) and isinstance(preds[0], str) else list(preds)
    return [preds]
