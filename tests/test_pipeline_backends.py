"""A study's numbers do not depend on the backend that trained it (issue 9, item 6).

The thread count changes floating-point sums, so :func:`plan_study` pins ``train.threads`` in
every run's config (and so in its run id): local, processes and Ray train the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classgap.pipeline import STUDY_THREADS, plan_study
from classgap.sweep import Store
from classgap.sweep.backends import run_grid

TINY = ("data.dataset=digits", "model.name=mlp", "train.epochs=1", "train.progress=false",
        "data.val_size=300")


def _logits(out: Path) -> dict[str, np.ndarray]:
    with Store(out) as store:
        return {spec.run_id: np.load(path / "test.npz")["logits"]
                for spec, path in store.done_runs()}


def test_threads_are_pinned_in_the_run_config() -> None:
    plan = plan_study(axes=["aug.flip=0,0.5"], seeds=2, overrides=TINY)
    assert all(s.config.train.threads == STUDY_THREADS for s in plan.grid().runs())
    two = plan_study(axes=["aug.flip=0,0.5"], seeds=2, overrides=TINY, threads=2)
    assert {s.run_id for s in two.grid().runs()}.isdisjoint(
        s.run_id for s in plan.grid().runs())  # another thread count is another run
    own = plan_study(axes=["aug.flip=0,0.5"], seeds=2, overrides=(*TINY, "train.threads=3"))
    assert own.base.train.threads == 3  # a recipe's own choice is kept


def test_seed_ranges_train_exactly_those_seeds() -> None:
    plan = plan_study(axes=["aug.flip=0,0.5"], seeds="8-10", overrides=TINY)
    assert sorted({s.seed for s in plan.grid().runs()}) == [8, 9, 10]
    assert plan.grid().to_dict()["seeds"] == [8, 9, 10]


@pytest.mark.slow
def test_local_processes_and_ray_give_identical_predictions(tmp_path: Path) -> None:
    plan = plan_study(axes=["aug.flip=0,0.5"], seeds=2, overrides=TINY)
    specs = plan.grid().runs()
    backends = [("local", 1), ("processes", 2)]
    try:
        import ray  # noqa: F401

        backends.append(("ray", 2))
    except ImportError:  # pragma: no cover - CI installs the ray extra
        pass
    results = {}
    for backend, workers in backends:
        out = tmp_path / backend
        with Store(out) as store:
            summary = run_grid(store, specs, backend=backend, workers=workers,
                                threads_per_worker=plan.base.train.threads, progress=False)
        assert summary.failed == 0, summary.errors
        results[backend] = _logits(out)
    first = results["local"]
    assert len(first) == len(specs)
    for backend, logits in results.items():
        assert logits.keys() == first.keys(), backend
        for run_id, value in logits.items():
            np.testing.assert_array_equal(value, first[run_id], err_msg=f"{backend} {run_id}")
