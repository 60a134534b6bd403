"""Optimizers with weight-decay parameter groups, and per-step learning-rate schedules.

Schedules are pure functions ``lr_factor(step, ...) -> float`` (the multiplier of the peak
``optim.lr`` at optimizer step ``step``), wrapped in a ``LambdaLR`` that the trainer steps once
per batch; the pure form is what the tests check against torch's own schedulers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from classgap.config import DEFAULT_WARMUP_EPOCHS, Config, OptimConfig, ScheduleConfig

__all__ = ["build_optimizer", "build_rho_schedule", "build_scheduler", "lr_factor", "param_groups"]

ONECYCLE_PCT = 0.3  # rise share of one-cycle when warmup_epochs = 0 (torch's pct_start)
ONECYCLE_DIV = 25.0  # start lr = peak / 25 (torch's div_factor)
ONECYCLE_FINAL_DIV = 1e4  # final lr = start / 1e4 (torch's final_div_factor)


def param_groups(model: nn.Module, weight_decay: float, *,
                 exempt_norm_bias: bool = True) -> list[dict]:
    """Split parameters into a decayed group and (optionally) a ``weight_decay=0`` group.

    The exempt group holds every parameter with ``ndim <= 1``: BatchNorm/LayerNorm scales and
    shifts and all biases. Decaying them only shrinks the scale of normalised features and
    fights the shift, so common recipes leave them out (Goyal et al. 2017; timm).

    Returns
    -------
    list of dict
        ``[{"params": [...], "weight_decay": weight_decay, "name": "decay"},
        {"params": [...], "weight_decay": 0.0, "name": "no_decay"}]``; the second is absent
        when ``exempt_norm_bias`` is False or no parameter qualifies.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not exempt_norm_bias:
        return [{"params": params, "weight_decay": weight_decay, "name": "decay"}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), SAM around that SGD, or AdamW (``betas=(momentum, 0.999)``),
    over :func:`param_groups`.

    AdamW's decay is decoupled (``p -= lr * wd * p``), SGD's is L2 added to the gradient, as in
    the torch implementations; both use ``weight_decay`` per group.
    """
    groups = param_groups(model, cfg.weight_decay, exempt_norm_bias=cfg.wd_exempt_norm_bias)
    # Nesterov needs momentum > 0 in torch; with momentum 0 it is plain SGD anyway.
    sgd: dict[str, Any] = {"lr": cfg.lr, "momentum": cfg.momentum,
                           "nesterov": cfg.nesterov and cfg.momentum > 0}
    return OPTIMIZER_BUILDERS[cfg.name](groups, cfg, sgd)


def _sgd(groups: Any, cfg: Any, sgd: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, **sgd)


def _sam(groups: Any, cfg: Any, sgd: dict[str, Any]) -> torch.optim.Optimizer:
    from classgap.optim import SAM  # around the same SGD: weight decay inside SGD

    return SAM(groups, torch.optim.SGD, rho=cfg.rho, adaptive=cfg.adaptive, **sgd)


def _adamw(groups: Any, cfg: Any, sgd: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


#: One builder per name of :data:`classgap.config.OPTIMIZERS` (a test checks they match).
OPTIMIZER_BUILDERS = {"sgd": _sgd, "sam": _sam, "adamw": _adamw}


def build_rho_schedule(config: Config) -> Any:
    """SAM's per-epoch ρ schedule (:func:`classgap.optim.make_rho_schedule`), or None."""
    o = config.optim
    if o.name != "sam":
        return None
    from classgap.optim import make_rho_schedule

    return make_rho_schedule(o.rho_schedule, o.rho, milestones=o.rho_milestones,
                             values=o.rho_values, rho_end=o.rho_end, epochs=config.train.epochs,
                             drw_epoch=config.loss.drw_epoch if o.drw_rho is not None else None,
                             drw_rho=o.drw_rho)


def _cos(start: float, end: float, frac: float) -> float:
    """Cosine interpolation from ``start`` (frac 0) to ``end`` (frac 1)."""
    return end + (start - end) * (1.0 + math.cos(math.pi * min(max(frac, 0.0), 1.0))) / 2.0


def lr_factor(step: int, *, name: str, total_steps: int, steps_per_epoch: int,
              warmup_epochs: float | None = None, milestones: Sequence[float] = (),
              gamma: float = 0.1) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    Parameters
    ----------
    step : int
        In ``[0, total_steps)``.
    name : {"cosine", "step", "onecycle", "constant"}
        ``cosine``: linear warm-up ``(step + 1) / W`` over ``W`` warm-up steps, then
        ``(1 + cos(pi * (step - W) / (T - W))) / 2``, which reaches ~0 at the last step (and is
        torch's ``CosineAnnealingLR(T_max=T)`` when ``W = 0``). ``step``: warm-up, then
        ``gamma ** (number of milestones <= current epoch)``, the epoch being
        ``step / steps_per_epoch`` (torch's ``MultiStepLR`` stepped per epoch). ``onecycle``:
        torch's ``OneCycleLR`` (cosine rise from peak/25 to the peak over the warm-up, default
        30% of training, then cosine fall to peak/25/1e4). ``constant``: warm-up, then 1.
    total_steps, steps_per_epoch : int
    warmup_epochs : float, optional
        None: :data:`~classgap.config.DEFAULT_WARMUP_EPOCHS` (half an epoch; one-cycle: 30% of
        training), so the first steps never take the peak rate (bench/stability.py).
    milestones : sequence of float
        Epochs (``step`` schedule).
    gamma : float

    Examples
    --------
    >>> [round(lr_factor(s, name="cosine", total_steps=4, steps_per_epoch=2, warmup_epochs=0), 3)
    ...  for s in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    >>> [round(lr_factor(s, name="cosine", total_steps=8, steps_per_epoch=4), 2) for s in range(8)]
    [0.5, 1.0, 1.0, 0.93, 0.75, 0.5, 0.25, 0.07]
    """
    if warmup_epochs is None:
        warmup_epochs = 0.0 if name == "onecycle" else DEFAULT_WARMUP_EPOCHS
    warmup = round(warmup_epochs * steps_per_epoch)
    if name == "onecycle":
        rise = float(warmup if warmup > 0 else ONECYCLE_PCT * total_steps) - 1.0
        start, end = 1.0 / ONECYCLE_DIV, 1.0 / ONECYCLE_DIV / ONECYCLE_FINAL_DIV
        if step <= rise:
            return _cos(start, 1.0, step / rise if rise > 0 else 1.0)
        return _cos(1.0, end, (step - rise) / max(total_steps - 1 - rise, 1.0))
    if step < warmup:
        return (step + 1) / warmup
    if name == "cosine":
        return _cos(1.0, 0.0, (step - warmup) / max(total_steps - warmup, 1))
    if name == "step":
        epoch = step / steps_per_epoch
        return float(gamma ** sum(epoch >= m for m in milestones))
    if name == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {name!r}")  # config validation makes this unreachable


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, *, epochs: int,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over :func:`lr_factor`, to be stepped after every optimizer step."""
    total = epochs * steps_per_epoch

    def factor(step: int) -> float:
        return lr_factor(step, name=cfg.name, total_steps=total, steps_per_epoch=steps_per_epoch,
                         warmup_epochs=cfg.warmup_epochs, milestones=cfg.milestones,
                         gamma=cfg.gamma)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
