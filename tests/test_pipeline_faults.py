"""Faults: a worker of the ``processes`` backend killed with SIGKILL in the middle of a run.

Through the Python API: with no retry (``retries=0``) the run is recorded failed and the next
call with ``retry_failed`` completes the grid; with the default retry, a killed refit run is
tried again in the same call. Either way the results are identical to those of a study that
was never interrupted. The trainer is a numpy script run through ``--train-cmd``
(deterministic and fast to start), which SIGKILLs the worker process that launched it the
first time it sees its chosen run. (The CLI's side: tests/cli/test_cli_study_dying_workers.py.)
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from classgap.config import load_config
from classgap.pipeline import StudyPlan, run_full_study
from classgap.sweep import Axis, Grid, Store, run_grid
from classgap.sweep.external import ExternalTrainer

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# argv: seed, crop (a number, or a per-class list on a refit run), out, marker, victim.
SCRIPT = '''
import json, os, signal, sys
import numpy as np
seed, crop, out, marker, victim = sys.argv[1:6]
refit = crop.startswith("[")
strength = sum(json.loads(crop)) if refit else float(crop)
if (victim == "refit" and refit or victim == f"{seed}/{crop}") and not os.path.exists(marker):
    open(marker, "w").close()
    os.kill(os.getppid(), signal.SIGKILL)  # the worker process that launched this run
    raise SystemExit(1)
rng = np.random.default_rng([int(seed), int(strength * 10)])
y = np.arange(400) % 4
for split in ("val", "test"):
    hit = rng.random(400) < 0.6 + 0.05 * (y == 1) - 0.1 * strength * (y == 2)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 4 * hit
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
'''


def _trainer(folder: Path, victim: str) -> ExternalTrainer:
    (folder / "train.py").write_text(SCRIPT)
    return ExternalTrainer(f"{sys.executable} train.py {{seed}} {{aug.crop}} {{out}} "
                           f"{folder / 'killed'} {victim}", cwd=folder)


def _plan() -> StudyPlan:
    base = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.threads=1"])
    return StudyPlan(base, (Axis("aug.crop", (0.0, 1.0, 2.0)),), 3, references={"aug.crop": 0.0})


def _test_logits(store_dir: Path) -> dict[str, np.ndarray]:
    with Store(store_dir) as store:
        return {spec.run_id: np.load(d / "test.npz")["logits"] for spec, d in store.done_runs()}


def test_killed_worker_grid_without_retry_completes_on_retry_failed_identically(
        tmp_path: Path) -> None:
    runs = Grid(_plan().base, _plan().axes, seeds=3).runs()
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    for folder in (clean, faulty):
        folder.mkdir()
    with Store(clean / "study") as store:
        run_grid(store, runs, progress=False, train_fn=_trainer(clean, victim="none"))
    with Store(faulty / "study") as store, \
            pytest.warns(RuntimeWarning, match=r"died \(SIGKILL\).*recorded failed"):
        first = run_grid(store, runs, backend="processes", workers=2, threads_per_worker=1,
                         progress=False, train_fn=_trainer(faulty, victim="1/1.0"), retries=0)
    assert (faulty / "killed").is_file()
    assert first.counts == {"pending": 0, "running": 0, "done": 8, "failed": 1}
    assert list(first.errors.values()) == ["the worker running it died (SIGKILL) on each of "
                                           "1 attempt"]
    with Store(faulty / "study") as store:
        second = run_grid(store, runs, backend="processes", workers=2, threads_per_worker=1,
                          progress=False, train_fn=_trainer(faulty, victim="1/1.0"),
                          retry_failed=True)
    assert second.complete and second.failed == 0 and second.trained == 1
    want, got = _test_logits(clean / "study"), _test_logits(faulty / "study")
    assert want.keys() == got.keys() and len(want) == 9
    for run_id, logits in want.items():
        np.testing.assert_array_equal(got[run_id], logits)


def test_killed_refit_run_is_retried_in_the_same_call_identically(tmp_path: Path) -> None:
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    for folder in (clean, faulty):
        folder.mkdir()
        _trainer(folder, "none")  # writes train.py
    # One worker: the one that takes its place retries the refit run.
    kw = {"progress": False, "refit": True, "backend": "processes", "workers": 1,
          "threads_per_worker": 1}
    def command(folder: Path, victim: str) -> str:
        return (f"{sys.executable} {folder / 'train.py'} {{seed}} {{aug.crop}} {{out}} "
                f"{folder / 'killed'} {victim}")

    want = run_full_study(_plan(), clean / "study", train_cmd=command(clean, "none"), **kw)
    faulty_cmd = command(faulty, "refit")
    with pytest.warns(RuntimeWarning, match=r"died \(SIGKILL\).*retrying it"):
        got = run_full_study(_plan(), faulty / "study", train_cmd=faulty_cmd, **kw)
    assert (faulty / "killed").is_file()
    a, b = want.class_aware["refit"], got.class_aware["refit"]
    assert {k: v for k, v in a.items() if k != "runs"} == {k: v for k, v in b.items()
                                                          if k != "runs"}
    assert [Path(p).name for p in a["runs"]] == [Path(p).name for p in b["runs"]]
    summary = (faulty / "study" / "summary.json").read_text().replace(str(faulty), str(clean))
    assert json.loads(summary) == json.loads((clean / "study" / "summary.json").read_text())
