"""bench/train_speed.py's side-by-side mode: the round-robin driver, its ratios and targets,
the table, and real child processes on a tiny subset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "train_speed.py"
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_train_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _report(kind: str, wall: float, path: str = "fp32", source: str = "config") -> dict[str, Any]:
    return {"kind": kind, "wall_s": wall, "total_s": wall - 0.5, "train_s": wall / 2,
            "imports_s": 1.0, "other_s": 1.0, "test_acc": 0.8, "path": path,
            "path_source": source}


def _rounds(walls: list[dict[str, float]]) -> list[dict[str, dict[str, Any]]]:
    return [{kind: _report(kind, w) for kind, w in r.items()} for r in walls]


# One model's rounds: classgap 2x faster than plain in fp32 in round 1, 1.5x in round 2,
# 1.6x in round 3 (median 1.6); in bf16 only 1.1x, but within 4% of the floor.
WALLS = [
    {"classgap-auto": 10.0, "classgap-fp32": 10.0, "classgap-bf16": 20.0, "plain-fp32": 20.0,
     "plain-bf16": 22.0, "floor-fp32": 9.0, "floor-bf16": 19.2},
    {"classgap-auto": 12.0, "classgap-fp32": 10.0, "classgap-bf16": 20.0, "plain-fp32": 15.0,
     "plain-bf16": 22.0, "floor-fp32": 9.0, "floor-bf16": 19.2},
    {"classgap-auto": 10.3, "classgap-fp32": 10.0, "classgap-bf16": 20.0, "plain-fp32": 16.0,
     "plain-bf16": 22.0, "floor-fp32": 9.0, "floor-bf16": 19.2},
]


def test_ratios_are_per_round_and_auto_is_set_against_the_faster_forced_path(
        bench: ModuleType) -> None:
    ratios = bench.round_ratios(_rounds(WALLS), ["fp32", "bf16"])
    assert ratios["plain-fp32 / classgap-fp32"] == pytest.approx([2.0, 1.5, 1.6])
    assert ratios["classgap-bf16 / floor-bf16"] == pytest.approx([20 / 19.2] * 3)
    assert ratios["classgap-auto / faster forced"] == pytest.approx([1.0, 1.2, 1.03])


def test_targets_take_the_median_and_the_floor_clause(bench: ModuleType) -> None:
    ratios = bench.round_ratios(_rounds(WALLS), ["fp32", "bf16"])
    by_what = {v.what: v for v in bench.verdicts("cnn_small", ratios, ["fp32", "bf16"])}
    assert by_what["classgap vs plain, fp32"].holds is True  # 1.6x >= 1.5x
    assert by_what["classgap vs plain, fp32"].measured.startswith("1.60x plain")
    assert by_what["classgap vs plain, bf16"].holds is True  # 1.1x, but 1.04x the floor
    assert by_what["auto vs the faster forced path"].holds is True  # median 1.03 <= 1.05
    slower = [dict(r, **{"floor-bf16": 18.0}) for r in WALLS]  # 1.11x the floor now
    ratios = bench.round_ratios(_rounds(slower), ["fp32", "bf16"])
    assert {v.what: v.holds for v in bench.verdicts("mlp", ratios, ["fp32", "bf16"])}[
        "classgap vs plain, bf16"] is False
    # cnn: never slower than plain is enough (1.1x); a model without a target says so
    assert all(v.holds for v in bench.verdicts("cnn", ratios, ["fp32", "bf16"]))
    assert [v.holds for v in bench.verdicts("resnet20", ratios, ["fp32", "bf16"])][:2] == \
        [None, None]


def test_the_table_names_every_kind_ratio_and_verdict(bench: ModuleType) -> None:
    rounds = _rounds(WALLS)
    rounds[1]["classgap-auto"]["path_source"] = "measured"  # the warm-up missed its key
    table = bench.markdown("CPU: **Test CPU**", {"mlp": rounds}, ["fp32", "bf16"])
    lines = table.splitlines()
    assert lines[0] == "CPU: **Test CPU**"
    plain = next(line for line in lines if line.startswith("| mlp | plain-fp32 |"))
    assert "| 16.00 [15.00, 20.00] |" in plain and "| 80.00 |" in plain
    auto = next(line for line in lines if line.startswith("| mlp | classgap-auto |"))
    assert "measured inside a timed run!" in auto
    assert "| mlp | plain-bf16 / classgap-bf16 | 1.10x | [1.10, 1.10] |" in lines
    targets = [line for line in lines if line.startswith("| mlp | classgap vs plain")]
    assert [t.rsplit("|", 2)[1].strip() for t in targets] == ["yes", "yes"]
    assert lines[-1] == ("| mlp | auto vs the faster forced path | 1.03x its time | <= 1.05x "
                         "| yes |")


def test_the_driver_warms_up_then_runs_kinds_in_shuffled_rounds_with_classgaps_layout(
        bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int | None, bool]] = []

    def fake_child(kind: str, model: str, *, train_subset: int | None = None,
                   channels_last: bool = False, **_: Any) -> dict[str, Any]:
        calls.append((kind, train_subset, channels_last))
        return _report(kind, 1.0, path="bf16+cl" if kind == "classgap-bf16" else "fp32")

    monkeypatch.setattr(bench, "child", fake_child)
    rounds = bench.measure_model("cnn", ["fp32", "bf16"], repeats=2, threads=1, env={},
                                 train_subset=500, workers=0, log=lambda line: None)
    assert len(rounds) == 2 and list(rounds[0]) == bench.kinds_of(["fp32", "bf16"])
    assert calls[:3] == [("classgap-auto", bench.WARMUP_SUBSET, False),
                         ("classgap-fp32", bench.WARMUP_SUBSET, False),
                         ("classgap-bf16", bench.WARMUP_SUBSET, False)]
    timed = calls[3:]
    kinds = bench.kinds_of(["fp32", "bf16"])
    first, second = [k for k, _, _ in timed[:len(kinds)]], [k for k, _, _ in timed[len(kinds):]]
    assert sorted(first) == sorted(second) == sorted(kinds)  # every kind once a round ...
    assert first != second  # ... each round in its own order
    assert all(n == 500 for _, n, _ in timed)
    # bf16 plain and floor run channels-last because classgap-bf16 chose it; fp32 do not
    assert {k for k, _, cl in timed if cl} == {"plain-bf16", "floor-bf16"}


def test_bad_options_fail_in_one_line_naming_the_value(
        bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--side-by-side", "--models", "mlp,nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'--models'" in err and "'mlp,nope'" in err
    assert bench.main(["--side-by-side", "--train-subset", "10"]) == 1
    assert "'--train-subset' must be >= the batch size 128; got 10" in capsys.readouterr().err
    assert bench.main(["--side-by-side", "--models", "mlp", "--precisions", "fp16"]) == 1
    assert "'--precisions'" in capsys.readouterr().err


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed")
@pytest.mark.parametrize(("kind", "source"), [("classgap-fp32", "config"),
                                              ("plain-bf16", "as classgap's")])
def test_a_real_child_reports_its_parts(bench: ModuleType, tmp_path: Path, kind: str,
                                        source: str) -> None:
    env = bench.child_env(1, str(tmp_path))
    report = bench.child(kind, "mlp", threads=1, env=env, train_subset=256)
    assert report["kind"] == kind and report["path_source"] == source
    assert report["path"] == kind.split("-")[1]
    parts = report["imports_s"] + report["train_s"] + report["other_s"]
    assert 0 < report["train_s"] and parts <= report["total_s"] + 0.01
    assert report["total_s"] < report["wall_s"]
    assert 0.0 <= report["test_acc"] <= 1.0


def test_a_failing_child_is_one_error_with_its_output(bench: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(bench.BenchError, match=r"classgap-fp32 \(nope\) failed with exit code"):
        bench.child("classgap-fp32", "nope", threads=1, env=bench.child_env(1, str(tmp_path)))


def test_kinds_runs_only_those_and_judges_on_the_ratios_that_ran(
        bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "child", lambda kind, model, **_: _report(kind, 1.0))
    only = ["floor-bf16", "classgap-bf16"]
    rounds = bench.measure_model("cnn_small", ["fp32", "bf16"], repeats=3, threads=1, env={},
                                 train_subset=None, workers=0, only=only,
                                 log=lambda line: None)
    assert [list(r) for r in rounds] == [["classgap-bf16", "floor-bf16"]] * 3
    pair = [{k: r[k] for k in only} for r in WALLS]  # 20 / 19.2: 1.04x the floor
    ratios = bench.round_ratios(_rounds(pair), ["fp32", "bf16"])
    assert list(ratios) == ["classgap-bf16 / floor-bf16"]
    [verdict] = bench.verdicts("cnn_small", ratios, ["fp32", "bf16"])
    assert (verdict.what, verdict.measured, verdict.holds) == (
        "classgap vs plain, bf16", "1.04x the floor", True)
    slow = [dict(r, **{"floor-bf16": 18.0}) for r in pair]
    [verdict] = bench.verdicts("cnn_small", bench.round_ratios(_rounds(slow), ["bf16"]),
                               ["bf16"])
    assert verdict.holds is False
    table = bench.markdown("CPU", {"cnn_small": _rounds(pair)}, ["fp32", "bf16"])
    assert "| cnn_small | classgap-bf16 | fp32 |" in table and "plain-fp32" not in table


def test_kinds_must_be_kinds_the_run_has(bench: ModuleType,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--side-by-side", "--models", "mlp", "--precisions", "fp32",
                       "--kinds", "classgap-bf16"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'--kinds'" in err and "'classgap-bf16'" in err
