"""Data as rich text: the one way a class name, a path or a quoted value reaches a console.

Rich parses ``[...]`` in a plain string as markup: a class called ``[background]`` prints as
nothing, ``b [x]`` as ``b``, and ``[/]`` or ``c[/b]`` raise :class:`rich.errors.MarkupError`.
Even ``[n/a, n/a]`` (an interval that could not be computed) reads as a tag. So every table
cell and every line that carries data goes to rich as a :class:`rich.text.Text`, which is never
parsed; styles are given as styles, not as markup. The text itself is
:func:`classgap._format.literal` of the value: one line, control characters shown as ``\\n``,
``\\x1b``.

>>> from rich.console import Console
>>> Console(width=40).print(cell("[/] c[/b] [background]"))
[/] c[/b] [background]
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from classgap._format import literal

__all__ = ["add_row", "cell"]


def cell(value: Any, style: str = "") -> Text:
    """``value`` as rich text that is never parsed as markup, on one line (a Text is kept)."""
    return value if isinstance(value, Text) else Text(literal(value), style=style)


def add_row(table: Table, *cells: Any, style: str | None = None) -> None:
    """``table.add_row`` with every cell through :func:`cell`."""
    table.add_row(*(cell(c) for c in cells), style=style)
