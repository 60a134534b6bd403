"""Transfer (spec step 8): a run's frozen backbone, a linear probe on a downstream dataset.

:class:`ProbeTrainer` is a trainer in the sense of :mod:`classgap.sweep.backends`: given a probe
run of the study's store, it rebuilds the source run's model from its ``config.json`` and
``model.pt`` (the study sets ``train.checkpoint=true`` when transfer is asked), freezes it,
fits one linear probe on its penultimate features (:func:`linear_probe`) and writes the probe's
``val`` and ``test`` predictions into the probe run's directory. The pipeline analyses those
predictions exactly like the source task (:func:`~classgap.analysis.analyze`), so the
downstream classes get the same "who pays" table.

Choices (the report states them through ``StudyResult.meta``):

* **Downstream splits.** The downstream ``"train"`` split is divided once, stratified and
  seeded by ``random_state`` (the same division for every run, so all runs share the truth
  :func:`analyze` needs), into a probe-training part and a validation part of
  :data:`VAL_FRACTION`. The probe is fitted on the first part only (its ``C`` chosen inside it,
  see :func:`~classgap.analysis.linear_probe`); its predictions on the validation part select the
  downstream strength and its predictions on the downstream ``"test"`` split are audited.
  Datasets with a single split (``npz:``, ``folder:``) first lose a stratified
  :data:`TEST_FRACTION` as their test split (same seed); a folder of ``train/`` and
  ``test/`` or an npz of ``x_train`` ... ``y_test`` gives its own.
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
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from classgap._validation import check_labels, check_positive_int, fail
from classgap.audit.io import write_predictions
from classgap.data import Dataset, load_dataset, stratified_split
from classgap.data.loader import channel_stats, make_splits
from classgap.errors import InputError

__all__ = ["DEFAULT_CS", "TEST_FRACTION", "VAL_FRACTION", "ProbeTrainer", "downstream_splits",
           "extract_features", "linear_probe", "match_images", "probe_run"]

DEFAULT_CS = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strengths tried on the held-out split
HOLDOUT = 0.2  # fraction of the downstream train split used to choose C
MAX_ITER = 2000  # lbfgs on standardised features converges well before this


def _probe(c: float) -> Any:
    # Standardise first: lbfgs and one C grid only make sense on comparable feature scales.
    # lbfgs fits the multinomial (softmax) loss for K > 2 by default in scikit-learn >= 1.5.
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER))


def linear_probe(features_train: Any, y_train: Any, features_test: Any, y_test: Any, *,
                 random_state: int, Cs: Sequence[float] = DEFAULT_CS,
                 ) -> np.ndarray:
    """Fit a multinomial logistic-regression probe on frozen features; return test logits.

    ``C`` is chosen by accuracy on a stratified held-out 20 % of the training features
    (seeded by ``random_state``; ties go to the smaller C, i.e. the stronger regularisation),
    then the probe is refitted on the whole training split. ``y_test`` is only checked (it
    fixes nothing about the fit), so the test set never influences the probe.

    Parameters
    ----------
    features_train : array of float, shape (N_train, D)
    y_train : array of int, shape (N_train,)
        Every class 0..K-1 must occur (the probe needs one weight row per class).
    features_test : array of float, shape (N_test, D)
    y_test : array of int, shape (N_test,)
    random_state : int
    Cs : sequence of float

    Returns
    -------
    ndarray of float64, shape (N_test, K)
        Decision values (logits up to a per-row constant); ``argmax`` is the prediction.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(200) % 2
    >>> x = rng.normal(size=(200, 3)) + 3.0 * y[:, None]
    >>> logits = linear_probe(x[:100], y[:100], x[100:], y[100:], random_state=0)
    >>> logits.shape, float((logits.argmax(1) == y[100:]).mean()) > 0.9
    ((100, 2), True)
    """
    xtr = np.asarray(features_train, dtype=np.float64)
    xte = np.asarray(features_test, dtype=np.float64)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise fail("features_test", "be 2-D with the same number of columns as "
                   "'features_train'", f"shapes {xtr.shape} and {xte.shape}")
    if not (np.isfinite(xtr).all() and np.isfinite(xte).all()):
        raise fail("features_train", "be finite (both splits)", "NaN or inf")
    ytr = check_labels(y_train, "y_train")
    if len(ytr) != len(xtr):
        raise fail("y_train", f"have one label per training row ({len(xtr)})", len(ytr))
    k = int(ytr.max()) + 1
    counts = np.bincount(ytr, minlength=k)
    if (counts < 2).any():
        raise fail("y_train", "hold every class 0..K-1 at least twice",
                   f"class {int(np.argmin(counts))} with {int(counts.min())} samples")
    yte = check_labels(y_test, "y_test", n_classes=k)
    if len(yte) != len(xte):
        raise fail("y_test", f"have one label per test row ({len(xte)})", len(yte))
    if not Cs:
        raise fail("Cs", "hold at least one value", list(Cs))

    fit_x, hold_x, fit_y, hold_y = train_test_split(
        xtr, ytr, test_size=HOLDOUT, stratify=ytr, random_state=random_state)
    scores = [_probe(c).fit(fit_x, fit_y).score(hold_x, hold_y) for c in Cs]
    order = np.argsort(np.asarray(Cs, float), kind="stable")
    best = max(order, key=lambda i: scores[i])  # max keeps the first, i.e. smallest C, on ties
    model = _probe(float(Cs[best])).fit(xtr, ytr)
    logits = model.decision_function(xte)
    if k == 2:  # binary decision_function is one column: make it two logits
        logits = np.stack([np.zeros_like(logits), logits], axis=1)
    return np.asarray(logits, dtype=np.float64)


@torch.no_grad()
def extract_features(model: torch.nn.Module, images_uint8: Any, mean: Any, std: Any,
                     batch_size: int = 512) -> np.ndarray:
    """Penultimate features of a frozen model, ``model(x, return_features=True)[1]``.

    Parameters
    ----------
    model : torch.nn.Module
        A classgap model; put in eval mode here (dropout and batch-norm statistics frozen) and
        restored to its previous mode afterwards.
    images_uint8 : array or tensor of uint8, shape (N, C, H, W)
    mean, std : array of float, shape (C,)
        Normalisation of the backbone's training split, in [0, 1] units
        (:func:`classgap.data.loader.channel_stats`).
    batch_size : int

    Returns
    -------
    ndarray of float32, shape (N, D)
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    x_all = torch.as_tensor(np.asarray(images_uint8))
    if x_all.dtype != torch.uint8 or x_all.ndim != 4:
        raise fail("images_uint8", "be a uint8 array of shape (N, C, H, W)",
                   f"dtype {x_all.dtype}, shape {tuple(x_all.shape)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    c = x_all.shape[1]
    m = torch.as_tensor(np.asarray(mean, np.float32)).view(1, c, 1, 1).to(device)
    s = torch.as_tensor(np.asarray(std, np.float32)).view(1, c, 1, 1).to(device)
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(x_all), batch_size):
            x = x_all[start:start + batch_size].to(device).float() / 255.0  # (B, C, H, W)
            _, features = model((x - m) / s, return_features=True)  # (B, D)
            out.append(features.float().cpu())
    finally:
        model.train(was_training)
    if not out:
        raise fail("images_uint8", "hold at least one image", "0 images")
    return torch.cat(out).numpy()


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
    # A one-split folder: or npz: holds out its test part by the same stratified split,
    # here of TEST_FRACTION seeded by random_state; other datasets give their own.
    full, test = (load_dataset(spec, split=s, test_fraction=TEST_FRACTION,
                               split_seed=random_state) for s in ("train", "test"))
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
    from classgap.train.rundir import load_model

    model = load_model(path.parent, config, image_shape=shape, n_classes=n_classes)
    for p in model.parameters():  # frozen: the probe is the only thing fitted downstream
        p.requires_grad_(False)
    return model


def _cached_splits(spec: str, random_state: int) -> tuple[Dataset, Dataset, Dataset]:
    return _SPLITS(spec, random_state=random_state)


_SPLITS = functools.lru_cache(maxsize=4)(downstream_splits)  # every probe run of a study
_SOURCES = _Source()


def probe_run(config: Any, model_path: str | Path, downstream: str, *, image_size: Any = None,
              random_state: int = 0, seed: int = 0) -> tuple[Any, Any, tuple[int, int]]:
    """The linear probe of one run's frozen backbone: ``(val, test, image size)``.

    ``val`` and ``test`` are :class:`~classgap.audit.io.Predictions` (logits) on the downstream
    validation part and test split (:func:`downstream_splits`); ``seed`` is recorded in them.
    """
    from classgap.audit import Predictions

    probe_train, val, test = _cached_splits(downstream, random_state)
    shape, n_classes, mean, std = _SOURCES(config)
    size = _size(image_size, shape[1:])
    model = _load_backbone(config, Path(model_path), shape, n_classes)
    feats = []
    for ds in (probe_train, val, test):
        images = match_images(ds.images, shape[0], size)
        try:
            feats.append(extract_features(model, images, mean, std))
        except RuntimeError as exc:  # e.g. an MLP fed another size than it was built for
            raise InputError(f"{model_path} ({config.model.name}) cannot take downstream "
                             f"images of shape {images.shape[1:]}: {exc}") from exc
    # One fit on the probe-training part; val and test are scored together (the probe never
    # sees their labels, so this equals two separate predictions).
    logits = linear_probe(feats[0], probe_train.labels, np.concatenate(feats[1:]),
                          np.concatenate([val.labels, test.labels]), random_state=random_state)
    n_val = len(val)
    val_pred, test_pred = (Predictions.from_arrays(ds.labels, logits=part, seed=seed,
                                                   classes=ds.classes,
                                                   sample_id=np.arange(len(ds)))
                           for ds, part in ((val, logits[:n_val]), (test, logits[n_val:])))
    return val_pred, test_pred, size


@dataclass(frozen=True)
class ProbeTrainer:
    """Trains the probe runs of a study: ``trainer(spec, run_dir) -> metrics``.

    A probe run's point names its source run (``probe.source``, a run id); the source's
    ``model.pt`` is read from ``runs_dir``, so on Ray every worker must see the study
    directory. Picklable, for the ``processes`` and ``ray`` backends.
    """

    runs_dir: str
    downstream: str
    image_size: Any = None
    random_state: int = 0

    def __call__(self, spec: Any, run_dir: Path) -> dict[str, Any]:
        source = Path(self.runs_dir) / str(spec.point["probe.source"])
        model = source / "model.pt"
        if not model.is_file():
            raise InputError(f"{source} holds no model.pt: train the study with "
                             "train.checkpoint=true to probe its backbones")
        val, test, size = probe_run(spec.config, model, self.downstream,
                                    image_size=self.image_size,
                                    random_state=self.random_state, seed=spec.seed)
        for name, pred in (("val", val), ("test", test)):
            write_predictions(Path(run_dir) / f"{name}.npz", y_true=pred.y_true,
                              logits=pred.scores, sample_id=pred.sample_id, seed=pred.seed,
                              classes=pred.classes)
        return {"val_accuracy": float((val.y_pred == val.y_true).mean()),
                "test_accuracy": float((test.y_pred == test.y_true).mean()),
                "image_size": list(size)}
