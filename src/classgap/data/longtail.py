"""Long-tailed training sets (Cao et al. 2019) and the many / medium / few class groups.

Follows ``shared/spec/losses.md`` ("Long-tailed training sets"): class 0 is the head; the
exponential profile keeps ``floor(n_max * (1/rho)^(i/(K-1)))`` images of class i, the step
profile ``n_max`` for the first half of the classes and ``n_max / rho`` for the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from classgap._validation import check_choice, check_labels, check_positive_int, fail

PROFILES = ("exp", "step")


def _check_imbalance(imbalance: Any) -> float:
    if isinstance(imbalance, bool) or not isinstance(imbalance, int | float | np.number):
        raise fail("imbalance", "be a number > 1", imbalance)
    if not math.isfinite(imbalance):
        raise fail("imbalance", "be finite", imbalance)
    if imbalance <= 1:
        raise fail("imbalance", "be > 1", imbalance)
    return float(imbalance)


def longtail_counts(n_max: int, n_classes: int, imbalance: float,
                    profile: str = "exp") -> np.ndarray:
    """Images per class of a long-tailed set, head first.

    Parameters
    ----------
    n_max : int
        Images of the head class (class 0).
    n_classes : int
        K.
    imbalance : float
        rho = n_max / n_min, > 1 (e.g. 100, 50, 10).
    profile : {"exp", "step"}
        ``"exp"``: ``n_i = floor(n_max * (1/rho)^(i/(K-1)))``. ``"step"``: the first
        ``K // 2`` classes keep ``n_max``, the other ``K - K // 2`` get ``int(n_max / rho)``.

    Returns
    -------
    np.ndarray of int64, shape (K,)

    Examples
    --------
    >>> longtail_counts(5000, 10, 100).tolist()
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    >>> int(longtail_counts(500, 100, 100).sum())
    10847
    """
    n_max = check_positive_int(n_max, "n_max")
    k = check_positive_int(n_classes, "n_classes")
    rho = _check_imbalance(imbalance)
    check_choice(profile, "profile", PROFILES)
    ratio = 1.0 / rho
    # Same float expressions as the reference code (img_max * imb_factor**(i / (K - 1.0))),
    # so the floors land on the same integers.
    if profile == "exp":
        counts = [n_max] if k == 1 else [int(n_max * ratio ** (i / (k - 1.0))) for i in range(k)]
    else:
        counts = [n_max] * (k // 2) + [int(n_max * ratio)] * (k - k // 2)
    if min(counts) < 1:
        raise fail("imbalance", f"be <= n_max ({n_max}) so that every class keeps an image",
                   imbalance)
    return np.asarray(counts, dtype=np.int64)


def make_longtail(labels: Any, imbalance: float, *, profile: str = "exp",
                  n_max: int | None = None,
                  random_state: int | np.random.Generator = 0) -> np.ndarray:
    """Indices of a long-tailed subset of a (typically balanced) labelled set.

    Class i keeps ``longtail_counts(n_max, K, imbalance, profile)[i]`` images: its indices
    are shuffled and the first ones kept. With an integer seed the shuffles are those of the
    reference code (``np.random.seed(seed)``, then ``np.random.shuffle`` per class in class
    order), so ``random_state=0`` follows the published recipe; a ``Generator`` is used as is.

    Parameters
    ----------
    labels : array of int, shape (N,)
        Every class in ``0..max(labels)`` must be present.
    imbalance : float
        rho > 1.
    profile : {"exp", "step"}
    n_max : int, optional
        Head-class size; default the smallest class count, so every class has enough images.
    random_state : int or Generator

    Returns
    -------
    np.ndarray of int64
        Indices into ``labels``, class 0's first (in shuffled order), then class 1's...

    Examples
    --------
    >>> idx = make_longtail(np.repeat(np.arange(10), 100), 10)
    >>> np.bincount(np.repeat(np.arange(10), 100)[idx]).tolist()
    [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]
    """
    y = check_labels(labels, "labels")
    if not y.size:
        raise fail("labels", "hold at least one sample", "an empty array")
    counts = np.bincount(y)
    if (counts == 0).any():
        raise fail("labels", f"hold every class in [0, {len(counts) - 1}]",
                   f"no sample of class {int(np.flatnonzero(counts == 0)[0])}")
    head = int(counts.min()) if n_max is None else check_positive_int(n_max, "n_max")
    target = longtail_counts(head, len(counts), imbalance, profile)
    short = np.flatnonzero(counts < target)
    if short.size:
        c = int(short[0])
        raise fail("n_max", f"leave class {c} enough images (it has {counts[c]}, the profile "
                   f"needs {target[c]})", n_max)
    shuffle: Callable[[np.ndarray], None]
    if isinstance(random_state, np.random.Generator):
        shuffle = random_state.shuffle
    elif isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        shuffle = np.random.RandomState(int(random_state)).shuffle
    else:
        raise fail("random_state", "be an int or a numpy Generator", random_state)
    parts = []
    for c, keep in enumerate(target):
        idx = np.flatnonzero(y == c)
        shuffle(idx)
        parts.append(idx[:keep])
    return np.concatenate(parts).astype(np.int64)


def frequency_groups(train_counts: Any, *, many: int = 100, few: int = 20) -> np.ndarray:
    """:func:`classgap.audit.disparity.frequency_groups`, where it lives: the audit uses it and
    imports nothing from ``classgap.data`` (imported when called: ``classgap.data`` loads
    without pandas and scipy)."""
    from classgap.audit.disparity import frequency_groups as groups

    return groups(train_counts, many=many, few=few)


def index_groups(n_classes: int, sizes: Sequence[int] = (3, 4, 3)) -> np.ndarray:
    """Groups by class index: the first ``sizes[0]`` classes ``"many"``, the next
    ``sizes[1]`` ``"medium"``, the last ``sizes[2]`` ``"few"`` (CIFAR-10-LT has no class under
    20 images, so the count rule leaves its "few" group empty).

    Examples
    --------
    >>> index_groups(10).tolist()
    ['many', 'many', 'many', 'medium', 'medium', 'medium', 'medium', 'few', 'few', 'few']
    """
    k = check_positive_int(n_classes, "n_classes")
    sizes = tuple(sizes)
    if len(sizes) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                              for s in sizes) or sum(sizes) != k:
        raise fail("sizes", f"be three non-negative ints summing to n_classes ({k})", sizes)
    return np.repeat(np.array(["many", "medium", "few"]), sizes)
