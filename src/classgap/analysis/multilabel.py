"""Multi-label ground truth (ReaL style): is a drop real, or only label ambiguity?

A JSON file holds, for every test sample, the list of labels a careful annotator accepts.
Under that truth a prediction is correct when it is in the sample's list. Samples keep their
original class for grouping (so "class 7 under the multi-label truth" is the same set of
images); a sample with an empty list has no acceptable label and is left out, as ReaL does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from classgap.errors import DataFormatError, InputError

__all__ = ["acceptance_matrix", "check_multi_label", "load_multi_label", "multilabel_view"]


def check_multi_label(labels: Any, n_test: int, n_classes: int, *,
                      source: str | None = None) -> list[list[int]]:
    """Validate a list (one per test sample) of lists of acceptable class indices.

    Raises
    ------
    InputError (in memory) or DataFormatError (``source`` given)
        Naming the file and the offending position, e.g.
        ``real.json: position 3 must be a list of integers in [0, 9]; got [12]``.
    """
    error = DataFormatError if source else InputError
    subject = f"{source}: " if source else "'multi_label' "

    def bad(what: str, value: Any) -> Exception:
        return error(f"{subject}{what}; got {str(value)[:60]}")

    if not isinstance(labels, list):
        raise bad("must be a JSON list (one list of labels per test sample)",
                  type(labels).__name__)
    if len(labels) != n_test:
        raise bad(f"must hold one entry per test sample ({n_test})", f"{len(labels)} entries")
    out = []
    for i, entry in enumerate(labels):
        rule = f"position {i} must be a list of integers in [0, {n_classes - 1}]"
        if not isinstance(entry, list):
            raise bad(rule, repr(entry))
        for label in entry:
            # bool is an int subclass: true/false in a label list is a typo, not class 1/0
            if isinstance(label, bool) or not isinstance(label, int | np.integer) \
                    or not 0 <= label < n_classes:
                raise bad(rule, repr(entry))
        out.append(sorted({int(label) for label in entry}))
    return out


def load_multi_label(path: str | os.PathLike[str], n_test: int,
                     n_classes: int) -> list[list[int]]:
    """Read a ReaL-style JSON file: ``[[3], [1, 7], [], ...]``, one list per test sample.

    Parameters
    ----------
    path : path-like
    n_test : int
        Number of test samples N (the file must have exactly N entries, in test order).
    n_classes : int

    Returns
    -------
    list of N sorted lists of int

    Raises
    ------
    DataFormatError
        Missing file, invalid JSON, wrong length, or a bad entry (naming its position).
    """
    source = str(path)
    file = Path(path)
    if not file.is_file():
        raise DataFormatError(f"{source}: multi-label file does not exist")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{source}: is not a readable JSON file ({exc})") from exc
    return check_multi_label(data, n_test, n_classes, source=source)


def acceptance_matrix(multi_label: list[list[int]], n_classes: int) -> np.ndarray:
    """(N, K) bool: ``[i, c]`` is True when label c is acceptable for sample i."""
    rows = np.repeat(np.arange(len(multi_label)), [len(e) for e in multi_label])
    cols = np.fromiter((c for e in multi_label for c in e), dtype=np.int64, count=len(rows))
    out = np.zeros((len(multi_label), n_classes), bool)
    out[rows, cols] = True
    return out


def multilabel_view(y_true: np.ndarray, preds: np.ndarray, accept: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Labels under which plain accuracy equals multi-label accuracy, to reuse the audit tests.

    A prediction in the sample's list becomes ``y_true`` (right); one outside it becomes a label
    different from ``y_true`` (wrong: the prediction itself, or the next class when the
    prediction was the original label that the annotators rejected).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    preds : array of int, shape (S, N)
    accept : array of bool, shape (N, K)

    Returns
    -------
    y_kept : array of int, shape (N',)
        ``y_true`` without the samples that have no acceptable label.
    preds_kept : array of int, shape (S, N')
    """
    n_classes = accept.shape[1]
    ok = accept[np.arange(len(y_true))[None, :], preds]  # (S, N)
    wrong = np.where(preds != y_true, preds, (y_true + 1) % n_classes)
    view = np.where(ok, y_true[None, :], wrong)
    keep = accept.any(axis=1)
    return y_true[keep], view[:, keep]
