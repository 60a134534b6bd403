"""One inferential target per design: the interval and the test agree, and both are calibrated.

Several runs per side: the crossed seeds × images test, checked by simulating studies in which
seeds *and* test images are random (a latent image difficulty shared by the two recipes up to a
correlation, a seed effect per run, Bernoulli noise per run and image). One run per side:
McNemar's score test and the interval it inverts (their own file: test_paired_score.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from classgap.audit import compare_predictions
from classgap.audit.intervals import ClippedIntervalWarning
from classgap.audit.paired import crossed_test

C = -1.0  # latent threshold: accuracy about 0.7 at lam = 1.5, tau = 0.15
LAM = 1.5


def simulate(rng, *, n, seeds, tau, rho, shift=0.0):
    """(S, n) correctness of recipes A and B; B's threshold is ``C + shift``."""
    z = rng.standard_normal(n)
    z_b = rho * z + np.sqrt(1 - rho**2) * rng.standard_normal(n)  # recipes rank images alike
    u_a, u_b = (rng.normal(0, tau, (seeds, 1)) for _ in range(2))
    ok_a = LAM * z + u_a + rng.standard_normal((seeds, n)) > C
    ok_b = LAM * z_b + u_b + rng.standard_normal((seeds, n)) > C + shift
    return ok_a, ok_b


def true_delta(shift, tau):
    """Population accuracy difference: over new seeds and new images."""
    scale = np.sqrt(LAM**2 + tau**2 + 1)
    return stats.norm.sf((C + shift) / scale) - stats.norm.sf(C / scale)


@pytest.mark.parametrize(("seeds", "tau", "rho"), [(6, 0.15, 0.6), (8, 0.05, 0.3),
                                                   (4, 0.3, 0.9)])
def test_crossed_false_positive_rate_is_nominal(seeds, tau, rho):
    rng = np.random.default_rng(seeds)
    y = np.zeros(300, dtype=np.int64)
    reps = 1500
    rejected = sum(crossed_test(y, *simulate(rng, n=300, seeds=seeds, tau=tau, rho=rho), 1)
                   ["p_value"][0] < 0.05 for _ in range(reps))
    # Binomial sd of the rate at 0.05 over 1500 replicates is 0.0056.
    assert 0.035 <= rejected / reps <= 0.068


@pytest.mark.parametrize(("seeds", "tau", "rho", "shift"), [(6, 0.15, 0.6, 0.3),
                                                            (10, 0.1, 0.8, 0.2)])
def test_crossed_interval_covers_the_population_delta(seeds, tau, rho, shift):
    rng = np.random.default_rng(seeds + 100)
    y = np.zeros(300, dtype=np.int64)
    target = true_delta(shift, tau)
    reps = 1500
    covered = 0
    for _ in range(reps):
        res = crossed_test(y, *simulate(rng, n=300, seeds=seeds, tau=tau, rho=rho, shift=shift),
                           1)
        covered += res["low"][0] <= target <= res["high"][0]
    assert 0.93 <= covered / reps <= 0.97


def test_welch_on_fixed_images_is_anticonservative_for_this_target():
    """Why Welch is not the default: with little seed noise, image noise goes unseen."""
    rng = np.random.default_rng(7)
    y = np.zeros(300, dtype=np.int64)
    welch = crossed = 0
    for _ in range(400):
        ok_a, ok_b = simulate(rng, n=300, seeds=6, tau=0.05, rho=0.3)
        welch += stats.ttest_ind(ok_b.mean(1), ok_a.mean(1), equal_var=False).pvalue < 0.05
        crossed += crossed_test(y, ok_a, ok_b, 1)["p_value"][0] < 0.05
    assert welch / 400 > 0.2 and crossed / 400 < 0.09


@pytest.mark.parametrize("seed", range(4))
def test_interval_excludes_zero_exactly_when_p_below_alpha_several_runs(seed):
    rng = np.random.default_rng(seed)
    k, n = 40, 4000
    y = rng.integers(0, k, n)
    base = rng.random(k) * 0.4 + 0.5
    shift = rng.normal(0, 0.06, k)  # some classes move, some do not
    runs_a = [np.where(rng.random(n) < base[y], y, (y + 1) % k) for _ in range(5)]
    runs_b = [np.where(rng.random(n) < np.clip(base[y] + shift[y], 0, 1), y, (y + 2) % k)
              for _ in range(6)]
    for alpha in (0.05, 0.2):
        t = compare_predictions(y, runs_a, runs_b, k, alpha=alpha).classes
        excludes = (t["delta_low"] > 0) | (t["delta_high"] < 0)
        np.testing.assert_array_equal(excludes, t["p_value"] < alpha)
        assert 0 < excludes.sum() < k  # both kinds of class are present


@pytest.mark.parametrize("seed", range(4))
def test_interval_excludes_zero_exactly_when_p_below_alpha_one_run(seed):
    rng = np.random.default_rng(seed)
    k, n = 30, 3000
    y = rng.integers(0, k, n)
    a = np.where(rng.random(n) < 0.8, y, (y + 1) % k)
    flip = rng.random(k) * 0.25
    b = np.where(rng.random(n) < flip[y], (y + 1) % k, a)
    b = np.where(rng.random(n) < 0.05, y, b)
    t = compare_predictions(y, [a], [b], k).classes
    excludes = (t["delta_low"] > 0) | (t["delta_high"] < 0)
    np.testing.assert_array_equal(excludes, t["p_value"] < 0.05)
    assert 0 < excludes.sum() < k


def test_crossed_single_image_class_and_identical_runs_are_finite():
    y = np.array([0, 0, 0, 1])
    ok = np.array([[True, False, True, True], [True, True, False, True]])
    with pytest.warns(ClippedIntervalWarning, match="1 change"):
        res = crossed_test(y, ok, ok, 2)
    assert np.all(res["delta"] == 0) and np.all(res["p_value"] == 1.0)
    # Class 1 (one image, right in every run): nothing varies, and one image says little.
    assert res["low"][1] == -1 and res["high"][1] == 1


def test_crossed_without_any_variation_uses_the_binomial_floor():
    # Both sides right on every image of class 0 in every run: no variance seen, which is
    # not certainty; the interval is that of two binomials of its 50 images at 100%.
    y = np.repeat([0, 1], 50)
    rng = np.random.default_rng(0)
    ok_a = np.vstack([np.r_[np.ones(50, bool), rng.random(50) < 0.7] for _ in range(3)])
    ok_b = np.vstack([np.r_[np.ones(50, bool), rng.random(50) < 0.7] for _ in range(3)])
    res = crossed_test(y, ok_a, ok_b, 2)
    p = 50.5 / 51
    half = stats.norm.isf(0.025) * np.sqrt(2 * p * (1 - p) / 50)
    assert res["low"][0] == pytest.approx(-half) and res["high"][0] == pytest.approx(half)
    assert res["p_value"][0] == 1.0 and res["se"][0] > 0


def test_crossed_interval_stays_inside_minus_one_one():
    # A class shaped like the (3 seeds a side, 4 images, delta -58.3 points, whose t
    # interval reached -129.5 there): A right on all, B's seeds right on 0, 1 and 4 of 4. Its
    # t interval is [-172.3, +55.6] points; clipped to [-100, +55.6], with a warning.
    y = np.repeat(np.arange(2), 4)
    ok_a = np.ones((3, 8), dtype=bool)
    ok_b = np.array([[0, 0, 0, 0, 1, 1, 1, 1], [1, 0, 0, 0, 1, 1, 1, 0],
                     [1, 1, 1, 1, 1, 1, 1, 1]], dtype=bool)
    with pytest.warns(ClippedIntervalWarning, match="1 change"):
        res = crossed_test(y, ok_a, ok_b, 2)
    assert res["delta"][0] == pytest.approx(-7 / 12) and res["low"][0] == -1
    assert np.all((res["low"] >= -1) & (res["high"] <= 1))
    np.testing.assert_array_equal((res["low"] > 0) | (res["high"] < 0), res["p_value"] < 0.05)


def test_crossed_rejects_one_run():
    y = np.array([0, 1])
    with pytest.raises(Exception, match=r"'correct_a' must be a \(runs >= 2, 2\)"):
        crossed_test(y, np.ones((1, 2), bool), np.ones((2, 2), bool), 2)
