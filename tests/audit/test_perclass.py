"""Per-class counts and metrics against scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from classgap.audit.perclass import (
    class_counts,
    confusion_matrix,
    per_class_metrics,
    topk_correct,
)
from classgap.errors import InputError

SIZES = [(40, 3, 0), (500, 10, 1), (3000, 37, 2), (200, 60, 3)]  # (N, K, seed); K=60 > classes


@pytest.mark.parametrize(("n", "k", "seed"), SIZES)
def test_confusion_matrix_matches_sklearn(simulate, n, k, seed):
    y, pred = simulate(n, k, seed)
    got = confusion_matrix(y, pred, k)
    assert got.dtype == np.int64 and got.shape == (k, k)
    np.testing.assert_array_equal(got, metrics.confusion_matrix(y, pred, labels=range(k)))


@pytest.mark.parametrize(("n", "k", "seed"), SIZES)
def test_class_counts(simulate, n, k, seed):
    y, pred = simulate(n, k, seed)
    support, correct = class_counts(y, pred, k)
    cm = metrics.confusion_matrix(y, pred, labels=range(k))
    np.testing.assert_array_equal(support, cm.sum(axis=1))
    np.testing.assert_array_equal(correct, np.diag(cm))
    assert support.dtype == np.int64 and correct.dtype == np.int64


@pytest.mark.parametrize(("n", "k", "seed"), SIZES)
def test_per_class_metrics_match_sklearn(simulate, n, k, seed):
    y, pred = simulate(n, k, seed, acc=np.linspace(0.2, 0.95, k))
    labels = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # absent classes warn (checked elsewhere)
        table = per_class_metrics(y, pred, n_classes=k)
        kw = {"labels": labels, "average": None, "zero_division": np.nan}
        recall = metrics.recall_score(y, pred, **kw)
        precision = metrics.precision_score(y, pred, **kw)
        f1 = metrics.f1_score(y, pred, **kw)
    np.testing.assert_allclose(table["accuracy"], recall, equal_nan=True)
    np.testing.assert_allclose(table["precision"], precision, equal_nan=True)
    np.testing.assert_allclose(table["f1"], f1, equal_nan=True)
    cm = metrics.confusion_matrix(y, pred, labels=labels)
    np.testing.assert_array_equal(table["predicted"], cm.sum(axis=0))
    np.testing.assert_array_equal(table["false_positives"], cm.sum(axis=0) - np.diag(cm))
    assert table.index.tolist() == [str(i) for i in labels]


def test_columns_and_dtypes_are_stable():
    expected = ["support", "correct", "accuracy", "precision", "f1", "false_positives",
                "predicted"]
    dtypes = ["int64", "int64", "float64", "float64", "float64", "int64", "int64"]
    cases = [([0, 1, 1], [0, 1, 0], 2), ([0, 0], [0, 0], 3), ([], [], 2)]
    for y, pred, k in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = per_class_metrics(np.array(y, dtype=int), np.array(pred, dtype=int),
                                      n_classes=k)
        assert table.columns.tolist() == expected
        assert [str(t) for t in table.dtypes] == dtypes
        assert len(table) == k


def test_absent_class_gets_nan_and_one_warning():
    y, pred = np.array([0, 0, 2, 2]), np.array([0, 2, 2, 2])
    with pytest.warns(UserWarning, match="absent") as record:
        table = per_class_metrics(y, pred, n_classes=4, class_names=["a", "b", "c", "d"])
    assert len(record) == 1 and "b" in str(record[0].message)
    assert np.isnan(table.loc["b", "accuracy"]) and np.isnan(table.loc["d", "accuracy"])
    assert np.isnan(table.loc["b", "precision"])  # nothing predicted as b
    assert np.isnan(table.loc["b", "f1"])
    assert table.loc["c", "precision"] == pytest.approx(2 / 3)
    assert table.loc["a", "precision"] == 1.0 and table.loc["a", "accuracy"] == 0.5


def test_class_names_and_inferred_n_classes():
    table = per_class_metrics([0, 1, 2], [0, 1, 1])
    assert table.index.tolist() == ["0", "1", "2"] and table.index.name == "class"
    named = per_class_metrics([0, 1], [0, 1], class_names=["cat", "dog"])
    assert named.index.tolist() == ["cat", "dog"]
    assert isinstance(named, pd.DataFrame)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topk_correct_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, k = 400, 7
    y = rng.integers(0, k, n)
    scores = rng.normal(size=(n, k))
    for top in (1, 2, 5):
        got = topk_correct(y, scores, top)
        assert got.dtype == bool and got.shape == (n,)
        want = metrics.top_k_accuracy_score(y, scores, k=top, labels=range(k))
        assert got.mean() == pytest.approx(want)
    np.testing.assert_array_equal(topk_correct(y, scores, 1), scores.argmax(axis=1) == y)
    assert topk_correct(y, scores, k).all()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: confusion_matrix([0, 1], [0], 2), r"'y_pred' must have the same length"),
        (lambda: confusion_matrix([0, 5], [0, 1], 2),
         r"'y_true' must hold integers in \[0, 1\]; got 5 at row 1"),
        (lambda: class_counts([0.0, np.nan], [0, 1], 2), r"'y_true' must hold integers; got .*nan"),
        (lambda: class_counts([0, 1], [0, 1], 0), r"'n_classes' must be an integer >= 1; got 0"),
        (lambda: per_class_metrics([0, 1], [0, 1], class_names=["a"], n_classes=2),
         r"'class_names' must have one name per class \(2\)"),
        (lambda: per_class_metrics([], []), r"'y_true' must be non-empty"),
        (lambda: topk_correct([0], [[np.nan, 1.0]], 1), r"'scores' must be finite; got .*nan"),
        (lambda: topk_correct([0], [[0.0, 1.0]], 3), r"'k' must be an integer in \[1, 2\]; got 3"),
        (lambda: topk_correct([0, 1], [[0.0, 1.0]], 1), r"'scores' must have one row per label"),
        (lambda: topk_correct([0], [0.0, 1.0], 1), r"'scores' must be a 2-D array"),
    ],
)
def test_malformed_inputs_raise_input_error(call, match):
    with pytest.raises(InputError, match=match):
        call()
