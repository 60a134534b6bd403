"""Intervals: Wilson vs statsmodels, stratified bootstrap vs scipy, jackknife, seeds, coverage."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from classgap.audit.intervals import (
    ClippedIntervalWarning,
    bootstrap_class_accuracy,
    bootstrap_interval,
    bootstrap_statistic,
    class_accuracy_jackknife,
    class_percentile_interval,
    seed_interval,
    two_level_bootstrap_accuracy,
    wilson_interval,
)
from classgap.errors import InputError


def _acceleration(values: np.ndarray) -> float:
    """BCa acceleration from plain (unweighted) jackknife values, as scipy computes it."""
    d = values.mean() - values
    return float((d**3).sum() / (6 * ((d**2).sum()) ** 1.5))


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
@pytest.mark.parametrize("seed", [0, 1])
def test_wilson_matches_statsmodels(confidence, seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 2000, 200)
    x = rng.binomial(n, rng.random(200))
    x[:3], n[3] = 0, x[3]  # edges: no successes, all successes
    low, high = wilson_interval(x, n, confidence)
    ref_low, ref_high = proportion_confint(x, n, alpha=1 - confidence, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)


def test_wilson_zero_n_is_nan_and_scalar_works():
    low, high = wilson_interval([0, 3], [0, 10])
    assert np.isnan(low[0]) and np.isnan(high[0]) and 0 < low[1] < 0.3 < high[1]
    lo, _ = wilson_interval(68, 100)
    assert float(lo) == pytest.approx(proportion_confint(68, 100, method="wilson")[0])


def test_bootstrap_class_accuracy_shape_values_and_determinism():
    correct, support = np.array([45, 10, 0, 3]), np.array([50, 10, 0, 7])
    reps = bootstrap_class_accuracy(correct, support, n_boot=2000, random_state=3)
    assert reps.shape == (2000, 4) and reps.dtype == np.float64
    np.testing.assert_array_equal(reps, bootstrap_class_accuracy(correct, support, n_boot=2000,
                                                                 random_state=3))
    assert (reps[:, 1] == 1.0).all() and np.isnan(reps[:, 2]).all()
    np.testing.assert_allclose(reps[:, 0] * 50, np.round(reps[:, 0] * 50))  # multiples of 1/n
    assert reps[:, 0].mean() == pytest.approx(0.9, abs=0.005)
    assert reps[:, 0].std() == pytest.approx(np.sqrt(0.9 * 0.1 / 50), rel=0.1)
    gen = np.random.default_rng(3)
    np.testing.assert_array_equal(
        reps, bootstrap_class_accuracy(correct, support, n_boot=2000, random_state=gen))


def test_bootstrap_draws_are_vectorised_over_replicates_and_classes(counting_rng):
    # Classes of up to 64 images are drawn by inversion on float32 uniforms, one call a block.
    bootstrap_class_accuracy(np.arange(50), np.full(50, 60), n_boot=500,
                             random_state=counting_rng)
    assert counting_rng.calls == {"random": 1}
    # Larger classes take Generator.binomial, one call for all of them.
    counting_rng.calls.clear()
    bootstrap_class_accuracy(np.arange(100), np.full(100, 200), n_boot=500,
                             random_state=counting_rng)
    assert counting_rng.calls == {"binomial": 1}
    # Two levels: one draw per (seed, times drawn), at most S * S whatever n_boot.
    for n_boot in (500, 5000):
        counting_rng.calls.clear()
        two_level_bootstrap_accuracy(np.tile(np.arange(100), (4, 1)), np.full(100, 200),
                                     n_boot=n_boot, random_state=counting_rng)
        assert counting_rng.calls["binomial"] <= 4 * 4


def test_inversion_draws_are_binomial():
    # Every count of every small class against the exact pmf; chi-square over the counts.
    correct = np.array([0, 1, 3, 5, 9, 10, 2, 30, 63, 64])
    support = np.array([10, 10, 10, 10, 10, 10, 2, 64, 64, 64])
    reps = bootstrap_class_accuracy(correct, support, n_boot=40_000, random_state=0)
    for c, n, column in zip(correct, support, reps.T, strict=True):
        counts = np.rint(column * n).astype(int)
        observed = np.bincount(counts, minlength=n + 1)
        expected = stats.binom.pmf(np.arange(n + 1), n, c / n) * len(counts)
        if c in (0, n):
            assert (counts == c).all()
            continue
        keep = expected > 5  # pool the far tails into their neighbours
        obs = np.r_[observed[keep], observed[~keep].sum()]
        exp = np.r_[expected[keep], expected[~keep].sum()]
        obs, exp = (obs, exp) if exp[-1] > 0 else (obs[:-1], exp[:-1])
        assert stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > 1e-3, (c, n)


def test_class_percentile_interval_is_the_bootstrap_limit():
    correct, support = np.array([7, 40, 0, 10, 0]), np.array([10, 50, 10, 10, 0])
    low, high = class_percentile_interval(correct, support, 0.9)
    reps = bootstrap_class_accuracy(correct, support, n_boot=100_000, random_state=1)
    ref_low, ref_high = np.quantile(reps, [0.05, 0.95], axis=0, method="inverted_cdf")
    np.testing.assert_allclose(low[:4], ref_low[:4])
    np.testing.assert_allclose(high[:4], ref_high[:4])
    assert np.isnan(low[4]) and np.isnan(high[4])
    assert (low[2], high[2], low[3], high[3]) == (0.0, 0.0, 1.0, 1.0)


def test_stratified_equals_row_resampling_distribution():
    # Resampling rows of each class and counting correct ones gives the same distribution.
    rng = np.random.default_rng(0)
    rows = np.r_[np.ones(30), np.zeros(10)]  # one class, 30 of 40 correct
    rowwise = rng.choice(rows, size=(20000, 40)).mean(axis=1)
    reps = bootstrap_class_accuracy([30], [40], n_boot=20000, random_state=1)[:, 0]
    assert stats.ks_2samp(rowwise, reps).pvalue > 0.01


@pytest.mark.parametrize(("c", "n"), [(160, 200), (45, 60), (290, 300)])
@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_single_class_matches_scipy_bootstrap(c, n, method):
    data = np.r_[np.ones(c), np.zeros(n - c)]
    ref = stats.bootstrap((data,), np.mean, n_resamples=5000, method=method.replace(
        "bca", "BCa"), random_state=np.random.default_rng(0)).confidence_interval
    est, low, high = bootstrap_statistic([c], [n], lambda a: a[..., 0], n_boot=5000,
                                         method=method, random_state=1)
    assert float(est) == c / n
    assert float(low) == pytest.approx(ref.low, abs=0.01)
    assert float(high) == pytest.approx(ref.high, abs=0.01)


def test_jackknife_single_class_closed_form_and_scipy_acceleration():
    c, n = 37, 50
    values, weights = class_accuracy_jackknife([c], [n], lambda a: a[..., 0])
    assert values.shape == (2,) and weights.tolist() == [c, n - c]
    assert values.tolist() == pytest.approx([(c - 1) / (n - 1), c / (n - 1)])
    plain = np.repeat(values, weights)  # the N delete-one values, as scipy would compute them
    p = c / n
    assert _acceleration(plain) == pytest.approx((1 - 2 * p) / (6 * np.sqrt(n * p * (1 - p))))


@pytest.mark.parametrize("statistic", [
    lambda a: np.nanmin(a, axis=-1),
    lambda a: np.nanmean(a, axis=-1),
    lambda a: np.nanstd(a, axis=-1),
])
def test_jackknife_equals_brute_force_delete_one(statistic):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 6, 120)
    ok = rng.random(120) < np.linspace(0.4, 0.9, 6)[y]
    support = np.bincount(y, minlength=6)
    correct = np.bincount(y[ok], minlength=6)
    values, weights = class_accuracy_jackknife(correct, support, statistic)
    brute = []
    for i in range(len(y)):  # reference only: the library never loops over samples
        keep = np.arange(len(y)) != i
        s, c = np.bincount(y[keep], minlength=6), np.bincount(y[keep][ok[keep]], minlength=6)
        brute.append(statistic(c / s))
    brute = np.array(brute)
    assert weights.sum() == len(y)
    np.testing.assert_allclose(np.sort(np.repeat(values, weights)), np.sort(brute))


def test_bootstrap_interval_percentile_is_quantile_and_shapes():
    reps = np.random.default_rng(0).normal(size=(999, 3))
    low, high = bootstrap_interval(np.zeros(3), reps, confidence=0.9)
    np.testing.assert_allclose(low, np.quantile(reps, 0.05, axis=0))
    np.testing.assert_allclose(high, np.quantile(reps, 0.95, axis=0))
    lo1, _ = bootstrap_interval(0.0, reps[:, 0], confidence=0.9)
    assert lo1.shape == () and float(lo1) == pytest.approx(low[0])


def test_bca_without_acceleration_is_bias_corrected_percentile():
    reps = np.random.default_rng(0).normal(size=20001)
    # theta_hat at the median: z0 = 0, a = 0, so BCa reduces to the percentile interval.
    low, high = bootstrap_interval(np.median(reps), reps, method="bca")
    plow, phigh = bootstrap_interval(0.0, reps, method="percentile")
    assert float(low) == pytest.approx(float(plow), abs=1e-3)
    assert float(high) == pytest.approx(float(phigh), abs=1e-3)
    # theta_hat above most replicates shifts the interval up.
    low2, _ = bootstrap_interval(1.0, reps, method="bca")
    assert low2 > low


def test_bootstrap_statistic_worst_class_comes_from_bootstrap():
    # 40 classes all at true accuracy 0.8 with 50 samples each: the observed minimum is
    # biased low, and its interval is the bootstrap distribution of the minimum.
    rng = np.random.default_rng(0)
    support = np.full(40, 50)
    correct = rng.binomial(50, 0.8, 40)
    stat = lambda a: np.nanmin(a, axis=-1)  # noqa: E731
    est, low, high = bootstrap_statistic(correct, support, stat, n_boot=2000,
                                         method="percentile", random_state=7)
    reps = bootstrap_class_accuracy(correct, support, n_boot=2000, random_state=7)
    assert float(est) == (correct / support).min() < 0.8
    assert float(low) == pytest.approx(np.quantile(reps.min(axis=1), 0.025))
    assert float(high) == pytest.approx(np.quantile(reps.min(axis=1), 0.975))
    worst = np.argmin(correct)
    w_low, w_high = wilson_interval(correct[worst], 50)
    assert (float(low), float(high)) != pytest.approx((float(w_low), float(w_high)))
    # BCa works on the same statistic and absent classes are ignored by nanmin.
    with pytest.warns(UserWarning, match="absent"):
        est2, low2, high2 = bootstrap_statistic(np.r_[correct, 0], np.r_[support, 0], stat,
                                                n_boot=500, random_state=0)
    assert np.isfinite([est2, low2, high2]).all() and low2 <= est2 <= high2


def test_bootstrap_statistic_vector_valued_and_deterministic():
    correct, support = np.array([40, 45, 30, 7]), np.array([50, 50, 50, 7])
    a = bootstrap_statistic(correct, support, lambda x: x, n_boot=300, random_state=2)
    b = bootstrap_statistic(correct, support, lambda x: x, n_boot=300, random_state=2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    est, low, high = a
    assert est.shape == low.shape == high.shape == (4,)
    assert low[3] == high[3] == 1.0
    assert (low <= est).all() and (est <= high).all()


@pytest.mark.parametrize(("s", "k"), [(2, 3), (5, 10), (12, 4)])
def test_seed_interval_matches_scipy_t(s, k):
    values = np.random.default_rng(s).uniform(0.5, 0.9, (s, k))
    mean, low, high = seed_interval(values, 0.9, bounds=None)
    ref = stats.t.interval(0.9, s - 1, loc=values.mean(0), scale=stats.sem(values, axis=0))
    np.testing.assert_allclose(mean, values.mean(0))
    np.testing.assert_allclose(low, ref[0])
    np.testing.assert_allclose(high, ref[1])
    # By default an accuracy interval stays in [0, 1]: clipped, and said once.
    past = (ref[0] < 0) | (ref[1] > 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, low_c, high_c = seed_interval(values, 0.9)
    np.testing.assert_allclose(low_c, np.clip(ref[0], 0, 1))
    np.testing.assert_allclose(high_c, np.clip(ref[1], 0, 1))
    clipped = [w for w in caught if issubclass(w.category, ClippedIntervalWarning)]
    assert len(clipped) == int(past.any())
    if past.any():
        assert f"{int(past.sum())} accuracy interval(s)" in str(clipped[0].message)


def test_seed_interval_floors_a_class_without_variation():
    # Two seeds at 100% on 50 images: sd 0 is not certainty; the binomial floor at
    # p = (50 + 1/2) / 51 gives the interval's half width.
    with pytest.warns(ClippedIntervalWarning):
        _, low, high = seed_interval([[1.0, 0.6], [1.0, 0.8]], support=[50, 50])
    p = 50.5 / 51
    half = stats.t.ppf(0.975, 1) * np.sqrt(p * (1 - p) / 50 / 2)
    assert low[0] == pytest.approx(1 - half) and high[0] == 1.0
    _, low0, _ = seed_interval([[1.0], [1.0]], bounds=None)
    assert low0[0] == 1.0  # without support, no floor: the old zero width


def test_seed_interval_single_run_is_nan():
    mean, low, high = seed_interval([[0.5, 0.7]])
    assert mean.tolist() == [0.5, 0.7] and np.isnan(low).all() and np.isnan(high).all()


def test_two_level_bootstrap():
    support = np.full(5, 100)
    same = np.tile([60, 70, 80, 90, 100], (4, 1))
    reps = two_level_bootstrap_accuracy(same, support, n_boot=4000, random_state=0)
    assert reps.shape == (4000, 5)
    np.testing.assert_array_equal(
        reps, two_level_bootstrap_accuracy(same, support, n_boot=4000, random_state=0))
    assert (reps[:, 4] == 1.0).all()
    # Identical seeds: the mean of 4 independent sample bootstraps (variance p(1-p)/(4n)).
    assert reps[:, 0].std() == pytest.approx(np.sqrt(0.24 / 400), rel=0.1)
    # Seed-to-seed variation widens the distribution.
    varied = same + np.array([[-8], [8], [-8], [8]])
    varied[:, 4] = 100
    reps2 = two_level_bootstrap_accuracy(varied, support, n_boot=4000, random_state=0)
    assert reps2[:, 0].std() > 1.5 * reps[:, 0].std()


@pytest.mark.slow
def test_percentile_and_bca_coverage_simulation():
    # 300 simulated test sets, 20 classes of 100 samples with known accuracy.
    rng = np.random.default_rng(2024)
    true_p = rng.uniform(0.5, 0.95, 20)
    support = np.full(20, 100)
    hits = {"percentile": 0, "bca": 0, "wilson": 0}
    n_sims = 300
    for _ in range(n_sims):  # simulations, not bootstrap replicates
        correct = rng.binomial(support, true_p)
        for method in ("percentile", "bca"):
            _, low, high = bootstrap_statistic(correct, support, lambda a: a, n_boot=1000,
                                               method=method, random_state=rng)
            hits[method] += int(((low <= true_p) & (true_p <= high)).sum())
        low, high = wilson_interval(correct, support)
        hits["wilson"] += int(((low <= true_p) & (true_p <= high)).sum())
    for method, count in hits.items():
        assert 0.91 <= count / (n_sims * 20) <= 0.99, method


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: wilson_interval(5, 10, 1.5), r"'confidence' must be in \(0, 1\); got 1.5"),
        (lambda: wilson_interval(5, 10, 0), r"'confidence' must be in \(0, 1\); got 0"),
        (lambda: wilson_interval(11, 10), r"'successes' must be <= 'n'; got 11"),
        (lambda: wilson_interval(np.nan, 10), r"'successes' must hold finite"),
        (lambda: bootstrap_class_accuracy([1], [2], n_boot=0),
         r"'n_boot' must be an integer >= 1; got 0"),
        (lambda: bootstrap_class_accuracy([3], [2]), r"'correct' must be <= 'support'"),
        (lambda: bootstrap_class_accuracy([-1], [2]),
         r"'correct' must hold non-negative integer counts; got -1"),
        (lambda: bootstrap_class_accuracy([1, 1], [2]), r"'correct' must have shape"),
        (lambda: bootstrap_class_accuracy([1], [2], random_state="x"), r"'random_state' must be"),
        (lambda: bootstrap_interval(0.0, np.zeros(5), method="bc"),
         r"'method' must be one of 'percentile', 'bca', 'basic'; got 'bc'"),
        (lambda: bootstrap_interval(0.0, np.zeros((2, 2, 2))), r"'replicates' must have shape"),
        (lambda: bootstrap_statistic([1], [2], np.mean, confidence=-0.1),
         r"'confidence' must be in"),
        (lambda: seed_interval(np.zeros(3)), r"'values' must be a 2-D array"),
        (lambda: two_level_bootstrap_accuracy([1, 2], [2, 2]), r"'correct' must be a 2-D array"),
    ],
)
def test_malformed_inputs_raise_input_error(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_basic_interval_and_bca_warns_when_estimate_is_outside_replicates():
    reps = np.random.default_rng(0).normal(1.0, 0.1, 4000)
    low, high = bootstrap_interval(0.5, reps, method="basic")
    q_low, q_high = np.quantile(reps, [0.025, 0.975])
    assert float(low) == pytest.approx(1.0 - q_high) and float(high) == pytest.approx(1.0 - q_low)
    with pytest.warns(UserWarning, match="outside all 4000 bootstrap replicates"):
        low, high = bootstrap_interval(0.0, reps, method="bca")
    assert np.isfinite([low, high]).all()
