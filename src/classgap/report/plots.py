"""Figures of a regularization study: a :class:`StudyResult` in, a matplotlib ``Figure`` out.

Every function builds a fresh :class:`matplotlib.figure.Figure` with the object-oriented API and
the Agg canvas: nothing is registered with ``pyplot`` and no ``rcParams`` are touched, so
figures can be built from threads or a web server and never leak between calls. Accuracies in
a :class:`StudyResult` are fractions; the figures show percent and percentage points.

Artists that tests and callers may want to find carry a ``gid`` (``"class:<name>"``,
``"average"``, ``"selected"``, ``"reference"``, ``"delta-points:<verdict>"``, ...).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from classgap._format import figure_text, points
from classgap.analysis.result import StudyResult
from classgap.errors import InputError

__all__ = [
    "FIGURES",
    "build_figures",
    "class_aware",
    "class_weights",
    "confusion_shifts",
    "delta_at_selected",
    "fix_frontier",
    "per_class_vs_strength",
    "transfer",
]

VERDICT_COLORS = {"drop": "#d62728", "gain": "#2ca02c", "none": "#8c8c8c"}
AVERAGE_COLOR = "black"
SELECTED_COLOR = "#1f77b4"
REFERENCE_COLOR = "#555555"
CLASS_AWARE_COLOR = "#9467bd"
# Above this many classes a legend entry or tick label per class is unreadable: only the
# classes that pay (or gain) are labelled.
MANY_CLASSES = 20
# At most this many classes are named in a figure of many classes (the worst drops first):
# 200 red names over 1,000 lines are as unreadable as none.
MAX_NAMED = 10
# A confusion pair's label holds two class names: each is cut to this many characters.
PAIR_CHARS = 20
TITLE_CHARS = 70  # a title line that fits the 8.5-inch figures at 12 points


# --------------------------------------------------------------------------- helpers


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)  # attach a canvas so savefig/draw work without pyplot
    return fig


def _key(value: Any) -> Any:
    """Normalise a strength so ``1``, ``1.0`` and ``np.float64(1.0)`` compare equal."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    return str(value)


def _fmt_strength(value: Any) -> str:
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{float(value):g}"
    return _text(value)


def _text(value: Any, width: int | None = None) -> str:
    """Data (a class name, a string strength) as figure text: one line, shortened, no mathtext,
    never hidden from a legend (:func:`classgap._format.figure_text`)."""
    return figure_text(value) if width is None else figure_text(value, width)


def _strength_axis(strengths: Sequence[Any]) -> tuple[np.ndarray, list[str], bool]:
    """x positions for the strengths in sweep order.

    Returns ``(positions, labels, invert)``. Numeric, strictly monotonic strengths on a roughly
    even grid sit at their values (inverted when the sweep runs downwards, e.g. rrc 1.0 → 0.08,
    so sweep order still reads left to right); anything else (strings, mixed types, log grids
    such as weight decay ``0, 1e-4, 1e-3``) is placed categorically at 0, 1, 2, ...
    """
    labels = [_fmt_strength(s) for s in strengths]
    n = len(strengths)
    numeric = n > 1 and all(isinstance(s, Real) and not isinstance(s, bool) for s in strengths)
    if numeric:
        values = np.asarray([float(s) for s in strengths])
        steps = np.diff(values)
        monotonic = bool(np.all(steps > 0) or np.all(steps < 0))
        if monotonic and np.all(np.isfinite(values)):
            gaps = np.abs(steps)
            # A log grid squeezes its small values into one pixel: categorical reads better.
            if gaps.max() / gaps.min() <= 10:
                return values, labels, bool(steps[0] < 0)
    return np.arange(n, dtype=float), labels, False


def _position_of(
    strengths: Sequence[Any], positions: np.ndarray
) -> Callable[[Any], float]:
    lookup = {_key(s): float(p) for s, p in zip(strengths, positions, strict=True)}

    def position(value: Any) -> float:
        return lookup.get(_key(value), math.nan)

    return position


def _dropping(result: StudyResult) -> list[str]:
    """Classes with a significant drop, worst first."""
    classes = result.classes
    if classes.empty or "verdict" not in classes:
        return []
    drops = classes[classes["verdict"] == "drop"].sort_values("delta")
    return [str(c) for c in drops["class"]]


def _stars(q: float) -> str:
    if not np.isfinite(q):
        return ""
    return "***" if q < 0.001 else "**" if q < 0.01 else "*" if q < 0.05 else ""




def _require_columns(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"'{name}' must have columns {list(columns)}; missing {missing} "
            f"(got {list(frame.columns)})"
        )


# --------------------------------------------------------------------------- figures


def per_class_vs_strength(result: StudyResult, *, max_labels: int = MANY_CLASSES) -> Figure:
    """Per-class test accuracy versus strength, one thin line per class, the average bold.

    Parameters
    ----------
    result : StudyResult
        Uses ``per_class`` (long format), ``validation`` (for the mean test accuracy),
        ``classes`` (to highlight significant drops), ``selected`` and ``reference``.
    max_labels : int, default 20
        Up to this many classes every class gets a colour and a legend entry; above it the
        classes that do not drop significantly are thin grey unlabelled lines, and only the
        :data:`MAX_NAMED` worst significant drops are named (the others are thin red lines).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; lines with ``gid`` ``"class:<name>"`` (one per class), ``"average"``,
        ``"selected"`` and ``"reference"``.
    """
    per_class = result.per_class
    _require_columns(per_class, "per_class", ["strength", "class", "acc_mean"])
    strengths = list(result.strengths)
    positions, labels, invert = _strength_axis(strengths)
    position = _position_of(strengths, positions)
    order = {_key(s): i for i, s in enumerate(strengths)}

    class_names = list(dict.fromkeys(per_class["class"]))
    many = len(class_names) > max_labels
    dropping = _dropping(result)
    highlighted = set(dropping)
    # With many classes only the MAX_NAMED worst drops get a colour, a name and a legend entry;
    # the other drops are thin red lines under one legend entry.
    named = set(dropping[:MAX_NAMED]) if many else highlighted
    # One pass over the long table: x position and sweep rank of every row, then one sort.
    ranked = per_class.assign(
        _rank=per_class["strength"].map(lambda s: order.get(_key(s), math.inf)),
        _x=per_class["strength"].map(position).astype(float),
    ).sort_values("_rank", kind="stable")
    curves = {name: (rows["_x"].to_numpy(dtype=float),
                     100 * rows["acc_mean"].to_numpy(dtype=float))
              for name, rows in ranked.groupby("class", sort=False)}

    fig = _new_figure(9.5 if not many else 10.0, 5.5)
    ax = fig.add_subplot()
    palette = _palette(len(class_names) if not many else max(len(named), 1))
    colour_index = 0
    unnamed_drop = False
    for name in class_names:
        x, y = curves[name]
        label_text = _text(name)
        if name in highlighted:
            label_text += " (significant drop)"
        if many and name not in highlighted:
            style: dict[str, Any] = {"color": "#b0b0b0", "lw": 0.6, "alpha": 0.5, "zorder": 1}
            label_text = "_nolegend_"
        elif many and name not in named:
            style = {"color": VERDICT_COLORS["drop"], "lw": 0.9, "alpha": 0.7, "zorder": 2}
            label_text = "_nolegend_" if unnamed_drop else (
                f"{len(dropping) - len(named)} more significant drops (unnamed)")
            unnamed_drop = True
        else:
            colour = palette[colour_index % len(palette)]
            colour_index += 1
            style = {"color": colour, "lw": 1.0, "alpha": 0.8, "zorder": 2}
            if name in highlighted:
                style.update(lw=2.4, alpha=1.0, zorder=3, marker="o", ms=4)
        (line,) = ax.plot(x, y, label=label_text, **style)
        line.set_gid(f"class:{name}")
        if many and name in named and len(x):
            # With many classes a legend entry is far from its line: name the line at its end.
            ax.annotate(
                _text(name), (x[-1], y[-1]), xytext=(4, 0), textcoords="offset points",
                fontsize=7, color=style["color"], va="center",
            )

    average = _average_curve(result, strengths, position)
    (avg_line,) = ax.plot(
        average[0], average[1], color=AVERAGE_COLOR, lw=3.2, zorder=4, marker="s", ms=5,
        label="mean test accuracy",
    )
    avg_line.set_gid("average")

    _mark_strength(ax, position(result.reference), "reference", REFERENCE_COLOR, ":",
                   f"reference ({_fmt_strength(result.reference)})")
    _mark_strength(ax, position(result.selected), "selected", SELECTED_COLOR, "--",
                   f"selected on validation ({_fmt_strength(result.selected)})")

    ax.set_xticks(positions, labels)
    if invert:
        ax.invert_xaxis()
    ax.set_xlabel(f"{_text(result.axis, 60)} (sweep order)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    title = f"Per-class test accuracy vs {_text(result.axis, 60)}"
    if dropping:
        title += f"\n{len(dropping)} class(es) drop significantly at the selected strength"
    ax.set_title(title)
    ncol = 1 if len(ax.get_legend_handles_labels()[1]) <= 24 else 2
    # Outside the axes: a legend inside would sit on top of some class's curve.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, ncol=ncol,
              frameon=False)
    return fig


def delta_at_selected(result: StudyResult, *, max_labels: int = 40) -> Figure:
    """Sorted per-class change at the selected strength, with intervals and significance.

    Parameters
    ----------
    result : StudyResult
        Uses ``classes`` (``delta``, ``delta_low``, ``delta_high``, ``q_value``, ``verdict``)
        and ``mean_gain``.
    max_labels : int, default 40
        Up to this many classes every class is named on the y axis; above it only the classes
        with a significant drop or gain are.

    Returns
    -------
    matplotlib.figure.Figure
        Scatter collections with ``gid`` ``"delta-points:<verdict>"`` (one point per class in
        total) and a line collection ``"delta-intervals"``.
    """
    title = (
        f"Change per class at {_text(result.axis, 60)} = {_fmt_strength(result.selected)} "
        f"vs {_fmt_strength(result.reference)} (test set)"
    )
    return _delta_figure(result.classes, result.mean_gain, title, max_labels=max_labels)


def transfer(result: StudyResult, *, max_labels: int = 40) -> Figure:
    """The per-class change plot of :func:`delta_at_selected` for the downstream classes.

    Raises
    ------
    InputError
        When ``result.transfer`` is ``None`` (no transfer study was run).
    """
    downstream = result.transfer
    if downstream is None:
        raise InputError("'result.transfer' must be a StudyResult to draw transfer; got None")
    dataset = _text(downstream.meta.get("dataset", "downstream") if downstream.meta
                    else "downstream", 40)  # folder:PATH names a user's directory
    title = (
        f"Transfer (linear probe on {dataset}): change per class with the backbone "
        f"pre-trained at {_text(result.axis, 60)} = {_fmt_strength(downstream.selected)} "
        f"vs {_fmt_strength(downstream.reference)}"
    )
    return _delta_figure(downstream.classes, downstream.mean_gain, title, max_labels=max_labels)


def confusion_shifts(result: StudyResult, *, top_k: int = 10) -> Figure:
    """The ``top_k`` confusion pairs whose rate changed most, as horizontal bars; pairs whose
    rate did not change are left out (with none left, the figure says so).

    A positive change means more of the true class's test samples now go to the predicted
    class: that class absorbs the lost samples.

    Returns
    -------
    matplotlib.figure.Figure
        ``min(top_k, pairs that moved)`` bar patches (``gid`` ``"confusion-bar"``).
    """
    if top_k < 1:
        raise InputError(f"'top_k' must be >= 1; got {top_k}")
    shifts = result.confusion_shifts
    if not shifts.empty:
        _require_columns(shifts, "confusion_shifts", ["true", "predicted", "change"])
        change = shifts["change"].to_numpy(dtype=float)
        shifts = shifts[np.isfinite(change) & (change != 0)]  # a bar of 0 says nothing
    fig = _new_figure(8.5, 1.6 + 0.38 * min(top_k, max(len(shifts), 1)))
    ax = fig.add_subplot()
    # Right-aligned: long pair labels push the axes right, and a centred title or x label
    # would then run off the figure's right edge. A long axis name or strength goes on a
    # second line rather than past the figure's left edge.
    what = (f"{_text(result.axis, 60)} = {_text(_fmt_strength(result.selected), 30)} vs "
            f"{_text(_fmt_strength(result.reference), 30)}")
    title = f"Confusions that moved most: {what}"
    if len(title) > TITLE_CHARS:
        title = "Confusions that moved most:\n" + textwrap.fill(what, TITLE_CHARS)
    ax.set_title(title, loc="right")
    if shifts.empty:
        message = ("no confusion rate changed" if len(result.confusion_shifts)
                   else "no confusion shifts recorded")
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    top = shifts.reindex(shifts["change"].abs().sort_values(ascending=False).index).head(top_k)
    top = top.iloc[::-1]  # barh draws bottom-up: the largest shift ends up on top
    change = 100 * top["change"].to_numpy(dtype=float)
    labels = [
        f"{_text(t, PAIR_CHARS)} → {_text(p, PAIR_CHARS)}"  # two names a label: shorter each
        for t, p in zip(top["true"], top["predicted"], strict=True)
    ]
    colours = [VERDICT_COLORS["drop"] if c > 0 else SELECTED_COLOR for c in change]
    bars = ax.barh(np.arange(len(top)), change, color=colours, height=0.65)
    for bar in bars:
        bar.set_gid("confusion-bar")
    ax.set_yticks(np.arange(len(top)), labels, fontsize=9)
    if {"rate_reference", "rate_selected"} <= set(top.columns):
        for i, (c, r0, r1) in enumerate(
            zip(change, top["rate_reference"], top["rate_selected"], strict=True)
        ):
            ax.annotate(
                f"{100 * r0:.1f}% → {100 * r1:.1f}%", (c, i), xytext=(4 if c >= 0 else -4, 0),
                textcoords="offset points", ha="left" if c >= 0 else "right", va="center",
                fontsize=8,
            )
    ax.axvline(0, color="black", lw=0.8)
    lo, hi = min(change.min(), 0.0), max(change.max(), 0.0)
    pad = 0.35 * (hi - lo or 1.0)  # room for the rate annotations
    ax.set_xlim(lo - (pad if lo < 0 else 0.05 * pad), hi + pad)
    ax.set_xlabel("change in confusion rate (points of the true class's test samples)",
                  loc="right")
    ax.set_ylabel("true → predicted")
    ax.grid(axis="x", alpha=0.3)
    return fig


def class_aware(result: StudyResult) -> Figure:
    """Mean validation accuracy per strength with the usual and the class-aware pick marked.

    Returns
    -------
    matplotlib.figure.Figure
        Lines with ``gid`` ``"val-mean"``, ``"pick-usual"`` and, when ``result.class_aware``
        names a strength, ``"pick-class-aware"``.
    """
    validation = result.validation
    _require_columns(validation, "validation", ["strength", "val_mean"])
    strengths = list(result.strengths)
    positions, labels, invert = _strength_axis(strengths)
    position = _position_of(strengths, positions)
    order = {_key(s): i for i, s in enumerate(strengths)}
    rows = validation.assign(
        _rank=validation["strength"].map(lambda s: order.get(_key(s), math.inf))
    ).sort_values("_rank")
    x = rows["strength"].map(position).to_numpy(dtype=float)
    y = 100 * rows["val_mean"].to_numpy(dtype=float)

    fig = _new_figure(8.5, 4.8)
    ax = fig.add_subplot()
    (line,) = ax.plot(x, y, color="black", lw=2, marker="o", label="mean validation accuracy")
    line.set_gid("val-mean")
    if "val_std" in rows:
        sd = 100 * rows["val_std"].to_numpy(dtype=float)
        band = ax.fill_between(x, y - sd, y + sd, color="black", alpha=0.12, lw=0,
                               label="± 1 s.d. over seeds")
        band.set_gid("val-band")

    def mark(value: Any, gid: str, **style: Any) -> None:
        px = position(value)
        match = rows[rows["strength"].map(_key) == _key(value)]
        if not np.isfinite(px) or match.empty:
            return
        (pick,) = ax.plot([px], [100 * float(match["val_mean"].iloc[0])], ls="none", **style)
        pick.set_gid(gid)

    mark(result.selected, "pick-usual", marker="*", ms=18, color=SELECTED_COLOR,
         label=f"usual pick: best mean ({_fmt_strength(result.selected)})")
    aware = result.class_aware or {}
    aware_pick = aware.get("selected")
    max_drop = aware.get("max_drop")
    drop_text = f"{float(max_drop):g} pts" if isinstance(max_drop, Real) else "δ"
    if aware_pick is not None:
        mark(aware_pick, "pick-class-aware", marker="D", ms=11, mfc="none", mew=2.2,
             color=CLASS_AWARE_COLOR,
             label=f"class-aware pick: no class drops > {drop_text} "
                   f"({_fmt_strength(aware_pick)})")
        title = "Selection: best mean vs no class paying more than " + drop_text
    else:
        title = "Selection: best mean validation accuracy (no class-aware pick available)"
    ax.set_xticks(positions, labels)
    if invert:
        ax.invert_xaxis()
    ax.set_title(title)
    ax.set_xlabel(f"{_text(result.axis, 60)} (sweep order)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


# Name → builder, in report order. ``transfer`` only applies when ``result.transfer`` is set.
FIGURES: dict[str, Callable[[StudyResult], Figure]] = {
    "per_class_vs_strength": per_class_vs_strength,
    "delta_at_selected": delta_at_selected,
    "confusion_shifts": confusion_shifts,
    "class_aware": class_aware,
    "transfer": transfer,
}


def refit(result: StudyResult, kind: str = "refit") -> Figure:
    """Before and after the class-aware refit: per class, Δ versus the reference of the
    selected strength and of the refit (per-class strengths), with intervals, sorted by the
    selected strength's Δ.

    Raises
    ------
    InputError
        The study has no refit (``class_aware["refit"]``).

    Returns
    -------
    matplotlib.figure.Figure
        Line collections with ``gid`` ``"refit-intervals:selected"`` and
        ``"refit-intervals:refit"``, one point per class each.
    """
    outcome = (result.class_aware or {}).get(kind)
    if not outcome:
        raise InputError(f"'result' must hold a {kind} (class_aware[{kind!r}]); got none")
    short = {"refit": "refit", "group_refit": "group-aware refit", "reweight": "reweighting"}
    name = {"refit": "refit (per-class strengths)",
            "group_refit": "group-aware refit"}.get(kind,
                                                   f"selected + {outcome.get('method')} "
                                                   "reweighting")
    after = pd.DataFrame(outcome["vs_reference"]["classes"]).set_index("class")
    before = result.classes.set_index(result.classes["class"].astype(str))
    order = before.sort_values("delta", na_position="first").index.tolist()
    n = len(order)
    fig = _new_figure(8.5, float(np.clip(1.8 + 0.32 * n, 3.5, 14.0)))
    ax = fig.add_subplot()
    y = np.arange(n, dtype=float)
    for side, frame, colour, offset, label in (
            ("selected", before, SELECTED_COLOR, -0.15,
             f"selected {_fmt_strength(result.selected)} − reference"),
            (kind, after, CLASS_AWARE_COLOR, 0.15, f"{name} − reference")):
        rows = frame.reindex(order)
        mid = 100 * rows["delta"].to_numpy(dtype=float)
        low = 100 * rows["delta_low"].to_numpy(dtype=float)
        high = 100 * rows["delta_high"].to_numpy(dtype=float)
        drop = rows["verdict"].astype(str).to_numpy() == "drop"
        ax.hlines(y + offset, low, high, colors=colour, lw=1.6).set_gid(f"refit-intervals:{side}")
        ax.scatter(mid[~drop], y[~drop] + offset, color=colour, s=26, zorder=3, label=label)
        if drop.any():
            ax.scatter(mid[drop], y[drop] + offset, color=colour, s=60, marker="X", zorder=4,
                       edgecolors=VERDICT_COLORS["drop"],
                       label=f"{short.get(side, side)}: significant drop vs the reference")
    ax.axvline(0, color="black", lw=1.0, zorder=1)
    ax.set_yticks(y, [_text(c) for c in order], fontsize=9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.invert_yaxis()
    verdict = outcome.get("verdict") or {}
    cost = (verdict.get("mean_vs_selected") or {}).get("delta")
    met = "met" if verdict.get("target_met") else "not met"
    cost_text = "n/a" if cost is None else f"{cost:+.2f}"
    ax.set_title(f"{name[0].upper() + name[1:]}: Δ test accuracy vs the reference "
                 f"{_fmt_strength(result.reference)}\n{short[kind]} − selected mean {cost_text} "
                 "pts; "
                 f"target {met}", fontsize=10)
    ax.set_xlabel("Δ test accuracy vs the reference (percentage points; 95% interval)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8,
              frameon=False)
    return fig


def class_weights(result: StudyResult) -> Figure:
    """The worst-class reweighting's class weights over epochs (mean over seeds), one line per
    class, the classes that pay at the selected strength in colour and named.

    Raises
    ------
    InputError
        The study has no reweighting with weights (``class_aware["reweight"]["class_weights"]``).
    """
    outcome = (result.class_aware or {}).get("reweight") or {}
    table = outcome.get("class_weights")
    if not table:
        raise InputError("'result' must hold reweighting weights "
                         "(class_aware['reweight']['class_weights']); got none")
    paying = set(_dropping(result))
    fig = _new_figure(9.0, 4.8)
    ax = fig.add_subplot()
    palette = _palette(max(len(paying), 1))
    colour = 0
    for name, values in table.items():
        epochs = np.arange(1, len(values) + 1)
        if name in paying:
            (line,) = ax.plot(epochs, values, lw=2.2, color=palette[colour % len(palette)],
                              label=f"{_text(name)} (pays at the selected strength)")
            colour += 1
        else:
            (line,) = ax.plot(epochs, values, lw=0.8, color="#a0a0a0", alpha=0.8,
                              label="_nolegend_")
        line.set_gid(f"weights:{name}")
    # Name each line at its end (few classes), else the paying ones and the 3 most up-weighted.
    last = {name: values[-1] for name, values in table.items()}
    named = set(last) if len(last) <= MANY_CLASSES else \
        paying | set(sorted(last, key=lambda c: last[c], reverse=True)[:3])
    # In the table's order, not the set's: a set of names iterates in an order that changes
    # with each process's string hashing, and names that overlap are drawn in that order, so
    # the figure's bytes (and report.html) would differ between two runs of one study.
    for name in (name for name in table if name in named):
        ax.annotate(_text(name), (len(table[name]), last[name]), xytext=(4, 0),
                    textcoords="offset points", fontsize=7, va="center",
                    color="black" if name in paying else "#606060")
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("class weight (mean over seeds; mean 1)")
    ax.set_title(f"Class weights of {outcome.get('method')} reweighting over training")
    ax.grid(alpha=0.3)
    if paying:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def fix_frontier(result: StudyResult) -> Figure:
    """The fix frontier: each fix's mean Δ against its worst class's Δ, both versus the
    reference, with 95% intervals; the target region shaded (worst class ≥ −0.5 points, mean
    at most 0.3 points below the selected strength's); a fix with a class significantly below
    the reference drawn hollow; each point labelled with its training and inference cost.

    Raises
    ------
    InputError
        The study has no fix frontier (``result.fixes``).

    Returns
    -------
    matplotlib.figure.Figure
        One point per audited fix, ``gid`` ``"fix:<name>"``; the shaded region has ``gid``
        ``"fix-target"``.
    """
    from classgap.analysis.fixes import MAX_CLASS_COST, MAX_MEAN_COST

    rows = [f for f in result.fixes if f.get("worst_class") and f.get("mean_vs_reference")]
    if not rows:
        raise InputError("'result' must hold an audited fix frontier (result.fixes); got none")
    best = result.best_fix()
    fig = _new_figure(9.0, 5.4)
    ax = fig.add_subplot()
    palette = _palette(len(rows))
    sel = next((f for f in rows if f["kind"] == "none"), None)
    xs: list[float] = []
    ys: list[float] = []
    for i, f in enumerate(rows):
        m, w = f["mean_vs_reference"], f["worst_class"]
        x, y = float(m["delta"]), float(w["delta"])
        xs += [x, float(m["low"] if m["low"] is not None else x),
               float(m["high"] if m["high"] is not None else x)]
        ys += [y, float(w["low"] if w["low"] is not None else y),
               float(w["high"] if w["high"] is not None else y)]
        colour = SELECTED_COLOR if f["kind"] == "none" else palette[i % len(palette)]
        ok = not f["below_reference"]
        if m["low"] is not None and m["high"] is not None:
            ax.hlines(y, m["low"], m["high"], colors=colour, lw=1.2, alpha=0.8)
        if w["low"] is not None and w["high"] is not None:
            ax.vlines(x, w["low"], w["high"], colors=colour, lw=1.2, alpha=0.8)
        marker = "*" if best is not None and f["name"] == best["name"] else "o"
        cost = f"train +{f['training_runs']} runs, {f['inference_cost']}× inference"
        ax.scatter([x], [y], s=160 if marker == "*" else 60, marker=marker, zorder=4,
                   facecolors=colour if ok else "white", edgecolors=colour, linewidths=1.8,
                   label=f"{_text(f['name'], 48)} — {cost}"
                   + ("" if ok else " (a class significantly below)")).set_gid(
                       f"fix:{f['name']}")
    floor = -MAX_CLASS_COST
    if sel is not None:
        left = float(sel["mean_vs_reference"]["delta"]) - MAX_MEAN_COST
        x_hi = max([*xs, left]) + 0.3
        y_hi = max([*ys, floor]) + 0.3
        ax.fill_between([left, x_hi], floor, y_hi, color="#2ca02c", alpha=0.12, lw=0,
                        label="target: worst class ≥ −0.5 pts, mean ≤ 0.3 pts below the "
                              "selected (and no class significantly below: filled points)"
                        ).set_gid("fix-target")
        ax.set_xlim(min([*xs, left]) - 0.3, x_hi)
        ax.set_ylim(min([*ys, floor]) - 0.3, y_hi)
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("mean Δ test accuracy vs the reference (points; 95% interval)")
    ax.set_ylabel("worst class's Δ vs the reference (points; 95% interval)")
    verdict = f"best: {best['name']}" if best is not None else "no fix meets the target"
    ax.set_title(f"The fix frontier (reference {_fmt_strength(result.reference)}, selected "
                 f"{_fmt_strength(result.selected)}); {_text(verdict, 60)}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, fontsize=8,
              frameon=False)
    return fig


def groups(result: StudyResult, *, max_labels: int = 40) -> Figure:
    """The sorted change per group of the coarsest level of the study's class grouping
    (pooled over each group's test images), as :func:`delta_at_selected` draws classes.

    Raises
    ------
    InputError
        When ``result.groups`` is ``None`` (the study has no class grouping).
    """
    grouped = result.groups
    if grouped is None:
        raise InputError("'result.groups' must be a StudyGroups to draw groups; got None")
    level = grouped.levels[0]
    table = grouped.level(level).rename(columns={"group": "class"})
    title = (f"Change per {_text(level, 40)} at {_text(result.axis, 60)} = "
             f"{_fmt_strength(result.selected)} vs {_fmt_strength(result.reference)} "
             "(test set, pooled over each group's images)")
    return _delta_figure(table, result.mean_gain, title, max_labels=max_labels,
                         unit=_text(level, 40))


FIGURES["groups"] = groups
FIGURES["fix_frontier"] = fix_frontier
FIGURES["refit"] = refit
FIGURES["group_refit"] = lambda result: refit(result, "group_refit")
FIGURES["reweight"] = lambda result: refit(result, "reweight")
FIGURES["class_weights"] = class_weights


def build_figures(result: StudyResult) -> dict[str, Figure]:
    """Every figure that applies to ``result``, keyed by name in report order."""
    aware = result.class_aware or {}
    optional = {"transfer": result.transfer is not None, "refit": bool(aware.get("refit")),
                "group_refit": bool(aware.get("group_refit")),
                "reweight": bool(aware.get("reweight")),
                "class_weights": bool((aware.get("reweight") or {}).get("class_weights")),
                "fix_frontier": any(f.get("worst_class") for f in result.fixes),
                "groups": result.groups is not None}
    return {name: build(result) for name, build in FIGURES.items()
            if optional.get(name, True)}


# --------------------------------------------------------------------------- internals


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]


def _average_curve(
    result: StudyResult, strengths: Sequence[Any], position: Callable[[Any], float]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean test accuracy per strength: the validation table's ``test_mean`` when complete
    (it is what the headline's mean gain is computed from), else the mean over classes."""
    validation = result.validation
    if "test_mean" in validation and len(validation) and validation["test_mean"].notna().all():
        table = validation.set_index(validation["strength"].map(_key))["test_mean"]
    else:
        per_class = result.per_class
        table = per_class.groupby(per_class["strength"].map(_key))["acc_mean"].mean()
    keys = [_key(s) for s in strengths if _key(s) in table.index]
    x = np.asarray([position(k) for k in keys], dtype=float)
    y = 100 * np.asarray([table.loc[k] for k in keys], dtype=float)
    return x, y


def _mark_strength(ax: Any, x: float, gid: str, colour: str, style: str, label: str) -> None:
    if not np.isfinite(x):
        return
    line = ax.axvline(x, color=colour, ls=style, lw=1.6, zorder=0, label=label)
    line.set_gid(gid)


def _spaced_labels(verdicts: np.ndarray, delta: np.ndarray, height_in: float) -> list[int]:
    """Rows of a sorted Δ plot of many classes that get a name: significant classes, largest
    drops first, then largest gains, each kept only if no name already sits within a label's
    height (7 pt) of it, so names never overlap; at most ``3 * MAX_NAMED``."""
    n = len(verdicts)
    gap = max(1, math.ceil(n * 7 / (72 * max(height_in - 1.8, 1.0))))
    drops = [i for i in np.argsort(delta, kind="stable") if verdicts[i] == "drop"]
    gains = [i for i in np.argsort(-delta, kind="stable") if verdicts[i] == "gain"]
    taken: list[int] = []
    for i in drops + gains:
        if len(taken) >= 3 * MAX_NAMED:
            break
        if all(abs(int(i) - j) >= gap for j in taken):
            taken.append(int(i))
    return sorted(taken)


def _delta_figure(
    classes: pd.DataFrame, mean_gain: Mapping[str, float], title: str, *, max_labels: int,
    unit: str = "class",
) -> Figure:
    _require_columns(classes, "classes", ["class", "delta", "verdict"])
    table = classes.sort_values("delta", na_position="first").reset_index(drop=True)
    n = len(table)
    many = n > max_labels
    # ~0.28 in per class keeps 10 classes compact and 100 classes legible without labels.
    fig = _new_figure(8.5, float(np.clip(1.8 + (0.28 if not many else 0.11) * n, 3.5, 14.0)))
    ax = fig.add_subplot()
    y = np.arange(n, dtype=float)
    delta = 100 * table["delta"].to_numpy(dtype=float)
    low = 100 * table.get("delta_low", table["delta"]).to_numpy(dtype=float)
    high = 100 * table.get("delta_high", table["delta"]).to_numpy(dtype=float)
    verdicts = table["verdict"].astype(str).to_numpy()
    colours = [VERDICT_COLORS.get(v, VERDICT_COLORS["none"]) for v in verdicts]

    intervals = ax.hlines(y, low, high, colors=colours, lw=1.6 if not many else 1.0, zorder=2)
    intervals.set_gid("delta-intervals")
    names = {"drop": "significant drop", "gain": "significant gain", "none": "not significant"}
    for verdict in ("drop", "gain", "none"):
        mask = verdicts == verdict
        if verdict == "none":
            mask = ~np.isin(verdicts, ["drop", "gain"])
        if not mask.any():
            continue
        dots = ax.scatter(delta[mask], y[mask], color=VERDICT_COLORS[verdict], zorder=3,
                            s=28 if not many else 12, label=f"{names[verdict]} ({mask.sum()})")
        dots.set_gid(f"delta-points:{verdict}")

    q = table["q_value"].to_numpy(dtype=float) if "q_value" in table else np.full(n, np.nan)
    for i in range(n):
        stars = _stars(q[i])
        if stars:
            right = high[i] if np.isfinite(high[i]) else delta[i]
            ax.annotate(stars, (right, y[i]), xytext=(3, -1), textcoords="offset points",
                        fontsize=8, va="center", color=colours[i])

    ax.axvline(0, color="black", lw=1.0, zorder=1).set_gid("zero")
    gain = float(mean_gain.get("delta", math.nan)) if mean_gain else math.nan
    gain_text = "mean gain n/a"
    if np.isfinite(gain):
        lo_g = float(mean_gain.get("low", math.nan))
        hi_g = float(mean_gain.get("high", math.nan))
        gain_text = f"mean gain {points(gain)} pts [{points(lo_g)}, {points(hi_g)}]"
        ax.axvline(100 * gain, color=SELECTED_COLOR, ls="--", lw=1.4, zorder=1,
                   label=gain_text).set_gid("mean-gain")

    labelled = _spaced_labels(verdicts, delta, fig.get_figheight()) if many else list(range(n))
    ax.set_yticks(y[labelled], [_text(table["class"].iloc[i]) for i in labelled],
                  fontsize=9 if not many else 7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.invert_yaxis()  # worst drop on top, where the eye starts
    ax.set_xlabel("Δ test accuracy, selected − reference (percentage points; 95% interval)")
    n_significant = int(np.isin(verdicts, ["drop", "gain"]).sum())
    named_text = (f"; {len(labelled)} of {n_significant} significant named"
                  if many and len(labelled) < n_significant else
                  "; only significant ones named" if many else "")
    ax.set_ylabel(f"{unit} (sorted by Δ)" + named_text)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title}\n{gain_text}; * q<0.05, ** q<0.01, *** q<0.001 (BH)", fontsize=10)
    # Under the axes, never over a point; centred on the figure, not the axes: long class
    # names push the axes right, and a legend centred on it would run off the right edge.
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    return fig
