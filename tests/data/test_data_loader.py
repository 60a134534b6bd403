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


@pytest.mark.parametrize("seed", range(8))
def test_normalisation_stats_equal_the_float_copy_in_float32(seed: int) -> None:
    # the histogram moments give the very float32 values of the float64 copy's mean and std,
    # so switching to them changed no trained number
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 500)), int(rng.integers(1, 4)), 7, 5)
    images = rng.integers(0, 256, size=shape).astype(np.uint8)
    if seed % 2:  # skewed, mostly dark images, as Fashion-MNIST's
        images = (images.astype(np.float64) ** 2 / 255).astype(np.uint8)
    mean, std = channel_stats(images)
    x = images.astype(np.float64) / 255
    assert np.array_equal(mean, x.mean(axis=(0, 2, 3)).astype(np.float32))
    assert np.array_equal(std, np.maximum(x.std(axis=(0, 2, 3)), 1e-6).astype(np.float32))
    flat = np.full((3, 1, 2, 2), 9, np.uint8)  # a constant channel: std floored
    assert channel_stats(flat)[1].tolist() == [np.float32(1e-6)]


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


def _id_folder(root, counts: dict[str, int]) -> None:
    """A one-split image folder whose image i holds the value i in every pixel."""
    from PIL import Image

    i = 0
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for _ in range(n):
            Image.new("L", (3, 3), i).save(root / cls / f"{i}.png")
            i += 1


def test_make_splits_holds_out_a_fixed_test_part_of_a_one_split_folder(tmp_path) -> None:
    _id_folder(tmp_path / "f", {"a": 20, "b": 12, "c": 8})
    base = [f"data.dataset=folder:{tmp_path / 'f'}", "data.val_size=0.25"]
    splits = make_splits(load_config(overrides=base))
    ids = {name: set(ds.images[:, 0, 0, 0].tolist()) for name, ds in
           zip(("train", "val", "test"), splits, strict=True)}
    assert len(ids["test"]) == 8 and len(ids["val"]) == 8 and len(ids["train"]) == 24
    assert not ids["test"] & (ids["train"] | ids["val"]) and not ids["train"] & ids["val"]
    assert splits.test.class_counts().tolist() == [4, 2, 2]  # 20% of each class
    assert splits.source["test_split"] == {"held_out": True, "fraction": 0.2, "seed": 0,
                                           "stratified": True}
    assert splits.source["path"] == str((tmp_path / "f").resolve())
    # the run seed and the val split seed move train/val, never the test images
    for extra in (["train.seed=7"], ["data.split_seed=3"]):
        other = make_splits(load_config(overrides=base + extra))
        np.testing.assert_array_equal(other.test.images, splits.test.images)
    moved = make_splits(load_config(overrides=[*base, "data.split_seed=3"]))
    assert set(moved.val.images[:, 0, 0, 0].tolist()) != ids["val"]
    wider = make_splits(load_config(overrides=[*base, "data.test_fraction=0.5"]))
    assert len(wider.test) == 20
    from classgap.errors import InputError

    with pytest.raises(InputError, match=r"folder:.*f: 'data.test_fraction' must give between "
                                         r"3 and 37 test samples .*; got 0.05"):
        make_splits(load_config(overrides=[*base, "data.test_fraction=0.05"]))


def test_make_splits_uses_a_val_folder_and_checks_data_dir(tmp_path) -> None:
    from classgap.errors import InputError

    for split, n in (("train", 6), ("val", 2), ("test", 4)):
        _id_folder(tmp_path / "d" / split, {"a": n, "b": n})
    cfg = load_config(overrides=["data.dataset=folder:d", f"data.data_dir={tmp_path}"])
    splits = make_splits(cfg)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 8)
    assert splits.source["val_split"] == "the dataset's val/ folder"
    assert splits.source["test_split"] == {"held_out": False}
    np.testing.assert_array_equal(splits.indices["val"], np.arange(4))
    bad = load_config(overrides=["data.dataset=folder:d", f"data.data_dir={tmp_path / 'no'}"])
    with pytest.raises(InputError, match=r"'data.data_dir' must be an existing folder; got "
                                         r"'.*no' \(does not exist\)"):
        make_splits(bad)
