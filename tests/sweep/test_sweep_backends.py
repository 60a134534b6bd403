"""Backends: the real trainer in-process, spawn workers, a real local Ray, clear errors."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from classgap.config import load_config
from classgap.errors import ClassgapError, InputError
from classgap.sweep import ExternalTrainer, Grid, RunSpec, Store, parse_axis, run_grid

# numpy-only trainer for the processes and Ray backends (fast to start, deterministic)
NUMPY_SCRIPT = '''
import sys
import numpy as np
seed, mixup, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if seed == 2:
    sys.exit("bad seed 2")
rng = np.random.default_rng(seed * 10 + int(mixup))
y = np.arange(40) % 4
for split in ("val", "test"):
    np.savez(f"{out}/{split}.npz", y_true=y, logits=rng.normal(size=(40, 4)))
'''


def grid(seeds: int, *more: str, axis: str = "aug.mixup=0,1") -> Grid:
    base = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                  "train.threads=1", "train.precision=fp32", *more])
    return Grid(base, [parse_axis(axis)], seeds=seeds)


def numpy_trainer(tmp_path: Path) -> ExternalTrainer:
    (tmp_path / "fake_train.py").write_text(NUMPY_SCRIPT)
    return ExternalTrainer(f"{sys.executable} fake_train.py {{seed}} {{aug.mixup}} {{out}}",
                           cwd=tmp_path)


def test_local_backend_with_the_classgap_trainer(tmp_path: Path) -> None:
    [spec] = grid(1, axis="aug.mixup=0").runs()
    with Store(tmp_path / "s") as store:
        summary = run_grid(store, [spec], progress=False)
        assert summary.complete and (summary.trained, summary.skipped) == (1, 0)
        [(done, run_dir)] = store.done_runs()
        row = store.status().iloc[0]
        again = run_grid(store, [spec], progress=False)  # resumed: nothing redone
    assert done.run_id == spec.run_id and (again.skipped, again.trained) == (1, 0)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert row.test_acc == metrics["test_accuracy"] and row.val_acc == metrics["val_accuracy"]
    assert {"config.json", "history.csv", "val.npz", "test.npz"} <= {p.name for p in
                                                                      run_dir.iterdir()}


def flaky(spec: RunSpec, run_dir: Path) -> dict[str, float]:
    if spec.seed == 1:
        raise ValueError(f"no luck at seed {spec.seed}")
    for split in ("val", "test"):
        np.savez(run_dir / f"{split}.npz", y_true=np.arange(4), logits=np.eye(4))
    return {"val_accuracy": 1.0, "test_accuracy": 1.0}


def test_failures_do_not_stop_the_study(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        summary = run_grid(store, grid(2).runs(), progress=False, train_fn=flaky)
    assert summary.counts == {"pending": 0, "running": 0, "done": 2, "failed": 2}
    assert all("no luck at seed 1" in e for e in summary.errors.values())


def test_processes_backend(tmp_path: Path) -> None:
    runs = grid(3).runs()
    with Store(tmp_path / "s") as store:
        summary = run_grid(store, runs, backend="processes", workers=2,
                            threads_per_worker=1, progress=False,
                            train_fn=numpy_trainer(tmp_path))
        claimers = set(store.status().claimed_by)
    assert summary.counts == {"pending": 0, "running": 0, "done": 4, "failed": 2}
    assert all("bad seed 2" in e for e in summary.errors.values())
    assert all(c.endswith(("/w0", "/w1")) for c in claimers)


def test_ray_backend_on_a_local_ray(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    runs = grid(3).runs()
    t0 = time.perf_counter()
    with Store(tmp_path / "s") as store:
        summary = run_grid(store, runs, backend="ray", workers=2, progress=False,
                            train_fn=numpy_trainer(tmp_path))
        done = store.done_runs()
    assert not ray.is_initialized()  # the study started its own Ray, and stopped it
    assert summary.counts == {"pending": 0, "running": 0, "done": 4, "failed": 2}
    assert all("bad seed 2" in e for e in summary.errors.values())
    for spec, run_dir in done:  # the driver wrote the files the tasks sent back
        data = np.load(run_dir / "test.npz")
        rng = np.random.default_rng(spec.seed * 10 + int(spec.point["aug.mixup"]))
        rng.normal(size=(40, 4))  # val came first
        np.testing.assert_array_equal(data["logits"], rng.normal(size=(40, 4)))
        assert json.loads((run_dir / "metrics.json").read_text())["n_test"] == 40
    print(f"ray study: {time.perf_counter() - t0:.1f} s")


def warns_then_trains(spec: RunSpec, run_dir: Path) -> dict[str, float]:
    warnings.warn(f"seed {spec.seed}: a warning from the worker", UserWarning, stacklevel=1)
    return flaky(spec, run_dir)


def test_a_ray_task_sends_its_warnings_to_the_driver() -> None:
    """What a Ray task returns, run here (no Ray): its warnings, which the driver warns again
    (a Ray worker would only print them), with the files."""
    from classgap.sweep.backends import _ray_body

    [spec] = grid(1, axis="aug.mixup=0").runs()
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        reply = _ray_body(spec, warns_then_trains)
    assert reply["warnings"] == [(UserWarning, "seed 0: a warning from the worker")]
    assert escaped == []  # the task keeps them for the driver
    assert sorted(reply["files"]) == ["test.npz", "val.npz"]


def test_ray_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with Store(tmp_path / "s") as store:
        with pytest.raises(ClassgapError, match=r"pip install 'classgap\[ray\]'"):
            run_grid(store, grid(1).runs(), backend="ray", progress=False)
        assert store.status().empty


def test_bad_backend_and_workers() -> None:
    with pytest.raises(InputError, match="'backend' must be one of"):
        run_grid(None, [], backend="dask")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="'workers' must be an integer >= 1"):
        run_grid(None, [], workers=0)  # type: ignore[arg-type]


def test_ensemble_backend_without_cuda_trains_as_local_with_a_note(tmp_path: Path) -> None:
    runs = grid(1, axis="aug.flip=0,0.5").runs()
    with Store(tmp_path / "local") as store:
        run_grid(store, runs, progress=False)
        want = {s.run_id: np.load(d / "test.npz")["logits"] for s, d in store.done_runs()}
    with Store(tmp_path / "ens") as store, pytest.warns(RuntimeWarning, match="CUDA only"):
        summary = run_grid(store, runs, backend="ensemble", progress=False)
        got = {s.run_id: np.load(d / "test.npz")["logits"] for s, d in store.done_runs()}
    assert summary.complete and want.keys() == got.keys()
    for run_id, logits in want.items():
        np.testing.assert_array_equal(got[run_id], logits)


def test_ensemble_groups_commit_each_member_as_a_run(tmp_path: Path) -> None:
    # The CUDA path's grouping and commits, driven with the vmap engine on the CPU: runs that
    # differ only in per-member keys (seed, flip) form one ensemble; another model, another.
    from classgap.sweep.backends import ensemble_key, train_groups

    runs = grid(2, axis="aug.flip=0,0.5").runs() + grid(1, "model.dropout=0.5",
                                                       axis="aug.flip=0").runs()
    keys = {ensemble_key(s.config) for s in runs}
    assert len(keys) == 2  # dropout is shared within an ensemble, seed and flip are not
    with Store(tmp_path / "local") as store:
        run_grid(store, runs[:1], progress=False)
        local_files = {p.name for p in store.done_runs()[0][1].iterdir()}
    with Store(tmp_path / "ens") as store:
        store.register(runs)
        claimed = [store.claim("test") for _ in runs]
        train_groups(store, [c for c in claimed if c is not None], members=8, engine="vmap")
        done = store.done_runs()
        assert store.counts()["done"] == len(runs)
    for spec, run_dir in done:
        assert {p.name for p in run_dir.iterdir()} == local_files  # the same run directory
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert 0 <= metrics["test_accuracy"] <= 1
        assert json.loads((run_dir / "config.json").read_text()) == spec.config.to_dict()
