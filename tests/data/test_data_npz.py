"""The .npz format (round trips, layout rule, refusals) and the built-in digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classgap.data import Dataset, load_digits, load_npz_dataset, save_npz_dataset
from classgap.errors import DataFormatError


def _ds(c: int = 3) -> Dataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, c, 4, 5), dtype=np.uint8)
    return Dataset(images, np.array([0, 1, 2, 0, 1, 2]), ("x", "y", "z"), "toy")


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_round_trip(tmp_path: Path, channels: int) -> None:
    ds = _ds(channels)
    path = save_npz_dataset(tmp_path / "toy", ds)
    assert path == tmp_path / "toy.npz"
    out = load_npz_dataset(path)
    np.testing.assert_array_equal(out.images, ds.images)
    np.testing.assert_array_equal(out.labels, ds.labels)
    assert out.classes == ds.classes and out.name == "toy"


def test_layouts_and_default_classes(tmp_path: Path) -> None:
    nhwc = np.random.default_rng(1).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=nhwc, labels=np.array([0, 3]))
    ds = load_npz_dataset(tmp_path / "a.npz")
    assert ds.images.shape == (2, 3, 4, 5) and ds.classes == ("0", "1", "2", "3")
    np.testing.assert_array_equal(ds.images[1, 2], nhwc[1, :, :, 2])
    np.savez(tmp_path / "b.npz", images=nhwc[..., 0], labels=np.array([1, 1]))
    assert load_npz_dataset(tmp_path / "b.npz").images.shape == (2, 1, 4, 5)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"images": np.zeros((2, 3, 3), np.uint8), "labels": [0, 1], "label": [0, 1],
          "extra": [1]}, r"unknown arrays \['extra', 'label'\]; expected 'images', 'labels'"),
        ({"images": np.zeros((2, 3, 3), np.uint8)}, r"missing arrays \['labels'\]"),
        ({"images": np.zeros((2, 3, 3), np.uint8), "labels": np.array([0, "a"], object)},
         r"field 'labels' cannot be read without unpickling"),
        ({"images": np.zeros((2, 3, 3), np.uint8), "labels": [0, 2], "classes": ["a", "b"]},
         r"field 'labels' must hold integers in \[0, 1\]; got 2 at row 1"),
        ({"images": np.zeros((2, 3, 3), np.uint8), "labels": [0, -1]},
         r"field 'labels' must hold integers in \[0, inf\)"),
        ({"images": np.zeros((2, 3, 3), np.float32), "labels": [0, 1]},
         r"field 'images' must have dtype uint8; got float32"),
        ({"images": np.zeros((2, 3), np.uint8), "labels": [0, 1]},
         r"field 'images' must have shape \(N, H, W\).*got \(2, 3\)"),
        ({"images": np.zeros((2, 3, 3), np.uint8), "labels": [0, 1, 1]},
         r"'labels' must have one entry per image \(2\); got 3"),
        ({"images": np.zeros((2, 3, 3), np.uint8), "labels": [0, 1], "classes": [1, 2]},
         r"field 'classes' must be a 1-D array of strings"),
    ],
)
def test_malformed_npz(tmp_path: Path, arrays: dict, match: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError, match=rf"^{tmp_path}/bad\.npz: " + match):
        load_npz_dataset(path)


def test_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(DataFormatError, match=r"x\.npz: not a readable \.npz file"):
        load_npz_dataset(tmp_path / "x.npz")
    np.save(tmp_path / "y.npy", np.zeros(3))
    with pytest.raises(DataFormatError, match=r"y\.npy: expected a \.npz archive"):
        load_npz_dataset(tmp_path / "y.npy")


def test_digits() -> None:
    full = load_digits("all")
    assert len(full) == 1797 and full.image_shape == (1, 8, 8) and full.classes[3] == "3"
    assert full.images.dtype == np.uint8 and full.images.max() == 255
    from sklearn.datasets import load_digits as sk

    raw = sk().images
    np.testing.assert_array_equal(full.images[:, 0], np.rint(raw * 255 / 16).astype(np.uint8))
    train, test = load_digits("train"), load_digits("test")
    assert len(train) + len(test) == 1797 and len(test) == 449
    assert (test.class_counts() >= 44).all()
    np.testing.assert_array_equal(test.images, load_digits("test").images)  # fixed split


def test_two_split_layout(tmp_path: Path) -> None:
    from classgap.data import load_npz_splits

    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)  # (N, H, W), as in mnist.npz
    x_test = rng.integers(0, 256, (3, 5, 4), dtype=np.uint8)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=np.array([0, 1, 2, 0, 1, 2], np.uint8),
             x_test=x_test, y_test=np.array([2, 1, 0]))
    splits = load_npz_splits(path)
    assert set(splits) == {"train", "test"}
    assert splits["train"].classes == splits["test"].classes == ("0", "1", "2")
    assert splits["test"].name == "mnist/test" and splits["test"].image_shape == (1, 5, 4)
    np.testing.assert_array_equal(splits["test"].images[:, 0], x_test)
    with pytest.raises(DataFormatError, match=r"holds train and test arrays .* read it with "
                                              r"load_npz_splits"):
        load_npz_dataset(path)
    np.savez(path, x_train=x_train, y_train=np.zeros(6, int), x_test=x_test[:, :4],
             y_test=np.zeros(3, int))
    with pytest.raises(DataFormatError, match=r"fields 'x_train' and 'x_test' must hold images "
                                              r"of one shape"):
        load_npz_splits(path)
    np.savez(path, x_train=x_train, y_train=np.zeros(6, int), images=x_test)
    with pytest.raises(DataFormatError, match=r"unknown arrays \['images'\]"):
        load_npz_splits(path)
    np.savez(path, x_train=x_train, y_train=np.zeros(6, int))
    with pytest.raises(DataFormatError, match=r"missing arrays \['x_test', 'y_test'\]"):
        load_npz_splits(path)
    np.savez(path, x_train=x_train, y_train=np.zeros(6, int), x_test=x_test,
             y_test=np.array([0, 5, 1]), classes=np.array(["a", "b"]))
    with pytest.raises(DataFormatError, match=r"y_test"):
        load_npz_splits(path)
