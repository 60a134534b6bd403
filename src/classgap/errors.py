"""The one exception family classgap raises for user errors.

The CLI catches :class:`ClassgapError`, prints its message on one line and exits 1; anything
else is a bug and keeps its traceback. Every subclass also derives from the builtin exception a
Python user would expect (``ValueError`` for bad values), so ``except ValueError`` still works.
"""

from __future__ import annotations


class ClassgapError(Exception):
    """Base class of every error caused by user input, configuration or files."""


class InputError(ClassgapError, ValueError):
    """An argument has the wrong shape, type or value (arrays, options, names)."""


class ConfigError(ClassgapError, ValueError):
    """A configuration key is unknown or its value is invalid."""


class DataFormatError(ClassgapError, ValueError):
    """A file is missing, corrupt, of the wrong format, or holds inconsistent data."""
