"""A Lightning callback that leaves classgap prediction files, logs per-class accuracy, gates.

>>> from classgap.integrations.lightning import PredictionWriter  # doctest: +SKIP
>>> trainer = lightning.Trainer(callbacks=[PredictionWriter("runs/mine", every_n_epochs=1)])

At the end of every ``every_n_epochs``-th validation epoch it writes ``val_epoch{E}.npz``, and
after ``trainer.test`` it writes ``test.npz``, into ``run_dir``: the labels and logits of every
batch, gathered across devices with the module's own ``all_gather``, with class names and
seed, ready for ``classgap audit``. With ``log_per_class`` it logs each class's accuracy and
its Wilson interval through the trainer's logger (``val_class_acc/<name>``, ``..._low``,
``..._high``). With ``baseline`` it runs ``classgap compare --fail-on-drop`` after the test
epoch and raises :class:`~classgap.errors.DropGateError` naming the classes that drop (or only
warns, ``warn_only=True``).

Where the logits come from, per batch: ``outputs["logits"]`` when ``validation_step`` /
``test_step`` return a dict holding them (and ``outputs["targets"]`` or ``outputs["y"]`` for the
labels, else ``batch[1]``); a returned tensor of shape (N, K); otherwise the callback runs
``pl_module(batch[0])`` itself under ``torch.no_grad`` (one extra forward pass).

Works with both import names, ``lightning`` and ``pytorch_lightning``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from classgap.errors import ClassgapError
from classgap.integrations.recorder import PredictionRecorder, check_drops

try:  # the new import name, then the old one
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        raise ClassgapError("classgap.integrations.lightning needs Lightning, which is not "
                            "installed: pip install 'classgap[lightning]'") from None

__all__ = ["PredictionWriter"]

PathLike = str | os.PathLike[str]


def _split(outputs: Any, batch: Any) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(logits or None, targets) of one batch from what the step returned and the batch."""
    targets = batch[1] if isinstance(batch, Sequence) and len(batch) > 1 else None
    if isinstance(outputs, Mapping) and "logits" in outputs:
        targets = outputs.get("targets", outputs.get("y", targets))
        logits = outputs["logits"]
    elif isinstance(outputs, torch.Tensor) and outputs.ndim == 2:
        logits = outputs
    else:
        logits = None
    if targets is None:
        raise ClassgapError("PredictionWriter needs the labels: return {'logits', 'targets'} "
                            "from the step, or use (x, y) batches")
    return logits, targets


class PredictionWriter(pl.Callback):
    """Write classgap prediction files from Lightning's validation and test loops.

    Parameters
    ----------
    run_dir : path
        Where ``val_epoch{E}.npz`` and ``test.npz`` go (created when missing).
    every_n_epochs : int
        Write the validation predictions every this many epochs (0: never).
    classes : sequence of str, optional
        Class names in index order.
    seed : int, optional
        The run's seed, recorded in the files (default: none).
    log_per_class : bool
        Log per-class validation accuracy with its 95% Wilson interval to the trainer's logger.
    baseline : path or sequence of paths, optional
        Prediction files of a baseline on the same test set: after the test epoch, fail (or
        warn) when a class drops significantly by more than ``fail_on_drop`` points.
    fail_on_drop : float
        The gate's threshold in points.
    warn_only : bool
        Warn instead of raising when the gate fails.
    """

    def __init__(self, run_dir: PathLike, *, every_n_epochs: int = 1,
                 classes: Sequence[str] | None = None, seed: int | None = None,
                 log_per_class: bool = False, baseline: PathLike | Sequence[PathLike] | None = None,
                 fail_on_drop: float = 0.0, warn_only: bool = False) -> None:
        super().__init__()
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) \
                or every_n_epochs < 0:
            raise ClassgapError(f"'every_n_epochs' must be an integer >= 0; got "
                                f"{every_n_epochs!r}")
        self.run_dir = Path(run_dir)
        self.every_n_epochs = every_n_epochs
        self.log_per_class = log_per_class
        self.baseline, self.fail_on_drop, self.warn_only = baseline, fail_on_drop, warn_only
        self._recorders = {stage: PredictionRecorder(classes, seed) for stage in ("val", "test")}
        self.comparison: Any = None  # the gate's Comparison, after the test epoch

    # -- batches ------------------------------------------------------------------------------
    def _record(self, stage: str, pl_module: Any, outputs: Any, batch: Any) -> None:
        logits, targets = _split(outputs, batch)
        if logits is None:
            with torch.no_grad():
                logits = pl_module(batch[0])
        logits, targets = logits.detach(), targets.detach()
        if pl_module.trainer.world_size > 1:  # (devices, N, K) from every device
            logits = pl_module.all_gather(logits).flatten(0, 1)
            targets = pl_module.all_gather(targets).flatten(0, 1)
        self._recorders[stage].update(logits, targets)

    def _validating(self, trainer: Any) -> bool:
        return (self.every_n_epochs > 0 and not trainer.sanity_checking
                and (trainer.current_epoch + 1) % self.every_n_epochs == 0)

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._recorders["val"].reset()

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._validating(trainer) or (self.log_per_class and not trainer.sanity_checking):
            self._record("val", pl_module, outputs, batch)

    def on_test_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._recorders["test"].reset()

    def on_test_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._record("test", pl_module, outputs, batch)

    # -- epochs -------------------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        recorder = self._recorders["val"]
        if trainer.sanity_checking or not len(recorder):
            return
        if self.log_per_class and trainer.is_global_zero:
            # Each logger's own API, once an epoch: ``self.log_dict`` of 3 K values costs more
            # than the epoch itself on a small model (bench/RESULTS.md).
            metrics = self._per_class(recorder)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        if self._validating(trainer) and trainer.is_global_zero:
            recorder.write(self.run_dir / f"val_epoch{trainer.current_epoch + 1}.npz")

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        path = self._recorders["test"].write(self.run_dir / "test.npz")
        if self.baseline is not None:
            self.comparison = check_drops(self.baseline, path, fail_on_drop=self.fail_on_drop,
                                          warn_only=self.warn_only)

    @staticmethod
    def _per_class(recorder: PredictionRecorder) -> dict[str, float]:
        import numpy as np

        from classgap.audit.intervals import wilson_interval

        logits, targets, _ = recorder.arrays()
        k = logits.shape[1]
        support = np.bincount(targets, minlength=k)
        correct = np.bincount(targets, weights=logits.argmax(1) == targets, minlength=k)
        low, high = wilson_interval(correct, support)
        names = recorder.classes or [str(c) for c in range(k)]
        out: dict[str, float] = {}
        for c, name in enumerate(names):
            if support[c]:
                out[f"val_class_acc/{name}"] = float(correct[c] / support[c])
                out[f"val_class_acc/{name}_low"] = float(low[c])
                out[f"val_class_acc/{name}_high"] = float(high[c])
        return out
