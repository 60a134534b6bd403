"""The one exception family classgap raises for user errors.

The CLI catches :class:`ClassgapError`, prints its message on one line and exits 1; anything
else is a bug and keeps its traceback. Every subclass also derives from the builtin exception a
Python user would expect (``ValueError`` for bad values), so ``except ValueError`` still works.
"""

from __future__ import annotations

from typing import Any


class ClassgapError(Exception):
    """Base class of every error caused by user input, configuration or files."""


class InputError(ClassgapError, ValueError):
    """An argument has the wrong shape, type or value (arrays, options, names)."""


class ConfigError(ClassgapError, ValueError):
    """A configuration key is unknown or its value is invalid."""


class DataFormatError(ClassgapError, ValueError):
    """A file is missing, corrupt, of the wrong format, or holds inconsistent data."""


class StoreError(ClassgapError, RuntimeError):
    """The study directory is unusable, or a run's directory is incomplete."""


class StudyError(ClassgapError, RuntimeError):
    """The study cannot be analysed (runs failed or missing, no study in the directory)."""


class ExternalTrainerError(ClassgapError, RuntimeError):
    """The training command failed or left no usable predictions."""


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0]


class RunsFailed(ClassgapError, RuntimeError):
    """Some runs of :func:`train_many` failed; the message names each one with its error.

    Attributes
    ----------
    errors : dict of int to Exception
        Index of each failed run in the input → its exception (with the worker's traceback
        as a note).
    results : list of RunResult or None (classgap.train.RunResult)
        Input order; ``None`` where the run failed.
    """

    def __init__(self, errors: dict[int, Exception], results: list[Any],
                 labels: list[str]) -> None:
        lines = [f"run {i} ({labels[i]}): {type(e).__name__}: {_first_line(e)}"
                 for i, e in sorted(errors.items())]
        hint = ""
        if any(type(e).__name__ == "BrokenProcessPool" for e in errors.values()):
            hint = ("; a worker process died: a script that calls train_many must keep its "
                    "top-level code under 'if __name__ == \"__main__\":' (spawned workers "
                    "re-import it), and a worker killed for memory breaks the pool")
        super().__init__(f"{len(errors)} of {len(results)} runs failed: " + "; ".join(lines)
                         + hint)
        self.errors = errors
        self.results = results


class DropGateError(ClassgapError, RuntimeError):
    """A class dropped significantly against the baseline (the ``--fail-on-drop`` gate)."""
