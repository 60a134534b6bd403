"""Per-group audits and paired per-group comparisons (audit/grouped.py), against hand counts,
statsmodels and compare_predictions run on group labels."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from classgap.audit import audit, compare_predictions
from classgap.audit.grouped import (
    COMPARE_COLUMNS,
    GROUP_COLUMNS,
    LEVEL_COLUMNS,
    audit_groups,
    compare_groups,
)
from classgap.audit.groups import GroupMap
from classgap.audit.intervals import ClippedIntervalWarning, seed_interval
from classgap.audit.perclass import EmptyClassWarning
from classgap.errors import InputError

K = 12
CLASSES = [f"c{k}" for k in range(K)]


def tree(classes=CLASSES) -> GroupMap:
    """kingdom (1 group) > family (2 groups of 6 classes) > genus (4 of 3)."""
    k = np.arange(len(classes))
    return GroupMap.from_columns(classes, {"genus": [f"g{i}" for i in k // 3],
                                           "family": [f"f{i}" for i in k // 6],
                                           "kingdom": ["all"] * len(classes)})


def predictions(seed: int, acc, support, runs: int = 1):
    """Fixed class composition (``support[k]`` images of class k); each run right on an
    image with probability ``acc[k]``, else a neighbouring class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(support)), support)
    p = np.asarray(acc, dtype=float)[y]
    preds = [np.where(rng.random(y.size) < p, y, (y + 1) % len(support)) for _ in range(runs)]
    return y, preds[0] if runs == 1 else preds


SUPPORT = np.array([10, 20, 30] * 4)
ACC = np.linspace(0.35, 0.95, K)


def row(table: pd.DataFrame, level: str, group: str) -> pd.Series:
    (i,) = np.flatnonzero((table["level"] == level) & (table["group"] == group))
    return table.iloc[i]


# ----------------------------------------------------------------------------- audit_groups
def test_pooled_and_mean_accuracy_match_hand_counts():
    y, pred = predictions(0, ACC, SUPPORT)
    res = audit_groups(y, pred, tree(), n_boot=100)
    assert list(res.groups.columns) == list(GROUP_COLUMNS)
    assert list(res.levels.columns) == list(LEVEL_COLUMNS)
    frame = tree().to_frame()
    right = pd.Series(pred == y).groupby(y).agg(["sum", "count"])
    frame["correct"], frame["support"] = right["sum"].to_numpy(), right["count"].to_numpy()
    frame["accuracy"] = frame["correct"] / frame["support"]
    for level in ("kingdom", "family", "genus"):
        for name, members in frame.groupby(level):
            got = row(res.groups, level, name)
            assert got["support"] == members["support"].sum()
            assert got["n_classes"] == len(members)
            assert got["accuracy"] == members["correct"].sum() / members["support"].sum()
            assert got["mean_class_accuracy"] == pytest.approx(members["accuracy"].mean(),
                                                               abs=1e-15)
            worst = members.sort_values("accuracy", kind="stable").iloc[0]
            assert (got["worst_class"], got["worst_class_accuracy"]) == (
                worst["class"], worst["accuracy"])
            assert got["low"] <= got["accuracy"] <= got["high"]
    # levels coarse to fine, the worst group first within each
    assert list(dict.fromkeys(res.groups["level"])) == ["kingdom", "family", "genus"]
    for _, part in res.groups.groupby("level", sort=False):
        assert part["accuracy"].is_monotonic_increasing
    assert row(res.groups, "genus", "g1")["parent"] == "f0"
    assert row(res.groups, "kingdom", "all")["parent"] is None


def test_disparity_over_groups_of_each_level():
    y, pred = predictions(1, ACC, SUPPORT)
    res = audit_groups(y, pred, tree(), n_boot=200)
    levels = res.levels.set_index("level")
    genus = res.groups[res.groups["level"] == "genus"]
    g = levels.loc["genus"]
    assert g["n_groups"] == 4
    assert g["worst_group"] == genus.iloc[0]["group"]
    assert g["worst_accuracy"] == genus["accuracy"].min()
    assert g["best_worst_gap"] == pytest.approx(genus["accuracy"].max() - genus["accuracy"].min())
    assert g["accuracy_std"] == pytest.approx(genus["accuracy"].std(ddof=0))
    for stat in ("worst", "gap", "std"):
        assert 0.0 <= g[f"{stat}_low"] <= g[f"{stat}_high"] <= 1.0
    one = levels.loc["kingdom"]  # one group: no spread
    assert (one["best_worst_gap"], one["accuracy_std"]) == (0.0, 0.0)


def worst_group_coverage(group_acc, per_class: int, sims: int) -> tuple[float, float]:
    """How often the true worst-group accuracy lies in the bootstrap interval of the
    worst-group accuracy, and in the interval of the group that came out worst (2 classes
    a group, ``per_class`` images a class)."""
    k = 2 * len(group_acc)
    gm = GroupMap.from_columns([str(i) for i in range(k)],
                               {"pair": [str(i // 2) for i in range(k)]})
    truth = min(group_acc)
    covered = naive = 0
    for seed in range(sims):
        y, pred = predictions(seed, np.repeat(group_acc, 2), np.full(k, per_class))
        res = audit_groups(y, pred, gm, n_boot=300, random_state=seed)
        level, worst = res.levels.iloc[0], res.groups.iloc[0]
        covered += level["worst_low"] <= truth <= level["worst_high"]
        naive += worst["low"] <= truth <= worst["high"]
    return covered / sims, naive / sims


def test_worst_group_interval_is_the_bootstrap_interval_of_the_minimum():
    """The lowest of many noisy group accuracies is biased low; the basic bootstrap interval
    of the worst-group accuracy reflects the bias back. With 50 equally good groups (the
    hardest case: which group is worst is pure noise) it beats the observed worst group's own
    interval; where groups differ it covers near its level."""
    covered, naive = worst_group_coverage(np.full(50, 0.8), 10, sims=60)
    assert covered >= naive + 0.1
    covered, _ = worst_group_coverage(np.linspace(0.6, 0.95, 20), 25, sims=40)
    assert covered >= 0.8


def test_bootstrap_intervals_cover_on_a_seeded_simulation():
    """Fixed class composition, unequal supports: the stratified bootstrap's percentile
    intervals of pooled and mean class accuracy cover the true values about 95% of the time."""
    gm = tree()
    frame = gm.to_frame()
    truth = {}
    for level in gm.levels:
        for name, members in frame.groupby(level):
            idx = members.index.to_numpy()
            truth[(level, name)] = (SUPPORT[idx] @ ACC[idx] / SUPPORT[idx].sum(),
                                    ACC[idx].mean())
    hits = np.zeros(2)
    trials = 0
    for seed in range(100):
        y, pred = predictions(100 + seed, ACC, SUPPORT)
        res = audit_groups(y, pred, gm, n_boot=300, random_state=seed)
        for _, r in res.groups.iterrows():
            pooled, mean = truth[(r["level"], r["group"])]
            hits += [r["low"] <= pooled <= r["high"], r["mean_low"] <= mean <= r["mean_high"]]
            trials += 1
    assert 0.90 <= hits[0] / trials <= 0.99
    assert 0.90 <= hits[1] / trials <= 0.99


def test_wilson_is_statsmodels_on_the_pooled_counts():
    y, pred = predictions(2, ACC, SUPPORT)
    res = audit_groups(y, pred, tree(), interval="wilson", confidence=0.9, n_boot=50)
    assert res.interval == "wilson"
    for _, r in res.groups.iterrows():
        correct = round(r["accuracy"] * r["support"])
        low, high = proportion_confint(correct, r["support"], alpha=0.1, method="wilson")
        assert (r["low"], r["high"]) == (pytest.approx(low, abs=1e-12),
                                         pytest.approx(high, abs=1e-12))


def test_wilson_targets_a_random_class_mix_and_is_wider_than_the_stratified_interval():
    """Wilson's target: the group's images as one binomial sample, the class mix random too.
    With the classes' images drawn at random, it covers the group's accuracy; with the mix
    fixed it is wider than the class-stratified interval by the spread of the class
    accuracies (so it over-covers there)."""
    gm = GroupMap.from_columns(["a", "b", "c", "d"], {"group": ["g"] * 4})
    acc = np.array([0.2, 0.5, 0.8, 0.95])
    truth = acc.mean()  # classes equally likely
    covered, sims = 0, 200
    for seed in range(sims):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 4, 80)  # the class mix is random
        pred = np.where(rng.random(80) < acc[y], y, (y + 1) % 4)
        res = audit_groups(y, pred, gm, interval="wilson", n_boot=1, random_state=seed)
        covered += res.groups.iloc[0]["low"] <= truth <= res.groups.iloc[0]["high"]
    assert covered / sims >= 0.92
    y, pred = predictions(3, acc, np.full(4, 20))
    wilson = audit_groups(y, pred, gm, interval="wilson", n_boot=2000).groups.iloc[0]
    strat = audit_groups(y, pred, gm, interval="bootstrap", n_boot=2000).groups.iloc[0]
    assert wilson["high"] - wilson["low"] > 1.1 * (strat["high"] - strat["low"])


def test_mean_class_interval_without_sampling_has_the_stratified_variance():
    y, pred = predictions(4, ACC, SUPPORT)
    res = audit_groups(y, pred, tree(), interval="wilson", n_boot=50)
    g = row(res.groups, "genus", "g2")
    idx = np.arange(6, 9)
    p = np.array([(pred[y == k] == k).mean() for k in idx])
    var = np.where(p * (1 - p) > 0, p * (1 - p) / SUPPORT[idx],
                   (p * SUPPORT[idx] + 0.5) / (SUPPORT[idx] + 1)
                   * (1 - (p * SUPPORT[idx] + 0.5) / (SUPPORT[idx] + 1)) / SUPPORT[idx])
    half = 1.959963984540054 * np.sqrt(var.sum()) / 3
    assert g["mean_low"] == pytest.approx(max(p.mean() - half, 0.0))
    assert g["mean_high"] == pytest.approx(min(p.mean() + half, 1.0))


def test_replicates_are_the_class_replicates_aggregated_per_group():
    """The sparse chain (finest level from the classes, each coarser level from its
    children) gives every group's pooled and mean class accuracy of any class accuracies,
    as sums over its classes do; a group without images is NaN."""
    from classgap.audit.grouped import _Aggregator, _Flat

    gm = tree()
    support = np.array([0, 0, 0, 4, 1, 7, 2, 0, 3, 5, 5, 9])  # genus g0 has no images
    flat = _Flat.of(gm)
    acc = np.random.default_rng(0).random((6, K))
    present = support > 0
    got = _Aggregator.of(flat, support)(acc[:, present])  # (2T, 6)
    with np.errstate(invalid="ignore"):
        pooled = [flat.total(a * support) / flat.total(support) for a in acc]
        mean = [flat.total(a, present) / flat.total(np.ones(K), present) for a in acc]
    np.testing.assert_allclose(got, np.hstack([pooled, mean]).T, rtol=1e-13)


def test_several_runs_two_level_bootstrap_and_seed_intervals():
    y, runs = predictions(5, ACC, SUPPORT, runs=4)
    gm = tree()
    res = audit_groups(y, runs, gm, n_boot=300)
    assert (res.n_runs, res.interval) == (4, "bootstrap")
    members = gm.codes[gm.level_index("family")] == 0
    per_run = np.array([(r == y)[members[y]].mean() for r in runs])
    fam = row(res.groups, "family", "f0")
    assert fam["accuracy"] == pytest.approx(per_run.mean())
    assert fam["low"] < fam["accuracy"] < fam["high"]
    seeds = audit_groups(y, np.stack(runs), gm, interval="seeds", n_boot=50)
    _, low, high = seed_interval(per_run[:, None], 0.95, support=[members[y].sum()])
    fam = row(seeds.groups, "family", "f0")
    assert (fam["low"], fam["high"]) == (pytest.approx(low[0]), pytest.approx(high[0]))


def test_same_seed_same_intervals_and_the_class_audit_is_reused():
    y, pred = predictions(6, ACC, SUPPORT)
    first = audit_groups(y, pred, tree(), n_boot=100, random_state=3)
    again = audit_groups(y, pred, tree(), n_boot=100, random_state=3)
    pd.testing.assert_frame_equal(first.groups, again.groups)
    pd.testing.assert_frame_equal(first.levels, again.levels)
    mine = audit(y, pred, n_classes=K, class_names=CLASSES, k=2)
    reused = audit_groups(y, pred, tree(), n_boot=100, random_state=3, class_audit=mine)
    pd.testing.assert_frame_equal(reused.classes.drop(columns=list(tree().levels)),
                                  mine.to_frame())
    other = audit(y[:-3], pred[:-3], n_classes=K, class_names=CLASSES)
    with pytest.raises(InputError, match="'class_audit' must be the per-class audit"):
        audit_groups(y, pred, tree(), class_audit=other)


def test_class_names_absent_classes_expand_and_json():
    y, pred = predictions(7, ACC, SUPPORT)
    keep = y >= 3  # genus g0 (classes 0-2) has no test image
    names = np.asarray(CLASSES, dtype=object)
    with pytest.warns(EmptyClassWarning):
        res = audit_groups(names[y[keep]], names[pred[keep]], tree(), n_boot=100)
    g0 = row(res.groups, "genus", "g0")
    assert g0["support"] == 0 and np.isnan(g0["accuracy"]) and g0["worst_class"] is None
    assert res.groups[res.groups["level"] == "genus"].iloc[-1]["group"] == "g0"  # NaN last
    inside = res.expand("f0")
    assert set(inside["class"].iloc[:3]) == {"c3", "c4", "c5"}
    assert inside["accuracy"].iloc[:3].is_monotonic_increasing
    assert res.expand("g3", level="genus")["genus"].eq("g3").all()
    assert res.worst_groups(k=1)["level"].tolist() == ["kingdom", "family", "genus"]
    assert res.worst_groups("genus", k=2)["group"].tolist() == \
        res.groups[res.groups["level"] == "genus"]["group"].tolist()[:2]
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert {g["group"] for g in data["groups"]} >= {"all", "f0", "f1", "g0", "g3"}
    assert data["classes"][0]["genus"] == "g0" and data["levels"][2]["level"] == "genus"


# --------------------------------------------------------------------------- compare_groups
def mapped(y, preds, codes, n_groups):
    """Labels replaced by their group; a wrong prediction becomes an extra group ``n_groups``
    (no test image), so "right" stays exactly as it was."""
    return codes[y], [np.where(p == y, codes[y], n_groups) for p in preds]


def drop_in(y, runs, classes, seed):
    """The candidate: the same runs, each wrong on a fifth of the images of ``classes``."""
    rng = np.random.default_rng(seed)
    return [np.where(np.isin(y, classes) & (rng.random(y.size) < 0.2), (y + 1) % K, r)
            for r in runs]


@pytest.mark.parametrize(("runs", "test"), [(1, "mcnemar"), (3, "crossed")])
@pytest.mark.parametrize("correction", ["bh", "holm"])
def test_groups_are_compare_predictions_on_group_labels(runs, test, correction):
    gm = tree()
    y, a = predictions(8, np.full(K, 0.8), np.full(K, 40), runs=runs)
    _, b = predictions(9, np.full(K, 0.8), np.full(K, 40), runs=runs)
    a, b = ([a], [b]) if runs == 1 else (a, b)
    b = drop_in(y, b, [0, 1, 2, 3], seed=1)
    res = compare_groups(y, a, b, gm, correction=correction, random_state=0)
    assert list(res.groups.columns) == list(COMPARE_COLUMNS)
    assert (res.groups["test"] == test).all()
    columns = ["acc_baseline", "acc_candidate", "delta", "delta_low", "delta_high", "p_value",
               "q_value", "b", "c"]
    for level, names in zip(gm.levels, gm.names, strict=True):
        codes = gm.codes[gm.level_index(level)]
        yg, ga = mapped(y, a, codes, len(names))
        _, gb = mapped(y, b, codes, len(names))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyClassWarning)
            ref = compare_predictions(yg, ga, gb, len(names) + 1, class_names=[*names, "-"],
                                      correction=correction, random_state=0).classes
        ref = ref.iloc[:-1].set_index("class")
        got = res.groups[res.groups["level"] == level].set_index("group").loc[list(names)]
        np.testing.assert_allclose(got[columns].to_numpy(float), ref[columns].to_numpy(float),
                                   rtol=1e-12, atol=1e-15)
        assert got["verdict"].tolist() == ref["verdict"].tolist()
        assert (ref["test"] == test).all()


@pytest.mark.parametrize(("method", "statsmodels_name"), [("bh", "fdr_bh"), ("holm", "holm")])
def test_q_values_per_level_match_statsmodels(method, statsmodels_name):
    y, a = predictions(10, np.full(K, 0.7), np.full(K, 30))
    (b,) = drop_in(y, [a], [0, 1, 2, 6], seed=2)
    res = compare_groups(y, a, b, tree(), correction=method)
    for _, part in res.groups.groupby("level"):
        want = multipletests(part["p_value"], method=statsmodels_name)[1]
        np.testing.assert_allclose(part["q_value"], want, rtol=1e-12)


def test_drop_verdicts_class_drops_and_mean_class_delta():
    y, runs = predictions(11, np.full(K, 0.85), np.full(K, 60), runs=3)
    b = drop_in(y, runs, [0, 1, 2], seed=3)  # genus g0 pays
    res = compare_groups(y, runs, b, tree())
    genus = res.groups[res.groups["level"] == "genus"]
    assert genus.iloc[0]["group"] == "g0" and genus.iloc[0]["verdict"] == "drop"
    assert (genus.iloc[1:]["verdict"] == "none").all()
    assert genus.iloc[0]["delta_high"] < 0 < genus.iloc[1]["delta_high"]
    classes = res.classes
    for _, r in res.groups.iterrows():
        inside = classes[classes[r["level"]] == r["group"]]
        assert r["n_class_drop"] == (inside["verdict"] == "drop").sum()
        assert r["mean_class_delta"] == pytest.approx(inside["delta"].mean())
    assert res.overall["levels"]["genus"] == {"n_groups": 4, "n_drop": 1, "n_gain": 0}
    assert res.overall["n_drop"] == (classes["verdict"] == "drop").sum()
    assert res.expand("g0")["class"].tolist()[0] in {"c0", "c1", "c2"}
    json.dumps(res.to_dict(), allow_nan=False)


def test_identical_runs_change_nothing():
    y, runs = predictions(12, ACC, SUPPORT, runs=2)
    res = compare_groups(y, runs, runs, tree())
    assert (res.groups["p_value"] == 1.0).all() and (res.groups["delta_low"] == 0.0).all()
    assert (res.groups["verdict"] == "none").all()


# ------------------------------------------------------------------------------ bad input
def test_bad_input_is_one_clear_error():
    y, pred = predictions(13, ACC, SUPPORT)
    gm = tree()
    with pytest.raises(InputError, match=r"^'groups' must be a GroupMap .*; got 'dict'$"):
        audit_groups(y, pred, {"family": ["f0"] * K})
    with pytest.raises(InputError, match=r"'groups' must map the 13 classes .*got a map of 12"):
        audit_groups(y, pred, gm, n_classes=13)
    small = GroupMap.from_columns(CLASSES[:10], {"g": ["x"] * 10})
    with pytest.raises(InputError, match=r"labels go up to 11.*got a map of 10 classes"):
        compare_groups(y, pred, pred, small)
    with pytest.raises(InputError, match=r"^'y_true' must hold integers; got nan at row 4$"):
        audit_groups(np.where(np.arange(y.size) == 4, np.nan, y), pred, gm)
    with pytest.raises(InputError, match=r"^'preds_b\[0\]' must hold integers; got nan"):
        compare_groups(y, pred, np.full(y.size, np.nan), gm)
    with pytest.raises(InputError, match=r"^'interval' must be one of .*got 'wilsn'"):
        audit_groups(y, pred, gm, interval="wilsn")
    res = audit_groups(y, pred, gm, n_boot=50)
    with pytest.raises(InputError, match=r"^'level' must be one of 'kingdom', 'family', "
                                         r"'genus'; got 'genuss' \(did you mean 'genus'\?\)"):
        res.worst_groups("genuss")
    with pytest.raises(InputError, match=r"^'group' must be a group of the map at any level; "
                                         r"got 'g33' \(did you mean 'g3'\?\)$"):
        res.expand("g33")
    with pytest.raises(InputError, match=r"^'group' must be a group of the map at level "
                                         r"'family'; got 'g1'"):
        res.expand("g1", level="family")
    twice = GroupMap.from_columns(CLASSES, {"a": ["x"] * 6 + ["y"] * 6,
                                            "b": ["x"] * 3 + ["z"] * 3 + ["w"] * 6})
    res = audit_groups(y, pred, twice, n_boot=50)
    with pytest.raises(InputError, match=r"^'level' must name one of the levels 'a', 'b'"):
        res.expand("x")
    clash = GroupMap.from_columns(CLASSES, {"accuracy": ["x"] * K})
    with pytest.raises(InputError, match=r"'groups' must name its levels unlike .*"
                                         r"got level 'accuracy'"):
        audit_groups(y, pred, clash, n_boot=50)


def test_clipped_mean_class_intervals_are_said_once():
    gm = GroupMap.from_columns(["a", "b"], {"group": ["g", "g"]})
    y = np.repeat([0, 1], 3)
    with pytest.warns(ClippedIntervalWarning, match="1 mean class accuracy interval"):
        audit_groups(y, y, gm, interval="wilson", n_boot=20)


# ------------------------------------------------------------------------------- the guide
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"


def test_the_guides_grouped_example_runs(tmp_path, monkeypatch):
    section = GUIDE.read_text().split("### Which group pays", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "guide.md", "exec"), {})
