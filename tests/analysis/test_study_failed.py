"""Runs that failed to train: the rule, and the study that flags, reports and (when asked)
leaves out a planted collapsed seed."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from classgap.analysis import RunRecord, analyze, summary_dict
from classgap.analysis.failed import (
    FLOOR,
    MAD_SCALE,
    Z,
    failed_reasons,
    failed_table,
    flag_failed,
    low_outliers,
)
from classgap.audit import Predictions
from classgap.errors import InputError

K = 10


def make_records(seeds: int) -> list[RunRecord]:
    """Strengths 0, 0.5, 1 (0.5 best on validation), every run about 80% right, with its own
    noise: a study in which no run failed."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(K), 200)
    records = []
    for strength, acc in ((0.0, 0.80), (0.5, 0.82), (1.0, 0.78)):
        for seed in range(seeds):
            pred = [np.where(rng.random(len(y)) < acc, y, (y + 1) % K) for _ in range(2)]
            records.append(RunRecord({"aug.mixup": strength}, strength, seed,
                                     *[Predictions.from_arrays(y, logits=np.eye(K)[p])
                                       for p in pred]))
    return records


def test_threshold_is_the_modified_z_score_of_scipy() -> None:
    acc = np.array([0.81, 0.80, 0.83, 0.79, 0.82, 0.55, 0.80])
    flags, cut = low_outliers(acc)
    median = np.median(acc)
    mad = stats.median_abs_deviation(acc, scale="normal")  # 1.4826 · MAD
    assert cut == pytest.approx(median - max(Z * mad, FLOOR))
    assert MAD_SCALE == pytest.approx(1 / stats.norm.ppf(0.75), rel=1e-4)
    assert flags.tolist() == [False] * 5 + [True, False]


def test_floor_spares_a_run_barely_below_seeds_that_agree() -> None:
    # MAD 0: any lower run would be an infinite z-score; 1 point below is not a collapse
    flags, cut = low_outliers([0.90, 0.90, 0.90, 0.89])
    assert not flags.any() and cut == pytest.approx(0.90 - FLOOR)


def test_too_few_seeds_only_chance_is_flagged() -> None:
    flags, cut = low_outliers([0.9, 0.3])
    assert not flags.any() and np.isnan(cut)
    assert flag_failed([0.9, 0.05], n_classes=10).tolist() == [False, True]


def test_issue_seeds_flag_only_the_collapsed_one() -> None:
    # the issue's 1-thread seeds 0-7, then seed 0 of the fp32 run (27.5% training accuracy)
    test = [0.828, 0.776, 0.809, 0.811, 0.829, 0.635, 0.808, 0.740]
    assert flag_failed(test, n_classes=10).tolist() == [False] * 5 + [True, False, False]
    val = [0.335, 0.82, 0.81, 0.80, 0.83, 0.81]
    train = [0.275, 0.80, 0.79, 0.81, 0.80, 0.80]
    flags, why = failed_reasons(val, train, n_classes=10)
    assert flags.tolist() == [True] + [False] * 5
    assert "validation accuracy 33.5%" in why[0] and "training accuracy 27.5%" in why[0]


def test_training_accuracy_alone_can_flag_and_nan_is_unknown() -> None:
    val = [0.80, 0.81, 0.80, 0.79]
    flags, why = failed_reasons(val, [0.85, 0.86, np.nan, 0.40], n_classes=10)
    assert flags.tolist() == [False, False, False, True] and "training" in why[3]


def test_bad_accuracies_are_one_clear_error() -> None:
    with pytest.raises(InputError, match="'val_acc' must be a 1-D sequence of accuracies"):
        flag_failed([0.5, 1.5], n_classes=10)
    with pytest.raises(InputError, match="'train_acc' must have one value per run"):
        flag_failed([0.5, 0.5], [0.5], n_classes=10)


def test_table_names_strength_and_seed() -> None:
    t = failed_table([0.0, [0.1, 0.2]], [[0, 1, 2], [3, 4, 5]],
                     [[0.8, 0.8, 0.8], [0.8, 0.81, 0.2]], [None, [0.9, 0.9, 0.3]], n_classes=10)
    assert t[["strength", "seed"]].values.tolist() == [[[0.1, 0.2], 5]]
    assert t["train_acc"].tolist() == [0.3]
    empty = failed_table([0.0], [[0, 1, 2]], [[0.8, 0.8, 0.8]], [None], n_classes=10)
    assert empty.empty and list(empty.columns) == list(t.columns)


# -- the study ------------------------------------------------------------------------------

def _with_collapsed_seed(seeds: int = 4, strength: float = 0.5, seed: int = 1,
                         ) -> list[RunRecord]:
    """Normal records (training accuracy about 85%), with one seed replaced by a run at
    chance (it predicts one class; training accuracy 11%)."""
    records = make_records(seeds)
    out = []
    for r in records:
        r = replace(r, train_accuracy=0.85 + 0.005 * r.seed)
        if r.strength == strength and r.seed == seed:
            collapsed = [Predictions.from_arrays(p.y_true, logits=np.eye(K)[np.full(
                len(p.y_true), 3)]) for p in (r.val, r.test)]
            r = RunRecord(r.point, r.strength, r.seed, *collapsed, train_accuracy=0.11)
        out.append(r)
    return out


@pytest.fixture(scope="module")
def collapsed() -> list[RunRecord]:
    return _with_collapsed_seed()


def test_planted_collapse_is_flagged_and_kept_by_default(collapsed: list[RunRecord]) -> None:
    result = analyze(collapsed, axis="aug.mixup", reference=0.0)
    t = result.failed_runs
    assert t is not None and t[["strength", "seed", "excluded"]].values.tolist() == \
        [[0.5, 1, False]]
    assert "at chance" in t["reason"].iloc[0] and "training accuracy 11.0%" in t["reason"][0]
    assert result.notes[0].startswith("1 run(s) look failed")
    assert "strength=0.5, seed=1" in result.notes[0] and "--exclude-failed" in result.notes[0]
    v = result.validation.set_index("strength")
    assert v.loc[0.5, "n_seeds"] == 4  # still averaged in: not silently dropped
    summary = json.loads(json.dumps(summary_dict(result)))
    assert summary["exclude_failed"] is False
    assert [(r["strength"], r["seed"], r["excluded"]) for r in summary["failed_runs"]] == \
        [(0.5, 1, False)]


def test_exclude_failed_leaves_it_out_and_says_so(collapsed: list[RunRecord]) -> None:
    kept = analyze(collapsed, axis="aug.mixup", reference=0.0)
    result = analyze(collapsed, axis="aug.mixup", reference=0.0, exclude_failed=True)
    assert result.failed_runs["excluded"].tolist() == [True]
    assert "were left out of the statistics" in result.notes[0]
    v = result.validation.set_index("strength")
    assert v.loc[0.5, "n_seeds"] == 3 and v.loc[0.0, "n_seeds"] == 4
    # the statistics are those of the study without the run
    clean = [r for r in collapsed if not (r.strength == 0.5 and r.seed == 1)]
    want = analyze(clean, axis="aug.mixup", reference=0.0)
    assert result.selected == want.selected == 0.5
    assert result.mean_gain == want.mean_gain
    assert v.loc[0.5, "val_mean"] > kept.validation.set_index("strength").loc[0.5, "val_mean"]
    summary = summary_dict(result)
    assert summary["exclude_failed"] is True and summary["failed_runs"][0]["excluded"] is True


def test_a_strength_whose_every_seed_failed_is_kept(collapsed: list[RunRecord]) -> None:
    records = [r if r.strength != 1.0 else RunRecord(
        r.point, r.strength, r.seed, *[Predictions.from_arrays(p.y_true, y_pred=np.zeros_like(
            p.y_true)) for p in (r.val, r.test)]) for r in collapsed]
    result = analyze(records, axis="aug.mixup", reference=0.0, exclude_failed=True)
    t = result.failed_runs
    assert sorted(t.loc[t["strength"] == 1.0, "seed"]) == [0, 1, 2, 3]
    assert not t.loc[t["strength"] == 1.0, "excluded"].any()
    assert t.loc[t["strength"] == 0.5, "excluded"].tolist() == [True]
    assert any("every seed of strength 1.0 looks failed" in n for n in result.notes)
    assert result.validation.set_index("strength").loc[1.0, "n_seeds"] == 4


def test_a_normal_study_flags_nothing() -> None:
    records = make_records(4)
    result = analyze(records, axis="aug.mixup", reference=0.0)
    assert result.failed_runs is not None and result.failed_runs.empty
    assert not any("look failed" in n for n in result.notes)
    assert summary_dict(result)["failed_runs"] == []
