"""bench/longtail.py on a tiny config: one table row per method, sane numbers, resumable."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from classgap.errors import ConfigError

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "longtail.py"
TINY = ["--set", "data.dataset=digits", "--set", "model.name=mlp", "--set", "data.imbalance=10",
        "--epochs", "2", "--seeds", "2", "--methods", "ce,ldam-drw", "--no-mr2",
        "--workers", "1", "--set", "train.threads=1"]
NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_longtail", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def table_rows(markdown: str) -> dict[str, list[str]]:
    """method → its cells, for the rows of the markdown tables (header and rule skipped)."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_tiny_bench_reports_every_method_and_resumes(bench: ModuleType, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, report = tmp_path / "runs", tmp_path / "report.md"
    text = bench.main([*TINY, "--out", str(out), "--report", str(report)])
    assert report.read_text(encoding="utf-8") == text
    assert text in capsys.readouterr().out

    rows = table_rows(text)
    assert set(rows) == {"ce", "ldam-drw"}
    for method, cells in rows.items():
        assert len(cells) == 7
        accuracy, index_groups, count_groups, worst, hmean, delta, updown = cells
        # accuracy, groups, worst class and harmonic mean are percentages (std and bounds too)
        for cell in (accuracy, index_groups, count_groups, worst.split("(")[0], hmean):
            values = [float(v) for v in NUMBER.findall(cell)]
            assert values and all(0.0 <= v <= 100.0 for v in values), (method, cell)
        mean, _, low, high = (float(v) for v in NUMBER.findall(accuracy))
        assert low <= mean <= high
        assert len(index_groups.split(" / ")) == 3 and len(count_groups.split(" / ")) == 3
        if method == "ce":
            assert delta == updown == "—"
        else:
            d, d_low, d_high = (float(v) for v in NUMBER.findall(delta))
            assert -100.0 <= d_low <= d <= d_high <= 100.0
            up, down = (int(v) for v in updown.split(" / "))
            assert 0 <= up + down <= 10
    assert "published ordering" in text and "cannot be checked" in text  # no ldam-drw-sam

    # the runs exist where documented; a second call reuses them instead of training again
    metrics = sorted(out.glob("fmnist-lt/*/seed*/metrics.json"))
    assert [p.relative_to(out).parts[1:3] for p in metrics] == [
        ("ce", "seed0"), ("ce", "seed1"), ("ldam-drw", "seed0"), ("ldam-drw", "seed1")]
    before = {p: p.stat().st_mtime_ns for p in metrics}
    again = bench.main([*TINY, "--out", str(out)])
    assert {p: p.stat().st_mtime_ns for p in metrics} == before
    assert "4 already done, training 0" in capsys.readouterr().err
    assert table_rows(again) == rows  # same runs, seeded bootstrap: the same table


def test_unknown_method_is_a_config_error_before_training(bench: ModuleType,
                                                          tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown recipe method 'ldam-drw-sma'.*ldam-drw-sam"):
        bench.main([*TINY, "--methods", "ce,ldam-drw-sma", "--out", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()


def test_sam_radius_variants(bench: ModuleType) -> None:
    assert bench.split_method("ldam-drw-sam:rho=0.1") == ("ldam-drw-sam", ["optim.rho=0.1"])
    assert bench.split_method("ce") == ("ce", [])
    with pytest.raises(ConfigError, match="rho=VALUE"):
        bench.split_method("ldam-drw-sam:lr=1")
    assert bench.method_list("ldam-drw-sam:rho=0.1") == ["ce", "ldam-drw-sam:rho=0.1"]
