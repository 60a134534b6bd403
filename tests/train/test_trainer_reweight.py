"""Worst-class reweighting inside the trainer: weights per epoch in class_weights.csv, the
statistics from a pass over the training set without augmentation, and CE when neutral."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classgap.config import load_config
from classgap.errors import ConfigError
from classgap.train import train
from classgap.train.criterion import Criterion, build_criterion

BASE = ["data.dataset=digits", "model.name=mlp", "train.epochs=3", "train.threads=1",
        "optim.batch_size=64", "train.progress=false"]


@pytest.mark.parametrize("method", ["clam", "tilted", "ggf", "apstar"])
def test_weights_per_epoch_are_written(tmp_path: Path, method: str) -> None:
    result = train(load_config(overrides=[*BASE, f"loss.reweight={method}"]), tmp_path / method)
    with open(tmp_path / method / "class_weights.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["epoch", *[str(c) for c in range(10)]]
    weights = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    assert weights.shape == (3, 10)
    np.testing.assert_allclose(weights[0], 1.0)  # the first epoch trains unweighted
    np.testing.assert_allclose(weights.mean(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(weights[-1], 1.0)  # digits' classes are not all alike
    assert 0 <= result.test_accuracy <= 1


def test_statistics_come_from_the_whole_training_set_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The evaluation pass: every training sample once, in dataset order, no augmentation
    # (the training loader is shuffled and augmented, and drops its last partial batch).
    seen: list[np.ndarray] = []
    original = Criterion.update_class_weights

    def spy(self: Criterion, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        seen.append(labels.copy())
        return original(self, logits, labels)

    monkeypatch.setattr(Criterion, "update_class_weights", spy)
    config = load_config(overrides=[*BASE, "loss.reweight=clam", "aug.crop=2", "aug.flip=0.5"])
    train(config, tmp_path / "run")
    from classgap.data.loader import make_splits

    labels = make_splits(config).train.labels
    assert len(seen) == 2  # after epochs 1 and 2; the last epoch's would train nothing
    for got in seen:
        np.testing.assert_array_equal(got, labels)


def test_unit_weights_are_cross_entropy() -> None:
    config = load_config(overrides=[*BASE, "loss.reweight=ggf"])
    crit = build_criterion(config, class_counts=[30, 20, 10])
    z, y = torch.randn(12, 3), torch.randint(0, 3, (12,))
    torch.testing.assert_close(crit(z, y), F.cross_entropy(z, y))


@pytest.mark.parametrize(("extra", "match"), [
    (["loss.reweight=clamp"], "'loss.reweight'"),
    (["loss.reweight=clam", "loss.drw_epoch=1"], "both set the class weights"),
    (["loss.reweight=clam", "aug.mixup=1"], "mixes labels"),
])
def test_bad_reweight_settings(extra: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=[*BASE, *extra])


def test_study_setting_is_the_default_studys_regime_at_its_selection() -> None:
    # clam@fmnist-study trains what the default study selected; a drift of either is caught.
    from classgap.sweep.presets import MLP_5K
    from classgap.train.recipes import recipe_overrides

    study = load_config(overrides=[*MLP_5K, "optim.label_smoothing=0.3"])
    recipe = load_config(overrides=list(recipe_overrides("clam@fmnist-study")))
    assert recipe.loss.reweight == "clam"
    assert recipe.to_dict() == {**study.to_dict(), "loss": recipe.to_dict()["loss"]}
    for method in ("tilted", "ggf", "apstar"):
        assert load_config(overrides=list(recipe_overrides(f"{method}@fmnist"))).loss.reweight \
            == method
    assert load_config(overrides=list(recipe_overrides("poly@fmnist-study"))).loss.name == "poly"


def test_reweight_parameters_reach_the_rule_and_are_checked(tmp_path: Path) -> None:
    config = load_config(overrides=[*BASE, "loss.reweight=clam", "loss.reweight_clip=[0.9, 1.1]"])
    train(config, tmp_path / "run")
    with open(tmp_path / "run" / "class_weights.csv", newline="") as fh:
        weights = np.array([[float(v) for v in row[1:]] for row in list(csv.reader(fh))[1:]])
    # Clipped to [0.9, 1.1] before renormalising to mean 1: the spread stays within 1.1 / 0.9.
    assert (weights.max(axis=1) / weights.min(axis=1) <= 1.1 / 0.9 + 1e-4).all()  # 6 digits
    assert not np.allclose(weights[-1], 1.0)
    for extra, match in ((["loss.reweight=clam", "loss.reweight_mix=0.3"], "not a parameter"),
                         (["loss.reweight_alpha=0.3"], "needs loss.reweight"),
                         (["loss.reweight=ggf", "loss.reweight_discount=1.5"], "discount")):
        with pytest.raises(ConfigError, match=match):
            load_config(overrides=[*BASE, *extra])
