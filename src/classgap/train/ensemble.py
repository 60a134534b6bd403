"""Train M runs that share an architecture and a dataset at once, as one vmapped ensemble.

:func:`train_ensemble` takes M configs that may differ in seed, augmentation, learning rate,
weight decay, label smoothing and schedule (:data:`PER_MEMBER`) and must agree on everything
else (model, data, epochs, batch size, precision, device...). Each member draws its own
initialisation (``torch.manual_seed(train.seed)`` before ``create_model``, as the trainer),
its own batch order and augmentation (a loader per member, seeded as the trainer's), and gets
its own learning rate and weight decay (:class:`~classgap.train.stacked.StackedSGD`); each
writes the run directory :func:`~classgap.train.trainer.train` writes, so sweeps and audits
cannot tell the engines apart (``provenance.json`` says which one ran).

Where it wins: a GPU, where M small models stepped one at a time leave it idle. On a CPU the
grouped kernels were measured slower than M separate ones, so ``engine="auto"`` means vmap on
CUDA and the plain trainer, one run after another, elsewhere. Benchmark:
``bench/ensemble_speed.py``.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import torch
from tqdm.auto import tqdm

from classgap._validation import check_choice, fail
from classgap.config import Config, LossConfig, flatten
from classgap.data.loader import DeviceLoader, channel_stats, make_splits
from classgap.errors import InputError
from classgap.train import rundir
from classgap.train.evaluate import EvalResult, evaluate, loss_fn
from classgap.train.optim import lr_factor
from classgap.train.stacked import ModelEnsemble, StackedSGD, member_cross_entropy
from classgap.train.trainer import (
    RunResult,
    build_augment,
    numerics,
    resolve_device,
    train,
)

__all__ = ["ENGINES", "PER_MEMBER", "ModelEnsemble", "StackedSGD", "check_ensemble_configs",
           "member_cross_entropy", "resolve_engine", "shared_keys", "train_ensemble"]

ENGINES = ("auto", "vmap", "sequential")
#: Config keys (and whole sections, ending in ".") that may differ between members.
PER_MEMBER = ("train.seed", "optim.lr", "optim.weight_decay", "optim.label_smoothing",
              "train.eval_every", "train.checkpoint", "train.progress", "aug.", "schedule.")
EVAL_BATCH = 1024  # as the trainer

PathLike = str | os.PathLike[str]


def resolve_engine(engine: str, device: torch.device | str) -> str:
    """``"vmap"`` or ``"sequential"``: ``"auto"`` means vmap on CUDA, sequential elsewhere."""
    check_choice(engine, "engine", ENGINES)
    if engine != "auto":
        return engine
    return "vmap" if torch.device(device).type == "cuda" else "sequential"


def shared_keys(config: Config) -> dict[str, Any]:
    """The config's keys that every member of one ensemble must share (all but
    :data:`PER_MEMBER`), as a point."""
    sections = tuple(p for p in PER_MEMBER if p.endswith("."))
    return {k: v for k, v in flatten(config.to_dict()).items()
            if k not in PER_MEMBER and not k.startswith(sections)}


def check_ensemble_configs(configs: Sequence[Config]) -> None:
    """Raise :class:`~classgap.errors.InputError` naming the first shared field that differs.

    Every key outside :data:`PER_MEMBER` must be equal across ``configs``.
    """
    if not configs or not all(isinstance(c, Config) for c in configs):
        raise fail("configs", "be a non-empty sequence of Config", configs)
    first = shared_keys(configs[0])
    for i, config in enumerate(configs[1:], start=1):
        other = shared_keys(config)
        for key in sorted(set(first) | set(other)):
            a, b = first.get(key), other.get(key)
            if a != b:
                raise InputError(f"'{key}' must be the same for every member of an ensemble; "
                                 f"got {a!r} (configs[0]) and {b!r} (configs[{i}])")


def train_ensemble(configs: Sequence[Config], out_dirs: Sequence[PathLike | None] | None = None,
                   *, engine: str = "auto", overwrite: bool = False,
                   progress: bool | None = None, compile: bool = False) -> list[RunResult]:
    """Train one run per config, all at once on one device; results in input order.

    Parameters
    ----------
    configs : sequence of Config, length M
        May differ only in :data:`PER_MEMBER` (:func:`check_ensemble_configs`).
    out_dirs : sequence of path or None, length M, optional
        Run directory of each member (None: not written), as ``train(config, out_dir)``.
    engine : {"auto", "vmap", "sequential"}
        ``"vmap"``: one stacked model (SGD and plain cross-entropy only; float32, no
        channels_last: see :mod:`classgap.train.stacked`). ``"sequential"``:
        :func:`~classgap.train.train` per config. ``"auto"``: vmap on CUDA, sequential
        elsewhere and for SAM, AdamW or a class-aware loss.
    overwrite, progress
        As :func:`~classgap.train.train`.
    compile : bool
        ``torch.compile`` the ensemble's forward (vmap engine): ~1.7x faster steps on an H100
        for the small CNN, after ~25 s of compilation, so only worth it for long runs.

    Returns
    -------
    list of RunResult, length M
    """
    configs = list(configs)
    check_ensemble_configs(configs)
    dirs = list(out_dirs) if out_dirs is not None else [None] * len(configs)
    if len(dirs) != len(configs):
        raise fail("out_dirs", f"hold one entry per config ({len(configs)})", len(dirs))
    device = resolve_device(configs[0].train.device)
    first = configs[0]
    per_class_smoothing = any(isinstance(c.optim.label_smoothing, tuple) for c in configs)
    plain = first.optim.name == "sgd" and first.loss == LossConfig() and not per_class_smoothing
    if resolve_engine(engine, device) == "sequential" or (engine == "auto" and not plain):
        return [train(c, d, overwrite=overwrite, progress=progress)
                for c, d in zip(configs, dirs, strict=True)]
    if first.optim.name != "sgd":
        raise fail("optim.name", "be 'sgd' for the vmap engine", first.optim.name)
    if first.loss != LossConfig():
        raise fail("loss.name", "be plain 'ce' without DRW or loss parameters for the vmap "
                   "engine (engine='sequential' trains any loss)", first.loss.name)
    if per_class_smoothing:
        raise fail("optim.label_smoothing", "be one value per run for the vmap engine "
                   "(engine='sequential' trains class-conditional smoothing)",
                   next(c.optim.label_smoothing for c in configs
                        if isinstance(c.optim.label_smoothing, tuple)))
    if first.train.precision == "bf16":
        raise fail("train.precision", "be 'auto' or 'fp32' for the vmap engine (bf16 autocast "
                   "breaks BatchNorm under vmap)", "bf16")
    outs = [rundir.prepare_run_dir(d, c.to_dict(), overwrite=overwrite) if d is not None
            else None for c, d in zip(configs, dirs, strict=True)]
    return _train_vmap(configs, outs, device, progress=progress, compile=compile)


def _member_loader(base: DeviceLoader, config: Config, num_classes: int) -> DeviceLoader:
    # A shallow copy shares the device-resident images: M members cost one copy of the data.
    loader = copy.copy(base)
    loader.seed, loader.augment = int(config.train.seed), build_augment(config, num_classes)
    return loader


def _member_losses(logits: torch.Tensor, targets: list[torch.Tensor],
                   configs: Sequence[Config]) -> torch.Tensor:
    """(M,) mean losses; one batched call unless targets or label smoothing differ."""
    smoothing = {c.optim.label_smoothing for c in configs}
    one = next(iter(smoothing))
    if len(smoothing) == 1 and not isinstance(one, tuple) \
            and len({(t.shape, t.dtype) for t in targets}) == 1:
        return member_cross_entropy(logits, torch.stack(targets), label_smoothing=one)
    return torch.stack([loss_fn(z, t, label_smoothing=c.optim.label_smoothing)
                        for z, t, c in zip(logits, targets, configs, strict=True)])


def _train_vmap(configs: list[Config], outs: list[Any], device: torch.device, *,
                progress: bool | None, compile: bool) -> list[RunResult]:
    t_start, started = time.perf_counter(), datetime.now(UTC)
    first, m = configs[0], len(configs)
    tc, oc = first.train, first.optim
    with numerics(tc.seed, tc.threads, device):
        splits = make_splits(first)  # data.* is shared, so every member sees the same split
        train_set, val_set, test_set = splits.train, splits.val, splits.test
        if len(train_set) < oc.batch_size:
            raise fail("optim.batch_size", f"be <= the training set size ({len(train_set)})",
                       oc.batch_size)
        mean, std = channel_stats(train_set.images)
        common: dict[str, Any] = {"mean": mean, "std": std, "channels_last": False,
                                  "device": device}
        base = DeviceLoader(train_set, batch_size=oc.batch_size, shuffle=True, drop_last=True,
                            **common)
        loaders = [_member_loader(base, c, train_set.n_classes) for c in configs]
        eval_loaders = {name: DeviceLoader(ds, batch_size=EVAL_BATCH, **common)
                        for name, ds in (("val", val_set), ("test", test_set)) if ds is not None}

        from classgap.models import create_model

        c_in, h, w = train_set.image_shape
        models = []
        for config in configs:
            torch.manual_seed(config.train.seed)  # the init train() gives this seed
            models.append(create_model(first.model.name, num_classes=train_set.n_classes,
                                       in_channels=c_in, image_size=(h, w),
                                       head=first.model.head, dropout=first.model.dropout))
        ensemble = ModelEnsemble.from_models(models).to(device).train()
        steps = len(base)
        total = tc.epochs * steps

        def lrs(step: int) -> list[float]:
            return [c.optim.lr * lr_factor(step, name=c.schedule.name, total_steps=total,
                                           steps_per_epoch=steps,
                                           warmup_epochs=c.schedule.warmup_epochs,
                                           milestones=c.schedule.milestones,
                                           gamma=c.schedule.gamma) for c in configs]

        exempt = oc.wd_exempt_norm_bias  # as param_groups: ndim <= 1 is norm scale or bias
        optimizer = StackedSGD(dict(ensemble.named_parameters()), lr=lrs(0),
                               momentum=oc.momentum, nesterov=oc.nesterov and oc.momentum > 0,
                               weight_decay=[c.optim.weight_decay for c in configs],
                               decay_filter=lambda name, p: p.ndim > 1 or not exempt)
        forward = torch.compile(ensemble.forward) if compile else ensemble.forward

        show = (tc.progress if progress is None else progress) and sys.stderr.isatty()
        bar = tqdm(total=total, disable=not show, unit="step", leave=False,
                   desc=f"{first.data.dataset}/{first.model.name} ensemble of {m}")
        histories: list[list[dict[str, Any]]] = [[] for _ in configs]
        vals: list[EvalResult | None] = [None] * m
        train_time, step = 0.0, 0
        for epoch in range(tc.epochs):
            t0 = time.perf_counter()
            epoch_lr = optimizer.lr.tolist()
            ensemble.train()
            loss_sum = torch.zeros(m, device=device)
            correct = torch.zeros(m, device=device, dtype=torch.int64)
            for batches in zip(*(ld.epoch(epoch) for ld in loaders), strict=True):
                x = torch.stack([b[0] for b in batches])  # (M, B, C, H, W)
                labels = torch.stack([b[2] for b in batches])  # (M, B)
                logits = forward(x)  # (M, B, K)
                losses = _member_losses(logits, [b[1] for b in batches], configs)  # (M,)
                optimizer.zero_grad()
                losses.sum().backward()  # member i's gradient is its own loss's gradient
                optimizer.step()
                step += 1
                if step < total:
                    optimizer.set_lr(lrs(step))
                loss_sum += losses.detach()
                correct += (logits.argmax(2) == labels).sum(1)
                bar.update()
            epoch_time = time.perf_counter() - t0
            train_time += epoch_time
            last = epoch + 1 == tc.epochs
            due = [("val" in eval_loaders and ((epoch + 1) % c.train.eval_every == 0 or last))
                   for c in configs]
            members = ensemble.unstack() if any(due) else []
            for i in range(m):
                row = {"epoch": epoch + 1, "lr": epoch_lr[i],
                       "train_loss": loss_sum[i].item() / steps,
                       "train_acc": correct[i].item() / (steps * oc.batch_size),
                       "val_acc": None, "val_loss": None, "epoch_time": round(epoch_time, 4)}
                if due[i]:
                    val = vals[i] = evaluate(members[i], eval_loaders["val"])
                    row["val_acc"], row["val_loss"] = val.accuracy, val.loss
                histories[i].append(row)
        bar.close()
        members = ensemble.unstack()
        tests = [evaluate(model, eval_loaders["test"]) for model in members]

    # Throughput per member: the ensemble's images/s divided by M.
    images_per_second = tc.epochs * steps * oc.batch_size / max(train_time, 1e-9)
    wall_time = time.perf_counter() - t_start
    results = []
    for i, (config, val_i, test_i) in enumerate(zip(configs, vals, tests, strict=True)):
        paths = {} if outs[i] is None else rundir.write_run(
            outs[i], config, splits=splits, history=histories[i], val=val_i, test=test_i,
            model=members[i], device=device, precision="fp32", channels_last=False,
            started=started, wall_time=wall_time, train_time=train_time,
            images_per_second=images_per_second,
            extra_provenance={"engine": "vmap", "ensemble_size": m, "ensemble_member": i})
        results.append(RunResult(config, histories[i], val_i.accuracy if val_i else None,
                                 test_i.accuracy, wall_time, images_per_second,
                                 val_i.logits if val_i else None, test_i.logits, outs[i], paths))
    return results
