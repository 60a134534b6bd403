"""Classifier heads and :class:`ClassifierModel`, the backbone → dropout → head composition.

Every model in :mod:`classgap.models` is a :class:`ClassifierModel`: the backbone maps an image
batch ``(N, C, H, W)`` to features ``(N, D)``, dropout regularizes the features before the last
layer, and a head maps them to logits ``(N, K)``. Keeping the three apart lets a study swap the
head (linear vs cosine for LDAM), read the penultimate features (margin regularizers, per-class
feature statistics) and vary dropout without touching the architectures.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classgap._registry import Registry
from classgap._validation import check_in_range, check_positive_int, fail
from classgap.errors import InputError

__all__ = ["HEADS", "ClassifierModel", "CosineHead", "LinearHead", "list_heads", "make_head"]


class LinearHead(nn.Linear):
    """Plain affine classifier ``z = W f + b``, ``(N, D) -> (N, K)``.

    Parameters
    ----------
    in_features : int
        Feature dimension D.
    num_classes : int
        Number of classes K.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__(in_features, num_classes)


class CosineHead(nn.Module):
    """Cosine ("normed") classifier ``z_j = scale · <f/|f|, w_j/|w_j|>``, ``(N, D) -> (N, K)``.

    This is the ``NormedLinear`` layer of the LDAM reference code (Cao et al. 2019): with the
    default ``scale=1`` it returns cosines in ``[-1, 1]`` and the LDAM loss multiplies the
    margin-adjusted logits by its own scale ``s = 30``. Do not set both: ``scale=30`` here *and*
    ``s=30`` in the loss would scale the logits by 900. Other losses (plain cross-entropy on a
    cosine classifier) need ``scale`` of about 10-30 here, as cosines alone are too flat for a
    softmax to become confident.

    The cosine is computed in float32 even under ``torch.autocast``: the normalisation and the
    later ×30 would turn bfloat16's ~0.4% relative error into logit errors of ~0.1.

    Parameters
    ----------
    in_features : int
        Feature dimension D.
    num_classes : int
        Number of classes K.
    scale : float
        Multiplier of the cosines; outputs lie in ``[-scale, scale]``.

    Examples
    --------
    >>> head = CosineHead(8, 3)
    >>> z = head(torch.randn(5, 8))
    >>> z.shape, bool(z.abs().max() <= 1 + 1e-6)
    (torch.Size([5, 3]), True)
    """

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not (
                math.isfinite(scale) and scale > 0):
            raise fail("scale", "be a finite number > 0", scale)
        self.in_features, self.num_classes, self.scale = in_features, num_classes, float(scale)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))  # (K, D)
        # Only the direction of each row matters; a uniform init gives directions uniform
        # enough and matches the reference's uniform_(-1, 1) before renormalisation.
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def forward(self, features: Tensor) -> Tensor:
        with torch.autocast(device_type=features.device.type, enabled=False):
            f = F.normalize(features.float(), dim=1)  # (N, D), unit rows
            w = F.normalize(self.weight.float(), dim=1)  # (K, D), unit rows
            return self.scale * (f @ w.T)  # (N, K) in [-scale, scale]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, " \
               f"scale={self.scale}"


HEADS: Registry[type[nn.Module]] = Registry("head")
HEADS.register("linear")(LinearHead)
HEADS.register("cosine")(CosineHead)


def list_heads() -> list[str]:
    """Names accepted by :func:`make_head` and by ``create_model(..., head=...)``."""
    return HEADS.list()


def make_head(kind: str, in_features: int, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build a head by name: ``"linear"`` (:class:`LinearHead`) or ``"cosine"``.

    Parameters
    ----------
    kind : str
        Head name; an unknown one raises :class:`~classgap.errors.InputError` listing the names.
    in_features, num_classes : int
        D and K.
    **kwargs
        Passed to the head (``scale`` for the cosine head); a keyword the head does not take
        raises :class:`~classgap.errors.InputError`.

    Examples
    --------
    >>> make_head("cosine", 16, 4, scale=30.0)
    CosineHead(in_features=16, num_classes=4, scale=30.0)
    """
    cls = HEADS.get(kind)
    check_positive_int(in_features, "in_features")
    check_positive_int(num_classes, "num_classes")
    allowed = {"scale"} if cls is CosineHead else set()
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        takes = ", ".join(map(repr, sorted(allowed))) or "no options"
        raise InputError(f"head {kind!r} takes {takes}; got {', '.join(map(repr, unknown))}")
    return cls(in_features, num_classes, **kwargs)


class ClassifierModel(nn.Module):
    """``backbone (N, C, H, W) -> (N, D)``, then ``dropout``, then ``head (N, D) -> (N, K)``.

    Parameters
    ----------
    backbone : nn.Module
        Feature extractor ending in a flat ``(N, D)`` representation.
    feature_dim : int
        D.
    head : nn.Module
        ``(N, D) -> (N, K)``.
    dropout : float
        Dropout probability in ``[0, 1)`` applied to the features before the head.

    Attributes
    ----------
    backbone, dropout, head : nn.Module
    feature_dim : int
    num_classes : int
    config : dict
        The arguments :func:`~classgap.models.create_model` resolved (empty otherwise).
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, head: nn.Module,
                 dropout: float = 0.0) -> None:
        super().__init__()
        check_in_range(dropout, "dropout", 0.0, 1.0, inclusive=(True, False))
        self.backbone = backbone
        # Dropout before the last layer is the regularizer axis of the study: p = 0 keeps the
        # module (an identity) so every model has the same structure and state_dict keys.
        self.dropout = nn.Dropout(p=float(dropout))
        self.head = head
        self.feature_dim = int(feature_dim)
        self.num_classes = int(getattr(head, "num_classes", getattr(head, "out_features", 0)))
        #: Resolved construction arguments; :func:`~classgap.models.create_model` fills it.
        self.config: dict[str, Any] = {}

    @overload
    def forward(self, x: Tensor, return_features: Literal[False] = ...) -> Tensor: ...

    @overload
    def forward(self, x: Tensor, return_features: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Logits ``(N, K)``; with ``return_features`` also the features ``(N, D)``.

        The features are the penultimate representation *before* dropout, so feature
        statistics (class means, margins) do not depend on the dropout mask.
        """
        features = self.backbone(x)  # (N, D)
        logits = self.head(self.dropout(features))  # (N, K)
        return (logits, features) if return_features else logits
