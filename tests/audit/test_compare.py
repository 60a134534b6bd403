"""Paired comparison: McNemar, paired bootstrap, Welch, permutation, and compare_predictions."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from classgap.audit.compare import (
    Comparison,
    compare_predictions,
    crossed_test,
    effect_size,
    mcnemar_exact,
    mcnemar_score_test,
    paired_bootstrap_delta,
    permutation_test,
    welch_test,
)
from classgap.errors import InputError

COLUMNS = ["class", "support", "acc_baseline", "acc_candidate", "delta", "delta_low",
           "delta_high", "p_value", "q_value", "verdict", "test", "b", "c", "effect_size",
           "acc_baseline_std", "acc_candidate_std"]
OVERALL = {"acc_baseline", "acc_candidate", "delta", "delta_low", "delta_high", "p_value",
           "n_classes", "n_drop", "n_gain", "alpha", "correction", "test", "n_runs_baseline",
           "n_runs_candidate", "confidence"}


# ------------------------------------------------------------------------------ McNemar
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcnemar_matches_statsmodels_and_scipy(seed):
    rng = np.random.default_rng(seed)
    b, c = rng.integers(0, 60, 40), rng.integers(0, 60, 40)
    b[:3], c[:3] = [0, 0, 7], [0, 5, 7]
    got = mcnemar_exact(b, c)
    for i in range(len(b)):
        ref = mcnemar([[10, b[i]], [c[i], 10]], exact=True).pvalue
        assert got[i] == pytest.approx(ref, rel=1e-10)
        if b[i] + c[i] > 0:
            assert got[i] == pytest.approx(stats.binomtest(b[i], b[i] + c[i]).pvalue, rel=1e-10)
    assert got[0] == 1.0


def test_mcnemar_mid_p():
    b, c = np.array([3, 10, 4]), np.array([12, 10, 0])
    mid = mcnemar_exact(b, c, mid_p=True)
    k, n = np.minimum(b, c), b + c
    want = 2 * stats.binom.cdf(k, n, 0.5) - stats.binom.pmf(k, n, 0.5)
    np.testing.assert_allclose(mid, np.minimum(want, 1))
    assert mid[1] == pytest.approx(1.0)
    assert (mid <= mcnemar_exact(b, c)).all()


# --------------------------------------------------------------------- paired bootstrap
def test_paired_bootstrap_delta_basics(simulate, counting_rng):
    y, pred_a = simulate(2000, 8, 0)
    pred_b = np.where(np.random.default_rng(1).random(2000) < 0.1, (y + 1) % 8, pred_a)
    ok_a, ok_b = pred_a == y, pred_b == y
    delta, low, high, reps = paired_bootstrap_delta(y, ok_a, ok_b, 8, n_boot=300,
                                                    random_state=counting_rng)
    support = np.bincount(y, minlength=8)
    want = (np.bincount(y[ok_b], minlength=8) - np.bincount(y[ok_a], minlength=8)) / support
    np.testing.assert_allclose(delta, want)
    assert reps.shape == (300, 8) and counting_rng.calls == {"multinomial": 1}
    assert (low <= delta).all() and (delta <= high).all()
    again = paired_bootstrap_delta(y, ok_a, ok_b, 8, n_boot=300, random_state=0)
    np.testing.assert_array_equal(again[3], paired_bootstrap_delta(
        y, ok_a, ok_b, 8, n_boot=300, random_state=0)[3])


def test_paired_bootstrap_uses_the_same_indices_for_both_models(simulate):
    y, pred = simulate(1000, 4, 2)
    ok = pred == y
    _, low, high, reps = paired_bootstrap_delta(y, ok, ok, 4, n_boot=200, random_state=0)
    assert (reps == 0).all() and (low == 0).all() and (high == 0).all()


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_paired_single_class_matches_scipy(method):
    rng = np.random.default_rng(3)
    ok_a = rng.random(300) < 0.8
    ok_b = np.where(rng.random(300) < 0.15, ~ok_a, ok_a)
    y = np.zeros(300, dtype=int)
    ref = stats.bootstrap((ok_a.astype(float), ok_b.astype(float)),
                          lambda a, b, axis: np.mean(b, axis) - np.mean(a, axis),
                          paired=True, n_resamples=5000, method=method.replace("bca", "BCa"),
                          random_state=np.random.default_rng(0)).confidence_interval
    _, low, high, _ = paired_bootstrap_delta(y, ok_a, ok_b, 1, n_boot=5000, method=method,
                                             random_state=1)
    assert low[0] == pytest.approx(ref.low, abs=0.01)
    assert high[0] == pytest.approx(ref.high, abs=0.01)


@pytest.mark.slow
def test_paired_bootstrap_coverage_simulation():
    rng = np.random.default_rng(7)
    k, n_k, n_sims = 10, 200, 300
    p_a = rng.uniform(0.6, 0.9, k)
    flip = 0.08  # candidate flips each answer of A with this probability
    true_delta = flip * (1 - p_a) - flip * p_a
    y = np.repeat(np.arange(k), n_k)
    hits = 0
    for _ in range(n_sims):  # simulated test sets
        ok_a = rng.random(y.size) < p_a[y]
        ok_b = np.where(rng.random(y.size) < flip, ~ok_a, ok_a)
        _, low, high, _ = paired_bootstrap_delta(y, ok_a, ok_b, k, n_boot=1000, random_state=rng)
        hits += int(((low <= true_delta) & (true_delta <= high)).sum())
    assert 0.91 <= hits / (k * n_sims) <= 0.99


# ------------------------------------------------------------------ seed-level tests
SEED_SHAPES = [(2, 2, 0), (3, 5, 1), (5, 4, 2), (8, 8, 3)]


@pytest.mark.parametrize(("sa", "sb", "seed"), SEED_SHAPES)
def test_welch_matches_scipy(sa, sb, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.7, 0.02, (sa, 6)), rng.normal(0.72, 0.03, (sb, 6))
    t, p = welch_test(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False, axis=0)
    np.testing.assert_allclose(t, ref.statistic)
    np.testing.assert_allclose(p, ref.pvalue)


def test_welch_degenerate_cases_never_raise():
    t, p = welch_test([[0.5, 0.6]], [[0.7, 0.8], [0.71, 0.8]])  # single baseline run
    assert np.isnan(t).all() and np.isnan(p).all()
    t, p = welch_test([[1.0, 0.5], [1.0, 0.5]], [[1.0, 0.6], [1.0, 0.6]])  # zero variances
    assert (t[0], p[0]) == (0.0, 1.0)
    assert np.isnan(t[1]) and np.isnan(p[1])
    t, p = welch_test([[np.nan], [np.nan]], [[0.5], [0.6]])
    assert np.isnan(p).all()


@pytest.mark.parametrize(("sa", "sb", "seed"), [(2, 3, 0), (3, 3, 1), (4, 5, 2), (5, 5, 3)])
def test_permutation_exact_matches_scipy(sa, sb, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.7, 0.02, (sa, 5)), rng.normal(0.71, 0.02, (sb, 5))
    b[:, 0] += 0.1  # one clear difference
    got = permutation_test(a, b)
    ref = stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(y, axis) - np.mean(x, axis), vectorized=True,
        permutation_type="independent", n_resamples=np.inf, axis=0).pvalue
    np.testing.assert_allclose(got, ref)


def test_permutation_random_mode():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.7, 0.02, (6, 3)), rng.normal(0.715, 0.02, (6, 3))
    exact = permutation_test(a, b)  # C(12, 6) = 924 <= 9999
    approx = permutation_test(a, b, n_resamples=900, random_state=0)
    np.testing.assert_allclose(approx, exact, atol=0.05)
    np.testing.assert_array_equal(approx, permutation_test(a, b, n_resamples=900,
                                                           random_state=0))
    assert (approx > 0).all()  # the +1 correction: never 0 by chance


@pytest.mark.parametrize(("sa", "sb", "seed"), SEED_SHAPES)
def test_effect_size_is_hedges_g(sa, sb, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.7, 0.02, (sa, 4)), rng.normal(0.72, 0.03, (sb, 4))
    sp = np.sqrt(((sa - 1) * a.var(0, ddof=1) + (sb - 1) * b.var(0, ddof=1)) / (sa + sb - 2))
    j = 1 - 3 / (4 * (sa + sb) - 9)
    np.testing.assert_allclose(effect_size(a, b), j * (b.mean(0) - a.mean(0)) / sp)
    assert np.isnan(effect_size([[0.5]], [[0.6]])).all()
    assert effect_size([[0.5], [0.5]], [[0.5]])[0] == 0.0


# ----------------------------------------------------------------- compare_predictions
def _planted(seed: int = 0, n: int = 6000, k: int = 6):
    """Baseline at 80 %; the candidate loses 25 points on class 1 and gains on class 4."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    a = np.where(rng.random(n) < 0.8, y, (y + 1) % k)
    b = a.copy()
    b[(y == 1) & (a == y) & (rng.random(n) < 0.3)] = 0
    b[(y == 4) & (a != y) & (rng.random(n) < 0.8)] = 4
    return y, a, b


def test_compare_single_run_against_references():
    y, a, b = _planted()
    res = compare_predictions(y, [a], [b], 6, class_names=list("abcdef"), random_state=0)
    assert isinstance(res, Comparison)
    t = res.classes
    assert t.columns.tolist() == COLUMNS and len(t) == 6
    assert t["class"].tolist() == list("abcdef")
    assert t["verdict"].tolist() == ["none", "drop", "none", "none", "gain", "none"]
    assert (t["test"] == "mcnemar").all()
    for k in range(6):
        m = y == k
        ra, rb = a[m] == k, b[m] == k
        table = [[np.sum(ra & rb), np.sum(ra & ~rb)], [np.sum(~ra & rb), np.sum(~ra & ~rb)]]
        assert t["b"][k] == table[0][1] and t["c"][k] == table[1][0]
        assert t["p_value"][k] == pytest.approx(mcnemar_score_test(table[0][1], table[1][0]))
        if table[0][1] + table[1][0] > 0:  # statsmodels gives NaN with no discordant pair
            assert mcnemar(table, exact=False, correction=False).pvalue <= t["p_value"][k]
        assert t["delta"][k] == pytest.approx(rb.mean() - ra.mean())
    np.testing.assert_allclose(t["q_value"], multipletests(t["p_value"], method="fdr_bh")[1])
    assert t["acc_baseline_std"].isna().all() and t["acc_candidate_std"].isna().all()
    assert t["effect_size"].isna().all()
    o = res.overall
    assert set(o) == OVERALL
    assert o["n_drop"] == 1 and o["n_gain"] == 1 and o["test"] == "mcnemar"
    assert o["acc_baseline"] == pytest.approx(np.mean(a == y))
    ra, rb = a == y, b == y
    total = [[0, np.sum(ra & ~rb)], [np.sum(~ra & rb), 0]]
    assert o["p_value"] == pytest.approx(mcnemar_score_test(total[0][1], total[1][0]))
    assert o["delta_low"] <= o["delta"] <= o["delta_high"]


def test_compare_is_deterministic_and_json_safe():
    y, a, b = _planted(1)
    with pytest.warns(UserWarning, match="absent"):
        r1 = compare_predictions(y, [a], [b], 7, random_state=5)  # class 6 absent -> NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        r2 = compare_predictions(y, [a], [b], 7, random_state=5)
    d1 = r1.to_dict()
    assert d1 == r2.to_dict()
    text = json.dumps(d1, allow_nan=False)
    assert json.loads(text)["classes"][6]["p_value"] is None


def test_compare_absent_class_warns_once():
    y, a, b = _planted(2)
    with pytest.warns(UserWarning, match="absent") as record:
        res = compare_predictions(y, [a], [b], 8, random_state=0)
    assert len(record) == 1
    row = res.classes.iloc[7]
    assert row["support"] == 0 and np.isnan(row["delta"]) and np.isnan(row["p_value"])
    assert row["verdict"] == "none"


def test_compare_drops_filter():
    y, a, b = _planted()
    res = compare_predictions(y, [a], [b], 6, random_state=0, correction="holm")
    drops = res.drops()
    assert drops["class"].tolist() == ["1"]
    assert res.drops(min_points=50).empty
    assert res.overall["correction"] == "holm"


def test_compare_several_seeds_uses_the_crossed_test():
    y, a, b = _planted(3)
    rng = np.random.default_rng(0)
    runs_a = [np.where(rng.random(len(y)) < 0.03, (a + 1) % 6, a) for _ in range(3)]
    runs_b = [np.where(rng.random(len(y)) < 0.03, (b + 1) % 6, b) for _ in range(4)]
    res = compare_predictions(y, runs_a, runs_b, 6, random_state=0)
    t = res.classes
    assert (t["test"] == "crossed").all() and res.overall["test"] == "crossed"
    acc = lambda runs: np.array([np.bincount(y[r == y], minlength=6) / np.bincount(y)  # noqa: E731
                                 for r in runs])
    direct = crossed_test(y, np.array(runs_a) == y, np.array(runs_b) == y, 6)
    np.testing.assert_allclose(t["p_value"], direct["p_value"])
    np.testing.assert_allclose(t["delta_low"], direct["low"])
    welch = compare_predictions(y, runs_a, runs_b, 6, test="welch")
    ref = stats.ttest_ind(acc(runs_b), acc(runs_a), equal_var=False, axis=0)
    np.testing.assert_allclose(welch.classes["p_value"], ref.pvalue)
    np.testing.assert_allclose(t["acc_baseline_std"], acc(runs_a).std(0, ddof=1))
    np.testing.assert_allclose(t["effect_size"], effect_size(acc(runs_a), acc(runs_b)))
    assert t.loc[1, "verdict"] == "drop" and t.loc[1, "delta_high"] < 0
    assert res.overall["n_runs_baseline"] == 3 and res.overall["n_runs_candidate"] == 4
    # b / c are summed over the 12 run pairs.
    right_a = sum((r == y).astype(int) for r in runs_a)
    right_b = sum((r == y).astype(int) for r in runs_b)
    assert t["b"].sum() == int(np.sum(right_a * (4 - right_b)))
    perm = compare_predictions(y, runs_a, runs_b, 6, test="permutation", random_state=0)
    np.testing.assert_allclose(perm.classes["p_value"],
                               permutation_test(acc(runs_a), acc(runs_b)))


def test_compare_unequal_runs_uses_mcnemar_on_average_pair():
    y, a, b = _planted(4)
    runs_b = [b, b, b]
    res = compare_predictions(y, a, runs_b, 6, random_state=0)
    single = compare_predictions(y, [a], [b], 6, random_state=0)
    assert (res.classes["test"] == "mcnemar").all()
    np.testing.assert_allclose(res.classes["p_value"], single.classes["p_value"])
    np.testing.assert_array_equal(res.classes["b"], 3 * single.classes["b"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"correction": "fdr"}, r"'correction' must be one of 'bh', 'holm', 'none'; got 'fdr'"),
        ({"test": "ttest"}, r"'test' must be one of 'auto', 'crossed', 'mcnemar', 'welch', "
                            r"'permutation'"),
        ({"test": "welch"}, r"'test' must be 'mcnemar' or 'auto' when a side has a single run"),
        ({"alpha": 1.0}, r"'alpha' must be in \(0, 1\); got 1.0"),
        ({"confidence": 1.2}, r"'confidence' must be in \(0, 1\); got 1.2"),
        ({"class_names": ["x"]}, r"'class_names' must have one name per class"),
    ],
)
def test_compare_rejects_bad_options(kwargs, match):
    y = np.array([0, 1, 2, 0])
    with pytest.raises(InputError, match=match):
        compare_predictions(y, [y], [y], 3, **kwargs)


def test_compare_rejects_bad_predictions():
    y = np.array([0, 1, 2, 0])
    with pytest.raises(InputError, match=r"'preds_b\[1\]' must have the same length"):
        compare_predictions(y, [y], [y, y[:3]], 3)
    with pytest.raises(InputError, match=r"'preds_a\[0\]' must hold integers in \[0, 2\]"):
        compare_predictions(y, [y + 1], [y], 3)
    with pytest.raises(InputError, match=r"'preds_a' must hold at least one run"):
        compare_predictions(y, [], [y], 3)
    with pytest.raises(InputError, match=r"'y_true' must hold integers"):
        compare_predictions(np.array([0.0, np.nan]), [y], [y], 3)
    with pytest.raises(InputError, match=r"'correct_b' must be a 1-D array"):
        paired_bootstrap_delta(y, y == 0, (y == 0)[:2], 3)
    with pytest.raises(InputError, match=r"'b' must hold non-negative integer counts; got -1"):
        mcnemar_exact([-1], [2])
    with pytest.raises(InputError, match=r"'acc_b' must have as many columns"):
        welch_test(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(InputError, match=r"'n_resamples' must be an integer >= 1"):
        permutation_test(np.zeros((2, 3)), np.zeros((2, 3)), n_resamples=0)
