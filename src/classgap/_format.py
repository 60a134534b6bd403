"""One way to print numbers and data strings: accuracies in percent, changes in signed
points, p-values, and class names, paths or quoted values as one line of literal text.

Every table, report and terminal line formats through these, so a missing value reads the
same everywhere (``n/a``) and a change of accuracy always carries its sign. Fractions in,
text out; anything that is not a finite number (None, NaN, a string) is missing.

>>> pct(0.6834), points(-0.021), points(None), pvalue(0.00004), pvalue(0.25)
('68.34', '-2.10', 'n/a', '4.0e-05', '0.250')

A data string is shown as one line whatever it holds: a newline in a class name reads ``\\n``
in every table, figure and report (JSON and CSV keep the name exactly), and quoted error text
loses its colour codes.

>>> print(literal("a\\nb"), shorten("x" * 80, 12), error_line("\\x1b[31mboom\\x1b[0m\\n  line 2"))
a\\nb xxxxxxx…xxxx boom line 2
"""

from __future__ import annotations

import math
import re
from numbers import Real
from typing import Any

__all__ = ["FIGURE_CHARS", "MISSING", "error_line", "figure_text", "finite", "literal", "pct",
           "plain", "points", "pvalue", "shorten", "strength"]

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


# C0 and C1 control characters, the line and paragraph separators, and the bidirectional
# overrides and isolates (they reorder the text after them: a name could make a table row
# read as something else).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks) ended by BEL
# or ST, and the two-character ones.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def _visible(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def literal(value: Any) -> str:
    """A data string (class name, path, a value quoted from input) as one line of literal text.

    Control characters are shown the way Python writes them in a string literal (a newline
    as ``\\n``, ESC as ``\\x1b``), so a name can neither break a table row nor a one-line
    message, nor colour or move the terminal. Everything else is kept as it is; markup
    (rich's ``[...]``, HTML, matplotlib's ``$``) is the renderer's to escape.
    """
    return _CONTROL.sub(lambda m: _visible(m[0]), str(value))


def shorten(value: Any, width: int) -> str:
    """:func:`literal`, cut to ``width`` characters with an ellipsis in the middle.

    The head and the tail both stay: long names that share a prefix (``..._left``,
    ``..._right``) remain apart.
    """
    text = literal(value)
    if width < 2 or len(text) <= width:
        return text
    head = (width - 1) * 2 // 3
    return f"{text[:head]}…{text[len(text) - (width - 1 - head):]}"


FIGURE_CHARS = 30
"""Longest data text in a figure (legend entry, tick label, annotation): at 8-9 pt about two
inches, so an 80-character class name leaves the axes most of the figure's width."""


def figure_text(value: Any, width: int = FIGURE_CHARS) -> str:
    """Data as literal matplotlib text: :func:`shorten` to ``width``, then made inert.

    A ``$`` would start mathtext (``$x$`` drawn as an italic x, a lone ``$`` an error at draw
    time): it is escaped. Matplotlib leaves out of a legend every label that starts with
    ``_`` (its "hide this artist" convention), so a class called ``_background`` would vanish:
    such a text starts with a zero-width space (U+200B, drawn as nothing).

    >>> figure_text("$x$"), figure_text("_background"), figure_text("a" * 40, 10)
    ('\\\\$x\\\\$', '\\u200b_background', 'aaaaaa…aaa')
    """
    text = shorten(value, width).replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def plain(text: Any) -> str:
    """Error text without ANSI escape sequences or control characters other than newlines and
    tabs: a colouring logger's codes (``\\x1b[31m``) would otherwise reach the terminal raw, or
    show as ``[31m`` in a report. Lines stay lines (a traceback is kept as one)."""
    return _KEEP_LINES.sub("", _ANSI.sub("", str(text)))


def error_line(text: Any) -> str:
    """Quoted error text (a worker's exception, a subprocess's stderr) as one line:
    :func:`plain`, and every run of whitespace (newlines included) one space."""
    return " ".join(_CONTROL.sub(" ", plain(text)).split())
