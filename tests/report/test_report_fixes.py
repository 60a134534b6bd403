"""The fix frontier in the report: one figure (target region, a point per fix), one table, and
the best fix named in the terminal and the HTML, or plainly none."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from classgap.analysis.result import StudyResult
from classgap.report import plots, print_summary, write_report

Factory = Callable[..., StudyResult]


def row(name: str, kind: str, mean_ref: float, mean_sel: float, worst: float,
        below: list[str], met: bool, **extra: Any) -> dict[str, Any]:
    """A frontier row as :func:`classgap.analysis.fixes.frontier_row` writes it (points)."""
    return {"name": name, "kind": kind, "training_runs": extra.pop("training_runs", 0),
            "inference_cost": 1, "tuned_on": extra.pop("tuned_on", "cross-fit over seeds: 2 "
                                                       "folds"),
            "mean_vs_reference": {"delta": mean_ref, "low": mean_ref - 0.3,
                                  "high": mean_ref + 0.3, "p_value": 0.01},
            "mean_vs_selected": {"delta": mean_sel, "low": mean_sel - 0.1,
                                 "high": mean_sel + 0.1, "p_value": 0.5},
            "worst_class": {"class": "class 0", "delta": worst, "low": worst - 1,
                            "high": worst + 1, "q_value": 0.3},
            "below_reference": below, "target": {}, "target_met": met, "seeds": [0, 1],
            "error": None, **extra}


FIXES = (row("selected strength (no fix)", "none", 0.7, 0.0, -1.8, ["class 0"], False),
         row("post-hoc rule (tolerance 0, z = 0.5)", "rule", 0.6, -0.06, -0.3, [], True,
             tolerance=0.0, z=0.5),
         row("per-class refit", "refit", 0.02, -0.65, -3.3, ["class 1"], False,
             training_runs=12, tuned_on="validation"))


def _text(result: StudyResult) -> str:
    console = Console(record=True, width=250)
    print_summary(result, console)
    return " ".join(console.export_text().replace("│", " ").split())


def test_terminal_and_report_name_the_best_fix(fake_result: Factory, tmp_path: Path) -> None:
    result = replace(fake_result(), fixes=FIXES)
    assert result.best_fix()["name"] == "post-hoc rule (tolerance 0, z = 0.5)"
    text = _text(result)
    assert "Best fix that meets the target: post-hoc rule (tolerance 0, z = 0.5)" in text
    assert "+12 runs, 1×" in text and "not met" in text
    # no fix_rule.json in this result: the sentence says how to fit the rule instead
    assert "classgap fix fit --tolerance 0 --z 0.5" in text
    page = write_report(result, tmp_path).read_text()
    best = re.search(r'<p id="best-fix"[^>]*>(.*?)</p>', page)
    assert best and "Best fix that meets the target: post-hoc rule" in best.group(1)
    table = re.search(r'<table id="fix-frontier">(.*?)</table>', page, re.S)
    assert table and table.group(1).count("<tr") == 1 + len(FIXES)
    assert '<tr class="best"><td>post-hoc rule (tolerance 0, z = 0.5)</td>' in table.group(1)
    assert "seeds it was not tuned on" in page
    # one self-contained page: the frontier figure is inline, nothing is fetched
    img = re.search(r'<figure id="fig-fix_frontier"><img src="data:image/png;base64,([^"]+)"',
                    page)
    assert img and base64.b64decode(img.group(1))[:4] == b"\x89PNG"
    assert (tmp_path / "figures" / "fix_frontier.png").is_file()


def test_none_meets_the_target_is_said_plainly(fake_result: Factory, tmp_path: Path) -> None:
    fixes = tuple({**f, "target_met": False} for f in FIXES)
    result = replace(fake_result(), fixes=fixes)
    assert result.best_fix() is None
    assert "No fix meets the target (no class significantly below the reference" in \
        _text(result)
    page = write_report(result, tmp_path).read_text()
    assert re.search(r'<p id="best-fix"[^>]*>No fix meets the target', page)
    assert 'class="best"' not in page


def test_frontier_figure_marks_every_fix_and_the_target(fake_result: Factory) -> None:
    result = replace(fake_result(), fixes=FIXES)
    fig = plots.fix_frontier(result)
    ax = fig.axes[0]
    gids = {a.get_gid() for a in ax.collections}
    assert {f"fix:{f['name']}" for f in FIXES} | {"fix-target"} <= gids
    point = next(a for a in ax.collections if a.get_gid() == "fix:per-class refit")
    assert tuple(point.get_offsets()[0]) == (0.02, -3.3)
    target = next(a for a in ax.collections if a.get_gid() == "fix-target")
    x0, y0 = target.get_paths()[0].vertices.min(axis=0)
    assert (x0, y0) == (0.7 - 0.3, -0.5)  # the selected mean - 0.3, the worst class -0.5
    labels = ax.get_legend_handles_labels()[1]
    assert any("train +12 runs, 1× inference" in t for t in labels)
    assert "fix_frontier" in plots.build_figures(result)
    assert "fix_frontier" not in plots.build_figures(fake_result())  # no fixes: no figure


def test_a_hostile_worst_class_is_text(fake_result: Factory, tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    fixes = tuple({**f, "worst_class": {**f["worst_class"], "class": hostile},
                   "below_reference": [hostile] if f["below_reference"] else []}
                  for f in FIXES)
    result = replace(fake_result(), fixes=fixes)
    page = write_report(result, tmp_path).read_text()
    table = re.search(r'<table id="fix-frontier">(.*?)</table>', page, re.S).group(1)
    assert hostile not in table and "&lt;script&gt;alert(1)&lt;/script&gt;" in table
    assert hostile in _text(result)  # the terminal prints the name literally
