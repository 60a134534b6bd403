"""The vmap ensemble against M separately trained models (float64, atol 1e-10)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from classgap.config import Config, load_config
from classgap.errors import InputError
from classgap.train.ensemble import (
    ModelEnsemble,
    StackedSGD,
    member_cross_entropy,
    resolve_engine,
    train_ensemble,
)

M, B, K = 3, 6, 4
ATOL = 1e-10


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny float64 kernels gain nothing from threads, and OpenMP's spin-waiting makes them
    # 100x slower when other processes load the cores.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def toy_cnn(seed: int, dropout: float = 0.0) -> nn.Module:
    """Conv + BatchNorm + ReLU + linear: every kind of tensor the engine must handle."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * 4 * 4, K),
    ).double()


def registry_model(name: str, seed: int, **options: object) -> nn.Module:
    from classgap.models import create_model

    torch.manual_seed(seed)
    return create_model(name, num_classes=K, in_channels=1, image_size=(8, 8),
                        **options).double()


FACTORIES = {"toy": toy_cnn, "cnn": lambda s: registry_model("cnn", s, width=0.25),
             "mlp": lambda s: registry_model("mlp", s, hidden=(16, 8), batchnorm=True)}


def members(kind: str) -> list[nn.Module]:
    if kind != "toy":
        pytest.importorskip("classgap.models")
    return [FACTORIES[kind](seed) for seed in (0, 1, 2)]


def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(M, B, 1, 8, 8, generator=g, dtype=torch.float64)  # (M, B, C, H, W)
    y = torch.randint(0, K, (M, B), generator=g)
    return x, y


@pytest.mark.parametrize("kind", ["toy", "cnn", "mlp"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_losses_gradients_and_running_stats_match_separate_models(kind: str, mode: str) -> None:
    models = members(kind)
    if mode == "train":
        # Non-trivial running statistics first, so eval mode reads member-specific buffers.
        for i, m in enumerate(models):
            m.train()(batches(10 + i)[0][i])
    refs = [copy.deepcopy(m).train(mode == "train") for m in models]
    ens = ModelEnsemble.from_models(models).train(mode == "train")
    x, y = batches(0)
    losses = member_cross_entropy(ens(x), y)
    losses.sum().backward()
    for i, ref in enumerate(refs):
        ref_loss = nn.functional.cross_entropy(ref(x[i]), y[i])
        ref_loss.backward()
        torch.testing.assert_close(losses[i], ref_loss, atol=ATOL, rtol=0)
        for name, p in ref.named_parameters():
            torch.testing.assert_close(ens.params[name].grad[i], p.grad, atol=ATOL, rtol=0)
        for name, b in ref.named_buffers():
            torch.testing.assert_close(ens.buffers[name][i], b, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["toy", "cnn"])
@pytest.mark.parametrize(("momentum", "nesterov", "dampening"),
                         [(0.0, False, 0.0), (0.9, False, 0.1), (0.9, True, 0.0)])
def test_sgd_steps_match_torch_sgd(kind: str, momentum: float, nesterov: bool,
                                   dampening: float) -> None:
    lrs, wds = [0.1, 0.05, 0.2], [0.0, 5e-4, 1e-2]
    models = members(kind)
    refs = [copy.deepcopy(m).train() for m in models]
    ens = ModelEnsemble.from_models(models).train()
    opt = StackedSGD(dict(ens.named_parameters()), lr=lrs, momentum=momentum,
                     dampening=dampening, nesterov=nesterov, weight_decay=wds)
    ref_opts = []
    for ref, lr, wd in zip(refs, lrs, wds, strict=True):
        decay = [p for p in ref.parameters() if p.ndim >= 2]
        no_decay = [p for p in ref.parameters() if p.ndim < 2]
        ref_opts.append(torch.optim.SGD(
            [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov))
    for step in range(4):
        if step == 2:  # a schedule changes the rates mid-run
            lrs = [lr / 2 for lr in lrs]
            opt.set_lr(lrs)
            for o, lr in zip(ref_opts, lrs, strict=True):
                for group in o.param_groups:
                    group["lr"] = lr
        x, y = batches(step)
        opt.zero_grad()
        member_cross_entropy(ens(x), y).sum().backward()
        opt.step()
        for i, (ref, o) in enumerate(zip(refs, ref_opts, strict=True)):
            o.zero_grad()
            nn.functional.cross_entropy(ref(x[i]), y[i]).backward()
            o.step()
    trained = ens.unstack()
    for ref, mine in zip(refs, trained, strict=True):
        ref_state, my_state = ref.state_dict(), mine.state_dict()
        assert ref_state.keys() == my_state.keys()
        for name, value in ref_state.items():
            torch.testing.assert_close(my_state[name], value, atol=ATOL, rtol=0)


def test_unstack_gives_independent_ordinary_modules() -> None:
    models = members("toy")
    ens = ModelEnsemble.from_models(models).eval()
    out = ens.unstack()
    x = batches(0)[0]
    for i, m in enumerate(out):
        assert isinstance(m, nn.Sequential) and not m.training
        assert next(m.parameters()).device.type == "cpu"
        torch.testing.assert_close(m(x[i]), models[i].eval()(x[i]), atol=ATOL, rtol=0)
    with torch.no_grad():
        next(out[0].parameters()).add_(1.0)  # a copy: the ensemble is unchanged
    torch.testing.assert_close(ens(x)[0], models[0](x[0]), atol=ATOL, rtol=0)


def test_dropout_masks_differ_between_members() -> None:
    same = [toy_cnn(0, dropout=0.5) for _ in range(2)]
    ens = ModelEnsemble.from_models(same).train()
    x = batches(0)[0][:1].expand(2, -1, -1, -1, -1)  # the same batch for both members
    out = ens(x)
    assert not torch.allclose(out[0], out[1])


def test_parameters_are_stacked_leaves() -> None:
    ens = ModelEnsemble.from_models(members("toy"))
    assert ens.num_members == M
    for p in ens.parameters():
        assert p.is_leaf and p.requires_grad and p.shape[0] == M


def test_bad_inputs_raise_input_error() -> None:
    with pytest.raises(InputError, match="'models' must hold at least one"):
        ModelEnsemble.from_models([])
    with pytest.raises(InputError, match=r"'models\[1\]' must have the parameter names"):
        ModelEnsemble.from_models([nn.Linear(2, 3), nn.Linear(2, 4)])
    with pytest.raises(InputError, match=r"'models\[1\]' must be a Linear"):
        ModelEnsemble.from_models([nn.Linear(2, 3), nn.Conv1d(2, 3, 1)])
    ens = ModelEnsemble.from_models(members("toy"))
    with pytest.raises(InputError, match="'x' must have shape"):
        ens(torch.zeros(2, B, 1, 8, 8, dtype=torch.float64))
    params = dict(ens.named_parameters())
    with pytest.raises(InputError, match="'lr' must be a number >= 0 or 3 such numbers"):
        StackedSGD(params, lr=[0.1, 0.2])
    with pytest.raises(InputError, match="'weight_decay' must be"):
        StackedSGD(params, lr=0.1, weight_decay=-1.0)
    with pytest.raises(InputError, match="'nesterov' must come with momentum > 0"):
        StackedSGD(params, lr=0.1, nesterov=True)


def test_resolve_engine() -> None:
    assert resolve_engine("auto", "cpu") == "sequential"
    assert resolve_engine("auto", "cuda") == "vmap"
    assert resolve_engine("vmap", "cpu") == "vmap"
    with pytest.raises(InputError, match="did you mean 'vmap'"):
        resolve_engine("vamp", "cpu")


# -- train_ensemble: configs -> run directories ---------------------------------------------

def digits(seed: int, *more: str) -> Config:
    return load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
                                  "train.progress=false", "train.precision=fp32",
                                  f"train.seed={seed}", *more])


def test_train_ensemble_vmap_matches_the_trainer(tmp_path: Path) -> None:
    configs = [digits(0, "optim.weight_decay=0.001", "aug.flip=0.5"),
               digits(1, "optim.lr=0.1", "optim.weight_decay=0", "aug.mixup=0.2")]
    dirs = [tmp_path / "a", tmp_path / "b"]
    ens = train_ensemble(configs, dirs, engine="vmap")
    ref = train_ensemble(configs, [tmp_path / "ra", tmp_path / "rb"], engine="sequential")
    for mine, theirs, out in zip(ens, ref, dirs, strict=True):
        # float32 on CPU: the same computation in another order, so equal to rounding.
        np.testing.assert_allclose(mine.test_logits, theirs.test_logits, atol=1e-4)
        np.testing.assert_allclose(mine.val_logits, theirs.val_logits, atol=1e-4)
        assert mine.history[0]["lr"] == theirs.history[0]["lr"]
        assert mine.history[0]["train_loss"] == pytest.approx(theirs.history[0]["train_loss"],
                                                               abs=1e-5)
        assert sorted(p.name for p in out.iterdir()) == sorted(
            p.name for p in theirs.out_dir.iterdir())
        prov = json.loads((out / "provenance.json").read_text())
        assert prov["engine"] == "vmap" and prov["ensemble_size"] == 2
    assert not np.allclose(ens[0].test_logits, ens[1].test_logits)


@pytest.mark.parametrize(("override", "key"), [("model.name=cnn", "model.name"),
                                               ("train.epochs=2", "train.epochs"),
                                               ("optim.batch_size=64", "optim.batch_size"),
                                               ("train.precision=auto", "train.precision")])
def test_train_ensemble_rejects_configs_that_cannot_share_a_model(override: str,
                                                                  key: str) -> None:
    with pytest.raises(InputError, match=rf"'{key}' must be the same for every member.*"
                                         r"\(configs\[0\]\) and .* \(configs\[1\]\)"):
        train_ensemble([digits(0), digits(1, override)])


def test_train_ensemble_vmap_limits() -> None:
    with pytest.raises(InputError, match=r"'optim\.name' must be 'sgd' for the vmap engine"):
        train_ensemble([digits(0, "optim.name=adamw")], engine="vmap")
    with pytest.raises(InputError, match=r"'train\.precision' must be 'auto' or 'fp32'"):
        train_ensemble([digits(0, "train.precision=bf16")], engine="vmap")
    with pytest.raises(InputError, match="'out_dirs' must hold one entry per config"):
        train_ensemble([digits(0)], [None, None])
