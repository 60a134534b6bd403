"""Kill ``classgap study`` at any instant (issue 22, item 1): SIGKILL, resume, compare.

Runs the study once uninterrupted (the reference), then for each of ``--kills`` seeded random
instants starts the same study in a fresh directory, SIGKILLs its whole process group at that
instant (the CLI, its ``processes`` workers and any ``--train-cmd`` child), resumes it with the
same command until it completes, and checks the result against the reference::

    python bench/kill_study.py --kills 20 --seed 0 --json kills.json
    python bench/kill_study.py --kills 3 --study-args "--axis aug.crop=0,1 --seeds 2 ..."

``--study-args`` is the study (default :data:`DEFAULT_STUDY`: the quick study with the refit,
the group-aware refit, the two-model ensemble and clam reweighting); the harness adds ``--out``
and runs every command with ``CLASSGAP_PRECISION=fp32`` (unless set), so that ``auto``
precision cannot measure differently in the reference and in a resume; the study presets pin
``train.threads`` to 1. ``--chain K`` kills each study K times (the study, then K - 1 of its
resumes) before the resume that runs to the end; ``--skip-startup`` spreads the instants over
the time after the reference's store appeared.

**Instants.** Stratified over the reference's measured wall time ``T`` (start-up included):
kill ``i`` of ``n`` falls at ``T * (i + u_i) / n``, ``u_i`` uniform in [0, 1) from
``random.Random(seed)``, so the kills cover the whole study and each lands somewhere random
in its slice (with ``--skip-startup``, the same over ``[S, T)``, ``S`` the second the
reference's ``study.sqlite`` appeared). With ``--chain K`` there are ``n K`` instants, and
study ``i`` is killed at instants ``t_i < t_{i+n} < ...`` of the reference's time line: the
study at ``t_i`` after its start, and each resume ``S + (t_next - t_previous)`` after its
start, since a resume spends about ``S`` starting up and goes on from where the command
before it was killed (``kill_at`` records these delays). A study that finishes before its
first kill (the machine is less loaded than during the reference) is run again in a fresh
directory and killed at the same fraction of its own wall time.

**Where a kill landed** is read from the killed directory, not from timing: the store's rows
(runs done and running per kind: grid, probe, refit, group refit, reweight), the run
directories complete or still in ``runs/.partial`` and the study's own files
(``summary.json``, ``report.html``, the fixes' JSON) and their order (:func:`landed`).

**Identical** (:func:`compare_studies`) means: the same files, apart from those in
:data:`STORE_FILES` and hidden files (a temporary file of an atomic write killed mid-write:
counted apart, see ``leftovers``), with the same content everywhere in the study directory,
figures and every run directory included, where content is compared

- after replacing the study directory's absolute path by ``<STUDY>`` in every text file
  (the fixes' JSON lists run directories), and an attempt's working directory
  (``runs/.partial/<run_id>.<host>.<pid>``, in a ``--train-cmd`` run's ``command`` and
  ``train.log``) by the run's directory (:data:`ATTEMPT_DIR`);
- JSON parsed, and CSV parsed, without the keys and columns of :data:`VOLATILE_KEYS`
  (timestamps, wall times and the git commit, the only values that differ between two runs
  of one config);
- ``.npz`` as arrays (a zip member's timestamp is not content), other files byte for byte;
- without the files of :data:`VOLATILE_FILES` (a run's ``files.json`` holds the checksums
  of files with wall times);

and the store's rows agree (same runs, every one ``done``, the same accuracies).

**No finished run trained twice** (:func:`trained_twice`): a run whose directory was complete
at a kill keeps that directory (the inode and mtime of its ``metrics.json``) to the end, and a
run whose row was ``done`` at a kill has no attempt after it (the store's ``attempts``).
**No partial run adopted**: the identity above covers every run directory file by file, and
``runs/.partial`` is empty at the end.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

#: The study killed by default (``classgap study --help`` lists the flags).
DEFAULT_STUDY = "--quick --refit --group-refit --ensemble --reweight clam"
#: JSON keys and CSV columns left out of the comparison: timestamps and wall times, and the
#: commit a run was trained at (``git_hash`` in ``provenance.json``: a commit made to the
#: working tree while the benchmark runs changes it, not the run's numbers).
VOLATILE_KEYS = frozenset({"wall_time", "train_time", "images_per_second", "epoch_time",
                           "start_time", "git_hash"})
#: Files not compared: a run's ``files.json`` holds checksums of files with wall times.
VOLATILE_FILES = frozenset({"files.json"})
#: An attempt's working directory ``runs/.partial/<run_id>.<host>.<pid>`` (named by a
#: ``--train-cmd`` run's ``metrics.json`` and ``train.log``), after ``<STUDY>`` replaced.
ATTEMPT_DIR = re.compile(r"<STUDY>/runs/\.partial/([^./\s\"']+)\.[^/\s\"']+\.\d+")
#: The store itself: compared through its rows (:func:`store_rows`), not byte for byte.
STORE_FILES = frozenset({"study.sqlite", "study.sqlite-wal", "study.sqlite-shm"})
#: Kinds of runs in the order a study trains them, and the audit file each kind writes.
KINDS = ("grid", "probe", "refit", "group_refit", "reweight")
KIND_FILES = {"refit": "refit.json", "group_refit": "group_refit.json",
              "reweight": "reweight.json"}
KIND_KEY = "run.kind"  # a run's point key naming its kind (absent on grid runs)


# ---------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Outcome:
    """One ``classgap study`` command: exit status, seconds it ran, whether it was killed,
    its output's last line and the second its store appeared (None if it did not)."""

    returncode: int
    wall: float
    killed: bool
    last_line: str = ""
    store_at: float | None = None


def study_command(study_args: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "classgap", "study", *shlex.split(study_args),
            "--out", str(out)]


def run_study(study_args: str, out: Path, log: Path, *, kill_at: float | None = None,
              timeout: float = 1800.0) -> Outcome:
    """Run the study into ``out``; with ``kill_at``, SIGKILL its process group then."""
    env = {**os.environ, "CLASSGAP_PRECISION": os.environ.get("CLASSGAP_PRECISION", "fp32")}
    log.parent.mkdir(parents=True, exist_ok=True)
    store_at = 0.0 if (out / "study.sqlite").exists() else None
    limit = timeout if kill_at is None else min(kill_at, timeout)
    t0 = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(study_command(study_args, out), stdout=sink,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        while proc.poll() is None and time.perf_counter() - t0 < limit:
            if store_at is None and (out / "study.sqlite").exists():
                store_at = time.perf_counter() - t0
            time.sleep(0.005)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wall = time.perf_counter() - t0
    _wait_group_gone(proc.pid)
    if kill_at is None and killed:
        raise RuntimeError(f"{shlex.join(study_command(study_args, out))} ran past "
                           f"{timeout:g} s; see {log}")
    lines = log.read_text(errors="replace").strip().splitlines()
    return Outcome(proc.returncode, wall, killed, lines[-1] if lines else "", store_at)


def _wait_group_gone(pgid: int, limit: float = 10.0) -> None:
    """Wait until no process of the group is left (killed workers are reaped by init)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


# -------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Row:
    """One run of the store."""

    kind: str
    label: str
    status: str
    attempts: int
    val_acc: float | None
    test_acc: float | None


@dataclass
class Snapshot:
    """A study directory's state between commands.

    ``complete``: run id → (inode, mtime ns) of the ``metrics.json`` of ``runs/<run_id>``;
    ``partial``: run id → what its ``runs/.partial`` directory holds; ``files``: the study's
    top-level files → mtime ns.
    """

    store: bool
    rows: dict[str, Row] = field(default_factory=dict)
    complete: dict[str, tuple[int, int]] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)


def _label(point: dict[str, Any], seed: int) -> str:
    kind = point.get(KIND_KEY, "grid")
    if kind != "grid":
        return f"{kind} s{seed}"
    return ",".join(f"{v:g}" if isinstance(v, float | int) else str(v)
                    for v in point.values()) + f" s{seed}"


def store_rows(study: Path) -> dict[str, Row] | None:
    """The store's rows by run id (None without a store), read from a copy of its files so
    that reading cannot checkpoint or recover the killed study's WAL."""
    if not (study / "study.sqlite").is_file():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for name in STORE_FILES:
            if (study / name).is_file():
                shutil.copy2(study / name, Path(tmp) / name)
        db = sqlite3.connect(Path(tmp) / "study.sqlite")
        try:
            found = db.execute("SELECT run_id, status, attempts, point_json, seed, val_acc, "
                               "test_acc FROM runs ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:  # killed before the table was created
            found = []
        finally:
            db.close()
    rows = {}
    for run_id, status, attempts, point_json, seed, val_acc, test_acc in found:
        point = json.loads(point_json)
        rows[run_id] = Row(point.get(KIND_KEY, "grid"), _label(point, seed), status,
                           attempts, val_acc, test_acc)
    return rows


def snapshot(study: Path) -> Snapshot:
    rows = store_rows(study)
    snap = Snapshot(store=rows is not None, rows=rows or {})
    runs = study / "runs"
    for run in sorted(runs.iterdir()) if runs.is_dir() else []:
        metrics = run / "metrics.json"
        if not run.name.startswith(".") and metrics.is_file():
            st = metrics.stat()
            snap.complete[run.name] = (st.st_ino, st.st_mtime_ns)
    for attempt in sorted((runs / ".partial").glob("*")) if runs.is_dir() else []:
        names = {p.name for p in attempt.iterdir()}
        state = ("its directory complete, not yet renamed" if "metrics.json" in names else
                 "writing its files" if any(n.startswith(("val.", "test.")) for n in names)
                 else "training")
        snap.partial[attempt.name.split(".")[0]] = state
    if study.is_dir():
        snap.files = {p.name: p.stat().st_mtime_ns for p in study.iterdir() if p.is_file()}
    return snap


# ------------------------------------------------------------------------ where a kill landed


def landed(snap: Snapshot, ref: Snapshot) -> str:
    """What the study was doing when it was killed, from its directory (module docstring).

    ``ref`` is the reference's final state: which kinds of runs the study trains, how many.
    """
    if not snap.store:
        return "start-up (imports, before the store)"
    if not snap.rows:
        return "start-up (store opened, grid not yet registered)"
    total = {k: sum(r.kind == k for r in ref.rows.values()) for k in KINDS}
    kinds = [k for k in KINDS if total[k]]
    running = {rid: r for rid, r in snap.rows.items() if r.status == "running"}
    committing = [r for rid, r in running.items() if rid in snap.complete]
    if committing:
        return (f"store commit of {committing[0].kind} run {committing[0].label} (directory "
                f"in place, row not yet done)")
    for kind in kinds:
        mine = [r for r in snap.rows.values() if r.kind == kind]
        done = sum(r.status == "done" for r in mine)
        if mine and done < total[kind]:
            now = [rid for rid, r in running.items() if r.kind == kind]
            if not now:
                return (f"{kind}: no run running ({done} of {total[kind]} done; workers "
                        f"starting or claiming)")
            span = f"{done + 1}" if len(now) == 1 else f"{done + 1}-{done + len(now)}"
            states = sorted({snap.partial.get(rid, "starting") for rid in now})
            return (f"{kind} run{'s' if len(now) > 1 else ''} {span} of {total[kind]} "
                    f"({', '.join(states)})")
        if not mine:
            return _between(snap, kinds, kinds.index(kind))
    return _between(snap, kinds, len(kinds))


def _between(snap: Snapshot, kinds: list[str], nxt: int) -> str:
    """Landed after every run of ``kinds[:nxt]`` was done and before ``kinds[nxt]``."""
    files = snap.files
    prev = kinds[nxt - 1]
    if prev == "grid" and "summary.json" not in files:
        return "analysis of the grid (summary.json not yet written)"
    if prev == "grid" and "report.html" not in files:
        return "first report (figures and tables)"
    audit = KIND_FILES.get(prev)
    if prev != "grid" and audit is not None and audit not in files:
        return f"{prev} audit (runs done, {audit} not yet written)"
    if nxt < len(kinds):
        return f"{kinds[nxt]}: planning (runs not yet registered)"
    if prev == "grid":
        return "exiting (every file written)"
    last = files.get(audit or "summary.json", 0)
    if files.get("summary.json", 0) < last:
        return "final analysis (summary.json not yet rewritten)"
    if files.get("report.html", 0) < last:
        return "final report (figures and tables)"
    return "exiting (every file written)"


# -------------------------------------------------------------------------------- comparing


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{where}/{key}: only in {'the reference' if key in a else 'the resume'}"
            found = _first_difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where or '/'}: {str(a)[:60]} != {str(b)[:60]}"


def _csv_rows(text: str) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE_KEYS}
            for row in csv.DictReader(io.StringIO(text))]


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _normalised(text: str, study: Path) -> str:
    """``text`` with the study directory's absolute path (as given and resolved) replaced."""
    for form in sorted({str(study), str(study.resolve())}, key=len, reverse=True):
        text = text.replace(form, "<STUDY>")
    return ATTEMPT_DIR.sub(r"<STUDY>/runs/\1", text)


def compare_file(ref: Path, got: Path, ref_root: Path, got_root: Path) -> str | None:
    """None when ``got`` has ``ref``'s content (module docstring), else the first difference."""
    if ref.suffix == ".npz":
        a, b = _npz(ref), _npz(got)
        if a.keys() != b.keys():
            return f"arrays {sorted(a)} != {sorted(b)}"
        for key in a:
            x, y = a[key], b[key]
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(
                    x, y, equal_nan=x.dtype.kind in "fc"):
                return f"array {key} differs"
        return None
    raw_a, raw_b = ref.read_bytes(), got.read_bytes()
    try:
        text_a, text_b = raw_a.decode(), raw_b.decode()
    except UnicodeDecodeError:  # figures, parquet, checkpoints
        return None if raw_a == raw_b else "bytes differ"
    text_a, text_b = _normalised(text_a, ref_root), _normalised(text_b, got_root)
    if ref.suffix == ".json":
        return _first_difference(_drop_volatile(json.loads(text_a)),
                                 _drop_volatile(json.loads(text_b)))
    if ref.suffix == ".csv":
        return _first_difference(_csv_rows(text_a), _csv_rows(text_b))
    if text_a == text_b:
        return None
    line = next(i for i, (x, y) in enumerate(zip([*text_a.splitlines(), ""],
                                                 [*text_b.splitlines(), ""], strict=False))
                if x != y)
    return f"line {line + 1} differs"


def _files(study: Path) -> set[str]:
    """The study's files compared (relative paths): not the store, not hidden files."""
    return {p.relative_to(study).as_posix() for p in study.rglob("*")
            if p.is_file() and p.name not in STORE_FILES | VOLATILE_FILES
            and not any(part.startswith(".") for part in p.relative_to(study).parts)}


def leftovers(study: Path) -> list[str]:
    """What a kill left behind: the entries of the store's hidden folders (attempts in
    ``runs/.partial``, damaged runs in ``runs/.quarantine``) and hidden files elsewhere (the
    temporary file of an atomic write killed before its rename)."""
    runs = study / "runs"
    kept = [d for d in runs.glob(".*") if d.is_dir()] if runs.is_dir() else []
    found = [entry for d in kept for entry in d.iterdir()]
    found += [p for p in study.rglob(".*") if p.is_file()
              and not any(d in p.parents for d in kept)]
    return sorted(p.relative_to(study).as_posix() for p in found)


def compare_studies(ref: Path, got: Path) -> list[str]:
    """Every difference between two study directories (module docstring), as text."""
    out = []
    a, b = _files(ref), _files(got)
    out += [f"{name}: missing" for name in sorted(a - b)]
    out += [f"{name}: extra" for name in sorted(b - a)]
    for name in sorted(a & b):
        diff = compare_file(ref / name, got / name, ref, got)
        if diff:
            out.append(f"{name}: {diff}")
    rows_a, rows_b = store_rows(ref) or {}, store_rows(got) or {}
    if rows_a.keys() != rows_b.keys():
        out.append(f"store: runs {len(rows_a)} != {len(rows_b)}")
    for rid in sorted(rows_a.keys() & rows_b.keys()):
        x, y = rows_a[rid], rows_b[rid]
        if (y.status, y.val_acc, y.test_acc) != ("done", x.val_acc, x.test_acc):
            out.append(f"store: run {y.label} {y.status}, accuracies {y.val_acc}, "
                       f"{y.test_acc} != {x.val_acc}, {x.test_acc}")
    if (got / "runs" / ".partial").is_dir() and any((got / "runs" / ".partial").iterdir()):
        out.append("runs/.partial: attempts left after the study completed")
    return out


def trained_twice(at_kill: Snapshot, end: Snapshot) -> list[str]:
    """Runs finished at the kill that were trained again (module docstring)."""
    out = []
    for rid, fingerprint in at_kill.complete.items():
        if end.complete.get(rid) != fingerprint:
            row = end.rows.get(rid) or at_kill.rows.get(rid)
            out.append(f"{row.label if row else rid}: directory rewritten")
    for rid, row in at_kill.rows.items():
        after = end.rows.get(rid)
        if row.status == "done" and (after is None or after.attempts != row.attempts):
            out.append(f"{row.label}: attempts {row.attempts} -> "
                       f"{after.attempts if after else 'gone'}")
    return out


# ---------------------------------------------------------------------------------- a trial


@dataclass
class KillResult:
    """One study killed (``chain`` times): where each kill landed, what the resumes trained
    again (``retrained``: runs lost at a kill) or adopted (complete at a kill, row not yet
    done), how many runs not started at the first kill they trained (``fresh``), and the
    checks against the reference."""

    index: int
    kill_at: list[float]
    landed: list[str]
    retrained: list[str]
    adopted: list[str]
    fresh: int
    resume_wall: float
    resume_rc: int
    differences: list[str]
    twice: list[str]
    leftovers: list[str]

    @property
    def identical(self) -> bool:
        return self.resume_rc == 0 and not self.differences and not self.twice


def kill_trial(index: int, instants: Sequence[float], study_args: str, ref_study: Path,
               ref: Snapshot, workdir: Path, *, ref_wall: float | None = None,
               timeout: float = 1800.0) -> KillResult:
    """Kill the study at each of ``instants`` in turn (the later ones kill resumes), then
    resume it to the end and compare it with the reference.

    With ``ref_wall``, a study that finishes before its first kill (the machine ran faster
    than during the reference) is run again in a fresh directory and killed at the same
    fraction of the wall time it took.
    """
    trial = workdir / f"kill-{index:02d}"
    study = trial / "study"
    kills: list[tuple[float, str, Snapshot]] = []
    for phase, at in enumerate(instants):
        outcome = run_study(study_args, study, trial / f"killed-{phase}.log", kill_at=at,
                            timeout=timeout)
        if phase == 0 and not outcome.killed and ref_wall:
            shutil.rmtree(study)
            at *= outcome.wall / ref_wall
            outcome = run_study(study_args, study, trial / f"killed-{phase}.log", kill_at=at,
                                timeout=timeout)
        snap = snapshot(study)
        where = landed(snap, ref) if outcome.killed else \
            f"after the end (that command finished in {outcome.wall:.1f} s)"
        kills.append((at, where, snap))
    resume = run_study(study_args, study, trial / "resume.log", timeout=timeout)
    end = snapshot(study)
    # a run running at a kill is trained again, or adopted when its directory was complete
    lost: dict[str, tuple[str, bool]] = {}
    for _, _, snap in kills:
        for rid, r in snap.rows.items():
            if r.status == "running":
                lost.setdefault(rid, (r.label, rid in snap.complete))
    retrained = [label for label, complete in lost.values() if not complete]
    adopted = [label for label, complete in lost.values() if complete]
    fresh = sum(1 for rid in end.rows if rid not in kills[0][2].complete and rid not in lost)
    twice = sorted({t for _, _, snap in kills for t in trained_twice(snap, end)})
    return KillResult(index, [round(at, 2) for at, _, _ in kills], [w for _, w, _ in kills],
                      retrained, adopted, fresh, round(resume.wall, 1), resume.returncode,
                      compare_studies(ref_study, study) if resume.returncode == 0
                      else [f"resume exited {resume.returncode}: {resume.last_line}"],
                      twice, leftovers(study))


def instants(n: int, start: float, end: float, rng: random.Random) -> list[float]:
    """``n`` instants stratified over ``[start, end)``: one uniform draw in each n-th."""
    return [start + (end - start) * (i + rng.random()) / n for i in range(n)]


def kill_study(study_args: str = DEFAULT_STUDY, *, kills: int = 20, seed: int = 0,
               workdir: Path, chain: int = 1, skip_startup: bool = False,
               timeout: float = 1800.0) -> tuple[Outcome, list[KillResult]]:
    """The reference, then ``kills`` studies each killed ``chain`` times and resumed; returns
    the reference's outcome and one result per study.

    ``skip_startup``: the instants are spread over the part of the reference's wall time after
    its store appeared (the start-up before it writes nothing: a kill there tests little).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ref_study = workdir / "reference" / "study"
    outcome = run_study(study_args, ref_study, workdir / "reference" / "study.log",
                        timeout=timeout)
    if outcome.returncode != 0:
        raise SystemExit(f"the reference study failed ({outcome.returncode}): "
                         f"{outcome.last_line}; see {workdir / 'reference' / 'study.log'}")
    ref = snapshot(ref_study)
    rng = random.Random(seed)
    start = (outcome.store_at or 0.0) if skip_startup else 0.0
    points = instants(kills * chain, start, outcome.wall, rng)
    results = []
    for i in range(1, kills + 1):
        mine = points[i - 1::kills]
        # a resume spends about the reference's start-up, then goes on from where the command
        # before it was killed: it is killed that long after its start, plus the gap
        delays = [mine[0], *((outcome.store_at or 0.0) + b - a
                             for a, b in itertools.pairwise(mine))]
        result = kill_trial(i, delays, study_args, ref_study, ref, workdir,
                            ref_wall=outcome.wall, timeout=timeout)
        results.append(result)
        print(f"study {i}/{kills} killed at {' then '.join(map(str, result.kill_at))} s: "
              f"{' then '.join(result.landed)}; identical "
              f"{'yes' if result.identical else 'NO'}", file=sys.stderr, flush=True)
    return outcome, results


# -------------------------------------------------------------------------------- reporting


def _runs(labels: Sequence[str]) -> str:
    return ", ".join(labels) if labels else "–"


def markdown(results: Sequence[KillResult]) -> str:
    """The table of every kill point."""
    lines = ["| # | killed at (s) | landed in | retrained on resume | trained fresh | "
             "identical | trained twice | left behind | resume (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        retrained = _runs(r.retrained) + (f"; adopted {_runs(r.adopted)}" if r.adopted else "")
        identical = "yes" if r.identical else f"**no**: {'; '.join(r.differences[:2])}"
        lines.append(f"| {r.index} | {' then '.join(f'{t:.1f}' for t in r.kill_at)} | "
                     f"{' then '.join(r.landed)} | {retrained} | {r.fresh} | {identical} | "
                     f"{_runs(r.twice) if r.twice else 'no'} | {len(r.leftovers)} | "
                     f"{r.resume_wall:.1f} |")
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20,
                        help="studies killed (default 20), each in a fresh directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill instants")
    parser.add_argument("--study-args", default=DEFAULT_STUDY,
                        help=f"arguments of 'classgap study' (default: {DEFAULT_STUDY!r})")
    parser.add_argument("--chain", type=int, default=1, metavar="K",
                        help="kill each study K times (it, then K - 1 of its resumes) before "
                             "the resume that runs to the end (default 1)")
    parser.add_argument("--skip-startup", action="store_true",
                        help="spread the instants over the reference's time after its store "
                             "appeared (not over the start-up, which writes nothing)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the studies go (default: a temporary directory, removed)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one study command may run")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    for name in ("kills", "chain"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1; got {getattr(args, name)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kill_study-"))
    try:
        ref, results = kill_study(args.study_args, kills=args.kills, seed=args.seed,
                                  workdir=workdir, chain=args.chain,
                                  skip_startup=args.skip_startup, timeout=args.timeout)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"classgap study {args.study_args}: reference {ref.wall:.1f} s (store at "
          f"{ref.store_at or 0:.1f} s) on {cpu_model()} "
          f"({os.cpu_count()} cores); {args.kills} kills (seed {args.seed}); "
          f"{sum(r.identical for r in results)} identical\n")
    print(markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "study_args": args.study_args, "seed": args.seed, "chain": args.chain,
            "reference_wall": ref.wall,
            "reference_store_at": ref.store_at, "skip_startup": args.skip_startup,
            "machine": cpu_model(), "cores": os.cpu_count(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "kills": [{**asdict(r), "identical": r.identical} for r in results]}, indent=1))
    return 0 if all(r.identical for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
