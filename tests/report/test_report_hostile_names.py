"""Class names are text in every figure and in the HTML report (issue 20, item 9).

Figures are checked through matplotlib's objects (legend, tick, title and annotation texts and
their drawn extents), not pixels; the report through an HTML parser.
"""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from classgap._format import FIGURE_CHARS, figure_text, literal
from classgap.analysis.result import StudyResult
from classgap.diagnostics.perclass import HessianResult
from classgap.diagnostics.plot import per_class_hessian_figure
from classgap.report import html as report_html
from classgap.report import plots, print_summary

from .conftest import make_fake_result

NAMES = [
    "[background]", "b [x]", "[/]", "c[/b]", "_background", "$x$", "costs $5", "a\nb",
    "<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>", "L" * 40 + "R" * 40,
]


def _outcome(result: StudyResult, method: str | None, weights: bool) -> dict[str, Any]:
    """A class-aware fix as the analysis records it, over the result's (hostile) classes."""
    rows = [{"class": c, "delta": -0.01 * i, "delta_low": -0.01 * i - 0.02,
             "delta_high": -0.01 * i + 0.02, "verdict": "drop" if i == 1 else "none",
             "acc_candidate": 0.8} for i, c in enumerate(result.classes["class"])]
    outcome: dict[str, Any] = {
        "seeds": [0, 1], "vs_reference": {"classes": rows},
        "verdict": {"mean_vs_selected": {"delta": -0.1, "low": -0.3, "high": 0.1},
                    "mean_vs_reference": {"delta": 0.5, "low": 0.2, "high": 0.8},
                    "below_reference": [{"class": NAMES[1], "delta": -1.0}],
                    "target_met": False}}
    if method:
        outcome["method"] = method
    if weights:
        outcome["class_weights"] = {c: [1.0, 1.0 + 0.1 * i, 1.0 + 0.2 * i]
                                    for i, c in enumerate(result.classes["class"])}
    return outcome


@pytest.fixture(scope="module")
def hostile() -> StudyResult:
    result = make_fake_result(names=NAMES, n_drops=3, n_gains=1, with_transfer=True,
                              notes=(f"{NAMES[7]} and {NAMES[9]} in a note",))
    aware = {**(result.class_aware or {}),
             "refit": _outcome(result, None, False),
             "reweight": _outcome(result, "clam", True)}
    return replace(result, class_aware=aware)


def _texts(fig: Figure) -> list[Text]:
    """Every piece of text of the figure's axes: titles, axis labels, tick labels,
    annotations and legend entries."""
    out: list[Text] = []
    for ax in fig.axes:
        out += [ax.title, ax._left_title, ax._right_title]  # no public getter for these two
        out += [ax.xaxis.label, ax.yaxis.label]
        # Tick labels that are drawn: matplotlib keeps ticks beyond the view limits, unshown.
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        out += [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
        out += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        out += list(ax.texts)
    return [t for t in out if t.get_text()] + [t for legend in _legends(fig)
                                                for t in legend.get_texts()]


def _legends(fig: Figure) -> list[Any]:
    return [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]


def _legend(fig: Figure) -> list[str]:
    return [t.get_text() for legend in _legends(fig) for t in legend.get_texts()]


def test_every_figure_draws_names_as_literal_readable_text(hostile: StudyResult) -> None:
    figures = plots.build_figures(hostile)
    assert set(figures) >= {"per_class_vs_strength", "delta_at_selected", "confusion_shifts",
                            "refit", "reweight", "class_weights", "transfer"}
    for name, fig in figures.items():
        fig.canvas.draw()  # a lone "$" (costs $5) would fail here as bad mathtext
        box = fig.bbox
        for text in _texts(fig):
            # No mathtext: "$x$" is drawn as the three characters.
            assert not text._preprocess_math(text.get_text())[1], (name, text)
            extent = text.get_window_extent()
            # Readable: every label lies inside the figure (an 80-character name included).
            assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, (name, text)
        for text in _texts(fig):
            if text not in (ax.title for ax in fig.axes):
                assert "\n" not in text.get_text(), (name, text)  # a name never breaks a line
        for ax in fig.axes:  # and the plot keeps most of the figure
            assert ax.get_window_extent().width >= 0.4 * box.width, name


def test_legends_name_every_class_even_underscored(hostile: StudyResult) -> None:
    fig = plots.per_class_vs_strength(hostile)
    legend = _legend(fig)
    drops = set(hostile.classes.loc[hostile.classes["verdict"] == "drop", "class"])
    expected = [figure_text(c) + (" (significant drop)" if c in drops else "") for c in NAMES]
    assert legend[:len(NAMES)] == expected
    assert "\u200b_background" in legend  # matplotlib would hide "_background"
    assert all(len(t.removesuffix(" (significant drop)")) <= FIGURE_CHARS for t in legend)
    assert any(t.startswith("LLL") and "…" in t and t.endswith("RRR") for t in legend)
    weights = _legend(plots.class_weights(hostile))
    assert figure_text(NAMES[0]) + " (pays at the selected strength)" in weights


def test_tick_labels_are_the_shortened_literal_names(hostile: StudyResult) -> None:
    fig = plots.delta_at_selected(hostile)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    order = hostile.classes.sort_values("delta")["class"]
    assert ticks == [figure_text(c) for c in order]
    assert "a\\nb" in ticks and "\\$x\\$" in ticks and "costs \\$5" in ticks
    refit = [t.get_text() for t in plots.refit(hostile).axes[0].get_yticklabels()]
    assert sorted(refit) == sorted(figure_text(c) for c in NAMES)


def test_hessian_figure_names() -> None:
    k = len(NAMES)
    rng = np.random.default_rng(0)
    result = HessianResult(
        classes=np.arange(k), names=tuple(NAMES), n=np.full(k, 10), loss=rng.random(k),
        top_eigenvalues=rng.random((k, 1)) + 1, bottom_eigenvalue=-rng.random(k),
        trace=rng.random(k), trace_se=rng.random(k) / 10, iterations=np.full(k, 5),
        converged=np.ones(k, bool), grid=np.linspace(-1, 2, 50),
        densities=rng.random((k, 50)) + 0.1, n_params=100)
    fig = per_class_hessian_figure(result)
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == [figure_text(n) for n in NAMES]
    assert _legend(fig)[2:] == [figure_text(n) for n in NAMES]  # after λ_max and λ_min


class _Page(HTMLParser):
    """Start tags, the text of each table's first column and ``data-class`` values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.first_cells: dict[str, list[str]] = {}
        self.data_class: list[str] = []
        self.scripts: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._column = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id") or ""
            self.first_cells.setdefault(self._table, [])
        elif tag == "tr":
            self._column = 0
            if "data-class" in a:
                self.data_class.append(a["data-class"] or "")
        elif tag == "td":
            self._column += 1
            self._cell = [] if self._column == 1 else None
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.first_cells[self._table].append("".join(self._cell))
            self._cell = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_script:
            self.scripts[-1] += data


def test_report_escapes_names_and_runs_only_its_own_script(hostile: StudyResult,
                                                           tmp_path: Path) -> None:
    path = report_html.write_report(hostile, tmp_path)
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    # One script, ours; no element carries an event handler; every image is an inline figure.
    assert page.scripts == [report_html._SCRIPT]
    assert not [(t, k) for t, a in page.tags for k in a if k.startswith("on")]
    assert all((a.get("src") or "").startswith("data:image/png;base64,")
               for t, a in page.tags if t == "img")
    shown = sorted(literal(n) for n in NAMES)
    for table in ("per-class", "refit-classes", "reweight-classes", "per-class-strengths"):
        assert sorted(page.first_cells[table]) == shown, table
    assert sorted(page.data_class) == sorted(NAMES + list(hostile.transfer.classes["class"]))
    text = path.read_text(encoding="utf-8")
    assert "a\\nb" in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    # The note: one line (its newline as \n), escaped.
    assert "<li>a\\nb and &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; in a note</li>" \
        in text


def test_terminal_summary_prints_names_as_they_are(hostile: StudyResult) -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    print_summary(hostile, console)
    out = console.export_text()
    for name in hostile.drops()["class"]:
        assert literal(name) in out, name
    assert "b [x]" in out and "\x1b" not in out
