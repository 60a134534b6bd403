"""Hierarchical tests: BH within the families of a tree, top down, and compare_tree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from classgap.audit.compare import compare_predictions
from classgap.audit.grouped import compare_groups
from classgap.audit.groups import GroupMap
from classgap.audit.hierarchical import (
    METHODS,
    compare_tree,
    hierarchical_test,
    tree_comparison,
)
from classgap.audit.multiplicity import adjust_pvalues
from classgap.audit.paired import mcnemar_score_test
from classgap.errors import InputError


# ------------------------------------------------------------------ hierarchical_test
def _tree(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """3 depths (6, 24, 80 nodes), random parents, 40% of p-values below 1e-5."""
    rng = np.random.default_rng(seed)
    parents = [np.full(6, -1), np.sort(rng.integers(0, 6, 24)), np.sort(rng.integers(0, 24, 80))]
    p = [np.where(rng.random(n) < 0.4, rng.random(n) * 1e-5, rng.random(n)) for n in (6, 24, 80)]
    return p, parents


def _by_hand(p: list[np.ndarray], parents: list[np.ndarray], level) -> list[np.ndarray]:
    """Top down: statsmodels' BH on each family whose parent was rejected, at
    ``level(family size, nodes at its depth)``."""
    out: list[np.ndarray] = []
    for d, (pv, parent) in enumerate(zip(p, parents, strict=True)):
        rejected = np.zeros(pv.size, bool)
        families = [np.arange(pv.size)] if d == 0 else \
            [np.flatnonzero(parent == j) for j in np.flatnonzero(out[-1])]
        for fam in families:
            if fam.size:
                rejected[fam] = multipletests(pv[fam], alpha=level(fam.size, pv.size),
                                              method="fdr_bh")[0]
        out.append(rejected)
    return out


@pytest.mark.parametrize("seed", [1, 3, 5, 11])  # trees where both methods reach the leaves
@pytest.mark.parametrize("method", ["fdr", "yekutieli"])
def test_bh_within_each_family_of_a_rejected_parent(seed, method):
    p, parents = _tree(seed)
    if method == "yekutieli":
        def level(size, m):
            return 0.05
    else:  # alpha split over the 3 depths, then over a depth's families by size
        def level(size, m):
            return 0.05 * size / (3 * m)
    got = hierarchical_test(p, parents, alpha=0.05, method=method)
    want = _by_hand(p, parents, level)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert got[2].any()  # the procedure reached the leaves


def test_children_of_a_parent_not_rejected_are_never_tested():
    p = [[0.001, 0.9], [0.2, 0.0, 0.0]]
    parents = [[-1, -1], [0, 1, 1]]
    for method in METHODS:
        rejected = hierarchical_test(p, parents, method=method)
        assert [r.tolist() for r in rejected] == [[True, False], [False, False, False]]


def test_fwer_is_meinshausens_leaf_weighted_bonferroni():
    # 6 leaves: the 5 nodes of depth 2 and the childless node 2 of depth 1. Shares: depth 0
    # 5/6 and 1/6; depth 1 3/6, 2/6, 1/6; depth 2 1/6 each.
    parents = [[-1, -1], [0, 0, 1], [0, 0, 0, 1, 1]]
    p = [[0.04, 0.0083], [0.0249, 0.02, 0.5], [0.0083, 0.0084, 0.5, 0.001, 0.001]]
    rejected = hierarchical_test(p, parents, alpha=0.05, method="fwer")
    assert [r.tolist() for r in rejected] == [[True, True], [True, False, False],
                                              [True, False, False, False, False]]


def test_nan_pvalues_are_never_rejected_and_left_out_of_the_count():
    p = [[0.01, np.nan, 0.02, 0.6]]
    want = multipletests([0.01, 0.02, 0.6], method="fdr_bh")[0].tolist()
    for method in ("fdr", "yekutieli"):  # one depth: both are BH at alpha
        got = hierarchical_test(p, [[-1] * 4], method=method)[0].tolist()
        assert got == [want[0], False, want[1], want[2]]


@pytest.mark.parametrize("pvalues, parents, kwargs, match", [
    ([[0.1, 1.5]], [[-1, -1]], {}, r"'pvalues\[0\]' must hold p-values in \[0, 1\].*1.5"),
    ([[0.1], [0.2]], [[-1], [1]], {}, r"'parents\[1\]' must index the 1 nodes of depth 0; got 1"),
    ([[0.1]], [[0]], {}, r"'parents\[0\]' must be -1"),
    ([[0.1], [0.2, 0.3]], [[-1], [0]], {}, r"'parents\[1\]' must be integers, one per node \(2\)"),
    ([[0.1]], [], {}, r"'parents' must be a sequence of one array per depth \(1\); got 0"),
    ([[0.1]], [[-1]], {"method": "holm"}, r"'method'.*'holm'"),
    ([[0.1]], [[-1]], {"alpha": 1.0}, r"'alpha' must be in \(0, 1\); got 1.0"),
])
def test_bad_input_gets_one_clear_error(pvalues, parents, kwargs, match):
    with pytest.raises(InputError, match=match):
        hierarchical_test(pvalues, parents, **kwargs)


# ------------------------------------------------------------------ simulation: FDR, power
def _simulated_pvalues(rng: np.random.Generator, sims: int, drop: bool) -> list[np.ndarray]:
    """(sims, nodes) McNemar p-values of 10 families > 50 genera > 1,000 classes of 10
    images, one run a side: models disagree on 14% of images; when ``drop``, every class of
    genus 0 loses 20 points."""
    k = 1000
    pb, pc = np.full(k, 0.07), np.full(k, 0.07)
    if drop:
        pb[:20], pc[:20] = 0.22, 0.02
    b = rng.binomial(10, pb, (sims, k))
    c = rng.binomial(10 - b, pc / (1 - pb))
    nodes = [np.arange(0, k, 100), np.arange(0, k, 20), np.arange(k)]  # contiguous groups
    return [mcnemar_score_test(np.add.reduceat(b, s, axis=1), np.add.reduceat(c, s, axis=1))
            for s in nodes]


def test_simulated_fdr_stays_below_alpha_and_power_beats_flat_bh():
    rng = np.random.default_rng(0)
    family_of_genus, genus_of_class = np.arange(50) // 5, np.arange(1000) // 20
    full_tree = [np.full(10, -1), family_of_genus, genus_of_class]
    genus_tree = [np.full(50, -1), genus_of_class]
    nonnull = [np.arange(10) == 0, np.arange(50) == 0, genus_of_class == 0]
    sims = 200
    for drop in (False, True):
        p = _simulated_pvalues(rng, sims, drop)
        fdp = {m: [] for m in ("fdr", "fwer", "genus fdr")}
        found = {"genus fdr": 0, "flat": 0}
        for s in range(sims):
            for name, method, tree, depths in (("fdr", "fdr", full_tree, (0, 1, 2)),
                                               ("fwer", "fwer", full_tree, (0, 1, 2)),
                                               ("genus fdr", "fdr", genus_tree, (1, 2))):
                rejected = hierarchical_test([p[d][s] for d in depths], tree, method=method)
                false = sum(int((r & ~(nonnull[d] & drop)).sum())
                            for r, d in zip(rejected, depths, strict=True))
                fdp[name].append(false / max(sum(int(r.sum()) for r in rejected), 1))
                if name == "genus fdr":
                    found["genus fdr"] += bool(rejected[0][0])
            found["flat"] += bool((adjust_pvalues(p[2][s]) <= 0.05)[:20].any())
        for name, values in fdp.items():
            assert np.mean(values) <= 0.05, (drop, name, np.mean(values))
        if drop:
            # a 20-point drop of 20 classes of 10 images: the genus is found almost always,
            # a class of it by flat BH over 1,000 classes almost never
            assert found["genus fdr"] >= 0.9 * sims
            assert found["flat"] <= 0.2 * sims
            assert found["genus fdr"] > found["flat"]


# ------------------------------------------------------------------ compare_tree
def _taxonomy() -> GroupMap:
    classes = [f"c{k}" for k in range(24)]
    return GroupMap.from_columns(classes, {"genus": [f"g{k // 4}" for k in range(24)],
                                           "family": [f"f{k // 12}" for k in range(24)]})


def _predictions(seed: int, runs: int = 1) -> tuple[np.ndarray, list, list]:
    """40 images a class; the candidate loses ~32 points on genus g0 (classes 0-3)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(24), 40)
    wrong = (y + 1) % 24

    def run(acc):
        return np.where(rng.random(y.size) < acc, y, wrong)

    a = [run(0.8) for _ in range(runs)]
    if runs == 1:  # paired: the same model except on g0
        b = [np.where((y < 4) & (rng.random(y.size) < 0.4), wrong, a[0])]
    else:
        b = [run(np.where(y < 4, 0.5, 0.8)) for _ in range(runs)]
    return y, a, b


@pytest.mark.parametrize("runs", [1, 3])
def test_each_node_gets_the_per_class_test_with_its_labels_mapped(runs):
    gm = _taxonomy()
    y, a, b = _predictions(0, runs)
    tree = compare_tree(y, a, b, gm)
    assert tree.test == ("mcnemar" if runs == 1 else "crossed")
    for level in ("family", "genus"):
        code = gm.codes[gm.level_index(level)]
        yg, g = code[y], len(gm.groups(level))

        def mapped(side, yg=yg, g=g):  # right stays right, labels become groups
            return [np.where(r == y, yg, (yg + 1) % g) for r in side]

        ref = compare_predictions(yg, mapped(a), mapped(b), g, class_names=gm.groups(level))
        want = ref.classes.set_index("class")
        got = tree.nodes[tree.nodes["level"] == level].set_index("node").loc[want.index]
        for col in ("support", "acc_baseline", "delta", "delta_low", "delta_high", "p_value"):
            np.testing.assert_allclose(got[col], want[col], rtol=1e-12, atol=1e-12)
    per_class = compare_predictions(y, a, b, 24, class_names=gm.classes).classes
    got = tree.nodes[tree.nodes["level"] == "class"].set_index("node")
    np.testing.assert_allclose(got.loc[per_class["class"], "p_value"], per_class["p_value"],
                               rtol=1e-12)


def test_compare_tree_goes_down_only_inside_the_groups_it_found():
    gm = _taxonomy()
    y, a, b = _predictions(1)
    tree = compare_tree(y, a, b, gm)
    nodes = tree.nodes
    assert tree.found("family")[["node", "verdict"]].values.tolist() == [["f0", "drop"]]
    assert tree.found("genus")[["node", "verdict"]].values.tolist() == [["g0", "drop"]]
    genus, classes = nodes[nodes["level"] == "genus"], nodes[nodes["level"] == "class"]
    assert set(genus.loc[genus["tested"], "node"]) == {"g0", "g1", "g2"}  # children of f0
    assert set(classes.loc[classes["tested"], "node"]) == {"c0", "c1", "c2", "c3"}
    assert nodes.loc[~nodes["tested"], "q_value"].isna().all()
    assert not nodes.loc[~nodes["tested"], "rejected"].any()
    assert (nodes["rejected"] == (nodes["q_value"] <= 0.05)).all()
    assert nodes["depth"].tolist() == sorted(nodes["depth"])
    assert nodes.loc[nodes["depth"] == 0, "parent"].tolist() == [None, None]
    assert genus.set_index("node").loc["g4", "parent"] == "f1"
    assert "false discovery rate over the whole tree <= 0.05" in tree.bound
    assert "3 depths" in tree.bound and "one run a side" in tree.bound
    json.dumps(tree.to_dict(), allow_nan=False)


def test_levels_choose_the_tree_and_test_classes_false_stops_at_the_groups():
    gm = _taxonomy()
    y, a, b = _predictions(1)
    names = np.asarray(gm.classes, dtype=object)  # class names work as labels too
    tree = compare_tree(names[y], [names[a[0]]], [names[b[0]]], gm, levels=["genus"],
                        test_classes=False)
    nodes = tree.nodes
    assert nodes["level"].unique().tolist() == ["genus"] and nodes["tested"].all()
    # one depth: BH over the genera at alpha, the flat per-level comparison
    np.testing.assert_array_equal(nodes["rejected"], adjust_pvalues(nodes["p_value"]) <= 0.05)
    assert compare_tree(y, a, b, gm, method="fwer").bound.startswith("family-wise")
    for bad, match in ((["genus", "family"], "coarsest first"), (["genus", "genus"], "distinct"),
                       (["order"], "no level 'order'")):
        with pytest.raises(InputError, match=match):
            compare_tree(y, a, b, gm, levels=bad)
    with pytest.raises(InputError, match="'test' must be 'mcnemar' or 'auto'"):
        compare_tree(y, a, b, gm, test="crossed")


def test_tree_comparison_runs_the_tree_on_a_comparison_already_made():
    gm = _taxonomy()
    y, a, b = _predictions(2)
    tree = tree_comparison(compare_groups(y, a, b, gm), gm, method="fwer")
    pd.testing.assert_frame_equal(tree.nodes, compare_tree(y, a, b, gm, method="fwer").nodes)
    other = GroupMap.from_columns(["x", "z"], {"genus": ["g", "g"]})
    with pytest.raises(InputError, match="'comparison' must be compare_groups' result"):
        tree_comparison(compare_groups(y, a, b, gm), other)


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"


def test_the_guides_tree_example_runs_and_finds_what_it_says(capsys):
    section = GUIDE.read_text().split("### Down the tree", 1)[1].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    scope: dict = {}
    exec(compile(code, "guide.md", "exec"), scope)
    found = scope["tree"].found()
    assert set(found.loc[found["level"] == "family", "node"]) == {"family0"}
    genera = {f"genus{i}" for i in range(5)}  # the five genera of family0
    assert set(found.loc[found["level"] == "genus", "node"]) == genera
    assert set(scope["genus_first"].found("genus")["node"]) == genera
    assert "false discovery rate over the whole tree" in capsys.readouterr().out
