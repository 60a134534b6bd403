"""The rule file and the file-level fit/apply of ``classgap.fix`` (issue 21)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from classgap.audit import Predictions, read_predictions, write_predictions
from classgap.errors import DataFormatError, InputError
from classgap.fix import (
    apply_rule,
    apply_rule_files,
    fit_rule,
    fit_rule_files,
    load_rule,
    plugin_predict,
    softmax,
)

CLASSES = ("cat", "dog", "ship")


def runs(seed: int, n_runs: int, shift: float) -> list[Predictions]:
    """Logit runs on one validation set; class 2 is pushed down by ``shift``."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 150)
    out = []
    for r in range(n_runs):
        logits = rng.normal(size=(y.size, 3)) + 1.8 * np.eye(3)[y] - np.array([0, 0, shift])
        out.append(Predictions.from_arrays(y, logits=logits, seed=r,
                                           sample_id=np.arange(y.size), classes=CLASSES))
    return out


@pytest.fixture
def fitted(tmp_path: Path) -> tuple[Path, list[Path], list[Path]]:
    ref_paths, cand_paths = [], []
    for i, (ref, cand) in enumerate(zip(runs(0, 2, 0.0), runs(1, 2, 1.0), strict=True)):
        ref_paths.append(tmp_path / f"ref{i}" / "val.npz")
        cand_paths.append(tmp_path / f"cand{i}" / "val.parquet")
        for path, run in ((ref_paths[-1], ref), (cand_paths[-1], cand)):
            path.parent.mkdir()
            write_predictions(path, y_true=run.y_true, logits=run.scores,
                              sample_id=run.sample_id, seed=run.seed, classes=CLASSES)
    return tmp_path, ref_paths, cand_paths


def test_fit_files_records_hashes_and_round_trips(fitted) -> None:
    root, refs, cands = fitted
    rule = fit_rule_files(refs, cands, tolerance=0.5, z=0.5)
    path = rule.save(root / "rule.json")
    data = json.loads(path.read_text())
    assert data["format"] == "classgap-rule/1" and data["classes"] == list(CLASSES)
    assert data["fit_on"]["candidate"][1] == {
        "path": str(cands[1]), "sha256": hashlib.sha256(cands[1].read_bytes()).hexdigest()}
    np.testing.assert_allclose(np.exp(data["offsets"]), data["weights"])
    loaded = load_rule(path)
    np.testing.assert_array_equal(loaded.weights, rule.weights)
    assert loaded.classes == CLASSES and loaded.tolerance == 0.5 and loaded.z == 0.5
    # the figures are the rule's own: recompute the pooled validation accuracy per class
    cand_runs = [read_predictions(p) for p in cands]
    pred = np.concatenate([plugin_predict(softmax(r.scores), rule.weights) for r in cand_runs])
    y = np.concatenate([r.y_true for r in cand_runs])
    after = [100 * np.mean(pred[y == k] == k) for k in range(3)]
    np.testing.assert_allclose(after, data["validation"]["per_class"]["after"], atol=1e-3)
    ref_acc = data["validation"]["per_class"]["reference"]
    assert min(a - r for a, r in zip(after, ref_acc, strict=True)) >= -0.5 - 1e-9


def test_apply_logits_and_probs_agree_and_names_repeat(fitted, tmp_path: Path) -> None:
    _, refs, cands = fitted
    rule = fit_rule_files(refs, cands)
    run = read_predictions(cands[0])
    by_logits = apply_rule(rule, run)
    as_probs = Predictions.from_arrays(run.y_true, probs=softmax(run.scores), classes=CLASSES)
    by_probs = apply_rule(rule, as_probs)
    np.testing.assert_array_equal(by_logits.y_pred, by_probs.y_pred)
    np.testing.assert_allclose(softmax(by_logits.scores), by_probs.scores, atol=1e-12)
    # two files named val.parquet: the folder prefixes the output names
    written = apply_rule_files(rule, cands, tmp_path / "out")
    assert [p.name for p in written] == ["cand0_val.parquet", "cand1_val.parquet"]
    back = read_predictions(written[0])
    np.testing.assert_array_equal(back.y_pred, by_logits.y_pred)
    assert back.classes == CLASSES and back.score_kind == "logits"


def test_in_memory_fit_needs_scores_and_same_classes() -> None:
    cand = runs(1, 1, 1.0)
    labels_only = [Predictions.from_arrays(r.y_true, r.y_pred, classes=CLASSES) for r in cand]
    with pytest.raises(DataFormatError, match="'scores' must be present"):
        fit_rule(runs(0, 1, 0.0), labels_only)
    rule = fit_rule(runs(0, 1, 0.0), cand, tolerance=5.0)
    other = Predictions.from_arrays(cand[0].y_true, logits=cand[0].scores,
                                    classes=("a", "b", "c"))
    with pytest.raises(InputError, match="not the classes of the rule"):
        apply_rule(rule, other)


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "not JSON"),
    ('{"format": "other"}', "'format' must be 'classgap-rule/1'"),
    ('{"format": "classgap-rule/1", "classes": ["a"]}', "not a complete rule file"),
    ('{"format": "classgap-rule/1", "classes": ["a", "b"], "weights": [1, -1], '
     '"objective": "mean", "tolerance_points": 0, "noise_margin_z": 0, "validation": {}}',
     "'weights' must hold 2 finite positive numbers"),
])
def test_load_rule_refuses_what_is_not_a_rule(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rule.json"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        load_rule(path)
    with pytest.raises(DataFormatError, match="does not exist"):
        load_rule(tmp_path / "missing.json")
