"""The fix frontier (issue 21, part 4) on synthetic runs where a rule provably fixes the class
that pays: the cross-fit reads validation only, every fix is audited by the study's own
audit (``audit_fix``), and the best fix (or none) is named the same way everywhere."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from classgap.analysis import RunRecord, analyze, summary_dict
from classgap.analysis.fixes import (
    MAX_CLASS_COST,
    RULE_FOLDS,
    best_fix,
    cross_fit_rule,
    fix_frontier,
    frontier_row,
    seed_folds,
)
from classgap.analysis.refit import audit_fix
from classgap.audit import Predictions
from classgap.errors import InputError
from classgap.fix import apply_rule, fit_rule

K, N, SEEDS, PAYS = 4, 1600, 6, 2
SHIFT = 1.5  # the selected strength lowers the paying class's logit by this much


def _run(y: np.ndarray, mu: float, shift: float, rng: np.random.Generator, seed: int,
         ) -> Predictions:
    """Logits N(0, 1) per class, + mu on the true class, - shift on the paying class: the
    rule with offset +shift on that class turns the run back into a plain mu-margin model."""
    logits = rng.normal(size=(len(y), K))
    logits[np.arange(len(y)), y] += mu
    logits[:, PAYS] -= shift
    return Predictions.from_arrays(y, logits=logits, seed=seed)


def runs(mu_sel: float = 2.2, shift: float = SHIFT, seeds: int = SEEDS, seed: int = 0,
         ) -> dict[str, list[Predictions]]:
    """Reference: margin 1.5, no shift. Selected: margin ``mu_sel`` (every class better) but
    the paying class's logit lowered by ``shift``: it pays, the others gain."""
    rng = np.random.default_rng(seed)
    y_val, y_test = np.arange(N) % K, np.arange(N) % K
    out: dict[str, list[Predictions]] = {k: [] for k in ("ref_val", "ref_test", "sel_val",
                                                         "sel_test")}
    for s in range(seeds):
        out["ref_val"].append(_run(y_val, 1.5, 0.0, rng, s))
        out["ref_test"].append(_run(y_test, 1.5, 0.0, rng, s))
        out["sel_val"].append(_run(y_val, mu_sel, shift, rng, s))
        out["sel_test"].append(_run(y_test, mu_sel, shift, rng, s))
    return out


@pytest.fixture(scope="module")
def frontier() -> tuple[list[dict], object, list[str]]:
    r = runs()
    return fix_frontier(reference_val=r["ref_val"], reference_test=r["ref_test"],
                        selected_val=r["sel_val"], selected_test=r["sel_test"])


def test_the_rule_fixes_the_paying_class(frontier) -> None:
    rows, rule, notes = frontier
    assert notes == []
    sel = rows[0]
    assert sel["kind"] == "none" and sel["below_reference"] == [str(PAYS)]
    assert sel["worst_class"]["class"] == str(PAYS) and sel["worst_class"]["delta"] < -3
    assert sel["target_met"] is False
    rules = [r for r in rows if r["kind"] == "rule"]
    assert len(rules) == 3
    for r in rules:  # every setting recovers the class and keeps most of the gain
        assert r["below_reference"] == [] and r["target_met"], r
        assert r["worst_class"]["delta"] >= -MAX_CLASS_COST
        assert r["mean_vs_reference"]["delta"] > 0
        assert r["training_runs"] == 0 and r["inference_cost"] == 1
        assert "cross-fit over seeds" in r["tuned_on"]
        assert [f["seeds"] for f in r["folds"]] == [[0, 3], [1, 4], [2, 5]]  # RULE_FOLDS
        assert r["folds"][0]["fit_on_seeds"] == [1, 2, 4, 5]
    # the rule lifts the paying class: its weight is the largest, about e^SHIFT the others'
    w = rule.weights
    assert int(np.argmax(w)) == PAYS
    others = np.delete(w, PAYS)
    assert np.log(w[PAYS] / others.mean()) == pytest.approx(SHIFT, abs=0.6)
    best = best_fix(rows)
    assert best is not None and best["kind"] == "rule"


def test_rows_are_the_study_audit(frontier) -> None:
    # the frontier row is audit_fix's verdict on the cross-fitted predictions, not a copy
    rows, _, _ = frontier
    r = runs()
    adjusted, _ = cross_fit_rule(r["ref_val"], r["sel_val"], r["sel_test"], z=0.5,
                                 n_folds=RULE_FOLDS)
    audit = audit_fix(adjusted, r["sel_test"], r["ref_test"], name="rule")
    row = frontier_row(audit, name="x", kind="rule", training_runs=0, inference_cost=1,
                       tuned_on="t")
    first = next(x for x in rows if x["kind"] == "rule")
    assert row["mean_vs_reference"] == first["mean_vs_reference"]
    assert row["worst_class"] == first["worst_class"]
    worst = min(audit["vs_reference"]["classes"], key=lambda c: c["delta"])
    assert first["worst_class"]["delta"] == pytest.approx(100 * worst["delta"], abs=1e-3)
    mean = np.mean([(p.y_pred == p.y_true).mean() for p in adjusted]) - \
        np.mean([(p.y_pred == p.y_true).mean() for p in r["ref_test"]])
    assert first["mean_vs_reference"]["delta"] == pytest.approx(100 * mean, abs=1e-3)


def test_cross_fit_reads_only_validation() -> None:
    r = runs(seeds=4)
    adjusted, folds = cross_fit_rule(r["ref_val"], r["sel_val"], r["sel_test"], z=0.5)
    # each fold's test runs are adjusted by the rule fit on the other fold's validation runs
    for fold in folds:
        train = fold["fit_on_seeds"]
        assert not set(train) & set(fold["seeds"])
        rule = fit_rule([r["ref_val"][s] for s in train], [r["sel_val"][s] for s in train],
                        z=0.5)
        np.testing.assert_allclose(fold["weights"], rule.weights)
        for s in fold["seeds"]:
            np.testing.assert_array_equal(adjusted[s].y_pred,
                                          apply_rule(rule, r["sel_test"][s]).y_pred)
    # mutating every test file (scores and labels) leaves every fitted weight unchanged
    rng = np.random.default_rng(9)
    mutated = [Predictions.from_arrays(rng.permutation(p.y_true),
                                       logits=rng.normal(size=p.scores.shape), seed=p.seed)
               for p in r["sel_test"]]
    _, again = cross_fit_rule(r["ref_val"], r["sel_val"], mutated, z=0.5)
    assert [f["weights"] for f in again] == [f["weights"] for f in folds]


def test_no_fix_meets_the_target_when_no_rule_is_feasible() -> None:
    # a reference right on every validation image: no weights keep every class at it, so every
    # setting is shown as not built and no fix meets the target
    r = runs(seeds=4)
    perfect = [Predictions.from_arrays(p.y_true, p.y_true, seed=p.seed) for p in r["ref_val"]]
    rows, rule, notes = fix_frontier(reference_val=perfect, reference_test=r["ref_test"],
                                     selected_val=r["sel_val"], selected_test=r["sel_test"])
    assert rule is None and "on every seed" in notes[0]
    assert [x["kind"] for x in rows] == ["none", "rule", "rule", "rule"]
    for row in rows[1:]:
        assert row["error"] and row["target_met"] is False and row["worst_class"] is None
    assert best_fix(rows) is None
    assert best_fix(rows[:1]) is None  # the selected strength itself is never a fix


def test_infeasible_and_label_only_runs_are_said() -> None:
    r = runs(seeds=2)
    labels = [Predictions.from_arrays(p.y_true, p.y_pred, seed=p.seed) for p in r["sel_val"]]
    rows, rule, notes = fix_frontier(reference_val=r["ref_val"], reference_test=r["ref_test"],
                                     selected_val=labels, selected_test=r["sel_test"])
    assert rule is None and [x["kind"] for x in rows] == ["none"]
    assert "predicted labels only" in notes[0]


def test_seed_folds_and_bad_input() -> None:
    assert seed_folds([5, 1, 3, 2]) == [[1, 3], [2, 5]]
    assert seed_folds(range(6), 3) == [[0, 3], [1, 4], [2, 5]]
    with pytest.raises(InputError, match="n_folds"):
        seed_folds([0], 2)
    r = runs(seeds=2)
    with pytest.raises(InputError, match="seeds"):
        cross_fit_rule(r["ref_val"], r["sel_val"], r["sel_test"][:1])


def test_best_fix_prefers_cheap_then_the_worst_class() -> None:
    base = {"kind": "rule", "target_met": True, "inference_cost": 1, "training_runs": 0,
            "mean_vs_reference": {"delta": 0.5}, "worst_class": {"delta": -0.4}}
    rows = [{**base, "name": "ensemble", "inference_cost": 2, "worst_class": {"delta": 0.1}},
            {**base, "name": "refit", "training_runs": 12, "worst_class": {"delta": 0.0}},
            {**base, "name": "a"}, {**base, "name": "b", "worst_class": {"delta": -0.2}},
            {**base, "name": "c", "target_met": False, "worst_class": {"delta": 0.3}}]
    assert best_fix(rows)["name"] == "b"


def _records() -> list[RunRecord]:
    r = runs(seeds=4)
    return [RunRecord({"optim.label_smoothing": s}, s, i, r[f"{side}_val"][i],
                      r[f"{side}_test"][i])
            for s, side in ((0.0, "ref"), (0.3, "sel")) for i in range(4)]


def test_summary_holds_the_frontier_and_the_best_fix() -> None:
    records = _records()
    result = analyze(records, axis="optim.label_smoothing", reference=0.0)
    assert result.selected == 0.3
    rows, rule, _ = fix_frontier(
        reference_val=[x.val for x in records[:4]], reference_test=[x.test for x in records[:4]],
        selected_val=[x.val for x in records[4:]], selected_test=[x.test for x in records[4:]])
    result = replace(result, fixes=tuple(rows), fix_rule=rule)
    summary = json.loads(json.dumps(summary_dict(result), allow_nan=False))
    assert [f["name"] for f in summary["fixes"]] == [f["name"] for f in rows]
    assert summary["best_fix"] == json.loads(json.dumps(best_fix(rows)))
    assert summary["best_fix"]["target_met"] is True
    assert set(summary["fixes"][1]) >= {"mean_vs_reference", "mean_vs_selected", "worst_class",
                                        "below_reference", "training_runs", "inference_cost",
                                        "tuned_on", "target", "target_met"}
    empty = summary_dict(replace(result, fixes=()))
    assert empty["fixes"] == [] and empty["best_fix"] is None


def test_two_model_ensemble_is_the_mean_of_the_probabilities() -> None:
    from scipy.special import softmax

    from classgap.analysis.fixes import two_model_ensemble

    r = runs(seeds=2)
    mixed = two_model_ensemble(r["ref_test"], r["sel_test"][::-1])  # matched by seed
    assert [m.seed for m in mixed] == [0, 1]
    for m, a, b in zip(mixed, r["ref_test"], r["sel_test"], strict=True):
        want = (softmax(a.scores, axis=1) + softmax(b.scores, axis=1)) / 2
        np.testing.assert_allclose(m.scores, want)
        assert np.array_equal(m.y_pred, want.argmax(axis=1))
    with pytest.raises(InputError, match="no reference run of seed 1"):
        two_model_ensemble(r["ref_test"][:1], r["sel_test"])
    labels = [Predictions.from_arrays(p.y_true, p.y_pred, seed=p.seed) for p in r["ref_test"]]
    with pytest.raises(InputError, match="needs scores"):
        two_model_ensemble(labels, r["sel_test"])


def test_the_ensemble_row_when_asked(frontier) -> None:
    r = runs()
    rows, _, notes = fix_frontier(reference_val=r["ref_val"], reference_test=r["ref_test"],
                                  selected_val=r["sel_val"], selected_test=r["sel_test"],
                                  ensemble=True, settings=())
    assert notes == [] and [row["kind"] for row in rows] == ["none", "ensemble"]
    row = rows[1]
    assert row["inference_cost"] == 2 and row["training_runs"] == 0
    # the row is the study's audit of the averaged runs, nothing else
    from classgap.analysis.fixes import two_model_ensemble

    audit = audit_fix(two_model_ensemble(r["ref_test"], r["sel_test"]), r["sel_test"],
                      r["ref_test"], name="ensemble")
    assert row == frontier_row(audit, name=row["name"], kind="ensemble", training_runs=0,
                               inference_cost=2, tuned_on=row["tuned_on"])
    assert "ensemble" not in [x["kind"] for x in frontier[0]]  # only when asked


def test_fewer_seeds_than_rule_folds_cross_fit_over_each_seed() -> None:
    r = runs(seeds=2)
    rows, _, notes = fix_frontier(reference_val=r["ref_val"], reference_test=r["ref_test"],
                                  selected_val=r["sel_val"], selected_test=r["sel_test"],
                                  settings=((0.0, 0.5),))
    assert notes == [] and [f["seeds"] for f in rows[-1]["folds"]] == [[0], [1]]
