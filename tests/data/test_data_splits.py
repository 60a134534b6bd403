"""Stratified splits and subsets: determinism, proportions and per-class guarantees."""

from __future__ import annotations

import numpy as np
import pytest

from classgap.data import stratified_split, stratified_subset
from classgap.errors import InputError


def _labels() -> np.ndarray:
    # Imbalanced: 500, 120, 37, 5, 2 and a singleton class, shuffled.
    y = np.repeat(np.arange(6), [500, 120, 37, 5, 2, 1])
    return np.random.default_rng(1).permutation(y)


def test_split_is_deterministic_and_partitions() -> None:
    y = _labels()
    tr, va = stratified_split(y, 0.2, random_state=3)
    tr2, va2 = stratified_split(y, 0.2, random_state=3)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)
    assert tr.dtype == va.dtype == np.int64
    assert np.intersect1d(tr, va).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(len(y)))
    assert len(va) == round(0.2 * len(y))
    _, va3 = stratified_split(y, 0.2, random_state=4)
    assert not np.array_equal(va, va3)


def test_split_is_stratified() -> None:
    y = _labels()
    tr, va = stratified_split(y, 0.2)
    val_counts = np.bincount(y[va], minlength=6)
    train_counts = np.bincount(y[tr], minlength=6)
    assert val_counts[:3].tolist() == [100, 24, 7]  # proportional for the large classes
    assert (val_counts[:5] >= 1).all() and (train_counts[:5] >= 1).all()
    assert val_counts[5] == 0 and train_counts[5] == 1  # a singleton stays in train


def test_split_val_size() -> None:
    y = np.repeat(np.arange(10), 100)
    tr, va = stratified_split(y, val_size=50, random_state=0)
    assert len(va) == 50 and np.bincount(y[va]).tolist() == [5] * 10
    assert len(tr) == 950


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": 1.0}, r"'val_fraction' must be in \(0, 1\); got 1.0"),
        ({"val_fraction": 0.2, "val_size": 3}, r"'val_size' must be None when"),
        ({"val_size": 2}, r"'val_size' must give between 5 and"),
        ({"val_fraction": 0.001}, r"'val_fraction' must give between 5 and"),
    ],
)
def test_split_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        stratified_split(_labels(), **kwargs)


def test_subset() -> None:
    y = np.repeat(np.arange(10), 6000)
    idx = stratified_subset(y, 10_000, random_state=0)
    assert len(idx) == 10_000 and len(np.unique(idx)) == 10_000
    assert np.bincount(y[idx]).tolist() == [1000] * 10
    np.testing.assert_array_equal(idx, stratified_subset(y, 10_000, random_state=0))
    y2 = _labels()
    counts = np.bincount(y2[stratified_subset(y2, 100)], minlength=6)
    assert counts.sum() == 100 and (counts >= 1).all()
    with pytest.raises(InputError, match=r"'n' must be an int in \[6, 665\]"):
        stratified_subset(y2, 5)


def test_test_split_is_stratified_deterministic_and_disjoint() -> None:
    from classgap.data import stratified_test_split

    y = _labels()
    tr, te = stratified_test_split(y, 0.2, random_state=0)
    assert np.intersect1d(tr, te).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(y)))
    assert len(te) == round(0.2 * len(y))
    # stratified: the test part's class shares are the data's, within one image per class
    np.testing.assert_allclose(np.bincount(y[te], minlength=6), np.bincount(y) * 0.2, atol=1)
    assert (np.bincount(y[te], minlength=6)[:5] >= 1).all()  # every class with 2+ images
    again = stratified_test_split(y, 0.2, random_state=0)
    np.testing.assert_array_equal(te, again[1])
    assert not np.array_equal(te, stratified_test_split(y, 0.2, random_state=1)[1])
    with pytest.raises(InputError, match=r"'test_fraction' must be in \(0, 1\); got 1.5"):
        stratified_test_split(y, 1.5)
    with pytest.raises(InputError, match=r"'test_fraction' must give between 5 and 659 test "
                                         r"samples"):
        stratified_test_split(y, 0.001)
