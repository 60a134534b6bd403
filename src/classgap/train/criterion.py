"""The training criterion of a run: ``config.loss`` (and DRW) turned into one callable.

Plain cross-entropy (the default) keeps the trainer's original path, :func:`loss_fn`, which
also takes the probability targets of mixup and cutmix. Any other loss, or cross-entropy with
deferred re-weighting, is a :mod:`classgap.losses` module built from the training split's class
counts; those take hard labels only, which :mod:`classgap.config` checks up front.

>>> from classgap.config import load_config
>>> cfg = load_config(overrides=["loss.name=ldam", "loss.max_m=0.3", "loss.drw_epoch=3",
...                              "train.epochs=4"])
>>> crit = build_criterion(cfg, class_counts=[500, 50, 5])
>>> crit.needs_features, crit.drw_active(2), crit.drw_active(3)
(False, False, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from classgap.config import Config, LossConfig
from classgap.errors import ConfigError
from classgap.train.evaluate import loss_fn

__all__ = ["Criterion", "build_criterion", "loss_params"]


def loss_params(cfg: LossConfig, label_smoothing: float | tuple[float, ...] = 0.0,
                ) -> dict[str, Any]:
    """The keyword parameters set in ``cfg`` (``None`` = the loss's default), for ``create_loss``.

    ``optim.label_smoothing`` is cross-entropy's ``label_smoothing`` when the loss is ``ce``.
    """
    params = cfg.params()
    if cfg.name == "ce" and label_smoothing:
        params["label_smoothing"] = label_smoothing
    return params


class Criterion:
    """``criterion(logits, targets, features=None)`` for the trainer, plus the DRW switch.

    Attributes
    ----------
    module : classgap.losses.ClassAwareLoss or None
        The loss module; None on the plain cross-entropy path.
    needs_features : bool
        Whether the model must return its penultimate features (MR²).
    drw_epoch : int or None
        First 0-based epoch with class-balanced weights.
    """

    def __init__(self, module: Any, label_smoothing: float | tuple[float, ...],
                 drw: Any, reweight: str | None = None, num_classes: int = 0,
                 reweight_params: dict[str, Any] | None = None) -> None:
        self.module, self.label_smoothing, self.drw = module, label_smoothing, drw
        self.needs_features = bool(getattr(module, "needs_features", False))
        self.drw_epoch = None if drw is None else drw.start_epoch
        self.reweight = reweight
        self.reweight_params = dict(reweight_params or {})
        self.class_weights = np.ones(num_classes) if reweight is not None else None
        self._state: Any = None
        if reweight is not None:
            from classgap.losses import initial_state

            self._state = initial_state(reweight)

    def update_class_weights(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """One epoch's worst-class reweighting from the model's outputs on the training set
        (an evaluation pass without augmentation): per-class accuracy and mean cross-entropy
        go to :func:`~classgap.losses.class_weights_update`; the loss takes the new weights,
        which are returned."""
        from classgap.losses import class_weights_update

        assert self.reweight is not None and self.class_weights is not None
        k = self.class_weights.size
        z = logits.astype(np.float64)
        top = z.max(axis=1, keepdims=True)
        ce = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0] - z[np.arange(len(z)), labels]
        counts = np.bincount(labels, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.bincount(labels, weights=z.argmax(1) == labels, minlength=k) / counts
            loss = np.bincount(labels, weights=ce, minlength=k) / counts
        self.class_weights, self._state = class_weights_update(
            self.reweight, self.class_weights, train_acc=acc, train_loss=loss,
            state=self._state, **self.reweight_params)
        self.module.set_weight(torch.as_tensor(self.class_weights, dtype=torch.float32))
        return self.class_weights

    @property
    def logit_scale(self) -> float:
        """What the loss multiplies the model's outputs by (LDAM's ``s``; 1 otherwise)."""
        return float(getattr(self.module, "logit_scale", 1.0))

    def drw_active(self, epoch: int) -> bool:
        """Whether 0-based ``epoch`` trains with the re-weighted criterion."""
        return self.drw is not None and self.drw.is_active(epoch)

    def on_epoch_start(self, epoch: int) -> None:
        """Switch the DRW weights on at their epoch; let stateful losses (MR²) react."""
        if self.module is None:
            return
        if self.drw is not None:
            self.drw.apply(self.module, epoch)
        self.module.on_epoch_start(epoch)

    def __call__(self, logits: Tensor, targets: Tensor, features: Tensor | None = None) -> Tensor:
        if self.module is None:
            return loss_fn(logits, targets, label_smoothing=self.label_smoothing)
        return self.module(logits, targets, features, validate=False)


def build_criterion(config: Config, class_counts: Any, *,
                    device: torch.device | str = "cpu") -> Criterion:
    """The :class:`Criterion` of ``config`` for a training split with ``class_counts`` (K,)."""
    lc, smoothing = config.loss, config.optim.label_smoothing
    if isinstance(smoothing, tuple) and len(smoothing) != len(list(class_counts)):
        raise ConfigError(f"'optim.label_smoothing' must hold one value per class "
                          f"({len(list(class_counts))}); got {len(smoothing)} values")
    if isinstance(smoothing, tuple) and (lc.drw_epoch is not None or lc.params()):
        raise ConfigError("'optim.label_smoothing' must be one value with loss parameters or "
                          f"loss.drw_epoch set (a per-class value is for plain cross-entropy); "
                          f"got {list(smoothing)}")
    if lc.name == "ce" and lc.drw_epoch is None and not lc.params() and lc.reweight is None:
        return Criterion(None, smoothing, None)
    from classgap.losses import DRW, create_loss

    counts = torch.as_tensor(list(class_counts), dtype=torch.int64)
    module = create_loss(lc.name, class_counts=counts, num_classes=len(counts),
                         **loss_params(lc, smoothing)).to(device)
    drw = DRW(counts, start_epoch=lc.drw_epoch, beta=lc.drw_beta) \
        if lc.drw_epoch is not None else None
    return Criterion(module, smoothing, drw, lc.reweight, len(counts), lc.reweight_params())
