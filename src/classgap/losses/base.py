"""The common shape of every loss module: ``loss(logits, targets, features=None)``.

A loss module only holds configuration (class counts, margins, EMA state) and calls a pure
function from the functional core. What the trainer relies on:

- ``forward(logits, targets, features=None, *, validate=True)`` returns a scalar; ``features``
  is ignored unless ``needs_features`` is true.
- ``needs_features`` (class attribute): the loss needs the penultimate features ``(N, D)``.
- ``weight`` (buffer, ``(K,)`` float32 or None) and ``set_weight(w)``: per-class weights of the
  weighted-mean cross-entropy, changeable at run time (deferred re-weighting,
  :class:`~classgap.losses.DRW`). ``None`` means all ones.
- ``on_epoch_start(epoch)``: a hook called before each epoch (MR² may reset its statistics).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from classgap._validation import fail
from classgap.losses._checks import check_batch, check_features, check_weight

__all__ = ["ClassAwareLoss", "weighted_mean"]


def weighted_mean(per_sample: Tensor, targets: Tensor, weight: Tensor | None) -> Tensor:
    """``Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}`` (PyTorch ``cross_entropy(weight=w)`` semantics).

    Parameters
    ----------
    per_sample : Tensor
        (N,) losses ℓ_i.
    targets : Tensor
        (N,) class indices.
    weight : Tensor or None
        (K,) class weights; None gives the plain mean.
    """
    if weight is None:
        return per_sample.mean()
    w = weight[targets]  # (N,)
    return (w * per_sample).sum() / w.sum()


class ClassAwareLoss(nn.Module):
    """Base class of the loss modules (see the module docstring for the contract).

    Parameters
    ----------
    num_classes : int or None
        K, when known at construction; logits must then have K columns.
    weight : array-like or None
        (K,) class weights; None for all ones.
    """

    needs_features: ClassVar[bool] = False
    needs_counts: ClassVar[bool] = False
    #: Registry name, for messages.
    name: ClassVar[str] = "loss"
    weight: Tensor | None

    def __init__(self, num_classes: int | None = None, weight: Any = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("weight", None)
        self.set_weight(weight)

    def set_weight(self, weight: Any) -> None:
        """Replace the class weights: ``(K,)`` finite, >= 0, not all zero; None for all ones.

        The buffer keeps its device (the device of the loss once moved with ``.to``).
        """
        if weight is None:
            self.weight = None
            return
        w = check_weight(weight, self.num_classes)
        device = self.weight.device if self.weight is not None else _buffer_device(self)
        self.weight = w.to(device)

    def forward(self, logits: Tensor, targets: Tensor, features: Tensor | None = None, *,
                validate: bool = True) -> Tensor:
        """Scalar loss of a batch.

        Parameters
        ----------
        logits : Tensor
            (N, K) float. Half-precision logits are computed on in float32.
        targets : Tensor
            (N,) integer class indices in [0, K).
        features : Tensor, optional
            (N, D) penultimate features; required when ``needs_features``, ignored otherwise.
        validate : bool
            Check shapes, dtypes and the target range. The range check syncs the device once;
            hot loops may pass ``validate=False`` (shapes are still checked: they are free).
        """
        check_batch(logits, targets, self.num_classes, values=validate)
        if self.weight is not None and self.weight.numel() != logits.shape[1]:
            raise fail("weight", f"have one entry per logit column ({logits.shape[1]})",
                       f"{self.weight.numel()} entries")
        if self.needs_features:
            check_features(features, logits.shape[0], self.name)
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        weight = None if self.weight is None else self.weight.to(logits.device, logits.dtype)
        return self.compute(logits, targets, weight, features)

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        """The loss on checked inputs; subclasses call their functional core here."""
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:
        """Hook called by the trainer before each epoch; a no-op unless a loss overrides it."""


def _buffer_device(module: nn.Module) -> torch.device:
    for b in module.buffers():
        return b.device
    return torch.device("cpu")
