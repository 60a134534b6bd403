"""Checksums of a finished run's files: what a study reads is what its run wrote.

When the store commits a run it records the size and SHA-256 of every file of the run
directory: in ``files.json``, written into the directory before it is renamed into place, and
in the run's row of ``study.sqlite`` once the row says done. Before a study uses a finished
run, :func:`check_run` compares the files with that record; a missing, truncated or altered
file (``config.json`` edited by hand included: it no longer matches the run id) is a
:class:`Damage`, and the store makes the run pending again (:meth:`Store.heal
<classgap.sweep.store.Store.heal>`).

Runs committed before checksums were recorded have none: for them :func:`check_run` checks what
it can (``metrics.json`` is JSON, ``config.json`` is the run's config, the ``test`` and ``val``
predictions read), and the store records their checksums the first time they pass.

Hashing streams each file in 1 MiB blocks; a file whose size changed is not hashed at all.

>>> import tempfile, pathlib
>>> run = pathlib.Path(tempfile.mkdtemp())
>>> _ = (run / "test.npz").write_bytes(b"0123456789")
>>> files = write_manifest(run)
>>> files["test.npz"]["size"], check_run("r1", run, files, {}).ok
(10, True)
>>> _ = (run / "test.npz").write_bytes(b"01234")
>>> check_run("r1", run, files, {}).describe()  # doctest: +ELLIPSIS
'.../test.npz: truncated (5 of 10 bytes)'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classgap._files import write_json

__all__ = ["MANIFEST", "Damage", "DamagedRunWarning", "RunCheck", "check_adoptable",
           "check_run", "file_table", "write_manifest"]

MANIFEST = "files.json"  # the checksums, inside the run directory they describe
BLOCK = 1 << 20  # bytes read per call: large blocks keep hashing at the disk's speed

#: ``{relative path: {"size": bytes, "sha256": hex}}``
Files = Mapping[str, Mapping[str, Any]]


class DamagedRunWarning(RuntimeWarning):
    """A finished run's files no longer match their checksums: the run is trained again."""


@dataclass(frozen=True)
class Damage:
    """One file of a run that is not as the run left it; ``file`` ``""``: the whole directory."""

    file: str
    problem: str


@dataclass(frozen=True)
class RunCheck:
    """The outcome of checking one finished run's directory.

    Attributes
    ----------
    run_id : str
    run_dir : Path
    damage : tuple of Damage
        Empty when the run is intact.
    files : mapping or None
        The checksums the run was checked against, or, for a run from before checksums were
        recorded that passed, those computed now (None when it did not pass).
    legacy : bool
        The run had no checksums recorded (checked for readability only).
    nbytes : int
        Bytes read or compared.
    """

    run_id: str
    run_dir: Path
    damage: tuple[Damage, ...] = ()
    files: Files | None = None
    legacy: bool = False
    nbytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.damage

    def describe(self) -> str:
        """The first damaged file and its problem, on one line (and how many more)."""
        first = self.damage[0]
        more = len(self.damage) - 1
        return (f"{self.run_dir / first.file if first.file else self.run_dir}: {first.problem}"
                + (f" (and {more} more file{'s' if more > 1 else ''})" if more else ""))


def _digest(path: Path) -> tuple[int, str]:
    """``(size, sha256 hex)`` of a file, read in :data:`BLOCK`-byte blocks."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(BLOCK))
    size = 0
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(buffer[:n])
            size += n
    return size, digest.hexdigest()


def file_table(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file under ``run_dir`` but :data:`MANIFEST`, by relative
    POSIX path, sorted."""
    table = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        name = path.relative_to(run_dir).as_posix()
        if name != MANIFEST:
            size, sha = _digest(path)
            table[name] = {"size": size, "sha256": sha}
    return table


def write_manifest(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Write ``run_dir/files.json`` (:func:`file_table`, atomically) and return the table."""
    files = file_table(run_dir)
    write_json(run_dir / MANIFEST, {"files": files})
    return files


def check_run(run_id: str, run_dir: Path, files: Files | None,
              config: Mapping[str, Any]) -> RunCheck:
    """Check a finished run's directory against its checksums ``files``.

    ``files`` None: a run from before checksums were recorded, checked for what can be checked
    (see the module docstring) against ``config``, the run's config as its row records it.
    """
    if not run_dir.is_dir():
        return RunCheck(run_id, run_dir, (Damage("", "the run directory is missing"),),
                        legacy=files is None)
    if files is not None:
        damage, nbytes = _compare(run_id, run_dir, files)
        return RunCheck(run_id, run_dir, tuple(damage), files, nbytes=nbytes)
    damage = _check_unrecorded(run_dir, config)
    if damage:
        return RunCheck(run_id, run_dir, tuple(damage), legacy=True)
    table = file_table(run_dir)
    return RunCheck(run_id, run_dir, (), table, legacy=True,
                    nbytes=sum(int(f["size"]) for f in table.values()))


def check_adoptable(run_id: str, run_dir: Path, config: Mapping[str, Any]) -> RunCheck:
    """Check a complete run directory whose row does not say done yet (its commit was killed
    after the rename) against its own ``files.json``."""
    manifest = run_dir / MANIFEST
    if not manifest.is_file():  # committed by a classgap that wrote no checksums
        return check_run(run_id, run_dir, None, config)
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        if not all(isinstance(f["size"], int) and isinstance(f["sha256"], str)
                   for f in files.values()):
            raise TypeError("a file entry without an integer size and a sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return RunCheck(run_id, run_dir, (Damage(MANIFEST, f"unreadable ({exc})"),))
    return check_run(run_id, run_dir, files, config)


def _compare(run_id: str, run_dir: Path, files: Files) -> tuple[list[Damage], int]:
    damage, nbytes = [], 0
    for name, want in sorted(files.items()):
        path = run_dir / name
        try:
            size = os.stat(path).st_size
            problem = _size_problem(size, int(want["size"]))
            if problem is None:
                size, sha = _digest(path)
                nbytes += size
                if sha != want["sha256"]:
                    problem = "altered (same size, not the SHA-256 recorded when the run " \
                              "finished)"
        except FileNotFoundError:
            problem = "missing"
        except OSError as exc:
            problem = f"unreadable ({exc.strerror or exc})"
        if problem is not None:
            if name == "config.json":  # the run id is the hash of the config it was trained on
                problem += f"; it no longer matches run id {run_id} (edited by hand?)"
            damage.append(Damage(name, problem))
    return damage, nbytes


def _size_problem(size: int, recorded: int) -> str | None:
    if size < recorded:
        return f"truncated ({size} of {recorded} bytes)"
    if size > recorded:
        return f"grown ({size} bytes, {recorded} when the run finished)"
    return None


def _check_unrecorded(run_dir: Path, config: Mapping[str, Any]) -> list[Damage]:
    """What can be checked without checksums: ``metrics.json`` is a JSON object,
    ``config.json`` has the run's config id, the ``test`` and ``val`` predictions read."""
    from classgap.audit.io import read_predictions  # lazy: pandas/pyarrow load slowly
    from classgap.config import Config, config_id
    from classgap.sweep.store import find_predictions

    damage = []
    for name in ("metrics.json", "config.json"):
        try:
            data = json.loads((run_dir / name).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}, not an object")
            if name == "config.json" and config_id(Config.from_dict(data)) \
                    != config_id(Config.from_dict(dict(config))):
                damage.append(Damage(name, "not the config the run was registered with "
                                     "(edited by hand?)"))
        except FileNotFoundError:
            damage.append(Damage(name, "missing"))
        except (OSError, ValueError, TypeError) as exc:  # ConfigError is a ValueError
            damage.append(Damage(name, f"unreadable ({exc})"))
    for split in ("test", "val"):
        path = find_predictions(run_dir, split)
        if path is None:
            damage.append(Damage(f"{split}.*", "missing (no .npz, .csv, .parquet or .pt)"))
            continue
        try:
            read_predictions(path)
        except (OSError, ValueError) as exc:  # DataFormatError is a ValueError
            damage.append(Damage(path.name, f"unreadable ({type(exc).__name__}: {exc})"))
    return damage
