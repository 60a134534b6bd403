"""Per-class paired tests of a baseline (A) against a candidate (B) on the same test set.

McNemar's score test on the discordant pairs of one run per side with the score interval of
the paired difference that inverts it (:func:`mcnemar_score_test`, :func:`mcnemar_interval`;
the exact conditional test :func:`mcnemar_exact` stays available), the paired class-stratified
bootstrap of the accuracy difference, and, when both sides have several runs (seeds), the
crossed seeds × images test (:func:`crossed_test`, the default), the Welch t-test, a
permutation test over seed labels and Hedges' g. Sign convention everywhere:
``delta = acc_B - acc_A``, so a negative delta is a drop caused by the candidate.
:func:`classgap.audit.compare.compare_predictions` combines them into one report.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy import stats

from classgap._validation import (
    check_choice,
    check_labels,
    check_positive_int,
    check_random_state,
    fail,
)
from classgap.audit.intervals import (
    METHODS,
    binomial_floor,
    bootstrap_interval,
    check_confidence,
    clip_interval,
    quiet,
)
from classgap.audit.perclass import check_n_classes, warn_absent

__all__ = [
    "crossed_components",
    "crossed_test",
    "effect_size",
    "mcnemar_exact",
    "mcnemar_interval",
    "mcnemar_score_test",
    "paired_bootstrap_delta",
    "permutation_test",
    "welch_test",
]


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


# Half the lattice step of c - b: moving one pair between a discordant and a concordant cell
# changes c - b by 1 (McNemar's usual correction of 1 is half the step of 2 that c - b takes
# when m = b + c is held fixed; here m varies with the test images). Chosen by exact
# enumeration over n in [20, 10,000] and discordant rates in [0, 0.3]: without it the score
# interval's coverage falls to 93%, with it it stays >= 95.0% (bench/paired_coverage.py).
CONTINUITY = 0.5
_BISECTIONS = 50  # bracket of width <= 2 halved to ~2e-15


def _check_discordant(b: Any, c: Any, n: Any | None = None) -> tuple[np.ndarray, ...]:
    bb, cc = _nonneg_counts(b, "b"), _nonneg_counts(c, "c")
    if n is None:
        return tuple(np.broadcast_arrays(bb, cc))
    bb, cc, nn = np.broadcast_arrays(bb, cc, _nonneg_counts(n, "n"))
    over = bb + cc > nn
    if over.any():
        i = np.flatnonzero(over.reshape(-1))[0]
        raise fail("n", "be >= b + c (the discordant pairs are among the n pairs)",
                   f"n = {nn.flat[i]} with b + c = {bb.flat[i] + cc.flat[i]}")
    return bb, cc, nn


def mcnemar_score_test(b: Any, c: Any) -> np.ndarray:
    """Two-sided McNemar score test with a continuity correction of 1/2, vectorised.

    ``z = max(|c - b| - 1/2, 0) / sqrt(b + c)`` and ``p = 2 (1 - Phi(z))``, 1.0 when
    ``b + c = 0``. This is the score test of ``delta = 0`` for a paired difference of
    proportions (Tango 1998) that :func:`mcnemar_interval` inverts. Its p-value lies between
    those of ``statsmodels`` ``mcnemar(table, exact=False, correction=False)`` (correction 0)
    and ``correction=True`` (correction 1), and tends to both as ``b + c`` grows. The false
    positive rate, computed exactly over ``n`` in [20, 10,000] and discordant rates up to 0.3,
    stays <= 5% at alpha = 0.05 (``bench/RESULTS.md``).

    Parameters
    ----------
    b : array of int
        Discordant pairs with A right, B wrong.
    c : array of int, broadcastable with ``b``
        Discordant pairs with A wrong, B right.

    Returns
    -------
    p : ndarray of float, the broadcast shape

    Examples
    --------
    >>> mcnemar_score_test([10, 3], [2, 3]).round(4).tolist()
    [0.0304, 1.0]
    """
    bb, cc = _check_discordant(b, c)
    m = (bb + cc).astype(np.float64)
    with quiet():
        z = np.maximum(np.abs(cc - bb) - CONTINUITY, 0.0) / np.sqrt(m)
    return np.where(m > 0, 2.0 * stats.norm.sf(z), 1.0)


def _score_z(b: np.ndarray, c: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Continuity-corrected score statistic of ``delta = d`` (``|z|``; floats, ``n > 0``).

    Under ``pc = pb + d`` the restricted MLE of ``pb`` solves ``2n p^2 + B p + C = 0`` with
    ``B = -(b + c) + d (2n + b - c)``, ``C = -b d (1 - d)`` (Tango 1998, eq. 5; derived from
    the multinomial likelihood of b, c and the n - b - c concordant pairs), and
    ``Var(c - b) = n (2 pb + d - d^2)``.
    """
    big_b = d * (2.0 * n + b - c) - (b + c)
    big_c = -b * d * (1.0 - d)
    p = (np.sqrt(np.maximum(big_b * big_b - 8.0 * n * big_c, 0.0)) - big_b) / (4.0 * n)
    p = np.clip(p, np.maximum(0.0, -d), np.maximum((1.0 - d) / 2.0, 0.0))  # rounding only
    var = n * (2.0 * p + d - d * d)
    num = np.maximum(np.abs(c - b - n * d) - CONTINUITY, 0.0)
    with quiet():
        return np.where(var > 0, num / np.sqrt(np.maximum(var, 0.0)),
                        np.where(num == 0, 0.0, np.inf))


def mcnemar_interval(b: Any, c: Any, n: Any, *, confidence: float = 0.95,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Score interval of a paired difference ``delta = pc - pb``: the test it inverts is
    :func:`mcnemar_score_test`.

    ``b`` of the ``n`` pairs have A right and B wrong, ``c`` A wrong and B right, and
    ``(b, c, n - b - c)`` is multinomial with probabilities ``(pb, pc, 1 - pb - pc)``: new test
    images change ``b + c`` too, which the older conditional Clopper-Pearson interval ignored
    (and under-covered, to 57% at n = 100, pb = 0.05, pc = 0). The interval is Tango's (1998)
    asymptotic score interval with a continuity correction of 1/2: every ``d`` in [-1, 1] whose
    score statistic ``(|c - b - n d| - 1/2)_+ / sqrt(n (2 pb~ + d - d^2))`` is below the normal
    quantile, with ``pb~`` the restricted MLE of ``pb`` under ``delta = d`` (closed form); the
    bounds are found by bisection, vectorised over all entries. At ``d = 0`` the statistic is
    McNemar's, so the interval excludes 0 exactly when :func:`mcnemar_score_test` gives
    ``p < 1 - confidence`` (the side of 0 each bound lies on is set from that p-value). Its
    coverage, computed exactly over ``n`` in [20, 10,000] and ``pb``, ``pc`` in [0, 0.3], is
    >= 95.0% at 95% (Tango's without the correction: 93%; ``bench/RESULTS.md``). The
    bounds stay in [-1, 1]; ``b = c = 0`` gives an interval around 0 of width ~``4 / n``
    (no discordant pair seen is not a change of exactly 0); NaN when ``n = 0``.

    Parameters
    ----------
    b, c : array of int
        Discordant pairs (A right & B wrong, A wrong & B right).
    n : array of int
        Pairs (the denominator of the accuracies), ``>= b + c``, broadcastable with ``b``.
    confidence : float in (0, 1)

    Returns
    -------
    low, high : ndarray of float, the broadcast shape

    Examples
    --------
    >>> lo, hi = mcnemar_interval([10], [2], [100])
    >>> bool(hi[0] < 0), float(mcnemar_score_test([10], [2])[0]) < 0.05
    (True, True)
    """
    confidence = check_confidence(confidence)
    bi, ci, ni = _check_discordant(b, c, n)
    empty = ni == 0
    bf, cf = bi.astype(np.float64), ci.astype(np.float64)
    nf = np.where(empty, 1.0, ni).astype(np.float64)
    crit = stats.norm.isf((1.0 - confidence) / 2.0)
    est = (cf - bf) / nf
    excluded = mcnemar_score_test(bi, ci) < 1.0 - confidence
    # Each bound is bracketed by a rejected point ("out") and an accepted one ("in"); 0 starts
    # on the side the p-value puts it, so bisection can never move a bound across 0.
    bounds = []
    for edge, sign in ((-1.0, -1.0), (1.0, 1.0)):
        at_edge = _score_z(bf, cf, nf, np.full_like(est, edge)) <= crit
        zero_out = excluded & (sign * est < 0)  # 0 lies beyond this bound
        out = np.where(zero_out, 0.0, edge)
        inner = np.where(zero_out, est, sign * np.maximum(sign * est, 0.0))
        for _ in range(_BISECTIONS):
            mid = 0.5 * (out + inner)
            ok = _score_z(bf, cf, nf, mid) <= crit
            inner, out = np.where(ok, mid, inner), np.where(ok, out, mid)
        bounds.append(np.where(at_edge & ~zero_out, edge, inner))
    low, high = bounds
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def _check_correct(x: Any, name: str, n: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or len(arr) != n:
        raise fail(name, f"be a 1-D array with one entry per sample ({n})", f"shape {arr.shape}")
    if arr.dtype.kind != "b":
        if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
            raise fail(name, "hold booleans (or 0/1)", arr[~np.isin(arr, (0, 1))][:1])
    return arr.astype(bool)


def cell_counts(yt: np.ndarray, ca: np.ndarray, cb: np.ndarray, k: int) -> np.ndarray:
    """(K, 4) counts of cells [both right, A only, B only, both wrong] per class."""
    cell = 2 * (~ca) + (~cb)  # 0: both, 1: A only (b), 2: B only (c), 3: neither
    return np.bincount(yt * 4 + cell, minlength=4 * k).reshape(k, 4)


def paired_replicates(cells: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K, 4) stratified paired-bootstrap cell counts.

    Resampling the n_k pairs (A correct, B correct) of class k with replacement, with the same
    indices for both models, only matters through the four cell counts, which are
    Multinomial(n_k, cells_k / n_k): one broadcast multinomial draw gives them all.
    """
    n = cells.sum(axis=1)  # (K,)
    pvals = np.where(n[:, None] > 0, cells / np.maximum(n, 1)[:, None], [1.0, 0, 0, 0])
    return rng.multinomial(n, pvals, size=(n_boot, n.size))


def delta_from_cells(cells: np.ndarray, n: np.ndarray) -> np.ndarray:
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
    cells = cell_counts(yt, ca, cb, k)
    n = cells.sum(axis=1)
    warn_absent(n)
    delta = delta_from_cells(cells, n)
    reps = delta_from_cells(paired_replicates(cells, n_boot, rng), n)  # (B, K)
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
    low, high = clip_interval(low, high, (-1.0, 1.0), "change (Δ)")  # "basic" can pass ±1
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


def _class_var(yt: np.ndarray, x: np.ndarray, n: np.ndarray, k: int) -> np.ndarray:
    """(K,) sample variance (ddof 1) of the per-image values ``x`` within each class."""
    s1 = np.bincount(yt, weights=x, minlength=k)
    s2 = np.bincount(yt, weights=x * x, minlength=k)
    with quiet():
        return np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)


def _interaction_ms(yt: np.ndarray, ok: np.ndarray, n: np.ndarray, k: int) -> np.ndarray:
    """(K,) run × image interaction mean square of the 0/1 correctness table of one side.

    The two-way ANOVA without replication: ``SS = sum x - sum_i r_i^2 / S - sum_s c_s^2 / n +
    C^2 / (S n)`` over the (S, n_k) table of class k, with ``r_i`` the runs right on image i,
    ``c_s`` the images run s got right and ``C`` their total (``x^2 = x`` for 0/1), divided by
    ``(S - 1)(n - 1)``.
    """
    s = ok.shape[0]
    right = ok.sum(axis=0).astype(np.float64)  # (N,) runs right per image
    counts = np.stack([np.bincount(yt[row], minlength=k) for row in ok])  # (S, K) correct
    total = counts.sum(axis=0).astype(np.float64)
    ss = (total - np.bincount(yt, weights=right * right, minlength=k) / s
          - (counts.astype(np.float64) ** 2).sum(axis=0) / n + total * total / (s * n))
    with quiet():
        return np.maximum(ss, 0.0) / ((s - 1) * (n - 1))


def crossed_components(y_true: Any, correct_a: Any, correct_b: Any, n_classes: int,
                       ) -> dict[str, np.ndarray]:
    """The per-class variance parts of ``delta = mean acc_B - mean acc_A`` that
    :func:`crossed_test` combines (and :mod:`classgap.analysis.plan` plans seeds with).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    correct_a, correct_b : array of bool, shape (S_A, N) and (S_B, N)
        Whether each run got each sample right; at least 2 runs per side.
    n_classes : int

    Returns
    -------
    dict of ndarray, shape (K,)
        ``delta``; ``v_seed_a``, ``v_seed_b``: each side's variance over runs of the class
        accuracy divided by its runs (the squared standard error of its mean on these images);
        ``v_img``: the variance over the class's images of the paired per-image difference
        ``d_i`` divided by ``n``; ``v_int``: the two run × image interaction mean squares, each
        divided by its runs times ``n``; ``n``: the images of the class. All NaN for absent
        classes (``n`` stays 0).

    Examples
    --------
    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> a = np.array([[1, 1, 0, 1, 1, 1], [1, 0, 0, 1, 1, 1]], dtype=bool)
    >>> c = crossed_components(y, a, a, 2)
    >>> c["delta"].tolist(), c["n"].tolist(), c["v_seed_a"].round(4).tolist()
    ([0.0, 0.0], [3.0, 3.0], [0.0278, 0.0])
    """
    k = check_n_classes(n_classes)
    yt = check_labels(y_true, "y_true", n_classes=k)
    ok_a, ok_b = (np.asarray(x) for x in (correct_a, correct_b))
    for name, ok in (("correct_a", ok_a), ("correct_b", ok_b)):
        if ok.ndim != 2 or ok.shape[1] != len(yt) or ok.shape[0] < 2:
            raise fail(name, f"be a (runs >= 2, {len(yt)}) boolean array", f"shape {ok.shape}")
    ok_a, ok_b = ok_a.astype(bool), ok_b.astype(bool)
    sa, sb = ok_a.shape[0], ok_b.shape[0]
    n = np.bincount(yt, minlength=k).astype(np.float64)  # (K,) images per class
    with quiet():
        acc_a = np.stack([np.bincount(yt[r], minlength=k) for r in ok_a]) / n  # (S_A, K)
        acc_b = np.stack([np.bincount(yt[r], minlength=k) for r in ok_b]) / n
        delta = acc_b.mean(axis=0) - acc_a.mean(axis=0)
        v_a = acc_a.var(axis=0, ddof=1) / sa  # seed noise on these images
        v_b = acc_b.var(axis=0, ddof=1) / sb
        d = ok_b.mean(axis=0) - ok_a.mean(axis=0)  # (N,) paired per-image difference
        v_img = np.nan_to_num(_class_var(yt, d, n, k) / n)  # one image: no image variance
        v_int = np.nan_to_num(_interaction_ms(yt, ok_a, n, k) / (sa * n)
                              + _interaction_ms(yt, ok_b, n, k) / (sb * n))
    absent = n == 0
    out = {"delta": delta, "v_seed_a": v_a, "v_seed_b": v_b, "v_img": v_img, "v_int": v_int}
    return {**{key: np.where(absent, np.nan, v) for key, v in out.items()}, "n": n}


def crossed_test(y_true: Any, correct_a: Any, correct_b: Any, n_classes: int, *,
                 confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Per-class test and interval of ``delta = mean acc_B - mean acc_A`` with seeds *and*
    test images random: a drop that would reappear with new seeds on new test images.

    Model: run s of a recipe gets image i of class k right with a probability made of a seed
    effect, an image effect and their interaction (a crossed two-way random design, images
    shared by both recipes, seeds not). The variance of ``delta`` is estimated by moments::

        V = s2_A / S_A + s2_B / S_B + s2_d / n - MS_A / (S_A n) - MS_B / (S_B n)

    with ``s2_A`` the variance over runs of the class accuracy (what Welch uses: seed noise on
    fixed images), ``s2_d`` the variance over the n images of the class of ``d_i`` = (share of B
    runs right on i) - (share of A runs right on i) (test-image noise, paired), and ``MS`` each
    side's run × image interaction mean square, which both other terms contain and which is
    counted once. ``V`` is floored at the larger of its two one-way parts (each of which is
    below the true variance in expectation). The statistic ``delta / sqrt(V)`` is referred to a
    t distribution with Welch-Satterthwaite degrees of freedom of the three positive parts;
    the interval ``delta ± t sqrt(V)`` is the same computation inverted, so ``p < 1 -
    confidence`` exactly when the interval excludes 0. The parts come from
    :func:`crossed_components`. Where every part is 0 (no run and no image differs, e.g. a
    class at 100% in every run of both sides) ``V`` is the variance of two binomials of the
    class's images, ``binomial_floor(acc_A, n) + binomial_floor(acc_B, n)``
    (:func:`~classgap.audit.intervals.binomial_floor`), with a normal quantile: no variation
    seen is not certainty. The interval is clipped to [-1, 1]
    (:func:`~classgap.audit.intervals.clip_interval`); the clip never moves a bound across 0.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    correct_a, correct_b : array of bool, shape (S_A, N) and (S_B, N)
        Whether each run got each sample right; at least 2 runs per side.
    n_classes : int
    confidence : float
        Level of the interval.

    Returns
    -------
    dict of ndarray, shape (K,)
        ``delta, se, df, statistic, p_value, low, high``; NaN for absent classes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 500)
    >>> a = rng.random((4, 1000)) < 0.8
    >>> b = rng.random((4, 1000)) < np.where(y == 1, 0.6, 0.8)
    >>> res = crossed_test(y, a, b, 2)
    >>> bool(res["p_value"][1] < 0.001), bool(res["high"][1] < 0 < res["high"][0])
    (True, True)
    """
    parts = crossed_components(y_true, correct_a, correct_b, n_classes)
    confidence = check_confidence(confidence)
    sa, sb = np.asarray(correct_a).shape[0], np.asarray(correct_b).shape[0]
    delta, n, v_img, v_int = parts["delta"], parts["n"], parts["v_img"], parts["v_int"]
    v_a, v_b = parts["v_seed_a"], parts["v_seed_b"]
    with quiet():
        var = np.maximum(v_a + v_b + v_img - v_int, np.maximum(v_a + v_b, v_img))
        ok_a = np.asarray(correct_a, dtype=bool)
        yt = np.asarray(y_true).astype(np.int64)
        acc_a = np.bincount(yt, weights=ok_a.mean(axis=0), minlength=n.size) / n
        var = np.where(var > 0, var, binomial_floor(acc_a, n) + binomial_floor(acc_a + delta, n))
        se = np.sqrt(var)
        dfs = v_a**2 / (sa - 1) + v_b**2 / (sb - 1) + v_img**2 / np.maximum(n - 1, 1)
        df = np.where(dfs > 0, (v_a + v_b + v_img) ** 2 / dfs, np.inf)
        stat = np.where(se > 0, delta / se, np.where(delta == 0, 0.0, np.copysign(np.inf,
                                                                                  delta)))
        p = 2.0 * stats.t.sf(np.abs(stat), df)
        half = stats.t.ppf(0.5 + confidence / 2.0, df) * se
    absent = n == 0
    low, high = clip_interval(delta - half, delta + half, (-1.0, 1.0), "change (Δ)")
    out = {"delta": delta, "se": se, "df": df, "statistic": stat, "p_value": p,
           "low": low, "high": high}
    return {key: np.where(absent, np.nan, v) for key, v in out.items()}


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
