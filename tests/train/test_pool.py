"""train_many: parallel spawn workers give the in-process results; failures stay per run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classgap.config import Config, load_config
from classgap.errors import InputError
from classgap.train.pool import RunsFailed, default_threads, train_many
from classgap.train.trainer import RunResult


def tiny(seed: int, *more: str) -> Config:
    return load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                  "train.progress=false", "train.precision=fp32",
                                  f"train.seed={seed}", *more])


def test_two_workers_match_in_process_runs(tmp_path: Path) -> None:
    configs = [tiny(0), tiny(1)]
    dirs = [tmp_path / "a", tmp_path / "b"]
    parallel = train_many(configs, dirs, workers=2, threads_per_worker=1, progress=False)
    serial = train_many(configs, workers=1, threads_per_worker=1, progress=False)
    for par, ser, out in zip(parallel, serial, dirs, strict=True):
        assert isinstance(par, RunResult) and isinstance(ser, RunResult)
        # CPU training is deterministic: a worker process reproduces the in-process run.
        np.testing.assert_array_equal(par.test_logits, ser.test_logits)
        assert par.out_dir == out
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["test_accuracy"] == par.test_accuracy
    assert not np.array_equal(parallel[0].test_logits, parallel[1].test_logits)


def test_a_failed_run_raises_by_name_and_the_others_finish(tmp_path: Path) -> None:
    bad = tiny(0, "data.dataset=no-such-dataset")
    with pytest.raises(RunsFailed, match=r"1 of 2 runs failed: run 0 \(seed 0\)") as info:
        train_many([bad, tiny(0)], workers=1, progress=False)
    err = info.value
    assert "no-such-dataset" in str(err) and set(err.errors) == {0}
    assert any("seed 0" in note for note in getattr(err.errors[0], "__notes__", []))
    assert err.results[0] is None and isinstance(err.results[1], RunResult)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="'workers' must be an integer >= 1"):
        train_many([tiny(0)], workers=0)
    with pytest.raises(InputError, match="'out_dirs' must hold one entry per config"):
        train_many([tiny(0)], [None, None])
    with pytest.raises(InputError, match="'configs' must be a sequence of Config"):
        train_many(["not a config"])  # type: ignore[list-item]
    assert default_threads(10_000) == 1


def test_train_seeds_matches_single_runs(tmp_path) -> None:
    from classgap.config import load_config
    from classgap.train import train
    from classgap.train.seeds import train_seeds

    config = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                    "train.progress=false", "train.seed=5", "train.threads=1"])
    results = train_seeds(config, 2, tmp_path, engine="pool", workers=1)
    assert [r.config.train.seed for r in results] == [5, 6]
    assert [r.out_dir.name for r in results] == ["seed5", "seed6"]
    single = train(results[1].config)
    assert (single.test_logits == results[1].test_logits).all()
