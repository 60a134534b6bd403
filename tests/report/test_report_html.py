"""The HTML report and the terminal summary: self-contained, escaped, tables readable."""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from classgap.analysis.result import StudyResult
from classgap.report import headline, print_summary, write_report

Factory = Callable[..., StudyResult]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory, fake_result: Factory
) -> tuple[StudyResult, Path]:
    # Module scope: building the figures is the slow part (~1 s); every check reads one report.
    result = fake_result(12, with_transfer=True, hostile=True)
    out = tmp_path_factory.mktemp("report")
    return result, write_report(result, out)


def _table(page: str, table_id: str) -> str:
    match = re.search(rf'<table class="sortable" id="{table_id}">.*?</table>', page, re.S)
    assert match, table_id
    return match.group(0)


def test_files_written(report: tuple[StudyResult, Path]) -> None:
    _, path = report
    out = path.parent
    assert path == out / "report.html" and path.is_file()
    names = {"per_class_vs_strength", "delta_at_selected", "confusion_shifts", "class_aware",
             "transfer"}
    assert {p.stem for p in (out / "figures").glob("*.png")} == names
    for png in (out / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def test_tables_readable(report: tuple[StudyResult, Path]) -> None:
    result, path = report
    out = path.parent
    classes = pd.read_csv(out / "classes.csv")
    assert list(classes["class"]) == list(result.classes["class"])
    assert classes["delta"].to_numpy() == pytest.approx(result.classes["delta"].to_numpy())
    parquet = pd.read_parquet(out / "classes.parquet")
    assert list(parquet["class"]) == list(result.classes["class"])
    assert len(pd.read_csv(out / "per_class.csv")) == len(result.per_class)
    assert len(pd.read_csv(out / "validation.csv")) == len(result.strengths)
    assert len(pd.read_csv(out / "transfer_classes.csv")) == len(result.transfer.classes)


def test_parquet_with_mixed_strength_types(fake_result: Factory, tmp_path: Path) -> None:
    result = fake_result(10, ("off", 0.5, 1.0))  # own_best mixes "off" and floats
    write_report(result, tmp_path)
    parquet = pd.read_parquet(tmp_path / "classes.parquet")
    assert set(parquet["own_best"]) <= {"off", "0.5", "1.0"}


def test_self_contained_no_network_references(report: tuple[StudyResult, Path]) -> None:
    page = report[1].read_text(encoding="utf-8")
    refs = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', page, re.I)
    assert refs, "expected the inline images"
    for ref in refs:
        assert ref.startswith("data:image/png;base64,"), ref[:60]
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'(?:src|href)\s*=\s*["\']?//', page, re.I)
    assert not re.search(r"@import|url\(", page)
    assert "default-src 'none'" in html.unescape(page)  # the CSP forbids any fetch


def test_every_figure_inline_as_png(report: tuple[StudyResult, Path]) -> None:
    page = report[1].read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"'
                        r' data-figure="([a-z_]+)">', page)
    assert {name for _, _, name in images} == {
        "per_class_vs_strength", "delta_at_selected", "confusion_shifts", "class_aware",
        "transfer"}
    for payload, alt, _ in images:
        assert base64.b64decode(payload)[:8] == PNG_MAGIC
        assert len(alt) > 20


def test_one_row_per_class_with_data_attributes(report: tuple[StudyResult, Path]) -> None:
    result, path = report
    page = path.read_text(encoding="utf-8")
    table = _table(page, "per-class")
    rows = re.findall(r"<tr [^>]*data-class=\"([^\"]*)\"", table)
    assert len(rows) == len(result.classes)
    assert sorted(html.unescape(r) for r in rows) == sorted(result.classes["class"])
    assert table.count("<tr") == len(result.classes) + 1  # + the header row
    transfer = _table(page, "transfer-classes")
    assert transfer.count("<tr") == len(result.transfer.classes) + 1


def test_hostile_names_escaped(report: tuple[StudyResult, Path]) -> None:
    page = report[1].read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert html.escape(HOSTILE) in page
    assert "&amp;amp; co" in page  # a literal "&amp;" in a name stays literal
    assert "<b>bold" not in page
    # Exactly one script element, ours, and no inline event handlers anywhere.
    assert page.count("<script") == 1
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page, re.I)


def test_headline_notes_and_provenance(report: tuple[StudyResult, Path]) -> None:
    result, path = report
    page = html.unescape(path.read_text(encoding="utf-8"))
    assert headline(result) in page
    assert f"Selecting aug.mixup = {result.selected:g}" in page
    assert "2 classes dropped significantly: <script>alert(1)</script> (" in page
    assert "The selection is within seed noise." in page
    assert 'id="provenance"' in page and "fashion-mnist" in page and "small_cnn" in page
    assert 'id="class-aware-pick"' in page


def test_headline_wording(fake_result: Factory) -> None:
    text = headline(fake_result(10, n_drops=1))
    assert re.match(r"Selecting aug\.mixup = 1 \(reference 0\) (raised|lowered) mean test "
                    r"accuracy by [+-]\d+\.\d\d points \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]; "
                    r"1 class dropped significantly: class 0 \(-3\.00 \[", text)
    assert headline(fake_result(10, n_drops=0)).endswith("no class dropped significantly.")


def test_rewrite_replaces_report(fake_result: Factory, tmp_path: Path) -> None:
    first = write_report(fake_result(10), tmp_path).read_text(encoding="utf-8")
    second = write_report(fake_result(10, n_drops=0), tmp_path).read_text(encoding="utf-8")
    assert first != second and "no class dropped significantly" in second


# --------------------------------------------------------------------------- terminal


def _summary(result: StudyResult, **kwargs: object) -> str:
    buffer = io.StringIO()
    print_summary(result, Console(file=buffer, width=120, color_system=None), **kwargs)
    return buffer.getvalue()


def test_summary_lists_who_pays(fake_result: Factory) -> None:
    result = fake_result(10, n_drops=2, hostile=True, notes=("within seed noise [sic]",))
    text = _summary(result, report_path="/tmp/x/report.html")
    assert "Classes that pay (2 of 10; q < 0.05)" in text
    assert HOSTILE in text and "&amp; co" in text  # printed literally, markup not parsed
    assert "aug.mixup = 1" in text and "reference 0" in text
    assert "within seed noise [sic]" in text
    assert "Report: /tmp/x/report.html" in text
    # Not a paying class: absent from the table.
    assert "class 5" not in text


def test_summary_without_drops(fake_result: Factory) -> None:
    text = _summary(fake_result(10, n_drops=0, notes=()))
    assert "No class dropped significantly" in text and "Notes" not in text


def test_nothing_selected_shows_the_sweep_not_zero_against_zero(fake_result: Factory,
                                                               tmp_path: Path) -> None:
    result = fake_result(selected_index=0, n_drops=0, n_gains=0)
    page = write_report(result, tmp_path).read_text()
    assert 'id="nothing-selected"' in page
    assert 'alt="Change in test accuracy per class' not in page  # no 0-vs-0 delta figure
    assert 'id="per-class"' not in page


def test_provenance_is_a_two_column_grid_that_wraps(report: tuple[StudyResult, Path]) -> None:
    page = report[1].read_text()
    assert "grid-template-columns: max-content minmax(0, 1fr)" in page
    assert "overflow-wrap: anywhere" in page and "float: left" not in page


def test_many_classes_stay_readable(fake_result: Factory, tmp_path: Path) -> None:
    from classgap.report import plots
    from classgap.report.html import HEADLINE_NAMES, SCROLL_ROWS

    result = fake_result(1000, strengths=(0.0, 0.1, 0.3), n_drops=20, n_gains=30)
    text = headline(result)
    assert "20 classes dropped significantly (worst first)" in text
    assert text.count("[") == 1 + HEADLINE_NAMES and "and 15 more" in text
    page = write_report(result, tmp_path / "out").read_text(encoding="utf-8")
    assert page.count('<div class="scroll">') == 1 and page.count("<tr class=") >= 1000
    small = write_report(fake_result(SCROLL_ROWS), tmp_path / "small").read_text("utf-8")
    assert '<div class="scroll">' not in small
    # Figures name at most MAX_NAMED drops in the curves, and never overlap names in the Δ plot.
    curves = plots.per_class_vs_strength(result)
    legend = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
    assert sum("(significant drop)" in t for t in legend) == plots.MAX_NAMED
    assert "10 more significant drops (unnamed)" in legend
    fig = plots.delta_at_selected(result)
    ticks = fig.axes[0].get_yticks()
    assert 0 < len(ticks) <= 3 * plots.MAX_NAMED
    height_rows = 1000 * 7 / (72 * (fig.get_figheight() - 1.8))
    assert (np.diff(np.sort(ticks)) >= height_rows - 1).all()


def test_summary_of_many_drops_lists_the_worst_and_counts_the_rest(fake_result: Factory) -> None:
    from classgap.report.terminal import TERMINAL_DROPS

    result = fake_result(200, n_drops=50, n_gains=5)
    text = _summary(result)
    assert "Classes that pay (50 of 200; q < 0.05)" in text
    assert f"… {50 - TERMINAL_DROPS} more (report.html, classes.csv)" in text
    listed = [name for name in result.drops()["class"] if f"│ {name} " in text]
    assert listed == list(result.drops()["class"][:TERMINAL_DROPS])


@pytest.mark.parametrize("axis, says, not_says", [
    ("aug.flip", "class-conditional augmentation", "diagnostic only"),
    ("optim.label_smoothing", "class-conditional label smoothing", "augmentation"),
    ("optim.weight_decay", "weight decay shrinks the weights that every class shares",
     "augmentation"),
    ("model.dropout", "dropout drops units", "augmentation"),
    ("aug.mixup", "mixes pairs of samples of two classes", "class-conditional"),
])
def test_per_class_vector_names_its_mechanism(fake_result: Factory, tmp_path: Path, axis: str,
                                              says: str, not_says: str) -> None:
    result = fake_result(10)
    result = StudyResult(**{**result.__dict__, "axis": axis})
    page = write_report(result, tmp_path).read_text(encoding="utf-8")
    (summary,) = re.findall(r"<summary>Per-class strength vector \((.*?)\)</summary>", page,
                            flags=re.S)
    assert says in summary and not_says not in summary
