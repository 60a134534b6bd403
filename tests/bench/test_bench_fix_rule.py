"""bench/fix_rule.py's helpers for other regimes: the axis of a study's runs and the two-model
ensemble (the mean of the reference's and the candidate's probabilities, same seed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy.special import softmax

from classgap.audit.io import read_predictions, write_predictions

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fix_rule.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fix_rule", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(root: Path, name: str, mixup: float | list[float], seed: int) -> Path:
    run = root / "runs" / name
    run.mkdir(parents=True)
    config = {"optim": {"label_smoothing": 0.0}, "aug": {"mixup": mixup},
              "train": {"seed": seed}}
    (run / "config.json").write_text(json.dumps(config))
    write_predictions(run / "val.npz", y_true=[0, 1], probs=[[0.6, 0.4], [0.3, 0.7]])
    return run


def test_runs_by_strength_reads_the_given_axis_and_sorts_by_seed(bench: ModuleType,
                                                                 tmp_path: Path) -> None:
    b = _run(tmp_path, "b", 1.0, seed=3)
    a = _run(tmp_path, "a", 1.0, seed=1)
    c = _run(tmp_path, "c", 0.0, seed=1)
    _run(tmp_path, "refit", [0.0, 1.0], seed=1)  # a per-class strength: not a swept run
    rw = _run(tmp_path, "reweight", 1.0, seed=2)  # a reweighting fix's run: not swept either
    config = json.loads((rw / "config.json").read_text())
    (rw / "config.json").write_text(json.dumps({**config, "loss": {"reweight": "clam"}}))
    assert bench.runs_by_strength(tmp_path, "aug.mixup") == {1.0: [a, b], 0.0: [c]}
    # the default axis stays label smoothing (every run here has ε = 0)
    assert sorted(bench.runs_by_strength(tmp_path)) == [0.0]


def test_two_model_ensemble_averages_probabilities_of_the_same_seed(bench: ModuleType,
                                                                   tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=20)
    ids = np.arange(100, 120)
    ref_logits = {s: rng.normal(size=(20, 3)) for s in (0, 1)}
    cand_logits = rng.normal(size=(20, 3))
    refs = [write_predictions(tmp_path / f"ref{s}.npz", y_true=y, logits=ref_logits[s],
                              sample_id=ids, seed=s) for s in (0, 1)]
    cand = read_predictions(write_predictions(tmp_path / "cand.npz", y_true=y,
                                              logits=cand_logits, sample_id=ids, seed=1))
    out = bench.two_model_ensemble(refs)(cand)
    expected = (softmax(cand_logits, axis=1) + softmax(ref_logits[1], axis=1)) / 2
    np.testing.assert_allclose(out.scores, expected)
    np.testing.assert_array_equal(out.y_pred, expected.argmax(axis=1))
    assert out.seed == 1


def test_two_model_ensemble_refuses_a_seed_without_reference(bench: ModuleType,
                                                            tmp_path: Path) -> None:
    ref = write_predictions(tmp_path / "ref.npz", y_true=[0, 1], probs=[[0.6, 0.4], [0.3, 0.7]],
                            seed=0)
    cand = read_predictions(write_predictions(tmp_path / "cand.npz", y_true=[0, 1],
                                              probs=[[0.5, 0.5], [0.2, 0.8]], seed=5))
    with pytest.raises(SystemExit, match="no reference run of seed 5"):
        bench.two_model_ensemble([ref])(cand)


def test_test_halves_fits_on_one_half_and_audits_the_other(bench: ModuleType,
                                                          tmp_path: Path) -> None:
    # the candidate is the reference itself: every class is at the reference on both halves,
    # so the fit is feasible at tolerance 0 and the audited mean change is exactly 0
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 40)
    paths = []
    for s in (0, 1):
        logits = rng.normal(size=(y.size, 3)) + 2 * np.eye(3)[y]
        paths.append(write_predictions(tmp_path / f"run{s}.npz", y_true=y, logits=logits,
                                       sample_id=np.arange(y.size), seed=s))
    rows = bench.fit_on_test_halves(paths, paths, tolerance=0.0)
    assert [r.split("|")[1].strip() for r in rows] == [
        "fit on the first test half, tolerance 0", "fit on the second test half, tolerance 0"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2:4] == ["+0.00", "+0.00"] and cells[5] == "none"


def test_cross_fit_rows_are_the_study_frontier_at_each_fold_count(bench: ModuleType,
                                                                  tmp_path: Path) -> None:
    # the candidate is the reference itself: the rule changes nothing, so each fold count
    # audits a mean change of exactly 0 with no class below, and the folds are the study's
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 40)
    runs = []
    for s in range(4):
        run = tmp_path / "runs" / f"r{s}"
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"train": {"seed": s}}))
        for split in ("val", "test"):
            write_predictions(run / f"{split}.npz", y_true=y,
                              logits=rng.normal(size=(y.size, 3)) + 2 * np.eye(3)[y])
        runs.append(run)
    assert [p.seed for p in bench.seeded(runs, "val")] == [0, 1, 2, 3]
    rows = bench.cross_fit_rows(runs, runs, [2, 3], tolerance=0.0, z=0.5)
    assert [r.split("|")[1].strip() for r in rows] == [
        "2 folds (tolerance 0, z = 0.5)", "3 folds (tolerance 0, z = 0.5)"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "+0.00" and cells[3] == "none" and cells[4] == "yes"
