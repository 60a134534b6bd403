"""Mixing augmentations: mixup and cutmix, on images and their target distributions.

Targets are (N, K) probability rows (one-hot for hard labels). Each sample is paired with a
random permutation of the batch and mixed with weight lambda ~ Beta(alpha, alpha), drawn per
sample; alpha = 0 is the identity (the inputs themselves are returned).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from classgap._validation import fail
from classgap.augment.ops import _check_images

__all__ = ["cutmix", "mixup"]


def _check_targets(x: Tensor, targets: Tensor) -> None:
    if (not isinstance(targets, Tensor) or targets.ndim != 2
            or targets.shape[0] != x.shape[0] or not targets.is_floating_point()):
        desc = (f"shape {tuple(targets.shape)} dtype {targets.dtype}"
                if isinstance(targets, Tensor) else type(targets).__name__)
        raise fail("targets", f"be a floating tensor of shape ({x.shape[0]}, K)", desc)


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, Tensor) or isinstance(alpha, bool) or not (
            isinstance(alpha, int | float) and math.isfinite(alpha) and alpha >= 0):
        raise fail("alpha", "be one finite number >= 0 (per-sample alpha is not supported)",
                   alpha if not isinstance(alpha, Tensor) else f"a tensor {alpha.shape}")
    return float(alpha)


def _mix_params(n: int, alpha: float, generator: torch.Generator,
                device: torch.device) -> tuple[Tensor, Tensor]:
    """λ ~ Beta(α, α) per sample, (N,) float32, and a partner permutation, (N,) int64.

    Beta is drawn as the first coordinate of a Dirichlet(α, α) with ``torch._sample_dirichlet``
    (the kernel behind ``torch.distributions.Beta``), which, unlike the public distribution
    API, accepts a generator, so the draw is seeded, stays on the device and needs no sync.
    Its gammas are floored at the smallest normal float, so tiny α gives λ in {0, 1/2, 1},
    never NaN.
    """
    conc = torch.full((n, 2), alpha, device=device)
    lam = torch._sample_dirichlet(conc, generator=generator)[:, 0]
    perm = torch.randperm(n, generator=generator, device=device)
    return lam, perm


def _mix(x: Tensor, targets: Tensor, lam: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
    """``λ x + (1 - λ) x[perm]`` and the same for the targets; lam (N,), perm (N,)."""
    lx = lam.to(x.dtype).view(-1, 1, 1, 1)
    lt = lam.to(targets.dtype)[:, None]
    return lx * x + (1 - lx) * x[perm], lt * targets + (1 - lt) * targets[perm]


def mixup(x: Tensor, targets: Tensor, alpha: float, *,
          generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mixup (Zhang et al. 2018) with a per-sample λ ~ Beta(α, α).

    Each sample is blended with the sample at the same position in a random permutation of
    the batch, images and targets alike. λ is drawn per sample (the paper uses one per batch),
    which lowers the batch-to-batch variance of the loss.

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) floating images.
    targets : Tensor
        (N, K) class probabilities (one-hot rows for hard labels).
    alpha : float
        α >= 0, one number; 0 is off.
    generator : torch.Generator
        On the device of ``x``.

    Returns
    -------
    (Tensor, Tensor)
        Images (N, C, H, W) and targets (N, K) whose rows still sum to 1; the inputs
        themselves when α = 0.
    """
    _check_images(x, generator)
    _check_targets(x, targets)
    if _check_alpha(alpha) == 0:
        return x, targets
    lam, perm = _mix_params(x.shape[0], alpha, generator, x.device)
    return _mix(x, targets, lam, perm)


def _cutmix_boxes(lam: Tensor, height: int, width: int,
                  u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Integer boxes of side sqrt(1 - λ) times the image's, centred at u * (H, W), clipped.

    lam (N,), u (N, 2) in [0, 1). Returns y0, y1, x0, x1, each (N,) int64.
    """
    side = torch.sqrt(1 - lam)
    cy, cx = u[:, 0] * height, u[:, 1] * width
    hh, hw = side * height / 2, side * width / 2
    y0 = (cy - hh).round().clamp(0, height).to(torch.int64)
    y1 = (cy + hh).round().clamp(0, height).to(torch.int64)
    x0 = (cx - hw).round().clamp(0, width).to(torch.int64)
    x1 = (cx + hw).round().clamp(0, width).to(torch.int64)
    return y0, y1, x0, x1


def _paste(x: Tensor, targets: Tensor, boxes: tuple[Tensor, Tensor, Tensor, Tensor],
           perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Paste x[perm] into each box; λ = 1 - pasted area fraction. Returns x, targets, λ."""
    _, _, h, w = x.shape
    y0, y1, x0, x1 = boxes
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    mask = (((r >= y0[:, None]) & (r < y1[:, None]))[:, None, :, None]
            & ((c >= x0[:, None]) & (c < x1[:, None]))[:, None, None, :])  # (N, 1, H, W)
    lam = 1 - ((y1 - y0) * (x1 - x0)).to(torch.float32) / (h * w)  # exact pasted area
    lt = lam.to(targets.dtype)[:, None]
    return (torch.where(mask, x[perm], x), lt * targets + (1 - lt) * targets[perm], lam)


def cutmix(x: Tensor, targets: Tensor, alpha: float, *,
           generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """CutMix (Yun et al. 2019) with a per-sample λ ~ Beta(α, α).

    Each sample receives a box of area fraction about 1 - λ, centred uniformly over the
    image and clipped at its borders, cut from its partner in a random permutation of the
    batch; λ is then set to the exact unpasted fraction and the targets mixed with it.

    Parameters
    ----------
    x : Tensor
        (N, C, H, W) floating images.
    targets : Tensor
        (N, K) class probabilities (one-hot rows for hard labels).
    alpha : float
        α >= 0, one number; 0 is off.
    generator : torch.Generator
        On the device of ``x``.

    Returns
    -------
    (Tensor, Tensor)
        Images (N, C, H, W) and targets (N, K); the inputs themselves when α = 0.
    """
    _check_images(x, generator)
    _check_targets(x, targets)
    if _check_alpha(alpha) == 0:
        return x, targets
    n, _, h, w = x.shape
    lam, perm = _mix_params(n, alpha, generator, x.device)
    u = torch.rand(n, 2, generator=generator, device=x.device)
    x_out, t_out, _ = _paste(x, targets, _cutmix_boxes(lam, h, w, u), perm)
    return x_out, t_out
