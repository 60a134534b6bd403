"""Losses by name: ``create_loss("ldam", class_counts=counts, max_m=0.5)``.

Names and parameters (defaults)
-------------------------------
``ce``                ``label_smoothing`` (0), ``weight``
``focal``             ``gamma`` (1), ``weight``
``poly``              ``theta`` (0.8), ``gamma`` (2), ``weight``
``class_balanced``    ``beta`` (0.9999); the class-balanced weights are its ``weight``
``ldam``              ``max_m`` (0.5), ``s`` (30), ``weight``; use a cosine head (scale 1)
``vs``                ``gamma`` (0.3), ``tau`` (1), ``weight``
``logit_adjusted``    ``tau`` (1), ``weight``
``balanced_softmax``  ``weight``
``mr2``               ``c_bar`` (1), ``lam`` (0.1), ``ema`` (0.9), ``p`` (2), ``temperature``
                      (None: 10·D), ``reset_every_epoch`` (False), ``weight``; needs features

``class_balanced``, ``ldam``, ``vs``, ``logit_adjusted`` and ``balanced_softmax`` need
``class_counts``; ``mr2`` needs ``num_classes`` (or ``class_counts``, which gives K).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any

from classgap._registry import Registry
from classgap.errors import ConfigError, InputError
from classgap.losses._checks import check_class_counts, check_num_classes
from classgap.losses.base import ClassAwareLoss
from classgap.losses.ce import ClassBalancedLoss, CrossEntropyLoss, FocalLoss, PolyLoss
from classgap.losses.margins import BalancedSoftmaxLoss, LDAMLoss, LogitAdjustedLoss, VSLoss
from classgap.losses.mr2 import MR2Loss

__all__ = ["LossSpec", "create_loss", "list_losses", "loss_info"]


@dataclass(frozen=True)
class LossSpec:
    """What the registry knows about a loss: its module class and a one-line description."""

    cls: type[ClassAwareLoss]
    description: str

    def params(self) -> dict[str, Any]:
        """The loss's keyword parameters and their defaults."""
        sig = inspect.signature(self.cls.__init__)
        return {p.name: p.default for p in sig.parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}


_LOSSES: Registry[LossSpec] = Registry("loss")

for _name, _entry in {
    "ce": LossSpec(CrossEntropyLoss, "cross-entropy, optionally weighted and label-smoothed"),
    "focal": LossSpec(FocalLoss, "focal loss (1 - p_y)^γ · CE"),
    "poly": LossSpec(PolyLoss, "polynomially weighted CE (θ + (1 - p_y)^γ) · CE"),
    "class_balanced": LossSpec(ClassBalancedLoss,
                               "CE weighted by effective-number class-balanced weights"),
    "ldam": LossSpec(LDAMLoss, "label-distribution-aware margins m_k ∝ n_k^(-1/4), scale s"),
    "vs": LossSpec(VSLoss, "vector scaling: CE((n_k/n_max)^γ · z + τ log π)"),
    "logit_adjusted": LossSpec(LogitAdjustedLoss, "logit-adjusted CE: CE(z + τ log π)"),
    "balanced_softmax": LossSpec(BalancedSoftmaxLoss, "balanced softmax: CE(z + log n)"),
    "mr2": LossSpec(MR2Loss, "MR² margins from EMA feature statistics + representation term"),
}.items():
    _LOSSES.register(_name)(_entry)


def list_losses() -> list[str]:
    """Names accepted by :func:`create_loss`, sorted."""
    return _LOSSES.list()


def _spec(name: str) -> LossSpec:
    try:
        return _LOSSES.get(name)  # lists the valid names and suggests the closest
    except InputError as err:
        raise ConfigError(str(err)) from None


def loss_info(name: str) -> dict[str, Any]:
    """Description, parameters with defaults, and what a loss needs, as plain Python types."""
    spec = _spec(name)
    return {"name": name, "description": spec.description, "params": spec.params(),
            "needs_counts": spec.cls.needs_counts, "needs_features": spec.cls.needs_features}


def create_loss(name: str, class_counts: Any = None, num_classes: int | None = None,
                **params: Any) -> ClassAwareLoss:
    """Build a loss module by name (see :func:`list_losses` and the module docstring).

    Parameters
    ----------
    name : str
        Loss name; an unknown one raises :class:`~classgap.errors.ConfigError` listing the
        names and suggesting the closest.
    class_counts : array-like, optional
        (K,) training count of each class (integers > 0). Required by the count-based losses.
    num_classes : int, optional
        K; must equal ``len(class_counts)`` when both are given.
    **params
        The loss's parameters; an unknown one raises :class:`~classgap.errors.ConfigError`
        listing those the loss takes, and an out-of-range value raises it too.

    Returns
    -------
    ClassAwareLoss
        ``loss(logits, targets, features=None)`` returns a scalar; ``loss.needs_features``
        tells whether ``features`` is required; ``loss.set_weight(w)`` changes class weights.

    Examples
    --------
    >>> import torch
    >>> loss = create_loss("ldam", class_counts=[500, 50, 5], max_m=0.5)
    >>> loss.margins
    tensor([0.1581, 0.2812, 0.5000])
    """
    spec = _spec(name)
    allowed = spec.params()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"loss {name!r} takes {', '.join(map(repr, allowed))}; got unknown "
                          f"parameter(s) {', '.join(map(repr, unknown))}{hint}")
    if num_classes is not None:
        num_classes = check_num_classes(num_classes)
    counts = None if class_counts is None else check_class_counts(class_counts, num_classes)
    if spec.cls.needs_counts:
        if counts is None:
            raise ConfigError(f"loss {name!r} needs 'class_counts' (the training count of each "
                              "class); got None")
        return spec.cls(counts, **params)  # type: ignore[arg-type]
    k = num_classes if counts is None else counts.numel()
    if spec.cls is MR2Loss and k is None:
        raise ConfigError(f"loss {name!r} needs 'num_classes' (or 'class_counts'); got None")
    return spec.cls(k, **params)  # type: ignore[call-arg]
