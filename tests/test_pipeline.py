"""The whole study on digits: plan, train (resumably), analyse, report, re-report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classgap.errors import ConfigError
from classgap.pipeline import (
    StudyError,
    plan_study,
    reference_value,
    report_study,
    run_full_study,
)
from classgap.sweep import Store
from classgap.sweep.presets import PRESETS, get_preset, list_presets

TINY = ("data.dataset=digits", "model.name=mlp", "train.epochs=1", "train.threads=1",
        "train.precision=fp32", "train.progress=false")
CLASS_KEYS = ("class", "acc_reference", "acc_selected", "delta", "delta_low", "delta_high",
              "q_value", "verdict")


def tiny_plan(axis: str = "aug.flip=0,0.5", seeds: int = 2):
    return plan_study(axes=[axis], seeds=seeds, overrides=TINY)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("study")
    run_full_study(tiny_plan(), out, progress=False)
    return out, json.loads((out / "summary.json").read_text())


def test_end_to_end_summary_and_report(study: tuple[Path, dict]) -> None:
    out, summary = study
    assert (out / "report.html").is_file() and (out / "figures").is_dir()
    assert summary["reference"] == 0.0 and summary["selected"] in (0.0, 0.5)
    assert set(summary["mean_gain"]) >= {"delta", "low", "high"}
    assert len(summary["classes"]) == 10
    for row in summary["classes"]:
        assert set(CLASS_KEYS) <= set(row)
        for key in ("acc_reference", "acc_selected"):
            assert 0.0 <= row[key] <= 1.0  # fractions, not percent
        assert -1.0 <= row["delta"] <= 1.0
        assert row["verdict"] in ("drop", "gain", "none")
    with Store(out) as store:
        assert store.counts()["done"] == 4
    rows = summary["by_strength"]  # every strength against the reference
    assert [r["strength"] for r in rows] == [0.0, 0.5]
    assert rows[0]["delta"] is None and rows[0]["n_drop"] == 0
    other = rows[1]
    assert other["delta_low"] <= other["delta"] <= other["delta_high"]
    assert len(other["drop_classes"]) == other["n_drop"]
    assert len(other["gain_classes"]) == other["n_gain"]  # named, not only counted
    by_class = {r["class"]: r for r in summary["classes"]}
    if summary["selected"] == 0.5:  # then the selected row is this comparison itself
        assert other["n_drop"] == sum(r["verdict"] == "drop" for r in by_class.values())
    assert 'id="by-strength"' in (out / "report.html").read_text()


def test_rerun_resumes_and_reproduces(study: tuple[Path, dict]) -> None:
    out, summary = study
    with Store(out) as store:
        before = store.status().set_index("run_id")["finished_at"].to_dict()
    result = run_full_study(tiny_plan(), out, progress=False)
    with Store(out) as store:
        after = store.status().set_index("run_id")["finished_at"].to_dict()
    assert after == before  # nothing trained again
    assert json.loads((out / "summary.json").read_text()) == summary
    assert result.selected == summary["selected"]


def test_report_study_reproduces(study: tuple[Path, dict]) -> None:
    out, summary = study
    (out / "report.html").unlink()
    (out / "summary.json").unlink()
    result = report_study(out)
    assert (out / "report.html").is_file()
    assert json.loads((out / "summary.json").read_text()) == summary
    assert result.axis == "aug.flip"


def test_report_study_needs_a_study(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="not a study directory"):
        report_study(tmp_path)


def test_missing_strength_is_a_clear_error(tmp_path: Path) -> None:
    # a trainer that fails every run at flip=0.5 leaves that strength with no seed
    plan = tiny_plan()
    with Store(tmp_path) as store:
        store.register(plan.grid().runs())
        for spec in plan.grid().runs():
            if spec.point["aug.flip"] == 0.5:
                store.claim(run_ids=[spec.run_id])
                store.fail(spec.run_id, "Traceback ...\nRuntimeError: out of memory")
    with pytest.raises(StudyError, match=r"out of memory.*--retry-failed"):
        run_full_study(plan, tmp_path, progress=False)


def test_reference_is_prepended_and_presets() -> None:
    plan = tiny_plan("aug.rrc=0.5,0.08", seeds=1)
    assert plan.axes[0].values == (1.0, 0.5, 0.08) and plan.references == {"aug.rrc": 1.0}
    assert any("added the reference" in n for n in plan.notes)
    assert reference_value("optim.weight_decay") == 0.0 and reference_value("optim.lr") is None
    wd = plan_study("weight_decay")
    assert wd.references == {"optim.weight_decay": 0.0}
    assert wd.seeds == PRESETS.get("weight_decay").seeds
    default = plan_study()
    preset = PRESETS.get("default")
    assert default.preset == "default" and default.seeds == preset.seeds and preset.refit
    assert f"{default.axes[0].key}={','.join(f'{v:g}' for v in default.axes[0].values)}" \
        == preset.axis
    # The study base recipe: every regularizer off the axis is off, and one thread per run.
    base = default.base
    assert (base.optim.weight_decay, base.optim.nesterov, base.optim.label_smoothing) == \
        (0.0, False, 0.0)
    assert base.model.name == "mlp" and base.train.threads == 1
    assert {k for k, v in base.aug.items() if v} <= {default.axes[0].key.partition(".")[2]}
    n_strengths = len(default.axes[0].values)
    assert len(default.grid().runs()) == n_strengths * preset.seeds
    quick = plan_study(quick=True)
    assert quick.preset == "quick" and quick.seeds == 2 and quick.base.train.epochs < \
        default.base.train.epochs
    assert [r["name"] for r in list_presets()] == PRESETS.list()
    with pytest.raises(ConfigError, match="did you mean 'dropout'"):
        get_preset("dropot")


def test_layers_preset_file_set(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[train]\nepochs = 7\n[optim]\nlr = 0.2\n")
    plan = plan_study("crop", config_file=toml, overrides=["optim.lr=0.3"])
    assert plan.base.train.epochs == 7  # the file beats the preset
    assert plan.base.optim.lr == 0.3  # --set beats the file
    assert plan.base.data.train_subset == 10000  # the preset beats the defaults
    grid_toml = tmp_path / "g.toml"
    grid_toml.write_text('[study]\naxes = {"optim.weight_decay" = [5e-4, 5e-3]}\nseeds = 2\n'
                         '[base]\n"data.dataset" = "digits"\n')
    plan = plan_study(config_file=grid_toml)
    assert plan.axes[0].values == (0.0, 5e-4, 5e-3) and plan.seeds == 2
    assert plan.base.data.dataset == "digits"


def test_two_axes_are_analysed_one_at_a_time(tmp_path: Path) -> None:
    plan = plan_study(axes=["aug.flip=0,0.5", "optim.weight_decay=0,1e-3"], seeds=1,
                      overrides=TINY, mode="one-at-a-time")
    assert plan.base.optim.weight_decay == 0.0  # the other axis sits at its reference
    assert len(plan.grid().runs()) == 3  # the all-off point is shared
    result = run_full_study(plan, tmp_path, progress=False)
    assert result.axis == "aug.flip"
    assert json.loads((tmp_path / "summary.json").read_text())["axis"] == "aug.flip"
    other = tmp_path / "axes" / "optim.weight_decay"
    assert (other / "report.html").is_file()
    assert json.loads((other / "summary.json").read_text())["axis"] == "optim.weight_decay"


def test_refit_trains_the_class_conditional_recipe(tmp_path: Path) -> None:
    result = run_full_study(tiny_plan("aug.crop=0,1", seeds=1), tmp_path, progress=False,
                            refit=True)
    refit = result.class_aware["refit"]
    assert len(refit["per_class_strengths"]) == 10
    assert (tmp_path / "refit.json").is_file() and (tmp_path / "class_strengths.json").is_file()
    config = json.loads((Path(refit["runs"][0]) / "config.json").read_text())
    assert config["aug"]["crop"] == refit["per_class_strengths"]
    assert Path(refit["runs"][0]).parent == tmp_path / "runs"  # a run of the study's store
    assert "vs_selected" in refit and "vs_reference" in refit


def test_refit_of_label_smoothing_is_class_conditional(tmp_path: Path) -> None:
    result = run_full_study(tiny_plan("optim.label_smoothing=0,0.3", seeds=2), tmp_path,
                            progress=False, refit=True)
    refit = result.class_aware["refit"]
    config = json.loads((Path(refit["runs"][0]) / "config.json").read_text())
    assert config["optim"]["label_smoothing"] == refit["per_class_strengths"]
    verdict = refit["verdict"]
    assert set(verdict) >= {"below_reference", "mean_vs_selected", "mean_vs_reference",
                            "target_met"}
    assert isinstance(verdict["target_met"], bool)
    html = (tmp_path / "report.html").read_text()
    assert 'id="refit-verdict"' in html and 'id="refit-classes"' in html


def test_selected_strength_with_reweighting_is_audited_and_reported(tmp_path: Path) -> None:
    result = run_full_study(tiny_plan("optim.label_smoothing=0,0.3", seeds=2), tmp_path,
                            progress=False, reweight="clam")
    fix = result.class_aware["reweight"]
    assert fix["method"] == "clam" and fix["seeds"] == [0, 1]
    assert {"vs_selected", "vs_reference", "verdict", "mean_test"} <= set(fix)
    for run in fix["runs"]:
        config = json.loads((Path(run) / "config.json").read_text())
        assert config["loss"]["reweight"] == "clam"
        assert config["optim"]["label_smoothing"] == result.selected
        assert (Path(run) / "class_weights.csv").is_file()
    weights = np.array(list(fix["class_weights"].values()))  # (K, epochs)
    np.testing.assert_allclose(weights.mean(axis=0), 1.0, rtol=1e-5)
    assert json.loads((tmp_path / "reweight.json").read_text()) == fix
    html = (tmp_path / "report.html").read_text()
    assert 'id="reweight-verdict"' in html and 'data-figure="class_weights"' in html
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["class_aware"]["reweight"]["method"] == "clam"
    with pytest.raises(ConfigError, match=r"'loss\.reweight'"):
        run_full_study(tiny_plan(), tmp_path / "bad", progress=False, reweight="clamp")
    assert not (tmp_path / "bad").exists()
