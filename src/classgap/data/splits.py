"""Seeded, stratified splits and subsets of a label vector.

Per-class audits need every class on both sides of a split, so the allocation is proportional
to the class counts (largest remainder) with floors and ceilings per class, not a plain random
permutation that may leave a rare class out of the validation set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from classgap._validation import check_labels, check_random_state, fail


def _allocate(counts: np.ndarray, total: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Integers in [low, high] summing to ``total``, as close as possible to proportional.

    Requires ``low.sum() <= total <= high.sum()``. Ties go to the lower class index, so the
    result is a pure function of its inputs.
    """
    ideal = counts * (total / counts.sum())
    alloc = np.clip(np.floor(ideal).astype(np.int64), low, high)
    while alloc.sum() < total:  # at most K + (clipped amount) rounds, each O(K)
        gap = np.where(alloc < high, ideal - alloc, -np.inf)
        alloc[int(np.argmax(gap))] += 1
    while alloc.sum() > total:
        gap = np.where(alloc > low, alloc - ideal, -np.inf)
        alloc[int(np.argmax(gap))] -= 1
    return alloc


def _per_class(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    if not labels.size:
        raise fail("labels", "hold at least one sample", "an empty array")
    counts = np.bincount(labels)
    order = np.argsort(labels, kind="stable")
    groups = np.split(order, np.cumsum(counts)[:-1])
    return counts.astype(np.int64), groups


def stratified_split(labels: Any, val_fraction: float | None = None, *,
                     val_size: int | None = None,
                     random_state: int | np.random.Generator | None = 0,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and validation sides with the class proportions of ``labels``.

    Every class with at least 2 samples gets at least one sample on each side; a class with a
    single sample stays in train. Both outputs are sorted, and the same ``random_state``
    always gives the same split.

    Parameters
    ----------
    labels : array of int, shape (N,)
    val_fraction : float in (0, 1), optional
        Validation share of the samples (rounded to an integer count). Default 0.1 when
        ``val_size`` is not given either.
    val_size : int, optional
        Validation count instead of a fraction; give one of the two.
    random_state : int, Generator or None

    Returns
    -------
    train_idx, val_idx : np.ndarray of int64
        Disjoint, covering ``range(N)``.

    Examples
    --------
    >>> tr, va = stratified_split([0] * 8 + [1] * 2, 0.2)
    >>> len(tr), len(va), sorted(np.asarray([0] * 8 + [1] * 2)[va].tolist())
    (8, 2, [0, 1])
    """
    y = check_labels(labels, "labels")
    n = len(y)
    if val_fraction is not None and val_size is not None:
        raise fail("val_size", "be None when 'val_fraction' is given", val_size)
    if val_size is None:
        frac = 0.1 if val_fraction is None else val_fraction
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac < 1:
            raise fail("val_fraction", "be in (0, 1)", frac)
        name, total = "val_fraction", round(frac * n)
    else:
        if isinstance(val_size, bool) or not isinstance(val_size, int | np.integer):
            raise fail("val_size", "be an int", val_size)
        name, total = "val_size", int(val_size)
    return _two_way(y, total, random_state, name=name, side="validation",
                    value=val_fraction if name == "val_fraction" else val_size)


def stratified_test_split(labels: Any, test_fraction: float = 0.2, *,
                          random_state: int | np.random.Generator | None = 0,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a stratified test part: :func:`stratified_split` with errors that say test.

    Used for datasets stored as one split (a single image folder or ``.npz``): with a fixed
    ``random_state`` every run, whatever its own seed, is tested on the same images.

    Parameters
    ----------
    labels : array of int, shape (N,)
    test_fraction : float in (0, 1)
        Test share of the samples, rounded to an integer count.
    random_state : int, Generator or None

    Returns
    -------
    train_idx, test_idx : np.ndarray of int64
        Sorted, disjoint, covering ``range(N)``; every class with at least 2 samples is on
        both sides.

    Examples
    --------
    >>> tr, te = stratified_test_split([0] * 8 + [1] * 2, 0.2)
    >>> te.tolist() == stratified_split([0] * 8 + [1] * 2, 0.2)[1].tolist()
    True
    """
    y = check_labels(labels, "labels")
    frac = test_fraction
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac < 1:
        raise fail("test_fraction", "be in (0, 1)", frac)
    return _two_way(y, round(frac * len(y)), random_state, name="test_fraction", side="test",
                    value=frac)


def _two_way(y: np.ndarray, total: int, random_state: int | np.random.Generator | None, *,
             name: str, side: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
    """``total`` stratified samples of ``y`` on the held-out side; errors name ``name``."""
    counts, groups = _per_class(y)
    low = (counts >= 2).astype(np.int64)  # one per class on the held-out side...
    high = np.maximum(counts - 1, 0)  # ...and at least one left for training
    if not low.sum() <= total <= high.sum():
        raise fail(name, f"give between {low.sum()} and {high.sum()} {side} samples "
                   f"(one per class with >= 2 samples, one left in train per class)", value)
    alloc = _allocate(counts, total, low, high)
    rng = check_random_state(random_state)
    held_parts = [rng.permutation(g)[:a] for g, a in zip(groups, alloc, strict=True)]
    held_idx = np.sort(np.concatenate(held_parts))
    train_mask = np.ones(len(y), dtype=bool)
    train_mask[held_idx] = False
    return np.flatnonzero(train_mask).astype(np.int64), held_idx.astype(np.int64)


def stratified_subset(labels: Any, n: int, *,
                      random_state: int | np.random.Generator | None = 0) -> np.ndarray:
    """Sorted indices of ``n`` samples drawn per class in proportion to the class counts.

    Every class present in ``labels`` keeps at least one sample, e.g. a 10,000-image training
    subset of Fashion-MNIST has exactly 1,000 per class.

    Parameters
    ----------
    labels : array of int, shape (N,)
    n : int
        Subset size, between the number of classes present and N.
    random_state : int, Generator or None

    Returns
    -------
    np.ndarray of int64, shape (n,)

    Examples
    --------
    >>> idx = stratified_subset(np.repeat([0, 1], [90, 10]), 20)
    >>> np.bincount(np.repeat([0, 1], [90, 10])[idx]).tolist()
    [18, 2]
    """
    y = check_labels(labels, "labels")
    counts, groups = _per_class(y)
    low = (counts >= 1).astype(np.int64)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) \
            or not low.sum() <= n <= len(y):
        raise fail("n", f"be an int in [{low.sum()}, {len(y)}] (at least one per class "
                   f"present)", n)
    alloc = _allocate(counts, int(n), low, counts)
    rng = check_random_state(random_state)
    parts = [rng.permutation(g)[:a] for g, a in zip(groups, alloc, strict=True)]
    return np.sort(np.concatenate(parts)).astype(np.int64)
