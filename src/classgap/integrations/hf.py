"""A Hugging Face ``Trainer`` callback that leaves classgap prediction files, logs, gates.

>>> from classgap.integrations.hf import PredictionWriterCallback  # doctest: +SKIP
>>> writer = PredictionWriterCallback("runs/mine")
>>> trainer = Trainer(model, args, train_dataset=train, eval_dataset=val,
...                   callbacks=[writer], compute_metrics=writer.compute_metrics)

The ``Trainer`` hands evaluation predictions to ``compute_metrics`` only (callbacks see the
metrics, not the logits), so the callback needs both places: ``compute_metrics`` keeps the
labels and logits of each evaluation, gathered across processes by the ``Trainer`` itself, and
the callback writes them when the evaluation ends. Your own ``compute_metrics`` goes in
``metrics=``; its values are returned alongside.

Files, in ``run_dir``:

- ``val_epoch{E}.npz`` for the last evaluation of ``trainer.train()``, written when training
  ends; with ``every_n_epochs`` every n-th evaluation instead, as each ends. The ``Trainer``
  tells callbacks nothing of a ``train()`` that raises, so that one leaves no validation file.
  Files are named by epoch with ``eval_strategy="epoch"``, numbered as the ``Trainer`` numbers
  the ``epoch`` it logs with the evaluation (1 after the first epoch; Lightning's callback
  follows Lightning's numbering, from 0), and ``val_step{S}.npz`` (the global step)
  otherwise; ``val_<name>_epoch{E}.npz`` for each of several datasets,
  ``eval_dataset={"<name>": ...}``. An ``evaluate`` outside training writes its file at once;
- ``test.npz`` after ``trainer.predict(test_set)`` or
  ``trainer.evaluate(test_set, metric_key_prefix="test")`` (``test_<name>.npz`` with
  ``metric_key_prefix="test_<name>"``). A ``predict`` on unlabelled data (inference) writes
  nothing and warns; an ``evaluate`` without predictions is an error, since it means
  ``compute_metrics`` was not passed.

Class names come from ``model.config.id2label`` unless ``classes`` is given, and the seed from
``TrainingArguments.seed`` unless ``seed`` is. With ``log_per_class`` each class's accuracy and
its Wilson interval join the evaluation's metrics (``eval_class_acc/<name>``, ``..._low``,
``..._high``), so the ``Trainer`` logs them to every ``report_to`` integration. With
``baseline`` the test predictions are compared as ``classgap compare --fail-on-drop`` does,
raising :class:`~classgap.errors.DropGateError` naming the classes that drop (or warning,
``warn_only=True``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classgap._validation import check_positive_int
from classgap.errors import ClassgapError
from classgap.integrations.recorder import DropGate, PredictionRecorder, per_class_accuracy

try:
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover - depends on what is installed
    raise ClassgapError("classgap.integrations.hf needs transformers, which is not installed: "
                        "pip install 'classgap[hf]'") from None

__all__ = ["PredictionWriterCallback"]

PathLike = str | os.PathLike[str]
Metrics = Callable[[Any], Mapping[str, float]]


def _logits_and_labels(eval_pred: Any) -> tuple[Any, Any]:
    """The (N, K) logits and (N,) labels of an ``EvalPrediction``, or one clear error."""
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple | list):  # (logits, hidden states, ...): logits come first
        logits = logits[0]
    if labels is None or isinstance(labels, tuple | list):
        raise ClassgapError("PredictionWriterCallback needs one label per sample: the dataset "
                            "must have a 'labels' column (class indices); got "
                            f"{'none' if labels is None else f'{len(labels)} label fields'}")
    if np.ndim(logits) != 2:
        raise ClassgapError("PredictionWriterCallback needs logits of shape (N, K); got shape "
                            f"{np.shape(logits)} (a preprocess_logits_for_metrics that takes "
                            "the argmax leaves no logits to audit)")
    return logits, labels


def _prefix(metrics: Mapping[str, float] | None) -> str:
    """An evaluation's ``metric_key_prefix``: the Trainer reports ``{prefix}_runtime`` for
    every one (``eval``, ``eval_<name>`` for each of several eval datasets, ``test``)."""
    for key in metrics or {}:
        if key.endswith("_runtime"):
            return key.removesuffix("_runtime")
    return "eval"  # as the Trainer's evaluate() names its metrics by default


class PredictionWriterCallback(TrainerCallback):
    """Write classgap prediction files from a ``transformers.Trainer``'s evaluations.

    Parameters
    ----------
    run_dir : path
        Where the files go (created when missing).
    every_n_epochs : int, optional
        Write every this many evaluations' predictions, as each ends (with
        ``eval_strategy="epoch"``, every this many epochs; 0: never). By default only the last
        evaluation's are written, when training ends: one validation file per run (per eval
        dataset), however many epochs. Test predictions are always written.
    classes : sequence of str, optional
        Class names in index order (default: the model's ``config.id2label``).
    seed : int, optional
        The run's seed, recorded in the files (default: ``TrainingArguments.seed``).
    log_per_class : bool
        Add per-class accuracy with its 95% Wilson interval to the evaluation metrics.
    baseline : path or sequence of paths, optional
        Prediction files of a baseline on the same test set: after the test predictions, fail
        (or warn) when a class drops significantly by more than ``fail_on_drop`` points.
    fail_on_drop : float
        The gate's threshold in points.
    warn_only : bool
        Warn instead of raising when the gate fails.
    metrics : callable, optional
        Your own ``compute_metrics``; what it returns is returned with the per-class values.
    """

    def __init__(self, run_dir: PathLike, *, every_n_epochs: int | None = None,
                 classes: Sequence[str] | None = None, seed: int | None = None,
                 log_per_class: bool = False, baseline: PathLike | Sequence[PathLike] | None = None,
                 fail_on_drop: float = 0.0, warn_only: bool = False,
                 metrics: Metrics | None = None) -> None:
        self.every_n_epochs = None if every_n_epochs is None else \
            check_positive_int(every_n_epochs, "every_n_epochs", minimum=0)
        self.gate = DropGate(baseline, fail_on_drop, warn_only)
        if metrics is not None and not callable(metrics):
            raise ClassgapError(f"'metrics' must be a compute_metrics function; got "
                                f"{type(metrics).__name__}")
        self.run_dir = Path(run_dir)
        self.log_per_class = log_per_class
        self.metrics = metrics
        self._classes = None if classes is None else [str(c) for c in classes]
        self._seed = seed
        self._pending: PredictionRecorder | None = None  # the evaluation compute_metrics saw
        self._evaluations: dict[str, int] = {}  # evaluations so far, per metric prefix
        self._training = False  # inside trainer.train()
        self._last: dict[str, tuple[Path, PredictionRecorder]] = {}  # per prefix, for the end
        self.comparison: Any = None  # the gate's Comparison, after the test predictions

    # -- the Trainer's compute_metrics -------------------------------------------------------
    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Keep this evaluation's predictions; return ``metrics``' values (and the per-class
        accuracies with ``log_per_class``). Pass it as ``Trainer(compute_metrics=...)``."""
        logits, labels = _logits_and_labels(eval_pred)
        recorder = PredictionRecorder(self._classes, self._seed)
        recorder.update(logits, labels)
        self._pending = recorder
        out = dict(self.metrics(eval_pred)) if self.metrics is not None else {}
        if self.log_per_class:
            z, y, _ = recorder.arrays()
            out.update(per_class_accuracy(z, y, recorder.classes, "class_acc"))
        return out

    # -- callback events ---------------------------------------------------------------------
    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs.get("model")
        id2label = getattr(getattr(model, "config", None), "id2label", None)
        if self._classes is None and id2label:
            self._classes = [str(id2label[i]) for i in sorted(id2label)]
        if self._seed is None:
            self._seed = args.seed

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training, self._last = True, {}  # nothing kept from a train() that raised

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        last, self._last = self._last, {}
        for path, recorder in last.values():
            recorder.write(path)

    def on_evaluate(self, args: Any, state: Any, control: Any,
                    metrics: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        recorder = self._take("evaluate")
        prefix = _prefix(metrics)
        if prefix == "test" or prefix.startswith("test_"):
            self._test(state, recorder, prefix)
            return
        self._evaluations[prefix] = self._evaluations.get(prefix, 0) + 1
        n = self.every_n_epochs
        if n == 0 or not state.is_world_process_zero:
            return
        strategy = getattr(args, "eval_strategy", None)
        by_epoch = getattr(strategy, "value", strategy) == "epoch" and state.epoch is not None
        count = round(state.epoch) if by_epoch else self._evaluations[prefix]
        dataset = prefix.removeprefix("eval").lstrip("_")  # eval_dataset={"name": ...}
        stem = f"val_{dataset}" if dataset else "val"
        when = f"epoch{count}" if by_epoch else f"step{state.global_step}"
        path = self.run_dir / f"{stem}_{when}.npz"
        if n is None and self._training:
            self._last[prefix] = (path, recorder)  # replaces the previous evaluation's
        elif n is None or count % n == 0:
            recorder.write(path)

    def on_predict(self, args: Any, state: Any, control: Any,
                   metrics: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        if self._pending is None:  # inference on unlabelled data: nothing to audit
            warnings.warn("PredictionWriterCallback wrote no test file for this predict: it "
                          "saw no labelled predictions (a dataset without 'labels', or a "
                          "Trainer without compute_metrics=writer.compute_metrics)",
                          RuntimeWarning, stacklevel=2)
            return
        self._test(state, self._take("predict"), _prefix(metrics))

    # -- helpers -----------------------------------------------------------------------------
    def _take(self, event: str) -> PredictionRecorder:
        recorder, self._pending = self._pending, None
        if recorder is None:
            raise ClassgapError(
                f"PredictionWriterCallback saw an {event} without its predictions: pass "
                "Trainer(compute_metrics=writer.compute_metrics) (your own function goes in "
                "PredictionWriterCallback(metrics=...)), and give the dataset a 'labels' column")
        return recorder

    def _test(self, state: Any, recorder: PredictionRecorder, prefix: str = "test") -> None:
        if not state.is_world_process_zero:
            return
        path = recorder.write(self.run_dir / f"{prefix}.npz")
        self.comparison = self.gate(path)
