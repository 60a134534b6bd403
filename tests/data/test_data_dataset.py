"""Dataset: validation of the in-memory format and its small API."""

from __future__ import annotations

import numpy as np
import pytest

from classgap.data import Dataset
from classgap.data.dataset import build_dataset
from classgap.errors import DataFormatError, InputError


def _images(n: int = 4) -> np.ndarray:
    return np.arange(n * 1 * 2 * 3, dtype=np.uint8).reshape(n, 1, 2, 3)


def test_basic_api() -> None:
    ds = Dataset(_images(), np.array([0, 2, 2, 1], dtype=np.int32), ["a", "b", "c"], "toy")
    assert len(ds) == 4 and ds.n_classes == 3 and ds.image_shape == (1, 2, 3)
    assert ds.labels.dtype == np.int64 and ds.classes == ("a", "b", "c")
    assert ds.class_counts().tolist() == [1, 1, 2]
    sub = ds.subset([3, 0])
    assert sub.labels.tolist() == [1, 0] and sub.classes == ds.classes and sub.name == "toy"
    np.testing.assert_array_equal(sub.images[1], ds.images[0])
    assert len(ds.subset(ds.labels == 2)) == 2
    assert ds.subset([], name="empty").class_counts().tolist() == [0, 0, 0]


def test_frozen() -> None:
    ds = Dataset(_images(), np.zeros(4, np.int64), ("a",), "toy")
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("images", "labels", "classes", "match"),
    [
        (_images().astype(np.float32), [0, 0, 0, 0], ("a",), r"'images' must have dtype uint8"),
        (_images()[:, 0], [0, 0, 0, 0], ("a",), r"'images' must have shape \(N, C, H, W\)"),
        (_images(), [0, 0, 0], ("a",), r"'labels' must have one entry per image \(4\); got 3"),
        (_images(), [0, 0, 0, 5], ("a", "b"),
         r"'labels' must hold integers in \[0, 1\]; got 5 at row 3"),
        (_images(), [0, 0, 0, 0], (), r"'classes' must be a non-empty"),
        (_images(), [0, 0, 0, 0], ("a", "a"),
         r"'classes' must hold unique names, no repeats; got 'a'"),
        (_images(), [0, 0, 0, 0], "ab", r"'classes' must be a sequence of class names"),
    ],
)
def test_invalid(images: np.ndarray, labels: list[int], classes: tuple[str, ...],
                 match: str) -> None:
    with pytest.raises(InputError, match=match):
        Dataset(images, np.asarray(labels), classes, "toy")


def test_subset_out_of_range() -> None:
    ds = Dataset(_images(), np.zeros(4, np.int64), ("a",), "toy")
    with pytest.raises(InputError, match=r"'indices' must be in \[0, 3\]; got 7"):
        ds.subset([0, 7])
    with pytest.raises(InputError, match=r"'indices' must be a boolean mask of length 4"):
        ds.subset(np.array([True, False]))


def test_build_dataset_names_the_file() -> None:
    with pytest.raises(DataFormatError, match=r"^x\.bin: 'labels' must hold integers in"):
        build_dataset(_images(), np.array([0, 0, 0, 9]), ("a",), "toy", source="x.bin")
