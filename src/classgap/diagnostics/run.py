"""Hessian diagnostics of a saved run directory (:mod:`classgap.train.rundir`).

:func:`load_run` rebuilds exactly what the trained model saw, from the run's files alone:

* the model: :func:`~classgap.models.create_model` with the saved ``config.json`` and the
  split's class count and image shape, then ``model.pt`` (written only with
  ``train.checkpoint=true``), loaded with ``torch.load(..., weights_only=True)``, which
  refuses anything but tensors: a run directory is data, never code to unpickle;
* the data: :func:`~classgap.data.loader.make_splits` on the saved config (the same
  validation split, long-tail subsample and training subset, all seeded by
  ``data.split_seed``), kept as uint8;
* the preprocessing: :class:`Normalize`, the arithmetic of
  :class:`~classgap.data.loader.DeviceLoader` (scale to [0, 1], then per-channel mean/std of
  the *training* split, whatever split is analysed).

Not reproduced, on purpose: training augmentation (crops, flips, mixup; the Hessian is of the
loss on the clean images, as at evaluation) and bf16 autocast (double backpropagation in bf16
keeps two or three significant digits; the Hessian is taken in the parameters' float32).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from classgap._validation import check_choice, check_positive_int, fail
from classgap.diagnostics.perclass import HessianResult, overall_hessian, per_class_hessian
from classgap.errors import InputError

__all__ = ["SPLITS", "LoadedRun", "Normalize", "hessian_for_run", "load_run"]

SPLITS = ("train", "val", "test")


class Normalize:
    """``(x / 255 - mean) / std`` per channel on uint8 batches ``(B, C, H, W)``, in float32.

    The same operations, in the same order and dtype, as
    :meth:`~classgap.data.loader.DeviceLoader.epoch`, so the inputs are bitwise those the
    trainer fed (before augmentation).

    Parameters
    ----------
    mean, std : array of float, shape (C,)
        Training-split channel statistics (:func:`~classgap.data.loader.channel_stats`).
    """

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = torch.as_tensor(np.asarray(mean, np.float32)).view(1, -1, 1, 1)
        self.std = torch.as_tensor(np.asarray(std, np.float32)).view(1, -1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        x = x.float().div_(255.0)  # (B, C, H, W) in [0, 1]
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """A trained model and one of its data splits, ready for diagnostics.

    Attributes
    ----------
    config : Config
        The run's resolved configuration.
    model : ClassifierModel
        In eval mode, float32, on the requested device.
    images : np.ndarray of uint8, shape (N, C, H, W)
        The split, raw; feed ``transform(images)`` to the model.
    labels : np.ndarray of int64, shape (N,)
    classes : tuple of str
        Class names, ``classes[k]`` for label k.
    transform : Normalize
    split : str
    """

    config: Any
    model: nn.Module
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    transform: Normalize
    split: str


def load_run(run_dir: str | os.PathLike[str], *, split: str = "train",
             device: torch.device | str = "cpu", data_dir: str | None = None) -> LoadedRun:
    """Rebuild a run's model from ``model.pt`` and load one of its splits as it was trained.

    Parameters
    ----------
    run_dir : path
        Written by :func:`classgap.train.train` with ``train.checkpoint=true``.
    split : {"train", "val", "test"}
    device : torch.device or str
        Where the model goes; ``"auto"`` picks CUDA when available.
    data_dir : str, optional
        Replaces the saved ``data.data_dir`` (the run was copied from another machine); the
        split itself is unchanged.

    Returns
    -------
    LoadedRun

    Raises
    ------
    InputError
        ``run_dir`` has no ``config.json`` or no ``model.pt``, or the run has no such split.
    DataFormatError
        An unreadable ``config.json`` / ``model.pt``, or weights that do not fit the model.
    """
    from classgap.data.loader import channel_stats, make_splits
    from classgap.train.rundir import load_model, read_run_config
    from classgap.train.trainer import resolve_device

    run = Path(run_dir)
    check_choice(split, "split", SPLITS)
    config = read_run_config(run)
    if not (run / "model.pt").is_file():
        raise InputError(f"'run_dir' must hold model.pt (train the run with --set "
                         f"train.checkpoint=true); got {str(run)!r}")
    if data_dir is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data,
                                                                      data_dir=data_dir))
    where = resolve_device(str(device)) if isinstance(device, str) else torch.device(device)

    splits = make_splits(config)
    chosen = getattr(splits, split)
    if chosen is None:
        raise fail("split", "name a split the run has (it has no validation set: "
                   "data.val_size=0)", split)
    mean, std = channel_stats(splits.train.images)  # training statistics normalise all splits
    model = load_model(run, config, image_shape=splits.train.image_shape,
                       n_classes=splits.train.n_classes).to(where)
    return LoadedRun(config, model, chosen.images, chosen.labels, tuple(chosen.classes),
                     Normalize(mean, std), split)


def hessian_for_run(run_dir: str | os.PathLike[str], *, split: str = "train",
                    per_class: bool = True, max_per_class: int = 512,
                    device: torch.device | str = "auto", data_dir: str | None = None,
                    progress: bool = False, **options: Any) -> HessianResult:
    """Hessian diagnostics of a saved run on one of its splits.

    Parameters
    ----------
    run_dir : path
        A run directory with ``model.pt`` (:func:`load_run`).
    split : {"train", "val", "test"}
        Default the training split: the loss landscape the optimizer saw.
    per_class : bool
        One row per class (:func:`~classgap.diagnostics.per_class_hessian`); otherwise one
        row for the pooled loss (:func:`~classgap.diagnostics.overall_hessian`) over a
        uniform subsample of ``max_per_class × K`` samples (the same budget).
    max_per_class : int
        Samples per class, a seeded subsample.
    device : torch.device or str
        ``"auto"``: CUDA when available, else CPU.
    data_dir : str, optional
        Where the dataset files are now (:func:`load_run`).
    progress : bool
        A bar over the classes.
    **options
        Passed on: ``batch_size``, ``k``, ``lanczos_steps``, ``tol``, ``trace_samples``,
        ``density``, ``density_steps``, ``density_vectors``, ``grid``, ``sigma``,
        ``label_smoothing``, ``seed`` (see :func:`~classgap.diagnostics.per_class_hessian`).

    Returns
    -------
    HessianResult
        ``settings`` also records ``run_dir`` and ``split``.
    """
    max_per_class = check_positive_int(max_per_class, "max_per_class")
    allowed = {"batch_size", "k", "lanczos_steps", "tol", "trace_samples", "density",
               "density_steps", "density_vectors", "grid", "sigma", "label_smoothing", "seed"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InputError(f"hessian_for_run takes {', '.join(sorted(allowed))}; got unknown "
                         f"option(s) {', '.join(map(repr, unknown))}")
    loaded = load_run(run_dir, split=split, device=device, data_dir=data_dir)
    if per_class:
        result = per_class_hessian(loaded.model, loaded.images, loaded.labels,
                                   class_names=loaded.classes, transform=loaded.transform,
                                   max_per_class=max_per_class, progress=progress, **options)
    else:
        result = overall_hessian(loaded.model, loaded.images, loaded.labels,
                                 transform=loaded.transform,
                                 max_samples=max_per_class * len(loaded.classes),
                                 progress=progress, **options)
    settings = {**result.settings, "run_dir": str(run_dir), "split": split}
    return dataclasses.replace(result, settings=settings)
