"""The fix frontier in ``classgap study`` and ``classgap report``: the post-hoc rule audited
on seeds it was not fit on, ``fix_rule.json`` usable by ``classgap fix apply``, the same
frontier recomputed by ``classgap report``, runs left out by ``--exclude-failed`` left out of
the fixes too. The runs come from a numpy ``--train-cmd`` script (fast, no torch)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from classgap.cli import run
from classgap.pipeline import _write, report_study

# argv: seed, strength, out, the "seed/strength" run that collapses.
# Strength 1 raises every class's margin but lowers class 2's logit by 2: class 2 pays, and
# a rule that gives class 2 back its logit (weight e^2) fixes it.
SCRIPT = '''
import sys
import numpy as np
seed, crop, out, victim = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
collapsed = victim == f"{seed}/{crop:g}"
rng = np.random.default_rng([seed, int(10 * crop)])
y = np.arange(800) % 4
for split in ("val", "test"):
    logits = rng.normal(size=(800, 4))
    logits[np.arange(800), y] += 1.5 + 0.8 * crop
    logits[:, 2] -= 2.0 * crop
    if collapsed:
        logits = np.tile([0.0, 0.0, 0.0, 5.0], (800, 1))
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
with open(f"{out}/history.csv", "w") as f:
    f.write(f"epoch,train_acc\\n1,{0.26 if collapsed else 0.9}\\n")
'''


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, " ".join(captured.out.replace("│", " ").split()), captured.err


def _study(capsys: pytest.CaptureFixture[str], tmp_path: Path, victim: str,
           *extra: str) -> tuple[int, str, str, Path]:
    (tmp_path / "train.py").write_text(SCRIPT)
    cmd = f"{sys.executable} {tmp_path / 'train.py'} {{seed}} {{aug.crop}} {{out}} {victim}"
    out = tmp_path / f"study-{victim.replace('/', '-')}"
    code, text, err = invoke(capsys, "study", "--set", "data.dataset=digits", "--axis",
                             "aug.crop=0,1", "--seeds", "4", "--train-cmd", cmd, "--out", out,
                             "--workers", "1", *extra)
    return code, text, err, out


def test_study_shows_the_frontier_and_report_recomputes_it(capsys, tmp_path: Path) -> None:
    # seed 1 of the reference collapses: --exclude-failed leaves it out of the fixes too
    code, text, err, out = _study(capsys, tmp_path, "1/0", "--exclude-failed")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selected"] == 1.0 and summary["failed_runs"][0]["excluded"] is True
    assert summary["fixes"][0]["kind"] == "none"
    assert summary["fixes"][0]["below_reference"] == ["2"]
    rules = [f for f in summary["fixes"] if f["kind"] == "rule"]
    assert len(rules) == 3 and all(f["seeds"] == [0, 1, 2, 3] for f in rules)
    assert [f["seeds"] for f in rules[0]["folds"]] == [[0, 3], [1], [2]]
    best = summary["best_fix"]
    assert best["kind"] == "rule" and best["target_met"] and best["below_reference"] == []
    assert "Best fix that meets the target: post-hoc rule" in text
    page = (out / "report.html").read_text()
    assert 'id="fix-frontier"' in page and 'id="fig-fix_frontier"' in page
    # the rule for the user, fit on every kept seed's validation runs, applies with classgap fix
    rule = json.loads((out / "fix_rule.json").read_text())
    assert (rule["validation"]["candidate_runs"], rule["validation"]["reference_runs"]) == (4, 3)
    assert max(rule["weights"]) == rule["weights"][2] == 1.0  # class 2 lifted
    tests = sorted(str(p) for p in (out / "runs").glob("*/test.npz"))
    code, _, err = invoke(capsys, "fix", "apply", out / "fix_rule.json", *tests[:2],
                          "--out", tmp_path / "adjusted")
    assert code == 0, err
    assert len(list((tmp_path / "adjusted").iterdir())) == 2

    # kept: the collapsed run is in the fixes' audits and in the rule again
    code, _, err = invoke(capsys, "report", out, "--keep-failed")
    assert code == 0, err
    kept = json.loads((out / "summary.json").read_text())
    assert kept["fixes"] != summary["fixes"]
    assert json.loads((out / "fix_rule.json").read_text())["validation"]["reference_runs"] == 4

    # classgap report recomputes the same frontier and rule from the stored predictions
    (out / "summary.json").unlink()
    (out / "fix_rule.json").unlink()
    code, again, err = invoke(capsys, "report", out, "--exclude-failed")
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text()) == summary
    assert json.loads((out / "fix_rule.json").read_text()) == rule
    assert "Best fix that meets the target: post-hoc rule" in again

    # a re-analysis without a rule (e.g. one that now selects the reference) leaves none stale
    result = report_study(out, exclude_failed=True)
    assert result.fix_rule is not None
    _write(replace(result, fix_rule=None), out)
    assert not (out / "fix_rule.json").exists()


# The same model with a per-class strength: a list of 4 crops, one per true class (the form
# the refits pass), or one strength for all.
PER_CLASS_SCRIPT = '''
import json, sys
import numpy as np
seed, raw, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
crop = np.asarray(json.loads(raw), float) if raw.startswith("[") else np.full(4, float(raw))
rng = np.random.default_rng([seed, int(10 * crop.sum())])
y = np.arange(800) % 4
for split in ("val", "test"):
    logits = rng.normal(size=(800, 4))
    logits[np.arange(800), y] += 1.5 + 0.8 * crop[y]
    logits[:, 2] -= 2.0 * crop[2]
    np.savez(f"{out}/{split}.npz", y_true=y, logits=logits)
'''


def test_group_refit_and_ensemble_are_fixes_the_report_keeps(capsys, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(PER_CLASS_SCRIPT)
    cmd = f"{sys.executable} {tmp_path / 'train.py'} {{seed}} {{aug.crop}} {{out}}"
    out = tmp_path / "study"
    code, text, err = invoke(capsys, "study", "--set", "data.dataset=digits", "--axis",
                             "aug.crop=0,1", "--seeds", "4", "--train-cmd", cmd, "--out", out,
                             "--workers", "1", "--group-refit", "--ensemble")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    kinds = [f["kind"] for f in summary["fixes"]]
    assert kinds[0] == "none" and kinds[-1] == "group_refit" and kinds.count("ensemble") == 1
    ensemble = summary["fixes"][kinds.index("ensemble")]
    assert (ensemble["inference_cost"], ensemble["training_runs"]) == (2, 0)
    grouped = json.loads((out / "group_refit.json").read_text())
    assert summary["fixes"][-1]["training_runs"] == len(grouped["runs"]) == 4
    # class 2 pays on validation; its reference confusions make every class its group, so
    # every class gets its strength 0 (the per-class refit would give the others 1)
    assert [g["class"] for g in grouped["groups"]] == ["2"]
    assert grouped["per_class_strengths"] == [0.0] * 4
    assert "Group-aware refit" in text and "2 (" in text
    study = json.loads((out / "study.json").read_text())["grids"][-1]
    assert study["downstream"]["group_refit"] is True and study["analysis"]["ensemble"] is True
    page = (out / "report.html").read_text()
    assert 'id="group_refit-verdict"' in page and 'id="fig-group_refit"' in page
    # classgap report keeps both, and trains nothing again
    (out / "summary.json").unlink()
    code, _, err = invoke(capsys, "report", out)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text()) == summary
