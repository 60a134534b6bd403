"""The study analysis on synthetic predictions with a planted per-class drop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from classgap.analysis import RunRecord, StudyResult, analyze, summary_dict
from classgap.audit import Predictions
from classgap.errors import InputError

K = 10
DROP_CLASS, SINK = 7, 5  # class 7's lost samples go to class 5
STRENGTHS = (0.0, 0.5, 1.0)
BASE = 0.80
JITTER = 0.03  # per-run noise on each sample's difficulty: small seed-to-seed variation


def _accuracy(strength: float, planted: bool) -> np.ndarray:
    """Per-class accuracy at each strength: 0.5 is best on average, 1.0 worse everywhere."""
    if strength == 0.5:
        acc = np.full(K, BASE + 0.02)
        if planted:
            acc[DROP_CLASS] = BASE - 0.10
        return acc
    return np.full(K, BASE - 0.02 if strength == 1.0 else BASE)


def _split(rng: np.random.Generator, per_class: int) -> dict[str, np.ndarray]:
    """Fixed per-sample difficulty ``u`` and wrong label ``w`` (shared by every run)."""
    y = np.repeat(np.arange(K), per_class)
    return {"y": y, "u": rng.random(len(y)), "w": (y + rng.integers(1, K, len(y))) % K}


def _predict(split: dict[str, np.ndarray], acc: np.ndarray, rng: np.random.Generator,
             planted: bool) -> np.ndarray:
    y, u, w = split["y"], split["u"], split["w"]
    v = u + JITTER * rng.standard_normal(len(y))  # this run's difficulty
    pred = np.where(v < acc[y], y, w)
    if planted:  # the samples class 7 loses at 0.5 (between 0.70 and 0.80) become class 5
        moved = (y == DROP_CLASS) & (v >= acc[y]) & (v < BASE)
        pred = np.where(moved, SINK, pred)
    return pred


def _logits(pred: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 2.0 * np.eye(K)[pred] + 0.1 * rng.standard_normal((len(pred), K))


def make_records(seeds: int = 3, planted: bool = True, per_class_test: int = 500,
                 per_class_val: int = 300, seed: int = 0) -> tuple[list[RunRecord], dict]:
    rng = np.random.default_rng(seed)
    val, test = _split(rng, per_class_val), _split(rng, per_class_test)
    records = []
    for s in STRENGTHS:
        acc = _accuracy(s, planted)
        plant = planted and s == 0.5
        for k in range(seeds):
            r = np.random.default_rng([seed, int(10 * s), k])
            pv, pt = _predict(val, acc, r, plant), _predict(test, acc, r, plant)
            records.append(RunRecord(
                point={"aug.mixup": s}, strength=s, seed=k,
                val=Predictions.from_arrays(val["y"], logits=_logits(pv, r)),
                test=Predictions.from_arrays(test["y"], logits=_logits(pt, r))))
    return records, test


@pytest.fixture(scope="module")
def planted() -> StudyResult:
    records, _ = make_records()
    return analyze(records, axis="aug.mixup", reference=0.0, max_drop=5.0)


def test_selects_best_validation_strength(planted: StudyResult) -> None:
    assert planted.selected == 0.5
    assert planted.reference == 0.0
    assert planted.strengths == STRENGTHS
    v = planted.validation
    assert list(v.columns) == ["strength", "val_mean", "val_std", "test_mean", "test_std",
                               "n_seeds"]
    assert v["val_mean"].idxmax() == 1 and (v["n_seeds"] == 3).all()


def test_finds_exactly_the_planted_drop(planted: StudyResult) -> None:
    c = planted.classes
    drops = c[(c["verdict"] == "drop") & (c["q_value"] < 0.05)]
    assert drops["class"].tolist() == [str(DROP_CLASS)]
    row = c.iloc[DROP_CLASS]
    assert row["delta"] == pytest.approx(-0.10, abs=0.02)
    assert row["delta_low"] < row["delta"] < row["delta_high"] < 0
    assert (c["test"] == "crossed").all()
    assert planted.mean_gain["delta"] > 0
    assert planted.mean_gain["low"] <= planted.mean_gain["delta"] <= planted.mean_gain["high"]
    # own best by test accuracy: class 7 is best at the reference, the others at 0.5
    assert row["own_best"] == 0.0
    assert set(c.drop(index=DROP_CLASS)["own_best"]) == {0.5}


def test_per_class_long_table(planted: StudyResult) -> None:
    pc = planted.per_class
    assert len(pc) == len(STRENGTHS) * K
    assert {"strength", "class", "acc_mean", "acc_low", "acc_high"} <= set(pc.columns)
    assert (pc["acc_low"] <= pc["acc_mean"]).all() and (pc["acc_mean"] <= pc["acc_high"]).all()
    row = pc[(pc["strength"] == 0.5) & (pc["class"] == str(DROP_CLASS))].iloc[0]
    assert row["acc_mean"] == pytest.approx(0.70, abs=0.03)


def test_confusion_shift_points_to_the_sink(planted: StudyResult) -> None:
    top = planted.confusion_shifts.iloc[0]
    assert (top["true"], top["predicted"]) == (str(DROP_CLASS), str(SINK))
    assert top["change"] == pytest.approx(0.10, abs=0.02)
    assert top["change"] == pytest.approx(top["rate_selected"] - top["rate_reference"])


def test_class_aware_selection_avoids_the_paying_strength(planted: StudyResult) -> None:
    ca = planted.class_aware
    assert ca["max_drop"] == 5.0
    assert ca["selected"] != 0.5 and ca["selected"] in (0.0, 1.0)
    assert ca["excluded"] == [{"strength": 0.5, "classes": [str(DROP_CLASS)]}]
    vec = ca["per_class_strengths"]
    assert len(vec) == K and vec[DROP_CLASS] == 0.0
    assert all(s == 0.5 for i, s in enumerate(vec) if i != DROP_CLASS)
    assert any("class-aware" in n for n in planted.notes)


def test_class_aware_keeps_the_strength_when_drop_is_tolerated() -> None:
    records, _ = make_records()
    res = analyze(records, axis="aug.mixup", reference=0.0, max_drop=15.0)
    assert res.class_aware["selected"] == 0.5


def test_ensemble_table(planted: StudyResult) -> None:
    ens = planted.ensemble
    assert ens is not None and len(ens) == K
    assert ens.iloc[DROP_CLASS]["verdict"] == "drop"
    assert planted.meta["ensemble"]["acc_selected"] > 0


def test_notes_name_the_drop(planted: StudyResult) -> None:
    assert any("1 class(es) drop significantly" in n and f"{DROP_CLASS} " in n
               for n in planted.notes)


def test_no_planted_drop_flags_nothing() -> None:
    records, _ = make_records(planted=False)
    res = analyze(records, axis="aug.mixup", reference=0.0)
    assert res.selected == 0.5
    assert (res.classes["verdict"] != "drop").all()
    assert any(n.startswith("no class drops significantly") for n in res.notes)
    assert res.class_aware["selected"] == 0.5


def test_one_seed_uses_mcnemar_and_says_so() -> None:
    records, _ = make_records(seeds=1)
    res = analyze(records, axis="aug.mixup", reference=0.0)
    assert (res.classes["test"] == "mcnemar").all()
    assert res.meta["test"] == "mcnemar"
    assert any(n.startswith("one seed: seed noise not estimated") for n in res.notes)
    drops = res.classes[res.classes["verdict"] == "drop"]["class"].tolist()
    assert drops == [str(DROP_CLASS)]


def test_reference_selected_when_nothing_helps() -> None:
    records, _ = make_records()
    only = [r for r in records if r.strength in (0.0, 1.0)]
    res = analyze(only, axis="aug.mixup", reference=0.0)
    assert res.selected == 0.0
    assert (res.classes["delta"] == 0).all()
    assert any(n.startswith("validation selects the reference") for n in res.notes)


def test_mismatched_truth_names_the_runs() -> None:
    records, _ = make_records(seeds=2, per_class_test=20, per_class_val=10)
    bad = records[3]
    y = bad.test.y_true.copy()
    y[[0, 25]] = y[[25, 0]]  # classes 0 and 1 swap: same length, different labels
    records[3] = RunRecord(bad.point, bad.strength, bad.seed, bad.val,
                           Predictions.from_arrays(y, bad.test.y_pred))
    runs = r"strength=0\.0, seed=0.*strength=0\.5, seed=1"
    with pytest.raises(InputError, match=runs + r".*test.*sample 0"):
        analyze(records, axis="aug.mixup", reference=0.0)


def test_bad_reference_and_duplicates() -> None:
    records, _ = make_records(seeds=1, per_class_test=20, per_class_val=10)
    with pytest.raises(InputError, match="'reference' must be one of the strengths"):
        analyze(records, axis="aug.mixup", reference=2.0)
    with pytest.raises(InputError, match=r"strength=0\.0, seed=0\) twice"):
        analyze(records + records[:1], axis="aug.mixup", reference=0.0)


def test_multilabel_ambiguity_drop_vanishes() -> None:
    records, test = make_records()
    y, u = test["y"], test["u"]
    # The samples class 7 loses are ambiguous: 5 is an acceptable label for them too.
    ambiguous = (y == DROP_CLASS) & (u >= 0.65) & (u < 0.85)
    multi = [[int(c), SINK] if a else [int(c)] for c, a in zip(y, ambiguous, strict=True)]
    res = analyze(records, axis="aug.mixup", reference=0.0, multi_label=multi)
    row = res.classes.iloc[DROP_CLASS]
    assert row["verdict"] == "drop"
    assert row["verdict_multilabel"] != "drop"
    assert abs(row["delta_multilabel"]) < 0.02
    assert {"delta_multilabel", "q_value_multilabel"} <= set(res.classes.columns)
    assert any("1 of 1 significant drops vanish" in n for n in res.notes)
    with pytest.raises(InputError, match="position 0 must be a list"):
        analyze(records, axis="aug.mixup", reference=0.0, multi_label=[3] * len(y))


def test_summary_dict_is_strict_json(planted: StudyResult) -> None:
    d = summary_dict(planted)
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["selected"] == 0.5 and back["reference"] == 0.0
    assert back["axis"] == "aug.mixup" and back["strengths"] == list(STRENGTHS)
    assert set(back["mean_gain"]) == {"delta", "low", "high", "p_value"}
    rec = back["classes"][DROP_CLASS]
    for key in ("class", "acc_reference", "acc_selected", "delta", "delta_low", "delta_high",
                "q_value", "verdict"):
        assert key in rec
    assert 0 <= rec["acc_reference"] <= 1 and rec["verdict"] == "drop"
    assert back["class_aware"]["per_class_strengths"][DROP_CLASS] == 0.0


def test_summary_dict_one_seed_nan_becomes_null() -> None:
    records, _ = make_records(seeds=1, per_class_test=50, per_class_val=20)
    d = summary_dict(analyze(records, axis="aug.mixup", reference=0.0))
    json.dumps(d, allow_nan=False)
    assert d["validation"][0]["val_std"] is None


def test_selection_within_seed_noise_is_noted() -> None:
    records, _ = make_records(per_class_test=100, per_class_val=100)
    ref_runs = [r for r in records if r.strength == 0.0]
    twins = []
    for r in ref_runs:  # 0.5 = the reference runs with one more right validation answer
        pred = r.val.y_pred.copy()
        wrong = np.flatnonzero(pred != r.val.y_true)[r.seed]
        pred[wrong] = r.val.y_true[wrong]
        twins.append(RunRecord({"aug.mixup": 0.5}, 0.5, r.seed,
                               Predictions.from_arrays(r.val.y_true, pred), r.test))
    res = analyze(ref_runs + twins, axis="aug.mixup", reference=0.0)
    assert res.selected == 0.5
    assert any(n.startswith("the selection is within seed noise") for n in res.notes)
    assert any(n.startswith("the mean test accuracy gain is not clearly established")
               for n in res.notes)


def test_report_renders_the_real_analysis(planted: StudyResult, tmp_path) -> None:
    """The report (built against synthetic StudyResults) draws the analysis' own output."""
    from classgap.report import headline, write_report

    path = write_report(planted, tmp_path)
    html = path.read_text()
    table = html.split('id="per-class"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr") == K + 1  # the header row and one row per class
    assert "7" in headline(planted) and "dropped significantly" in headline(planted)
    assert (tmp_path / "classes.csv").read_text().count("\n") == K + 1
    assert 'id="per-class-strengths"' in html
