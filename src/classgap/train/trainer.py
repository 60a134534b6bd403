"""Train one model from a :class:`~classgap.config.Config`, readable top to bottom.

Order of events in :func:`train`: resolve device and precision → seed and numeric settings → data
splits on the device → model → run directory (checked before any training) → optimizer and
per-step schedule → epochs (train, validate) → test → write the run directory.

>>> from classgap.config import load_config
>>> cfg = load_config(overrides=["data.dataset=digits", "model.name=mlp", "train.epochs=1",
...                              "train.progress=false"])
>>> result = train(cfg)
>>> result.test_logits.shape
(449, 10)
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from classgap.config import Config
from classgap.data.loader import DeviceLoader, channel_stats, make_splits
from classgap.errors import ConfigError
from classgap.train import rundir
from classgap.train.criterion import Criterion, build_criterion
from classgap.train.evaluate import EvalResult, autocast, evaluate
from classgap.train.optim import build_optimizer, build_rho_schedule, build_scheduler
from classgap.train.precision import choose_path

__all__ = ["RunResult", "build_augment", "numerics", "resolve_device", "train"]

EVAL_BATCH = 1024  # evaluation batch: no gradients, so larger than training batches


@dataclass(frozen=True, eq=False)
class RunResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    config : Config
    history : list of dict
        One row per epoch with the ``history.csv`` columns (val_* None when not evaluated).
    val_accuracy, test_accuracy : float
        Final top-1 accuracy; ``val_accuracy`` is None without a validation split.
    wall_time : float
        Seconds for the whole call (data loading and writing included).
    images_per_second : float
        Training throughput: images of the training epochs / their time.
    val_logits, test_logits : np.ndarray of float32, shape (N, K)
        Final logits in split order (``val_logits`` None without a validation split).
    out_dir : Path or None
    paths : dict of str to Path
        The files written, by name (``"config"``, ``"test"``...).
    """

    config: Config
    history: list[dict[str, Any]]
    val_accuracy: float | None
    test_accuracy: float
    wall_time: float
    images_per_second: float
    val_logits: np.ndarray | None
    test_logits: np.ndarray
    out_dir: Path | None = None
    paths: dict[str, Path] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other names are checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"'train.device' must name an available device; got {name!r} "
                          f"(torch {torch.__version__} sees no CUDA device)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("'train.device' must name an available device; got 'mps'")
    return torch.device(name)


#: Runs with fewer optimizer steps than this recompute BatchNorm statistics before evaluating
#: (``train.bn_recompute="auto"``): with momentum 0.1 the running averages of a 15-step run
#: still remember their initial (0, 1) and the evaluated model collapsed onto one class
#: (Fashion-MNIST, 2k images, 1 epoch: 10.3% test, 31% train accuracy).
BN_RECOMPUTE_STEPS = 300
BN_RECOMPUTE_BATCHES = 50  # training batches averaged (all of them when there are fewer)


def _batchnorms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recompute_bn(model: torch.nn.Module, loader: Any, *, epoch: int, bf16: bool,
                 batches: int = BN_RECOMPUTE_BATCHES) -> None:
    """Replace every BatchNorm's running statistics by their plain average over ``batches``
    training batches of ``loader.epoch(epoch)`` (the model's weights are untouched).

    The training forward passes see the same augmented batches as training; momentum ``None``
    makes BatchNorm keep a cumulative average, restored afterwards.
    """
    layers = _batchnorms(model)
    if not layers:
        return
    momenta = [m.momentum for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for i, (x, _, _) in enumerate(loader.epoch(epoch)):
            if i >= batches:
                break
            with autocast(loader.device, bf16):
                model(x)
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)


def _warn_at_chance(test_acc: float, train_acc: float, k: int, config: Config) -> None:
    """Warn when the evaluated model is at chance while training was not: evaluation broke
    (BatchNorm statistics, a data mismatch), not learning."""
    if k > 1 and test_acc < 1.5 / k and train_acc > 3.0 / k:
        warnings.warn(f"test accuracy {100 * test_acc:.1f}% is at chance ({100 / k:.1f}% for "
                      f"{k} classes) while training accuracy was {100 * train_acc:.1f}%: the "
                      "evaluated model is not the trained one (with BatchNorm, try "
                      "--set train.bn_recompute=true or more steps)", RuntimeWarning,
                      stacklevel=3)


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` without its import of ``torch._inductor.config``.

    That import took 1.3 s of every fresh process (AMD EPYC, torch 2.13; bench/RESULTS.md)
    and only sets the compiler's flag: classgap compiles nothing, so the eager flag is all a
    run needs. Once a user's code has loaded the compiler, the public call keeps it in step.
    """
    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


@contextlib.contextmanager
def numerics(seed: int, threads: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch, set threads and CPU determinism for the run, then restore the old state.

    Determinism comes without its NaN fill of every fresh tensor
    (``torch.utils.deterministic.fill_uninitialized_memory``): that fill only shows an op
    that reads memory it never wrote, and cost 7% of a ``cnn_small`` bf16 training epoch
    (AMD EPYC; bench/RESULTS.md). Results are the same without it, bit for bit.
    """
    old_threads = torch.get_num_threads()
    old_det = (torch.are_deterministic_algorithms_enabled(),
               torch.is_deterministic_algorithms_warn_only_enabled())
    old_fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.manual_seed(seed)  # model init and dropout; loaders use their own generators
    if threads is not None:
        torch.set_num_threads(threads)
    if device.type == "cpu":  # on CUDA it would slow scatter/index kernels
        _set_deterministic(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        _set_deterministic(*old_det)
        torch.utils.deterministic.fill_uninitialized_memory = old_fill  # type: ignore[attr-defined]


def build_augment(config: Config, num_classes: int) -> Any:
    """The run's :class:`~classgap.augment.AugmentPipeline`, or None when it is the identity."""
    if not config.aug:
        return None
    from classgap.augment import AugmentPipeline  # only needed when augmenting

    pipeline = AugmentPipeline(dict(config.aug), num_classes)
    return None if pipeline.is_identity else pipeline


def _forward_backward(model: torch.nn.Module, criterion: Criterion, x: torch.Tensor,
                      targets: torch.Tensor, *, device: torch.device,
                      bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and backward pass of a batch: ``(loss, logits (B, K))``, gradients added."""
    with autocast(device, bf16):
        if criterion.needs_features:  # MR² reads the penultimate features
            logits, features = model(x, return_features=True)  # (B, K), (B, D)
        else:
            logits, features = model(x), None
    loss = criterion(logits, targets, features)
    loss.backward()
    return loss, logits


def _first(fn: Any) -> Any:
    """``fn()[0]``: the loss of :func:`_forward_backward`, as SAM's closure returns it."""
    return fn()[0]


def train(config: Config | None = None, out_dir: str | os.PathLike[str] | None = None, *,
          overwrite: bool = False, progress: bool | None = None) -> RunResult:
    """Train ``config.model`` on ``config.data`` and evaluate it on val and test.

    Parameters
    ----------
    config : Config, optional
        Default :class:`Config` when None.
    out_dir : path, optional
        Run directory to write (:mod:`classgap.train.rundir`); nothing is written when None.
    overwrite : bool
        Replace the run files of a directory that holds another config.
    progress : bool, optional
        Show a progress bar (only on a terminal); default ``config.train.progress``.

    Returns
    -------
    RunResult

    Notes
    -----
    On one CPU and numeric path (:mod:`classgap.train.precision`: fp32 or bf16, channels-last
    or not, recorded in ``provenance.json``), the same config and seed give bitwise identical
    logits: the split, the model initialisation, every epoch's permutation and augmentation
    are seeded from ``train.seed`` (and ``data.split_seed``), and deterministic algorithms are
    on. Another CPU or path gives numbers that differ in their last digits.
    """
    t_start, started = time.perf_counter(), datetime.now(UTC)
    config = config if config is not None else Config()
    tc, oc = config.train, config.optim
    device = resolve_device(tc.device)

    with numerics(tc.seed, tc.threads, device):
        # -- data: the whole split on the device as uint8 ----------------------------------
        splits = make_splits(config)
        train_set, val_set, test_set = splits.train, splits.val, splits.test
        if len(train_set) < oc.batch_size:
            raise ConfigError(f"'optim.batch_size' must be <= the training set size "
                              f"({len(train_set)}); got {oc.batch_size}")
        from classgap.models import create_model

        c, h, w = train_set.image_shape

        def build_model() -> torch.nn.Module:
            return create_model(config.model.name, num_classes=train_set.n_classes,
                                in_channels=c, image_size=(h, w), head=config.model.head,
                                dropout=config.model.dropout).to(device)

        # fp32 or bf16, channels-last or not: measured once per machine (and run shape)
        path = choose_path(tc.precision, tc.channels_last, device, build_model=build_model,
                           model=config.model.name, input_shape=(c, h, w),
                           n_classes=train_set.n_classes, batch_size=oc.batch_size,
                           threads=torch.get_num_threads())
        bf16, channels_last = path.bf16, path.channels_last
        mean, std = channel_stats(train_set.images)  # training statistics normalise all splits
        common: dict[str, Any] = {"mean": mean, "std": std, "channels_last": channels_last,
                                  "device": device}
        train_loader = DeviceLoader(train_set, batch_size=oc.batch_size, shuffle=True,
                                    drop_last=True, seed=tc.seed,
                                    augment=build_augment(config, train_set.n_classes), **common)
        eval_loaders = {name: DeviceLoader(ds, batch_size=EVAL_BATCH, **common)
                        for name, ds in (("val", val_set), ("test", test_set)) if ds is not None}
        if config.loss.reweight is not None:  # the per-epoch statistics: no augmentation
            eval_loaders["train"] = DeviceLoader(train_set, batch_size=EVAL_BATCH, **common)

        # -- model, optimizer, schedule -------------------------------------------------------
        torch.manual_seed(tc.seed)  # model init depends on the seed only, not on data loading
        model = build_model()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        criterion = build_criterion(config, train_set.class_counts(), device=device)
        scale = criterion.logit_scale  # saved logits are the ones the loss saw
        # Only now, with names, data and loss checked, does a bad --out fail or a folder appear.
        out = rundir.prepare_run_dir(out_dir, config.to_dict(), overwrite=overwrite) \
            if out_dir is not None else None
        optimizer = build_optimizer(model, oc)
        rho_schedule = build_rho_schedule(config)  # None unless optim.name == "sam"
        steps = len(train_loader)
        bn_fresh = tc.bn_recompute is True or (tc.bn_recompute == "auto"
                                               and tc.epochs * steps < BN_RECOMPUTE_STEPS)
        scheduler = build_scheduler(optimizer, config.schedule, epochs=tc.epochs,
                                    steps_per_epoch=steps)

        # -- epochs ---------------------------------------------------------------------------
        show = (tc.progress if progress is None else progress) and sys.stderr.isatty()
        bar = tqdm(total=tc.epochs * steps, disable=not show, unit="step", leave=False,
                   desc=f"{config.data.dataset}/{config.model.name} seed {tc.seed}")
        history: list[dict[str, Any]] = []
        weight_rows: list[list[float]] = []  # class weights used in each epoch (reweighting)
        train_time = 0.0
        val: EvalResult | None = None
        for epoch in range(tc.epochs):
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]  # lr of the epoch's first step
            model.train()
            criterion.on_epoch_start(epoch)  # DRW switches its class weights on here
            # Sums stay on the device: a .item() per step would sync and stall the pipeline.
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            if rho_schedule is not None:
                optimizer.rho = rho_schedule.rho_at(epoch)  # type: ignore[attr-defined]
            for x, targets, labels in train_loader.epoch(epoch):
                step = functools.partial(_forward_backward, model, criterion, x, targets,
                                         device=device, bf16=bf16)
                optimizer.zero_grad(set_to_none=True)
                loss, logits = step()
                if rho_schedule is not None:  # SAM: the same batch and criterion at w + eps
                    optimizer.step(functools.partial(_first, step))
                else:
                    optimizer.step()
                scheduler.step()  # per step: warm-up and cosine resolve within an epoch
                loss_sum += loss.detach()
                correct += (logits.argmax(1) == labels).sum()  # against the unmixed labels
                bar.update()
            epoch_time = time.perf_counter() - t0
            train_time += epoch_time
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum.item() / steps,
                   "train_acc": correct.item() / (steps * oc.batch_size),
                   "val_acc": None, "val_loss": None, "epoch_time": round(epoch_time, 4)}
            last = epoch + 1 == tc.epochs
            evaluating = "val" in eval_loaders and ((epoch + 1) % tc.eval_every == 0 or last)
            if bn_fresh and (evaluating or tc.track_test or last):
                # An epoch index past the run's: batches training never drew in that order.
                recompute_bn(model, train_loader, epoch=tc.epochs + epoch, bf16=bf16)
            if evaluating:
                val = evaluate(model, eval_loaders["val"], bf16=bf16, logit_scale=scale)
                row["val_acc"], row["val_loss"] = val.accuracy, val.loss
                bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{val.accuracy:.4f}")
            if tc.track_test:
                row["test_acc"] = evaluate(model, eval_loaders["test"], bf16=bf16,
                                           logit_scale=scale).accuracy
            if criterion.class_weights is not None:
                weight_rows.append([float(w) for w in criterion.class_weights])
                if not last:  # the next epoch's weights, from this epoch's training statistics
                    seen = evaluate(model, eval_loaders["train"], bf16=bf16, logit_scale=scale)
                    criterion.update_class_weights(seen.logits, seen.labels)
            history.append(row)
        bar.close()
        test = evaluate(model, eval_loaders["test"], bf16=bf16, logit_scale=scale)
        _warn_at_chance(test.accuracy, history[-1]["train_acc"], train_set.n_classes, config)

    images_per_second = tc.epochs * steps * oc.batch_size / max(train_time, 1e-9)
    wall_time = time.perf_counter() - t_start  # training and evaluation, not file writing
    paths: dict[str, Path] = {}
    if out is not None:
        paths = rundir.write_run(
            out, config, splits=splits, history=history, val=val, test=test, model=model,
            device=device, precision="bf16" if bf16 else "fp32", channels_last=channels_last,
            started=started, wall_time=wall_time, train_time=train_time,
            images_per_second=images_per_second, class_weights=weight_rows or None,
            extra_provenance={"numeric_path": path.provenance()})
    return RunResult(config, history, val.accuracy if val else None, test.accuracy, wall_time,
                     images_per_second, val.logits if val else None, test.logits, out, paths)
