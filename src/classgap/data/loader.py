"""Device-resident batches: the whole split lives on the device as uint8 (airbench style).

A Fashion-MNIST training split is 47 MB as uint8, so instead of a ``DataLoader`` with worker
processes, the images are moved to the device once; each epoch is one seeded ``randperm``, and
each batch is indexed, converted to float in [0, 1], augmented by batched tensor ops, and
normalised with the training split's per-channel mean and std.

>>> import numpy as np
>>> from classgap.data import Dataset
>>> ds = Dataset(np.zeros((10, 1, 4, 4), np.uint8), np.arange(10) % 2, ("a", "b"), "toy")
>>> loader = DeviceLoader(ds, batch_size=4, shuffle=True, drop_last=True, seed=0)
>>> [tuple(x.shape) for x, _, _ in loader.epoch(0)]
[(4, 1, 4, 4), (4, 1, 4, 4)]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from classgap._validation import check_positive_int
from classgap.data.dataset import Dataset

__all__ = ["Augment", "DeviceLoader", "Splits", "channel_stats", "epoch_seed", "make_splits"]


class Augment(Protocol):
    """What the loader needs of :class:`classgap.augment.AugmentPipeline`."""

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, *,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed for (run seed, epoch, stream), independent across all three.

    ``SeedSequence`` hashes the triple, so epoch 1 of seed 0 shares nothing with epoch 0 of
    seed 1 (``seed + epoch`` would make them equal).
    """
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


_HISTOGRAM_CHUNK = 1 << 20  # pixels a np.bincount call widens to int64 (8 MB)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images ``(N, C, H, W)`` scaled to [0, 1].

    Computed from each channel's histogram of the 256 byte values, in float64: the moments
    of N·H·W pixels are 256-term sums, exact up to float64 rounding, with no float copy of
    the images (the float64 copy took 3.2 s of a one-epoch Fashion-MNIST run; this 0.07 s).
    ``np.bincount`` widens its input to int64, so it counts in chunks: one call over the 43 M
    pixels of Fashion-MNIST allocated 345 MB and spent 0.5-1.3 s faulting its pages in.
    The float32 results equal those of ``x.mean()`` / ``x.std()`` over the float64 array
    (checked on Fashion-MNIST, its subsets and random RGB images), so normalisation, and every
    trained number, is unchanged.

    Returns
    -------
    mean, std : np.ndarray of float32, shape (C,)
        ``std`` is floored at 1e-6 so a constant channel does not divide by zero.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(images.shape[1]):
        channel = np.ascontiguousarray(images[:, c]).reshape(-1)
        counts = np.zeros(256, dtype=np.float64)
        for start in range(0, channel.size, _HISTOGRAM_CHUNK):
            counts += np.bincount(channel[start:start + _HISTOGRAM_CHUNK], minlength=256)
        n = counts.sum()
        m = counts @ values / n
        mean.append(m)
        std.append(max(float(np.sqrt(counts @ (values - m) ** 2 / n)), 1e-6))
    return np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)


class DeviceLoader:
    """Batches ``(x, targets, labels)`` from one split kept on ``device`` as uint8.

    Parameters
    ----------
    dataset : Dataset
        Images (N, C, H, W) uint8 and labels (N,).
    batch_size : int
    shuffle : bool
        One ``torch.randperm`` per epoch from a generator on the device seeded with
        :func:`epoch_seed` ``(seed, epoch)``; without it, batches follow the dataset order.
    drop_last : bool
        Drop the last incomplete batch (training: equal batch sizes keep BatchNorm statistics
        and the lr schedule uniform); evaluation keeps it.
    mean, std : array of float, shape (C,), optional
        Normalisation (training split statistics); default :func:`channel_stats` of
        ``dataset``.
    augment : callable, optional
        ``augment(x01, labels, generator=g) -> (x01, targets)`` on float batches in [0, 1];
        targets are labels (N,) int64 or soft targets (N, K) float.
    channels_last : bool
        Return ``x`` in ``torch.channels_last`` memory format (faster convs with bf16).
    device : str or torch.device
    seed : int
        Run seed; permutations and augmentations derive from it and the epoch.

    Attributes
    ----------
    images : torch.Tensor of uint8, shape (N, C, H, W), on ``device``
    labels : torch.Tensor of int64, shape (N,), on ``device``
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, mean: Any = None, std: Any = None,
                 augment: Augment | None = None, channels_last: bool = False,
                 device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.shuffle, self.drop_last, self.channels_last = shuffle, drop_last, channels_last
        self.device = torch.device(device)
        self.seed, self.augment = int(seed), augment
        self.images = torch.from_numpy(np.ascontiguousarray(dataset.images)).to(self.device)
        self.labels = torch.from_numpy(dataset.labels).to(self.device)
        if mean is None or std is None:
            mean, std = channel_stats(dataset.images)
        c = dataset.image_shape[0]
        self.mean = torch.as_tensor(np.asarray(mean, np.float32)).view(1, c, 1, 1).to(self.device)
        self.std = torch.as_tensor(np.asarray(std, np.float32)).view(1, c, 1, 1).to(self.device)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    def _generator(self, epoch: int, stream: int) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(epoch_seed(self.seed, epoch, stream))
        return g

    def order(self, epoch: int) -> torch.Tensor:
        """Sample indices of ``epoch`` in batch order, shape (N,), int64 on the device."""
        n = len(self.labels)
        if not self.shuffle:
            return torch.arange(n, device=self.device)
        return torch.randperm(n, generator=self._generator(epoch, 0), device=self.device)

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(x, targets, labels)``: x (B, C, H, W) float32 normalised; targets (B,) int64
        or (B, K) float; labels (B,) int64."""
        order = self.order(epoch)
        aug_gen = self._generator(epoch, 1) if self.augment is not None else None
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            labels = self.labels[idx]
            x = self.images[idx].float().div_(255.0)  # (B, C, H, W) in [0, 1]
            targets: torch.Tensor = labels
            if self.augment is not None and aug_gen is not None:
                x, targets = self.augment(x, labels, generator=aug_gen)
            x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, targets, labels

    __iter__ = epoch


@dataclass(frozen=True, eq=False)
class Splits:
    """Train, validation and test :class:`Dataset` of a run; unpacks as ``train, val, test``.

    ``indices[name]`` maps each sample back to its row in the split it came from (train and
    val: the dataset's ``"train"`` split, or its ``"val"`` split for a folder of ``train/``,
    ``val/`` and ``test/``; test: its ``"test"`` split), the ``sample_id`` of the saved
    predictions.
    """

    train: Dataset
    val: Dataset | None
    test: Dataset
    indices: dict[str, np.ndarray] = field(default_factory=dict)
    #: What was read: dataset spec, absolute path, how the test split was made
    #: (:func:`~classgap.data.registry.load_run_data`); a run writes it into its provenance.
    source: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Dataset | None]:
        return iter((self.train, self.val, self.test))


MAX_VAL_SHARE = 0.2  # an integer val_size never takes more than this share of the train split


def make_splits(config: Any) -> Splits:
    """Load the dataset of ``config.data`` and split it (all seeded by ``data.split_seed``).

    0. The test split is the dataset's own; a one-split ``folder:`` or ``npz:`` holds out
       ``data.test_fraction`` of its images, stratified, with a fixed seed
       (:data:`~classgap.data.registry.TEST_SPLIT_SEED`), so every run of a study is tested
       on the same images and none of them is ever trained or validated on.
    1. ``val_size`` stratified samples of the ``"train"`` split become the validation set
       (:func:`~classgap.data.stratified_split`). An integer count is capped at 20% of the
       split (but not below one per class), so the 5,000 of Fashion-MNIST become 269 on the
       1,348 digits; a fraction is used as is; 0 means no validation set. A folder of
       ``train/``, ``val/`` and ``test/`` gives its ``val/`` instead (any ``val_size`` but 0).
    2. ``imbalance``: the remaining training side becomes long-tailed
       (:func:`~classgap.data.make_longtail`, ``profile``); the validation set stays balanced.
    3. ``train_subset``: a stratified subset of that many training images.

    Parameters
    ----------
    config : Config or DataConfig

    Returns
    -------
    Splits
    """
    from classgap.data.longtail import make_longtail
    from classgap.data.registry import load_run_data
    from classgap.data.splits import stratified_split, stratified_subset

    d = getattr(config, "data", config)
    loaded, source = load_run_data(d.dataset, data_dir=d.data_dir,
                                   test_fraction=d.test_fraction, image_size=d.image_size,
                                   option="data.data_dir")
    full, test = loaded["train"], loaded["test"]
    rows = np.arange(len(full))
    val: Dataset | None = None
    indices: dict[str, np.ndarray] = {}
    if d.val_size and "val" in loaded:  # the dataset's own validation folder
        val = loaded["val"]
        indices["val"] = np.arange(len(val))
    elif d.val_size:
        if isinstance(d.val_size, float):
            tr, va = stratified_split(full.labels, d.val_size, random_state=d.split_seed)
        else:
            # the cap leaves a small dataset (a folder of a few images a class) one
            # validation image per class rather than an error
            floor = int((full.class_counts() >= 2).sum())
            size = min(int(d.val_size), max(int(MAX_VAL_SHARE * len(full)), floor))
            tr, va = stratified_split(full.labels, val_size=size, random_state=d.split_seed)
        val = full.subset(va, name=full.name.replace("/train", "/val"))
        indices["val"], rows = va, tr
    if d.imbalance is not None:
        rows = rows[make_longtail(full.labels[rows], d.imbalance, profile=d.profile,
                                  random_state=d.split_seed)]
    if d.train_subset is not None:
        check_positive_int(d.train_subset, "data.train_subset")
        rows = rows[stratified_subset(full.labels[rows], d.train_subset,
                                      random_state=d.split_seed)]
    indices["train"], indices["test"] = rows, np.arange(len(test))
    source["val_split"] = ("the dataset's val/ folder" if "val" in loaded and d.val_size
                           else None if val is None else "stratified from the train split")
    return Splits(full.subset(rows), val, test, indices, source)
