"""scikit-learn's 8x8 digits (1,797 images) as a :class:`Dataset`: small, offline, built in."""

from __future__ import annotations

import numpy as np

from classgap._validation import check_choice
from classgap.data.dataset import Dataset
from classgap.data.splits import stratified_split

DIGITS_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
#: The fixed split: 25% test, stratified, seed 0 (digits has no official split).
DIGITS_TEST_FRACTION = 0.25
DIGITS_SEED = 0


def load_digits(split: str = "all") -> Dataset:
    """The scikit-learn digits as images (N, 1, 8, 8) uint8 with classes ``"0"``..``"9"``.

    Pixel values 0..16 are scaled to 0..255 as ``round(v * 255 / 16)``, so 0 stays 0 and 16
    becomes 255, like every other uint8 dataset here.

    Parameters
    ----------
    split : {"all", "train", "test"}
        ``"train"`` (1,348 images) and ``"test"`` (449) come from a fixed stratified 75/25
        split with seed 0 (:func:`~classgap.data.stratified_split`); ``"all"`` is every image.

    Examples
    --------
    >>> ds = load_digits("test")
    >>> len(ds), ds.image_shape, int(ds.images.max())
    (449, (1, 8, 8), 255)
    """
    check_choice(split, "split", ("all", "train", "test"))
    from sklearn.datasets import load_digits as _sk_load_digits  # sklearn import is slow

    bunch = _sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    ds = Dataset(images, bunch.target.astype(np.int64), DIGITS_CLASSES, "digits/all")
    if split == "all":
        return ds
    train_idx, test_idx = stratified_split(ds.labels, DIGITS_TEST_FRACTION,
                                           random_state=DIGITS_SEED)
    return ds.subset(train_idx if split == "train" else test_idx, name=f"digits/{split}")
