"""bench/kill_study.py: a study SIGKILLed at seeded random instants resumes to the reference.

The study is a ``--train-cmd`` numpy script (deterministic, fast to start) over two crop
strengths and two seeds, with the class-aware and the group-aware refits and the two-model
ensemble: 8 runs, an analysis, a report, each refit's runs and JSON and the report again.
Three kill points on one study: it is killed, its resume killed, that resume's resume killed,
and the next one runs to the end (``--chain 3``: the cheapest way to several kill points,
since each command repeats the start-up and the report).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shlex
import shutil
import signal
import sqlite3
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kill_study.py"

# argv: seed, crop (a number, or a per-class list on a refit run), out. Crop helps classes
# 0, 1 and 3 and costs class 2, so validation selects a crop and class 2 pays: the fixes run.
SCRIPT = '''
import json, sys
import numpy as np
seed, crop, out = sys.argv[1:4]
strength = sum(json.loads(crop)) / 4 if crop.startswith("[") else float(crop)
rng = np.random.default_rng([int(seed), int(strength * 10)])
y = np.arange(400) % 4
for split in ("val", "test"):
    hit = rng.random(400) < 0.6 + 0.1 * strength * (y != 2) - 0.1 * strength * (y == 2)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 4 * hit
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
'''


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_kill_study", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load()


@pytest.fixture(scope="module")
def killed(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory,
           ) -> tuple[Path, dict[str, Any], str]:
    """The harness run once through its command line, 3 kills: (workdir, JSON, stdout)."""
    root = tmp_path_factory.mktemp("kill")
    (root / "train.py").write_text(SCRIPT)
    train_cmd = f"{sys.executable} {root / 'train.py'} {{seed}} {{aug.crop}} {{out}}"
    study = (f"--axis aug.crop=0,1 --seeds 2 --workers 1 --refit --group-refit --ensemble "
             f"--train-cmd {shlex.quote(train_cmd)}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = bench.main(["--kills", "1", "--chain", "3", "--skip-startup", "--seed", "3",
                           "--study-args", study,
                           "--workdir", str(root / "work"), "--json", str(root / "k.json"),
                           "--timeout", "120"])
    assert code == 0, out.getvalue()
    return root / "work", json.loads((root / "k.json").read_text()), out.getvalue()


def test_every_kill_resumes_to_the_reference_without_training_a_run_twice(
        killed: tuple[Path, dict[str, Any], str]) -> None:
    workdir, report, table = killed
    kills = report["kills"]
    assert [len(kill["kill_at"]) for kill in kills] == [3]
    for kill in kills:
        assert kill["identical"] and kill["resume_rc"] == 0, kill
        assert kill["differences"] == [] and kill["twice"] == [], kill
        assert not any(".partial/" in name for name in kill["leftovers"]), kill
    # spread over the reference's time after its start-up S: one kill in each third, the
    # resumes killed S + the gap after their start
    start, end = report["reference_store_at"], report["reference_wall"]
    first, *later = kills[0]["kill_at"]
    assert start <= first < start + (end - start) / 3
    assert all(start <= t < end for t in later)
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 1  # header, rule, one row per study killed
    ref = workdir / "reference" / "study"
    assert {"summary.json", "per_class.csv", "refit.json", "group_refit.json", "fix_rule.json",
            "report.html"} <= {p.name for p in ref.iterdir()}


def test_compare_studies_ignores_paths_and_wall_times_but_not_results(
        bench: ModuleType, killed: tuple[Path, dict[str, Any], str], tmp_path: Path) -> None:
    ref = killed[0] / "reference" / "study"
    copy = tmp_path / "elsewhere" / "study"
    shutil.copytree(ref, copy)
    assert str(ref) in (ref / "refit.json").read_text()  # it names its run directories
    for path in copy.rglob("*"):  # a study at another path names its own
        if path.suffix == ".json" or path.name == "train.log":
            path.write_text(path.read_text().replace(str(ref), str(copy)))
    assert bench.compare_studies(ref, copy) == []
    run = next(p for p in sorted((copy / "runs").iterdir()) if p.name != ".partial")
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "wall_time": 99.0}))
    assert bench.compare_studies(ref, copy) == []  # a wall time is not a result
    with np.load(run / "test.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["logits"][0, 0] += 1e-9
    np.savez(run / "test.npz", **arrays)
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**summary, "axis": "aug.other"}))
    (copy / "report.html").write_text((copy / "report.html").read_text() + " ")
    found = bench.compare_studies(ref, copy)
    assert f"runs/{run.name}/test.npz: array logits differs" in found
    assert "summary.json: /axis: aug.crop != aug.other" in found
    assert any(line.startswith("report.html: line") for line in found)


def test_trained_twice_names_a_finished_run_whose_directory_or_attempts_changed(
        bench: ModuleType, killed: tuple[Path, dict[str, Any], str], tmp_path: Path) -> None:
    study = tmp_path / "study"
    shutil.copytree(killed[0] / "reference" / "study", study)
    before = bench.snapshot(study)
    assert bench.trained_twice(before, bench.snapshot(study)) == []
    first, second = list(before.complete)[:2]
    metrics = study / "runs" / first / "metrics.json"
    text = metrics.read_text()
    metrics.unlink()  # a new file: what training the run again leaves
    metrics.write_text(text)
    db = sqlite3.connect(study / "study.sqlite")
    db.execute("UPDATE runs SET attempts = attempts + 1 WHERE run_id = ?", (second,))
    db.commit()
    db.close()
    twice = bench.trained_twice(before, bench.snapshot(study))
    assert twice == [f"{before.rows[first].label}: directory rewritten",
                     f"{before.rows[second].label}: attempts 1 -> 2"]


def _row(bench: ModuleType, kind: str, status: str, label: str = "x") -> Any:
    return bench.Row(kind, label, status, 1, None, None)


def test_landed_reads_the_store_the_attempts_and_the_files(bench: ModuleType) -> None:
    Snapshot = bench.Snapshot
    ref = Snapshot(True, {f"g{i}": _row(bench, "grid", "done") for i in range(4)}
                   | {f"r{i}": _row(bench, "refit", "done") for i in range(2)})
    grid = {f"g{i}": _row(bench, "grid", s) for i, s in
            enumerate(("done", "running", "pending", "pending"))}
    assert bench.landed(Snapshot(False), ref) == "start-up (imports, before the store)"
    assert bench.landed(Snapshot(True, grid, partial={"g1": "training"}), ref) == \
        "grid run 2 of 4 (training)"
    assert bench.landed(Snapshot(True, grid, complete={"g1": (1, 1)}), ref) == \
        "store commit of grid run x (directory in place, row not yet done)"
    done = {k: _row(bench, "grid", "done") for k in grid}
    assert bench.landed(Snapshot(True, done), ref) == \
        "analysis of the grid (summary.json not yet written)"
    assert bench.landed(Snapshot(True, done, files={"summary.json": 1}), ref) == \
        "first report (figures and tables)"
    files = {"summary.json": 1, "report.html": 2}
    assert bench.landed(Snapshot(True, done, files=files), ref) == \
        "refit: planning (runs not yet registered)"
    everything = dict(ref.rows)
    assert bench.landed(Snapshot(True, everything, files=files), ref) == \
        "refit audit (runs done, refit.json not yet written)"
    assert bench.landed(Snapshot(True, everything, files={**files, "refit.json": 3}), ref) \
        == "final analysis (summary.json not yet rewritten)"
    assert bench.landed(Snapshot(True, everything, files={"summary.json": 4, "report.html": 2,
                                                          "refit.json": 3}), ref) \
        == "final report (figures and tables)"
