"""Per-class comparison of a baseline (A) and a candidate (B) on the same test set.

Tests: exact McNemar on the discordant pairs of one run per side; Welch t-test and a
permutation test over seed labels when both sides have several runs. Intervals: paired
class-stratified bootstrap (one run per side) or two-level bootstrap (seeds, then samples).
q-values across classes by Benjamini-Hochberg (default) or Holm. Sign convention everywhere:
``delta = acc_B - acc_A``, so a negative delta is a drop caused by the candidate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from classgap._validation import (
    check_choice,
    check_in_range,
    check_labels,
    check_positive_int,
    check_random_state,
    fail,
)
from classgap.audit.intervals import (
    METHODS,
    bootstrap_interval,
    check_confidence,
    quiet,
    two_level_bootstrap_accuracy,
)
from classgap.audit.multiplicity import CORRECTIONS, adjust_pvalues
from classgap.audit.perclass import check_class_names, check_n_classes, warn_absent

__all__ = [
    "Comparison",
    "compare_predictions",
    "effect_size",
    "mcnemar_exact",
    "paired_bootstrap_delta",
    "permutation_test",
    "welch_test",
]

TESTS = ("auto", "mcnemar", "welch", "permutation")
CLASS_COLUMNS = ("class", "support", "acc_baseline", "acc_candidate", "delta", "delta_low",
                 "delta_high", "p_value", "q_value", "verdict", "test", "b", "c", "effect_size",
                 "acc_baseline_std", "acc_candidate_std")


def _nonneg_counts(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
        raise fail(name, "hold non-negative integer counts", f"dtype {arr.dtype}")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
    if bad.any():
        raise fail(name, "hold non-negative integer counts", arr[bad].flat[0].item())
    return arr.astype(np.int64)


def mcnemar_exact(b: Any, c: Any, *, mid_p: bool = False) -> np.ndarray:
    """Two-sided exact McNemar test: binomial test of ``b`` vs ``c`` at p = 0.5, vectorised.

    ``p = min(1, 2 * BinomCDF(min(b, c); b + c, 0.5))``, 1.0 when ``b + c = 0``; equal to
    ``statsmodels`` ``mcnemar(table, exact=True).pvalue`` and ``scipy.stats.binomtest``.
    With ``mid_p``, half the probability of the observed count is removed from each tail
    (``2 * CDF - PMF``), which is less conservative.

    Parameters
    ----------
    b : array of int
        Discordant pairs with A right, B wrong.
    c : array of int, broadcastable with ``b``
        Discordant pairs with A wrong, B right.

    Examples
    --------
    >>> mcnemar_exact([10, 3], [2, 3]).round(4).tolist()
    [0.0386, 1.0]
    """
    bb, cc = np.broadcast_arrays(_nonneg_counts(b, "b"), _nonneg_counts(c, "c"))
    n, low = bb + cc, np.minimum(bb, cc)
    p = 2.0 * stats.binom.cdf(low, n, 0.5)
    if mid_p:
        p = p - stats.binom.pmf(low, n, 0.5)
    return np.where(n == 0, 1.0, np.minimum(p, 1.0))


def _check_correct(x: Any, name: str, n: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or len(arr) != n:
        raise fail(name, f"be a 1-D array with one entry per sample ({n})", f"shape {arr.shape}")
    if arr.dtype.kind != "b":
        if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
            raise fail(name, "hold booleans (or 0/1)", arr[~np.isin(arr, (0, 1))][:1])
    return arr.astype(bool)


def _cell_counts(yt: np.ndarray, ca: np.ndarray, cb: np.ndarray, k: int) -> np.ndarray:
    """(K, 4) counts of cells [both right, A only, B only, both wrong] per class."""
    cell = 2 * (~ca) + (~cb)  # 0: both, 1: A only (b), 2: B only (c), 3: neither
    return np.bincount(yt * 4 + cell, minlength=4 * k).reshape(k, 4)


def _paired_replicates(cells: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K, 4) stratified paired-bootstrap cell counts.

    Resampling the n_k pairs (A correct, B correct) of class k with replacement, with the same
    indices for both models, only matters through the four cell counts, which are
    Multinomial(n_k, cells_k / n_k): one broadcast multinomial draw gives them all.
    """
    n = cells.sum(axis=1)  # (K,)
    pvals = np.where(n[:, None] > 0, cells / np.maximum(n, 1)[:, None], [1.0, 0, 0, 0])
    return rng.multinomial(n, pvals, size=(n_boot, n.size))


def _delta_from_cells(cells: np.ndarray, n: np.ndarray) -> np.ndarray:
    with quiet():
        return np.where(n > 0, (cells[..., 2] - cells[..., 1]) / n, np.nan)


def paired_bootstrap_delta(y_true: Any, correct_a: Any, correct_b: Any, n_classes: int, *,
                           n_boot: int = 1000, confidence: float = 0.95,
                           method: str = "percentile",
                           random_state: int | np.random.Generator | None = None,
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paired class-stratified bootstrap of the per-class accuracy difference ``acc_B - acc_A``.

    Both models see the same resampled indices: per class the counts of the four cells (both
    right, A only, B only, both wrong) are drawn from one multinomial on an (n_boot, K) grid.
    BCa uses the exact jackknife of each class's delta (4 distinct deletions per class).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    correct_a, correct_b : array of bool, shape (N,)
        Whether model A / B got each sample right.
    n_classes : int

    Returns
    -------
    delta, low, high : ndarray, shape (K,)
    replicates : ndarray, shape (n_boot, K)

    Examples
    --------
    >>> d, lo, hi, reps = paired_bootstrap_delta([0, 0, 1, 1], [1, 1, 1, 0], [1, 0, 1, 1], 2,
    ...                                          n_boot=100, random_state=0)
    >>> d.tolist(), reps.shape
    ([-0.5, 0.5], (100, 2))
    """
    k = check_n_classes(n_classes)
    yt = check_labels(y_true, "y_true", n_classes=k)
    ca = _check_correct(correct_a, "correct_a", len(yt))
    cb = _check_correct(correct_b, "correct_b", len(yt))
    n_boot = check_positive_int(n_boot, "n_boot")
    confidence = check_confidence(confidence)
    method = check_choice(method, "method", METHODS)
    rng = check_random_state(random_state)
    cells = _cell_counts(yt, ca, cb, k)
    n = cells.sum(axis=1)
    warn_absent(n)
    delta = _delta_from_cells(cells, n)
    reps = _delta_from_cells(_paired_replicates(cells, n_boot, rng), n)  # (B, K)
    jack = None
    if method == "bca":
        # Deleting one pair of cell t changes only its class: (c - b - [t=B only] + [t=A only])
        # / (n - 1); deletions in other classes leave delta_k at its jackknife mean.
        shift = np.array([0.0, 1.0, -1.0, 0.0])[:, None]  # (4, 1)
        with quiet():
            values = (cells[:, 2] - cells[:, 1] + shift) / (n - 1)  # (4, K)
        jack = (values, cells.T.astype(np.float64))
    low, high = bootstrap_interval(delta, reps, confidence=confidence, method=method,
                                   jackknife=jack)
    return delta, low, high, reps


def _check_runs(acc: Any, name: str) -> np.ndarray:
    arr = np.asarray(acc, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise fail(name, "be a 2-D array of shape (runs, K)", f"shape {arr.shape}")
    if np.isinf(arr).any():
        raise fail(name, "be finite or NaN", "inf")
    return arr


def _check_pair(acc_a: Any, acc_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _check_runs(acc_a, "acc_a"), _check_runs(acc_b, "acc_b")
    if a.shape[1] != b.shape[1]:
        raise fail("acc_b", f"have as many columns as 'acc_a' ({a.shape[1]})", b.shape[1])
    return a, b


def welch_test(acc_a: Any, acc_b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-class Welch t-test across runs: ``scipy.stats.ttest_ind(acc_b, acc_a,
    equal_var=False)`` column by column (statistic > 0 when B is better).

    Degenerate columns never raise: fewer than 2 runs on a side, or a NaN, gives NaN; zero
    variance on both sides gives ``(0, 1)`` when the means are equal and NaN otherwise (the
    t statistic is infinite and the Welch degrees of freedom undefined; use the permutation
    test there).

    Parameters
    ----------
    acc_a, acc_b : array, shape (Sa, K) and (Sb, K)

    Returns
    -------
    statistic, p : ndarray, shape (K,)

    Examples
    --------
    >>> t, p = welch_test([[0.5], [0.6], [0.55]], [[0.7], [0.72], [0.69]])
    >>> bool(t[0] > 0 and p[0] < 0.05)
    True
    """
    a, b = _check_pair(acc_a, acc_b)
    sa, sb = a.shape[0], b.shape[0]
    nan = np.full(a.shape[1], np.nan)
    if sa < 2 or sb < 2:
        return nan, nan.copy()
    diff = b.mean(axis=0) - a.mean(axis=0)
    va, vb = a.var(axis=0, ddof=1) / sa, b.var(axis=0, ddof=1) / sb  # squared std errors
    se2 = va + vb
    with quiet():
        t = diff / np.sqrt(se2)
        df = se2**2 / (va**2 / (sa - 1) + vb**2 / (sb - 1))
        p = 2.0 * stats.t.sf(np.abs(t), df)
    degenerate = se2 <= 1e-24  # both sides constant (up to rounding in the variance)
    t = np.where(degenerate, np.where(diff == 0, 0.0, np.nan), t)
    p = np.where(degenerate, np.where(diff == 0, 1.0, np.nan), p)
    return t, p


def _split_weights(splits: np.ndarray, s: int, sa: int) -> np.ndarray:
    """(P, S) weights giving mean(B) - mean(A) for each split; ``splits`` = A's run indices."""
    m = np.full((splits.shape[0], s), 1.0 / (s - sa))
    np.put_along_axis(m, splits, -1.0 / sa, axis=1)
    return m


def permutation_test(acc_a: Any, acc_b: Any, *, n_resamples: int = 9999,
                     random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """Two-sided permutation test over seed labels of ``mean(B) - mean(A)``, per class.

    Exact (all C(Sa + Sb, Sa) relabellings, observed one included) when that number is at
    most ``n_resamples``; otherwise ``n_resamples`` random relabellings with the +1
    correction. ``p = min(1, 2 min(P(T <= t), P(T >= t)))`` with the relative tie tolerance of
    ``scipy.stats.permutation_test(permutation_type="independent")``, which it matches.
    Columns with a NaN give NaN.

    Examples
    --------
    >>> permutation_test([[0.5], [0.52], [0.51]], [[0.7], [0.72], [0.69]]).tolist()
    [0.1]
    """
    a, b = _check_pair(acc_a, acc_b)
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    rng = check_random_state(random_state)
    sa, s = a.shape[0], a.shape[0] + b.shape[0]
    pooled = np.vstack([a, b])  # (S, K)
    observed = b.mean(axis=0) - a.mean(axis=0)  # (K,)
    # Tie tolerance: scipy's 100 eps, but relative to the size of the summed accuracies, not
    # of the (possibly tiny) observed difference, since that is the scale of rounding errors.
    with quiet():
        scale = np.maximum(np.abs(observed), np.nanmax(np.abs(pooled), axis=0))
    gamma = np.finfo(np.float64).eps * 100 * np.nan_to_num(scale)
    exact = math.comb(s, sa) <= n_resamples
    if exact:
        splits = np.array(list(itertools.combinations(range(s), sa)), dtype=np.int64)
        total = len(splits)
    else:
        perms = rng.permuted(np.tile(np.arange(s), (n_resamples, 1)), axis=1)
        splits, total = perms[:, :sa], n_resamples
    less = np.zeros(pooled.shape[1], dtype=np.int64)
    greater = np.zeros_like(less)
    chunk = max(1, 4_000_000 // max(1, pooled.shape[1]))  # bound memory to ~32 MB per chunk
    for start in range(0, total, chunk):  # chunks of resamples, vectorised within
        null = _split_weights(splits[start:start + chunk], s, sa) @ pooled  # (chunk, K)
        less += (null <= observed + gamma).sum(axis=0)
        greater += (null >= observed - gamma).sum(axis=0)
    adj = 0 if exact else 1
    p = 2.0 * np.minimum(less + adj, greater + adj) / (total + adj)
    return np.where(np.isnan(pooled).any(axis=0), np.nan, np.minimum(p, 1.0))


def effect_size(acc_a: Any, acc_b: Any) -> np.ndarray:
    """Hedges' g of ``acc_B - acc_A`` across runs, per class.

    ``g = J (mean_B - mean_A) / s_pooled`` with ``s_pooled^2 = (SS_A + SS_B) / (Sa + Sb - 2)``
    and the small-sample correction ``J = 1 - 3 / (4 (Sa + Sb) - 9)``. NaN when
    ``Sa + Sb < 3`` or ``s_pooled = 0`` with unequal means; 0 when both are 0.

    Examples
    --------
    >>> round(float(effect_size([[0.5], [0.6]], [[0.7], [0.8]])[0]), 4)
    1.6162
    """
    a, b = _check_pair(acc_a, acc_b)
    s = a.shape[0] + b.shape[0]
    if s < 3:
        return np.full(a.shape[1], np.nan)
    diff = b.mean(axis=0) - a.mean(axis=0)
    ss = ((a - a.mean(axis=0)) ** 2).sum(axis=0) + ((b - b.mean(axis=0)) ** 2).sum(axis=0)
    sp = np.sqrt(ss / (s - 2))
    j = 1.0 - 3.0 / (4.0 * s - 9.0)
    with quiet():
        g = np.where(sp > 1e-12, j * diff / sp, np.where(diff == 0, 0.0, np.nan))
    return g



# ---------------------------------------------------------------- compare_predictions


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer | np.bool_):
        return x.item()
    return x


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare_predictions`: a per-class table and an overall summary.

    Attributes
    ----------
    classes : DataFrame
        One row per class, columns ``class, support, acc_baseline, acc_candidate, delta,
        delta_low, delta_high, p_value, q_value, verdict, test, b, c, effect_size,
        acc_baseline_std, acc_candidate_std``. ``verdict`` is ``"drop"``, ``"gain"`` or
        ``"none"``; ``b`` / ``c`` are the discordant counts (A right & B wrong / A wrong & B
        right) summed over all run pairs; ``*_std`` are NaN with a single run.
    overall : dict
        ``acc_baseline, acc_candidate, delta, delta_low, delta_high, p_value, n_classes,
        n_drop, n_gain, alpha, correction, test, n_runs_baseline, n_runs_candidate,
        confidence``.
    """

    classes: pd.DataFrame
    overall: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (Python scalars; NaN and inf become None)."""
        records = [{key: _nan_to_none(value) for key, value in row.items()}
                   for row in self.classes.to_dict(orient="records")]
        return {"overall": {key: _nan_to_none(v) for key, v in self.overall.items()},
                "classes": records}

    def drops(self, min_points: float = 0.0) -> pd.DataFrame:
        """Significant drops larger than ``min_points`` accuracy points, worst first."""
        min_points = float(check_in_range(min_points, "min_points", 0.0, 100.0))
        t = self.classes
        keep = (t["verdict"] == "drop") & (t["delta"].abs() * 100.0 > min_points)
        return t[keep].sort_values("delta", kind="stable")


def _check_runs_preds(preds: Any, name: str, n: int, k: int) -> np.ndarray:
    """Predictions of one or several runs as an (S, N) int64 array."""
    if isinstance(preds, np.ndarray) and preds.ndim in (1, 2):
        runs = [preds] if preds.ndim == 1 else list(preds)
    elif isinstance(preds, Sequence) and not isinstance(preds, str):
        runs = list(preds)
    else:
        raise fail(name, "be a sequence of prediction arrays (one per run)", type(preds))
    if not runs:
        raise fail(name, "hold at least one run", "an empty sequence")
    out = []
    for i, run in enumerate(runs):
        y = check_labels(run, f"{name}[{i}]", n_classes=k)
        if len(y) != n:
            raise fail(f"{name}[{i}]", f"have the same length as 'y_true' ({n})", len(y))
        out.append(y)
    return np.stack(out)


def _run_counts(yt: np.ndarray, correct: np.ndarray, k: int) -> np.ndarray:
    """(S, K) correct counts per run, one bincount over (run, class) cells."""
    s = correct.shape[0]
    cell = (np.arange(s)[:, None] * k + yt[None, :])[correct]
    return np.bincount(cell, minlength=s * k).reshape(s, k)


def _pvalues(test: str, acc_a: np.ndarray, acc_b: np.ndarray, b: np.ndarray, c: np.ndarray,
             pairs: int, rng: np.random.Generator) -> np.ndarray:
    if test == "welch":
        return welch_test(acc_a, acc_b)[1]
    if test == "permutation":
        return permutation_test(acc_a, acc_b, random_state=rng)
    # McNemar on the per-pair average discordant counts (see compare_predictions).
    return mcnemar_exact(np.rint(b / pairs), np.rint(c / pairs))


def compare_predictions(y_true: Any, preds_a: Sequence[np.ndarray], preds_b: Sequence[np.ndarray],
                        n_classes: int, *, class_names: Sequence[Any] | None = None,
                        alpha: float = 0.05, correction: str = "bh", test: str = "auto",
                        n_boot: int = 1000, confidence: float = 0.95,
                        random_state: int | np.random.Generator | None = None) -> Comparison:
    """Compare a baseline (``preds_a``) and a candidate (``preds_b``) per class.

    Parameters
    ----------
    y_true : array of int, shape (N,)
        The shared test set.
    preds_a, preds_b : sequence of arrays of int, each shape (N,)
        Predicted labels, one array per run (seed); a single (N,) array or an (S, N) array
        also works.
    n_classes : int
    class_names : sequence of K names, optional
    alpha : float in (0, 1)
        Level at which a q-value makes a verdict.
    correction : {"bh", "holm", "none"}
        Multiple-comparison adjustment across classes.
    test : {"auto", "mcnemar", "welch", "permutation"}
        ``"auto"``: Welch across seeds when both sides have >= 2 runs, else McNemar.
        ``"welch"`` and ``"permutation"`` need >= 2 runs per side. McNemar with several
        runs uses the per-pair average discordant counts ``round(b / (Sa Sb))`` and
        ``round(c / (Sa Sb))``, i.e. the test of one typical run pair: pooling the counts of
        all pairs would count the same test images several times as independent evidence.
    n_boot, confidence, random_state
        Bootstrap of the delta: paired class-stratified bootstrap with one run per side,
        otherwise a two-level bootstrap (seeds, then samples) of the difference of seed means,
        drawn independently for the two sides (which ignores the positive correlation through
        the shared test set, so is conservative). Percentile intervals.

    Returns
    -------
    Comparison
        ``verdict`` is ``"drop"`` when ``q < alpha`` and ``delta < 0``, ``"gain"`` when
        ``q < alpha`` and ``delta > 0``, else ``"none"``. Classes absent from ``y_true`` get
        NaN (one ``UserWarning``) and verdict ``"none"``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 3000)
    >>> a = np.where(rng.random(3000) < 0.9, y, (y + 1) % 3)
    >>> b = np.where((y == 2) & (rng.random(3000) < 0.3), 0, a)
    >>> res = compare_predictions(y, [a], [b], 3, random_state=0)
    >>> res.classes["verdict"].tolist()
    ['none', 'none', 'drop']
    """
    k = check_n_classes(n_classes)
    yt = check_labels(y_true, "y_true", n_classes=k)
    if yt.size == 0:
        raise fail("y_true", "hold at least one sample", "0 samples")
    names = check_class_names(class_names, k)
    runs_a = _check_runs_preds(preds_a, "preds_a", len(yt), k)  # (Sa, N)
    runs_b = _check_runs_preds(preds_b, "preds_b", len(yt), k)  # (Sb, N)
    alpha = float(check_in_range(alpha, "alpha", 0, 1, inclusive=(False, False)))
    correction = check_choice(correction, "correction", CORRECTIONS)
    test = check_choice(test, "test", TESTS)
    n_boot = check_positive_int(n_boot, "n_boot")
    confidence = check_confidence(confidence)
    rng = check_random_state(random_state)
    sa, sb = len(runs_a), len(runs_b)
    if test == "auto":
        test = "welch" if sa >= 2 and sb >= 2 else "mcnemar"
    elif test != "mcnemar" and min(sa, sb) < 2:
        raise fail("test", "be 'mcnemar' or 'auto' when a side has a single run",
                   f"{test!r} with {sa} baseline and {sb} candidate run(s)")

    ok_a, ok_b = runs_a == yt, runs_b == yt  # (S, N) bool
    support = np.bincount(yt, minlength=k)
    warn_absent(support, names)
    n_total = support.sum()
    with quiet():
        acc_a = _run_counts(yt, ok_a, k) / support  # (Sa, K), NaN for absent classes
        acc_b = _run_counts(yt, ok_b, k) / support
        overall_a, overall_b = ok_a.mean(axis=1), ok_b.mean(axis=1)  # (S,)
    # Discordant counts summed over all Sa * Sb run pairs, per sample then per class.
    right_a, right_b = ok_a.sum(axis=0), ok_b.sum(axis=0)  # (N,)
    b = np.bincount(yt, weights=right_a * (sb - right_b), minlength=k).round().astype(np.int64)
    c = np.bincount(yt, weights=(sa - right_a) * right_b, minlength=k).round().astype(np.int64)
    pairs = sa * sb

    p = _pvalues(test, acc_a, acc_b, b, c, pairs, rng)
    p = np.where(support > 0, p, np.nan)
    p_all = _pvalues(test, overall_a[:, None], overall_b[:, None], b.sum(keepdims=True),
                     c.sum(keepdims=True), pairs, rng)[0]

    delta = acc_b.mean(axis=0) - acc_a.mean(axis=0)
    if sa == 1 and sb == 1:
        cells = _cell_counts(yt, ok_a[0], ok_b[0], k)
        rep_cells = _paired_replicates(cells, n_boot, rng)  # (B, K, 4)
        reps = _delta_from_cells(rep_cells, support)  # (B, K)
        reps_all = (rep_cells[..., 2] - rep_cells[..., 1]).sum(axis=1) / n_total  # (B,)
    else:
        ca, cb = _run_counts(yt, ok_a, k), _run_counts(yt, ok_b, k)
        boot_a = two_level_bootstrap_accuracy(ca, support, n_boot=n_boot, random_state=rng)
        boot_b = two_level_bootstrap_accuracy(cb, support, n_boot=n_boot, random_state=rng)
        reps = boot_b - boot_a
        with quiet():
            reps_all = np.nansum(reps * support, axis=1) / n_total
    low, high = bootstrap_interval(delta, reps, confidence=confidence)
    low_all, high_all = bootstrap_interval(overall_b.mean() - overall_a.mean(), reps_all,
                                           confidence=confidence)

    q = adjust_pvalues(p, correction)
    significant = q < alpha
    verdict = np.where(significant & (delta < 0), "drop",
                       np.where(significant & (delta > 0), "gain", "none"))
    with quiet():
        std_a = acc_a.std(axis=0, ddof=1) if sa > 1 else np.full(k, np.nan)
        std_b = acc_b.std(axis=0, ddof=1) if sb > 1 else np.full(k, np.nan)
    classes = pd.DataFrame({
        "class": pd.Series(names, dtype=object),
        "support": support.astype(np.int64),
        "acc_baseline": acc_a.mean(axis=0),
        "acc_candidate": acc_b.mean(axis=0),
        "delta": delta,
        "delta_low": low,
        "delta_high": high,
        "p_value": p,
        "q_value": q,
        "verdict": pd.Series(verdict, dtype=object),
        "test": test,
        "b": b,
        "c": c,
        "effect_size": effect_size(acc_a, acc_b),
        "acc_baseline_std": std_a,
        "acc_candidate_std": std_b,
    }, columns=list(CLASS_COLUMNS))
    overall = {
        "acc_baseline": float(overall_a.mean()),
        "acc_candidate": float(overall_b.mean()),
        "delta": float(overall_b.mean() - overall_a.mean()),
        "delta_low": float(low_all),
        "delta_high": float(high_all),
        "p_value": float(p_all),
        "n_classes": k,
        "n_drop": int((verdict == "drop").sum()),
        "n_gain": int((verdict == "gain").sum()),
        "alpha": alpha,
        "correction": correction,
        "test": test,
        "n_runs_baseline": sa,
        "n_runs_candidate": sb,
        "confidence": confidence,
    }
    return Comparison(classes=classes, overall=overall)
