"""Many classes: the sparse confusion, the block-wise statistics and the CLI tables.

The sparse and dense paths are checked against scikit-learn on random inputs with classes
absent from ``y_true`` and classes never predicted; the block-wise summary against the same
statistics computed on the whole replicate matrix at once.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from classgap.analysis.confusion import confusion_shifts, mean_confusion_rates
from classgap.audit import audit, sparse_confusion
from classgap.audit._sampling import BLOCK_ELEMENTS
from classgap.audit.disparity import disparity_summary, summary_statistics
from classgap.audit.intervals import bootstrap_class_accuracy, bootstrap_interval
from classgap.audit.io import write_predictions
from classgap.audit.perclass import confusion_matrix
from classgap.cli import run
from classgap.cli.render import BEST_ROWS, MAX_ROWS, WORST_ROWS
from classgap.errors import InputError


def _gappy(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels over ``k`` classes where a third never occur in ``y_true`` and a third of the
    others are never predicted."""
    rng = np.random.default_rng(seed)
    classes = rng.permutation(k)
    absent, never_predicted = classes[: k // 3], classes[k // 3: 2 * k // 3]
    present = np.setdiff1d(np.arange(k), absent)
    y = rng.choice(present, n)
    targets = np.setdiff1d(np.arange(k), never_predicted)
    pred = np.where(rng.random(n) < 0.6, y, rng.choice(targets, n))
    pred = np.where(np.isin(pred, never_predicted), targets[0], pred)
    return y, pred


@pytest.mark.parametrize(("n", "k", "seed"), [(50, 7, 0), (2000, 300, 1), (500, 1000, 2)])
def test_sparse_and_dense_confusion_match_sklearn(n: int, k: int, seed: int) -> None:
    y, pred = _gappy(n, k, seed)
    reference = metrics.confusion_matrix(y, pred, labels=range(k))
    dense = confusion_matrix(y, pred, k)
    cm = sparse_confusion(y, pred, k)
    np.testing.assert_array_equal(dense, reference)
    np.testing.assert_array_equal(cm.toarray(), reference)
    assert cm.shape == (k, k) and cm.dtype == np.int64
    assert cm.nnz == np.count_nonzero(reference) <= n  # only the cells that occur
    np.testing.assert_array_equal(cm.diagonal(), np.diag(reference))
    np.testing.assert_array_equal(cm.sum(axis=1), reference.sum(axis=1))


def test_sparse_confusion_sums_runs_and_checks_shapes() -> None:
    y, pred = _gappy(400, 50, 3)
    _, other = _gappy(400, 50, 4)
    runs = np.stack([pred, other])
    summed = metrics.confusion_matrix(y, pred, labels=range(50)) + \
        metrics.confusion_matrix(y, other, labels=range(50))
    np.testing.assert_array_equal(sparse_confusion(y, runs, 50).toarray(), summed)
    with pytest.raises(InputError, match="'y_pred'"):
        sparse_confusion(y, runs[:, :10], 50)


def test_audit_confusion_is_sparse_and_per_class_table_matches_sklearn() -> None:
    y, pred = _gappy(3000, 600, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # absent classes warn (tested elsewhere)
        result = audit(y, pred, n_classes=600, n_boot=200)
        recall = metrics.recall_score(y, pred, labels=range(600), average=None,
                                      zero_division=np.nan)
        precision = metrics.precision_score(y, pred, labels=range(600), average=None,
                                            zero_division=np.nan)
    np.testing.assert_array_equal(result.confusion.toarray(),
                                  metrics.confusion_matrix(y, pred, labels=range(600)))
    np.testing.assert_allclose(result.by_class["accuracy"], recall, equal_nan=True)
    np.testing.assert_allclose(result.by_class["precision"], precision, equal_nan=True)
    assert np.isnan(result.class_intervals["low"].to_numpy()[np.bincount(y, minlength=600) == 0]
                    ).all()


def test_sparse_confusion_shifts_equal_the_dense_ones() -> None:
    k = 40
    y, pred = _gappy(3000, k, 6)
    rng = np.random.default_rng(7)
    ref = np.stack([np.where(rng.random(y.size) < 0.9, pred, (pred + 1) % k) for _ in range(3)])
    sel = np.stack([np.where(rng.random(y.size) < 0.8, pred, (pred + 2) % k) for _ in range(3)])
    names = [f"c{i}" for i in range(k)]
    table = confusion_shifts(y, ref, sel, k, names)
    dense_change = mean_confusion_rates(y, sel, k) - mean_confusion_rates(y, ref, k)
    np.fill_diagonal(dense_change, np.nan)
    t, p = table["true_index"].to_numpy(), table["predicted_index"].to_numpy()
    np.testing.assert_allclose(table["change"], dense_change[t, p])
    assert (t != p).all()
    # Every pair that moved is listed; the pairs left out did not occur, so did not move.
    moved = np.argwhere(np.nan_to_num(np.abs(dense_change)) > 0)
    assert {tuple(x) for x in moved} <= set(zip(t.tolist(), p.tolist(), strict=True))
    assert np.all(np.diff(np.abs(table["change"].to_numpy())) <= 1e-15)


def test_block_wise_summary_equals_the_whole_replicate_matrix() -> None:
    # K large enough that the replicates come in several blocks of rows.
    k, n_boot = 3000, 1500
    assert n_boot * k > 2 * BLOCK_ELEMENTS
    y, pred = _gappy(30_000, k, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        summary = disparity_summary(y, pred, k, n_boot=n_boot, random_state=0)
    support = np.bincount(y, minlength=k)
    correct = np.bincount(y[y == pred], minlength=k)
    present = support > 0
    reps = bootstrap_class_accuracy(correct[present], support[present], n_boot=n_boot,
                                    random_state=0)  # the same draws, in one matrix
    stats = summary_statistics(support, max(1, round(0.1 * k)), None, keep=present)
    values = np.stack([f(reps) for f in stats.values()], axis=1)
    estimate = np.array([f(correct[present] / support[present]) for f in stats.values()])
    low, high = bootstrap_interval(estimate, values, method="basic")
    np.testing.assert_allclose(summary["estimate"], estimate)
    np.testing.assert_allclose(summary["low"], np.clip(low, 0, None))
    np.testing.assert_allclose(summary["high"], np.minimum(high, [1, 1, 1, 1, 1, 1, np.inf, 1]))


def test_fast_paths_equal_the_nan_aware_statistics() -> None:
    # Leaving absent classes out (fast paths) gives the values of the NaN-aware full-K path.
    rng = np.random.default_rng(9)
    support = rng.integers(0, 4, 200)
    acc = np.where(support > 0, rng.random(200), np.nan)
    acc[np.flatnonzero(support > 0)[:3]] = 0.0  # recalls of 0: harmonic mean 0
    groups = {"g": np.where(np.arange(200) % 3 == 0, "a", "b")}
    full = summary_statistics(support, 20, groups)
    kept = summary_statistics(support, 20, groups, keep=support > 0)
    assert list(full) == list(kept)
    for name in full:
        np.testing.assert_allclose(kept[name](acc[support > 0]), full[name](acc), err_msg=name)


@pytest.fixture
def many_class_files(tmp_path: Path) -> tuple[Path, Path]:
    k = 200
    rng = np.random.default_rng(10)
    y = np.repeat(np.arange(k), 10)
    files = []
    for side in range(2):
        pred = np.where(rng.random(y.size) < 0.7, y, rng.integers(0, k, y.size))
        path = tmp_path / f"run{side}.npz"
        write_predictions(path, y_true=y, y_pred=pred)
        files.append(path)
    return files[0], files[1]


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


def test_cli_tables_list_worst_and_best_unless_all(capsys, many_class_files) -> None:
    base, cand = many_class_files
    assert run(["audit", str(base)]) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out)
    per_class = rows[:WORST_ROWS + 1 + BEST_ROWS]
    assert sum("more classes" in r for r in rows) == 1
    assert f"… {200 - WORST_ROWS - BEST_ROWS} more classes" in out
    assert "--all for every class" in out
    assert len(per_class) == WORST_ROWS + 1 + BEST_ROWS
    assert run(["audit", str(base), "--all"]) == 0
    assert "more classes" not in (out_all := capsys.readouterr().out)
    assert len(_table_rows(out_all)) == 200 + 8  # every class, then the eight summary rows

    assert run(["compare", "-b", str(base), "-c", str(cand)]) == 0
    out = capsys.readouterr().out
    assert "more (" in out and "largest drops" in out
    assert run(["compare", "-b", str(base), "-c", str(cand), "--all"]) == 0
    assert len(_table_rows(capsys.readouterr().out)) == 200 + 1
    # JSON keeps every class whatever the table shows.
    assert run(["audit", str(base), "-f", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["classes"]) == 200


def test_small_tables_list_every_class_in_class_order(capsys, tmp_path: Path) -> None:
    y = np.repeat(np.arange(MAX_ROWS), 5)
    write_predictions(tmp_path / "r.npz", y_true=y, y_pred=y[::-1].copy())
    assert run(["audit", str(tmp_path / "r.npz")]) == 0
    rows = _table_rows(capsys.readouterr().out)[:MAX_ROWS]
    assert [r.split("│")[1].strip() for r in rows] == [str(i) for i in range(MAX_ROWS)]
