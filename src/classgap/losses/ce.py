"""Cross-entropy variants: plain / label-smoothed / weighted CE, focal loss, class-balanced CE.

Weighted losses are the weighted mean ``Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}`` (PyTorch
``cross_entropy(weight=w)`` semantics), focal loss included.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from classgap.losses._checks import check_class_counts, check_num_classes, check_param
from classgap.losses.base import ClassAwareLoss, weighted_mean
from classgap.losses.reweight import DRW_BETA, class_balanced_weights

__all__ = ["ClassBalancedLoss", "CrossEntropyLoss", "FocalLoss", "cross_entropy", "focal_loss"]


def cross_entropy(logits: Tensor, targets: Tensor, *, weight: Tensor | None = None,
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy with optional class weights and label smoothing.

    Parameters
    ----------
    logits : Tensor
        (N, K).
    targets : Tensor
        (N,) class indices.
    weight : Tensor, optional
        (K,) class weights (weighted mean over the batch).
    label_smoothing : float
        ε in [0, 1): the target is ``(1-ε)·onehot + ε/K``.

    Returns
    -------
    Tensor
        Scalar; exactly ``torch.nn.functional.cross_entropy`` with the same arguments.
    """
    return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)


def focal_loss(logits: Tensor, targets: Tensor, *, gamma: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Focal loss ``(1 - p_y)^γ · CE`` (Lin et al. 2017), weighted mean over the batch.

    Parameters
    ----------
    logits : Tensor
        (N, K).
    targets : Tensor
        (N,) class indices.
    gamma : float
        γ >= 0; γ = 0 is cross-entropy. The LDAM-DRW long-tail recipes use γ = 1.
    weight : Tensor, optional
        (K,) class weights.

    Notes
    -----
    ``p_y`` is the softmax probability of the true class. The LDAM-DRW code instead takes
    ``p = exp(-w_y·CE)`` from the *weighted* CE and averages without normalising by the
    weights; the two agree when no weights are given.
    """
    ce = F.cross_entropy(logits, targets, reduction="none")  # (N,)
    # 1 - p_y = -expm1(-CE) keeps its digits when p_y is near 1; the floor keeps the gradient
    # of (1 - p_y)^γ finite for γ < 1 when a sample is fitted exactly (CE = 0).
    one_minus_p = (-torch.expm1(-ce)).clamp_min(1e-12)
    return weighted_mean(one_minus_p.pow(gamma) * ce, targets, weight)


def poly_loss(logits: Tensor, targets: Tensor, *, theta: float = 0.8, gamma: float = 2.0,
              weight: Tensor | None = None) -> Tensor:
    """Polynomially weighted CE ``(θ + (1 - p_y)^γ) · CE``, weighted mean over the batch.

    The "PW" loss beside focal in Jiang, Ban and Weng (TMLR 2025), defaults as their code:
    ``-log p · (θ + (1 - p)^γ)`` with θ = 0.8, γ = 2. θ = 0 is focal; a large γ tends to
    θ · CE.

    Examples
    --------
    >>> import math, torch
    >>> z, y = torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0])  # p_y = 3/4
    >>> round(float(poly_loss(z, y)), 6) == round((0.8 + 0.25 ** 2) * math.log(4 / 3), 6)
    True
    """
    ce = F.cross_entropy(logits, targets, reduction="none")  # (N,)
    one_minus_p = (-torch.expm1(-ce)).clamp_min(1e-12)  # as focal_loss
    return weighted_mean((theta + one_minus_p.pow(gamma)) * ce, targets, weight)


class CrossEntropyLoss(ClassAwareLoss):
    """Cross-entropy, optionally weighted and label-smoothed (registry name ``"ce"``).

    Examples
    --------
    >>> import torch
    >>> loss = CrossEntropyLoss(label_smoothing=0.1)
    >>> float(loss(torch.zeros(2, 4), torch.tensor([0, 3])))  # log 4
    1.3862943649291992
    """

    name = "ce"

    def __init__(self, num_classes: int | None = None, *, weight: Any = None,
                 label_smoothing: float = 0.0) -> None:
        if num_classes is not None:
            num_classes = check_num_classes(num_classes)
        super().__init__(num_classes, weight)
        self.label_smoothing = check_param(label_smoothing, "label_smoothing", 0.0, 1.0)

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return cross_entropy(logits, targets, weight=weight, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


class FocalLoss(ClassAwareLoss):
    """Focal loss ``(1 - p_y)^γ · CE`` (registry name ``"focal"``); see :func:`focal_loss`."""

    name = "focal"

    def __init__(self, num_classes: int | None = None, *, gamma: float = 1.0,
                 weight: Any = None) -> None:
        if num_classes is not None:
            num_classes = check_num_classes(num_classes)
        super().__init__(num_classes, weight)
        self.gamma = check_param(gamma, "gamma", 0.0)

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return focal_loss(logits, targets, gamma=self.gamma, weight=weight)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


class PolyLoss(ClassAwareLoss):
    """Polynomially weighted CE (registry name ``"poly"``); see :func:`poly_loss`."""

    name = "poly"

    def __init__(self, num_classes: int | None = None, *, theta: float = 0.8,
                 gamma: float = 2.0, weight: Any = None) -> None:
        if num_classes is not None:
            num_classes = check_num_classes(num_classes)
        super().__init__(num_classes, weight)
        self.theta = check_param(theta, "theta", 0.0)
        self.gamma = check_param(gamma, "gamma", 0.0)

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return poly_loss(logits, targets, theta=self.theta, gamma=self.gamma, weight=weight)

    def extra_repr(self) -> str:
        return f"theta={self.theta}, gamma={self.gamma}"


class ClassBalancedLoss(ClassAwareLoss):
    """Cross-entropy weighted by class-balanced weights (registry name ``"class_balanced"``).

    The weights are :func:`~classgap.losses.class_balanced_weights` of ``class_counts`` and
    live in the ``weight`` buffer, so ``set_weight`` can still replace them.

    Parameters
    ----------
    class_counts : array-like
        (K,) training count of each class.
    beta : float
        β in [0, 1) of the effective number; 0.9999 as in LDAM-DRW.
    """

    name = "class_balanced"
    needs_counts = True

    def __init__(self, class_counts: Any, *, beta: float = DRW_BETA) -> None:
        counts = check_class_counts(class_counts)
        self.beta = check_param(beta, "beta", 0.0, 1.0)
        super().__init__(counts.numel(), class_balanced_weights(counts, self.beta))

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return cross_entropy(logits, targets, weight=weight)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, beta={self.beta}"
