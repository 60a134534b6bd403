"""Record a training loop's predictions, write classgap prediction files, gate on drops.

>>> import torch
>>> rec = PredictionRecorder(classes=["cat", "dog"], seed=0)
>>> rec.update(torch.tensor([[2.0, 0.1], [0.3, 1.0]]), torch.tensor([0, 0]))
>>> len(rec), rec.accuracy()
(2, 0.5)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classgap._validation import check_in_range, check_positive_int, fail
from classgap.errors import DropGateError

__all__ = ["DropGate", "PredictionRecorder", "check_drops", "per_class_accuracy"]

PathLike = str | os.PathLike[str]


def _numpy(x: Any) -> np.ndarray:
    """A kept batch (a tensor on any device, of any dtype, or an array) as a numpy array."""
    if isinstance(x, torch.Tensor):
        if x.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def _kept(x: Any, name: str) -> Any:
    """A batch's field, safe to keep: a tensor detached and cloned on its device, or an
    array copied (the caller may reuse its buffer)."""
    if hasattr(x, "detach"):
        return x.detach().clone()
    arr = np.array(x)
    if arr.dtype == object:
        raise fail(name, "be a tensor or an array of numbers", type(x).__name__)
    return arr


def _joined(parts: list[Any]) -> np.ndarray:
    """The batches of one field as one numpy array (tensors joined on their device first)."""
    if all(isinstance(p, torch.Tensor) for p in parts) and \
            len({(p.device, p.dtype) for p in parts}) == 1:
        return _numpy(torch.cat(parts))
    return np.concatenate([_numpy(p) for p in parts])


class PredictionRecorder:
    """Collects ``(logits, targets)`` batch by batch; :meth:`write` saves a prediction file.

    Parameters
    ----------
    classes : sequence of str, optional
        Class names, in index order (written into the file).
    seed : int, optional
        The run's seed (written into the file; ``classgap audit`` groups runs by it).
    device_memory : int
        Bytes of accelerator memory the recorded batches may hold (default 256 MiB). Within
        it, batches stay on their device until read, with no copy to the host and no wait
        for the device per batch; beyond it, each further batch is copied to the host as it
        comes (a 100,000-sample, 10,000-class evaluation is 4 GB of logits).

    Notes
    -----
    Only hard-label targets: give the class indices, not mixed or smoothed targets. Shapes are
    checked at each :meth:`update`; values (finite logits) when the batches are read
    (:meth:`arrays`, :meth:`write`). Logits take about ``4 K`` bytes a sample.
    """

    def __init__(self, classes: Sequence[str] | None = None, seed: int | None = None, *,
                 device_memory: int = 256 * 2**20) -> None:
        self.classes = None if classes is None else [str(c) for c in classes]
        self.seed = seed
        self.device_memory = check_positive_int(device_memory, "device_memory", minimum=0)
        self.reset()

    def reset(self) -> None:
        """Forget every recorded batch (call at the start of each evaluation)."""
        self._logits: list[Any] = []
        self._targets: list[Any] = []
        self._ids: list[Any] = []
        self._count = 0
        self._on_device = 0  # bytes of the kept batches that are on an accelerator
        self._read: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None

    def update(self, logits: Any, targets: Any, sample_ids: Any = None) -> None:
        """Record one batch: ``logits`` (N, K), ``targets`` (N,) class indices and, optionally,
        ``sample_ids`` (N,) that identify each test sample across runs."""
        z, y = self._keep(logits, "logits"), self._keep(targets, "targets")
        if z.ndim != 2:
            raise fail("logits", "have shape (N, K)", f"shape {tuple(z.shape)}")
        if tuple(y.shape) != (z.shape[0],):
            raise fail("targets", f"be class indices of shape ({z.shape[0]},) (one per row of "
                       "logits)", f"shape {tuple(y.shape)}")
        if self._logits and z.shape[1] != self._logits[0].shape[1]:
            raise fail("logits", f"keep {self._logits[0].shape[1]} columns (classes) from batch "
                       "to batch", f"{z.shape[1]} columns")
        if self.classes is not None and z.shape[1] != len(self.classes):
            raise fail("logits", f"have one column per class name ({len(self.classes)})",
                       f"{z.shape[1]} columns")
        if sample_ids is not None:
            ids = self._keep(sample_ids, "sample_ids")
            if tuple(ids.shape) != tuple(y.shape):
                raise fail("sample_ids", f"have shape ({len(y)},)", f"shape {tuple(ids.shape)}")
            if len(self._ids) != len(self._logits):
                raise fail("sample_ids", "be given for every batch or for none", None)
            self._ids.append(ids)
        elif self._ids:
            raise fail("sample_ids", "be given for every batch or for none", None)
        self._logits.append(z)
        self._targets.append(y)
        self._count += len(y)
        self._read = None

    def _keep(self, x: Any, name: str) -> Any:
        """A batch's field as kept: on its device within ``device_memory``, else on the host."""
        kept = _kept(x, name)
        if isinstance(kept, torch.Tensor) and kept.device.type != "cpu":
            nbytes = kept.element_size() * kept.nelement()
            if self._on_device + nbytes > self.device_memory:
                return kept.cpu()
            self._on_device += nbytes
        return kept

    def __len__(self) -> int:
        return self._count

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(logits (N, K) float32, targets (N,) int64, sample_ids (N,) or None)`` of every
        recorded batch."""
        if not self._targets:
            raise fail("recorder", "hold at least one batch (call update first)", "empty")
        if self._read is not None:
            return self._read
        z = _joined(self._logits).astype(np.float32, copy=False)
        if not np.isfinite(z).all():
            rows = np.flatnonzero(~np.isfinite(z).all(axis=1))
            raise fail("logits", "be finite", f"NaN or inf in {len(rows)} row(s), the first at "
                       f"row {rows[0]} of the recorded batches")
        y = _joined(self._targets).astype(np.int64, copy=False)
        ids = _joined(self._ids) if self._ids else None
        self._read = (z, y, ids)
        return self._read

    def accuracy(self) -> float:
        """Top-1 accuracy of what was recorded."""
        z, y, _ = self.arrays()
        return float((z.argmax(axis=1) == y).mean())

    def write(self, path: PathLike, *, drop_repeated_ids: bool = False) -> Path:
        """Write a classgap prediction file (``.npz``, ``.csv``, ``.parquet`` or ``.pt``)
        atomically, creating its directory; ``classgap audit PATH`` reads it.

        With ``drop_repeated_ids``, a sample id seen again keeps only its first row: the
        repeats a distributed sampler pads the last batches with (without it, repeated ids are
        an error when the file is read).
        """
        from classgap.audit.io import write_predictions

        z, y, ids = self.arrays()
        if drop_repeated_ids and ids is not None:
            _, first = np.unique(ids, return_index=True)
            keep = np.sort(first)
            z, y, ids = z[keep], y[keep], ids[keep]
        parent = Path(path).parent
        if not parent.is_dir():
            parent.mkdir(parents=True, exist_ok=True)
        return write_predictions(path, y_true=y, logits=z, sample_id=ids, seed=self.seed,
                                 classes=self.classes)


def per_class_accuracy(logits: np.ndarray, targets: np.ndarray, classes: Sequence[str] | None,
                       prefix: str) -> dict[str, float]:
    """Each present class's accuracy and its 95% Wilson interval, as logger metrics.

    Keys ``{prefix}/{name}``, ``{prefix}/{name}_low`` and ``{prefix}/{name}_high``; classes
    with no sample are left out.

    >>> per_class_accuracy(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 0]), ["a", "b"],
    ...                    "acc")["acc/a"]
    0.5
    """
    from classgap.audit.intervals import wilson_interval
    from classgap.audit.perclass import class_counts

    k = logits.shape[1]
    support, correct = class_counts(targets, logits.argmax(1), k)
    low, high = wilson_interval(correct, support)
    names = classes or [str(c) for c in range(k)]
    out: dict[str, float] = {}
    for c in np.flatnonzero(support).tolist():
        out[f"{prefix}/{names[c]}"] = float(correct[c] / support[c])
        out[f"{prefix}/{names[c]}_low"] = float(low[c])
        out[f"{prefix}/{names[c]}_high"] = float(high[c])
    return out


def check_drops(baseline: Sequence[PathLike] | PathLike, candidate: Sequence[PathLike] | PathLike,
                *, fail_on_drop: float = 0.0, alpha: float = 0.05, warn_only: bool = False,
                ) -> Any:
    """``classgap compare --fail-on-drop``: raise when a class drops significantly.

    Compares the ``candidate`` prediction files (this run; several = seeds) with the
    ``baseline`` ones on the same test set, per class, with the CLI's tests and BH q-values.

    Returns
    -------
    Comparison
        When no class drops significantly by more than ``fail_on_drop`` points.

    Raises
    ------
    DropGateError
        Naming each class that drops, with its change in points (a warning instead with
        ``warn_only``, and the comparison is returned).
    """
    from classgap.audit.api import compare_files

    check_in_range(fail_on_drop, "fail_on_drop", 0.0, 100.0)
    files = [Path(baseline)] if isinstance(baseline, str | os.PathLike) else \
        [Path(p) for p in baseline]
    mine = [Path(candidate)] if isinstance(candidate, str | os.PathLike) else \
        [Path(p) for p in candidate]
    result = compare_files(files, mine, alpha=alpha)
    drops = result.drops(min_points=fail_on_drop)
    if len(drops):
        names = ", ".join(f"{c} ({100 * d:+.1f} pts, q = {q:.2g})" for c, d, q in
                          zip(drops["class"], drops["delta"], drops["q_value"], strict=True))
        message = (f"{len(drops)} class(es) dropped significantly by more than "
                   f"{fail_on_drop:g} points against the baseline: {names}")
        if not warn_only:
            raise DropGateError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return result


@dataclass(frozen=True)
class DropGate:
    """The callbacks' gate: :func:`check_drops` of their test file against ``baseline``.

    Checked when built, so a bad threshold fails before training, not after it.

    >>> DropGate()("test.npz") is None  # no baseline: no gate
    True
    """

    baseline: PathLike | Sequence[PathLike] | None = None
    fail_on_drop: float = 0.0
    warn_only: bool = False

    def __post_init__(self) -> None:
        check_in_range(self.fail_on_drop, "fail_on_drop", 0.0, 100.0)

    def __call__(self, candidate: PathLike) -> Any:
        """The comparison with the baseline (None without one); raises
        :class:`~classgap.errors.DropGateError` as :func:`check_drops` does."""
        if self.baseline is None:
            return None
        return check_drops(self.baseline, candidate, fail_on_drop=self.fail_on_drop,
                           warn_only=self.warn_only)
