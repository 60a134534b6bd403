"""Typer commands. Each parses its options, calls one library function, and renders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperOption

from classgap._files import atomic_write
from classgap._richtext import add_row, cell
from classgap.cli import render

if TYPE_CHECKING:
    import pandas as pd

    from classgap.audit.groups import GroupMap


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """No type column for flags: typer 0.29 prints ``<bool>`` as if ``--quick`` took a value."""
    return None if self.is_flag else _TYPE_COLUMN(self, ctx)


_TYPE_COLUMN = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(
    name="classgap",
    help="Show which classes pay for a training recipe: per-class audits with sound statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = render.make_console()


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Correction(StrEnum):
    bh = "bh"
    holm = "holm"


class TreeMethod(StrEnum):  # classgap.audit.hierarchical.METHODS
    fdr = "fdr"
    fwer = "fwer"
    yekutieli = "yekutieli"


class Test(StrEnum):
    auto = "auto"
    crossed = "crossed"
    mcnemar = "mcnemar"
    welch = "welch"
    permutation = "permutation"


class Method(StrEnum):
    basic = "basic"
    percentile = "percentile"
    bca = "bca"


class Interval(StrEnum):
    auto = "auto"
    wilson = "wilson"
    bootstrap = "bootstrap"
    seeds = "seeds"


PRED_HELP = "Prediction files (.npz, .csv, .parquet, .pt); several files are several seeds."
CLASSES_OPT = typer.Option(None, "--classes", help="Class names: a .json file holding a list, "
                           "a text file with one name per line, or a JSON list inline "
                           "('[\"cat\", \"dog\"]'); default: from the files, else 0..K-1.")
N_BOOT_OPT = typer.Option(1000, "--n-boot", help="Bootstrap replicates.")
CONF_OPT = typer.Option(0.95, "--confidence", help="Interval level.")
SEED_OPT = typer.Option(0, "--seed", help="Seed of the bootstrap (same seed, same intervals).")
FORMAT_OPT = typer.Option(Format.table, "--format", "-f", help="Output format.")
OUT_OPT = typer.Option(None, "--out", "-o", help="Write the output to this file.")
RULE_OPT = typer.Option(None, "--rule", help="Audit the predictions adjusted by a rule file "
                        "from 'classgap fix fit' (needs logits or probs).")
ALL_OPT = typer.Option(False, "--all", help="List every class in the table (by default, "
                       "beyond 30 classes, the worst and the best; JSON and CSV hold every "
                       "class).")
GROUPS_OPT = typer.Option(None, "--groups", metavar="SPEC", help="Also test groups of classes: "
                          "a group map (CSV 'class,<level>,...', JSON, or an iNaturalist-2021 "
                          "categories JSON), a built-in map (fashion-mnist) or a CIFAR-100 "
                          "folder; a table per level, worst groups first.")
LEVEL_OPT = typer.Option(None, "--level", help="With --groups: the table of this level only "
                         "(JSON and CSV hold every level).")
EXPAND_OPT = typer.Option(None, "--expand", metavar="GROUP", help="With --groups: list the "
                          "classes inside GROUP (repeatable).")
TREE_LEVELS_OPT = typer.Option(None, "--tree-levels", metavar="LEVEL,...", help="With "
                               "--groups: the levels the hierarchical test goes down, coarsest "
                               "first (default all; on a deep taxonomy start near the groups "
                               "that can pay, e.g. genus: coarse levels dilute a few groups' "
                               "drop).")


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks on errors."),
) -> None:
    """classgap: which classes pay for a training recipe."""


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write(out, text)
        console.print(cell(f"wrote {out}", "dim"))


def _emit_csv(classes: Any, overall: dict[str, Any], out: Path | None,
              beside: Mapping[str, Any] | None = None) -> None:
    """The per-class CSV, and the overall summary (a CSV has one table) beside it, after the
    tables of ``beside`` (name -> frame: ``FILE.<name>.csv``)."""
    import pandas as pd

    _emit(render.to_csv(classes), out)
    if out is None:
        Console(stderr=True, soft_wrap=True).print(
            "note: the CSV holds the per-class table; the overall and disparity summary is in "
            "--format json (or --out FILE.csv writes it to FILE.overall.csv)" if not beside else
            "note: the CSV holds the per-class table, a column per level; --format json holds "
            "the rest, or --out FILE.csv writes it beside: "
            + ", ".join(f"FILE.{name}.csv" for name in [*beside, "overall"]), style="dim")
        return
    tables = {**(beside or {}), "overall": pd.json_normalize([overall])}  # accuracy.low, ...
    for name, frame in tables.items():
        _emit(render.to_csv(frame), out.with_name(f"{out.stem}.{name}{out.suffix or '.csv'}"))


def _group_reader(spec: str, level: str | None,
                  expand: list[str] | None) -> Callable[[tuple[str, ...]], GroupMap]:
    """What reads ``--groups`` once the class names are known, and checks ``--level`` and
    ``--expand`` against the map before any statistic is computed."""
    from classgap.cli.render_groups import group_view
    from classgap.data.groups import load_groups

    def read(classes: tuple[str, ...]) -> GroupMap:
        group_map = load_groups(spec, classes)
        group_view(group_map, level, expand or ())
        return group_map

    return read


def _detectable(accuracy: Any, support: Any, group_map: GroupMap, alpha: float = 0.05,
                correction: str = "bh") -> pd.DataFrame:
    """The smallest drop one group of each level, and one class, could show in a comparison
    of one run a side on this test set (:func:`~classgap.analysis.plan.detectable_by_level`).

    A class's Δ then has the variance of two models of its accuracy p whose errors are
    uncorrelated, 2 p (1 − p) / n (p shrunk to (x + ½) / (n + 1), so that a class right on
    every image still varies); models that err on the same images vary less.
    """
    import numpy as np

    from classgap.analysis.plan import detectable_by_level

    n = np.asarray(support, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    present = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (np.where(present, acc, 0.0) * n + 0.5) / (n + 1)
        image_var = np.where(present, 2 * p * (1 - p) / n, np.nan)
    return detectable_by_level(np.where(present, 0.0, np.nan), image_var, n, 2, group_map,
                               accuracy=acc, alpha=alpha, correction=correction)


def _no_group_options(level: str | None, expand: list[str] | None,
                      tree_levels: str | None = None, tree_method: str | None = None) -> None:
    from classgap._validation import fail

    if level is not None:
        raise fail("level", "come with --groups (the group map it picks a level of)", level)
    if expand:
        raise fail("expand", "come with --groups (the group map it opens a group of)",
                   expand[0])
    if tree_levels is not None:
        raise fail("tree_levels", "come with --groups (the group map whose levels it names)",
                   tree_levels)
    if tree_method is not None:
        raise fail("tree_method", "come with --groups (the tree of groups it tests)",
                   tree_method)


def _show(tables: list[Any], out: Path | None) -> None:
    """Terminal tables on the console, or as plain text in ``out``."""
    if out is not None:
        _emit(render.render_tables(tables), out)
        return
    for t in tables:
        console.print(t)


@app.command("audit")
def audit_cmd(
    predictions: list[Path] = typer.Argument(..., help=PRED_HELP, show_default=False),
    classes: Path | None = CLASSES_OPT,
    n_boot: int = N_BOOT_OPT,
    confidence: float = CONF_OPT,
    seed: int = SEED_OPT,
    interval: Interval = typer.Option(Interval.auto, "--interval",
                                      help="Per-class interval: auto = Wilson for one run, "
                                           "two-level bootstrap for several."),
    method: Method = typer.Option(Method.basic, "--method",
                                  help="Bootstrap interval of the disparity summary; basic "
                                       "corrects the low bias of worst-class and worst-k."),
    worst_k: int | None = typer.Option(None, "--worst-k",
                                       help="Classes in the worst-k mean (default 10%)."),
    train_counts: Path | None = typer.Option(
        None, "--train-counts", help="Per-class training counts (JSON list or one integer per "
        "line): adds many/medium/few group accuracies."),
    reference: list[Path] | None = typer.Option(
        None, "--reference", help="Prediction files of a reference model: adds easy/medium/"
        "hard group accuracies (tertiles of its per-class accuracy)."),
    top_k: int | None = typer.Option(None, "--top-k", help="Also report per-class top-k "
                                     "accuracy (needs logits or probs)."),
    posthoc_tau: float | None = typer.Option(None, "--posthoc-tau", help="Audit post-hoc "
                                             "logit-adjusted predictions argmax(z - τ log π) "
                                             "(needs logits and --train-counts)."),
    rule: Path | None = RULE_OPT,
    groups: str | None = GROUPS_OPT,
    level: str | None = LEVEL_OPT,
    expand: list[str] | None = EXPAND_OPT,
    fmt: Format = FORMAT_OPT,
    out: Path | None = OUT_OPT,
    show_all: bool = ALL_OPT,
) -> None:
    """Per-class accuracy with intervals, and disparity summaries, of one model (and of
    groups of classes, with --groups)."""
    from classgap.audit.api import audit_files, audit_group_files

    if rule is not None and posthoc_tau is not None:
        from classgap._validation import fail

        raise fail("rule", "not be combined with --posthoc-tau (two adjustments of the same "
                   "scores)", str(rule))
    adjust = _rule_adjust(rule)
    options: dict[str, Any] = {
        "classes": classes, "train_counts": train_counts, "reference": reference or None,
        "top_k": top_k, "posthoc_tau": posthoc_tau, "adjust": adjust, "n_boot": n_boot,
        "confidence": confidence, "interval": interval.value, "method": method.value,
        "k": worst_k, "random_state": seed}
    grouped = None
    if groups is None:
        _no_group_options(level, expand)
        result = audit_files(predictions, **options)
    else:
        grouped = audit_group_files(predictions, _group_reader(groups, level, expand),
                                    **options)
        result = grouped.audit
    _rule_note(adjust, rule, len(predictions))
    if posthoc_tau is not None:  # the numbers below are not the model's own: say so
        Console(stderr=True, soft_wrap=True).print(cell(
            f"post-hoc logit adjustment: each file's logits minus {posthoc_tau:g} · log of "
            f"the training prior from {train_counts} ({len(predictions)} file(s)); the audit "
            "below is of the adjusted predictions (logits as saved: classgap runs save the "
            "logits their loss saw, s · cos for a cosine head)", "yellow"))
    if grouped is not None:
        _emit_grouped_audit(grouped, fmt, out, level, expand, show_all)
    elif fmt is Format.json:
        _emit(render.to_json(result.to_dict()), out)
    elif fmt is Format.csv:
        _emit_csv(result.to_frame(), result.to_dict()["overall"], out)
    else:
        _show(render.audit_tables(result, show_all=show_all), out)


def _emit_grouped_audit(grouped: Any, fmt: Format, out: Path | None, level: str | None,
                        expand: list[str] | None, show_all: bool) -> None:
    from classgap.cli import render_groups as rg

    by_class = grouped.audit.by_class
    detectable = _detectable(by_class["accuracy"], by_class["support"], grouped.group_map)
    if fmt is Format.json:
        _emit(render.to_json(rg.grouped_audit_payload(grouped, detectable)), out)
    elif fmt is Format.csv:
        _emit_csv(grouped.groups.classes, grouped.audit.to_dict()["overall"], out,
                  rg.grouped_audit_frames(grouped))
    else:
        view = rg.group_view(grouped.group_map, level, expand or ())
        _show(rg.grouped_audit_tables(grouped, view, detectable=detectable,
                                      show_all=show_all), out)


@app.command("compare")
def compare_cmd(
    baseline: list[Path] = typer.Option(..., "--baseline", "-b", help=PRED_HELP,
                                        show_default=False),
    candidate: list[Path] = typer.Option(..., "--candidate", "-c", help=PRED_HELP,
                                         show_default=False),
    classes: Path | None = CLASSES_OPT,
    alpha: float = typer.Option(0.05, "--alpha",
                                help="False-discovery (bh) or family-wise (holm) level."),
    correction: Correction = typer.Option(Correction.bh, "--correction",
                                          help="Multiple-comparison correction over classes."),
    test: Test = typer.Option(Test.auto, "--test", help="auto: McNemar's score test for one run "
                              "per side, the crossed seeds × test-images test for several; welch "
                              "or permutation: across seeds on fixed test images."),
    confidence: float | None = typer.Option(None, "--confidence", help="Interval level "
                                            "(default 1 - alpha: the interval excludes 0 "
                                            "exactly when p < alpha)."),
    seed: int = SEED_OPT,
    fmt: Format = FORMAT_OPT,
    out: Path | None = OUT_OPT,
    show_all: bool = ALL_OPT,
    fail_on_drop: float | None = typer.Option(
        None, "--fail-on-drop", metavar="POINTS",
        help="Exit 3 when a class drops significantly by more than POINTS points."),
    rule: Path | None = typer.Option(None, "--rule", help="Apply a rule file from 'classgap "
                                     "fix fit' to the candidate's files (needs logits or "
                                     "probs) and compare the adjusted predictions."),
    groups: str | None = GROUPS_OPT,
    level: str | None = LEVEL_OPT,
    expand: list[str] | None = EXPAND_OPT,
    tree_levels: str | None = TREE_LEVELS_OPT,
    tree_method: TreeMethod = typer.Option(
        TreeMethod.fdr, "--tree-method", help="With --groups: the hierarchical test's "
        "procedure. fdr: FDR over the whole tree <= alpha (independent or positively dependent "
        "siblings); fwer: family-wise error <= alpha under any dependence (Meinshausen 2008; "
        "more power on deep trees); yekutieli: BH at alpha in every family, no guarantee "
        "proven for these tests."),
) -> None:
    """Paired per-class comparison of a candidate against a baseline on the same test set
    (and per group of classes, each level and then the tree top down, with --groups)."""
    from classgap._validation import check_in_range
    from classgap.audit.api import compare_files, compare_group_files
    from classgap.cli import render_groups as rg

    if fail_on_drop is not None:
        check_in_range(fail_on_drop, "fail_on_drop", 0.0, 100.0)
    adjust = _rule_adjust(rule)
    options: dict[str, Any] = {
        "classes": classes, "alpha": alpha, "adjust": adjust, "correction": correction.value,
        "test": test.value, "confidence": confidence, "random_state": seed}
    grouped, detectable = None, None
    if groups is None:
        _no_group_options(level, expand, tree_levels,
                          None if tree_method is TreeMethod.fdr else tree_method.value)
        result = compare_files(baseline, candidate, **options)
    else:
        grouped = compare_group_files(
            baseline, candidate, _group_reader(groups, level, expand), **options,
            tree_levels=None if tree_levels is None else [
                name.strip() for name in tree_levels.split(",")],
            tree_method=tree_method.value)
        result = grouped.comparison
        detectable = _detectable(result.classes["acc_baseline"], result.classes["support"],
                                 grouped.group_map, alpha, correction.value)
    _rule_note(adjust, rule, len(candidate))
    drops = result.drops(min_points=fail_on_drop) if fail_on_drop is not None else None
    if fmt is Format.json:
        payload = result.to_dict() if grouped is None else rg.grouped_comparison_payload(
            grouped, detectable)
        if drops is not None:  # the gate's verdict with the numbers, not only the exit code
            payload["fail_on_drop"] = {
                "points": fail_on_drop, "passed": not len(drops),
                "drops": [{"class": str(c), "delta": float(d), "q_value": float(q)}
                          for c, d, q in zip(drops["class"], drops["delta"], drops["q_value"],
                                             strict=True)]}
        _emit(render.to_json(payload), out)
    elif fmt is Format.csv:
        if grouped is None:
            _emit_csv(result.classes, result.to_dict()["overall"], out)
        else:
            _emit_csv(grouped.groups.classes, result.to_dict()["overall"], out,
                      rg.grouped_comparison_frames(grouped))
    elif grouped is None:
        _show(render.comparison_tables(result, show_all=show_all), out)
    else:
        view = rg.group_view(grouped.group_map, level, expand or ())
        _show(rg.grouped_comparison_tables(grouped, view, detectable=detectable,
                                           show_all=show_all), out)
    if drops is not None:  # on stderr, so that --format json stays parseable
        from rich.text import Text

        from classgap._format import literal

        gate = Console(stderr=True, soft_wrap=True)
        if len(drops):
            names = ", ".join(f"{literal(c)} ({100 * d:+.1f})" for c, d in
                              zip(drops["class"], drops["delta"], strict=True))
            gate.print(Text.assemble(("fail-on-drop: failed: ", "bold red"),
                                     f"{len(drops)} class(es) dropped significantly by more "
                                     f"than {fail_on_drop:g} points: {names}"))
            raise typer.Exit(3)
        gate.print(Text.assemble(("fail-on-drop: passed: ", "bold green"),
                                 f"no class dropped significantly by more than "
                                 f"{fail_on_drop:g} points (q < {alpha:g})"))


def _rule_adjust(rule: Path | None) -> Any:
    """The adjustment of each run by a rule file; None without a rule."""
    if rule is None:
        return None
    from functools import partial

    from classgap.fix import apply_rule, load_rule

    return partial(apply_rule, load_rule(rule), source=str(rule))


def _rule_note(adjust: Any, rule: Path | None, n_files: int) -> None:
    """After a successful audit under a rule: say on stderr that the numbers are not the
    model's own (after, so that an error stays the only line)."""
    if adjust is None:
        return
    loaded = adjust.args[0]
    Console(stderr=True, soft_wrap=True).print(cell(
        f"post-hoc rule {rule} ({loaded.objective} accuracy, tolerance {loaded.tolerance:g} "
        f"points, z = {loaded.z:g}) applied to {n_files} file(s): the audit is of the "
        "adjusted predictions", "yellow"))


def _dataset_choices() -> str:
    from classgap.data.registry import list_datasets

    names = list_datasets()
    return f"{', '.join(names[:-1])} or {names[-1]}"


@data_app.command("info")
def data_info_cmd(
    dataset: str = typer.Argument(..., help=f"{_dataset_choices()}.", show_default=False),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where the data lies: the "
                                         "only place looked when given (it must exist); "
                                         "default $CLASSGAP_DATA, then system paths."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Test share held out of "
                                        "a one-split folder: or npz: (data.test_fraction)."),
    image_size: str | None = typer.Option(None, "--image-size", metavar="H,W",
                                          help="Resize every image (data.image_size)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, json, or csv "
                               "(the per-class counts: a column per split)."),
) -> None:
    """Size, image shape, class names and per-class counts of each split of a dataset, split
    as training splits it."""
    from classgap.config import load_config
    from classgap.data import check_data_dir, dataset_info

    check_data_dir(data_dir, "--data-dir")
    # the keys and checks of training: data info shows what `train --set data....` reads
    d = load_config(overrides=[f"data.test_fraction={test_fraction}"]
                    + ([f"data.image_size={image_size}"] if image_size is not None else [])).data
    info = dataset_info(dataset, data_dir=data_dir, test_fraction=d.test_fraction,
                        image_size=d.image_size, option="--data-dir")
    if fmt is Format.json:
        typer.echo(render.to_json(info), nl=False)
        return
    if fmt is Format.csv:
        typer.echo(render.to_csv(render.class_counts_frame(info["splits"])), nl=False)
        return
    console.print(cell(info["name"], "bold"))
    console.print(cell(f"read from {info['path']}", "dim"))
    splits = info["splits"]
    table = Table(title="Per-class counts")
    table.add_column("class", justify="left", overflow="fold")
    for split in splits:
        table.add_column(split, justify="right")
    first = next(iter(splits.values()))
    for i, name in enumerate(first["classes"]):
        add_row(table, name, *(str(s["class_counts"][i]) for s in splits.values()))
    add_row(table, "total", *(str(s["size"]) for s in splits.values()), style="bold")
    shape = "×".join(str(d) for d in first["image_shape"])
    console.print(f"image shape (C×H×W): {shape}; classes: {len(first['classes'])}")
    console.print(table)
