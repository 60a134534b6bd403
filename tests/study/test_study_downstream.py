"""Transfer to a downstream probe and the class-aware refit, on a tiny real digits study."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from classgap.audit import read_predictions
from classgap.augment import parse_aug
from classgap.config import load_config
from classgap.data import Dataset, save_npz_dataset
from classgap.errors import ConfigError, InputError
from classgap.study import RunRecord, StudyResult, analyze
from classgap.study.downstream import match_images, refit_study, transfer_study
from classgap.sweep import Grid, Store, parse_axis, run_study

AXIS = "aug.crop"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StudyResult]:
    """2 crop strengths x 2 seeds of a 1-epoch MLP on digits, with checkpoints (~2 s)."""
    path = tmp_path_factory.mktemp("study")
    base = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                  "train.checkpoint=true", "train.threads=1",
                                  "optim.batch_size=64", "train.progress=false"])
    with Store(path) as store:
        summary = run_study(store, Grid(base, [parse_axis(f"{AXIS}=0,1")], seeds=2).runs(),
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
        first = transfer_study(store, axis=AXIS, reference=0, downstream=rgb_npz)
        again = transfer_study(store, axis=AXIS, reference=0, downstream=rgb_npz)
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


def test_transfer_needs_checkpoints(tmp_path: Path) -> None:
    with Store(tmp_path / "empty") as store, pytest.raises(ConfigError, match="checkpoint"):
        transfer_study(store, axis=AXIS, reference=0)


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
        study: tuple[Path, StudyResult], tmp_path: Path) -> None:
    path, source = study
    vector = [1, 0] * 5  # a non-trivial per-class vector (the fitted one may be all 0)
    result = _with_vector(source, vector)
    with Store(path) as store:
        report = refit_study(store, result, out_dir=tmp_path)
    assert report["per_class_strengths"] == vector and report["seeds"] == [0, 1]
    for seed in (0, 1):
        config = json.loads((tmp_path / "refit" / f"seed{seed}" / "config.json").read_text())
        assert config["aug"]["crop"] == vector and config["train"]["seed"] == seed
    assert json.loads((tmp_path / "refit.json").read_text()) == report
    assert len(report["vs_selected"]["classes"]) == 10
    assert len(report["vs_reference"]["classes"]) == 10
    assert set(report["mean_test"]) == {"refit", "selected", "reference"}
    names = [r["class"] for r in report["vs_selected"]["classes"]]
    file = tmp_path / "class_strengths.json"
    assert isinstance(json.loads(file.read_text()), dict)
    assert parse_aug(f"crop=@{file}", class_names=names) == ("crop", tuple(vector))

    def refuse(*_: Any) -> None:
        raise AssertionError("a finished refit run was trained again")

    with Store(path) as store:  # resumable: the same call reuses the run directories
        assert refit_study(store, result, out_dir=tmp_path, train_fn=refuse) == report


@pytest.mark.parametrize(("axis", "match"), [("optim.weight_decay", "'optim.weight_decay'"),
                                             ("aug.mixup", "'aug.mixup'")])
def test_refit_refuses_axes_without_a_per_class_version(
        study: tuple[Path, StudyResult], tmp_path: Path, axis: str, match: str) -> None:
    path, source = study
    with Store(path) as store, pytest.raises(ConfigError, match=match):
        refit_study(store, dataclasses.replace(source, axis=axis), out_dir=tmp_path)
    assert not (tmp_path / "refit.json").exists()
