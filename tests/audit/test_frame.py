"""ClassAudit: the MetricFrame vocabulary, stable types, and agreement with references."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_score, recall_score
from statsmodels.stats.proportion import proportion_confint

from classgap.audit import ClassAudit, audit


def make(seed: int, n: int = 600, k: int = 6, acc: float = 0.8) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < acc, y_true, rng.integers(0, k, n))
    return y_true, y_pred


def test_single_run_matches_sklearn_and_statsmodels() -> None:
    y_true, y_pred = make(0)
    result = audit(y_true, y_pred, n_boot=300, random_state=0)
    table = result.by_class
    np.testing.assert_allclose(table["accuracy"], recall_score(y_true, y_pred, average=None))
    np.testing.assert_allclose(table["precision"],
                               precision_score(y_true, y_pred, average=None))
    np.testing.assert_allclose(table["f1"], f1_score(y_true, y_pred, average=None))
    low, high = proportion_confint(table["correct"], table["support"], method="wilson")
    ci = result.by_class_ci()
    np.testing.assert_allclose(ci["low"], low)
    np.testing.assert_allclose(ci["high"], high)
    assert result.overall["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y_true, y_pred))
    assert result.overall["accuracy"] == pytest.approx(np.mean(y_true == y_pred))


def test_metricframe_vocabulary_and_types() -> None:
    y_true, y_pred = make(1)
    single = audit(y_true, y_pred, n_boot=200, random_state=0)
    seeds = audit(y_true, [y_pred, make(2)[1], make(3)[1]], n_boot=200, random_state=0)
    for result in (single, seeds):
        assert isinstance(result, ClassAudit)
        assert isinstance(result.overall, pd.Series)
        assert list(result.overall_ci().columns) == ["estimate", "low", "high"]
        assert list(result.by_class_ci().columns) == ["estimate", "low", "high"]
        assert isinstance(result.worst_class(), pd.Series)
        assert isinstance(result.difference(), pd.Series)
        assert list(result.worst_class_ci().index) == ["accuracy"]
        assert list(result.difference_ci().index) == ["accuracy"]
        acc = result.by_class["accuracy"]
        assert result.worst_class()["accuracy"] == pytest.approx(acc.min())
        assert result.difference()["accuracy"] == pytest.approx(acc.max() - acc.min())
        worst = result.worst_class_ci().iloc[0]
        assert worst["low"] <= worst["estimate"] <= worst["high"]
        assert list(result.by_class.columns) == list(single.by_class.columns)
    assert seeds.n_runs == 3 and seeds.interval == "bootstrap"
    assert seeds.by_class["accuracy_std"].notna().all()


def test_same_random_state_same_intervals() -> None:
    y_true, y_pred = make(4)
    a = audit(y_true, y_pred, n_boot=300, random_state=11)
    b = audit(y_true, y_pred, n_boot=300, random_state=11)
    pd.testing.assert_frame_equal(a.overall_ci(), b.overall_ci())


def test_absent_class_is_nan_with_warning() -> None:
    y_true = np.array([0, 0, 1, 1, 1, 0])
    y_pred = np.array([0, 1, 1, 1, 0, 0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = audit(y_true, y_pred, n_classes=3, class_names=["a", "b", "c"], n_boot=100)
    assert any(issubclass(w.category, UserWarning) for w in caught)
    assert np.isnan(result.by_class.loc["c", "accuracy"])
    assert result.worst_class()["accuracy"] == pytest.approx(2 / 3)


def test_to_dict_is_strict_json() -> None:
    y_true, y_pred = make(5)
    payload = audit(y_true, y_pred, n_boot=100, class_names=list("abcdef")).to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text)["classes"][0]["class"] == "a"


def test_wrong_class_names_length() -> None:
    y_true, y_pred = make(6)
    with pytest.raises(ValueError, match="class_names"):
        audit(y_true, y_pred, class_names=["a", "b"])
