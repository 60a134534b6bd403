"""Class-aware losses for long-tailed and class-disparity training.

A pure functional core (``cross_entropy``, ``focal_loss``, ``ldam_loss``, ``vs_loss``,
``logit_adjusted_loss``, ``balanced_softmax_loss``, the MR² pieces) with thin
:class:`ClassAwareLoss` modules holding the configuration and state; ``create_loss(name, ...)``
and ``list_losses()`` select them by name::

    >>> import torch
    >>> loss = create_loss("logit_adjusted", class_counts=[90, 10], tau=1.0)
    >>> loss(torch.zeros(2, 2), torch.tensor([0, 1])).shape
    torch.Size([])

Every module is called ``loss(logits, targets, features=None)``; ``needs_features`` says whether
``features`` (N, D) is required (MR²). ``set_weight(w)`` changes the class weights at run time,
as :class:`DRW` does. LDAM is meant for the cosine head :class:`~classgap.models.CosineHead`.
"""

from classgap.losses.base import ClassAwareLoss, weighted_mean
from classgap.losses.ce import (
    ClassBalancedLoss,
    CrossEntropyLoss,
    FocalLoss,
    PolyLoss,
    cross_entropy,
    focal_loss,
    poly_loss,
)
from classgap.losses.margins import (
    BalancedSoftmaxLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    VSLoss,
    balanced_softmax_loss,
    ldam_loss,
    ldam_margins,
    logit_adjusted_loss,
    posthoc_adjust,
    vs_loss,
)
from classgap.losses.mr2 import (
    MR2Loss,
    class_feature_stats,
    ema_update,
    mr2_logit_loss,
    mr2_margins,
    mr2_rep_loss,
)
from classgap.losses.registry import LossSpec, create_loss, list_losses, loss_info
from classgap.losses.reweight import DRW, class_balanced_weights
from classgap.losses.worst_class import (
    REWEIGHT_DEFAULTS,
    REWEIGHT_METHODS,
    class_weights_update,
    initial_state,
)

__all__ = [
    "DRW",
    "REWEIGHT_DEFAULTS",
    "REWEIGHT_METHODS",
    "BalancedSoftmaxLoss",
    "ClassAwareLoss",
    "ClassBalancedLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LossSpec",
    "MR2Loss",
    "PolyLoss",
    "VSLoss",
    "balanced_softmax_loss",
    "class_balanced_weights",
    "class_feature_stats",
    "class_weights_update",
    "create_loss",
    "cross_entropy",
    "ema_update",
    "focal_loss",
    "initial_state",
    "ldam_loss",
    "ldam_margins",
    "list_losses",
    "logit_adjusted_loss",
    "loss_info",
    "mr2_logit_loss",
    "mr2_margins",
    "mr2_rep_loss",
    "poly_loss",
    "posthoc_adjust",
    "vs_loss",
    "weighted_mean",
]
