"""Seed planning: hand-checked power, the search for seeds, a power simulation, the command."""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from classgap.analysis import RunRecord, SeedPlan, analyze, plan_seeds
from classgap.analysis.plan import (
    NO_VARIATION,
    NOT_DETECTABLE,
    class_level,
    detectable_sentence,
    min_detectable_drop,
    power,
    seeds_needed,
)
from classgap.audit import Predictions, compare_predictions
from classgap.audit.paired import crossed_components
from classgap.cli import run
from classgap.errors import InputError
from classgap.pipeline import StudyError, plan_study, plan_study_seeds, run_full_study

# ---------------------------------------------------------------- the array functions


def test_class_level() -> None:
    assert class_level(0.05, "bh", 10) == class_level(0.05, "holm", 10) == 0.005
    assert class_level(0.05, "none", 10) == 0.05
    with pytest.raises(InputError, match=r"'correction'.*'bonferroni'"):
        class_level(0.05, "bonferroni", 10)


def test_power_is_the_noncentral_t_by_hand() -> None:
    # B = 0: V = 2 sigma2 / S and df = 2 (S - 1), the pooled two-sample t test
    sigma2, s, drop, level = 4e-4, 5, 0.03, 0.05 / 10
    ncp, df = drop / np.sqrt(2 * sigma2 / s), 2 * (s - 1)
    t = stats.t.ppf(1 - level / 2, df)
    expected = stats.nct.sf(t, df, ncp) + stats.nct.cdf(-t, df, ncp)
    got = power(drop, [sigma2], [0.0], [200], s, n_classes=10)
    assert got.shape == (1,) and got[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9])
def test_min_detectable_drop_matches_the_normal_approximation(target: float) -> None:
    # B = 0 and many seeds: delta = (z_{1 - alpha'/2} + z_power) sigma sqrt(2 / S)
    sigma2, s, k = 1e-3, 400, 10
    z = stats.norm.ppf(1 - 0.05 / k / 2) + stats.norm.ppf(target)
    mdd = min_detectable_drop([sigma2], [0.0], [500], s, power=target, n_classes=k)
    assert mdd[0] == pytest.approx(z * np.sqrt(sigma2 * 2 / s), rel=0.01)
    # and it inverts power()
    assert power(mdd, [sigma2], [0.0], [500], s, n_classes=k)[0] == pytest.approx(target,
                                                                                  abs=1e-8)


def test_image_variance_and_fewer_seeds_raise_the_detectable_drop() -> None:
    base = min_detectable_drop([4e-4], [0.0], [200], 8, n_classes=10)[0]
    assert min_detectable_drop([4e-4], [1e-4], [200], 8, n_classes=10)[0] > base
    assert min_detectable_drop([4e-4], [0.0], [200], 4, n_classes=10)[0] > base
    # with correction "none" the per-class level is alpha: smaller drops are detectable
    assert min_detectable_drop([4e-4], [0.0], [200], 8, correction="none")[0] < base


def test_degenerate_classes() -> None:
    sv, iv, n = [0.0, np.nan], [0.0, np.nan], [100, 0]
    np.testing.assert_array_equal(power(0.01, sv, iv, n, 4, n_classes=10), [1.0, np.nan])
    np.testing.assert_array_equal(min_detectable_drop(sv, iv, n, 4, n_classes=10),
                                  [0.0, np.nan])
    assert seeds_needed(0.01, sv, iv, n, n_classes=10).tolist() == [2, pd.NA]


def test_seeds_needed_is_monotone_and_blocked_by_the_image_term() -> None:
    sv, iv, n = np.array([4e-4, 4e-4, 1e-3]), np.array([0.0, 2e-5, 1e-4]), np.full(3, 200)
    drops = np.linspace(0.005, 0.1, 25)
    table = np.array([seeds_needed(d, sv, iv, n, n_classes=10).to_numpy(dtype=float,
                                                                      na_value=1e9)
                      for d in drops])  # (drops, K); 1e9 where impossible
    assert (np.diff(table, axis=0) <= 0).all()  # a larger drop never needs more seeds
    # class 2's image term alone has an sd of 1 point: at 80% power and alpha' = 0.005 a
    # 2-point drop is out of reach even with 1000 seeds, and seeds_needed says so with <NA>
    needed = seeds_needed(0.02, sv, iv, n, n_classes=10)
    assert needed[2] is pd.NA
    assert power(0.02, sv, iv, n, 1000, n_classes=10)[2] < 0.8
    # where it is reachable, S is the smallest: S - 1 falls short, S reaches
    for k in (0, 1):
        s = int(needed[k])
        assert power(0.02, sv[k], iv[k], n[k], s, n_classes=10)[0] >= 0.8
        assert s == 2 or power(0.02, sv[k], iv[k], n[k], s - 1, n_classes=10)[0] < 0.8


def test_seeds_needed_bisection_equals_an_exhaustive_scan() -> None:
    rng = np.random.default_rng(3)
    k = 60
    sv = 10 ** rng.uniform(-5, -2.5, k)
    iv = np.where(rng.random(k) < 0.3, 0.0, 10 ** rng.uniform(-6, -3.5, k))
    n = rng.integers(20, 500, k)
    drop = 10 ** rng.uniform(-2.3, -1, k)
    got = seeds_needed(drop, sv, iv, n, max_seeds=300, n_classes=10)
    grid = np.arange(2, 301)[:, None]
    reach = power(np.broadcast_to(drop, (len(grid), k)).ravel(), np.tile(sv, len(grid)),
                  np.tile(iv, len(grid)), np.tile(n, len(grid)),
                  np.repeat(grid[:, 0], k), n_classes=10).reshape(len(grid), k) >= 0.8
    scan = [int(grid[np.argmax(reach[:, j]), 0]) if reach[:, j].any() else pd.NA
            for j in range(k)]
    assert got.tolist() == scan
    assert 0 < got.isna().sum() < k  # both cases occur


@pytest.mark.parametrize("call, needle", [
    (lambda: power(0.0, [1e-4], [0.0], [100], 4), "'drop' must be in (0, 1]"),
    (lambda: power(0.01, [1e-4], [0.0], [100], 1), "'seeds' must hold integers >= 2"),
    (lambda: power(0.01, [-1e-4], [0.0], [100], 4), "'seed_var' must hold non-negative"),
    (lambda: min_detectable_drop([1e-4], [0.0], [100], 4, power=1.0), "'power' must be in"),
])
def test_array_function_errors(call, needle: str) -> None:
    with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        call()


# ---------------------------------------------------------------- plan_seeds

K = 10
N_PER = 200


def _independent_preds(rng: np.random.Generator, seeds: int, acc: float = 0.8,
                       ) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat(np.arange(K), N_PER)
    ok = rng.random((seeds, len(y))) < acc
    return y, np.where(ok, y, (y + 1) % K)


def test_plan_seeds_pools_the_seed_variance_over_strengths() -> None:
    rng = np.random.default_rng(0)
    y, a = _independent_preds(rng, 3)
    _, b = _independent_preds(rng, 5, acc=0.7)
    _, c = _independent_preds(rng, 4)
    plan = plan_seeds(y, [a, b, c], reference=0, drop=2.0)
    assert isinstance(plan, SeedPlan) and plan.seeds == 3
    assert plan.level == pytest.approx(0.005) and plan.drop == 2.0 and plan.correction == "bh"
    # by hand: sum_m (S_m - 1) s2_m / sum_m (S_m - 1) of the per-class accuracies
    acc = [np.stack([np.bincount(y[r == y], minlength=K) / N_PER for r in p]) for p in (a, b, c)]
    pooled = sum((len(x) - 1) * x.var(axis=0, ddof=1) for x in acc) / (2 + 4 + 3)
    np.testing.assert_allclose(plan.classes["seed_sd"], 100 * np.sqrt(pooled), rtol=1e-12)
    # the image term: v_img - v_int, clipped at 0, averaged over the non-reference strengths
    parts = [crossed_components(y, a == y, p == y, K) for p in (b, c)]
    image = np.mean([np.maximum(q["v_img"] - q["v_int"], 0) for q in parts], axis=0)
    np.testing.assert_allclose(plan.classes["image_sd"], 100 * np.sqrt(image), rtol=1e-12)
    expected = 100 * min_detectable_drop(pooled, image, N_PER, 3, n_classes=K)
    np.testing.assert_allclose(plan.classes["min_detectable_drop"], expected)
    assert plan.classes["seeds_needed"].dtype == "Int64"
    assert list(plan.classes.columns) == ["class", "support", "seed_sd", "image_sd",
                                          "accuracy", "min_detectable_drop", "power_at_drop",
                                          "seeds_needed", "note"]
    assert (plan.classes["note"] == "").all()
    d = plan.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["settings"]["seeds"] == 3 and len(d["classes"]) == K


def test_a_class_without_any_variation_gets_the_binomial_floor() -> None:
    # Class 0 at 100% in both seeds of both strengths: sd 0 seen, which is not certainty.
    rng = np.random.default_rng(1)
    y, a = _independent_preds(rng, 2)
    _, b = _independent_preds(rng, 2)
    a[:, y == 0], b[:, y == 0] = 0, 0
    plan = plan_seeds(y, [a, b], drop=5.0)
    row = plan.classes.iloc[0]
    p = (N_PER + 0.5) / (N_PER + 1)
    assert row["seed_sd"] == pytest.approx(100 * np.sqrt(p * (1 - p) / N_PER))
    assert row["note"] == NO_VARIATION and row["accuracy"] == 100.0
    expected = 100 * min_detectable_drop([p * (1 - p) / N_PER], [0.0], [N_PER], 2,
                                         n_classes=K)[0]
    assert row["min_detectable_drop"] == pytest.approx(expected) and expected > 5
    assert row["seeds_needed"] > 2  # not "2 seeds for a 5-point drop"
    assert any("no variation" in line for line in plan.lines())


def test_a_drop_past_the_class_accuracy_is_not_detectable() -> None:
    # Class 0 at ~5% with wildly different seeds: the smallest detectable drop exceeds it.
    rng = np.random.default_rng(2)
    y, a = _independent_preds(rng, 2)
    _, b = _independent_preds(rng, 2)
    zero = np.flatnonzero(y == 0)
    a[:, zero] = 1
    a[0, zero[:20]] = 0  # seed 0 of the reference right on 10% of class 0, seed 1 on none
    plan = plan_seeds(y, [a, b], drop=5.0)
    row = plan.classes.iloc[0]
    assert np.isnan(row["min_detectable_drop"]) and row["note"] == NOT_DETECTABLE
    assert row["accuracy"] == pytest.approx(5.0)
    d = plan.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["classes"][0]["min_detectable_drop"] is None
    assert d["classes"][0]["note"] == "not detectable with these seeds"
    detect = plan.detectable()
    assert detect["worst_class"] == "0" and detect["worst_note"] == NOT_DETECTABLE
    assert "no drop is detectable" in detectable_sentence(detect)
    assert any(line.startswith("1 class(es) not detectable with these seeds")
               for line in plan.lines())


@pytest.mark.parametrize("kwargs, needle", [
    ({"drop": 0.0}, "'drop' must be in (0.0, 100.0]; got 0.0"),
    ({"drop": 150.0}, "'drop' must be in (0.0, 100.0]; got 150.0"),
    ({"power": 1.0}, "'power' must be in (0, 1); got 1.0"),
    ({"reference": 2}, "'reference' must be an index in [0, 1]; got 2"),
    ({"alpha": 0.0}, "'alpha' must be in (0, 1); got 0.0"),
])
def test_plan_seeds_errors_name_the_argument(kwargs: dict, needle: str) -> None:
    y, a = _independent_preds(np.random.default_rng(0), 2)
    with pytest.raises(InputError) as err:
        plan_seeds(y, [a, a], **kwargs)
    assert needle in str(err.value)


def test_plan_seeds_needs_two_seeds_and_two_strengths() -> None:
    y, a = _independent_preds(np.random.default_rng(0), 2)
    with pytest.raises(InputError, match="at least 2 seeds per strength; got 1 seed at "
                                         "strength 1"):
        plan_seeds(y, [a, a[:1]])
    with pytest.raises(InputError, match="at least 2 strengths"):
        plan_seeds(y, [a])


# ---------------------------------------------------------------- planned vs empirical power

# A crossed seeds x images model of correctness. Image i of a class has a difficulty z_i (its
# test set is drawn anew in every simulated study), seed s of a recipe shifts the class by u_s
# and run noise e_si is independent: x_si = [1.5 z_i + u_s + e_si > c]. Recipe B ranks the
# images like A with correlation RHO (z_b = RHO z + sqrt(1 - RHO^2) w); class 0's threshold is
# higher under B by SHIFT, a planted population drop of PLANTED points.
SCALE, TAU, RHO, ACC = 1.5, 0.1, 0.8, 0.8
SD = np.sqrt(SCALE**2 + TAU**2 + 1.0)  # marginal sd of the latent score
C = -stats.norm.ppf(ACC) * SD  # threshold giving accuracy ACC
SHIFT, SEEDS, STUDIES = 0.55, 4, 600  # planted shift; seeds per side; simulated studies
PILOTS, PILOT_SEEDS = 16, 64
PLANTED = 100 * (stats.norm.cdf(-C / SD) - stats.norm.cdf(-(C + SHIFT) / SD))


def _crossed_study(rng: np.random.Generator, seeds: int) -> tuple[np.ndarray, ...]:
    """y (N,) and predicted labels of A and B, (seeds, N) each, on a fresh test set."""
    y = np.repeat(np.arange(K), N_PER)
    z, w = rng.standard_normal((2, len(y)))
    z_b = RHO * z + np.sqrt(1 - RHO**2) * w
    preds = []
    for latent, c in ((z, np.full(len(y), C)), (z_b, np.where(y == 0, C + SHIFT, C))):
        u = TAU * rng.standard_normal((seeds, K))[:, y]  # (seeds, N): a seed's class effect
        ok = SCALE * latent + u + rng.standard_normal((seeds, len(y))) > c
        wrong = (y + rng.integers(1, K, ok.shape)) % K  # a wrong prediction: another class
        preds.append(np.where(ok, y, wrong))
    return y, preds[0], preds[1]


def _planned_power(rng: np.random.Generator) -> float:
    """The power one pilot study plans for the planted drop at SEEDS seeds per side."""
    y, a, b = _crossed_study(rng, PILOT_SEEDS)
    c = plan_seeds(y, [a, b], reference=0, drop=PLANTED).classes.iloc[0]
    return float(power(PLANTED / 100, (c["seed_sd"] / 100) ** 2, (c["image_sd"] / 100) ** 2,
                       c["support"], SEEDS, n_classes=K)[0])


def test_planned_power_matches_simulated_power() -> None:
    rng = np.random.default_rng(2024)
    # A pilot is the study the user has; its plan is an estimate (one test set of 200 images
    # puts about 11% of noise on B, few seeds much more on sigma2): one pilot's planned power
    # has an sd of about 0.16 with 8 seeds per side, 0.07 with 64. So the plan is checked on
    # average over PILOTS pilots, the empirical power is one frequency over STUDIES studies.
    plans = np.array([_planned_power(rng) for _ in range(PILOTS)])
    planned = float(plans.mean())
    assert 0.5 <= planned <= 0.9
    hits = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(STUDIES):
            y, a, b = _crossed_study(rng, SEEDS)
            res = compare_predictions(y, a, b, K, test="crossed", correction="bh", alpha=0.05)
            hits += res.classes["verdict"].iloc[0] == "drop"
    empirical = hits / STUDIES
    print(f"\nplanted drop {PLANTED:.2f} points, {SEEDS} seeds per side: planned power "
          f"{planned:.3f} (mean of {PILOTS} pilots of {PILOT_SEEDS} seeds, each "
          f"{plans.min():.2f}-{plans.max():.2f}), empirical {empirical:.3f} over {STUDIES} "
          f"studies")
    assert abs(empirical - planned) <= 0.1


# ---------------------------------------------------------------- analyze's meta


def _records(seeds: int) -> list[RunRecord]:
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(K), 100)
    out = []
    for strength in (0.0, 0.5):
        for seed in range(seeds):
            preds = []
            for _ in range(2):  # val, test
                pred = np.where(rng.random(len(y)) < 0.8, y, (y + 1) % K)
                logits = 2.0 * np.eye(K)[pred] + 0.1 * rng.standard_normal((len(y), K))
                preds.append(Predictions.from_arrays(y, logits=logits))
            out.append(RunRecord({"aug.flip": strength}, strength, seed, *preds))
    return out


def test_analyze_carries_the_detectable_drop() -> None:
    result = analyze(_records(3), axis="aug.flip", reference=0.0)
    d = result.meta["detectable_drop"]
    assert set(d) >= {"seeds", "median", "worst", "worst_class", "by_class"}
    assert d["seeds"] == 3 and len(d["by_class"]) == K
    assert d["worst"] == max(d["by_class"]) and d["median"] == np.median(d["by_class"])
    assert "detectable_drop" not in analyze(_records(1), axis="aug.flip", reference=0.0).meta


# ---------------------------------------------------------------- a study directory, the CLI

SKLEARN = Path(__file__).resolve().parents[2] / "examples" / "sklearn_train.py"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real study: logistic regression on digits (seconds per run), 2 strengths x 2 seeds."""
    out = tmp_path_factory.mktemp("plan")
    cmd = f"{sys.executable} {SKLEARN} --C {{C}} --seed {{seed}} --out {{out}}"
    plan = plan_study(axes=["cmd.C=10000,1"], seeds=2)
    run_full_study(plan, out, train_cmd=cmd, progress=False)
    return out


def test_plan_study_seeds(study_dir: Path) -> None:
    plan = plan_study_seeds(study_dir, drop=5.0)
    assert plan.seeds == 2 and len(plan.classes) == 10 and plan.alpha == 0.05
    assert plan.classes["support"].sum() == 540  # the script's 30% test split of digits
    assert plan_study_seeds(study_dir, alpha=0.1, correction="none").level == 0.1


def _bounds(value: object, key: str = "") -> list[tuple[str, float]]:
    """Every (key, number) under a ``*low``/``*high`` key of a JSON document."""
    if isinstance(value, dict):
        return [b for k, v in value.items() for b in _bounds(v, str(k))]
    if isinstance(value, list):
        return [b for v in value for b in _bounds(v, key)]
    if isinstance(value, int | float) and key.endswith(("low", "high")):
        return [(key, float(value))]
    return []


def test_study_outputs_keep_intervals_in_range(study_dir: Path) -> None:
    # 2 seeds per strength: the t intervals of per_class.csv reached [-0.36, 1.75] before.
    per_class = pd.read_csv(study_dir / "per_class.csv")
    assert per_class["acc_low"].between(0, 1).all() and per_class["acc_high"].between(0, 1).all()
    summary = json.loads((study_dir / "summary.json").read_text())
    assert any("were clipped: those classes have too few test images or seeds" in note
               for note in summary["notes"])  # the report says it too, not only the terminal
    found = _bounds(summary)
    assert found
    for key, v in found:
        assert (-1 <= v <= 1) if "delta" in key or key in ("low", "high") else (0 <= v <= 1), key
    html = (study_dir / "report.html").read_text()
    shown = [float(x) for pair in re.findall(r"\[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]", html)
             for x in pair]
    assert shown and all(-100 <= x <= 100 for x in shown)


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_json(capsys: pytest.CaptureFixture[str], study_dir: Path) -> None:
    code, out, err = invoke(capsys, "plan-seeds", study_dir, "--drop", "5", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["settings"]["drop"] == 5.0 and payload["settings"]["seeds"] == 2
    assert len(payload["classes"]) == 10
    for row in payload["classes"]:
        assert {"class", "min_detectable_drop", "seeds_needed", "seed_sd", "image_sd",
                "accuracy", "note"} <= set(row)
        # a null drop always comes with its reason
        assert (row["min_detectable_drop"] is None) == ("not detectable" in row["note"])


def test_cli_table(capsys: pytest.CaptureFixture[str], study_dir: Path) -> None:
    code, out, err = invoke(capsys, "plan-seeds", study_dir, "--drop", "5")
    assert code == 0, err
    text = " ".join(out.split())
    assert ("With 2 seeds per strength this study can detect drops of" in text
            and "(median over classes; the hardest class, " in text) or \
        "With 2 seeds per strength no drop is detectable in most classes" in text


def test_detectable_sentence_stays_true_past_100_points() -> None:
    from classgap.analysis.plan import detectable_sentence

    d = {"seeds": 4, "median": 2.5, "worst": 250.0, "worst_class": "Shirt"}
    assert "drops of 2.5 points or more" in detectable_sentence(d)
    assert "the hardest class, Shirt: no drop is detectable)" in detectable_sentence(d)
    assert "no drop is detectable in most classes" in \
        detectable_sentence({**d, "median": 120.0})
    assert "no drop is detectable in most classes" in \
        detectable_sentence({**d, "median": np.inf})


def test_cli_not_a_study(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = invoke(capsys, "plan-seeds", tmp_path)
    assert code == 1 and "not a study directory" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(StudyError, match="not a study directory"):
        plan_study_seeds(tmp_path)


def test_cli_bad_power_is_one_line(capsys: pytest.CaptureFixture[str], study_dir: Path) -> None:
    code, _, err = invoke(capsys, "plan-seeds", study_dir, "--power", "1.5")
    assert code == 1 and "'power' must be in (0, 1); got 1.5" in err
    assert len(err.strip().splitlines()) == 1
