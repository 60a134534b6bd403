"""Disparity statistics against sklearn / scipy, and the one-replicate-set summary."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, recall_score

from classgap.audit.disparity import (
    accuracy_std,
    balanced_accuracy,
    best_worst_gap,
    coefficient_of_variation,
    difficulty_tertiles,
    disparity_summary,
    group_mean,
    harmonic_mean,
    worst_class,
    worst_k_mean,
)
from classgap.audit.intervals import bootstrap_class_accuracy
from classgap.errors import InputError

METRICS = ["accuracy", "balanced_accuracy", "worst_class", "worst_k_mean", "best_worst_gap",
           "std", "cv", "harmonic_mean"]


@pytest.mark.parametrize(("n", "k", "seed"), [(300, 4, 0), (2000, 25, 1), (5000, 100, 2)])
def test_statistics_match_references(simulate, n, k, seed):
    y, pred = simulate(n, k, seed, acc=np.linspace(0.3, 0.95, k))
    acc = recall_score(y, pred, labels=range(k), average=None)
    assert balanced_accuracy(acc) == pytest.approx(balanced_accuracy_score(y, pred))
    assert harmonic_mean(acc) == pytest.approx(stats.hmean(acc))
    assert worst_class(acc) == acc.min()
    assert worst_k_mean(acc, 3) == pytest.approx(np.sort(acc)[:3].mean())
    assert best_worst_gap(acc) == pytest.approx(acc.max() - acc.min())
    assert accuracy_std(acc) == pytest.approx(np.std(acc))
    assert coefficient_of_variation(acc) == pytest.approx(np.std(acc) / np.mean(acc))
    groups = np.array(["a", "b", "c"])[np.arange(k) % 3]
    assert group_mean(acc, groups, "b") == pytest.approx(acc[groups == "b"].mean())


def test_statistics_are_rowwise_on_replicates_and_nan_aware():
    reps = np.random.default_rng(0).uniform(0.2, 1.0, (50, 8))
    reps[:, 3] = np.nan  # an absent class
    funcs = [worst_class, balanced_accuracy, best_worst_gap, accuracy_std,
             coefficient_of_variation, harmonic_mean, lambda a: worst_k_mean(a, 2)]
    for f in funcs:
        batch = f(reps)
        assert batch.shape == (50,)
        np.testing.assert_allclose(batch, [f(row[~np.isnan(row)]) for row in reps])
    assert harmonic_mean(np.array([0.5, 0.0, 0.9])) == 0.0
    assert worst_k_mean(np.array([0.5, np.nan, 0.7]), 5) == pytest.approx(0.6)
    assert np.isnan(harmonic_mean(np.array([np.nan, np.nan])))


def test_difficulty_tertiles():
    ref = np.random.default_rng(0).permutation(np.linspace(0, 1, 10))
    labels = difficulty_tertiles(ref)
    order = np.argsort(ref)
    assert labels[order].tolist() == ["hard"] * 4 + ["medium"] * 3 + ["easy"] * 3
    assert difficulty_tertiles([0.9, 0.2, 0.5, np.nan]).tolist() == [
        "easy", "hard", "medium", "unknown"]
    with pytest.raises(InputError, match="'reference_acc' must be a 1-D array"):
        difficulty_tertiles([[0.1]])


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_disparity_summary_estimates_and_shape(simulate, method):
    k = 30
    y, pred = simulate(3000, k, 4, acc=np.linspace(0.4, 0.95, k))
    freq = np.array(["many", "medium", "few"])[np.arange(k) // 10]
    table = disparity_summary(y, pred, k, groups={"frequency": freq}, n_boot=500,
                              method=method, random_state=0)
    assert table.columns.tolist() == ["estimate", "low", "high"]
    assert table.index.tolist() == [
        *METRICS, "group:frequency=many", "group:frequency=medium", "group:frequency=few"]
    acc = recall_score(y, pred, labels=range(k), average=None)
    est = table["estimate"]
    assert est["accuracy"] == pytest.approx(np.mean(y == pred))
    assert est["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert est["worst_class"] == pytest.approx(acc.min())
    assert est["worst_k_mean"] == pytest.approx(np.sort(acc)[:3].mean())  # round(0.1 * 30)
    assert est["harmonic_mean"] == pytest.approx(stats.hmean(acc))
    assert est["group:frequency=few"] == pytest.approx(acc[20:].mean())
    assert (table["low"] <= table["high"]).all()
    inside = (table["low"] <= est) & (est <= table["high"])
    assert inside.all()


def test_all_intervals_come_from_one_replicate_set(simulate):
    k = 12
    y, pred = simulate(1200, k, 5)
    table = disparity_summary(y, pred, k, k=2, n_boot=400, method="percentile",
                              random_state=11)
    support = np.bincount(y, minlength=k)
    correct = np.bincount(y[y == pred], minlength=k)
    reps = bootstrap_class_accuracy(correct, support, n_boot=400, random_state=11)
    expected = {
        "accuracy": (reps * support).sum(1) / support.sum(),
        "worst_class": reps.min(1),
        "worst_k_mean": np.sort(reps, 1)[:, :2].mean(1),
        "std": reps.std(1),
        "harmonic_mean": stats.hmean(reps, axis=1),
    }
    for name, values in expected.items():
        assert table.loc[name, "low"] == pytest.approx(np.quantile(values, 0.025)), name
        assert table.loc[name, "high"] == pytest.approx(np.quantile(values, 0.975)), name


def test_disparity_summary_deterministic_and_absent_class(simulate):
    y, pred = simulate(500, 5, 6)
    with pytest.warns(UserWarning, match="absent") as record:
        t1 = disparity_summary(y, pred, 7, random_state=3, n_boot=200)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t2 = disparity_summary(y, pred, 7, random_state=3, n_boot=200)
    np.testing.assert_array_equal(t1.to_numpy(), t2.to_numpy())
    assert np.isfinite(t1.to_numpy()).all()  # absent classes are ignored, not propagated


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"groups": {"freq": np.array(["a", "b"])}}, r"'groups\['freq'\]' must have one entry"),
        ({"method": "BCA"}, r"'method' must be one of 'percentile', 'bca', 'basic'; got 'BCA'"),
        ({"confidence": 95}, r"'confidence' must be in \(0, 1\); got 95"),
        ({"n_boot": 0}, r"'n_boot' must be an integer >= 1; got 0"),
        ({"k": 0}, r"'k' must be an integer >= 1; got 0"),
    ],
)
def test_disparity_summary_rejects_bad_options(kwargs, match):
    y = np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(InputError, match=match):
        disparity_summary(y, y, 3, **kwargs)


def test_disparity_summary_rejects_bad_labels():
    with pytest.raises(InputError, match="'y_pred' must hold integers in"):
        disparity_summary([0, 1], [0, 3], 2)
    with pytest.raises(InputError, match="'y_pred' must have the same length"):
        disparity_summary([0, 1], [0], 2)


@pytest.mark.slow
def test_basic_interval_covers_biased_statistics():
    # 200 classes of 50 samples: the observed worst-10 % mean is biased low by more than its
    # bootstrap spread, so percentile intervals miss the truth; basic intervals cover it.
    rng = np.random.default_rng(1)
    k, n_sims = 200, 150
    support = np.full(k, 50)
    true_p = rng.beta(7, 3, k)
    truth = worst_k_mean(true_p, 20)
    hits = {"basic": 0, "percentile": 0}
    for sim in range(n_sims):  # simulated test sets
        correct = rng.binomial(support, true_p)
        reps = bootstrap_class_accuracy(correct, support, n_boot=500, random_state=sim)
        est, stat = worst_k_mean(correct / support, 20), worst_k_mean(reps, 20)
        q_low, q_high = np.quantile(stat, [0.025, 0.975])
        hits["percentile"] += int(q_low <= truth <= q_high)
        hits["basic"] += int(2 * est - q_high <= truth <= 2 * est - q_low)
    assert 0.88 <= hits["basic"] / n_sims <= 0.99
    assert hits["percentile"] / n_sims < 0.5
