"""One way to print numbers: accuracies in percent, changes in signed points, p-values.

Every table, report and terminal line formats through these, so a missing value reads the
same everywhere (``n/a``) and a change of accuracy always carries its sign. Fractions in,
text out; anything that is not a finite number (None, NaN, a string) is missing.

>>> pct(0.6834), points(-0.021), points(None), pvalue(0.00004), pvalue(0.25)
('68.34', '-2.10', 'n/a', '4.0e-05', '0.250')
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

__all__ = ["MISSING", "finite", "pct", "points", "pvalue", "strength"]

MISSING = "n/a"


def finite(x: Any) -> bool:
    """Whether ``x`` reads as a finite number."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def pct(x: Any, digits: int = 2) -> str:
    """A fraction as percent, ``0.6834`` → ``"68.34"``."""
    return f"{100 * float(x):.{digits}f}" if finite(x) else MISSING


def points(x: Any, digits: int = 2) -> str:
    """A change of a fraction as signed percentage points, ``-0.021`` → ``"-2.10"``."""
    return f"{100 * float(x):+.{digits}f}" if finite(x) else MISSING


def pvalue(x: Any) -> str:
    """A p- or q-value: three decimals, scientific below 0.001."""
    if not finite(x):
        return MISSING
    return f"{float(x):.1e}" if float(x) < 1e-3 else f"{float(x):.3f}"


def strength(value: Any) -> str:
    """A regularizer strength as text (``1.0`` → ``1``, strings unchanged)."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{float(value):g}"
    return str(value)
