"""A self-contained HTML report of a :class:`StudyResult`, plus PNG figures and tables.

``report.html`` needs nothing but itself: figures are inline base64 PNGs, styles and the one
small sorting script are inline, and a Content-Security-Policy forbids every network request
(``default-src 'none'``) and every script but ours (pinned by its SHA-256). Every string that
comes from data (class names, notes, metadata) goes through :func:`html.escape`; no event
handler attribute is ever written, so a class called ``<script>alert(1)</script>`` is text.
No data goes into the script or into JSON inside the page (``</script>`` in a name has no
script to end). Class names, notes and the provenance's paths are shown as
:func:`classgap._format.literal` text, a newline as ``\\n``, a right-to-left override as
``\\u202e``, as in the terminal; ``data-class`` and the CSV files keep the name exact.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from classgap._files import atomic_write
from classgap._format import finite, literal, pct, points, strength
from classgap.analysis.groups import StudyGroups
from classgap.analysis.result import StudyResult
from classgap.report import plots

__all__ = ["headline", "write_report"]

HEADLINE_NAMES = 5
"""Dropping classes a headline names (worst first); the rest are counted."""
GROUP_TABLES = frozenset({"groups", "group_tree", "group_map"})
"""The CSV files of a study with a class grouping: every group of every level, the tree
test's nodes, and the map (class and one column per level)."""
SCROLL_ROWS = 30
"""Per-class tables longer than this scroll in a box of their own, headers kept in view."""

# Static code, never built from data. With ``#selftest`` in the URL it writes
# ``<pre id="selftest">{"images_loaded", "images_total", "rows", "scripts", "classes",
# "delta_sorted_desc"}</pre>``
# after load, so a headless browser's ``--dump-dom`` can check the page without a driver.
_SCRIPT = """
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-v");
    if (raw === null) { raw = cell.textContent; }
    var num = parseFloat(raw);
    return { num: isNaN(num) ? null : num, text: raw };
  }
  function sortTable(table, index, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index), order;
      if (x.num !== null && y.num !== null) { order = x.num - y.num; }
      else if (x.num !== null) { order = -1; }
      else if (y.num !== null) { order = 1; }
      else { order = x.text.localeCompare(y.text); }
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(header.parentNode.cells, function (th) {
      th.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.addEventListener("click", function () { sortTable(table, index, th); });
    });
  });
  function selftest() {
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
    var table = document.getElementById("per-class");
    var rows = table ? table.tBodies[0].rows : [];
    var names = Array.prototype.map.call(rows, function (row) { return row.cells[0].textContent; });
    // Exercise the sorting: two clicks on the delta header sort descending.
    var header = table ? table.querySelector('th[data-key="delta"]') : null;
    var sorted = [];
    if (header) {
      header.click(); header.click();
      sorted = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
        return parseFloat(row.getAttribute("data-delta"));
      });
    }
    var out = document.createElement("pre");
    out.id = "selftest";
    out.textContent = JSON.stringify({
      images_loaded: loaded.length, images_total: images.length, rows: rows.length,
      scripts: document.scripts.length, classes: names, delta_sorted_desc: sorted
    });
    document.body.appendChild(out);
  }
  if (window.location.hash === "#selftest") {
    if (document.readyState === "complete") { selftest(); }
    else { window.addEventListener("load", selftest); }
  }
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.headline { font-size: 1.15em; background: #f4f7fb; border-left: 4px solid #1f77b4;
            padding: .8em 1em; }
.notes { background: #fff6e0; border: 1px solid #e0b44c; padding: .6em 1em; }
.notes li { margin: .3em 0; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9em; }
table { border-collapse: collapse; font-size: .9em; margin: 1em 0; }
th, td { padding: .25em .6em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td:first-child { overflow-wrap: anywhere; max-width: 28em; }
table.sortable th { cursor: pointer; background: #f2f2f2; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.drop td { color: #b01c1c; } tr.gain td { color: #1f7a1f; }
tr.best td { font-weight: bold; color: #1f7a1f; }
.scroll { max-height: 36em; overflow: auto; border: 1px solid #ddd; }
.scroll table { margin: 0; } .scroll-note { color: #555; font-size: .9em; }
.tree { font-size: .9em; } .tree details, .tree .leaf { border-bottom: 1px solid #eee; }
.tree .cells { display: grid; grid-template-columns: minmax(10em, 3fr) 6em 13em 4.5em 9em 6em;
               gap: 0 .6em; }
.tree .cells > span:not(:first-child) { text-align: right; }
.tree .g-name { overflow-wrap: anywhere; } .tree .lvl { color: #777; font-size: .8em; }
.tree details > :not(summary) { margin-left: 1.4em; }
.tree summary { list-style: none; cursor: pointer; }
.tree summary::-webkit-details-marker { display: none; }
.tree summary .g-name::before { content: "\\25B8  "; }
.tree details[open] > summary .g-name::before { content: "\\25BE  "; }
.tree .leaf .g-name, .tree-head .cells > span:first-child { padding-left: 1.2em; }
.tree-head { font-weight: bold; }
.tree .drop > summary, .tree .leaf.drop { color: #b01c1c; }
.tree .gain > summary, .tree .leaf.gain { color: #1f7a1f; }
footer { margin-top: 3em; color: #666; font-size: .85em; }
footer dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .25em 1em; }
footer dt { font-weight: bold; }
footer dd { margin: 0; font-family: monospace; overflow-wrap: anywhere; white-space: pre-wrap; }
"""

_ALT = {
    "per_class_vs_strength": "Per-class test accuracy versus {axis}, one line per class, the "
    "mean bold, reference and selected strengths marked.",
    "delta_at_selected": "Change in test accuracy per class at the selected {axis}, sorted, "
    "with 95% intervals; significant drops red, gains green.",
    "confusion_shifts": "Confusion pairs (true to predicted) whose rate changed most.",
    "class_aware": "Mean validation accuracy per {axis} with the usual and the class-aware "
    "pick marked.",
    "transfer": "Change in downstream linear-probe accuracy per class, sorted, with intervals.",
    "refit": "Per class, the change versus the reference of the selected strength and of the "
    "class-aware refit, with 95% intervals.",
    "group_refit": "Per class, the change versus the reference of the selected strength and "
    "of the group-aware refit, with 95% intervals.",
    "reweight": "Per class, the change versus the reference of the selected strength and of "
    "the selected strength trained with worst-class reweighting, with 95% intervals.",
    "class_weights": "The reweighting's class weights over epochs (mean over seeds); the "
    "classes that pay at the selected strength in colour.",
    "groups": "Change in test accuracy per group of the coarsest level at the selected "
    "{axis}, pooled over each group's images, sorted, with 95% intervals; significant drops red.",
    "fix_frontier": "Each fix's mean change against its worst class's change, both versus the "
    "reference, with 95% intervals and costs; the target region shaded.",
}


def _e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute.

    A carriage return is a character reference: an HTML parser reads a raw ``\\r\\n`` as
    ``\\n``, so a ``data-class`` would lose it.
    """
    return html.escape(str(value), quote=True).replace("\r", "&#13;")


def _n(value: Any) -> str:
    """A class name or a note as HTML text: one line (a newline shows as ``\\n``), escaped."""
    return _e(literal(value))










def headline(result: StudyResult) -> str:
    """One plain-text sentence: what the selection bought and who paid (not escaped).

    Examples
    --------
    ``Selecting aug.mixup = 1 raised mean test accuracy by +0.80 points [+0.50, +1.10];
    1 class dropped significantly: Ankle boot (-1.40 [-2.20, -0.70]).``
    """
    gain = result.mean_gain or {}
    delta = gain.get("delta", math.nan)
    if finite(delta):
        verb = "raised" if delta > 0 else "lowered" if delta < 0 else "did not change"
        by = f" by {points(delta)} points" if delta != 0 else ""
        text = (
            f"Selecting {result.axis} = {strength(result.selected)} (reference "
            f"{strength(result.reference)}) {verb} mean test accuracy{by} "
            f"[{points(gain.get('low'))}, {points(gain.get('high'))}]"
        )
    else:
        text = f"Selecting {result.axis} = {strength(result.selected)}: mean gain not available"
    drops = result.drops()
    if drops.empty:
        return text + "; no class dropped significantly."
    parts = [
        f"{literal(row['class'])} ({points(row['delta'])} [{points(row.get('delta_low'))}, "
        f"{points(row.get('delta_high'))}])"
        for _, row in drops.head(HEADLINE_NAMES).iterrows()
    ]
    if len(drops) > HEADLINE_NAMES:
        parts.append(f"and {len(drops) - HEADLINE_NAMES} more (the per-class table lists them)")
    noun = "class" if len(drops) == 1 else "classes"
    worst = " (worst first)" if len(drops) > HEADLINE_NAMES else ""
    return (text + f"; {len(drops)} {noun} dropped significantly{worst}: " + ", ".join(parts)
            + ".")


def write_report(
    result: StudyResult,
    out_dir: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Write ``report.html``, ``figures/<name>.png`` and the tables into ``out_dir``.

    Parameters
    ----------
    result : StudyResult
        The analysed study.
    out_dir : path
        Created if missing. Receives ``report.html``, ``figures/*.png``, ``classes.csv``,
        ``classes.parquet``, ``per_class.csv``, ``validation.csv``, ``confusion_shifts.csv``
        and, with a transfer study, ``transfer_classes.csv``; with a class grouping,
        ``groups.csv``, ``group_tree.csv`` and ``group_map.csv`` (:data:`GROUP_TABLES`).
    title : str, optional
        Page title; default ``"classgap study: <axis>"``.
    dpi : int, default 110
        Resolution of the PNG figures.

    Returns
    -------
    Path
        The path of ``report.html``. Every file is written to a temporary name and moved into
        place, so a reader never sees a half-written report.
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)

    images: dict[str, bytes] = {}
    for name, fig in plots.build_figures(result).items():
        images[name] = _png(fig, dpi)
        _atomic_write(out / "figures" / f"{name}.png", images[name])

    tables: dict[str, pd.DataFrame] = {
        "classes": result.classes,
        "per_class": result.per_class,
        "validation": result.validation,
        "confusion_shifts": result.confusion_shifts,
    }
    if result.transfer is not None:
        tables["transfer_classes"] = result.transfer.classes
    if result.groups is not None:
        tables.update(groups=result.groups.groups, group_tree=result.groups.tree,
                      group_map=result.groups.classes)
    for name in GROUP_TABLES.difference(tables):  # a report without groups leaves none stale
        (out / f"{name}.csv").unlink(missing_ok=True)
    for name, frame in tables.items():
        _atomic_write(out / f"{name}.csv", frame.to_csv(index=False).encode())
    _atomic_write(out / "classes.parquet", _parquet_bytes(result.classes))

    page = _render(result, images, title or f"classgap study: {result.axis}")
    path = out / "report.html"
    _atomic_write(path, page.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- rendering


def _render(result: StudyResult, images: Mapping[str, bytes], title: str) -> str:
    axis = result.axis
    body: list[str] = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="headline" id="headline">{_e(headline(result))}</p>',
    ]
    if result.notes:
        items = "".join(f"<li>{_n(n)}</li>" for n in result.notes)
        body.append(
            f'<section class="notes" id="notes"><strong>Read this first:</strong>'
            f"<ul>{items}</ul></section>"
        )
    body.append(_failed_section(result))
    body.append(_selection_summary(result))

    body.append(_strength_section(result))

    body.append("<h2>Who pays</h2>")
    if strength(result.selected) == strength(result.reference):
        # Nothing was selected: a change of 0 against 0 says nothing. What each strength
        # would cost is the table above; the curves show it per class.
        body.append('<p id="nothing-selected">Validation keeps the reference '
                    f"({_e(strength(result.reference))}): the usual selection buys nothing, so no "
                    "class pays for it. What each strength would cost, per class, is in the "
                    "table above and the curves below.</p>")
        body.append(_figure("per_class_vs_strength", images, axis))
    else:
        for name in ("per_class_vs_strength", "delta_at_selected", "confusion_shifts"):
            body.append(_figure(name, images, axis))
        body.append(
            "<h2>Per-class results</h2><p>Accuracies in %, Δ in percentage points "
            f"(selected {_e(strength(result.selected))} − reference "
            f"{_e(strength(result.reference))}), "
            f"{_e(_confidence(result))}% interval, q-value "
            f"({_e(result.meta.get('correction', 'bh'))}). Click a column header to sort.</p>"
        )
        body.append(_class_table(result.classes, "per-class"))
        body.append(_groups_section(result, images))

    body.append("<h2>Class-aware selection</h2>")
    body.append(_class_aware_section(result))
    body.append(_figure("class_aware", images, axis))
    if result.fixes:
        body.append("<h2>The fix frontier</h2>")
        body.append(_fix_section(result))
        body.append(_figure("fix_frontier", images, axis))
    refit = (result.class_aware or {}).get("refit")
    if refit:
        body.append("<h2>The fix: class-aware refit</h2>")
        body.append(_refit_section(result, refit))
        body.append(_figure("refit", images, axis))
    grouped = (result.class_aware or {}).get("group_refit")
    if grouped:
        body.append("<h2>The fix: group-aware refit</h2>")
        body.append(_refit_section(result, grouped, "group_refit"))
        body.append(_figure("group_refit", images, axis))
    reweight = (result.class_aware or {}).get("reweight")
    if reweight:
        body.append(f"<h2>The fix: worst-class reweighting ({_e(reweight.get('method'))})</h2>")
        body.append(_refit_section(result, reweight, "reweight"))
        body.append(_figure("reweight", images, axis))
        body.append(_figure("class_weights", images, axis))

    if result.transfer is not None:
        downstream = result.transfer
        body.append("<h2>Transfer</h2>")
        body.append(f'<p class="headline" id="transfer-headline">{_e(headline(downstream))}</p>')
        if downstream.notes:
            items = "".join(f"<li>{_n(n)}</li>" for n in downstream.notes)
            body.append(f'<section class="notes"><ul>{items}</ul></section>')
        body.append(_figure("transfer", images, axis))
        body.append(_class_table(downstream.classes, "transfer-classes"))

    body.append(_footer(result.meta))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def _figure(name: str, images: Mapping[str, bytes], axis: str) -> str:
    if name not in images:
        return ""
    alt = _ALT[name].format(axis=axis)
    payload = base64.b64encode(images[name]).decode("ascii")
    return (
        f'<figure id="fig-{name}"><img src="data:image/png;base64,{payload}" '
        f'alt="{_e(alt)}" data-figure="{name}">'
        f"<figcaption>{_e(alt)} (also figures/{name}.png)</figcaption></figure>"
    )


# (header, column, formatter) for the sortable per-class table.
_COLUMNS: Sequence[tuple[str, str, Callable[[Any], str]]] = (
    ("class", "class", literal),
    ("reference %", "acc_reference", pct),
    ("selected %", "acc_selected", pct),
    ("Δ pts", "delta", points),
    ("Δ low", "delta_low", points),
    ("Δ high", "delta_high", points),
    ("p", "p_value", lambda v: f"{float(v):.3g}" if finite(v) else "n/a"),
    ("q (BH)", "q_value", lambda v: f"{float(v):.3g}" if finite(v) else "n/a"),
    ("verdict", "verdict", str),
    ("own best", "own_best", strength),
    ("own best %", "acc_own_best", pct),
)


def _class_table(classes: pd.DataFrame, table_id: str) -> str:
    columns = [c for c in _COLUMNS if c[1] in classes.columns]
    head = "".join(f'<th scope="col" data-key="{_e(c)}">{_e(h)}</th>' for h, c, _ in columns)
    rows = []
    ordered = classes.sort_values("delta") if "delta" in classes else classes
    for _, row in ordered.iterrows():
        cells = []
        for _, column, fmt in columns:
            value = row[column]
            # data-v holds the raw number so sorting is numeric, not lexicographic.
            raw = f' data-v="{_e(value)}"' if finite(value) else ""
            cells.append(f"<td{raw}>{_e(fmt(value))}</td>")
        verdict = str(row.get("verdict", "none"))
        attrs = (
            f' class="{_e(verdict)}" data-class="{_e(row["class"])}"'
            f' data-delta="{_e(row.get("delta", ""))}" data-q="{_e(row.get("q_value", ""))}"'
            f' data-verdict="{_e(verdict)}"'
        )
        rows.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    table = (
        f'<table class="sortable" id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    if len(rows) <= SCROLL_ROWS:
        return table
    return (f'<p class="scroll-note">{len(rows):,} classes, worst Δ first; the table scrolls '
            "(all of it is in classes.csv).</p>"
            f'<div class="scroll">{table}</div>')


def _groups_section(result: StudyResult, images: Mapping[str, bytes]) -> str:
    """Which group pays: one row per group of the coarsest level, worst first, each opening
    (``<details>``, no script) to its sub-groups and, at the finest level, its classes."""
    from classgap.report.groups import correction_text, group_sentence

    g = result.groups
    if g is None:
        return ""
    head = "".join(f"<span>{h}</span>" for h in _TREE_HEAD)
    tree = _GroupTree(result, g)
    rows = "".join(tree.node(0, row) for row in tree.children(0, None))
    return (f'<h2 id="groups">Which group pays</h2>'
            f'<p class="headline" id="group-headline">{_e(group_sentence(result))}</p>'
            f"<p>Groups from {_n(g.source)}. Δ in points (selected − reference) pooled over "
            "each group's test images, with its interval from the same test as per class; "
            f"q-value ({_e(correction_text(g.correction))} over the groups of a level); "
            "<em>tree</em>: the hierarchical test, which tests the top level first and looks "
            f"inside a group only when it finds it ({_n(g.method)}: {_n(g.bound)}). A group "
            "whose change is not significant is within noise, whatever its Δ. Groups are "
            "worst first and open to their groups and classes (all of it is in groups.csv "
            "and group_tree.csv).</p>"
            + _figure("groups", images, result.axis)
            + f'<div class="tree" id="group-tree"><div class="tree-head"><span class="cells">'
            f"{head}</span></div>{rows}</div>")


_TREE_HEAD = ("group / class", "classes", "Δ pts [interval]", "q", "verdict", "tree")


def _worst_first(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as records, by Δ, worst first (no Δ last)."""
    return frame.sort_values("delta", kind="stable", na_position="last").to_dict("records")


class _GroupTree:
    """The rows of the group tree, looked up once: each level's groups by parent, the finest
    groups' classes, and the tree test's nodes by (level, name)."""

    def __init__(self, result: StudyResult, g: StudyGroups) -> None:
        self.result, self.levels = result, g.levels
        self.by_parent: list[dict[Any, list[dict[str, Any]]]] = []
        for i, level in enumerate(g.levels):
            rows: dict[Any, list[dict[str, Any]]] = {}
            for row in _worst_first(g.level(level)):
                rows.setdefault(None if i == 0 else str(row["parent"]), []).append(row)
            self.by_parent.append(rows)
        finest = dict(zip(g.classes["class"].astype(str), g.classes[g.levels[-1]].astype(str),
                          strict=True))
        self.members: dict[str, list[dict[str, Any]]] = {}
        for row in _worst_first(result.classes):
            self.members.setdefault(finest.get(str(row["class"]), ""), []).append(row)
        self.nodes = {(str(n["level"]), str(n["node"])): n for n in g.tree.to_dict("records")}

    def children(self, depth: int, parent: str | None) -> list[dict[str, Any]]:
        return self.by_parent[depth].get(parent, [])

    def node(self, depth: int, row: Mapping[str, Any]) -> str:
        """One group as ``<details>``: its row as the summary, its children inside."""
        level, group = self.levels[depth], str(row["group"])
        if depth + 1 < len(self.levels):
            inner = "".join(self.node(depth + 1, child)
                            for child in self.children(depth + 1, group))
        else:
            inner = "".join(
                f'<div class="leaf {_e(c.get("verdict", "none"))}" data-class="{_e(c["class"])}">'
                f'{self.cells(str(c["class"]), "class", "", c)}</div>'
                for c in self.members.get(group, []))
        n = int(row["n_classes"])
        summary = self.cells(group, level, f"{n} class{'' if n == 1 else 'es'}", row)
        return (f'<details class="{_e(row.get("verdict", "none"))}" data-level="{_e(level)}" '
                f'data-group="{_e(group)}"><summary>{summary}</summary>{inner}</details>')

    def cells(self, name: str, level: str, size: str, row: Mapping[str, Any]) -> str:
        from classgap.report.groups import tree_text, verdict_text

        q: Any = row.get("q_value")
        node = self.nodes.get((level, name))
        cells = (f'<span class="g-name">{_n(name)} <span class="lvl">{_n(level)}</span></span>'
                 f"<span>{_e(size)}</span><span>{_e(points(row.get('delta')))} "
                 f"[{_e(points(row.get('delta_low')))}, {_e(points(row.get('delta_high')))}]"
                 f"</span><span>{_e(f'{float(q):.3g}' if finite(q) else 'n/a')}</span>"
                 f"<span>{_e(verdict_text(row.get('verdict'), self.result))}</span>"
                 f"<span>{_e(tree_text(node))}</span>")
        return f'<span class="cells">{cells}</span>'


def _selection_summary(result: StudyResult) -> str:
    val = result.validation
    lines = [
        f"<li>Axis <code>{_e(result.axis)}</code>, strengths in sweep order: "
        f"{_e(', '.join(strength(s) for s in result.strengths))}.</li>",
        f"<li>Reference (regularizer off): <strong>{_e(strength(result.reference))}</strong>; "
        f"selected on validation (best mean over seeds): "
        f"<strong>{_e(strength(result.selected))}</strong>.</li>",
    ]
    p_value = (result.mean_gain or {}).get("p_value")
    if p_value is not None and finite(p_value):
        lines.append(f"<li>Mean gain p-value: {_e(f'{float(p_value):.3g}')}.</li>")
    detect = result.meta.get("detectable_drop")
    if detect:
        from classgap.report.terminal import detectable_text

        lines.append(f'<li id="detectable-drop">{_n(detectable_text(detect))}</li>')
    if not val.empty and {"strength", "val_mean"} <= set(val.columns):
        cols = [c for c in ("val_mean", "val_std", "test_mean", "test_std") if c in val]
        head = "".join(f"<th>{_e(c)} %</th>" for c in cols)
        body = "".join(
            f"<tr><td>{_e(strength(r['strength']))}</td>"
            + "".join(f"<td>{_e(pct(r[c]))}</td>" for c in cols)
            # iterrows upcasts the int column to float: print 3, not 3.0.
            + (f"<td>{_e(strength(r['n_seeds']))}</td>" if "n_seeds" in val else "")
            + "</tr>"
            for _, r in val.iterrows()
        )
        seeds = "<th>seeds</th>" if "n_seeds" in val else ""
        table = (
            f'<table id="validation"><thead><tr><th>strength</th>{head}{seeds}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
        )
    else:
        table = ""
    return f'<ul id="selection">{"".join(lines)}</ul>{table}'


def _named(count: int, names: Sequence[str]) -> str:
    """``count`` and up to :data:`HEADLINE_NAMES` of the names, the rest counted."""
    if not names:
        return str(count)
    shown = ", ".join(literal(n) for n in names[:HEADLINE_NAMES])
    more = f", {len(names) - HEADLINE_NAMES} more" if len(names) > HEADLINE_NAMES else ""
    return f"{count} ({shown}{more})"


def _drop_text(row: Any) -> str:
    return _named(int(row["n_drop"]), list(row.get("drop_classes") or []))


def _confidence(result: StudyResult) -> str:
    return f"{100 * (1 - float(result.meta.get('alpha', 0.05))):g}"


def _gain_text(row: Any) -> str:
    return _named(int(row["n_gain"]), list(row.get("gain_classes") or []))


def _strength_section(result: StudyResult) -> str:
    """Every strength against the reference: who pays even where validation keeps it."""
    t = result.by_strength
    if t is None or t.empty:
        return ""
    rows = []
    for _, r in t.iterrows():
        ref = strength(r["strength"]) == strength(result.reference)
        delta = "reference" if ref else (f"{points(r['delta'])} [{points(r['delta_low'])}, "
                                         f"{points(r['delta_high'])}]")
        worst = "–" if ref or r["worst_class"] is None else \
            f"{literal(r['worst_class'])} ({points(r['worst_delta'])})"
        mark = " (selected)" if r["selected"] else ""
        rows.append(f"<tr><td>{_e(strength(r['strength']) + mark)}</td><td>{_e(pct(r['val_mean']))}"
                    f"</td><td>{_e(pct(r['test_mean']))}</td><td>{_e(delta)}</td>"
                    f"<td>{_e('–' if ref else _drop_text(r))}</td>"
                    f"<td>{_e('–' if ref else _gain_text(r))}</td>"
                    f"<td>{_e(worst)}</td></tr>")
    return ("<h2>Every strength against the reference</h2><p>Mean test change in points with "
            "its 95% interval; classes whose change is significant (BH); the class that "
            "changes most for the worse.</p>"
            '<table id="by-strength"><thead><tr><th>strength</th><th>val mean %</th>'
            "<th>test mean %</th><th>Δ mean pts</th><th>classes dropping</th>"
            "<th>classes gaining</th><th>worst class (Δ pts)</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _failed_section(result: StudyResult) -> str:
    """The runs that look collapsed, and whether the statistics left them out."""
    t = result.failed_runs
    if t is None or t.empty:
        return ""
    rows = "".join(f"<tr><td>{_e(strength(r['strength']))}</td><td>{_e(r['seed'])}</td>"
                   f"<td>{_e(pct(r['val_acc']))}</td><td>{_e(pct(r['train_acc']))}</td>"
                   f"<td>{'left out' if r['excluded'] else 'kept'}</td>"
                   f"<td>{_n(r['reason'])}</td></tr>" for _, r in t.iterrows())
    return ("<h2>Runs that look failed</h2><p>Far below the other seeds of their strength "
            "(median − max(3.5 × 1.4826 × MAD, 5 points), validation or training accuracy), "
            "or at chance: a collapsed training, not the regularizer's effect. "
            "<code>--exclude-failed</code> leaves them out of the statistics.</p>"
            '<table id="failed-runs"><thead><tr><th>strength</th><th>seed</th>'
            "<th>val %</th><th>train %</th><th>statistics</th><th>why</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _class_aware_section(result: StudyResult) -> str:
    aware = result.class_aware or {}
    if not aware:
        return "<p>No class-aware selection was computed.</p>"
    max_drop = aware.get("max_drop")
    pick = aware.get("selected")
    parts = []
    if pick is None:
        parts.append(
            f"<p>No strength keeps every class within {_e(max_drop)} points of the reference.</p>"
        )
    else:
        val = aware.get("val_mean")
        val_text = f" (mean validation accuracy {_e(pct(val))}%)" if finite(val) else ""
        parts.append(
            f'<p id="class-aware-pick">Best mean validation accuracy with no class dropping '
            f"significantly by more than {_e(max_drop)} points: <strong>{_e(result.axis)} = "
            f"{_e(strength(pick))}</strong>{val_text}; the usual pick is "
            f"{_e(strength(result.selected))}."
            "</p>"
        )
    vector = aware.get("per_class_strengths")
    if isinstance(vector, Sequence) and not isinstance(vector, str):
        # The analysis gives one strength per class in class-index order.
        vector = dict(zip(result.classes["class"], vector, strict=False))
    if isinstance(vector, Mapping) and vector:
        rows = "".join(
            f"<tr><td>{_n(c)}</td><td>{_e(strength(s))}</td></tr>" for c, s in vector.items()
        )
        parts.append(
            f"<details><summary>Per-class strength vector ({_per_class_mechanism(result.axis)})"
            "</summary><table id=\"per-class-strengths\"><thead><tr><th>class</th>"
            f"<th>strength</th></tr></thead><tbody>{rows}</tbody></table></details>"
        )
    return "".join(parts)


#: Why a knob has no per-class version, where the knob is known by name.
_SHARED_KNOBS = {
    "optim.weight_decay": "weight decay shrinks the weights that every class shares",
    "model.dropout": "dropout drops units of the layers that every class shares",
    "optim.lr": "the learning rate steps the weights that every class shares",
}


def _per_class_mechanism(axis: str) -> str:
    """What the per-class strength vector of ``axis`` would be trained as (HTML), or why it
    is a diagnostic only: the axis has no per-class version."""
    from classgap.analysis.refit import check_refit_axis
    from classgap.errors import ClassgapError

    knob = f"<code>{_e(axis)}</code>"
    try:
        check_refit_axis(axis)
    except ClassgapError:
        section = axis.partition(".")[0]
        why = _SHARED_KNOBS.get(axis) or (
            "it mixes pairs of samples of two classes" if section == "aug" else
            "it acts on the model that every class shares" if section in ("optim", "model")
            else "classgap cannot set it per class")
        return (f"the best strength of each class on validation; a diagnostic only: {knob} "
                f"has no per-class version: {why}")
    if axis == "optim.label_smoothing":
        return ("class-conditional label smoothing: the targets of class y smoothed with its "
                "own ε<sub>y</sub>")
    return f"class-conditional augmentation: the images of each class get its own {knob}"


def _refit_section(result: StudyResult, refit: Mapping[str, Any], kind: str = "refit") -> str:
    """A fix's verdict and a before/after table: reference, selected, the fix per class."""
    from classgap.report.terminal import refit_line

    after = {str(r["class"]): r for r in refit["vs_reference"]["classes"]}
    rows = []
    for _, r in result.classes.iterrows():
        a = after.get(str(r["class"]), {})
        cls = "drop" if a.get("verdict") == "drop" else ""
        rows.append(
            f'<tr class="{cls}"><td>{_n(r["class"])}</td><td>{_e(pct(r["acc_reference"]))}</td>'
            f"<td>{_e(pct(r['acc_selected']))}</td><td>{_e(points(r['delta']))} "
            f"({_e(r['verdict'])})</td><td>{_e(pct(a.get('acc_candidate')))}</td>"
            f"<td>{_e(points(a.get('delta')))} ({_e(a.get('verdict', 'n/a'))})</td></tr>")
    if kind == "refit":
        what = ("The per-class strength vector (each class its best strength on validation) "
                "trained as a class-conditional recipe (each class its own "
                f"<code>{_e(result.axis)}</code>)")
    elif kind == "group_refit":
        what = ("The per-class strength vector with each class that pays on validation "
                f"giving its strength to its confusion group ({_groups(refit['groups'])}), "
                "trained as a class-conditional recipe")
    else:
        what = (f"The selected strength trained with <code>loss.reweight="
                f"{_e(refit.get('method'))}</code> (class weights updated each epoch from the "
                "training statistics)")
    return (f'<p id="{kind}-verdict">{_e(refit_line(dict(refit), kind).plain)}</p>'
            f"<p>{what} on seeds {_e(refit.get('seeds'))}, audited with the study's tests. "
            "Accuracies in %, Δ in points versus the reference.</p>"
            f'<table id="{kind}-classes"><thead><tr><th>class</th><th>reference</th>'
            f"<th>selected</th><th>Δ selected</th><th>{kind}</th><th>Δ {kind}</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _groups(groups: Sequence[Mapping[str, Any]]) -> str:
    """``Shirt (−1.05 pts on validation, strength 0) → T-shirt/top, Pullover`` per group."""
    return "; ".join(
        f"{_n(g['class'])} ({_e(points(g['drop'] / 100))} pts on validation, strength "
        f"{_e(g['strength'])}) → {', '.join(_n(m['class']) for m in g['members']) or 'none'}"
        for g in groups)


def _fix_section(result: StudyResult) -> str:
    """The best fix (or that none meets the target) and the frontier table."""
    from classgap.report.terminal import FIX_COLUMNS, best_fix_sentence, fix_cells

    best = result.best_fix()
    head = "".join(f"<th>{_e(c)}</th>" for c in FIX_COLUMNS)
    rows = []
    for fix in result.fixes:
        cells = fix_cells(dict(fix))
        cls = ("best" if best is not None and fix["name"] == best["name"] else
               "drop" if fix.get("below_reference") else "")
        rows.append(f'<tr class="{cls}">' + "".join(f"<td>{_n(c)}</td>" for c in cells)
                    + "</tr>")
    tuned = next((f["tuned_on"] for f in result.fixes if f["kind"] == "rule"), None)
    how = (f"<p>The post-hoc rule (per-class weights on the selected strength's probabilities, "
           f"no retraining) is shown on seeds it was not tuned on: {_e(tuned)}; the adjusted "
           "test predictions of every fold are pooled for the audit. The rule for your own "
           "files, fit on every seed's validation runs, is <code>fix_rule.json</code> "
           "(<code>classgap fix apply</code>, <code>classgap compare --rule</code>).</p>"
           if tuned else "")
    return (f'<p id="best-fix" class="headline">{_e(best_fix_sentence(result))}</p>'
            "<p>Every fix audited against the reference and the selected strength with the "
            "study's test; Δ in points with 95% intervals; cost: extra training runs and "
            "models evaluated per image.</p>" + how
            + f'<table id="fix-frontier"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _footer(meta: Mapping[str, Any]) -> str:
    def short(v: Any) -> Any:  # 4 significant digits: provenance, not a results table
        if isinstance(v, float):
            return float(f"{v:.4g}")
        if isinstance(v, Mapping):
            return {k: short(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [short(x) for x in v]
        return v

    shown = {k: v for k, v in (meta or {}).items() if k != "detectable_drop"}  # in the summary
    # A path or a command is one line of literal text, as a class name is; other values JSON.
    items = "".join(
        f"<dt>{_e(k)}</dt><dd>"
        f"{_n(v) if isinstance(v, str) else _e(json.dumps(short(v), default=str))}</dd>"
        for k, v in shown.items()
    )
    return f'<footer id="provenance"><h2>Provenance</h2><dl>{items}</dl></footer>'


# --------------------------------------------------------------------------- files


def _png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    # Strength columns may mix numbers and strings ("off", 0.5); Arrow needs one type per
    # column, so mixed object columns are stored as text.
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object:
            values = safe[column].dropna()
            numeric = all(isinstance(v, Real) and not isinstance(v, bool) for v in values)
            text = all(isinstance(v, str) for v in values)
            if not (numeric or text):
                safe[column] = safe[column].map(lambda v: v if v is None else str(v))
    buffer = io.BytesIO()
    safe.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, data, fsync=True)  # a report is meant to be kept and shared (fsync)
