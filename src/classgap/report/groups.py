"""Which group pays, in words: the sentence the terminal prints and the report leads with.

Plain text built from :class:`~classgap.analysis.groups.StudyGroups` (names through
:func:`~classgap._format.literal`, never escaped here: the HTML report escapes, the terminal
prints :class:`rich.text.Text`). It claims only what the statistics show: a group whose change
is not significant at its level is "within seed noise", however large its Δ.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.text import Text

from classgap._format import finite, literal, points, pvalue
from classgap.analysis.groups import StudyGroups
from classgap.analysis.result import StudyResult

__all__ = ["correction_text", "group_line", "group_sentence", "tree_text", "verdict_text"]

SHOWN = 3
"""Other paying groups a sentence names before it counts the rest."""


def verdict_text(verdict: Any, result: StudyResult) -> str:
    """``"pays"``, ``"gains"``, or that the change is within noise (seed noise when every
    strength has several seeds)."""
    if verdict == "drop":
        return "pays"
    if verdict == "gain":
        return "gains"
    seeds = result.meta.get("n_seeds") or [1]
    return "within seed noise" if min(seeds) >= 2 else "within noise"


def tree_text(node: dict[str, Any] | None) -> str:
    """The tree test's word for a node: found, not found, or not tested (its group was not
    found, so the procedure never looked inside it)."""
    if node is None:
        return "–"
    if not bool(node.get("tested", True)):
        return "not tested"
    return "found" if bool(node.get("rejected")) else "not found"


def _change(row: Any) -> str:
    """``-0.92 pts [-1.40, -0.45], q = 0.004``."""
    q = row.get("q_value")
    return (f"{points(row['delta'])} pts [{points(row.get('delta_low'))}, "
            f"{points(row.get('delta_high'))}], q = {pvalue(q) if finite(q) else 'n/a'}")


def correction_text(correction: str) -> str:
    """``"BH"``, ``"Holm"`` or ``"no correction"``."""
    return {"bh": "BH", "holm": "Holm", "none": "no correction"}.get(correction, correction)


def _worst_member(result: StudyResult, g: StudyGroups, level: str, group: str) -> str:
    """The class of ``group`` whose change is worst, with its interval and q."""
    names = set(g.members(level, group))
    inside = result.classes[result.classes["class"].astype(str).isin(names)]
    inside = inside.sort_values("delta", kind="stable", na_position="last")
    if inside.empty:
        return ""
    row = inside.iloc[0]
    return f"; worst class inside: {literal(row['class'])} {_change(row)}"


def group_sentence(result: StudyResult) -> str | None:
    """One sentence: the group that pays (at the coarsest level where one does), with its
    change, interval and q, and its worst class. Where no group drops as a whole, the drop the
    tree test finds inside a group (a class that pays while its group gains or stays within
    noise), or else that the worst group is within noise. None without groups.

    Examples
    --------
    ``Group that pays (group, BH over its 5 groups): tops -0.92 pts [-1.40, -0.45],
    q = 0.004 (4 classes); worst class inside: Shirt -1.78 pts [-2.85, -0.72], q = 0.002.``

    ``No group drops as a whole (q < 0.05, BH over the groups of each level); inside tops
    (+0.88 pts [+0.37, +1.39], q = 0.002: it gains as a whole) the tree test finds Shirt
    paying: -1.78 pts [-2.85, -0.72], q = 0.007.``
    """
    g = result.groups
    if g is None or g.groups.empty:
        return None
    paying = g.paying()
    if paying.empty:
        return _no_group_pays(result, g)
    level = str(paying["level"].iloc[0])
    here = paying[paying["level"] == level]
    row = here.iloc[0]
    n_groups = len(g.level(level))
    text = (f"Group that pays ({literal(level)}, {correction_text(g.correction)} over its "
            f"{n_groups} groups): "
            f"{literal(row['group'])} {_change(row)} ({int(row['n_classes'])} classes)"
            f"{_worst_member(result, g, level, str(row['group']))}")
    others = here.iloc[1:]
    if not others.empty:
        named = ", ".join(f"{literal(r['group'])} {points(r['delta'])} pts"
                          for _, r in others.head(SHOWN).iterrows())
        more = f" and {len(others) - SHOWN} more" if len(others) > SHOWN else ""
        text += f"; also paying: {named}{more}"
    return text + "."


def _no_group_pays(result: StudyResult, g: StudyGroups) -> str:
    """No group drops as a whole: the drop the tree finds inside one, else the worst group."""
    head = (f"No group drops as a whole (q < {g.alpha:g}, {correction_text(g.correction)} "
            "over the groups of each level)")
    inner = _drops_inside(g)
    if inner.empty:
        worst = g.groups.sort_values("delta", kind="stable", na_position="last").iloc[0]
        state = ("gains significantly" if worst["verdict"] == "gain"
                 else f"is {verdict_text(worst['verdict'], result)}")
        return (f"{head}; the worst, {literal(worst['group'])} ({literal(worst['level'])}) "
                f"{_change(worst)}, {state}.")
    node = inner.iloc[0]
    parent_level = g.levels[int(node["depth"]) - 1]
    parent = g.groups[(g.groups["level"] == parent_level)
                      & (g.groups["group"].astype(str) == str(node["parent"]))].iloc[0]
    state = ("it gains" if parent["verdict"] == "gain"
             else f"{verdict_text(parent['verdict'], result)}")
    more = f" (and {len(inner) - 1} more drops the tree finds)" if len(inner) > 1 else ""
    return (f"{head}; inside {literal(parent['group'])} ({_change(parent)}: {state} as a "
            f"whole) the tree test finds {literal(node['node'])} paying: {_change(node)}"
            f"{more}.")


def _drops_inside(g: StudyGroups) -> pd.DataFrame:
    """The drops the tree test finds below its top level (sub-groups, classes), worst first."""
    tree = g.tree
    found = tree[tree["rejected"].astype(bool) & (tree["verdict"] == "drop")
                 & (tree["depth"].astype(int) > 0)]
    return found.sort_values("delta", kind="stable", na_position="last")


def group_line(result: StudyResult) -> Text | None:
    """:func:`group_sentence` for the terminal (red when a group, or a class inside one,
    pays)."""
    sentence = group_sentence(result)
    if sentence is None:
        return None
    g = result.groups
    paying = g is not None and not (g.paying().empty and _drops_inside(g).empty)
    return Text(sentence, style="bold red" if paying else "green")

