"""A full disk (ENOSPC) under a study and under the commands that write files.

Each fault gives one line naming the path and "no space left on device" (exit 1, no
traceback), leaves the store and every finished run intact (no run marked failed, no partial
directory or temporary file left), and once space is freed the resumed study gives the
summary.json and per_class.csv of a study that was never interrupted, without training a
finished run again.

The faults come through two seams (:class:`Disk`): :func:`classgap._files._install`, the last
step of every file classgap writes, and the store's SQLite connection (a ``sqlite3.Connection``
subclass whose ``COMMIT`` fails as SQLite does on a full disk). Once full, the disk stays full
until :meth:`Disk.free`: every later write and every later commit fails, as on a real disk.
Last, a study on a real 4 MB tmpfs fills it for real (skipped where the machine cannot mount
one). The trainer is a numpy ``--train-cmd`` script: deterministic, fast, no torch.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classgap import _files
from classgap.audit.io import read_predictions
from classgap.cli import run
from classgap.sweep import Store
from classgap.sweep.store import find_predictions

# argv: seed, strength, out. ENOSPC_AT="seed/strength" makes that run fail as a trainer that
# found the disk full does (the --train-cmd's own write, not one of classgap's).
SCRIPT = '''
import errno, os, sys
import numpy as np
seed, crop, out = sys.argv[1:4]
if os.environ.get("ENOSPC_AT") == f"{seed}/{float(crop):g}":
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"{out}/test.npz")
rng = np.random.default_rng([int(seed), int(float(crop) * 10)])
y = np.arange(400) % 4
for split in ("val", "test"):
    hit = rng.random(400) < 0.7 + 0.05 * (y == 1) - 0.1 * float(crop) * (y == 2)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 4 * hit
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
'''
GRID = ("--set", "data.dataset=digits", "--axis", "aug.crop=0,1", "--seeds", "2")
N_RUNS = 4


class Disk:
    """A disk that fills up at a chosen write and stays full until :meth:`free`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self._file: tuple[str, int] | None = None  # (glob of the path, nth match)
        self._done_commits: int | None = None  # fill at the commit of the nth run marked done
        install = _files._install
        disk = self

        def faulty_install(tmp: Path, path: Path) -> None:
            if self._file is not None and fnmatch.fnmatch(str(path), self._file[0]):
                self._file = (self._file[0], self._file[1] - 1)
                self.full = self.full or self._file[1] == 0
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
            install(tmp, path)

        class Connection(sqlite3.Connection):
            marks_done = False

            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                self.marks_done |= "SET status = 'done'" in sql
                if sql == "COMMIT":
                    disk._commit(self.marks_done)
                    self.marks_done = False
                return super().execute(sql, *args)

        connect = sqlite3.connect
        monkeypatch.setattr(_files, "_install", faulty_install)
        monkeypatch.setattr(sqlite3, "connect",
                            lambda *a, **kw: connect(*a, factory=Connection, **kw))

    def _commit(self, marks_done: bool) -> None:
        if marks_done and self._done_commits is not None:
            self._done_commits -= 1
            self.full = self.full or self._done_commits == 0
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")

    def fill_at_file(self, pattern: str, nth: int = 1) -> None:
        """Fill up when the ``nth`` file whose path matches ``pattern`` is written."""
        self._file = (pattern, nth)

    def fill_at_done(self, nth: int) -> None:
        """Fill up at the store commit that marks the ``nth`` run done."""
        self._done_commits = nth

    def free(self) -> None:
        self.full, self._file, self._done_commits = False, None, None


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


@pytest.fixture(scope="module")
def command(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The --train-cmd of every study here (one script path, so summaries compare equal)."""
    script = tmp_path_factory.mktemp("trainer") / "train.py"
    script.write_text(SCRIPT)
    return f"{sys.executable} {script} {{seed}} {{aug.crop}} {{out}}"


def _results(out: Path) -> tuple[Any, str]:
    """summary.json (the study directory's own path replaced) and per_class.csv."""
    summary = (out / "summary.json").read_text().replace(str(out), "STUDY")
    return json.loads(summary), (out / "per_class.csv").read_text()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, command: str) -> tuple[Any, str]:
    """The results of the study never interrupted."""
    out = tmp_path_factory.mktemp("clean") / "study"
    assert run(["study", *GRID, "--train-cmd", command, "--out", str(out), "--workers", "1"]) == 0
    return _results(out)


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """Exit code and stderr of ``classgap ARGS``."""
    code = run([str(a) for a in args])
    return code, capsys.readouterr().err


def study(capsys: pytest.CaptureFixture[str], out: Path, command: str,
          workers: int = 1) -> tuple[int, str]:
    return invoke(capsys, "study", *GRID, "--train-cmd", command, "--out", out, "--workers",
                  workers)


def assert_one_line(err: str, path: str) -> None:
    """Exactly one error line, naming ``path`` (a glob) and the full disk; no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "no space left on device" in errors[0], errors[0]
    named = errors[0].removeprefix("error: ").split(": no space left")[0]
    assert fnmatch.fnmatch(named, path), (named, path)


def assert_intact(out: Path) -> dict[str, int]:
    """The store opens, no run is failed, no partial directory or temporary file is left, and
    every finished run's files match their checksums and read; returns the inode of each
    finished run's metrics.json."""
    with Store(out) as store:
        rows = store.status()
        done = store.done_runs()
        assert all(check.ok for check in store.verify())  # the checksums of their files
    assert set(rows["status"]) <= {"pending", "running", "done"}, rows["status"].tolist()
    assert rows["error"].isna().all()  # no error text blames a run for the disk
    assert len(done) == (rows["status"] == "done").sum()
    assert not list((out / "runs" / ".partial").iterdir())
    assert not [p for p in out.rglob(".*.tmp")]
    for spec, run_dir in done:
        assert json.loads((run_dir / "config.json").read_text()) == spec.config.to_dict()
        for split in ("val", "test"):
            path = find_predictions(run_dir, split)
            assert path is not None and read_predictions(path).y_true.size
    return {spec.run_id: (d / "metrics.json").stat().st_ino for spec, d in done}


def resume_identically(capsys: pytest.CaptureFixture[str], out: Path, command: str,
                       clean: tuple[Any, str], finished: dict[str, int]) -> None:
    """The study run again completes, trains no finished run again, and gives the results of
    the study never interrupted."""
    code, err = study(capsys, out, command)
    assert code == 0, err
    after = assert_intact(out)
    assert len(after) == N_RUNS
    assert {r: after[r] for r in finished} == finished  # the same files: not trained again
    assert _results(out) == clean


def test_run_directory_file(capsys, tmp_path: Path, disk: Disk, command: str, clean) -> None:
    """The disk fills up at the third run's metrics.json (written into its partial dir)."""
    out = tmp_path / "study"
    disk.fill_at_file("*/runs/.partial/*/metrics.json", nth=3)
    code, err = study(capsys, out, command)
    assert code == 1
    assert_one_line(err, f"{out}/runs/.partial/*/metrics.json")
    disk.free()
    finished = assert_intact(out)
    assert len(finished) == 2
    resume_identically(capsys, out, command, clean, finished)


def test_store_commit(capsys, tmp_path: Path, disk: Disk, command: str, clean) -> None:
    """SQLite finds the disk full when it marks the second run done: the run's directory is
    already in place, so the resumed study adopts it rather than training it again."""
    out = tmp_path / "study"
    disk.fill_at_done(2)
    code, err = study(capsys, out, command)
    assert code == 1
    assert_one_line(err, f"{out}/study.sqlite")
    disk.free()
    finished = assert_intact(out)
    assert len(finished) == 1
    complete = [d for d in (out / "runs").iterdir() if (d / "metrics.json").is_file()]
    assert len(complete) == 2  # the second run's directory, not yet marked done
    finished.update({d.name: (d / "metrics.json").stat().st_ino for d in complete})
    resume_identically(capsys, out, command, clean, finished)


@pytest.mark.parametrize("name", ["summary.json", "report.html"])
def test_report(capsys, tmp_path: Path, disk: Disk, command: str, clean, name: str) -> None:
    """Every run is trained; the disk fills up writing the study's summary or report."""
    out = tmp_path / "study"
    disk.fill_at_file(f"*/{name}")
    code, err = study(capsys, out, command)
    assert code == 1
    assert_one_line(err, str(out / name))
    assert not (out / name).exists()
    disk.free()
    finished = assert_intact(out)
    assert len(finished) == N_RUNS
    resume_identically(capsys, out, command, clean, finished)


def test_trainer_command_on_processes(capfd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      command: str, clean) -> None:
    """The --train-cmd itself fails with ENOSPC, in a worker of the processes backend: the
    study stops with the one line (no worker traceback, no "worker exited" warning), the run
    stays pending, not failed, and the resumed study is identical."""
    out = tmp_path / "study"
    monkeypatch.setenv("ENOSPC_AT", "1/1")
    code, err = study(capfd, out, command, workers=2)
    assert code == 1
    assert_one_line(err, f"{out}/runs/.partial/*")
    assert "warning:" not in err
    finished = assert_intact(out)  # the run is given back (or left to redo), not failed
    monkeypatch.delenv("ENOSPC_AT")
    code, err = study(capfd, out, command)
    assert code == 0, err
    after = assert_intact(out)
    assert len(after) == N_RUNS and {r: after[r] for r in finished} == finished
    assert _results(out) == clean


def _predictions(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    paths = []
    for name in ("a.npz", "b.npz"):
        logits = rng.normal(size=(300, 3))
        logits[np.arange(300), y] += 2
        paths.append(folder / name)
        np.savez(paths[-1], y_true=y, logits=logits)
    return paths[0], paths[1]


@pytest.mark.parametrize("which", ["audit", "compare"])
def test_command_output_file(capsys, tmp_path: Path, disk: Disk, which: str) -> None:
    """``audit``/``compare --out``: the one line; the previous output file is untouched and
    no temporary file is left; after space is freed the same command writes what it writes
    on a disk that never filled."""
    a, b = _predictions(tmp_path)
    args = (["audit", a] if which == "audit" else ["compare", "-b", a, "-c", b]) \
        + ["--format", "json", "--out", tmp_path / "out.json"]
    assert invoke(capsys, *args)[0] == 0
    want = (tmp_path / "out.json").read_bytes()
    (tmp_path / "out.json").write_text("previous")
    disk.fill_at_file("*/out.json")
    code, err = invoke(capsys, *args)
    assert code == 1
    assert_one_line(err, str(tmp_path / "out.json"))
    assert (tmp_path / "out.json").read_text() == "previous"
    assert not list(tmp_path.glob(".*.tmp"))
    disk.free()
    assert invoke(capsys, *args)[0] == 0
    assert (tmp_path / "out.json").read_bytes() == want


TINY = ("--set", "data.dataset=digits", "--set", "model.name=mlp", "--set", "train.epochs=1",
        "--set", "train.threads=1", "--set", "train.precision=fp32",
        "--set", "data.train_subset=300", "--axis", "aug.flip=0,0.5", "--seeds", "2",
        "--workers", "1")


def test_classgap_trainer_prediction_file(capsys, tmp_path: Path, disk: Disk) -> None:
    """classgap's own trainer finds the disk full writing the third run's test.npz."""
    clean_out, out = tmp_path / "clean", tmp_path / "study"
    assert invoke(capsys, "study", *TINY, "--out", clean_out)[0] == 0
    disk.fill_at_file("*/runs/.partial/*/test.npz", nth=3)
    code, err = invoke(capsys, "study", *TINY, "--out", out)
    assert code == 1
    assert_one_line(err, f"{out}/runs/.partial/*/test.npz")
    disk.free()
    finished = assert_intact(out)
    assert len(finished) == 2
    code, err = invoke(capsys, "study", *TINY, "--out", out)
    assert code == 0, err
    after = assert_intact(out)
    assert len(after) == 4 and {r: after[r] for r in finished} == finished
    assert _results(out) == _results(clean_out)


# -- a real small file system ------------------------------------------------------------------

def _sh(*argv: str) -> str:
    """Run a system command; its error text when it fails, else ''."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return str(exc)
    return "" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip() \
        or f"{argv[0]} exited with status {proc.returncode}"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB file system mounted for the test (tmpfs, else a loop-mounted ext4 image),
    always unmounted afterwards; skipped, with the reason, where neither can be mounted."""
    if not sys.platform.startswith("linux"):
        pytest.skip("mounting a small file system needs Linux")
    mnt = tmp_path / "small"
    mnt.mkdir()
    why = _sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt))
    if why:
        image = tmp_path / "small.img"
        with open(image, "wb") as fh:
            fh.truncate(4 << 20)
        loop = _sh("mkfs.ext4", "-q", "-F", str(image)) \
            or _sh("mount", "-o", "loop", str(image), str(mnt))
        if loop:
            pytest.skip(f"cannot mount a small file system: tmpfs: {why}; ext4 image: {loop}")
    try:
        yield mnt
    finally:
        if _sh("umount", str(mnt)):
            _sh("umount", "-l", str(mnt))  # something still holds it open: detach it now


@pytest.mark.parametrize("room", [40_000, 160_000], ids=["at-the-store", "in-the-runs"])
def test_real_small_file_system(capsys, tmp_path: Path, small_fs: Path, command: str,
                                clean, room: int) -> None:
    """A study on a 4 MB file system that a filler leaves almost full: the real ENOSPC gives
    the one line and leaves the store intact; copied to a bigger place, the study resumes to
    identical results. With 40 kB left it lands as SQLite opens the store (a "disk I/O
    error" from SQLite), with 160 kB in the second run (the --train-cmd's or classgap's
    write of a run file)."""
    out = small_fs / "study"
    free = shutil.disk_usage(small_fs).free
    with open(small_fs / "filler", "wb") as fh:
        fh.write(b"\0" * (free - room))
    code, err = study(capsys, out, command)
    assert code == 1, err
    assert_one_line(err, f"{small_fs}/*")
    (small_fs / "filler").unlink()
    assert_intact(out)
    metrics = {d.name: (d / "metrics.json").read_bytes() for d in (out / "runs").iterdir()
               if (d / "metrics.json").is_file()}
    bigger = tmp_path / "bigger"
    shutil.copytree(out, bigger)
    resume_identically(capsys, bigger, command, clean, {})
    # the finished runs (their metrics.json holds each one's wall time) were not redone
    assert {r: (bigger / "runs" / r / "metrics.json").read_bytes() for r in metrics} == metrics
