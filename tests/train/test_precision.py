"""The numeric path by measurement (issue 24): forced paths are never measured, ``auto`` on a
CPU times each candidate once per machine and key, keeps the fastest (fp32 within 5%), caches
it for every later run and process, and leaves the run's random numbers alone."""

from __future__ import annotations

import json
import multiprocessing
import warnings
from pathlib import Path

import pytest
import torch

from classgap.errors import ConfigError
from classgap.train.precision import (
    ENV_CACHE,
    ENV_PRECISION,
    TOLERANCE,
    _fastest,
    cached_choices,
    choose_path,
    cpu_info,
    path_key,
)

CPU = torch.device("cpu")


def tiny_cnn() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 3))


def tiny_mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))


SHAPE = {"model": "tiny", "input_shape": (1, 8, 8), "n_classes": 3, "batch_size": 16,
         "threads": 1}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_PRECISION, raising=False)
    return tmp_path / "cache"


def never() -> torch.nn.Module:
    raise AssertionError("a forced path must not build a model to measure")


@pytest.mark.parametrize(("precision", "channels_last", "bf16", "cl"), [
    ("fp32", False, False, False), ("bf16", True, True, True), ("fp32", True, False, True)])
def test_forced_paths_are_not_measured(cache: Path, precision: str, channels_last: bool,
                                       bf16: bool, cl: bool) -> None:
    choice = choose_path(precision, channels_last, CPU, build_model=never, **SHAPE)
    assert (choice.bf16, choice.channels_last, choice.source) == (bf16, cl, "config")
    assert not cache.exists()


def test_the_environment_forces_auto(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PRECISION, "bf16")
    choice = choose_path("auto", False, CPU, build_model=never, **SHAPE)
    assert (choice.bf16, choice.source) == (True, "env")
    monkeypatch.setenv(ENV_PRECISION, "fp32")
    assert choose_path("bf16", False, CPU, build_model=never, **SHAPE).bf16  # config wins
    monkeypatch.setenv(ENV_PRECISION, "fp16")
    with pytest.raises(ConfigError, match="'CLASSGAP_PRECISION' must be fp32 or bf16; got 'fp16'"):
        choose_path("auto", False, CPU, build_model=never, **SHAPE)


def test_a_model_without_convolutions_has_no_layout_to_choose(cache: Path) -> None:
    choice = choose_path("fp32", "auto", CPU, build_model=tiny_mlp, **SHAPE)
    assert (choice.bf16, choice.channels_last, choice.source) == (False, False, "config")
    assert not cache.exists()


def test_auto_measures_once_then_reads_the_cache(cache: Path) -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = choose_path("auto", "auto", CPU, build_model=tiny_cnn, **SHAPE)
    assert torch.equal(torch.random.get_rng_state(), before)  # the run's numbers are untouched
    assert first.source == "measured"
    assert set(first.timings_ms) == {"fp32", "fp32+cl", "bf16", "bf16+cl"}
    assert all(t > 0 for t in first.timings_ms.values())
    assert (first.bf16, first.channels_last) == _fastest(
        first.timings_ms, [(False, False), (False, True), (True, False), (True, True)])
    built = []

    def counted() -> torch.nn.Module:
        built.append(1)
        return tiny_cnn()

    again = choose_path("auto", "auto", CPU, build_model=counted, **SHAPE)
    assert len(built) == 1  # to see its layers (convolutions?), not to time steps
    assert again.source == "cached" and (again.bf16, again.channels_last, again.timings_ms) == \
        (first.bf16, first.channels_last, first.timings_ms)
    (entry,) = cached_choices()
    assert entry["key"] == first.key and entry["cpu"] == cpu_info()["model"]
    # another batch size is another key: measured on its own
    other = choose_path("auto", "auto", CPU, build_model=tiny_cnn, **{**SHAPE, "batch_size": 8})
    assert other.source == "measured" and other.key != first.key
    assert len(cached_choices()) == 2


def test_fp32_wins_within_the_tolerance() -> None:
    both = [(False, False), (True, False)]
    assert _fastest({"fp32": 10.0, "bf16": 10.0 / (1 + TOLERANCE / 2)}, both) == (False, False)
    assert _fastest({"fp32": 10.0, "bf16": 9.0}, both) == (True, False)
    assert _fastest({"fp32": 9.0, "bf16": 10.0}, both) == (False, False)
    four = [(False, False), (False, True), (True, False), (True, True)]
    timings = {"fp32": 100.0, "fp32+cl": 60.0, "bf16": 70.0, "bf16+cl": 58.0}
    assert _fastest(timings, four) == (False, True)  # fp32+cl within 5% of bf16+cl


def test_a_corrupt_cache_is_measured_again(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "precision.json").write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        choice = choose_path("auto", "auto", CPU, build_model=tiny_cnn, **SHAPE)
    assert choice.source == "measured"
    assert any("unreadable precision cache" in str(w.message) for w in caught)
    assert choice.key in json.loads((cache / "precision.json").read_text())


def test_the_key_names_what_the_timing_depends_on() -> None:
    key = path_key(model="cnn", input_shape=(3, 32, 32), n_classes=10, batch_size=128,
                   threads=2, candidates=[(False, False), (True, True)],
                   cpu={"model": "X", "flags": ["avx2"]})
    assert key.endswith("/cnn/3x32x32/k10/b128/t2/fp32,bf16+cl")
    assert key != path_key(model="cnn", input_shape=(3, 32, 32), n_classes=10, batch_size=128,
                           threads=2, candidates=[(False, False), (True, True)],
                           cpu={"model": "X", "flags": ["avx2", "avx512_bf16"]})


def _choose_in_a_process(cache: str, queue: multiprocessing.Queue) -> None:
    import os

    os.environ[ENV_CACHE] = cache
    choice = choose_path("auto", "auto", CPU, build_model=tiny_cnn, **SHAPE)
    queue.put((choice.source, choice.bf16, choice.channels_last))


def test_processes_starting_at_once_measure_once_and_agree(cache: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_choose_in_a_process, args=(str(cache), queue))
               for _ in range(2)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert sorted(r[0] for r in results) == ["cached", "measured"]
    assert results[0][1:] == results[1][1:]
    assert len(cached_choices()) == 1


def test_a_run_records_its_path_and_cpu(cache: Path, tmp_path: Path) -> None:
    from classgap.config import load_config
    from classgap.train import train

    config = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                    "train.threads=1", "train.progress=false"])
    train(config, tmp_path / "run")
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())
    path = prov["numeric_path"]
    assert path["source"] == "measured" and set(path["timings_ms"]) == {"fp32", "bf16"}
    assert prov["precision"] == ("bf16" if path["path"] == "bf16" else "fp32")
    assert prov["cpu"]["model"] == prov["device_name"] == cpu_info()["model"]
    assert set(prov["cpu"]["flags"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16",
                                         "amx_tile"}
    train(config, tmp_path / "again")  # the same shape on the same machine: cached
    again = json.loads((tmp_path / "again" / "provenance.json").read_text())["numeric_path"]
    assert again["source"] == "cached" and again["path"] == path["path"]
