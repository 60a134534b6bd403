"""One way to write a file: whole or not at all, with the usual permissions; one way to JSON.

Every file classgap writes (run directories, study stores, reports, CLI output, prediction
files, downloads) goes through :func:`atomic_target` (:func:`atomic_write` for bytes and text):
the content goes to a temporary file in the target's directory, which is then renamed over the
target, so a crash or Ctrl-C never leaves half a file and never destroys the previous version.
The result gets the mode of the file it replaces, else 0666 less the umask (0644 under the
usual umask), like any file ``open(path, "w")`` creates.

**A full disk** (``ENOSPC``, or ``EDQUOT`` for a quota) while writing, flushing or renaming
raises :class:`~classgap.errors.DiskFullError` naming the target: one line in the CLI, the
temporary file removed, the previous version of the target untouched.

**Fault injection.** Every write ends in :func:`_install`, the rename of the finished
temporary file over its target: tests replace it (``monkeypatch.setattr(_files, "_install",
...)``) to make any write fail as a full disk would, after the content is written and before
the target changes (tests/sweep/test_enospc.py). Production code never looks at it otherwise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from classgap.errors import disk_full

__all__ = ["atomic_target", "atomic_write", "jsonable", "write_json"]


#: Flags of a new temporary file: created here or not at all, never inherited by a child.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)


def _new_temporary(path: Path, suffix: str) -> tuple[int, Path]:
    """A new file ``.<name>.<random><suffix>`` beside ``path``, open for writing, created with
    mode 0666 less the umask (as ``open(path, "w")`` creates files); the directory is created
    when missing. One system call in the usual case: ``tempfile.mkstemp`` creates 0600 files,
    which then need a ``chmod`` (186 → 143 µs a small file on ext4: bench/RESULTS.md)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(tmp, _NEW_FILE, 0o666), tmp
        except FileExistsError:  # another writer's temporary file: draw another name
            continue
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(tmp, _NEW_FILE, 0o666), tmp
    raise FileExistsError(f"no free temporary name beside {str(path)!r}")  # pragma: no cover


def _install(tmp: Path, path: Path) -> None:
    """The last step of every write: the finished temporary file renamed over ``path`` (the
    seam where tests inject faults, see the module's docstring)."""
    os.replace(tmp, path)


@contextlib.contextmanager
def _named_if_disk_full(path: Path) -> Iterator[None]:
    """A full disk inside the block raised as a :class:`~classgap.errors.DiskFullError` that
    names ``path``; any other error as it is."""
    try:
        yield
    except OSError as exc:
        full = disk_full(exc, path)
        if full is None or full is exc:
            raise
        raise full from exc


@contextlib.contextmanager
def _swap(path: str | os.PathLike[str], suffix: str) -> Iterator[tuple[int, Path]]:
    """An open temporary file beside ``path`` (descriptor and path), renamed over ``path``
    when the block ends without error, removed on any error; a full disk is a
    :class:`~classgap.errors.DiskFullError` naming ``path``."""
    path = Path(path)
    try:
        replaced: int | None = path.stat().st_mode & 0o777
    except FileNotFoundError:
        replaced = None
    with _named_if_disk_full(path):
        fd, tmp = _new_temporary(path, suffix)
        try:
            yield fd, tmp
            if replaced is not None:  # the new version keeps the mode of the file it replaces
                os.chmod(tmp, replaced)
            _install(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike[str], *, fsync: bool = False,
                  suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path``, renamed over it when the block ends without error.

    For writers that need a path (pandas, pyarrow) or a check before the rename (a download's
    hash: raise inside the block and nothing is written). On any error, Ctrl-C included, the
    temporary file is removed and ``path`` is untouched.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_target(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    with _swap(path, suffix) as (fd, tmp):
        os.close(fd)
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())


def atomic_write(path: str | os.PathLike[str], content: bytes | str | Callable[[IO[bytes]], Any],
                 *, fsync: bool = False) -> Path:
    """Write ``content`` to ``path`` atomically; return ``path``.

    Parameters
    ----------
    path : path
        The target; its directory is created when missing.
    content : bytes, str or callable
        The bytes, the text (UTF-8), or ``write(fh)`` called with the binary temporary file
        (for writers such as ``np.savez``).
    fsync : bool
        Flush to disk before the rename (for files people must not lose, such as reports).
    """
    # The temporary file is written through the descriptor that created it: one open, not two
    # (a file open costs about as much as writing a small prediction file; bench/RESULTS.md).
    with _swap(path, ".tmp") as (fd, _), os.fdopen(fd, "wb") as fh:
        if callable(content):
            content(fh)
        else:
            fh.write(content.encode("utf-8") if isinstance(content, str) else content)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: numpy scalars and arrays as Python values, tuples as
    lists, tables (DataFrames) as lists of records, mappings with string keys, NaN and
    infinities as None (JSON has no NaN), any other object by its text (a ``Path``).

    >>> import numpy as np
    >>> jsonable({"a": np.float64("nan"), "b": (np.int64(1), 2.5), 3: np.arange(2)})
    {'a': None, 'b': [1, 2.5], '3': [0, 1]}
    """
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return [jsonable(r) for r in value.to_dict(orient="records")]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):  # numpy
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """``data`` as indented strict JSON (see :func:`jsonable`), written atomically.

    Torch-free, so a study worker running a foreign trainer starts in a second, not three.
    """
    return atomic_write(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
