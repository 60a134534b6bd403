"""Logit-margin losses from class counts: LDAM, VS, logit adjustment, balanced softmax.

With ``n_k`` the training count of class k and ``π_k = n_k / Σ_j n_j`` the prior:

- LDAM (Cao et al. 2019): ``CE_w(s · z̃, y)``, ``z̃_y = z_y - m_y``, ``m_k ∝ n_k^(-1/4)``
  scaled so ``max_k m_k = max_m``; s = 30. Meant for a cosine classifier
  (:class:`~classgap.models.CosineHead` with its default ``scale=1``).
- VS (Kini et al. 2021): ``CE_w(Δ ⊙ z + ι, y)``, ``Δ_k = (n_k / n_max)^γ``, ``ι_k = τ·log π_k``.
- Logit adjustment (Menon et al. 2021): ``CE_w(z + τ·log π, y)``; predict with ``argmax z``.
- Balanced softmax (Ren et al. 2020): ``CE_w(z + log n, y)``, the same as logit adjustment at
  τ = 1 (``log n`` and ``log π`` differ by a constant, which softmax ignores).
- :func:`posthoc_adjust`: ``z - τ·log π``, the prediction-time correction of a plain model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from classgap._validation import fail
from classgap.losses._checks import check_class_counts, check_param
from classgap.losses.base import ClassAwareLoss

__all__ = [
    "BalancedSoftmaxLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "VSLoss",
    "balanced_softmax_loss",
    "ldam_loss",
    "ldam_margins",
    "logit_adjusted_loss",
    "posthoc_adjust",
    "vs_loss",
]


def _counts_like(class_counts: Any, logits: Tensor) -> Tensor:
    return torch.as_tensor(class_counts, dtype=logits.dtype, device=logits.device)


def _log_prior(counts: Tensor) -> Tensor:
    return counts.log() - counts.sum().log()  # (K,) log π


# ------------------------------------------------------------------------------ functional
def ldam_margins(class_counts: Any, max_m: float = 0.5) -> Tensor:
    """LDAM margins ``m_k = C · n_k^(-1/4)`` with C such that ``max_k m_k = max_m``.

    Parameters
    ----------
    class_counts : array-like
        (K,) training counts, integers > 0.
    max_m : float
        Largest margin (that of the rarest class), > 0: 0.5 on CIFAR, 0.3 on ImageNet-LT.

    Returns
    -------
    Tensor
        (K,) float32.

    Examples
    --------
    >>> ldam_margins([16, 1], max_m=0.5)
    tensor([0.2500, 0.5000])
    """
    counts = check_class_counts(class_counts)
    max_m = check_param(max_m, "max_m", 0.0, inclusive=(True, False))
    m = counts.pow(-0.25)
    return (m * (max_m / m.max())).to(torch.float32)


def ldam_loss(logits: Tensor, targets: Tensor, margins: Tensor, *, s: float = 30.0,
              weight: Tensor | None = None) -> Tensor:
    """LDAM loss ``CE_w(s · (z - m_y e_y), y)``: the true logit lowered by its class's margin.

    Parameters
    ----------
    logits : Tensor
        (N, K), cosines in [-1, 1] for the reference recipe.
    targets : Tensor
        (N,) class indices.
    margins : Tensor
        (K,) per-class margins (:func:`ldam_margins`).
    s : float
        Scale applied to all adjusted logits.
    weight : Tensor, optional
        (K,) class weights (DRW).
    """
    m_y = margins.to(logits.dtype)[targets]  # (N,)
    adjusted = logits - F.one_hot(targets, logits.shape[1]).to(logits.dtype) * m_y[:, None]
    return F.cross_entropy(s * adjusted, targets, weight=weight)


def vs_loss(logits: Tensor, targets: Tensor, class_counts: Any, *, gamma: float = 0.3,
            tau: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """Vector-scaling loss ``CE_w(Δ ⊙ z + ι, y)``, ``Δ_k = (n_k/n_max)^γ``, ``ι_k = τ log π_k``.

    Parameters
    ----------
    logits : Tensor
        (N, K).
    targets : Tensor
        (N,) class indices.
    class_counts : array-like
        (K,) training counts.
    gamma, tau : float
        Multiplicative (γ = 0.3) and additive (τ = 1) strengths; both 0 give cross-entropy.
    weight : Tensor, optional
        (K,) class weights.
    """
    counts = _counts_like(class_counts, logits)
    delta = (counts / counts.max()).pow(gamma)  # (K,), rare classes get smaller scales
    iota = tau * _log_prior(counts)  # (K,)
    return F.cross_entropy(logits * delta + iota, targets, weight=weight)


def logit_adjusted_loss(logits: Tensor, targets: Tensor, class_counts: Any, *,
                        tau: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """Logit-adjusted cross-entropy ``CE_w(z + τ·log π, y)`` (Menon et al. 2021).

    Parameters
    ----------
    logits : Tensor
        (N, K).
    targets : Tensor
        (N,) class indices.
    class_counts : array-like
        (K,) training counts; π is their normalisation.
    tau : float
        τ >= 0; 0 gives cross-entropy.
    weight : Tensor, optional
        (K,) class weights.
    """
    counts = _counts_like(class_counts, logits)
    return F.cross_entropy(logits + tau * _log_prior(counts), targets, weight=weight)


def balanced_softmax_loss(logits: Tensor, targets: Tensor, class_counts: Any, *,
                          weight: Tensor | None = None) -> Tensor:
    """Balanced softmax ``CE_w(z + log n, y)`` (Ren et al. 2020).

    Parameters
    ----------
    logits : Tensor
        (N, K).
    targets : Tensor
        (N,) class indices.
    class_counts : array-like
        (K,) training counts n.
    weight : Tensor, optional
        (K,) class weights.
    """
    counts = _counts_like(class_counts, logits)
    return F.cross_entropy(logits + counts.log(), targets, weight=weight)


def posthoc_adjust(logits: Tensor, class_counts: Any, tau: float = 1.0) -> Tensor:
    """Post-hoc logit adjustment ``z - τ·log π`` of a model trained with plain CE.

    Predict with ``posthoc_adjust(z, counts).argmax(1)``: rare classes gain ``τ·log(1/π_k)``.

    Parameters
    ----------
    logits : Tensor
        (..., K).
    class_counts : array-like
        (K,) training counts.
    tau : float
        τ >= 0.

    Returns
    -------
    Tensor
        Adjusted logits, the shape and dtype of ``logits``.

    Examples
    --------
    >>> z = torch.tensor([[2.0, 1.0]])
    >>> posthoc_adjust(z, [90, 10]).argmax(1)  # log(0.9) - log(0.1) ≈ 2.2 > 1
    tensor([1])
    """
    if not isinstance(logits, Tensor) or logits.ndim < 1 or not logits.is_floating_point():
        desc = f"shape {tuple(logits.shape)}" if isinstance(logits, Tensor) else logits
        raise fail("logits", "be a float tensor of shape (..., K)", desc)
    counts = check_class_counts(class_counts, logits.shape[-1])
    tau = check_param(tau, "tau", 0.0)
    return logits - tau * _log_prior(counts).to(logits.device, logits.dtype)


# ------------------------------------------------------------------------------ modules
class _CountsLoss(ClassAwareLoss):
    """A loss configured by the class counts, held as the float32 buffer ``class_counts``."""

    needs_counts = True
    class_counts: Tensor

    def __init__(self, class_counts: Any, weight: Any = None) -> None:
        counts = check_class_counts(class_counts)
        super().__init__(counts.numel(), weight)
        self.register_buffer("class_counts", counts.to(torch.float32))


class LDAMLoss(_CountsLoss):
    """LDAM loss (registry name ``"ldam"``); the margins are the buffer ``margins`` (K,).

    Parameters
    ----------
    class_counts : array-like
        (K,) training counts.
    max_m : float
        Largest margin, > 0 (0.5 on CIFAR).
    s : float
        Logit scale, > 0 (30). Pair with a cosine head of ``scale=1``.
    weight : array-like, optional
        (K,) class weights; DRW sets them at run time through ``set_weight``.
    """

    name = "ldam"
    margins: Tensor

    def __init__(self, class_counts: Any, *, max_m: float = 0.5, s: float = 30.0,
                 weight: Any = None) -> None:
        super().__init__(class_counts, weight)
        self.max_m = check_param(max_m, "max_m", 0.0, inclusive=(True, False))
        self.s = check_param(s, "s", 0.0, inclusive=(False, False))
        self.register_buffer("margins", ldam_margins(self.class_counts, self.max_m))

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return ldam_loss(logits, targets, self.margins, s=self.s, weight=weight)

    @property
    def logit_scale(self) -> float:
        """The loss sees ``s · logits``: the scale of the logits a run saves."""
        return float(self.s)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, max_m={self.max_m}, s={self.s}"


class VSLoss(_CountsLoss):
    """Vector-scaling loss (registry name ``"vs"``); see :func:`vs_loss`."""

    name = "vs"

    def __init__(self, class_counts: Any, *, gamma: float = 0.3, tau: float = 1.0,
                 weight: Any = None) -> None:
        super().__init__(class_counts, weight)
        self.gamma = check_param(gamma, "gamma", 0.0)
        self.tau = check_param(tau, "tau", 0.0)

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return vs_loss(logits, targets, self.class_counts, gamma=self.gamma, tau=self.tau,
                       weight=weight)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, gamma={self.gamma}, tau={self.tau}"


class LogitAdjustedLoss(_CountsLoss):
    """Logit-adjusted CE (registry name ``"logit_adjusted"``); see :func:`logit_adjusted_loss`."""

    name = "logit_adjusted"

    def __init__(self, class_counts: Any, *, tau: float = 1.0, weight: Any = None) -> None:
        super().__init__(class_counts, weight)
        self.tau = check_param(tau, "tau", 0.0)

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return logit_adjusted_loss(logits, targets, self.class_counts, tau=self.tau,
                                   weight=weight)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, tau={self.tau}"


class BalancedSoftmaxLoss(_CountsLoss):
    """Balanced softmax (registry name ``"balanced_softmax"``); see :func:`balanced_softmax_loss`.
    """

    name = "balanced_softmax"

    def __init__(self, class_counts: Any, *, weight: Any = None) -> None:
        super().__init__(class_counts, weight)

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        return balanced_softmax_loss(logits, targets, self.class_counts, weight=weight)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"
