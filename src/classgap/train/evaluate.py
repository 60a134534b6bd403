"""Evaluation: logits of a whole split, and the loss on soft or hard targets.

Everything downstream (audit, sweeps, reports) works from the saved per-sample logits, so the
evaluation returns them all, in dataset order, as float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from classgap.data.loader import DeviceLoader
from classgap.errors import InputError

__all__ = ["EvalResult", "autocast", "evaluate", "loss_fn"]


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``bf16``, else a no-op context."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, *,
            label_smoothing: float | Sequence[float] = 0.0) -> torch.Tensor:
    """Mean cross-entropy of logits (N, K) against labels (N,) or probabilities (N, K).

    ``F.cross_entropy`` applies ``label_smoothing`` to probability targets too (mixes them
    with the uniform distribution: ``(1 - eps) * p + eps / K``), so mixup/cutmix targets and
    smoothing compose without extra code. A sequence of K values is **class-conditional
    label smoothing**: a sample of class y is smoothed with ``eps_y`` (a probability target
    p with ``sum_k p_k eps_k``), so a regularizer that costs one class can be switched off
    for it alone; K equal values give exactly the scalar loss. The loss is computed in
    float32 even under bf16 autocast: the log-softmax of 10 logits in bf16 loses about 2
    decimal digits.
    """
    if not isinstance(label_smoothing, Sequence):
        return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
    logp = F.log_softmax(logits.float(), dim=1)  # (N, K)
    k = logp.shape[1]
    if len(label_smoothing) != k:
        raise InputError(f"'label_smoothing' must hold one value per class ({k}); got "
                         f"{len(label_smoothing)} values")
    eps_k = torch.tensor(label_smoothing, dtype=logp.dtype, device=logp.device)  # (K,)
    target = targets.to(logp.dtype) if targets.is_floating_point() else \
        F.one_hot(targets, k).to(logp.dtype)  # (N, K)
    eps = (target @ eps_k)[:, None]  # (N, 1): each sample's epsilon
    smoothed = (1.0 - eps) * target + eps / k
    return -(smoothed * logp).sum(dim=1).mean()


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Logits (N, K) float32 and labels (N,) int64 in dataset order; mean loss; accuracy."""

    logits: np.ndarray
    labels: np.ndarray
    loss: float
    accuracy: float


@torch.no_grad()
def evaluate(model: nn.Module, loader: DeviceLoader, *, bf16: bool = False,
             label_smoothing: float | Sequence[float] = 0.0,
             logit_scale: float = 1.0) -> EvalResult:
    """Run ``model`` in eval mode over every sample of ``loader`` (in order, no augmentation).

    ``logit_scale`` multiplies the model's outputs into the logits its loss saw (LDAM on a
    cosine head trains on ``s · cos``): the saved logits are then on the scale post-hoc
    adjustment and calibration expect, whatever the head. The model's train/eval mode is
    restored afterwards.
    """
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        with autocast(loader.device, bf16):  # one region: the bf16 weights are cast once
            for x, _, y in loader.epoch(0):
                logits.append(model(x).float() * logit_scale)
                labels.append(y)
    finally:
        model.train(was_training)
    all_logits, all_labels = torch.cat(logits), torch.cat(labels)
    loss = loss_fn(all_logits, all_labels, label_smoothing=label_smoothing).item()
    acc = (all_logits.argmax(1) == all_labels).float().mean().item()
    return EvalResult(all_logits.cpu().numpy().astype(np.float32),
                      all_labels.cpu().numpy().astype(np.int64), float(loss), float(acc))
