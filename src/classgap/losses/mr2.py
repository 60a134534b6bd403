"""MR² margin regularization (Zhu et al. 2026; ``MRFLoss`` in the BeierZhu/MR2 code).

Per batch, with penultimate features ``f_i`` (N, D) and logits ``z_i`` (N, K):

1. Per-class statistics of the classes in the batch, ``μ_c = mean f_i``, ``M_c = |μ_c|_p²``,
   ``V_c = mean |f_i - μ_c|_p²``, tracked by an EMA with decay ``ema`` (0.9 CIFAR, 0.999
   ImageNet). A class's first sighting initialises its EMA; statistics are updated before the
   margins are computed, and only in training mode (``loss.eval()`` freezes them).
2. Margins ``a_k = (M_k + V_k)^(1/3)``, ``γ_k = c̄ · a_k / mean_j a_j`` over the classes seen
   so far, so the margins average c̄. Classes not seen yet get ``γ_k = c̄``.
3. Logit term ``CE_w(z_i / γ_{y_i}, y_i)``: every logit of a sample is divided by its true
   class's margin. All γ = 1 gives plain cross-entropy.
4. Representation term over same-class pairs of the batch,
   ``t_i = log(1 + Σ_{j≠i, y_j=y_i} exp((|f_i - f_j|₂² - 2 s̄) / T))``, ``s̄ = mean_k V_k``,
   averaged over the samples that have at least one same-class partner (0 when none has).
5. Total ``CE_margin + λ · rep``, λ = 0.1.

Everything is vectorised over classes (one-hot matmuls and one N × N distance matrix), where the
reference loops over all K classes in Python twice per batch.

Constants and choices (ours, where the reference differs)
---------------------------------------------------------
- ``p = 2`` by default: the paper writes the Euclidean norm and the representation term uses
  squared Euclidean distances, so p = 2 keeps V_c and s̄ on the scale of D_ij. The reference
  code uses p = 5; pass ``p=5`` to reproduce it.
- ``T = temperature``, default ``None`` meaning ``T = 10·D`` as in the reference. The reference
  then multiplies the term by D/10, divides it by K and averages per class before summing; we
  average over eligible samples and apply only λ, so λ alone sets the weight whatever D and K.
  To match the reference's scale, use ``lam = 0.1 · D / (10·K)`` (roughly; its per-class
  averaging also weighs small classes more).
- ``s̄`` averages V over the classes seen so far (the reference includes unseen classes as 0).
- Unseen classes get margin c̄ (the reference leaves them at 0, which divides by zero).
- A margin is floored at ``1e-3 · c̄`` so a class whose features are all zero cannot divide its
  logits by 0.
- Statistics persist across epochs; ``reset_every_epoch=True`` reproduces the reference CIFAR
  loop, which re-creates the loss each epoch (via :meth:`MR2Loss.on_epoch_start`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from classgap._validation import fail
from classgap.errors import ConfigError
from classgap.losses._checks import check_num_classes, check_param
from classgap.losses.base import ClassAwareLoss

__all__ = ["MR2Loss", "class_feature_stats", "ema_update", "mr2_logit_loss", "mr2_margins",
           "mr2_rep_loss"]

#: Smallest margin, as a fraction of c̄ (see the module docstring).
MIN_MARGIN_FRACTION = 1e-3
#: Default temperature is this times the feature dimension D (the reference's choice).
TEMPERATURE_PER_DIM = 10.0


# ------------------------------------------------------------------------------ functional
def class_feature_stats(features: Tensor, targets: Tensor, num_classes: int,
                        p: float = 2.0) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class batch statistics ``(present, M, V)``, each (K,).

    Parameters
    ----------
    features : Tensor
        (N, D).
    targets : Tensor
        (N,) class indices in [0, K).
    num_classes : int
        K.
    p : float
        Order of the norm in ``M_c = |μ_c|_p²`` and ``V_c = mean |f_i - μ_c|_p²``.

    Returns
    -------
    (Tensor, Tensor, Tensor)
        ``present`` (K,) bool: the class has samples in the batch; ``M`` and ``V`` (K,) in the
        dtype of ``features``, 0 for absent classes.
    """
    # One-hot matmuls rather than index_add_: deterministic on CUDA, and cheap for K ~ 1000.
    onehot = F.one_hot(targets, num_classes).to(features.dtype)  # (N, K)
    n = onehot.sum(0)  # (K,)
    denom = n.clamp_min(1.0)
    mu = (onehot.T @ features) / denom[:, None]  # (K, D)
    m = torch.linalg.vector_norm(mu, ord=p, dim=1).pow(2)  # (K,)
    dev = torch.linalg.vector_norm(features - mu[targets], ord=p, dim=1).pow(2)  # (N,)
    v = (onehot.T @ dev) / denom  # (K,)
    return n > 0, m, v


def ema_update(state: Tensor, seen: Tensor, batch: Tensor, present: Tensor,
               decay: float) -> Tensor:
    """EMA of per-class statistics: ``decay·state + (1-decay)·batch`` for classes seen before,
    ``batch`` at a class's first sighting, ``state`` for classes absent from the batch.

    All arguments but ``decay`` are (K,); returns the new state (K,).
    """
    blended = decay * state + (1.0 - decay) * batch
    return torch.where(present & seen, blended, torch.where(present, batch, state))


def mr2_margins(m: Tensor, v: Tensor, seen: Tensor, c_bar: float = 1.0) -> Tensor:
    """Margins ``γ_k = c̄ · a_k / mean_{seen} a_j``, ``a_k = (M_k + V_k)^(1/3)``; c̄ if unseen.

    Parameters
    ----------
    m, v : Tensor
        (K,) EMA statistics M and V.
    seen : Tensor
        (K,) bool, classes with statistics.
    c_bar : float
        Mean margin c̄.

    Returns
    -------
    Tensor
        (K,) margins averaging c̄ over all K classes (unless floored, see the module docstring).

    Examples
    --------
    >>> mr2_margins(torch.tensor([1.0, 7.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]),
    ...             torch.tensor([True, True, False]))
    tensor([0.6667, 1.3333, 1.0000])
    """
    a = (m + v).clamp_min(0.0).pow(1.0 / 3.0)  # (K,)
    mean_a = torch.where(seen, a, 0.0).sum() / seen.sum().clamp_min(1)
    gamma = torch.where(seen & (mean_a > 0), c_bar * a / mean_a.clamp_min(1e-30),
                        torch.full_like(a, c_bar))
    return gamma.clamp_min(MIN_MARGIN_FRACTION * c_bar)


def mr2_logit_loss(logits: Tensor, targets: Tensor, margins: Tensor,
                   weight: Tensor | None = None) -> Tensor:
    """``CE_w(z_i / γ_{y_i}, y_i)``: logits (N, K), targets (N,), margins (K,)."""
    scale = margins.to(logits.dtype)[targets]  # (N,)
    return F.cross_entropy(logits / scale[:, None], targets, weight=weight)


def mr2_rep_loss(features: Tensor, targets: Tensor, s_bar: Tensor | float,
                 temperature: float) -> Tensor:
    """Representation term: mean over samples with a same-class partner of
    ``log(1 + Σ_{j≠i, y_j=y_i} exp((|f_i - f_j|₂² - 2 s̄) / T))``.

    Parameters
    ----------
    features : Tensor
        (N, D).
    targets : Tensor
        (N,) class indices.
    s_bar : Tensor or float
        s̄, the mean within-class spread.
    temperature : float
        T > 0.

    Returns
    -------
    Tensor
        Scalar; 0 (still attached to ``features``) when no class has two samples in the batch.
    """
    n = features.shape[0]
    sq = features.pow(2).sum(1)  # (N,)
    # Gram form: an (N, N, D) difference tensor would not fit for D = 2048 and N = 512.
    d = (sq[:, None] + sq[None, :] - 2.0 * features @ features.T).clamp_min(0.0)  # (N, N)
    eye = torch.eye(n, dtype=torch.bool, device=features.device)
    partner = (targets[:, None] == targets[None, :]) & ~eye  # (N, N)
    a = ((d - 2.0 * s_bar) / temperature).masked_fill(~partner, float("-inf"))
    # log(1 + Σ exp(a)) as logsumexp over [0, a]: finite value and gradient for lone samples.
    t = torch.logsumexp(torch.cat([a.new_zeros(n, 1), a], dim=1), dim=1)  # (N,), 0 if lone
    eligible = partner.any(1)
    return t.sum() / eligible.sum().clamp_min(1)


# ------------------------------------------------------------------------------ module
class MR2Loss(ClassAwareLoss):
    """MR² margin regularization (registry name ``"mr2"``), called ``loss(z, y, features=f)``.

    Parameters
    ----------
    num_classes : int
        K.
    c_bar : float
        Mean margin c̄ > 0; 1 keeps the average logit scale (the reference's implicit value).
    lam : float
        λ >= 0, weight of the representation term (0.1).
    ema : float
        EMA decay β in [0, 1) of the class statistics: 0.9 on CIFAR, 0.999 on ImageNet.
    p : float
        Norm order > 0 of the statistics; 2 (paper) by default, 5 in the reference code.
    temperature : float, optional
        T > 0 of the representation term; None for ``10·D``.
    reset_every_epoch : bool
        Forget the statistics at every :meth:`on_epoch_start` (the reference CIFAR loop).
    weight : array-like, optional
        (K,) class weights of the logit term.

    Attributes
    ----------
    stat_m, stat_v : Tensor
        (K,) float32 EMA buffers of M and V.
    seen : Tensor
        (K,) bool buffer, classes with statistics.
    margins : Tensor
        (K,) current margins (read-only property).
    """

    name = "mr2"
    needs_features = True
    stat_m: Tensor
    stat_v: Tensor
    seen: Tensor

    def __init__(self, num_classes: int, *, c_bar: float = 1.0, lam: float = 0.1,
                 ema: float = 0.9, p: float = 2.0, temperature: float | None = None,
                 reset_every_epoch: bool = False, weight: Any = None) -> None:
        k = check_num_classes(num_classes)
        super().__init__(k, weight)
        self.c_bar = check_param(c_bar, "c_bar", 0.0, inclusive=(False, False))
        self.lam = check_param(lam, "lam", 0.0)
        self.ema = check_param(ema, "ema", 0.0, 1.0)
        self.p = check_param(p, "p", 0.0, inclusive=(False, False))
        self.temperature = (None if temperature is None else
                            check_param(temperature, "temperature", 0.0, inclusive=(False, False)))
        if not isinstance(reset_every_epoch, bool):
            raise fail("reset_every_epoch", "be True or False", reset_every_epoch,
                       error=ConfigError)
        self.reset_every_epoch = reset_every_epoch
        self.register_buffer("stat_m", torch.zeros(k))
        self.register_buffer("stat_v", torch.zeros(k))
        self.register_buffer("seen", torch.zeros(k, dtype=torch.bool))

    @property
    def margins(self) -> Tensor:
        """(K,) margins γ from the current statistics."""
        return mr2_margins(self.stat_m, self.stat_v, self.seen, self.c_bar)

    @torch.no_grad()
    def update(self, features: Tensor, targets: Tensor) -> None:
        """Fold a batch's class statistics into the EMA (done by ``forward`` in training mode).
        """
        present, m, v = class_feature_stats(features.detach().float(), targets,
                                            self.stat_m.numel(), self.p)
        self.stat_m.copy_(ema_update(self.stat_m, self.seen, m, present, self.ema))
        self.stat_v.copy_(ema_update(self.stat_v, self.seen, v, present, self.ema))
        self.seen |= present

    def reset(self) -> None:
        """Forget the statistics: every class is unseen again (margin c̄)."""
        self.stat_m.zero_()
        self.stat_v.zero_()
        self.seen.zero_()

    def on_epoch_start(self, epoch: int) -> None:
        if self.reset_every_epoch:
            self.reset()

    def compute(self, logits: Tensor, targets: Tensor, weight: Tensor | None,
                features: Tensor | None) -> Tensor:
        assert features is not None  # checked by forward (needs_features)
        # float32 even under autocast: the Gram-form distances cancel badly in bfloat16.
        with torch.autocast(device_type=logits.device.type, enabled=False):
            if self.training:
                self.update(features, targets)
            loss = mr2_logit_loss(logits, targets, self.margins, weight)
            if self.lam == 0:  # skip the O(N²) term
                return loss
            f = features.to(torch.promote_types(features.dtype, torch.float32))
            seen = self.seen.to(f.dtype)
            s_bar = (self.stat_v * seen).sum() / seen.sum().clamp_min(1)
            t = self.temperature or TEMPERATURE_PER_DIM * f.shape[1]
            return loss + self.lam * mr2_rep_loss(f, targets, s_bar, t)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, c_bar={self.c_bar}, lam={self.lam}, "
                f"ema={self.ema}, p={self.p}, temperature={self.temperature}, "
                f"reset_every_epoch={self.reset_every_epoch}")
