"""Turn audit results into terminal tables, JSON or CSV text (no computation here).

Every cell and every line that carries data goes to rich through :func:`cell` or
:func:`add_row` (:mod:`classgap._richtext`): as text, never parsed as markup, so a class called
``[background]`` or ``[/]`` prints as it is named.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.table import Table

from classgap._format import MISSING, finite, pct, points, pvalue
from classgap._richtext import add_row, cell

if TYPE_CHECKING:  # the audit and pandas load in ~1 s: not for `classgap --help`
    import pandas as pd

    from classgap.audit.compare import Comparison
    from classgap.audit.frame import ClassAudit
    from classgap.catalog import Listing

FORMATS = ("table", "json", "csv")

VERDICT_STYLE = {"drop": "bold red", "gain": "bold green", "none": "dim", "no samples": "dim"}
NO_SAMPLES = "no samples"  # a class absent from the test set: its accuracy is unknown, not 0%

MAX_ROWS = 30
"""Per-class tables with more classes than this list only the worst and the best (``--all``:
every class); JSON and CSV always hold every class."""
WORST_ROWS, BEST_ROWS = 15, 5


def shown_rows(order: pd.Index, show_all: bool) -> tuple[pd.Index, pd.Index, int]:
    """The rows a per-class table lists: ``(worst, best, n_hidden)``.

    ``order`` runs from worst to best. Small tables and ``show_all`` list every row (as
    ``worst``, nothing hidden); larger ones the first :data:`WORST_ROWS` and the last
    :data:`BEST_ROWS`, with the count of the rows between.
    """
    if show_all or len(order) <= MAX_ROWS:
        return order, order[:0], 0
    return order[:WORST_ROWS], order[-BEST_ROWS:], len(order) - WORST_ROWS - BEST_ROWS


def hidden_row(table: Table, n_hidden: int, what: str) -> None:
    add_row(table, f"… {n_hidden:,} more {what}", *([""] * (len(table.columns) - 1)),
            style="dim italic")


def make_console(**kwargs: Any) -> Console:
    """A rich console; piped output (CI logs, ``| less``) gets 120 columns instead of 80."""
    console = Console(highlight=False, **kwargs)
    return console if console.is_terminal else Console(highlight=False, width=120, **kwargs)








def audit_tables(result: ClassAudit, *, show_all: bool = False) -> list[Table]:
    """Per-class table and the disparity summary, accuracies in percent.

    Up to :data:`MAX_ROWS` classes (or with ``show_all``) the table lists every class in class
    order; beyond, the worst and the best classes by accuracy and a count of the others.
    """
    level = f"{100 * result.confidence:g}%"
    runs = f", mean of {result.n_runs} runs" if result.n_runs > 1 else ""
    table = result.to_frame()
    everything = show_all or len(table) <= MAX_ROWS
    order = table.index if everything else table.sort_values(
        "accuracy", kind="stable", na_position="last").index
    worst_rows, best_rows, n_hidden = shown_rows(order, show_all)
    scope = "" if everything else (f"; the {len(worst_rows)} worst and {len(best_rows)} best "
                                   f"of {len(table):,} classes, --all for every class")
    per_class = Table(title=f"Per-class accuracy ({level} {result.interval} interval{runs}"
                            f"{scope})")
    extra = [c for c in table.columns if c.startswith("top") and c.endswith("_accuracy")]
    columns = ["class", "support", "accuracy", f"{level} CI",
               *(c.removesuffix("_accuracy") for c in extra), "precision", "f1"]
    for name in columns:  # a long class name folds onto more lines rather than losing its end
        per_class.add_column(name, justify="left" if name == "class" else "right",
                             overflow="fold" if name == "class" else "ellipsis")
    worst = table["accuracy"].idxmin() if table["accuracy"].notna().any() else None

    def add(i: Any) -> None:
        row = table.loc[i]
        empty = int(row["support"]) == 0  # no test samples: no accuracy, not 0%
        add_row(
            per_class, row["class"], f"{int(row['support'])}",
            NO_SAMPLES if empty else pct(row["accuracy"], 1),
            "" if empty else f"[{pct(row['accuracy_low'], 1)}, {pct(row['accuracy_high'], 1)}]",
            *(pct(row[c], 1) for c in extra), pct(row["precision"], 1), pct(row["f1"], 1),
            style="bold red" if i == worst else "dim" if empty else None,
        )

    for i in worst_rows:
        add(i)
    if n_hidden:
        hidden_row(per_class, n_hidden, "classes")
    for i in best_rows:
        add(i)
    return [per_class, summary_table(result)]


def summary_table(result: ClassAudit) -> Table:
    """The audit's overall accuracy and disparity summary, with their intervals."""
    level = f"{100 * result.confidence:g}%"
    method = result.meta.get("method", "")
    summary = Table(title=f"Overall and disparity ({level} {method} bootstrap intervals)")
    for name in ("metric", "estimate", "low", "high"):
        summary.add_column(name, justify="left" if name == "metric" else "right")
    for metric, row in result.summary.iterrows():
        add_row(summary, metric, *(pct(row[c], 1) for c in ("estimate", "low", "high")))
    return summary


def comparison_tables(result: Comparison, *, show_all: bool = False) -> list[Table]:
    """Per-class Δ table, sorted worst drop first, and an overall line.

    Beyond :data:`MAX_ROWS` classes (unless ``show_all``) the table lists the largest drops and
    the largest gains, and counts the classes between with their verdicts.
    """
    o = result.overall
    level = f"{100 * o['confidence']:g}%"
    rows = result.classes.sort_values("delta", kind="stable", na_position="last")
    worst_rows, best_rows, n_hidden = shown_rows(rows.index, show_all)
    scope = "" if not n_hidden else (f"; the {len(worst_rows)} largest drops and "
                                     f"{len(best_rows)} largest gains of {len(rows):,} classes, "
                                     "--all for every class")
    title = (f"Per-class change, candidate − baseline (points; {level} intervals; "
             f"{o['test']} test, {o['correction']} q-values, α = {o['alpha']:g}{scope})")
    table = Table(title=title)
    for name in ("class", "support", "baseline", "candidate", "Δ", f"{level} CI", "p", "q",
                 "verdict"):
        table.add_column(name, justify="left" if name in ("class", "verdict") else "right",
                         overflow="fold" if name == "class" else "ellipsis")

    def add(i: Any) -> None:
        row = rows.loc[i]
        verdict = NO_SAMPLES if int(row["support"]) == 0 else str(row["verdict"])
        add_row(
            table, row["class"], f"{int(row['support'])}", pct(row["acc_baseline"], 1),
            pct(row["acc_candidate"], 1), points(row["delta"], 1),
            f"[{points(row['delta_low'], 1)}, {points(row['delta_high'], 1)}]",
            pvalue(row["p_value"]), pvalue(row["q_value"]),
            cell(verdict, VERDICT_STYLE.get(verdict, "")),
        )

    for i in worst_rows:
        add(i)
    if n_hidden:
        hidden = rows.loc[~rows.index.isin(worst_rows.append(best_rows)), "verdict"]
        counts = hidden.value_counts()
        verdicts = ", ".join(f"{int(counts[v]):,} {v}" for v in ("drop", "gain") if v in counts)
        hidden_row(table, n_hidden, f"({verdicts or 'no verdict'})")
    for i in best_rows:
        add(i)
    return [table, overall_table(o)]


def overall_table(o: dict[str, Any]) -> Table:
    """One line: a comparison's overall accuracies, Δ with its interval, and the counts of
    classes dropping and gaining (``Comparison.overall``)."""
    level = f"{100 * o['confidence']:g}%"
    overall = Table(title="Overall accuracy")
    for name in ("baseline", "candidate", "Δ", f"{level} CI", "p", "classes dropping",
                 "classes gaining"):
        overall.add_column(name, justify="right")
    add_row(
        overall, pct(o["acc_baseline"], 1), pct(o["acc_candidate"], 1), points(o["delta"], 1),
        f"[{points(o['delta_low'], 1)}, {points(o['delta_high'], 1)}]", pvalue(o["p_value"]),
        str(o["n_drop"]), str(o["n_gain"]),
    )
    return overall


def listing_table(listing: Listing) -> Table:
    """A :class:`~classgap.catalog.Listing` as a rich table."""
    table = Table(title=listing.title)
    for col in listing.columns:
        table.add_column(col, justify="right" if col in listing.right else "left")
    for row in listing.rows:
        add_row(table, *row)
    return table


def hessian_table(result: Any, title: str) -> Table:
    """Per-class Hessian summary of a :class:`~classgap.diagnostics.HessianResult`."""
    table = Table(title=cell(title))  # the title quotes a run directory
    for col in ("class", "n", "loss", "λ max", "λ min", "|λ min|/λ max", "trace"):
        table.add_column(col, justify="left" if col == "class" else "right",
                         overflow="fold" if col == "class" else "ellipsis")
    for row in result.to_frame().itertuples():
        add_row(table, row.name, str(row.n), f"{row.loss:.3f}", f"{row.top_eigenvalue:.3g}",
                      f"{row.bottom_eigenvalue:.3g}", f"{row.ratio:.3f}",
                      f"{row.trace:.3g} ± {row.trace_se:.2g}")
    return table


def train_line(result: Any, epochs: int) -> str:
    """One line (rich markup) on a finished run: accuracies, time and throughput."""
    val, test = (f"{pct(a)}%" if finite(a) else MISSING
                 for a in (result.val_accuracy, result.test_accuracy))
    return (f"val accuracy [bold]{val}[/], test accuracy [bold]{test}[/], "
            f"{epochs} epoch(s) in {result.wall_time:.1f} s "
            f"({result.images_per_second:,.0f} images/s)")


def seeds_table(results: Any, epochs: int) -> Table:
    """One row per seed of ``classgap train --seeds``."""
    table = Table(title=f"{len(results)} seeds, {epochs} epoch(s)")
    for col in ("seed", "val accuracy", "test accuracy", "images/s", "run directory"):
        table.add_column(col, justify="left" if col == "run directory" else "right")
    for r in results:
        add_row(table, str(r.config.train.seed), pct(r.val_accuracy), pct(r.test_accuracy),
                      f"{r.images_per_second:,.0f}", str(r.out_dir))
    return table


def study_line(plan: Any, where: Any) -> str:
    """``study: AXIS=V1,V2, S seed(s), N runs, W worker(s) → DIR`` before a study trains."""
    axes = "; ".join(f"{a.key}={','.join(map(str, a.values))}" for a in plan.axes)
    seeds = (f"{plan.seeds} seed(s)" if isinstance(plan.seeds, int)
             else f"seeds {','.join(map(str, plan.seeds))}")
    return f"study: {axes}, {seeds}, {where.n_runs} runs, {where.workers} worker(s) → " \
           f"{where.out_dir}"


def render_tables(tables: Sequence[RenderableType], *, width: int = 120) -> str:
    """Plain text of rich tables (and lines) for ``--out`` with ``--format table``."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, highlight=False)
    for t in tables:
        console.print(t)
    return buffer.getvalue()


def to_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"


def to_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def class_counts_frame(splits: dict[str, Any]) -> pd.DataFrame:
    """``data info``'s per-class counts: a row per class, a column per split (train, val,
    test), from :func:`~classgap.data.dataset_info`'s ``splits``."""
    import pandas as pd

    first = next(iter(splits.values()))
    return pd.DataFrame({"class": first["classes"],
                         **{split: s["class_counts"] for split, s in splits.items()}})
