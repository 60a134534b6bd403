"""Input checks with one message template.

Every message names the parameter (and the file, when there is one), the constraint and the
offending value, in the scikit-learn style::

    'confidence' must be in (0, 1); got 1.5
    preds.npz: field 'y_true' must hold integers in [0, 9]; got 12 at row 3
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from classgap.errors import InputError


def fmt_value(value: Any, limit: int = 60) -> str:
    """Short, readable repr of an offending value for an error message.

    A string holding a space is already a description (``"12 at row 3"``, ``"shape (3, 2)"``)
    and is shown as is; any other value is shown by its repr (``'xml'``, ``1.5``).
    """
    if isinstance(value, np.generic):
        value = value.item()
    text = value if isinstance(value, str) and " " in value else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def where(name: str, source: str | None = None) -> str:
    """``"'name'"`` or ``"file: field 'name'"``: the subject of an error message."""
    return f"{source}: field '{name}'" if source else f"'{name}'"


def fail(name: str, constraint: str, value: Any, *, source: str | None = None,
         error: type[Exception] = InputError) -> Exception:
    """Build (not raise) the error ``<subject> must <constraint>; got <value>``."""
    return error(f"{where(name, source)} must {constraint}; got {fmt_value(value)}")


def check_in_range(value: float, name: str, low: float, high: float, *,
                   inclusive: tuple[bool, bool] = (True, True)) -> float:
    """Check ``low <= value <= high`` (ends open or closed per ``inclusive``)."""
    number = isinstance(value, int | float | np.integer | np.floating) \
        and not isinstance(value, bool)
    lo_ok = number and (value >= low if inclusive[0] else value > low)
    hi_ok = number and (value <= high if inclusive[1] else value < high)
    if not (lo_ok and hi_ok):
        left = "[" if inclusive[0] else "("
        right = "]" if inclusive[1] else ")"
        raise fail(name, f"be in {left}{low}, {high}{right}", value)
    return value


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Check that ``value`` is an integer >= ``minimum`` (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise fail(name, f"be an integer >= {minimum}", value)
    return int(value)


def check_choice(value: str, name: str, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices``; suggest the closest name otherwise."""
    options = list(choices)
    if value in options:
        return value
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(
        f"'{name}' must be one of {', '.join(map(repr, options))}; got {fmt_value(value)}{hint}"
    )


def check_labels(y: Any, name: str, *, n_classes: int | None = None,
                 source: str | None = None) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array of class indices, or raise naming the bad entry.

    Accepts integer arrays and float arrays holding whole numbers (as CSV readers produce).
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise fail(name, "be a 1-D array of class indices", f"shape {arr.shape}", source=source)
    if arr.size and arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise fail(name, "hold integers", f"{arr[i].item()!r} at row {i}", source=source)
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "b" or (arr.size and arr.dtype.kind not in "iu"):
        raise fail(name, "hold integer class indices", f"dtype {arr.dtype}", source=source)
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        upper = None if n_classes is None else n_classes - 1
        bad = arr < 0 if upper is None else (arr < 0) | (arr > upper)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            rng = "[0, inf)" if upper is None else f"[0, {upper}]"
            raise fail(name, f"hold integers in {rng}", f"{arr[i]} at row {i}", source=source)
    return arr


def check_same_length(arrays: Sequence[tuple[str, Any]], *, source: str | None = None) -> int:
    """Check that every named array has the same first dimension; return it."""
    lengths = [(n, len(a)) for n, a in arrays]
    first_name, first = lengths[0]
    for n, length in lengths[1:]:
        if length != first:
            raise fail(n, f"have the same length as '{first_name}' ({first})", length,
                       source=source)
    return first


def check_finite(x: Any, name: str, *, source: str | None = None) -> np.ndarray:
    """Return ``x`` as a float array, or raise naming the first NaN/inf entry."""
    arr = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
        at = f"row {idx[0]}" if arr.ndim == 1 else f"row {idx[0]}, column {idx[1]}"
        raise fail(name, "be finite", f"{arr[idx].item()!r} at {at}", source=source)
    return arr


def check_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """``random_state`` as a ``numpy.random.Generator`` (int seeds give reproducible ones)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, int | np.integer)
                                and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise fail("random_state", "be None, an int or a numpy Generator", random_state)
