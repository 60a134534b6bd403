"""A study directory: an SQLite table of runs and one directory of files per finished run.

Layout::

    STUDY/study.sqlite        runs: status, claim, timings, accuracies, error text (WAL)
    STUDY/study.json          the grid definitions this directory has seen, latest last
    STUDY/runs/<run_id>/      a finished run: config.json, metrics.json, val.*, test.*, ...
    STUDY/runs/.partial/      runs in progress (``<run_id>.<host>.<pid>``)

**Crash safety.** A run is trained into ``runs/.partial/...`` and renamed to ``runs/<run_id>``
only when complete (``metrics.json`` written last); the row is marked ``done`` after the
rename. A run killed at any point (kill -9 included) therefore leaves its row ``running`` and
no ``runs/<run_id>``; the next claim sees that the claiming process is dead (same host, pid
gone) or that the claim is older than ``stale_after`` seconds, and redoes the run. A run
counts as done only when its row says so *and* its directory holds ``metrics.json``.

**Checksums.** A committed run records the size and SHA-256 of each of its files
(:mod:`classgap.sweep.integrity`): in ``runs/<run_id>/files.json``, written before the rename,
and in its row (``files_json``) when the row says done. A run adopted after a kill between the
rename and the row is checked against its ``files.json``; a done run is checked against its row
before a study uses it (:meth:`Store.heal`, once per run and process). A missing, truncated or
altered file, ``config.json`` edited by hand included, moves the run directory to
``runs/.quarantine/<run_id>.<time>`` (nothing is deleted) and makes the run pending again, with
one :class:`~classgap.sweep.integrity.DamagedRunWarning` naming the file: the study trains it
again. ``classgap study --verify STUDY`` lists such runs and changes nothing. Runs finished
before checksums were recorded are checked for what can be checked (``metrics.json`` and
``config.json`` read and match the run, the predictions read) and their checksums recorded
then. Hashing reads every byte once per process: about 0.1 s for a default study's runs
(docs/guide.md).

**Full disk.** No space left (``ENOSPC``, ``EDQUOT``, or SQLite's "database or disk is
full") is never the run's fault: it raises :class:`~classgap.errors.DiskFullError`, one line
naming the file that could not be written, and the study stops rather than fail every run
left. The run being trained is given back (``pending``, the attempt not counted) and its
partial directory removed; finished runs and the rows already committed are untouched (every
file is written whole or not at all, every row change is one transaction). If even giving the
run back cannot be written, its row stays ``running`` under this process and is redone by the
next study (its pid is dead, or, in the same process, it was claimed before that session).
A run whose directory was complete when the store could not mark it done is adopted, not
trained again. Free some space and run the same command: it resumes where it stopped, to the
results an uninterrupted study gives.

**Concurrency.** Claims are one ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE``, which
takes SQLite's write lock, so two processes (workers of one study, or two ``classgap study``
commands on one directory) never claim the same run. SQLite locking needs a local file
system (not NFS).

**Several grids, one directory.** Registering is insert-or-ignore by ``run_id``: a different
grid adds its new runs and keeps the old ones (shared configs are shared runs), and
``study.json`` appends each new grid definition.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classgap._files import write_json
from classgap.config import Config
from classgap.errors import DiskFullError, StoreError, disk_full
from classgap.sweep.grid import RunSpec
from classgap.sweep.integrity import (
    DamagedRunWarning,
    RunCheck,
    check_adoptable,
    check_run,
    write_manifest,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STATUSES", "Store", "StoreError", "find_predictions"]

STATUSES = ("pending", "running", "done", "failed")
BUSY_TIMEOUT_MS = 60_000  # a claim waits this long for another process's write lock
_IOERR = 10  # SQLite's primary result code of I/O errors
_ROOM = 1 << 16  # free bytes below which SQLite's I/O error is taken for a full disk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'pending', point_json TEXT,
    seed INTEGER, config_json TEXT, claimed_by TEXT, claimed_at REAL, started_at REAL,
    finished_at REAL, wall_time REAL, val_acc REAL, test_acc REAL, error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, files_json TEXT)
"""
# Columns added since the first release: an older study.sqlite gets them when opened.
_ADDED_COLUMNS = {"files_json": "TEXT"}  # the run's checksums (sweep/integrity.py)




def find_predictions(run_dir: str | os.PathLike[str], split: str) -> Path | None:
    """The ``<split>.<suffix>`` prediction file of a run directory (npz, csv, parquet, pt)."""
    from classgap.audit._io_formats import SUFFIXES  # lazy: pandas/pyarrow load slowly

    for suffix in SUFFIXES:
        path = Path(run_dir) / f"{split}{suffix}"
        if path.is_file():
            return path
    return None


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimer_dead(claimed_by: str | None) -> bool:
    """True when ``host:pid[/worker]`` names a process of this host that no longer exists."""
    host, _, pid = (claimed_by or "").split("/")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only stale_after can reclaim it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _left_by_me(claimed_by: str | None, claimed_at: float | None, session_start: float) -> bool:
    """True when this process claimed the run before the current session began: an earlier
    study in this process stopped (a full disk) without being able to give it back."""
    return (claimed_by or "").split("/")[0] == _me() and (claimed_at or 0) < session_start


class Store:
    """One study directory (created when missing).

    Parameters
    ----------
    path : path
        The study directory.
    session_start : float, optional
        ``time.time()`` at which this study invocation started (default: now). With
        ``retry_failed``, a failed run is claimable only if its last attempt began before it,
        so each invocation retries a failed run once (worker processes get the driver's).
    """

    def __init__(self, path: str | os.PathLike[str], *, session_start: float | None = None):
        self.path = Path(path)
        self.session_start = time.time() if session_start is None else session_start
        self._intact: set[str] = set()  # done runs whose files this Store has verified
        try:
            (self.path / "runs" / ".partial").mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path / "study.sqlite", isolation_level=None,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._init_schema()
        except (OSError, sqlite3.Error) as exc:
            if (full := self._disk_full(exc)) is not None:
                raise full from exc
            raise StoreError(f"{self.path}: cannot open the study store ({exc})") from None

    def _init_schema(self) -> None:
        # Switching to WAL while another process creates the same file can answer "database
        # is locked" at once, without waiting for busy_timeout: retry with a short backoff.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.01
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute(_SCHEMA)
                self._add_columns()
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _add_columns(self) -> None:
        """Add the :data:`_ADDED_COLUMNS` an older ``study.sqlite`` lacks (its rows keep NULL
        there: their runs have no checksums recorded yet)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in have:
                try:
                    self._db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Any:
        """A write transaction holding SQLite's lock from the start (BEGIN IMMEDIATE), rolled
        back on any error, the commit's included; SQLite finding the disk full is a
        :class:`~classgap.errors.DiskFullError` naming ``study.sqlite``."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT may leave it open, or not
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            full = self._disk_full(exc)
            if full is None:
                raise
            raise full from exc

    def _disk_full(self, exc: BaseException) -> DiskFullError | None:
        """``exc`` as a full disk (:func:`~classgap.errors.disk_full`), or SQLite's "disk I/O
        error" where the file system has no room left: what SQLite reports when it cannot
        grow the ``-shm`` file it maps (measured on a full tmpfs)."""
        where = getattr(exc, "filename", None) or self.path / "study.sqlite"
        full = disk_full(exc, where)
        if full is None and (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == _IOERR:
            with contextlib.suppress(OSError):
                if shutil.disk_usage(self.path).free < _ROOM:
                    return DiskFullError(where)
        return full

    # -- layout --------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.path / "runs" / run_id

    def new_partial_dir(self, run_id: str) -> Path:
        """A fresh working directory for one attempt; leftovers of dead attempts removed."""
        partial = self.path / "runs" / ".partial"
        for old in partial.glob(f"{run_id}.*"):  # only the claim holder gets here
            shutil.rmtree(old, ignore_errors=True)
        out = partial / f"{run_id}.{socket.gethostname()}.{os.getpid()}"
        out.mkdir(parents=True)
        return out

    def discard_partials(self, pids: Iterable[int | None]) -> None:
        """Remove the partial directories (:meth:`new_partial_dir`) of these stopped processes
        of this host, room on a full disk: their runs, left ``running`` under dead pids, are
        redone by the next study."""
        host = socket.gethostname()
        for pid in pids:
            for leftover in (self.path / "runs" / ".partial").glob(f"*.{host}.{pid}"):
                shutil.rmtree(leftover, ignore_errors=True)

    def write_study(self, definition: Mapping[str, Any]) -> None:
        """Append ``definition`` (a grid's ``to_dict()``) to ``study.json`` unless present."""
        with self._write():  # the SQLite lock also serialises this file's read-modify-write
            file = self.path / "study.json"
            data = json.loads(file.read_text()) if file.is_file() else {"grids": []}
            if dict(definition) not in data["grids"]:
                data["grids"].append(dict(definition))
                write_json(file, data)

    # -- rows ----------------------------------------------------------------------------------
    def register(self, specs: Iterable[RunSpec]) -> int:
        """Insert the runs not yet known (by ``run_id``); return how many were new."""
        rows = [(s.run_id, json.dumps(s.point), s.seed, json.dumps(s.config.to_dict()))
                for s in specs]
        with self._write() as db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO runs (run_id, point_json, seed, config_json) "
                           "VALUES (?, ?, ?, ?)", rows)
            return db.total_changes - before

    def claim(self, worker_id: str | None = None, *, retry_failed: bool = False,
              stale_after: float | None = None,
              run_ids: Sequence[str] | None = None) -> RunSpec | None:
        """Atomically take the next runnable run (registration order) and mark it running.

        Runnable: ``pending``; ``running`` but abandoned (its claimer's pid is dead on this
        host, this process claimed it before this session began, or it was claimed more than
        ``stale_after`` seconds ago); with ``retry_failed``,
        ``failed`` before this session started. ``run_ids`` restricts the choice (a study
        claims only its own grid's runs). Returns None when nothing is runnable.
        """
        now = time.time()
        me = _me() + (f"/{worker_id}" if worker_id else "")
        only = "" if run_ids is None else "AND run_id IN (SELECT value FROM json_each(?))"
        args: list[Any] = [] if run_ids is None else [json.dumps(list(run_ids))]
        with self._write() as db:
            running = db.execute(f"SELECT run_id, claimed_by, claimed_at FROM runs "
                                 f"WHERE status = 'running' {only}", args).fetchall()
            orphans = [rid for rid, by, at in running if _claimer_dead(by)
                       or _left_by_me(by, at, self.session_start)
                       or (stale_after is not None and now - (at or 0) > stale_after)]
            db.executemany("UPDATE runs SET status = 'pending' WHERE run_id = ?",
                           [(r,) for r in orphans])
            failed = "OR (status = 'failed' AND claimed_at < ?)" if retry_failed else ""
            row = db.execute(
                f"UPDATE runs SET status = 'running', claimed_by = ?, claimed_at = ?, "
                f"started_at = ?, finished_at = NULL, error = NULL, attempts = attempts + 1 "
                f"WHERE run_id = (SELECT run_id FROM runs WHERE (status = 'pending' {failed}) "
                f"{only} ORDER BY rowid LIMIT 1) RETURNING run_id, point_json, seed, config_json",
                [me, now, now, *([self.session_start] if retry_failed else []), *args],
            ).fetchone()
        if row is None:
            return None
        rid, point, seed, config = row
        return RunSpec(Config.from_dict(json.loads(config)), json.loads(point), seed, rid)

    def release(self, run_id: str) -> None:
        """Give a claimed run back (interrupted, not failed): it becomes pending again."""
        with self._write() as db:
            db.execute("UPDATE runs SET status = 'pending', attempts = MAX(attempts - 1, 0) "
                       "WHERE run_id = ? AND status = 'running'", (run_id,))

    def finish(self, run_id: str, metrics: Mapping[str, Any],
               files: Mapping[str, Any] | None = None) -> None:
        """Mark a run done; its directory must already be complete (see :meth:`commit`).
        ``files``: its checksums (:func:`~classgap.sweep.integrity.file_table`)."""
        if not (self.run_dir(run_id) / "metrics.json").is_file():
            raise StoreError(f"run {run_id}: {self.run_dir(run_id)} has no metrics.json; "
                             f"a run is done only once its directory is complete")
        now = time.time()
        with self._write() as db:
            started = db.execute("SELECT started_at FROM runs WHERE run_id = ?",
                                 (run_id,)).fetchone()
            wall = metrics.get("wall_time")
            if wall is None and started and started[0] is not None:
                wall = now - started[0]
            db.execute("UPDATE runs SET status = 'done', finished_at = ?, wall_time = ?, "
                       "val_acc = ?, test_acc = ?, error = NULL, files_json = ? "
                       "WHERE run_id = ?",
                       (now, wall, metrics.get("val_accuracy"), metrics.get("test_accuracy"),
                        None if files is None else json.dumps(files), run_id))
        if files is not None:
            self._intact.add(run_id)

    def fail(self, run_id: str, error: str) -> None:
        """Mark a run failed with its error text (kept until a retry succeeds)."""
        with self._write() as db:
            db.execute("UPDATE runs SET status = 'failed', finished_at = ?, error = ? "
                       "WHERE run_id = ?", (time.time(), str(error), run_id))

    def commit(self, spec: RunSpec, partial: Path,
               metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Complete ``partial`` into ``runs/<run_id>`` and mark the run done; return metrics.

        ``partial`` must hold ``test.*`` and ``val.*`` predictions. ``config.json`` is added
        when missing, ``metrics.json`` from ``metrics`` when the trainer wrote none, and
        ``files.json`` (the checksums of all of them) last, before the rename.
        """
        for split in ("test", "val"):
            if find_predictions(partial, split) is None:
                raise StoreError(f"run {spec.run_id}: the trainer left no {split} predictions "
                                 f"({split}.npz, .csv, .parquet or .pt) in {partial}")
        if not (partial / "config.json").is_file():
            write_json(partial / "config.json", spec.config.to_dict())
        if (partial / "metrics.json").is_file():
            metrics = {**(metrics or {}), **json.loads((partial / "metrics.json").read_text())}
        else:
            write_json(partial / "metrics.json", dict(metrics or {}))  # last: marks complete
        files = write_manifest(partial)
        final = self.run_dir(spec.run_id)
        if final.exists():  # complete leftovers of an attempt killed before its row said so
            shutil.rmtree(final)
        os.replace(partial, final)
        self.finish(spec.run_id, metrics or {}, files)
        return dict(metrics or {})

    def adopt(self, spec: RunSpec) -> bool:
        """Mark a claimed run done from a complete ``runs/<run_id>`` (killed after the rename,
        before its row was updated) instead of training it again; False when incomplete, or
        when its files do not match its ``files.json`` (the directory is set aside, with a
        warning, and the run is trained again)."""
        metrics_file = self.run_dir(spec.run_id) / "metrics.json"
        if not metrics_file.is_file():
            return False
        check = check_adoptable(spec.run_id, self.run_dir(spec.run_id), spec.config.to_dict())
        if not check.ok:
            self._set_aside(check, claimed=True)
            return False
        self.finish(spec.run_id, json.loads(metrics_file.read_text()), check.files)
        return True

    # -- queries -------------------------------------------------------------------------------
    def status(self) -> pd.DataFrame:
        """One row per run: the table's columns plus one column per axis key of its point."""
        import pandas as pd  # ~0.3 s to import: only when a table is asked for

        frame = pd.read_sql_query("SELECT * FROM runs ORDER BY rowid", self._db)
        points = pd.DataFrame([json.loads(p) for p in frame["point_json"]], index=frame.index)
        return pd.concat([frame, points.add_prefix("point.")], axis=1)

    def counts(self, run_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Runs per status (every status present, 0 when none)."""
        frame = self.status()
        if run_ids is not None:
            frame = frame[frame["run_id"].isin(list(run_ids))]
        found = frame["status"].value_counts().to_dict()
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def attempts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Attempts started at each of ``run_ids`` (claims, less those given back), 0 for a
        run not registered. Cheap: one indexed query, no table read."""
        rows = self._db.execute("SELECT run_id, attempts FROM runs WHERE run_id IN "
                                "(SELECT value FROM json_each(?))",
                                (json.dumps(list(run_ids)),)).fetchall()
        return {**dict.fromkeys(run_ids, 0), **dict(rows)}

    def done_runs(self) -> list[tuple[RunSpec, Path]]:
        """Finished runs (row done and directory complete), in registration order, their
        files verified first (:meth:`heal`: a damaged run is pending again, not returned)."""
        self.heal()
        rows = self._db.execute("SELECT run_id, point_json, seed, config_json FROM runs "
                                "WHERE status = 'done' ORDER BY rowid").fetchall()
        return [(RunSpec(Config.from_dict(json.loads(c)), json.loads(p), s, r), self.run_dir(r))
                for r, p, s, c in rows if (self.run_dir(r) / "metrics.json").is_file()]

    # -- checksums (sweep/integrity.py) ----------------------------------------------------------
    def verify(self, run_ids: Sequence[str] | None = None) -> list[RunCheck]:
        """Check the files of every finished run (of ``run_ids``) against the checksums
        recorded when it finished; change nothing. In registration order."""
        checks = [self._check(*row) for row in self._done_rows(run_ids)]
        self._intact.update(c.run_id for c in checks if c.ok and not c.legacy)
        return checks

    def heal(self, run_ids: Sequence[str] | None = None) -> list[RunCheck]:
        """Verify the finished runs (of ``run_ids``) this Store has not verified yet; return
        those found damaged.

        Each damaged run's directory is moved to ``runs/.quarantine/<run_id>.<time>`` and the
        run made pending again, with one :class:`~classgap.sweep.integrity.DamagedRunWarning`
        naming the file and the problem; the next claim trains it again. A run from before
        checksums were recorded gets them recorded when it passes.
        """
        damaged = []
        for row in self._done_rows(run_ids):
            if row[0] in self._intact:
                continue
            check = self._check(*row)
            if check.ok:
                if check.legacy:
                    with self._write() as db:
                        db.execute("UPDATE runs SET files_json = ? WHERE run_id = ? AND "
                                   "status = 'done' AND files_json IS NULL",
                                   (json.dumps(check.files), check.run_id))
                self._intact.add(check.run_id)
            elif self._set_aside(check):
                damaged.append(check)
        return damaged

    def _done_rows(self, run_ids: Sequence[str] | None) -> list[tuple[str, str, str | None]]:
        only = "" if run_ids is None else "AND run_id IN (SELECT value FROM json_each(?))"
        args = [] if run_ids is None else [json.dumps(list(run_ids))]
        return self._db.execute(f"SELECT run_id, config_json, files_json FROM runs WHERE "
                                f"status = 'done' {only} ORDER BY rowid", args).fetchall()

    def _check(self, run_id: str, config_json: str, files_json: str | None) -> RunCheck:
        return check_run(run_id, self.run_dir(run_id),
                         None if files_json is None else json.loads(files_json),
                         json.loads(config_json))

    def _set_aside(self, check: RunCheck, *, claimed: bool = False) -> bool:
        """Move a damaged run's directory to ``runs/.quarantine/`` and warn; a done run (not
        ``claimed`` by this process) is made pending again. False when another process set
        it aside first, or its files are intact when checked again under the lock."""
        with self._write() as db:
            if not claimed:
                row = db.execute("SELECT status, config_json, files_json FROM runs "
                                 "WHERE run_id = ?", (check.run_id,)).fetchone()
                if row is None or row[0] != "done":
                    return False
                # checked again under the lock: another process may have set it aside and
                # trained it again since
                check = self._check(check.run_id, row[1], row[2])
                if check.ok:
                    return False
                db.execute("UPDATE runs SET status = 'pending', files_json = NULL "
                           "WHERE run_id = ?", (check.run_id,))
            moved = self._quarantine(check.run_dir)
        where = f" (its files were moved to {moved})" if moved else ""
        action = ("training it again" if claimed else
                  "it is pending again and the study trains it again")
        warnings.warn(f"{check.describe()}; run {check.run_id}: {action}{where}",
                      DamagedRunWarning, stacklevel=3)
        return True

    def _quarantine(self, run_dir: Path) -> Path | None:
        """Move ``run_dir`` to ``runs/.quarantine/<name>.<time>``; None when it is gone."""
        if not run_dir.exists():
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path / "runs" / ".quarantine" / f"{run_dir.name}.{stamp}"
        n = 1
        while target.exists():
            n += 1
            target = target.with_name(f"{run_dir.name}.{stamp}-{n}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(run_dir, target)
        except OSError as exc:
            raise StoreError(f"{run_dir}: cannot move the damaged run aside to {target} "
                             f"({exc.strerror or exc})") from None
        return target
