"""Transfer (spec step 8): each run's frozen backbone, a linear probe on a downstream dataset.

:func:`transfer_study` reads every finished run of a :class:`~classgap.sweep.Store` that left a
``model.pt`` (the study sets ``train.checkpoint=true`` when transfer is asked), rebuilds the
model from the run's ``config.json``, freezes it, and fits one linear probe per run on its
penultimate features; the probes' predictions are analysed exactly like the source task
(:func:`~classgap.study.analyze`), so the downstream classes get the same "who pays" table.

Choices (the report states them through ``StudyResult.meta``):

* **Downstream splits.** The downstream ``"train"`` split is divided once, stratified and
  seeded by ``random_state`` (the same division for every run, so all runs share the truth
  :func:`analyze` needs), into a probe-training part and a validation part of
  :data:`VAL_FRACTION`. The probe is fitted on the first part only (its ``C`` chosen inside it,
  see :func:`~classgap.study.linear_probe`); its predictions on the validation part select the
  downstream strength and its predictions on the downstream ``"test"`` split are audited.
  Datasets with a single split (``npz:``, ``folder:``) first lose a stratified
  :data:`TEST_FRACTION` as their test split (same seed).
* **Image size.** Downstream images are resized to the source image size (or ``image_size``)
  with bilinear interpolation (``antialias=True``, so shrinking does not alias; enlarging
  8×8 digits to 28×28 is plain bilinear), rounded back to uint8.
* **Channels.** One channel is repeated to match an RGB backbone; RGB is averaged to one
  channel for a grayscale backbone; any other mismatch is an error.
* **Normalisation.** With the *source* training statistics, i.e. the mean and std the backbone
  saw during training: recomputed with :func:`~classgap.data.loader.channel_stats` on the
  source training split rebuilt by :func:`~classgap.data.loader.make_splits` from the run's
  config (deterministic, so identical to what :func:`classgap.train.train` used). Normalising
  with downstream statistics would shift the inputs the frozen features were learned on.

The class-aware refit (spec step 9) lives in :mod:`classgap.study.refit`; :func:`refit_study`
is re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from classgap.audit import Predictions
from classgap.data import Dataset, load_dataset, stratified_split
from classgap.data.loader import channel_stats, make_splits
from classgap.data.registry import SPLITS
from classgap.errors import ConfigError, InputError
from classgap.study.analysis import RunRecord, analyze
from classgap.study.refit import axis_value, refit_study
from classgap.study.result import StudyResult
from classgap.study.transfer import extract_features, linear_probe
from classgap.sweep import RunSpec, Store

__all__ = ["TEST_FRACTION", "VAL_FRACTION", "downstream_splits", "match_images",
           "refit_study", "transfer_study"]

VAL_FRACTION = 0.2  # of the downstream train split: the probe's validation part
TEST_FRACTION = 0.25  # of a single-split dataset (npz:, folder:): its test part


def downstream_splits(spec: str, *, random_state: int = 0
                      ) -> tuple[Dataset, Dataset, Dataset]:
    """The downstream ``(probe_train, val, test)`` datasets (see the module docstring).

    Parameters
    ----------
    spec : str
        A :func:`~classgap.data.load_dataset` spec.
    random_state : int
        Seed of the stratified divisions (fixed across runs).
    """
    name = spec.partition(":")[0] if isinstance(spec, str) else spec
    if "test" in SPLITS.get(name, ("train", "test")):
        full, test = load_dataset(spec, split="train"), load_dataset(spec, split="test")
    else:  # one split only: hold out a stratified test part ourselves
        everything = load_dataset(spec, split="all")
        tr, te = stratified_split(everything.labels, TEST_FRACTION, random_state=random_state)
        full, test = everything.subset(tr), everything.subset(te)
    tr, va = stratified_split(full.labels, VAL_FRACTION, random_state=random_state)
    return full.subset(tr), full.subset(va), test


def match_images(images: np.ndarray, channels: int, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` images with ``channels`` channels at ``size`` (bilinear).

    Examples
    --------
    >>> x = np.zeros((2, 1, 8, 8), np.uint8)
    >>> match_images(x, 3, (28, 28)).shape
    (2, 3, 28, 28)
    """
    x = torch.as_tensor(np.asarray(images)).float()  # (N, C, H, W) in [0, 255]
    c = x.shape[1]
    if c != channels:
        if c == 1:  # grayscale into an RGB backbone: the same intensity on every channel
            x = x.repeat(1, channels, 1, 1)
        elif channels == 1:  # RGB into a grayscale backbone: the plain channel mean
            x = x.mean(dim=1, keepdim=True)
        else:
            raise InputError(f"cannot match the downstream images' {c} channels to the "
                             f"backbone's {channels} (only 1 <-> C is supported)")
    if tuple(x.shape[2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def _size(image_size: Any, source: tuple[int, int]) -> tuple[int, int]:
    if image_size is None:
        return source
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        return (image_size, image_size)
    if (isinstance(image_size, Sequence) and len(image_size) == 2
            and all(isinstance(v, int) and v > 0 for v in image_size)):
        return (int(image_size[0]), int(image_size[1]))
    raise InputError(f"'image_size' must be None, an int or (H, W); got {image_size!r}")


class _Source:
    """Per data config: the source training split's shape, class count and statistics.

    Cached because every run of a sweep usually shares ``config.data``, and loading and
    splitting the source dataset again per run would dominate the probe's cost.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, int, int], int, np.ndarray, np.ndarray]] = {}

    def __call__(self, config: Any) -> tuple[tuple[int, int, int], int, np.ndarray, np.ndarray]:
        key = json.dumps(config.to_dict()["data"], sort_keys=True)
        if key not in self._cache:
            train = make_splits(config).train
            mean, std = channel_stats(train.images)
            self._cache[key] = (train.image_shape, train.n_classes, mean, std)
        return self._cache[key]


def _load_backbone(config: Any, path: Path, shape: tuple[int, int, int],
                   n_classes: int) -> torch.nn.Module:
    from classgap.models import create_model

    c, h, w = shape
    model = create_model(config.model.name, num_classes=n_classes, in_channels=c,
                         image_size=(h, w), head=config.model.head,
                         dropout=config.model.dropout)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    for p in model.parameters():  # frozen: the probe is the only thing fitted downstream
        p.requires_grad_(False)
    return model


def transfer_study(store: Store, *, axis: str, reference: Any, downstream: str = "digits",
                   image_size: Any = None, random_state: int = 0,
                   **analyze_kwargs: Any) -> StudyResult:
    """One frozen backbone per finished run, a linear probe downstream, analysed per class.

    Parameters
    ----------
    store : Store
        The source study; its done runs with a ``model.pt`` are used (others are skipped).
    axis : str
        The swept config key, e.g. ``"aug.rrc"``; a run's strength is its value on it.
    reference : Any
        The reference strength (regularizer off), as in the source study.
    downstream : str
        A :func:`~classgap.data.load_dataset` spec; default ``"digits"``.
    image_size : int or (H, W), optional
        Size the downstream images are resized to; default the source image size. An MLP
        backbone accepts only its own size.
    random_state : int
        Seeds the downstream divisions, every probe and the analysis' bootstrap.
    **analyze_kwargs
        Passed to :func:`~classgap.study.analyze` (``alpha``, ``max_drop``, ...).

    Returns
    -------
    StudyResult
        On the downstream classes; ``meta`` adds ``dataset``, ``source_dataset``,
        ``image_size``, ``normalisation``, ``probe_val_fraction`` and ``runs``.

    Raises
    ------
    ConfigError
        No finished run has a ``model.pt`` (train with ``train.checkpoint=true``).
    InputError
        The downstream images cannot be matched to a backbone's input.
    """
    runs: list[tuple[RunSpec, Path]] = [(s, d) for s, d in store.done_runs()
                                        if (d / "model.pt").is_file()]
    if not runs:
        raise ConfigError("transfer needs finished runs with a saved backbone (model.pt); "
                          "none found: train the study with train.checkpoint=true")
    probe_train, val, test = downstream_splits(downstream, random_state=random_state)
    source = _Source()
    records: list[RunRecord] = []
    size: tuple[int, int] | None = None
    for spec, run_dir in runs:
        shape, n_classes, mean, std = source(spec.config)
        size = _size(image_size, shape[1:])
        model = _load_backbone(spec.config, run_dir / "model.pt", shape, n_classes)
        feats = []
        for ds in (probe_train, val, test):
            images = match_images(ds.images, shape[0], size)
            try:
                feats.append(extract_features(model, images, mean, std))
            except RuntimeError as exc:  # e.g. an MLP fed another size than it was built for
                raise InputError(f"run {spec.run_id} ({spec.config.model.name}) cannot take "
                                 f"downstream images of shape {images.shape[1:]}: {exc}"
                                 ) from exc
        # One fit on the probe-training part; val and test are scored together (the probe
        # never sees their labels, so this equals two separate predictions).
        logits = linear_probe(feats[0], probe_train.labels, np.concatenate(feats[1:]),
                              np.concatenate([val.labels, test.labels]),
                              random_state=random_state)
        n_val = len(val)
        preds = [Predictions.from_arrays(ds.labels, logits=part, seed=spec.seed,
                                         classes=ds.classes, sample_id=np.arange(len(ds)))
                 for ds, part in ((val, logits[:n_val]), (test, logits[n_val:]))]
        records.append(RunRecord(point=dict(spec.point), strength=axis_value(spec, axis),
                                 seed=spec.seed, val=preds[0], test=preds[1]))
    result = analyze(records, axis=axis, reference=reference, random_state=random_state,
                     **analyze_kwargs)
    meta = {**result.meta, "dataset": downstream,
            "source_dataset": runs[0][0].config.data.dataset,
            "image_size": list(size) if size else None,
            "normalisation": "source training split mean/std (channel_stats)",
            "probe_val_fraction": VAL_FRACTION, "runs": len(records)}
    return dataclasses.replace(result, meta=meta)
