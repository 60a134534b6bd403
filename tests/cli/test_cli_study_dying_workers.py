"""Dying workers: ``classgap study`` on the ``processes`` backend, and on a real local Ray, with
a worker SIGKILLed in the middle of a run, as the OOM killer does.

A run whose worker died is tried again (at most ``--retries``, default 1) and the study ends as
an uninterrupted one; a run whose worker dies on every attempt is recorded failed with how it
died, the other runs finish, the report is written, and the command exits 1 with one line
naming the run and ``--retry-failed``. The trainer is a numpy ``--train-cmd`` script that
SIGKILLs the process that launched it (the worker) and logs every attempt it starts.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classgap.cli import run
from classgap.sweep import Store

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# argv: seed, strength, out, folder, victim ("seed/strength" or "none"), "once" or "always".
# Each attempt adds a line to folder/attempts.log.
SCRIPT = '''
import os, signal, sys
from pathlib import Path
import numpy as np
seed, strength, out, folder, victim, mode = int(sys.argv[1]), float(sys.argv[2]), *sys.argv[3:7]
folder = Path(folder)
with open(folder / "attempts.log", "a") as log:
    log.write(f"{seed}/{strength:g}\\n")
if victim == f"{seed}/{strength:g}" and (mode == "always" or not (folder / "killed").exists()):
    (folder / "killed").touch()
    os.kill(os.getppid(), signal.SIGKILL)  # the worker that launched this run
    raise SystemExit(1)
rng = np.random.default_rng([seed, int(10 * strength)])
y = np.arange(600) % 4
for split in ("val", "test"):
    hit = rng.random(600) < 0.7 + 0.1 * strength - 0.2 * strength * (y == 2)
    logits = rng.normal(size=(600, 4))
    logits[np.arange(600), y] += 4 * hit
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
'''
RUNS = 6  # strengths 0 and 1, seeds 0-2


def study(folder: Path, victim: str = "none", mode: str = "once", *extra: str,
          ) -> tuple[int, Path]:
    """``classgap study`` of the numpy script into ``folder/study``; its exit code and dir."""
    folder.mkdir(exist_ok=True)
    (folder / "train.py").write_text(SCRIPT)
    cmd = (f"{sys.executable} {folder / 'train.py'} {{seed}} {{aug.crop}} {{out}} {folder} "
           f"{victim} {mode}")
    out = folder / "study"
    code = run(["study", "--set", "data.dataset=digits", "--axis", "aug.crop=0,1", "--seeds",
                "3", "--train-cmd", cmd, "--out", str(out), *extra])
    return code, out


def attempts(out: Path) -> Counter[str]:
    """Attempts started per run (``seed/strength``), from the script's log."""
    return Counter((out.parent / "attempts.log").read_text().split())


def results(out: Path) -> dict[str, Any]:
    """What a study concludes, every run's test logits and per-class numbers included."""
    summary = json.loads((out / "summary.json").read_text())
    with Store(out) as store:
        logits = {spec.run_id: np.load(d / "test.npz")["logits"].tolist()
                  for spec, d in store.done_runs()}
    return {"summary": summary, "per_class": (out / "per_class.csv").read_text(),
            "logits": logits}


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The results of the same study, never interrupted (one worker, this process)."""
    code, out = study(tmp_path_factory.mktemp("clean"), "none", "once", "--workers", "1")
    assert code == 0
    return results(out)


PROCESSES = ("--backend", "processes", "--workers", "2")


def test_a_worker_killed_once_is_replaced_and_its_run_retried(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, clean: dict[str, Any]) -> None:
    code, out = study(tmp_path, "1/1", "once", *PROCESSES)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "died (SIGKILL) while training" in err and "retrying it (attempt 2 of 2)" in err
    assert attempts(out) == {**dict.fromkeys(["0/0", "1/0", "2/0", "0/1", "2/1"], 1), "1/1": 2}
    assert results(out) == clean  # identical to the study that was never interrupted


def test_a_run_killed_every_time_fails_and_the_others_finish(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = study(tmp_path, "1/1", "always", *PROCESSES)
    err = capsys.readouterr().err
    assert code == 1
    [line] = error_lines(err)  # one line: the run, how its worker died, what to do
    assert "1 run(s) failed: {'aug.crop': 1.0} seed 1: failed (the worker running it died " \
           "(SIGKILL) on each of 2 attempts)" in line and "--retry-failed" in line
    assert attempts(out)["1/1"] == 2 and sum(attempts(out).values()) == RUNS + 1
    with Store(out) as store:
        frame = store.status()
    assert sorted(frame["status"]) == ["done"] * (RUNS - 1) + ["failed"]
    assert frame.loc[frame["status"] == "failed", "attempts"].tolist() == [2]
    assert (out / "report.html").is_file()  # the other runs' study is written
    summary = json.loads((out / "summary.json").read_text())
    assert {r["strength"]: r["n_seeds"] for r in summary["validation"]} == {0.0: 3, 1.0: 2}
    assert any("1 of 6 runs are not done" in note for note in summary["notes"])


def test_retries_0_fails_at_once_and_retry_failed_completes_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, clean: dict[str, Any]) -> None:
    code, out = study(tmp_path, "0/0", "once", *PROCESSES, "--retries", "0")
    [line] = error_lines(capsys.readouterr().err)
    assert code == 1 and "died (SIGKILL) on each of 1 attempt)" in line
    assert attempts(out)["0/0"] == 1
    code, out = study(tmp_path, "0/0", "once", *PROCESSES, "--retry-failed")
    assert code == 0, capsys.readouterr().err
    assert attempts(out) == Counter(["0/0", "1/0", "2/0", "0/1", "1/1", "2/1", "0/0"])
    assert results(out) == clean


def test_negative_retries_is_one_clear_line(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    code, out = study(tmp_path, "none", "once", "--retries", "-1")
    [line] = error_lines(capsys.readouterr().err)
    assert code == 1 and "'retries' must be an integer >= 0; got -1" in line
    assert not out.exists()


def test_on_a_local_ray_a_killed_worker_is_retried_or_its_run_fails(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, clean: dict[str, Any]) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)  # one Ray for both studies (slow to start)
    try:
        code, out = study(tmp_path / "once", "1/1", "once", "--backend", "ray", "--workers",
                          "2")
        assert code == 0, capsys.readouterr().err
        assert attempts(out)["1/1"] == 2
        assert results(out) == clean
        code, out = study(tmp_path / "always", "1/1", "always", "--backend", "ray",
                          "--workers", "2")
        [line] = error_lines(capsys.readouterr().err)
        assert code == 1 and "{'aug.crop': 1.0} seed 1" in line and "--retry-failed" in line
        assert "died (WorkerCrashedError) on each of 2 attempts" in line
        assert attempts(out)["1/1"] == 2 and sum(attempts(out).values()) == RUNS + 1
    finally:
        ray.shutdown()
