"""Class re-weighting: class-balanced (effective-number) weights and deferred re-weighting (DRW).

Class-balanced weights (Cui et al. 2019): ``w_k = (1-β) / (1-β^{n_k})``, normalised so that
``Σ_k w_k = K``. DRW (Cao et al. 2019): weights all 1 until ``start_epoch``, then the
class-balanced weights with β = 0.9999 (epoch 160 of 200 on CIFAR-LT, 60 of 90 on ImageNet-LT).
Any loss module takes the weights through ``loss.set_weight(w)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from classgap._validation import fail
from classgap.errors import ConfigError
from classgap.losses._checks import check_class_counts, check_param
from classgap.losses.base import ClassAwareLoss

__all__ = ["DRW", "class_balanced_weights"]

#: β of the LDAM-DRW reference once re-weighting starts.
DRW_BETA = 0.9999


def class_balanced_weights(class_counts: Any, beta: float = DRW_BETA) -> Tensor:
    """Effective-number class weights, normalised to sum to K.

    Parameters
    ----------
    class_counts : array-like
        (K,) training count of each class, integers > 0.
    beta : float
        In [0, 1). β = 0 gives all ones; β → 1 approaches inverse-frequency weights.

    Returns
    -------
    Tensor
        (K,) float32 weights ``w_k ∝ (1-β)/(1-β^{n_k})`` with ``Σ_k w_k = K``.

    Examples
    --------
    >>> class_balanced_weights([100, 10], beta=0.9)
    tensor([0.7889, 1.2111])
    """
    counts = check_class_counts(class_counts)
    beta = check_param(beta, "beta", 0.0, 1.0)
    # float64: 1 - 0.9999**n loses most digits in float32 for small n
    raw = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts))
    return (raw / raw.sum() * counts.numel()).to(torch.float32)


class DRW:
    """Deferred re-weighting schedule: ones before ``start_epoch``, class-balanced weights after.

    Parameters
    ----------
    class_counts : array-like
        (K,) training count of each class.
    start_epoch : int
        First (0-based) epoch with re-weighting, e.g. 160 of 200.
    beta : float
        β of the class-balanced weights once re-weighting starts (0.9999 in the reference).

    Examples
    --------
    >>> drw = DRW([100, 10], start_epoch=2, beta=0.9)
    >>> drw.weights_at(1), drw.weights_at(2)
    (tensor([1., 1.]), tensor([0.7889, 1.2111]))

    In a training loop, before each epoch: ``drw.apply(loss, epoch)``, which calls
    ``loss.set_weight(drw.weights_at(epoch))``.
    """

    def __init__(self, class_counts: Any, start_epoch: int, beta: float = DRW_BETA) -> None:
        self.class_counts = check_class_counts(class_counts)
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise fail("start_epoch", "be an integer >= 0", start_epoch, error=ConfigError)
        self.start_epoch = start_epoch
        self.beta = check_param(beta, "beta", 0.0, 1.0)
        self._balanced = class_balanced_weights(self.class_counts, self.beta)

    def is_active(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) uses the class-balanced weights."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise fail("epoch", "be an integer >= 0", epoch)
        return epoch >= self.start_epoch

    def weights_at(self, epoch: int) -> Tensor:
        """(K,) float32 class weights for ``epoch``: all ones, then class-balanced."""
        if self.is_active(epoch):
            return self._balanced.clone()
        return torch.ones(self.class_counts.numel(), dtype=torch.float32)

    def apply(self, loss: ClassAwareLoss, epoch: int) -> None:
        """Set ``loss``'s class weights for ``epoch``."""
        loss.set_weight(self.weights_at(epoch))

    def __repr__(self) -> str:
        return (f"DRW(num_classes={self.class_counts.numel()}, start_epoch={self.start_epoch}, "
                f"beta={self.beta})")
