"""Transfer to a downstream probe and the class-aware refit, on a tiny real digits study.

Both are runs of the study's own store: trained by the grid's backend, resumable, failures
recorded and retried."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from classgap.analysis import RunRecord, StudyResult, analyze
from classgap.audit import read_predictions
from classgap.augment import parse_aug
from classgap.config import load_config
from classgap.data import Dataset, save_npz_dataset
from classgap.errors import ConfigError, InputError
from classgap.pipeline import (
    KIND,
    StudyError,
    Training,
    group_refit_runs,
    refit_runs,
    transfer_runs,
)
from classgap.sweep import Grid, Store, parse_axis, run_grid
from classgap.train.probe import match_images

AXIS = "aug.crop"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StudyResult]:
    """2 crop strengths x 2 seeds of a 1-epoch MLP on digits, with checkpoints (~2 s)."""
    path = tmp_path_factory.mktemp("study")
    base = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                  "train.checkpoint=true", "train.threads=1",
                                  "optim.batch_size=64", "train.progress=false"])
    with Store(path) as store:
        summary = run_grid(store, Grid(base, [parse_axis(f"{AXIS}=0,1")], seeds=2).runs(),
                            progress=False)
        assert summary.complete
        records = [RunRecord(spec.point, spec.point[AXIS], spec.seed,
                             read_predictions(d / "val.npz"), read_predictions(d / "test.npz"))
                   for spec, d in store.done_runs()]
    return path, analyze(records, axis=AXIS, reference=0)


@pytest.fixture(scope="module")
def rgb_npz(tmp_path_factory: pytest.TempPathFactory) -> str:
    """3 classes of 3x12x12 RGB images (bright quadrant by class): exercises resize + mean."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.integers(0, 60, size=(len(y), 3, 12, 12))
    for i, c in enumerate(y):
        x[i, :, (c // 2) * 6:(c // 2) * 6 + 6, (c % 2) * 6:(c % 2) * 6 + 6] += 180
    path = tmp_path_factory.mktemp("npz") / "toy.npz"
    save_npz_dataset(path, Dataset(x.astype(np.uint8), y, ("ring", "bar", "dot"), "toy"))
    return f"npz:{path}"


def test_transfer_one_row_per_downstream_class_and_deterministic(
        study: tuple[Path, StudyResult], rgb_npz: str) -> None:
    path, source = study
    with Store(path) as store:
        first = transfer_runs(store, Training(), axis=AXIS, reference=0, downstream=rgb_npz)
        again = transfer_runs(store, Training(), axis=AXIS, reference=0, downstream=rgb_npz)
        probes = [s for s, _ in store.done_runs() if s.point.get(KIND) == "probe"]
    assert isinstance(first, StudyResult)
    assert first.classes["class"].tolist() == ["ring", "bar", "dot"]
    assert first.strengths == source.strengths and first.reference == 0
    assert first.meta["dataset"] == rgb_npz and first.meta["image_size"] == [8, 8]
    assert first.meta["runs"] == 4 and first.validation["n_seeds"].tolist() == [2, 2]
    # The probe separates the quadrants even through an untrained-ish backbone.
    assert (first.validation["test_mean"] > 0.6).all()
    pd.testing.assert_frame_equal(first.classes, again.classes)
    pd.testing.assert_frame_equal(first.per_class, again.per_class)
    assert first.selected == again.selected
    assert len(probes) == 4  # one probe run per source run, in the store, reused the 2nd time


def test_transfer_needs_checkpoints(tmp_path: Path) -> None:
    with Store(tmp_path / "empty") as store, pytest.raises(ConfigError, match="checkpoint"):
        transfer_runs(store, Training(), axis=AXIS, reference=0)


def test_match_images_channels_and_size() -> None:
    gray = np.full((2, 1, 8, 8), 100, np.uint8)
    rgb = match_images(gray, 3, (28, 28))
    assert rgb.shape == (2, 3, 28, 28) and rgb.dtype == np.uint8 and (rgb == 100).all()
    back = match_images(np.stack([gray[:, 0] * 0, gray[:, 0], gray[:, 0] * 2], 1), 1, (4, 4))
    assert back.shape == (2, 1, 4, 4) and (back == 100).all()  # RGB averaged
    with pytest.raises(InputError, match="2 channels"):
        match_images(np.zeros((1, 2, 8, 8), np.uint8), 3, (8, 8))


def _with_vector(result: StudyResult, vector: list[Any]) -> StudyResult:
    return dataclasses.replace(result, class_aware={**result.class_aware,
                                                    "per_class_strengths": vector})


def test_refit_trains_class_conditional_runs_and_audits(
        study: tuple[Path, StudyResult]) -> None:
    path, source = study
    vector = [1, 0] * 5  # a non-trivial per-class vector (the fitted one may be all 0)
    result = _with_vector(source, vector)
    with Store(path) as store:
        report = refit_runs(store, result, Training())
        refit = [(s, d) for s, d in store.done_runs() if s.point.get(KIND) == "refit"]
    assert report["per_class_strengths"] == vector and report["seeds"] == [0, 1]
    assert sorted(str(d) for _, d in refit) == sorted(report["runs"])
    for spec, run_dir in refit:
        config = json.loads((run_dir / "config.json").read_text())
        assert config["aug"]["crop"] == vector and config["train"]["seed"] == spec.seed
    assert json.loads((path / "refit.json").read_text()) == report
    assert len(report["vs_selected"]["classes"]) == 10
    assert len(report["vs_reference"]["classes"]) == 10
    assert set(report["mean_test"]) == {"refit", "selected", "reference"}
    names = [r["class"] for r in report["vs_selected"]["classes"]]
    file = path / "class_strengths.json"
    assert isinstance(json.loads(file.read_text()), dict)
    assert parse_aug(f"crop=@{file}", class_names=names) == ("crop", tuple(vector))

    def refuse(*_: Any) -> None:
        raise AssertionError("a finished refit run was trained again")

    with Store(path) as store:  # resumable: the same call reuses the store's runs
        assert refit_runs(store, result, Training(train_fn=refuse)) == report


def test_group_refit_trains_its_vector_and_audits(study: tuple[Path, StudyResult]) -> None:
    path, source = study
    result = _with_vector(source, [1, 0] * 5)
    with Store(path) as store:  # nothing pays: nothing trained, no file
        before = store.counts()
        assert group_refit_runs(store, result, Training(), paying_drop=1000) is None
        assert store.counts() == before and not (path / "group_refit.json").exists()
    with Store(path) as store:  # every class 'pays' (a lever to make groups on tiny data)
        report = group_refit_runs(store, result, Training(), paying_drop=-100)
        runs = [(s, d) for s, d in store.done_runs() if s.point.get(KIND) == "group_refit"]
    assert report is not None and report["seeds"] == [0, 1] and report["groups"]
    vector = report["per_class_strengths"]
    assert all(v <= w for v, w in zip(vector, [1, 0] * 5, strict=True))  # never stronger
    names = [r["class"] for r in report["vs_selected"]["classes"]]
    for group in report["groups"]:  # each member holds at most its paying class's strength
        for member in group["members"]:
            assert vector[names.index(member["class"])] <= group["strength"]
    assert sorted(str(d) for _, d in runs) == sorted(report["runs"])
    for spec, run_dir in runs:
        config = json.loads((run_dir / "config.json").read_text())
        assert config["aug"]["crop"] == vector and config["train"]["seed"] == spec.seed
    assert json.loads((path / "group_refit.json").read_text()) == report
    file = path / "group_class_strengths.json"
    assert parse_aug(f"crop=@{file}", class_names=names) == ("crop", tuple(vector))

    def refuse(*_: Any) -> None:
        raise AssertionError("a finished group-refit run was trained again")

    with Store(path) as store:
        assert group_refit_runs(store, result, Training(train_fn=refuse),
                                paying_drop=-100) == report


def test_refit_through_worker_processes_and_its_failures_in_the_store(
        study: tuple[Path, StudyResult]) -> None:
    path, source = study
    result = _with_vector(source, [0, 1] * 5)
    with Store(path) as store:  # a refit run that fails is recorded, not lost
        with pytest.raises(StudyError, match=r"2 of 2 refit runs are not done.*failed"):
            refit_runs(store, result, Training(train_fn=_broken))
        failed = store.status().query("status == 'failed'")
        assert len(failed) == 2 and failed["error"].str.contains("no GPU today").all()
    with Store(path) as store:  # a later command, --retry-failed, via two worker processes
        report = refit_runs(store, result, Training("processes", workers=2,
                                                    threads_per_worker=1, retry_failed=True))
        serial = refit_runs(store, result, Training())  # reused, nothing trained again
    assert report == serial and report["seeds"] == [0, 1]
    assert store_counts(path)["failed"] == 0


def _broken(spec: Any, run_dir: Path) -> None:
    raise RuntimeError("no GPU today")


def store_counts(path: Path) -> dict[str, int]:
    with Store(path) as store:
        return store.counts()


@pytest.mark.parametrize(("axis", "match"), [("optim.weight_decay", "'optim.weight_decay'"),
                                             ("aug.mixup", "'aug.mixup'")])
def test_refit_refuses_axes_without_a_per_class_version(
        study: tuple[Path, StudyResult], tmp_path: Path, axis: str, match: str) -> None:
    path, source = study
    before = store_counts(path)
    with Store(path) as store, pytest.raises(ConfigError, match=match):
        refit_runs(store, dataclasses.replace(source, axis=axis), Training())
    assert store_counts(path) == before  # nothing registered
