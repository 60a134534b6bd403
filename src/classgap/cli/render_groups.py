"""Grouped audits as terminal tables, JSON payloads and CSV tables (``--groups``).

What :mod:`classgap.cli.render` does for classes, per group: each level's groups worst first
(the audit's pooled and mean-of-classes accuracy; the comparison's Δ with its verdict and the
hierarchical test's), the classes inside a group on request (``--expand``), the smallest drop
each level can detect, and outputs that hold every group of every level. No computation of
statistics here; every data string reaches rich through :func:`~classgap._richtext.cell`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from classgap._files import jsonable
from classgap._format import MISSING, finite, literal, pct, points, pvalue
from classgap._richtext import add_row, cell
from classgap._validation import check_choice, fmt_value
from classgap.cli.render import (
    MAX_ROWS,
    NO_SAMPLES,
    VERDICT_STYLE,
    hidden_row,
    overall_table,
    shown_rows,
    summary_table,
)
from classgap.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from classgap.audit.api import GroupedAudit, GroupedComparison
    from classgap.audit.groups import GroupMap

NOT_TESTED = "not tested"
"""The tree verdict of a node whose parent the hierarchical test did not find."""


@dataclass(frozen=True)
class GroupView:
    """What the terminal tables show of a group map: some levels, some groups opened."""

    levels: tuple[str, ...]                  # the levels with a table, coarse to fine
    expand: tuple[tuple[str, str], ...]      # (level, group) whose classes are listed


def group_view(group_map: GroupMap, level: str | None = None,
               expand: Sequence[str] = ()) -> GroupView:
    """The tables to show for ``--level`` and ``--expand``, checked against the map.

    ``level`` is one of the map's levels (default: every level). Each name of ``expand``
    opens that group at every level that has a group of that name (only at ``level`` when
    it has one there); a name no level has is an error naming the closest groups.
    """
    levels = group_map.levels if level is None else (
        check_choice(level, "level", group_map.levels),)
    opened: list[tuple[str, str]] = []
    for name in dict.fromkeys(expand):  # a group asked for twice is listed once
        holding = [lv for lv in group_map.levels if name in group_map.groups(lv)]
        if not holding:
            raise _unknown_group(group_map, name)
        opened += [(lv, name) for lv in ([level] if level in holding else holding)]
    return GroupView(tuple(levels), tuple(opened))


def _unknown_group(group_map: GroupMap, name: str) -> InputError:
    every = [g for lv in group_map.levels for g in group_map.groups(lv)]
    close = difflib.get_close_matches(name, every, n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    sizes = ", ".join(f"{len(group_map.groups(lv)):,} at {lv!r}" for lv in group_map.levels)
    return InputError(f"'expand' must name a group of the group map ({sizes}); got "
                      f"{fmt_value(name)}{hint}")


# -- tables ------------------------------------------------------------------------------
def _level_rows(frame: pd.DataFrame, level: str, by: str) -> pd.DataFrame:
    """The rows of one level, lowest ``by`` first (a group without samples last)."""
    rows = frame[frame["level"] == level]
    return rows.sort_values(by, kind="stable", na_position="last")


def _parent(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _interval(low: Any, high: Any, fmt: Any = pct) -> str:
    return f"[{fmt(low, 1)}, {fmt(high, 1)}]"


def grouped_audit_tables(result: GroupedAudit, view: GroupView, *,
                         detectable: pd.DataFrame | None = None,
                         show_all: bool = False) -> list[Table]:
    """Each shown level's groups worst first, the disparity over each level's groups, the
    smallest detectable drop per level, the classes of each opened group, and the audit's
    overall and disparity summary."""
    audit = result.audit
    level_ci = f"{100 * audit.confidence:g}%"
    coarsest = result.group_map.levels[0]
    tables = [_audit_level_table(result.groups.groups, lv, level_ci, lv != coarsest, show_all)
              for lv in view.levels]
    tables.append(_disparity_table(result.groups.levels, view.levels, level_ci))
    if detectable is not None:
        tables.append(detectable_table(detectable))
    per_class = audit.to_frame()
    for lv, group in view.expand:
        members = per_class.iloc[result.group_map.members(lv, group)]
        tables.append(_audit_expand_table(members, lv, group, level_ci))
    tables.append(summary_table(audit))
    return tables


def _audit_level_table(frame: pd.DataFrame, level: str, level_ci: str, nested: bool,
                       show_all: bool) -> Table:
    rows = _level_rows(frame, level, "accuracy")
    worst, best, n_hidden = shown_rows(rows.index, show_all)
    scope = (f"; the {len(worst)} worst and {len(best)} best of {len(rows):,} groups, --all "
             "for every one") if n_hidden else ""
    table = Table(title=cell(f"Groups by {level}, worst first: accuracy pooled over the "
                             f"group's images and the mean of its classes' ({level_ci} "
                             f"intervals{scope})"))
    columns = ["group", *(["parent"] if nested else []), "classes", "support", "pooled",
               f"{level_ci} CI", "mean of classes", f"{level_ci} CI ", "worst class"]
    for name in columns:
        left = name in ("group", "parent", "worst class")
        table.add_column(name, justify="left" if left else "right",
                         overflow="fold" if left else "ellipsis")

    def add(i: Any) -> None:
        row = rows.loc[i]
        empty = int(row["support"]) == 0
        add_row(table, row["group"], *([_parent(row["parent"])] if nested else []),
                f"{int(row['n_classes']):,}", f"{int(row['support']):,}",
                NO_SAMPLES if empty else pct(row["accuracy"], 1),
                "" if empty else _interval(row["low"], row["high"]),
                NO_SAMPLES if empty else pct(row["mean_class_accuracy"], 1),
                "" if empty else _interval(row["mean_low"], row["mean_high"]),
                _worst_class(row), style="dim" if empty else None)

    _add_rows(table, worst, best, n_hidden, add, "groups")
    return table


def _worst_class(row: Any) -> str:
    name = row["worst_class"]
    if not isinstance(name, str):
        return MISSING
    return f"{name} ({pct(row['worst_class_accuracy'], 1)})"


def _add_rows(table: Table, worst: Any, best: Any, n_hidden: int, add: Any, what: str) -> None:
    for i in worst:
        add(i)
    if n_hidden:
        hidden_row(table, n_hidden, what)
    for i in best:
        add(i)


def _disparity_table(frame: pd.DataFrame, levels: Sequence[str], level_ci: str) -> Table:
    table = Table(title=f"Disparity over the groups of each level ({level_ci} intervals)")
    for name in ("level", "groups", "worst group", "accuracy", f"{level_ci} CI",
                 "best − worst", "std"):
        left = name in ("level", "worst group")
        table.add_column(name, justify="left" if left else "right",
                         overflow="fold" if left else "ellipsis")
    for _, row in frame[frame["level"].isin(levels)].iterrows():
        add_row(table, row["level"], f"{int(row['n_groups']):,}", str(row["worst_group"]),
                pct(row["worst_accuracy"], 1), _interval(row["worst_low"], row["worst_high"]),
                pct(row["best_worst_gap"], 1), pct(row["accuracy_std"], 1))
    return table


def _audit_expand_table(members: pd.DataFrame, level: str, group: str, level_ci: str) -> Table:
    rows = members.sort_values("accuracy", kind="stable", na_position="last")
    table = Table(title=cell(f"Classes in {level} {group} ({len(rows):,}, worst first)"))
    for name in ("class", "support", "accuracy", f"{level_ci} CI"):
        table.add_column(name, justify="left" if name == "class" else "right",
                         overflow="fold" if name == "class" else "ellipsis")
    for _, row in rows.iterrows():
        empty = int(row["support"]) == 0
        add_row(table, row["class"], f"{int(row['support'])}",
                NO_SAMPLES if empty else pct(row["accuracy"], 1),
                "" if empty else _interval(row["accuracy_low"], row["accuracy_high"]),
                style="dim" if empty else None)
    return table


def detectable_table(frame: pd.DataFrame) -> Table:
    """The smallest drop one unit of each level can show
    (:func:`~classgap.analysis.plan.detectable_by_level`'s table, the class level last)."""
    table = Table(title="Smallest detectable drop per level (points, median over the level's "
                        "units, in a comparison of one run a side on this test set; 80% power, "
                        "each level corrected over its own units)")
    for name in ("level", "units", "median images", "smallest detectable drop",
                 "units that can fall that far"):
        table.add_column(name, justify="left" if name == "level" else "right")
    for _, row in frame.iterrows():
        drop = row["min_detectable_drop"]
        add_row(table, row["level"], f"{int(row['n_units']):,}",
                f"{float(row['median_images']):,.0f}" if finite(row["median_images"])
                else MISSING, f"{float(drop):.1f}" if finite(drop) else MISSING,
                f"{int(row['n_detectable']):,} of {int(row['n_with_images']):,}")
    return table


def grouped_comparison_tables(result: GroupedComparison, view: GroupView, *,
                              detectable: pd.DataFrame | None = None,
                              show_all: bool = False) -> list[RenderableType]:
    """Each shown level's groups by Δ (the largest drop first) with each level's own
    verdict and the hierarchical test's, the hierarchical test's findings, the smallest
    detectable drop per level, the classes of each opened group, and the overall line."""
    o = result.comparison.overall
    tree = tree_verdicts(result.tree.nodes)
    coarsest = result.group_map.levels[0]
    tables: list[RenderableType] = [
        _compare_level_table(result.groups.groups, lv, o, tree, show_all, nested=lv != coarsest)
        for lv in view.levels]
    tables += _tree_tables(result, show_all)
    if detectable is not None:
        tables.append(detectable_table(detectable))
    classes = result.comparison.classes
    for lv, group in view.expand:
        members = classes.iloc[result.group_map.members(lv, group)]
        tables.append(_compare_expand_table(members, lv, group, o, tree))
    tables.append(overall_table(result.comparison.overall))
    return tables


def tree_verdicts(nodes: pd.DataFrame) -> dict[tuple[str, str], str]:
    """``(level, node) -> verdict`` of the hierarchical test; ``not tested`` where the
    parent was not found."""
    return {(str(lv), str(node)): (str(verdict) if tested else NOT_TESTED)
            for lv, node, tested, verdict in zip(nodes["level"], nodes["node"],
                                                 nodes["tested"], nodes["verdict"],
                                                 strict=True)}


def _delta_columns(table: Table, first: Sequence[str], level_ci: str) -> None:
    for name in (*first, "support", "baseline", "candidate", "Δ", f"{level_ci} CI", "p", "q",
                 "verdict", "tree"):
        named = name in ("group", "parent", "class")  # names fold onto more lines, whole
        table.add_column(name, justify="left" if named or name in ("verdict", "tree")
                         else "right", overflow="fold" if named else "ellipsis")


def _delta_cells(row: Any, verdict: str, tree: str) -> list[Any]:
    empty = int(row["support"]) == 0
    verdict = NO_SAMPLES if empty else verdict
    return [f"{int(row['support']):,}", pct(row["acc_baseline"], 1),
            pct(row["acc_candidate"], 1), points(row["delta"], 1),
            _interval(row["delta_low"], row["delta_high"], points),
            pvalue(row["p_value"]), pvalue(row["q_value"]),
            cell(verdict, VERDICT_STYLE.get(verdict, "")),
            cell(tree, VERDICT_STYLE.get(tree, "dim"))]


def _compare_level_table(frame: pd.DataFrame, level: str, o: dict[str, Any],
                         tree: dict[tuple[str, str], str], show_all: bool, *,
                         nested: bool) -> Table:
    rows = _level_rows(frame, level, "delta")
    worst, best, n_hidden = shown_rows(rows.index, show_all)
    scope = (f"; the {len(worst)} largest drops and {len(best)} largest gains of "
             f"{len(rows):,} groups, --all for every one") if n_hidden else ""
    level_ci = f"{100 * o['confidence']:g}%"
    table = Table(title=cell(
        f"Groups by {level}: candidate − baseline, the largest drop first (points; "
        f"{level_ci} intervals; {o['test']} test; verdict: {o['correction']} q-values over "
        f"the level's {len(rows):,} groups, α = {o['alpha']:g}; tree: the hierarchical "
        f"test{scope})"))
    _delta_columns(table, ["group", *(["parent"] if nested else []), "classes"], level_ci)

    def add(i: Any) -> None:
        row = rows.loc[i]
        add_row(table, row["group"], *([_parent(row["parent"])] if nested else []),
                f"{int(row['n_classes']):,}",
                *_delta_cells(row, str(row["verdict"]),
                              tree.get((level, str(row["group"])), NOT_TESTED)))

    _add_rows(table, worst, best, n_hidden, add, "groups")
    return table


def _tree_tables(result: GroupedComparison, show_all: bool) -> list[RenderableType]:
    """The hierarchical test's procedure and bound in words, what it tested and found per
    level, and each finding."""
    t, nodes = result.tree, result.tree.nodes
    level_ci = f"{100 * result.comparison.overall['confidence']:g}%"
    procedure = Text.assemble((f"Hierarchical test (method {t.method!r}, α = {t.alpha:g}, "
                               f"{t.test} test): ", "bold"), literal(t.bound))
    counts = Table(title="Hierarchical test, per level")
    for name in ("level", "nodes", "tested", "drops found", "gains found"):
        counts.add_column(name, justify="left" if name == "level" else "right")
    for level, rows in nodes.groupby("level", sort=False):
        found = rows[rows["rejected"].astype(bool)]
        add_row(counts, level, f"{len(rows):,}", f"{int(rows['tested'].sum()):,}",
                f"{int((found['verdict'] == 'drop').sum()):,}",
                f"{int((found['verdict'] == 'gain').sum()):,}")
    found = nodes[nodes["rejected"].astype(bool)].sort_values(["depth", "delta"],
                                                              kind="stable")
    if found.empty:
        return [procedure, counts]
    shown = found if show_all or len(found) <= MAX_ROWS else found.head(MAX_ROWS)
    more = f"; the first {len(shown)} of {len(found):,}, --all for every one" \
        if len(shown) < len(found) else ""
    table = Table(title=f"Found by the hierarchical test, coarsest level first{more}")
    for name in ("level", "node", "parent", "Δ", f"{level_ci} CI", "q", "verdict"):
        left = name in ("level", "node", "parent", "verdict")
        table.add_column(name, justify="left" if left else "right",
                         overflow="fold" if name in ("node", "parent") else "ellipsis")
    for _, row in shown.iterrows():
        verdict = str(row["verdict"])
        add_row(table, row["level"], row["node"], _parent(row["parent"]),
                points(row["delta"], 1), _interval(row["delta_low"], row["delta_high"], points),
                pvalue(row["q_value"]), cell(verdict, VERDICT_STYLE.get(verdict, "")))
    if len(shown) < len(found):
        hidden_row(table, len(found) - len(shown), "found")
    return [procedure, counts, table]


def _compare_expand_table(members: pd.DataFrame, level: str, group: str, o: dict[str, Any],
                          tree: dict[tuple[str, str], str]) -> Table:
    rows = members.sort_values("delta", kind="stable", na_position="last")
    level_ci = f"{100 * o['confidence']:g}%"
    table = Table(title=cell(f"Classes in {level} {group} ({len(rows):,}, the largest drop "
                             f"first; verdict: {o['correction']} over every class)"))
    _delta_columns(table, ["class"], level_ci)
    for _, row in rows.iterrows():
        add_row(table, row["class"], *_delta_cells(
            row, str(row["verdict"]), tree.get(("class", str(row["class"])), NOT_TESTED)))
    return table


# -- JSON and CSV ----------------------------------------------------------------------------
def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = jsonable(frame)
    return records


def grouped_audit_payload(result: GroupedAudit,
                          detectable: pd.DataFrame | None = None) -> dict[str, Any]:
    """``audit --format json`` with groups: the audit's payload (its ``classes`` records
    with a key per level, coarse to fine, after the others), plus ``group_levels`` (coarse to
    fine), ``groups`` (every group of every level) and ``levels`` (the disparity over each
    level's groups), and ``detectable_drop`` (per level) when given."""
    payload = result.audit.to_dict()
    payload["classes"] = _records(result.groups.classes)
    payload["group_levels"] = list(result.group_map.levels)
    payload["groups"] = _records(result.groups.groups)
    payload["levels"] = _records(result.groups.levels)
    if detectable is not None:
        payload["detectable_drop"] = _records(detectable)
    return payload


def grouped_comparison_payload(result: GroupedComparison,
                               detectable: pd.DataFrame | None = None) -> dict[str, Any]:
    """``compare --format json`` with groups: the comparison's payload (its ``classes``
    records with a key per level), plus ``group_levels``, ``groups`` (every group of every
    level, each level's own verdict) and ``tree`` (the hierarchical test: its procedure, α,
    what it bounds, and every node), and ``detectable_drop`` when given."""
    payload = result.comparison.to_dict()
    payload["classes"] = _records(result.groups.classes)
    payload["group_levels"] = list(result.group_map.levels)
    payload["groups"] = _records(result.groups.groups)
    payload["tree"] = jsonable(result.tree.to_dict())
    if detectable is not None:
        payload["detectable_drop"] = _records(detectable)
    return payload


def grouped_audit_frames(result: GroupedAudit) -> dict[str, pd.DataFrame]:
    """The CSV tables of a grouped audit beside the per-class one: ``groups`` and
    ``levels``."""
    return {"groups": result.groups.groups, "levels": result.groups.levels}


def grouped_comparison_frames(result: GroupedComparison) -> dict[str, pd.DataFrame]:
    """The CSV tables of a grouped comparison beside the per-class one: ``groups`` and the
    hierarchical test's ``tree``."""
    return {"groups": result.groups.groups, "tree": result.tree.nodes}
