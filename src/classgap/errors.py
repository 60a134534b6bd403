"""The one exception family classgap raises for user errors.

The CLI catches :class:`ClassgapError`, prints its message on one line and exits 1; anything
else is a bug and keeps its traceback. Every subclass also derives from the builtin exception a
Python user would expect (``ValueError`` for bad values), so ``except ValueError`` still works.
"""

from __future__ import annotations

import errno
import os
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


class DiskFullError(ClassgapError, OSError):
    """A write found no space left: the disk is full (``ENOSPC``), the user's quota is spent
    (``EDQUOT``), or SQLite could not grow the study store ("database or disk is full").

    Never the fault of the file or the run being written: the message names the path and says
    what to do. A study stops at the first one, gives the run it was training back (pending,
    the attempt not counted) and keeps every finished run; run again once space is freed, it
    resumes where it stopped (:mod:`classgap.sweep.store`).

    Attributes
    ----------
    filename : str or None
        The path that could not be written (None when the system did not say).
    errno : int
        ``ENOSPC``, or ``EDQUOT`` for a quota.
    """

    def __init__(self, path: str | os.PathLike[str] | None, quota: bool = False) -> None:
        what = "no space left on device" + (" (disk quota exceeded)" if quota else "")
        where = f"{path}: {what}" if path is not None else what.capitalize()
        super().__init__(f"{where}; free some space and run the command again (files already "
                         "written are intact)")
        self.filename = None if path is None else str(path)
        self.errno = _EDQUOT if quota else errno.ENOSPC

    def __str__(self) -> str:  # OSError's would print "[Errno ...]" with the filename
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:  # the same error in another process (workers)
        return type(self), (self.filename, self.errno == _EDQUOT)


_EDQUOT = getattr(errno, "EDQUOT", -1)  # Windows has none
_SQLITE_FULL = 13  # SQLite's result code behind "database or disk is full"


def disk_full(exc: BaseException | None,
              path: str | os.PathLike[str] | None = None) -> DiskFullError | None:
    """``exc`` as a :class:`DiskFullError` when it, or an exception it was raised from, says
    that no space is left; else None.

    Recognised: an ``OSError`` with errno ``ENOSPC`` or ``EDQUOT`` (named by ``path``, else by
    the file the error names), SQLite's ``SQLITE_FULL`` (named by ``path``), and a
    :class:`DiskFullError` itself (returned as it is).

    >>> full = disk_full(OSError(errno.ENOSPC, "No space left on device"), "out/x.npz")
    >>> str(full).split(";")[0]
    'out/x.npz: no space left on device'
    >>> disk_full(ValueError("bad value")) is None
    True
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return exc
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, _EDQUOT):
            return DiskFullError(path if path is not None else exc.filename,
                                 quota=exc.errno == _EDQUOT)
        if type(exc).__module__ == "sqlite3" and (
                getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL
                or "database or disk is full" in str(exc)):
            return DiskFullError(path)
        exc = exc.__cause__ or exc.__context__
    return None


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
