"""One run per side: McNemar's score test and the score interval of Δ that inverts it.

The interval must cover Δ = pc - pb when new test images change b and c (and so m = b + c):
coverage is computed exactly by enumerating the multinomial (b, c, rest) distribution at small
n, and by Monte Carlo at large n (the full grid is bench/paired_coverage.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import gammaln
from statsmodels.stats.contingency_tables import mcnemar

from classgap.audit.compare import compare_predictions
from classgap.audit.paired import _score_z, mcnemar_interval, mcnemar_score_test
from classgap.errors import InputError


def trinomial(n: int, pb: float, pc: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (b, c) with b + c <= n and its probability under Multinomial(n; pb, pc, rest)."""
    b, c = (x.ravel() for x in np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij"))
    keep = b + c <= n
    b, c = b[keep], c[keep]
    rest = n - b - c
    logp = gammaln(n + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(rest + 1)
    for count, prob in ((b, pb), (c, pc), (rest, 1.0 - pb - pc)):
        logp = logp + np.where(count > 0, count * np.log(prob) if prob > 0 else -np.inf, 0.0)
    return b, c, np.exp(logp)


def exact_coverage(n: int, pb: float, pc: float) -> float:
    b, c, w = trinomial(n, pb, pc)
    low, high = mcnemar_interval(b, c, n)
    delta = pc - pb
    return float(w[(low <= delta) & (delta <= high)].sum())


# ------------------------------------------------------------------ one procedure
def test_interval_excludes_zero_exactly_when_p_below_level_on_every_small_table():
    for confidence in (0.9, 0.95, 0.99):
        for n in range(1, 41):
            b, c = (x.ravel() for x in np.meshgrid(np.arange(n + 1), np.arange(n + 1)))
            b, c = b[b + c <= n], c[b + c <= n]
            low, high = mcnemar_interval(b, c, n, confidence=confidence)
            p = mcnemar_score_test(b, c)
            np.testing.assert_array_equal((low > 0) | (high < 0), p < 1 - confidence)
            delta = (c - b) / n
            assert np.all((low <= delta) & (delta <= high))
            assert np.all((low >= -1) & (high <= 1))


def test_interval_excludes_zero_exactly_when_p_below_level_on_random_large_tables():
    rng = np.random.default_rng(7)
    n = rng.integers(1, 1_000_000, 20_000)
    m = rng.binomial(n, rng.uniform(0, 1, n.size) ** 3)
    c = rng.binomial(m, rng.uniform(0.3, 0.7, n.size))
    b = m - c
    for confidence in (0.95, 0.999):
        low, high = mcnemar_interval(b, c, n, confidence=confidence)
        excludes = (low > 0) | (high < 0)
        np.testing.assert_array_equal(excludes, mcnemar_score_test(b, c) < 1 - confidence)
        assert 0.05 < excludes.mean() < 0.95  # both outcomes exercised, near the boundary too
        delta = (c - b) / n
        assert np.all((low <= delta) & (delta <= high))


def test_bounds_are_the_points_where_the_score_statistic_crosses_the_quantile():
    b, c, n = np.array([7, 0, 30, 3]), np.array([19, 0, 2, 0]), np.array([200, 50, 400, 9])
    low, high = mcnemar_interval(b, c, n)
    crit = stats.norm.isf(0.025)
    for i in range(len(b)):
        for bound in (low[i], high[i]):
            if abs(bound) < 1:
                z = _score_z(*(np.float64(v) for v in (b[i], c[i], n[i], bound)))
                assert z == pytest.approx(crit, rel=1e-9)


def test_restricted_mle_maximises_the_multinomial_likelihood():
    # The closed form of Tango (1998) against a numerical maximisation over pb.
    for b, c, n, d in [(7, 19, 200, 0.02), (30, 2, 400, -0.1), (3, 0, 9, -0.5),
                       (0, 5, 60, 0.2), (4, 4, 10, 0.0)]:
        def nll(p, b=b, c=c, n=n, d=d):
            return -(b * np.log(p) + c * np.log(p + d) + (n - b - c) * np.log(1 - 2 * p - d))
        lo, hi = max(0.0, -d) + 1e-12, (1 - d) / 2 - 1e-12
        best = optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded",
                                        options={"xatol": 1e-12}).x
        var = n * (2 * best + d - d * d)
        want = max(abs(c - b - n * d) - 0.5, 0) / np.sqrt(var)
        got = _score_z(*(np.float64(v) for v in (b, c, n, d)))
        assert got == pytest.approx(want, rel=1e-5)


def test_score_test_sits_between_statsmodels_mcnemar_with_and_without_correction():
    rng = np.random.default_rng(3)
    b, c = rng.integers(0, 60, 300), rng.integers(0, 60, 300)
    ours = mcnemar_score_test(b, c)
    for i in range(len(b)):
        if b[i] + c[i] == 0:
            assert ours[i] == 1.0
            continue
        table = [[5, b[i]], [c[i], 5]]
        plain = mcnemar(table, exact=False, correction=False).pvalue
        if b[i] == c[i]:  # statsmodels' (|b - c| - 1)^2 is not floored at 0 there
            assert ours[i] == plain == 1.0
            continue
        corrected = mcnemar(table, exact=False, correction=True).pvalue
        assert plain - 1e-12 <= ours[i] <= corrected + 1e-12


def test_score_test_matches_statsmodels_mcnemar_at_large_m():
    for b, c in [(5000, 5200), (20000, 19700), (800, 870)]:
        table = [[10, b], [c, 10]]
        plain = mcnemar(table, exact=False, correction=False).pvalue
        assert mcnemar_score_test([b], [c])[0] == pytest.approx(plain, rel=0.03)


def test_no_discordant_pair_is_not_a_change_of_exactly_zero():
    low, high = mcnemar_interval([0, 0], [0, 0], [20, 1000])
    assert np.all(low < 0) and np.all(high > 0)
    assert high[0] > high[1] > 0  # fewer pairs, less certainty
    assert np.isnan(mcnemar_interval([0], [0], [0])[0][0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"b": [5], "c": [6], "n": [10]}, r"'n' must be >= b \+ c"),
    ({"b": [-1], "c": [6], "n": [10]}, r"'b' must hold non-negative integer counts; got -1"),
    ({"b": [1], "c": [2.5], "n": [10]}, r"'c' must hold non-negative integer counts; got 2.5"),
    ({"b": [1], "c": [2], "n": [10], "confidence": 1.5}, r"'confidence' must be in"),
])
def test_bad_counts_raise_one_clear_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        mcnemar_interval(**kwargs)


# ------------------------------------------------------------------ coverage
@pytest.mark.parametrize(("n", "pb", "pc"), [
    (20, 0.05, 0.0), (20, 0.3, 0.3), (30, 0.3, 0.0), (50, 0.2, 0.01), (100, 0.05, 0.0),
    (100, 0.05, 0.01), (100, 0.1, 0.0), (100, 0.02, 0.05), (200, 0.02, 0.0), (200, 0.001, 0.02),
])
def test_exact_coverage_of_the_true_delta(n, pb, pc):
    # Includes the rows (0.57 and 0.77 with the old conditional interval) and the
    # points where Tango's interval without a continuity correction falls to ~93%.
    assert exact_coverage(n, pb, pc) >= 0.94


@pytest.mark.parametrize(("n", "p"), [(20, 0.05), (20, 0.3), (50, 0.2), (100, 0.01),
                                      (200, 0.1)])
def test_exact_false_positive_rate_at_the_null(n, p):
    b, c, w = trinomial(n, p, p)
    rejects = mcnemar_score_test(b, c) < 0.05
    assert float(w[rejects].sum()) <= 0.055


@pytest.mark.parametrize(("n", "pb", "pc"), [(1000, 0.02, 0.005), (10_000, 0.001, 0.005),
                                             (10_000, 0.3, 0.25)])
def test_monte_carlo_coverage_at_large_n(n, pb, pc):
    rng = np.random.default_rng(11)
    draws = rng.multinomial(n, [pb, pc, 1 - pb - pc], size=20_000)
    low, high = mcnemar_interval(draws[:, 0], draws[:, 1], n)
    covered = np.mean((low <= pc - pb) & (pc - pb <= high))
    assert covered >= 0.94  # 20,000 draws: standard error 0.0015 at 0.95


def test_compare_one_run_per_side_uses_the_score_procedure_and_verdicts_agree():
    rng = np.random.default_rng(5)
    k, n = 40, 4000
    y = rng.integers(0, k, n)
    a = np.where(rng.random(n) < 0.85, y, (y + 1) % k)
    flip = rng.random(k) * 0.3
    b = np.where(rng.random(n) < flip[y], (y + 2) % k, a)
    b = np.where(rng.random(n) < 0.08, y, b)
    t = compare_predictions(y, [a], [b], k, correction="none").classes
    np.testing.assert_allclose(t["p_value"], mcnemar_score_test(t["b"], t["c"]))
    low, high = mcnemar_interval(t["b"], t["c"], t["support"])
    np.testing.assert_array_equal(t["delta_low"], low)
    np.testing.assert_array_equal(t["delta_high"], high)
    # Without a multiplicity correction a flag is exactly an interval on one side of 0.
    np.testing.assert_array_equal(t["verdict"] == "drop", t["delta_high"] < 0)
    np.testing.assert_array_equal(t["verdict"] == "gain", t["delta_low"] > 0)
    assert (t["verdict"] == "drop").sum() > 0
