"""Confidence intervals for per-class accuracy: Wilson, class-stratified bootstrap, seeds.

The bootstrap never resamples rows. Resampling the ``n_k`` test samples of class ``k`` with
replacement only matters through how many of the drawn samples are correct, and that number
is exactly ``Binomial(n_k, c_k / n_k)``. So a class's percentile interval needs no sampling
at all (:func:`class_percentile_interval`), and the joint replicates that worst-class,
worst-k and spread need are binomial counts on an ``(n_boot, K)`` grid, drawn by inversion of
each class's small CDF on float32 uniforms (:mod:`classgap.audit._sampling`; 1000 replicates
x 10,000 classes of 10 images: ~0.1 s, against ~1 s for ``Generator.binomial``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy import special, stats

from classgap._validation import (
    check_choice,
    check_in_range,
    check_positive_int,
    check_random_state,
    fail,
)
from classgap.audit._bca import _quantiles_at, acceleration
from classgap.audit._sampling import BinomialSampler, block_rows
from classgap.audit.perclass import warn_absent

__all__ = [
    "ClipCounter",
    "ClippedIntervalWarning",
    "binomial_floor",
    "bootstrap_class_accuracy",
    "bootstrap_interval",
    "bootstrap_statistic",
    "class_accuracy_jackknife",
    "class_percentile_interval",
    "clip_interval",
    "seed_interval",
    "two_level_bootstrap_accuracy",
    "warn_clipped",
    "wilson_interval",
]

Statistic = Callable[[np.ndarray], np.ndarray]  # (..., K) accuracies -> (...,)
METHODS = ("percentile", "bca", "basic")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's warnings for NaN slices: NaN is the documented answer there."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


class ClippedIntervalWarning(UserWarning):
    """A t interval reached past what is possible (accuracy outside [0, 1], a change outside
    [-1, 1]) and was clipped: its class has too few images or seeds to say much. ``count``:
    how many intervals one call clipped."""

    def __init__(self, message: str, count: int = 0) -> None:
        super().__init__(message)
        self.count = count


class ClipCounter:
    """Calls functions and adds up the intervals they clip; their other warnings go on.

    For a caller that states the total once, e.g. a study's notes: the clipping warnings are
    counted, not shown (one per call would say the same thing again and again).

    Examples
    --------
    >>> clipped = ClipCounter()
    >>> _ = clipped(seed_interval, [[0.5, 0.5], [0.9, 0.51]])  # no warning: counted
    >>> clipped.count
    1
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = func(*args, **kwargs)
        for w in caught:
            if isinstance(w.message, ClippedIntervalWarning):
                self.count += w.message.count
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return out


def clip_interval(low: Any, high: Any, bounds: tuple[float, float], what: str,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``low`` and ``high`` clipped to ``bounds``, with one :class:`ClippedIntervalWarning`
    saying how many intervals were (NaN stays NaN).

    The t intervals (across seeds, the crossed test, Welch) are symmetric around the estimate
    and know nothing of the range of an accuracy; with 2-3 seeds or a handful of images they
    reach past it (``[-129.5, +12.8]`` points). Clipping keeps the statement true (the true
    value is inside the range), and the warning says that the interval, not the range, is
    what bounds such a class: too few images or seeds to say much.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     lo, hi = clip_interval([-0.2, 0.1], [0.5, 1.3], (0.0, 1.0), "accuracy")
    >>> lo.tolist(), hi.tolist()
    ([0.0, 0.1], [0.5, 1.0])
    """
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    past = (lo < bounds[0]) | (hi > bounds[1])  # NaN compares False
    if past.any():
        warn_clipped(int(past.sum()), bounds, what, stacklevel=4)
    return np.clip(lo, *bounds), np.clip(hi, *bounds)


def warn_clipped(count: int, bounds: tuple[float, float], what: str, *,
                 stacklevel: int = 2) -> None:
    """The :class:`ClippedIntervalWarning` of :func:`clip_interval`, for ``count`` intervals
    (for a caller that adds up several steps' clipping and says it once)."""
    warnings.warn(ClippedIntervalWarning(
        f"{count} {what} interval(s) reached past [{bounds[0]:g}, {bounds[1]:g}] and were "
        "clipped to it: those classes have too few images or seeds to say much", count),
        stacklevel=stacklevel)


def binomial_floor(accuracy: Any, n: Any) -> np.ndarray:
    """Variance of a class accuracy on ``n`` images where none was seen: ``p (1 - p) / n`` at
    ``p = (x + 1/2) / (n + 1)``, ``x = accuracy * n``.

    The floor for a variance estimated as 0 (every seed and image alike, e.g. a class at 100%
    in every run): no variation in a few seeds is not certainty. ``(x + 1/2) / (n + 1)`` keeps
    ``p`` inside (0, 1) at ``x = 0`` or ``n`` (it is the mean of the Jeffreys posterior of a
    binomial proportion), so a class at 100% on 50 images gets a standard deviation of 1.4
    points, on 10 images 6.6 points: the size of what a binomial of that many images hides.

    Examples
    --------
    >>> round(float(np.sqrt(binomial_floor(1.0, 50))) * 100, 1)
    1.4
    """
    acc, m = np.asarray(accuracy, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (acc * m + 0.5) / (m + 1.0)
        return p * (1.0 - p) / m


def check_confidence(confidence: Any) -> float:
    """``confidence`` as a float in the open interval (0, 1)."""
    return float(check_in_range(confidence, "confidence", 0, 1, inclusive=(False, False)))


def check_counts(correct: Any, support: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate per-class counts: non-negative integers with ``correct <= support``."""
    out = []
    for name, x in (("correct", correct), ("support", support)):
        arr = np.asarray(x)
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < 0)
        elif arr.dtype.kind in "iu":
            bad = arr < 0
        else:
            raise fail(name, "hold non-negative integer counts", f"dtype {arr.dtype}")
        if bad.any():
            raise fail(name, "hold non-negative integer counts", arr[bad].flat[0].item())
        out.append(arr.astype(np.int64))
    c, n = out
    if c.shape[-1:] != n.shape[-1:] or n.ndim != 1:
        raise fail("correct", f"have shape (..., {n.shape[-1] if n.ndim else '?'}) matching "
                   "1-D 'support'", f"shapes {c.shape} and {n.shape}")
    if (c > n).any():
        raise fail("correct", "be <= 'support' for every class", "a larger count")
    return c, n


def _accuracy(correct: np.ndarray, support: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, correct / np.maximum(support, 1), np.nan)


def wilson_interval(successes: Any, n: Any, confidence: float = 0.95,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions (closed form, vectorised).

    Equals ``statsmodels.stats.proportion.proportion_confint(method="wilson")``; ``n = 0``
    gives NaN bounds.

    Parameters
    ----------
    successes, n : array_like of int, broadcastable
    confidence : float in (0, 1)

    Returns
    -------
    low, high : ndarray of float, the broadcast shape

    Examples
    --------
    >>> low, high = wilson_interval(68, 100)
    >>> round(float(low), 4), round(float(high), 4)
    (0.5834, 0.7633)
    """
    confidence = check_confidence(confidence)
    x = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    for name, arr in (("successes", x), ("n", m)):
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            raise fail(name, "hold finite non-negative counts", float(arr[bad].flat[0]))
    x, m = np.broadcast_arrays(x, m)
    if (x > m).any():
        raise fail("successes", "be <= 'n'", float(x[x > m].flat[0]))
    z = stats.norm.isf((1.0 - confidence) / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = x / m
        denom = 1.0 + z * z / m
        center = (q + z * z / (2.0 * m)) / denom
        half = z * np.sqrt(q * (1.0 - q) / m + z * z / (4.0 * m * m)) / denom
    low = np.where(m > 0, np.clip(center - half, 0.0, 1.0), np.nan)
    high = np.where(m > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return low, high


def bootstrap_class_accuracy(correct: Any, support: Any, *, n_boot: int = 1000,
                             random_state: int | np.random.Generator | None = None,
                             ) -> np.ndarray:
    """Class-stratified bootstrap replicates of per-class accuracy.

    A stratified bootstrap redraws the ``n_k`` samples of each class ``k`` with replacement.
    Per-class accuracy depends only on how many drawn samples are correct, which is exactly
    ``Binomial(n_k, c_k / n_k)``; so the replicates are binomial counts on an ``(n_boot, K)``
    grid divided by ``n_k``, drawn by inversion on float32 uniforms (see
    :mod:`classgap.audit._sampling`; no loop over classes, one pass per possible count).

    Parameters
    ----------
    correct, support : array of int, shape (K,)
    n_boot : int >= 1
    random_state : int, Generator or None

    Returns
    -------
    ndarray of float, shape (n_boot, K); columns of classes with support 0 are NaN.

    Examples
    --------
    >>> reps = bootstrap_class_accuracy([45, 10], [50, 10], n_boot=200, random_state=0)
    >>> reps.shape, bool((reps[:, 1] == 1.0).all())
    ((200, 2), True)
    """
    c, n = check_counts(correct, support)
    if c.ndim != 1:
        raise fail("correct", "be 1-D (one count per class)", f"shape {c.shape}")
    n_boot = check_positive_int(n_boot, "n_boot")
    rng = check_random_state(random_state)
    return np.concatenate(list(accuracy_blocks(c, n, n_boot, rng)), axis=0)


def accuracy_blocks(correct: np.ndarray, support: np.ndarray, n_boot: int,
                    rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The replicates of :func:`bootstrap_class_accuracy` as successive blocks of rows.

    For statistics computed block by block: at K = 21,841 classes the whole ``(1000, K)``
    float64 matrix is 175 MB, a block is a few MB. Inputs are validated counts.
    """
    sampler = BinomialSampler(correct, support)
    divisor = _divisor(support)
    for block in sampler.blocks(n_boot, rng):
        yield block / divisor


def _divisor(support: np.ndarray) -> np.ndarray:
    """``n_k`` as float, NaN where ``n_k = 0`` (counts divided by it are accuracies, exactly
    ``c / n`` as a user computes them, and NaN for an absent class)."""
    return np.where(support > 0, support, np.nan)


def class_percentile_interval(correct: Any, support: Any, confidence: float = 0.95,
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-class percentile interval of the stratified bootstrap, exactly, with no sampling.

    The bootstrap distribution of class ``k``'s accuracy is ``Binomial(n_k, p_k) / n_k`` with
    ``p_k = c_k / n_k``, so its percentile interval is the binomial quantiles
    ``(F^-1(a/2), F^-1(1 - a/2)) / n_k``, ``a = 1 - confidence``: the limit of the interval
    from :func:`bootstrap_class_accuracy` replicates as ``n_boot`` grows.

    Returns
    -------
    low, high : ndarray, shape (K,); NaN where ``n_k = 0``.

    Examples
    --------
    >>> low, high = class_percentile_interval([8, 10], [10, 10])
    >>> low.tolist(), high.tolist()
    ([0.5, 1.0], [1.0, 1.0])
    """
    confidence = check_confidence(confidence)
    c, n = check_counts(correct, support)
    alpha = (1.0 - confidence) / 2.0
    p = np.where(n > 0, c / np.maximum(n, 1), 0.0)
    low = stats.binom.ppf(alpha, n, p) / _divisor(n)
    high = stats.binom.ppf(1.0 - alpha, n, p) / _divisor(n)
    return low, high


def bootstrap_interval(theta_hat: Any, replicates: Any, *, confidence: float = 0.95,
                       method: str = "percentile",
                       jackknife: tuple[np.ndarray, np.ndarray] | None = None,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile, BCa or basic interval from bootstrap replicates of one or many statistics.

    BCa (Efron & Tibshirani 1993, 14.3): ``z0 = Phi^-1(fraction of replicates < theta_hat)``
    with ties counted as half, acceleration ``a`` from the jackknife, and the interval is the
    replicate quantiles at ``Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q)))`` for
    ``z_q = Phi^-1((1 -/+ confidence) / 2)``. Without ``jackknife``, ``a = 0`` (bias-corrected
    percentile). The fraction is clipped to ``[1 / 2B, 1 - 1 / 2B]`` so a ``theta_hat`` outside
    every replicate gives the extreme replicate instead of an infinite ``z0`` (with a
    ``UserWarning``: the statistic's bootstrap bias then exceeds its spread, as for the
    standard deviation or worst-k mean of many small noisy classes).
    Basic (reverse percentile): ``(2 theta_hat - q_hi, 2 theta_hat - q_lo)``.

    Parameters
    ----------
    theta_hat : float or array, shape () or (M,)
        The statistic on the observed data.
    replicates : array, shape (B,) or (B, M)
    confidence : float in (0, 1)
    method : {"percentile", "bca", "basic"}
    jackknife : (values (J,) or (J, M), weights (J,) or (J, M)), optional
        Weighted jackknife values (see :func:`class_accuracy_jackknife`), for BCa.

    Returns
    -------
    low, high : float arrays of the shape of ``theta_hat``; NaN where ``theta_hat`` or any
    replicate of that statistic is NaN.

    Examples
    --------
    >>> reps = np.random.default_rng(0).normal(size=(2000,))
    >>> low, high = bootstrap_interval(0.0, reps)
    >>> bool(-2.1 < low < -1.8 and 1.8 < high < 2.1)
    True
    """
    confidence = check_confidence(confidence)
    method = check_choice(method, "method", METHODS)
    reps = np.asarray(replicates, dtype=np.float64)
    theta = np.asarray(theta_hat, dtype=np.float64)
    scalar = reps.ndim == 1
    if reps.ndim not in (1, 2) or reps.shape[0] < 1:
        raise fail("replicates", "have shape (B,) or (B, M) with B >= 1", f"shape {reps.shape}")
    reps2 = reps[:, None] if scalar else reps
    theta1 = np.broadcast_to(theta.reshape(-1) if theta.ndim else theta, reps2.shape[1:])
    alpha = (1.0 - confidence) / 2.0
    if method == "percentile":
        low, high = np.quantile(reps2, [alpha, 1.0 - alpha], axis=0)
    elif method == "basic":
        q_low, q_high = np.quantile(reps2, [alpha, 1.0 - alpha], axis=0)
        low, high = 2.0 * theta1 - q_high, 2.0 * theta1 - q_low
    else:
        b = reps2.shape[0]
        below = (reps2 < theta1).sum(axis=0) + 0.5 * (reps2 == theta1).sum(axis=0)
        outside = ((below == 0) | (below == b)) & ~np.isnan(reps2).any(axis=0)
        if b > 1 and outside.any():
            warnings.warn(
                f"BCa: the estimate lies outside all {b} bootstrap replicates for "
                f"{int(outside.sum())} statistic(s), whose bootstrap bias exceeds their spread; "
                "the bias correction is capped and those intervals are unreliable (the basic "
                "interval, method='basic', at least corrects in the right direction)",
                UserWarning, stacklevel=2)
        frac = np.clip(below / b, 0.5 / b, 1.0 - 0.5 / b)
        z0 = special.ndtri(frac)
        if jackknife is None:
            a = np.zeros_like(z0)
        else:
            values = np.asarray(jackknife[0], dtype=np.float64)
            values = values[:, None] if values.ndim == 1 else values
            a = acceleration(values, np.asarray(jackknife[1], dtype=np.float64))
        z = special.ndtri([alpha, 1.0 - alpha])
        levels = [special.ndtr(z0 + (z0 + zq) / (1.0 - a * (z0 + zq))) for zq in z]
        sorted_reps = np.sort(reps2, axis=0)
        low, high = (_quantiles_at(sorted_reps, lv) for lv in levels)
    bad = np.isnan(theta1) | np.isnan(reps2).any(axis=0)
    low, high = np.where(bad, np.nan, low), np.where(bad, np.nan, high)
    if scalar or (theta.ndim == 0 and reps2.shape[1] == 1):
        return low.reshape(()), high.reshape(())
    return low, high


def class_accuracy_jackknife(correct: Any, support: Any, statistic: Statistic,
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Exact delete-one-sample jackknife of a statistic of the per-class accuracy vector.

    Deleting any correct sample of class ``k`` gives the same accuracy vector (class ``k`` at
    ``(c_k - 1) / (n_k - 1)``), and so does deleting any incorrect one (``c_k / (n_k - 1)``);
    so the N deletions collapse to 2K rows with multiplicities ``c_k`` and ``n_k - c_k``. Row
    ``2k`` deletes a correct sample of class ``k``, row ``2k + 1`` an incorrect one. Rows of
    zero weight hold the full-data accuracy vector.

    Parameters
    ----------
    correct, support : array of int, shape (K,)
    statistic : callable (..., K) -> (...)
        Must accept a (2K, K) array (NaN-aware if a class has support 0 or 1).

    Returns
    -------
    values : ndarray, shape (2K, ...)
    weights : ndarray of int64, shape (2K,)

    Examples
    --------
    >>> values, weights = class_accuracy_jackknife([1, 2], [2, 2], lambda a: a.mean(axis=-1))
    >>> values.tolist(), weights.tolist()
    ([0.5, 1.0, 0.75, 0.75], [1, 1, 2, 0])
    """
    c, n = check_counts(correct, support)
    k = n.size
    base = _accuracy(c, n)
    weights = np.stack([c, n - c], axis=1).reshape(-1)  # (2K,)
    with np.errstate(invalid="ignore", divide="ignore"):
        deleted = np.stack([(c - 1) / (n - 1), c / (n - 1)], axis=1).reshape(-1)  # (2K,)
    deleted = np.where(weights > 0, deleted, np.repeat(base, 2))
    # The (2K, K) matrix is built in row blocks of ~4M entries (one block up to K = 1414) so
    # that K = 10,000 classes needs ~32 MB at a time instead of 1.6 GB.
    block = max(1, 4_000_000 // max(k, 1))
    parts = []
    for start in range(0, 2 * k, block):
        rows = np.arange(start, min(start + block, 2 * k))
        matrix = np.tile(base, (rows.size, 1))  # (rows, K)
        matrix[np.arange(rows.size), rows // 2] = deleted[rows]
        parts.append(np.asarray(statistic(matrix)))
    return np.concatenate(parts, axis=0), weights


def bootstrap_statistic(correct: Any, support: Any, statistic: Statistic, *,
                        n_boot: int = 1000, confidence: float = 0.95, method: str = "bca",
                        random_state: int | np.random.Generator | None = None,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate and class-stratified bootstrap interval of a statistic of per-class accuracy.

    ``statistic`` maps per-class accuracies ``(..., K)`` to ``(...)`` or ``(..., M)``; e.g.
    ``lambda a: np.nanmin(a, axis=-1)`` for worst-class accuracy, whose interval must come from
    here and not from the Wilson interval of the observed worst class (the observed minimum of
    noisy estimates is biased low, and which class is worst is itself uncertain).

    Returns
    -------
    estimate, low, high : float arrays of the statistic's output shape

    Examples
    --------
    >>> est, low, high = bootstrap_statistic([40, 45, 30], [50, 50, 50],
    ...     lambda a: np.nanmin(a, axis=-1), n_boot=500, random_state=0)
    >>> float(est), bool(low < est <= high)
    (0.6, True)
    """
    method = check_choice(method, "method", METHODS)
    confidence = check_confidence(confidence)
    c, n = check_counts(correct, support)
    warn_absent(n)
    reps = bootstrap_class_accuracy(c, n, n_boot=n_boot, random_state=random_state)
    with quiet():
        estimate = np.asarray(statistic(_accuracy(c, n)), dtype=np.float64)
        values = np.asarray(statistic(reps), dtype=np.float64).reshape(n_boot, -1)  # (B, M)
        jack = None
        if method == "bca":
            jv, jw = class_accuracy_jackknife(c, n, statistic)
            jack = (np.asarray(jv, dtype=np.float64).reshape(jw.size, -1), jw)
    low, high = bootstrap_interval(estimate.reshape(-1), values, confidence=confidence,
                                   method=method, jackknife=jack)
    return estimate, low.reshape(estimate.shape), high.reshape(estimate.shape)


def seed_interval(values: Any, confidence: float = 0.95, *, support: Any = None,
                  bounds: tuple[float, float] | None = (0.0, 1.0),
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval across runs (seeds), per class.

    ``mean +/- t_{S-1} * std(ddof=1) / sqrt(S)``, as ``scipy.stats.t.interval``, clipped to
    ``bounds`` (accuracies: [0, 1]; one :class:`ClippedIntervalWarning` when any interval is,
    see :func:`clip_interval`); S = 1 gives NaN bounds. NaN entries (absent classes) propagate.
    With ``support``, a class whose runs all agree (std 0) gets the variance of a binomial of
    its images, :func:`binomial_floor`, instead of a zero-width interval.

    Parameters
    ----------
    values : array, shape (S, K)
        Per-run per-class accuracies.
    support : array of int, shape (K,), optional
        Test images per class (for the floor).
    bounds : (float, float) or None
        The possible range of the values; None: no clipping.

    Returns
    -------
    mean, low, high : ndarray, shape (K,)

    Examples
    --------
    >>> mean, low, high = seed_interval([[0.5, 0.9], [0.7, 0.9]])
    >>> mean.tolist(), float(high[1])
    ([0.6, 0.9], 0.9)
    >>> float(seed_interval([[0.5, 1.0], [0.7, 1.0]], support=[50, 50])[1][1].round(3))
    0.875
    """
    confidence = check_confidence(confidence)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 1:
        raise fail("values", "be a 2-D array of shape (S, K) with S >= 1", f"shape {v.shape}")
    if np.isinf(v).any():
        raise fail("values", "be finite or NaN", "inf")
    s = v.shape[0]
    mean = v.mean(axis=0)
    if s < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    var = v.var(axis=0, ddof=1) / s
    if support is not None:
        n = np.broadcast_to(np.asarray(support, dtype=np.float64), mean.shape)
        var = np.where((var == 0) & (n > 0), binomial_floor(mean, n) / s, var)
    half = stats.t.ppf(0.5 + confidence / 2.0, s - 1) * np.sqrt(var)
    if bounds is None:
        return mean, mean - half, mean + half
    low, high = clip_interval(mean - half, mean + half, bounds, "accuracy")
    return mean, low, high


def two_level_bootstrap_accuracy(correct: Any, support: Any, *, n_boot: int = 1000,
                                 random_state: int | np.random.Generator | None = None,
                                 ) -> np.ndarray:
    """Two-level bootstrap of the seed-mean per-class accuracy: seeds, then test samples.

    Each replicate draws S seeds with replacement, then for every chosen seed and class the
    number correct as ``Binomial(n_k, c_sk / n_k)`` (the stratified sample bootstrap of that
    run), and averages over the drawn seeds. The counts are drawn seed by seed, vectorised
    over replicates and classes (see :func:`bootstrap_class_accuracy`).

    Parameters
    ----------
    correct : array of int, shape (S, K)
        Per-run number correct per class (same test set, so one ``support``).
    support : array of int, shape (K,)

    Returns
    -------
    ndarray, shape (n_boot, K)

    Examples
    --------
    >>> two_level_bootstrap_accuracy([[40, 5], [44, 5]], [50, 5], n_boot=100,
    ...                              random_state=0).shape
    (100, 2)
    """
    c, n = check_counts(correct, support)
    if c.ndim != 2:
        raise fail("correct", "be a 2-D array of shape (S, K)", f"shape {c.shape}")
    n_boot = check_positive_int(n_boot, "n_boot")
    rng = check_random_state(random_state)
    s = c.shape[0]
    seeds = rng.integers(0, s, size=(n_boot, s))  # (B, S): the seeds each replicate draws
    # How often each seed was drawn by each replicate. A seed drawn m times adds m independent
    # binomial counts, so the draws go seed by seed: for m = 1, 2, ... one count for every
    # replicate that drew the seed at least m times (B * S rows in all, no gather by seed).
    multiplicity = np.stack([(seeds == i).sum(axis=1) for i in range(s)], axis=1)  # (B, S)
    total = np.zeros((n_boot, n.size), dtype=np.int32)
    for i in range(s):
        sampler = BinomialSampler(c[i], n)
        for m in range(1, int(multiplicity[:, i].max()) + 1):
            rows = np.flatnonzero(multiplicity[:, i] >= m)
            start = 0
            for size in block_rows(rows.size, n.size):
                total[rows[start:start + size]] += sampler.draw(size, rng)
                start += size
    return total / (s * _divisor(n))
