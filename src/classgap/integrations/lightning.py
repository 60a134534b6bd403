"""A Lightning callback that leaves classgap prediction files, logs per-class accuracy, gates.

>>> from classgap.integrations.lightning import PredictionWriter  # doctest: +SKIP
>>> trainer = lightning.Trainer(callbacks=[PredictionWriter("runs/mine")])

When ``fit`` ends it writes ``val_epoch{E}.npz`` for the last validation epoch (for every
``every_n_epochs``-th one instead, as each ends, when that is given), and after
``trainer.test`` it writes ``test.npz``, into ``run_dir``: the labels and logits of every
batch, gathered across devices with the module's own ``all_gather``, with class names and
seed, ready for ``classgap audit``. ``E`` is Lightning's own epoch number,
``trainer.current_epoch``, counted from 0: ``val_epoch2.npz`` holds the predictions of the
model that ``ModelCheckpoint`` saves as ``epoch=2``. The seed is the one given, else the one
``seed_everything`` set (Lightning keeps it in ``PL_GLOBAL_SEED``), else none.

With ``log_per_class`` it logs each class's accuracy and its Wilson interval through the
trainer's loggers (``val_class_acc/<name>``, ``..._low``, ``..._high``, with ``epoch``), at
the step Lightning logs its own validation metrics at, so they line up with ``val_loss`` in
every logger. With ``baseline`` it runs ``classgap compare --fail-on-drop`` after the test
epoch and raises :class:`~classgap.errors.DropGateError` naming the classes that drop (or only
warns, ``warn_only=True``).

Where the logits come from, per batch: ``outputs["logits"]`` when ``validation_step`` /
``test_step`` return a dict holding them (the labels: ``outputs["targets"]`` or
``outputs["y"]`` when returned, else ``batch[1]``; optionally ``outputs["sample_ids"]``); a
returned tensor of shape (N, K); else the output of the step's one call of the module
(``self(x)``, seen by a forward hook, at no cost); else the callback runs
``pl_module(batch[0])`` itself under ``torch.no_grad`` (one extra forward pass).

Several validation or test dataloaders get a file each: ``val_dl{i}_epoch{E}.npz`` and
``test_dl{i}.npz`` (and ``val_dl{i}_class_acc/<name>`` in the logs); the gate compares the
first test loader's file with the baseline.

On several devices, a distributed sampler pads the last batches with repeated samples so that
every device gets as many. Return ``sample_ids`` from the steps and the repeats are dropped
from the files; without ids they stay in (each repeat counted as a sample).

Works with both import names, ``lightning`` and ``pytorch_lightning``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from classgap._validation import check_positive_int
from classgap.errors import ClassgapError
from classgap.integrations.recorder import DropGate, PredictionRecorder, per_class_accuracy

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


def _split(outputs: Any, batch: Any) -> tuple[Any, Any, Any]:
    """(logits or None, targets, sample ids or None) of a batch, from the step's return value."""
    targets = batch[1] if isinstance(batch, Sequence) and len(batch) > 1 else None
    logits = ids = None
    if isinstance(outputs, Mapping):
        targets = outputs.get("targets", outputs.get("y", targets))
        logits, ids = outputs.get("logits"), outputs.get("sample_ids")
    elif isinstance(outputs, torch.Tensor) and outputs.ndim == 2:
        logits = outputs
    if targets is None:
        raise ClassgapError("PredictionWriter needs the labels: return {'logits', 'targets'} "
                            "from the step, or use (x, y) batches")
    return logits, targets, ids


def _global_seed() -> int | None:
    """The seed ``seed_everything`` set in this process (or its launcher), if it was called."""
    try:
        return int(os.environ["PL_GLOBAL_SEED"])
    except (KeyError, ValueError):  # not called, or not a seed Lightning could have set
        return None


class PredictionWriter(pl.Callback):
    """Write classgap prediction files from Lightning's validation and test loops.

    Parameters
    ----------
    run_dir : path
        Where ``val_epoch{E}.npz`` and ``test.npz`` go (created when missing); ``E`` is
        ``trainer.current_epoch``, numbered from 0 as ``ModelCheckpoint``'s ``epoch=E``.
    every_n_epochs : int, optional
        Write the validation predictions every this many epochs, as each ends (0: never). By
        default only the last validation epoch's are written, when ``fit`` ends (also when it
        stops on an error or Ctrl-C): one validation file per run, however many epochs, at a
        cost that does not grow with them.
    classes : sequence of str, optional
        Class names in index order.
    seed : int, optional
        The run's seed, recorded in the files (default: the seed of ``seed_everything``, read
        when the run starts; none when it was not called).
    log_per_class : bool
        Log per-class validation accuracy with its 95% Wilson interval, and the epoch, to the
        trainer's loggers at the step of Lightning's own validation metrics.
    baseline : path or sequence of paths, optional
        Prediction files of a baseline on the same test set: after the test epoch, fail (or
        warn) when a class drops significantly by more than ``fail_on_drop`` points.
    fail_on_drop : float
        The gate's threshold in points.
    warn_only : bool
        Warn instead of raising when the gate fails.
    """

    def __init__(self, run_dir: PathLike, *, every_n_epochs: int | None = None,
                 classes: Sequence[str] | None = None, seed: int | None = None,
                 log_per_class: bool = False, baseline: PathLike | Sequence[PathLike] | None = None,
                 fail_on_drop: float = 0.0, warn_only: bool = False) -> None:
        super().__init__()
        self.every_n_epochs = None if every_n_epochs is None else \
            check_positive_int(every_n_epochs, "every_n_epochs", minimum=0)
        self.gate = DropGate(baseline, fail_on_drop, warn_only)
        self.run_dir = Path(run_dir)
        self.log_per_class = log_per_class
        self._classes, self.seed = classes, seed
        self._seed = seed  # this run's: the one given, else seed_everything's (at setup)
        # one recorder per stage and dataloader (index), for the epoch under way
        self._recorders: dict[str, dict[int, PredictionRecorder]] = {"val": {}, "test": {}}
        self._active = {"val": False, "test": False}  # recording this evaluation epoch
        self._writing = False  # this validation epoch's file is due
        self._last: list[tuple[Path, PredictionRecorder]] = []  # to write when fit ends
        self._gather = False  # more than one device
        self._hook: Any = None  # the forward hook, during evaluation epochs
        self._calls: list[Any] = []  # what the module returned in this batch
        self.comparison: Any = None  # the gate's Comparison, after the test epoch

    # -- batches ------------------------------------------------------------------------------
    def _start(self, stage: str, pl_module: Any, active: bool) -> None:
        """Begin an evaluation epoch: what to record, and the hook that sees ``self(x)``."""
        self._recorders[stage] = {}
        self._active[stage] = active
        self._calls = []
        if active and self._hook is None:
            self._hook = pl_module.register_forward_hook(self._seen)

    def _seen(self, module: Any, inputs: Any, output: Any) -> None:
        self._calls.append(output)

    def _record(self, stage: str, loader: int, pl_module: Any, outputs: Any, batch: Any,
                ) -> None:
        logits, targets, ids = _split(outputs, batch)
        calls, self._calls = self._calls, []
        if logits is None:
            if len(calls) == 1 and isinstance(calls[0], torch.Tensor) and calls[0].ndim == 2 \
                    and len(calls[0]) == len(targets):
                logits = calls[0]
            elif isinstance(batch, Sequence) and len(batch) > 1:
                with torch.no_grad():
                    logits = pl_module(batch[0])
                self._calls = []
            else:
                raise ClassgapError("PredictionWriter could not find the logits: return "
                                    "{'logits': ..., 'targets': ...} from the step")
        logits, targets = logits.detach(), targets.detach()
        if self._gather:  # (devices, N, K) from every device
            logits = pl_module.all_gather(logits).flatten(0, 1)
            targets = pl_module.all_gather(targets).flatten(0, 1)
            if ids is not None:
                ids = pl_module.all_gather(torch.as_tensor(ids)).flatten(0, 1)
        recorders = self._recorders[stage]
        if loader not in recorders:
            recorders[loader] = PredictionRecorder(self._classes, self._seed)
        recorders[loader].update(logits, targets, ids)

    def _end(self, stage: str) -> None:
        self._active[stage] = False
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._calls = []

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._gather = trainer.world_size > 1
        self._seed = self.seed if self.seed is not None else _global_seed()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._end("val")  # the module keeps no hook of ours after a failed or stopped run
        self._end("test")
        try:  # the last completed validation epoch is not lost with the run
            self._write_last()
        except Exception as exc:  # the run's own error is the one to raise
            warnings.warn(f"PredictionWriter could not write the last validation epoch's "
                          f"predictions: {exc}", RuntimeWarning, stacklevel=2)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._write_last()

    def _write_last(self) -> None:
        last, self._last = self._last, []
        for path, recorder in last:
            recorder.write(path, drop_repeated_ids=self._gather)

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        n = self.every_n_epochs
        writing = n is None or (n > 0 and (trainer.current_epoch + 1) % n == 0)
        self._writing = writing and not trainer.sanity_checking
        self._start("val", pl_module, not trainer.sanity_checking
                    and (self._writing or self.log_per_class))

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._active["val"]:
            self._record("val", dataloader_idx, pl_module, outputs, batch)

    def on_test_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start("test", pl_module, True)

    def on_test_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._record("test", dataloader_idx, pl_module, outputs, batch)

    # -- epochs -------------------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        active = self._active["val"]
        self._end("val")
        if not active or not trainer.is_global_zero:
            return
        last: list[tuple[Path, PredictionRecorder]] = []
        metrics: dict[str, float] = {}
        for name, recorder in self._named("val"):
            if self.log_per_class:
                logits, targets, _ = recorder.arrays()
                metrics.update(per_class_accuracy(logits, targets, recorder.classes,
                                                  f"{name}_class_acc"))
            if self._writing:
                path = self.run_dir / f"{name}_epoch{trainer.current_epoch}.npz"
                if self.every_n_epochs is None and trainer.state.fn == "fit":
                    last.append((path, recorder))  # replaces the previous epoch's
                else:  # every n epochs, or a trainer.validate of its own
                    recorder.write(path, drop_repeated_ids=self._gather)
        if metrics:
            # Each logger's own API, once an epoch, as Lightning's LearningRateMonitor does:
            # ``pl_module.log_dict`` of these 3 K values took about as long as the epoch
            # itself on digits (~24 ms an epoch). The step and the epoch are those Lightning
            # gives its own validation metrics: the step counts the batches that stepped the
            # optimizers, which ``global_step`` does not when a batch steps two of them.
            metrics["epoch"] = trainer.current_epoch
            step = trainer.fit_loop.epoch_loop._batches_that_stepped
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
        if last:
            self._last = last

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._end("test")
        if not trainer.is_global_zero:
            return
        paths = [recorder.write(self.run_dir / f"{name}.npz", drop_repeated_ids=self._gather)
                 for name, recorder in self._named("test")]
        if paths:  # the gate's baseline is one test set: the first loader's
            self.comparison = self.gate(paths[0])

    def _named(self, stage: str) -> list[tuple[str, PredictionRecorder]]:
        """This epoch's recorders by file stem: ``val`` / ``test`` for one dataloader,
        ``val_dl{i}`` / ``test_dl{i}`` for each of several."""
        recorders = sorted(self._recorders[stage].items())
        if len(recorders) == 1 and recorders[0][0] == 0:
            return [(stage, recorders[0][1])]
        return [(f"{stage}_dl{i}", recorder) for i, recorder in recorders]
