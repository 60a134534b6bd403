"""Device-resident loader: coverage, seeded order, normalisation, uint8 storage, splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classgap.config import load_config
from classgap.data import Dataset, load_dataset
from classgap.data.loader import DeviceLoader, channel_stats, epoch_seed, make_splits


@pytest.fixture
def toy() -> Dataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(103, 2, 4, 4), dtype=np.uint8)
    # Encode the sample index in pixel (0, 0, 0) so batches can be traced back.
    images[:, 0, 0, 0] = np.arange(103)
    return Dataset(images, np.arange(103) % 5, tuple("abcde"), "toy")


def _ids(loader: DeviceLoader, epoch: int) -> list[int]:
    ids = []
    for x, _, _ in loader.epoch(epoch):
        raw = x * loader.std + loader.mean  # undo the normalisation
        ids += torch.round(raw[:, 0, 0, 0] * 255).long().tolist()
    return ids


def test_every_sample_once_per_epoch(toy: Dataset) -> None:
    loader = DeviceLoader(toy, batch_size=10, shuffle=True, drop_last=False, seed=3)
    ids = _ids(loader, 0)
    assert sorted(ids) == list(range(103)) and len(loader) == 11
    dropped = DeviceLoader(toy, batch_size=10, shuffle=True, drop_last=True, seed=3)
    ids = _ids(dropped, 0)
    assert len(ids) == 100 == len(set(ids)) and len(dropped) == 10


def test_labels_follow_images(toy: Dataset) -> None:
    loader = DeviceLoader(toy, batch_size=16, shuffle=True, seed=0)
    for x, targets, y in loader.epoch(1):
        ids = torch.round((x * loader.std + loader.mean)[:, 0, 0, 0] * 255).long()
        assert torch.equal(y, ids % 5) and torch.equal(targets, y)


def test_seeded_order(toy: Dataset) -> None:
    a = DeviceLoader(toy, batch_size=10, shuffle=True, seed=1)
    b = DeviceLoader(toy, batch_size=10, shuffle=True, seed=1)
    c = DeviceLoader(toy, batch_size=10, shuffle=True, seed=2)
    assert torch.equal(a.order(0), b.order(0))
    assert not torch.equal(a.order(0), a.order(1))
    assert not torch.equal(a.order(0), c.order(0))
    assert epoch_seed(0, 1) != epoch_seed(1, 0)
    plain = DeviceLoader(toy, batch_size=10)
    assert plain.order(4).tolist() == list(range(103))


def test_normalisation_stats(toy: Dataset) -> None:
    mean, std = channel_stats(toy.images)
    x = toy.images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3)), rtol=1e-6)
    loader = DeviceLoader(toy, batch_size=200)
    (x_norm, _, _), = list(loader.epoch(0))
    assert x_norm.dtype == torch.float32
    np.testing.assert_allclose(x_norm.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(x_norm.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-5)


def test_uint8_on_device_and_channels_last(toy: Dataset) -> None:
    loader = DeviceLoader(toy, batch_size=8, channels_last=True, device="cpu")
    assert loader.images.dtype == torch.uint8 and loader.images.device.type == "cpu"
    x, _, _ = next(iter(loader.epoch(0)))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_augment_hook_gets_floats_and_generator(toy: Dataset) -> None:
    seen = []

    def aug(x, labels, *, generator):
        seen.append((x.min().item() >= 0, x.max().item() <= 1, generator))
        return x, torch.nn.functional.one_hot(labels, 5).float()

    loader = DeviceLoader(toy, batch_size=50, augment=aug, drop_last=True)
    _, targets, _ = next(iter(loader.epoch(0)))
    assert targets.shape == (50, 5) and seen[0][0] and seen[0][1]
    assert isinstance(seen[0][2], torch.Generator)


def test_make_splits_carries_the_stratified_val_split() -> None:
    cfg = load_config(overrides=["data.dataset=digits", "data.val_size=0.2",
                                 "data.train_subset=500"])
    splits = make_splits(cfg)
    train, val, test = splits
    full = load_dataset("digits", split="train")
    assert len(val) == round(0.2 * len(full)) and len(train) == 500
    assert not set(splits.indices["train"]) & set(splits.indices["val"])
    np.testing.assert_array_equal(full.labels[splits.indices["val"]], val.labels)
    np.testing.assert_array_equal(full.images[splits.indices["train"]], train.images)
    # stratified: class shares of val match the full split within one sample per class
    np.testing.assert_allclose(val.class_counts(), full.class_counts() * 0.2, atol=1)
    assert len(test) == 449 and splits.indices["test"].tolist() == list(range(449))
    again = make_splits(cfg)
    assert np.array_equal(again.indices["val"], splits.indices["val"])


def test_make_splits_int_val_size_is_capped_and_zero_means_none() -> None:
    splits = make_splits(load_config(overrides=["data.dataset=digits"]))  # default 5000
    assert len(splits.val) == int(0.2 * 1348)
    none = make_splits(load_config(overrides=["data.dataset=digits", "data.val_size=0"]))
    assert none.val is None and len(none.train) == 1348


def test_make_splits_longtail() -> None:
    cfg = load_config(overrides=["data.dataset=digits", "data.imbalance=10",
                                 "data.val_size=100"])
    train, val, _ = make_splits(cfg)
    counts = train.class_counts()
    assert counts[0] / counts[-1] == pytest.approx(10, rel=0.15)
    assert val.class_counts().min() >= 9  # the validation set stays balanced
