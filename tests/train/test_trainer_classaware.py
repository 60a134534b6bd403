"""The trainer with class-aware losses, DRW, SAM and the named recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classgap.cli import run
from classgap.config import Config, load_config
from classgap.errors import ConfigError
from classgap.losses import class_balanced_weights
from classgap.train import train
from classgap.train.criterion import build_criterion
from classgap.train.optim import build_rho_schedule
from classgap.train.recipes import METHODS, SETTINGS, recipe_overrides

TINY = ["data.dataset=digits", "model.name=mlp", "train.epochs=2", "train.progress=false",
        "optim.batch_size=64", "train.precision=fp32", "train.threads=1"]


def tiny(*extra: str) -> Config:
    return load_config(overrides=[*TINY, *extra])


def test_plain_cross_entropy_keeps_the_original_path() -> None:
    assert build_criterion(tiny(), [5, 5]).module is None
    assert build_criterion(tiny("loss.name=focal"), [5, 5]).module is not None


def test_drw_switches_class_weights_on_at_its_epoch() -> None:
    crit = build_criterion(tiny("loss.name=ldam", "loss.drw_epoch=1"), [90, 9, 1])
    crit.on_epoch_start(0)
    assert torch.equal(crit.module.weight, torch.ones(3))
    crit.on_epoch_start(1)
    assert torch.allclose(crit.module.weight,
                          class_balanced_weights(torch.tensor([90, 9, 1]), 0.9999))


def test_sam_with_rho_zero_trains_exactly_like_sgd() -> None:
    # no BatchNorm in the tiny MLP: SAM's second pass would update running statistics twice
    sgd = train(tiny())
    sam = train(tiny("optim.name=sam", "optim.rho=0"))
    assert np.array_equal(sgd.test_logits, sam.test_logits)
    moved = train(tiny("optim.name=sam", "optim.rho=0.5"))
    assert not np.array_equal(sgd.test_logits, moved.test_logits)


def test_rho_rises_when_drw_starts() -> None:
    cfg = tiny("train.epochs=4", "optim.name=sam", "optim.rho=0.1", "loss.drw_epoch=2",
               "optim.drw_rho=0.5")
    schedule = build_rho_schedule(cfg)
    assert [schedule.rho_at(e) for e in range(4)] == [0.1, 0.1, 0.5, 0.5]
    assert build_rho_schedule(tiny()) is None


@pytest.mark.parametrize("extra", [
    ("loss.name=ldam", "model.head=cosine", "loss.drw_epoch=1"),
    ("loss.name=vs", "data.imbalance=5"),
    ("loss.name=mr2",),
    ("loss.name=balanced_softmax", "optim.name=sam", "optim.rho=0.05"),
])
def test_class_aware_runs_learn_and_are_deterministic(extra: tuple[str, ...]) -> None:
    a, b = train(tiny(*extra)), train(tiny(*extra))
    assert np.isfinite(a.test_logits).all() and a.test_accuracy > 0.5
    assert np.array_equal(a.test_logits, b.test_logits)


@pytest.mark.parametrize("overrides, needle", [
    (["loss.name=ldm"], "did you mean 'ldam'"),
    (["loss.name=ldam", "loss.lam=1"], "'loss.lam' is not a parameter of loss 'ldam'"),
    (["loss.name=focal", "loss.gamma=-1"], "'gamma'"),
    (["loss.drw_epoch=5"], "'loss.drw_epoch' must be in [0, train.epochs=2)"),
    (["loss.name=vs", "aug.mixup=1"], "aug.mixup mixes labels"),
    (["optim.name=sam", "optim.rho=-1"], "'rho'"),
    (["optim.name=sam", "optim.drw_rho=0.5"], "needs loss.drw_epoch"),
    (["optim.name=sam", "optim.rho_schedule=cosine"], "rho_schedule"),
])
def test_bad_loss_and_sam_settings_are_named(overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        tiny(*overrides)
    assert needle in str(err.value)


def test_every_recipe_resolves_to_a_valid_config() -> None:
    for method in METHODS:
        for setting in SETTINGS:
            load_config(overrides=recipe_overrides(f"{method}@{setting}"))


def test_reference_cifar_recipe() -> None:
    cfg = load_config(overrides=recipe_overrides("ldam-drw-sam@cifar100-lt"))
    assert (cfg.model.name, cfg.model.head, cfg.train.epochs) == ("resnet32", "cosine", 200)
    assert (cfg.loss.name, cfg.loss.max_m, cfg.loss.s, cfg.loss.drw_epoch) == \
        ("ldam", 0.5, 30.0, 160)
    assert (cfg.optim.name, cfg.optim.rho, cfg.optim.lr, cfg.optim.weight_decay) == \
        ("sam", 0.8, 0.1, 2e-4)
    assert (cfg.schedule.name, cfg.schedule.milestones, cfg.schedule.gamma) == \
        ("step", (160.0, 180.0), 0.01)
    assert (cfg.data.imbalance, cfg.data.val_size) == (100.0, 0)
    assert load_config(overrides=recipe_overrides("ce-drw-sam@cifar10-lt")).optim.rho == 0.5
    # the CPU-sized settings use SAM's own default radius (the CIFAR radii broke the small CNN)
    assert load_config(overrides=recipe_overrides("ldam-drw-sam")).optim.rho == 0.05


def test_unknown_recipe_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["train", "--recipe", "ldam-drv"]) == 1
    err = capsys.readouterr().err
    assert "did you mean 'ldam-drw'" in err and len(err.strip().splitlines()) == 1


def test_cli_recipe_with_overrides(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code = run(["train", "--recipe", "ldam-drw-sam@fmnist", "--dataset", "digits", "--model",
                "mlp", "--epochs", "2", "--set", "loss.drw_epoch=1", "--set", "train.threads=1",
                "--set", "data.train_subset=none",
                "--out", str(tmp_path / "r")])
    assert code == 0, capsys.readouterr().err
    saved = (tmp_path / "r" / "config.json").read_text()
    assert '"ldam"' in saved and '"sam"' in saved
    assert run(["list", "recipes"]) == 0 and "ldam-drw-sam" in capsys.readouterr().out
    assert run(["list", "losses"]) == 0 and "balanced_softmax" in capsys.readouterr().out


def test_vmap_engine_refuses_class_aware_losses_and_auto_falls_back() -> None:
    from classgap.errors import InputError
    from classgap.train import train_ensemble

    configs = [tiny("loss.name=focal", f"train.seed={s}") for s in range(2)]
    with pytest.raises(InputError, match=r"loss\.name"):
        train_ensemble(configs, engine="vmap")
    results = train_ensemble(configs, engine="auto")  # sequential: the focal loss is honoured
    assert np.array_equal(results[0].test_logits, train(configs[0]).test_logits)
