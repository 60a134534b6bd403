"""Class labels given as names (``"six"``) instead of indices: one mapping, used everywhere.

Prediction tables people export often carry class names. They are mapped to indices once, at
the boundary (:mod:`classgap.audit.io` for files, :func:`classgap.audit.audit` and
:func:`classgap.audit.compare_predictions` for arrays):

* through the class list when one is given (``--classes``, ``classes=``, a ``classes`` field);
  a name not in it is one error naming the field, the row and the value;
* otherwise through the sorted unique names of all the label arrays together (``y_true`` and
  ``y_pred`` of every file compared), said in one :class:`InferredClassesWarning`. Sorting is
  the one order that does not depend on which names happen to come first in a file, so the
  same names give the same class list on both sides of a comparison.

Names and indices do not mix: a column of numbers beside a column of names is ambiguous (is
``3`` the class named ``"3"`` or the fourth class?) and is refused.

>>> import numpy as np
>>> (y,), classes = encode_labels([("y_true", ["dog", "cat", "dog"])], ("cat", "dog"))
>>> y.tolist(), classes
([1, 0, 1], ('cat', 'dog'))
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from classgap._validation import fail
from classgap.errors import InputError

__all__ = ["InferredClassesWarning", "encode_labels", "infer_classes", "is_text", "name_labels",
           "text_values"]

SHOWN_NAMES = 10  # class names quoted in a warning before "and N more"


class InferredClassesWarning(UserWarning):
    """Labels were class names and no class list was given: the sorted names were used."""


def is_text(y: Any) -> bool:
    """Whether a label array holds names (str / bytes) rather than numbers."""
    if y is None:
        return False
    arr = y if isinstance(y, np.ndarray) else np.asarray(y, dtype=object)
    if arr.dtype.kind in "US":
        return True
    if arr.dtype.kind != "O":
        return False
    kind = pd.api.types.infer_dtype(arr.ravel(), skipna=True)  # one C pass, not a Python loop
    if kind in ("string", "bytes"):
        return True
    if kind in ("integer", "floating", "mixed-integer-float", "boolean", "empty", "decimal"):
        return False
    return any(isinstance(v, str | bytes) for v in arr.ravel().tolist())  # mixed objects


def text_values(y: Any, name: str, *, source: str | None = None,
                error: type[Exception] = InputError) -> np.ndarray:
    """The names of a text label array as a 1-D ``str`` array; a missing cell or a number
    among names is one error naming the row."""
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if arr.ndim != 1:
        raise fail(name, "be a 1-D array of class names", f"shape {arr.shape}",
                   source=source, error=error)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "O" and pd.api.types.infer_dtype(arr, skipna=False) == "string":
        return arr.astype(str)  # every cell a str: no cell to name in an error
    values = arr.tolist()
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        if not isinstance(v, str):
            missing = v is None or (isinstance(v, float) and v != v) or v is pd.NA
            shown = f"empty cell at row {i}" if missing else f"{v!r} at row {i}"
            raise fail(name, "hold class names on every row (names and numbers do not mix)",
                       shown, source=source, error=error)
        out.append(v)
    return np.array(out, dtype=str) if out else np.zeros(0, dtype=str)


def infer_classes(arrays: Sequence[np.ndarray]) -> tuple[str, ...]:
    """The sorted unique names over ``arrays`` (each a 1-D ``str`` array)."""
    names: set[str] = set()
    for arr in arrays:
        names.update(np.unique(arr).tolist())
    return tuple(sorted(names))


def warn_inferred(classes: Sequence[str], what: str, *, stacklevel: int = 3) -> None:
    """One :class:`InferredClassesWarning` listing the class list taken from the names."""
    shown = ", ".join(repr(c) for c in classes[:SHOWN_NAMES])
    more = f" and {len(classes) - SHOWN_NAMES} more" if len(classes) > SHOWN_NAMES else ""
    warnings.warn(
        f"{what}: labels are class names; with no class list given, the classes are their "
        f"{len(classes)} sorted unique names ({shown}{more}); give the class names (--classes "
        "or classes=) to fix the order or to add classes absent from the labels",
        InferredClassesWarning, stacklevel=stacklevel)


def encode_labels(fields: Sequence[tuple[str, Any]], classes: Sequence[str] | None, *,
                  source: str | None = None, error: type[Exception] = InputError,
                  classes_from: str | None = None,
                  ) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Map name labels to int64 class indices through ``classes`` (inferred when None).

    Parameters
    ----------
    fields : sequence of (name, array of shape (N,)) pairs
        The label arrays, every one of them holding names.
    classes : sequence of K names, optional
        The class list; default the sorted unique names of all ``fields`` (no warning here:
        the caller says it once, where it knows what the labels came from).
    source, error : the file in messages and the error type (as :func:`~classgap._validation.fail`).
    classes_from : where ``classes`` came from, for messages (``"names.txt"``); default
        ``"the classes"``.

    Returns
    -------
    (list of int64 arrays of shape (N,), tuple of K names)
    """
    texts = [(name, text_values(y, name, source=source, error=error)) for name, y in fields]
    names = tuple(classes) if classes is not None else infer_classes([t for _, t in texts])
    index = pd.Index(names)
    out = []
    for name, values in texts:
        codes = index.get_indexer(values) if len(values) else np.zeros(0, dtype=np.int64)
        unknown = np.flatnonzero(codes < 0)
        if unknown.size:
            i = int(unknown[0])
            close = difflib.get_close_matches(str(values[i]), list(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = classes_from or "the classes"
            raise error(f"{_subject(name, source)} must hold names listed in {where} "
                        f"({len(names)} names); got {str(values[i])!r} at row {i}, not among them"
                        f"{hint}")
        out.append(codes.astype(np.int64))
    return out, names


def _subject(name: str, source: str | None) -> str:
    return f"{source}: field '{name}'" if source else f"'{name}'"


def name_labels(y_true: Any, runs: Sequence[Any], class_names: Sequence[str] | None, *,
                run_name: str = "y_pred",
                ) -> tuple[Any, list[Any], Sequence[str] | None]:
    """Labels given as class names, mapped to indices (unchanged when they are numbers).

    Through ``class_names`` when given, else through the sorted unique names of ``y_true``
    and every run (one :class:`InferredClassesWarning`). Returns
    ``(y_true, runs, class_names)``.
    """
    if not (is_text(y_true) or any(is_text(r) for r in runs)):
        return y_true, list(runs), class_names
    fields = [("y_true", y_true)] + [
        (run_name if len(runs) == 1 else f"{run_name}[{i}]", r) for i, r in enumerate(runs)]
    codes, names = encode_labels(fields, None if class_names is None else
                                 [str(c) for c in class_names],
                                 classes_from=None if class_names is None else "'class_names'")
    if class_names is None:
        warn_inferred(names, "'y_true'/'y_pred'", stacklevel=4)
    return codes[0], codes[1:], names
