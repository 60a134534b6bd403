"""``classgap study``, ``classgap report`` and ``classgap plan-seeds``: thin commands over
:mod:`classgap.pipeline`."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from classgap._format import finite
from classgap._richtext import add_row, cell
from classgap.cli import render
from classgap.cli.app import Correction, Format, app, console
from classgap.sweep.backends import AUTO, BACKENDS, RETRIES
from classgap.sweep.presets import PRESETS

if TYPE_CHECKING:
    import pandas as pd

    from classgap.analysis.plan import SeedPlan


GROUPS_HELP = ("Class groups to test (which group pays): a CSV or JSON group map, "
               "fashion-mnist, cifar100 or a CIFAR-100 folder.")


@app.command("study")
def study_cmd(
    preset: str | None = typer.Option(None, "--preset", "-p", help=f"A named study: "
                                      f"{PRESETS.choices()} (classgap list presets; "
                                      f"default: {PRESETS.list()[0]})."),
    quick: bool = typer.Option(False, "--quick", help="A smaller study for a first look "
                               "(3k images, 4 epochs, 2 seeds; times: bench/RESULTS.md)."),
    axis: list[str] | None = typer.Option(None, "--axis", metavar="KEY=V1,V2",
                                          help="A swept config key and its strengths; "
                                               "repeatable. Replaces the preset's axis."),
    seeds: str | None = typer.Option(None, "--seeds", metavar="S|A-B|A,B,...",
                                     help="Seeds per strength: a count (seeds 0 .. S-1), a "
                                          "range such as 8-15 or a list; a disjoint range "
                                          "replicates a study."),
    mode: str | None = typer.Option(None, "--mode", help="Several axes: product or "
                                    "one-at-a-time (each axis alone, the others off)."),
    config: Path | None = typer.Option(None, "--config", help="Config TOML, or a grid TOML "
                                       "with \\[study] and \\[base] tables."),
    set_: list[str] | None = typer.Option(None, "--set", metavar="KEY=VALUE",
                                          help="Any config key of the base recipe; repeatable."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Study directory (default "
                                    "runs/study-<preset>[-quick]); rerunning resumes it."),
    verify: Path | None = typer.Option(None, "--verify", metavar="DIR", help="Only check the "
                                       "files of study DIR's finished runs against their "
                                       "checksums and list the runs a resume would train "
                                       "again; changes nothing (exit 1 when there are any)."),
    backend: str = typer.Option(AUTO, "--backend", help=f"{BACKENDS.choices((AUTO,))}; "
                                f"{AUTO}: processes when --workers > 1, else local."),
    workers: int | None = typer.Option(None, "--workers", help="Parallel runs (default: one "
                                       "per usable core)."),
    threads_per_worker: int | None = typer.Option(None, "--threads-per-worker",
                                                  help="Torch threads per run, recorded in "
                                                       "each run's config (default 1)."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address "
                                       "(default: a local Ray)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Train failed runs again."),
    retries: int = typer.Option(RETRIES, "--retries", metavar="N",
                                help="processes and ray backends: try a run again at most N "
                                     "times when its worker dies in it (killed, e.g. by the "
                                     "OOM killer); then it is recorded failed."),
    train_cmd: str | None = typer.Option(None, "--train-cmd", help="Your own training command "
                                         "per run, e.g. \"python train.py --a {aug.mixup} "
                                         "--seed {seed} --out {out}\"."),
    alpha: float = typer.Option(0.05, "--alpha", help="False-discovery level of q-values."),
    correction: Correction = typer.Option(Correction.bh, "--correction",
                                          help="Multiple-comparison correction over classes."),
    max_drop: float = typer.Option(2.0, "--max-drop", help="Class-aware selection: largest "
                                   "tolerated significant class drop, in points."),
    multi_label: Path | None = typer.Option(None, "--multi-label", help="JSON list of "
                                            "acceptable labels per test sample (ReaL-style)."),
    transfer_to: str | None = typer.Option(None, "--transfer-to", help="Linear-probe each "
                                           "strength's backbone on this dataset."),
    refit: bool | None = typer.Option(None, "--refit/--no-refit", help="Train the per-class "
                                      "strength vector (class-conditional augmentation or "
                                      "label smoothing) and "
                                      "audit it against the selected strength and the "
                                      "reference (default: on for the default preset)."),
    reweight: str | None = typer.Option(None, "--reweight", metavar="METHOD",
                                        help="Also train the selected strength with "
                                             "worst-class reweighting (clam, tilted, ggf or "
                                             "apstar) and audit it like the refit."),
    group_refit: bool = typer.Option(False, "--group-refit", help="Also train the "
                                     "group-aware refit: each class that pays on validation "
                                     "gives its strength to its confusion group; audited "
                                     "like the refit."),
    ensemble: bool = typer.Option(False, "--ensemble", help="Add the two-model ensemble "
                                  "(the reference's and the selected strength's "
                                  "probabilities averaged, 2x inference) to the fix "
                                  "frontier."),
    exclude_failed: bool = typer.Option(False, "--exclude-failed", help="Leave runs that "
                                        "look collapsed (far below their strength's other "
                                        "seeds, or at chance) out of the statistics; by "
                                        "default they are only reported."),
    groups: str | None = typer.Option(None, "--groups", metavar="SPEC", help=GROUPS_HELP
                                      + " Default: the dataset's own (Fashion-MNIST, "
                                        "CIFAR-100) when classgap trains it; 'none': no "
                                        "groups."),
) -> None:
    """Sweep a regularizer over strengths and seeds; show which classes pay for the choice."""
    from classgap.pipeline import (
        NO_GROUPS,
        check_no_failed,
        check_study,
        plan_study,
        resolve_study_run,
        run_full_study,
        study_grouping,
    )
    from classgap.report import print_summary

    if verify is not None:
        _verify(verify)
        return
    plan = plan_study(preset, axes=axis or (), seeds=seeds, config_file=config,
                      overrides=set_ or (), quick=quick, mode=mode, threads=threads_per_worker)
    where = resolve_study_run(plan, out=out, workers=workers, refit=refit,
                              axes_given=bool(axis), quick=quick)
    options: dict[str, Any] = dict(
        backend=backend, workers=where.workers, train_cmd=train_cmd, alpha=alpha,
        correction=correction.value, max_drop=max_drop, multi_label=multi_label,
        transfer_to=transfer_to, refit=where.refit, reweight=reweight, group_refit=group_refit,
        retries=retries)
    check_study(plan, **options)  # every option, before the header and before any file
    grouping = study_grouping(plan, groups, train_cmd=train_cmd)
    console.print(cell(render.study_line(plan, where), "dim"))
    started = time.time()
    result = run_full_study(plan, where.out_dir, retry_failed=retry_failed, address=address,
                            progress=True, ensemble=ensemble, exclude_failed=exclude_failed,
                            groups=NO_GROUPS if grouping is None else grouping, **options)
    out_dir = where.out_dir
    print_summary(result, console, report_path=out_dir / "report.html")
    check_no_failed(out_dir, since=started)  # runs that failed now: exit 1, one line


@app.command("report")
def report_cmd(
    study_dir: Path = typer.Argument(..., help="A study directory (classgap study --out).",
                                     show_default=False),
    alpha: float | None = typer.Option(None, "--alpha", help="Override the study's alpha."),
    max_drop: float | None = typer.Option(None, "--max-drop", help="Override the study's "
                                          "class-aware max drop (points)."),
    multi_label: Path | None = typer.Option(None, "--multi-label", help="Multi-label truth "
                                            "(JSON) to add."),
    exclude_failed: bool | None = typer.Option(None, "--exclude-failed/--keep-failed",
                                               help="Leave runs that look collapsed out of "
                                                    "the statistics, or keep them (default: "
                                                    "as the study was run)."),
    verify: bool = typer.Option(False, "--verify", help="Only check the finished runs' files "
                                "against their checksums (as classgap study --verify)."),
    groups: str | None = typer.Option(None, "--groups", metavar="SPEC", help=GROUPS_HELP
                                      + " Default: the grouping the study recorded; 'none': "
                                        "no groups (for this report)."),
) -> None:
    """Re-analyse a finished study directory and rewrite its report.html and summary.json."""
    from classgap.pipeline import report_study
    from classgap.report import print_summary

    if verify:
        _verify(study_dir)
        return
    result = report_study(study_dir, alpha=alpha, max_drop=max_drop,
                          multi_label=None if multi_label is None
                          else str(multi_label.resolve()), exclude_failed=exclude_failed,
                          groups=groups)
    print_summary(result, console, report_path=study_dir / "report.html")


def _verify(study_dir: Path) -> None:
    """Print each damaged file of a finished run (what a resumed study trains again) and a
    verdict, one unwrapped line each; exit 1 when a run would be trained again."""
    from classgap.pipeline import verify_study

    def say(text: str, style: str = "") -> None:
        console.print(cell(text, style), soft_wrap=True)

    t0 = time.perf_counter()
    checks = verify_study(study_dir)
    seconds = time.perf_counter() - t0
    damaged = [c for c in checks if not c.ok]
    for check in damaged:
        for damage in check.damage:
            path = check.run_dir / damage.file if damage.file else check.run_dir
            say(f"{check.run_id}: {path}: {damage.problem}")
    if legacy := sum(c.legacy for c in checks):
        say(f"{legacy} run(s) finished before checksums were recorded: checked that their "
            "files read; the next 'classgap study' records their checksums", "dim")
    if damaged:
        say(f"{len(damaged)} of {len(checks)} finished runs of {study_dir} would be trained "
            f"again: re-run the 'classgap study' command with --out {study_dir} (it moves "
            f"them to {study_dir / 'runs' / '.quarantine'} first)", "bold")
        raise typer.Exit(1)
    size = sum(c.nbytes for c in checks) / 1e6
    say(f"{study_dir}: all {len(checks)} finished runs intact ({size:.1f} MB checked in "
        f"{seconds:.2f} s)")


@app.command("plan-seeds")
def plan_seeds_cmd(
    study_dir: Path = typer.Argument(..., help="A study directory (classgap study --out).",
                                     show_default=False),
    drop: float = typer.Option(1.0, "--drop", help="The class drop to plan seeds for, in "
                               "points."),
    power: float = typer.Option(0.8, "--power", help="Target probability of detecting it."),
    alpha: float | None = typer.Option(None, "--alpha", help="Override the study's alpha."),
    correction: Correction | None = typer.Option(None, "--correction", help="Override the "
                                                 "study's correction over classes."),
    groups: str | None = typer.Option(None, "--groups", metavar="SPEC", help="Also plan per "
                                      "group of classes, level by level (BH or Holm over "
                                      "the groups of a level): a CSV or JSON group map, a "
                                      "built-in name (fashion-mnist) or a CIFAR-100 folder; "
                                      "default the grouping the study recorded, 'none': "
                                      "none."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, json or csv "
                               "(csv: the classes)."),
) -> None:
    """Per class: the smallest drop the study's seeds detect, and the seeds a drop needs.

    With --groups, the same per group of every level, and what one unit of each level can
    show."""
    from classgap.pipeline import plan_study_seeds

    plan = plan_study_seeds(study_dir, drop=drop, power=power, alpha=alpha,
                            correction=None if correction is None else correction.value,
                            groups=groups)
    if fmt is Format.json:
        typer.echo(render.to_json(plan.to_dict()), nl=False)
        return
    if fmt is Format.csv:
        typer.echo(render.to_csv(plan.classes), nl=False)
        return
    console.print(_plan_table(plan))
    if plan.groups is not None and plan.levels is not None:
        console.print(_plan_table(plan, by_group=True))
        console.print(_levels_table(plan.levels, plan.seeds))
    for line in plan.lines():
        console.print(cell(line))  # the lines name classes: text, one line each


def _plan_table(plan: SeedPlan, *, by_group: bool = False) -> Table:
    """The classes' plan, or with ``by_group`` the groups' (each corrected over its level)."""
    from classgap.analysis.plan import NO_VARIATION, NOT_DETECTABLE

    rows = plan.groups if by_group and plan.groups is not None else plan.classes
    unit = "group" if by_group else "class"
    family = "over the groups of each level" if by_group else \
        f"per-class level {plan.level:.2g}, {plan.correction} over classes"
    table = Table(title=f"Seed plan per {unit} (points; {100 * plan.power:g}% power, {family})")
    for name in ((["level"] if by_group else []) + [unit, "seed sd", "image sd",
                 f"min detectable drop ({plan.seeds} seeds)",
                 f"seeds for a {plan.drop:g}-point drop"]):
        text = name in ("level", unit)
        table.add_column(name, justify="left" if text else "right",
                         overflow="fold" if text else "ellipsis")
    for _, row in rows.iterrows():
        need = row["seeds_needed"]
        mdd = row["min_detectable_drop"]
        note = str(row.get("note", ""))
        undetectable = NOT_DETECTABLE in note
        floored = NO_VARIATION in note  # sd 0 seen: the binomial floor
        label = [row["level"], row["group"]] if by_group else [row["class"]]
        add_row(table, *label, _num(row["seed_sd"]) + (" (floor)" if floored else ""),
                _num(row["image_sd"]), NOT_DETECTABLE if undetectable else _num(mdd),
                str(int(need)) if finite(need) else "more test images")
    return table


def _levels_table(levels: pd.DataFrame, seeds: int) -> Table:
    """Per level: what one unit can show (``detectable_by_level``)."""
    table = Table(title=f"Per level: the smallest drop one unit can show ({seeds} seeds, "
                        f"points, median over its units)")
    for name in ("level", "units", "median images", "per-unit level", "min detectable drop",
                 "median accuracy", "units that can show it"):
        table.add_column(name, justify="left" if name == "level" else "right")
    for _, row in levels.iterrows():
        images = row["median_images"]
        add_row(table, row["level"], f"{row['n_units']:,}",
                "–" if math.isnan(images) else f"{images:g}",
                f"{row['unit_level']:.2g}", _num(row["min_detectable_drop"]),
                _num(row["median_accuracy"]), f"{row['n_detectable']:,}")
    return table


def _num(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}"
