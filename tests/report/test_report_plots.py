"""The study figures: built for 10 and 100 classes, numeric and string strengths, with and
without transfer; checked through their artists (found by ``gid``)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from classgap.analysis.result import StudyResult
from classgap.errors import InputError
from classgap.report import plots

matplotlib.use("Agg")

STRENGTHS = {
    "numeric": (0.0, 1.0, 2.0),
    "string": ("off", "weak", "strong"),
    "rrc-descending": (1.0, 0.6, 0.35, 0.2, 0.08),
    "log-grid": (0, 1e-4, 1e-3, 1e-2),
}

Factory = Callable[..., StudyResult]


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _lines(fig: Figure, prefix: str) -> list:
    return [ln for ln in fig.axes[0].lines if (ln.get_gid() or "").startswith(prefix)]


def _n_points(fig: Figure) -> int:
    ax = fig.axes[0]
    return sum(
        len(c.get_offsets()) for c in ax.collections
        if (c.get_gid() or "").startswith("delta-points")
    )


@pytest.mark.parametrize("n_classes", [10, 100])
@pytest.mark.parametrize("grid", list(STRENGTHS))
@pytest.mark.parametrize("with_transfer", [False, True])
def test_every_figure_builds_with_expected_artists(
    fake_result: Factory, n_classes: int, grid: str, with_transfer: bool
) -> None:
    strengths = STRENGTHS[grid]
    result = fake_result(n_classes, strengths, with_transfer=with_transfer, hostile=True)
    figures = plots.build_figures(result)
    expected = ["per_class_vs_strength", "delta_at_selected", "confusion_shifts", "class_aware"]
    assert list(figures) == expected + (["transfer"] if with_transfer else [])
    assert all(isinstance(f, Figure) for f in figures.values())

    per_class = figures["per_class_vs_strength"]
    class_lines = _lines(per_class, "class:")
    assert len(class_lines) == n_classes
    assert all(len(ln.get_xdata()) == len(strengths) for ln in class_lines)
    assert len(_lines(per_class, "average")) == 1
    assert len(_lines(per_class, "selected")) == 1
    assert len(_lines(per_class, "reference")) == 1
    # The paying classes are drawn thicker than every other class.
    paying = {f"class:{c}" for c in result.classes.query("verdict == 'drop'")["class"]}
    thick = {ln.get_gid() for ln in class_lines if ln.get_linewidth() > 2}
    assert thick == paying

    delta = figures["delta_at_selected"]
    assert _n_points(delta) == n_classes
    (intervals,) = [c for c in delta.axes[0].collections if c.get_gid() == "delta-intervals"]
    assert len(intervals.get_segments()) == n_classes
    assert [ln.get_gid() for ln in delta.axes[0].lines].count("zero") == 1

    bars = [p for p in figures["confusion_shifts"].axes[0].patches
            if p.get_gid() == "confusion-bar"]
    assert len(bars) == min(10, len(result.confusion_shifts))

    aware = figures["class_aware"]
    (val_line,) = _lines(aware, "val-mean")
    assert len(val_line.get_xdata()) == len(strengths)
    assert len(_lines(aware, "pick-usual")) == 1
    assert len(_lines(aware, "pick-class-aware")) == 1

    if with_transfer:
        assert result.transfer is not None
        assert _n_points(figures["transfer"]) == len(result.transfer.classes)

    # Renders to a PNG (labels with '<', '&' and '$'-free text must not break mathtext).
    buffer = io.BytesIO()
    per_class.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_are_not_registered_with_pyplot(fake_result: Factory) -> None:
    plots.build_figures(fake_result(10, with_transfer=True))
    assert plt.get_fignums() == []


def test_many_classes_label_only_the_ones_that_pay(fake_result: Factory) -> None:
    result = fake_result(100, n_drops=3, n_gains=2)
    labels = [t.get_text() for t in plots.delta_at_selected(result).axes[0].get_yticklabels()]
    significant = result.classes.query("verdict != 'none'")["class"]
    assert sorted(labels) == sorted(significant)
    hostile = fake_result(100, hostile=True)
    labels = [t.get_text() for t in plots.delta_at_selected(hostile).axes[0].get_yticklabels()]
    assert "quote\"s 'n <b>bold</b> \\$5" in labels  # '$' escaped: not mathtext
    legend = plots.per_class_vs_strength(result).axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == 3 + 3  # the paying classes, the average, reference and selected


def test_few_classes_label_every_class(fake_result: Factory) -> None:
    result = fake_result(10)
    labels = [t.get_text() for t in plots.delta_at_selected(result).axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(result.classes["class"])
    texts = plots.per_class_vs_strength(result).axes[0].get_legend().get_texts()
    assert len(texts) == 10 + 3


def test_delta_points_are_coloured_by_verdict(fake_result: Factory) -> None:
    fig = plots.delta_at_selected(fake_result(10, n_drops=2, n_gains=1))
    by_gid = {c.get_gid(): c for c in fig.axes[0].collections}
    red = matplotlib.colors.to_rgba(plots.VERDICT_COLORS["drop"])
    assert len(by_gid["delta-points:drop"].get_offsets()) == 2
    assert np.allclose(by_gid["delta-points:drop"].get_facecolor()[0], red)
    assert len(by_gid["delta-points:gain"].get_offsets()) == 1
    assert "mean gain" in fig.axes[0].get_title()


def test_strength_axis_categorical_unless_even_numeric_grid() -> None:
    pos, labels, invert = plots._strength_axis((1.0, 0.6, 0.35, 0.2, 0.08))
    assert invert and np.allclose(pos, [1.0, 0.6, 0.35, 0.2, 0.08])
    assert labels == ["1", "0.6", "0.35", "0.2", "0.08"]
    pos, _, invert = plots._strength_axis(("off", 0.5, 1.0))
    assert not invert and np.allclose(pos, [0, 1, 2])
    pos, labels, _ = plots._strength_axis((0, 1e-4, 1e-3, 1e-2))  # log grid
    assert np.allclose(pos, [0, 1, 2, 3]) and labels[1] == "0.0001"


def test_transfer_without_transfer_study_raises(fake_result: Factory) -> None:
    with pytest.raises(InputError, match="transfer"):
        plots.transfer(fake_result(10))


def test_empty_confusion_shifts_draw_a_message(fake_result: Factory) -> None:
    result = fake_result(10)
    empty = StudyResult(**{**result.__dict__,
                           "confusion_shifts": result.confusion_shifts.iloc[0:0]})
    fig = plots.confusion_shifts(empty)
    assert not fig.axes[0].patches
    assert "no confusion shifts" in fig.axes[0].texts[0].get_text()


def test_confusion_shifts_show_only_pairs_that_moved(fake_result: Factory) -> None:
    result = fake_result(10)
    shifts = result.confusion_shifts.copy()
    still = shifts.index[:3]
    shifts.loc[still, "change"] = 0.0  # rates that did not move: no bar of length 0
    shifts.loc[still, "true"] = [f"still {i}" for i in range(3)]
    fig = plots.confusion_shifts(StudyResult(**{**result.__dict__, "confusion_shifts": shifts}),
                                 top_k=len(shifts))
    bars = [p for p in fig.axes[0].patches if p.get_gid() == "confusion-bar"]
    assert len(bars) == len(shifts) - 3 and all(b.get_width() != 0 for b in bars)
    shown = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert shown and not any(t.startswith("still") for t in shown)
    shifts["change"] = 0.0
    fig = plots.confusion_shifts(StudyResult(**{**result.__dict__, "confusion_shifts": shifts}))
    assert not fig.axes[0].patches
    assert fig.axes[0].texts[0].get_text() == "no confusion rate changed"


@pytest.mark.parametrize("axis, strengths, names", [
    ("aug.mixup", (1.0, 0.0), ("a", "b")),
    ("model.a_very_long_custom_axis_name_of_a_users_trainer", ("rand-m9-n3-mstd0.5-inc1",
     "rand-m5-n2-mstd0.5-inc0"), ("W" * 40, "M" * 40)),
])
def test_confusion_shifts_text_stays_inside_the_figure(
        fake_result: Factory, axis: str, strengths: tuple[object, object],
        names: tuple[str, str]) -> None:
    result = fake_result(10)
    shifts = result.confusion_shifts.head(1).assign(true=names[0], predicted=names[1])
    fig = plots.confusion_shifts(StudyResult(**{
        **result.__dict__, "axis": axis, "selected": strengths[0], "reference": strengths[1],
        "confusion_shifts": shifts}))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    box = fig.bbox
    for text in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
        if text.get_text():
            extent = text.get_window_extent(renderer)
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1 + 0.5, text.get_text()
            assert box.y0 <= extent.y0 and extent.y1 <= box.y1 + 0.5, text.get_text()


def test_class_aware_without_pick(fake_result: Factory) -> None:
    result = fake_result(10)
    no_pick = StudyResult(**{**result.__dict__, "class_aware": {}})
    fig = plots.class_aware(no_pick)
    assert not _lines(fig, "pick-class-aware")
    assert len(_lines(fig, "pick-usual")) == 1


def test_class_weights_names_its_lines_in_the_table_order(fake_result: Factory) -> None:
    """The names at the lines' ends are drawn in one order whatever the process's string
    hashing, so one study's figure is the same bytes every time (they may overlap)."""
    result = fake_result(10)
    names = list(result.classes["class"])
    table = {c: [1.0, 1.0 + 0.01 * i] for i, c in enumerate(reversed(names))}
    aware = {**result.class_aware, "reweight": {"method": "clam", "class_weights": table}}
    fig = plots.class_weights(StudyResult(**{**result.__dict__, "class_aware": aware}))
    assert [t.get_text() for t in fig.axes[0].texts] == [plots._text(c) for c in table]
