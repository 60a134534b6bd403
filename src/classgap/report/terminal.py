"""A terminal summary of a study (rich): who pays, and what the average gain was."""

from __future__ import annotations

import math
import os
from numbers import Real
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from classgap._format import literal, pct, points, strength
from classgap._richtext import add_row
from classgap.analysis.result import StudyResult
from classgap.report.groups import group_line

__all__ = ["best_fix_sentence", "detectable_text", "fix_cells", "print_summary", "refit_line"]

TERMINAL_DROPS = 20
"""Dropping classes the terminal summary lists (worst first); the rest are counted."""








def _drops(row: Any) -> str:
    """``"2: Shirt, Coat"``: the count of significant drops and the first few classes."""
    names = list(row.get("drop_classes") or [])
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{int(row['n_drop'])}" + (f": {shown}" if names else "")


def detectable_text(detect: dict[str, Any]) -> str:
    """What the study's seeds can detect, and where to ask for more (terminal and HTML)."""
    from classgap.analysis.plan import detectable_sentence

    return f"{detectable_sentence(detect)}; classgap plan-seeds says how many seeds a given " \
        "drop needs."


FIX_NAMES = {"refit": "Class-aware refit (per-class strengths)",
             "group_refit": "Group-aware refit (strengths shared by confusion groups)",
             "reweight": "Selected strength + worst-class reweighting"}


def refit_line(refit: dict[str, Any], kind: str = "refit") -> Text:
    """One line: a fix (the class-aware refit, or the selected strength with worst-class
    reweighting) against the selected strength and the reference."""
    v = refit.get("verdict") or {}
    sel, ref = v.get("mean_vs_selected") or {}, v.get("mean_vs_reference") or {}

    def iv(d: dict[str, Any]) -> str:
        if d.get("delta") is None:
            return "n/a"
        return f"{d['delta']:+.2f} pts [{d['low']:+.2f}, {d['high']:+.2f}]"

    below = v.get("below_reference") or []
    below_text = ("no class significantly below the reference" if not below else
                  "below the reference: " + ", ".join(f"{literal(b['class'])} {b['delta']:+.1f}"
                                                       for b in below))
    met = v.get("target_met")
    return Text.assemble(
        (f"{FIX_NAMES[kind]}"
         + (f" ({refit['method']})" if refit.get("method") else "") + ": mean ", ""),
        (iv(sel), "bold"),
        (" vs the selected strength, ", ""), (iv(ref), "bold"), (" vs the reference; ", ""),
        (below_text, "green" if not below else "red"),
        (f"; target (none below the reference, ≤ {v.get('max_mean_cost', 0.3):g} pts below "
         f"the selected mean): ", ""),
        ("met" if met else "not met", "bold green" if met else "bold red"))


def best_fix_sentence(result: StudyResult) -> str:
    """The best fix that meets the target, or plainly that none does (terminal and HTML)."""
    from classgap.analysis.fixes import MAX_CLASS_COST, MAX_MEAN_COST

    target = (f"no class significantly below the reference, every class at most "
              f"{MAX_CLASS_COST:g} points below it, the mean at most {MAX_MEAN_COST:g} points "
              "below the selected strength's")
    best = result.best_fix()
    if best is None:
        return f"No fix meets the target ({target})."
    m, w = best["mean_vs_selected"], best["worst_class"]
    get = ""
    if best["kind"] == "rule":
        rule = result.fix_rule
        same = rule is not None and (rule.tolerance, rule.z) == (best["tolerance"], best["z"])
        get = (" The rule for your own prediction files (fit on every seed's validation runs) "
               "is fix_rule.json: classgap fix apply fix_rule.json PRED... --out DIR." if same
               else f" Fit it on your validation files with classgap fix fit --tolerance "
               f"{best['tolerance']:g} --z {best['z']:g}.")
    return (f"Best fix that meets the target: {best['name']}: mean {m['delta']:+.2f} pts vs the "
            f"selected strength, worst class {w['class']} {w['delta']:+.2f} pts vs the "
            f"reference, +{best['training_runs']} training runs, {best['inference_cost']}× "
            f"inference ({best['tuned_on']}). Target: {target}.{get}")


def fix_cells(fix: dict[str, Any]) -> list[str]:
    """A frontier row as text cells: fix, cost, mean Δ vs reference, mean Δ vs selected,
    worst class Δ vs reference, classes below the reference, target."""
    def iv(d: dict[str, Any] | None) -> str:
        if not d or d.get("delta") is None:
            return "n/a"
        if d.get("low") is None or d.get("high") is None:
            return f"{d['delta']:+.2f}"
        return f"{d['delta']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"

    cost = f"+{fix['training_runs']} runs, {fix['inference_cost']}×"
    if fix.get("error"):
        return [fix["name"], cost, "n/a", "n/a", "n/a", "n/a", f"not built: {fix['error']}"]
    w = fix.get("worst_class") or {}
    below = fix.get("below_reference") or []
    met = "–" if fix["kind"] == "none" else ("met" if fix["target_met"] else "not met")
    return [fix["name"], cost, iv(fix["mean_vs_reference"]), iv(fix["mean_vs_selected"]),
            f"{w.get('class')} {iv(w)}" if w else "n/a",
            ", ".join(below) if below else "none", met]


FIX_COLUMNS = ("fix", "cost (train, inference)", "mean Δ vs ref", "mean Δ vs selected",
               "worst class Δ vs ref", "significantly below ref", "target")


def print_summary(
    result: StudyResult,
    console: Console | None = None,
    *,
    report_path: str | os.PathLike[str] | None = None,
) -> None:
    """Print who pays for the selected strength, the mean gain, the notes and the report path.

    Parameters
    ----------
    result : StudyResult
        The analysed study.
    console : rich.console.Console, optional
        Where to print; a new stdout console by default. Pass ``Console(record=True)`` or one
        writing to a ``StringIO`` to capture the text.
    report_path : path, optional
        Printed as the last line so the user knows where to look next.

    Notes
    -----
    Class names are wrapped in :class:`rich.text.Text`, never parsed as console markup, so a
    class called ``[bold]x[/bold]`` prints literally; control characters in a name show as
    ``\\n``, ``\\x1b`` (:func:`classgap._format.literal`), so a name stays on its row.
    """
    console = console or Console()
    gain = result.mean_gain or {}
    console.print(
        Text.assemble(
            ("Selected ", ""),
            (literal(f"{result.axis} = {strength(result.selected)}"), "bold"),
            (literal(f" (reference {strength(result.reference)}): mean test accuracy "), ""),
            (f"{points(gain.get('delta'))} pts", "bold"),
            (f" [{points(gain.get('low'))}, {points(gain.get('high'))}]", ""),
        )
    )

    classes = result.classes
    drops = result.drops()
    alpha = float(result.meta.get("alpha", 0.05))
    correction = str(result.meta.get("correction", "bh"))
    if drops.empty:
        console.print(Text(f"No class dropped significantly (q < {alpha:g}).", style="green"))
    else:
        table = Table(title=Text(f"Classes that pay ({len(drops)} of {len(classes)}; "
                                 f"q < {alpha:g})"),
                      title_style="bold red")
        table.add_column("class", overflow="fold")  # a long name folds, whole
        table.add_column("reference %", justify="right")
        table.add_column("selected %", justify="right")
        table.add_column("Δ pts [95% interval]", justify="right", style="red", no_wrap=True)
        table.add_column(f"q ({correction})", justify="right")
        shown = drops.head(TERMINAL_DROPS)  # worst first; report.html and classes.csv hold all
        for _, row in shown.iterrows():
            q = row.get("q_value", math.nan)
            add_row(  # every cell as text: "[n/a, n/a]" would read as a markup tag
                table, row["class"],
                pct(row.get("acc_reference")),
                pct(row.get("acc_selected")),
                f"{points(row['delta'])} [{points(row.get('delta_low'))}, "
                f"{points(row.get('delta_high'))}]",
                f"{float(q):.3g}" if isinstance(q, Real) and math.isfinite(q) else "n/a",
            )
        if len(drops) > len(shown):
            table.add_row(Text(f"… {len(drops) - len(shown)} more (report.html, classes.csv)",
                               style="dim italic"), "", "", "", "")
        console.print(table)
    if (grouped := group_line(result)) is not None:  # which group pays, one line
        console.print(grouped)

    sweep = result.by_strength
    if sweep is not None and len(sweep) > 2:  # more than reference + selected: the whole sweep
        table = Table(title="Every strength against the reference")
        for col in ("strength", "val %", "test %", "Δ mean pts", "drops", "worst class"):
            table.add_column(col, justify="left" if col in ("strength", "drops", "worst class")
                             else "right")
        for _, row in sweep.iterrows():
            ref = strength(row["strength"]) == strength(result.reference)
            add_row(
                table, strength(row["strength"]) + (" *" if row["selected"] else ""),
                pct(row["val_mean"]), pct(row["test_mean"]),
                "reference" if ref else f"{points(row['delta'])} [{points(row['delta_low'])}, "
                                        f"{points(row['delta_high'])}]",
                "–" if ref else _drops(row),
                "–" if ref or row["worst_class"] is None
                else f"{row['worst_class']} ({points(row['worst_delta'])})")
        table.caption = "* selected on validation; drops: significant (q < alpha) class drops"
        console.print(table)

    if result.transfer is not None:  # the same analysis on the downstream linear probe
        down = result.transfer
        dgain = down.mean_gain or {}
        console.print(Text.assemble(
            ("Transfer (frozen backbones, linear probe): selected ", ""),
            (literal(strength(down.selected)), "bold"),
            (f", mean {points(dgain.get('delta'))} pts [{points(dgain.get('low'))}, "
             f"{points(dgain.get('high'))}], ", ""),
            (f"{len(down.drops())} class(es) drop significantly", "bold"),
        ))

    for kind in FIX_NAMES:
        outcome = (result.class_aware or {}).get(kind)
        if outcome:
            console.print(refit_line(outcome, kind))
            for group in outcome.get("groups") or ():
                console.print(Text(
                    f"  {literal(group['class'])} ({group['drop']:+.2f} pts on validation) "
                    f"gives {group['strength']} to "
                    + (", ".join(literal(m["class"]) for m in group["members"]) or "no class"),
                    "dim"))
    if result.fixes:
        table = Table(title="Fixes (points; the post-hoc rule audited on seeds it was not fit "
                            "on)")
        for col in FIX_COLUMNS:
            table.add_column(col, overflow="fold")
        for fix in result.fixes:
            add_row(table, *fix_cells(dict(fix)))
        console.print(table)
        best = result.best_fix()
        console.print(Text(literal(best_fix_sentence(result)),
                           style="bold green" if best is not None else "bold red"))
    detect = result.meta.get("detectable_drop")
    if detect:
        console.print(Text(literal(detectable_text(detect)), style="dim"))

    if result.notes:
        notes = Text("\n").join(Text(f"• {literal(n)}") for n in result.notes)
        console.print(Panel(notes, title="Notes", border_style="yellow"))
    if report_path is not None:
        console.print(Text.assemble(("Report: ", "bold"), (literal(report_path), "")))
