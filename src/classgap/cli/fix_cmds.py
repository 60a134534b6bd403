"""``classgap fix fit`` / ``fix apply``: the post-hoc constrained decision rule from files."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from classgap._richtext import add_row, cell
from classgap.cli.app import CLASSES_OPT, PRED_HELP, app, console

fix_app = typer.Typer(help="Fit and apply a post-hoc decision rule that keeps every class at "
                      "the reference's accuracy (no retraining).", no_args_is_help=True)
app.add_typer(fix_app, name="fix")


class Objective(StrEnum):
    mean = "mean"
    balanced = "balanced"


@fix_app.command("fit")
def fit_cmd(
    reference: list[Path] = typer.Option(..., "--reference", "-r", help="Validation "
                                         "prediction files of the reference recipe (labels "
                                         "suffice); several files are several seeds.",
                                         show_default=False),
    candidate: list[Path] = typer.Option(..., "--candidate", "-c", help="Validation "
                                         "prediction files of the candidate recipe, with "
                                         "logits or probs; one rule serves all its runs.",
                                         show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="The rule file to write (JSON).",
                             show_default=False),
    tolerance: float = typer.Option(0.0, "--tolerance", metavar="PTS", help="Points of "
                                    "accuracy a class may lose against the reference."),
    objective: Objective = typer.Option(Objective.mean, "--objective", help="Accuracy to "
                                        "maximise: mean (over images) or balanced (over "
                                        "classes)."),
    z: float = typer.Option(0.5, "--z", help="Noise margin: each class must clear its target "
                            "by z standard errors of its paired validation difference "
                            "(0: the point estimate)."),
    classes: Path | None = CLASSES_OPT,
) -> None:
    """Fit per-class weights on validation files: best accuracy, no class below the reference."""
    from classgap.audit.api import _class_names
    from classgap.fix import fit_rule_files

    rule = fit_rule_files(reference, candidate, classes=_class_names(classes),
                          tolerance=tolerance, objective=objective.value, z=z)
    rule.save(out)
    v = rule.validation
    pc = v["per_class"]
    table = Table(title=f"Validation accuracy (%), {v['candidate_runs']} candidate and "
                  f"{v['reference_runs']} reference run(s)")
    for name in ("class", "reference", "before", "after", "after − ref", "target", "weight"):
        table.add_column(name, justify="left" if name == "class" else "right",
                         overflow="fold")
    for i, name in enumerate(rule.classes):
        add_row(table, name, f"{pc['reference'][i]:.2f}", f"{pc['before'][i]:.2f}",
                f"{pc['after'][i]:.2f}", f"{pc['after_minus_reference'][i]:+.2f}",
                f"{pc['target'][i]:.2f}", f"{rule.weights[i]:.3f}")
    console.print(table)
    console.print(f"{objective.value} accuracy {v['objective_before']:.2f} → "
                  f"{v['objective_after']:.2f}; worst class vs reference "
                  f"{v['worst_after_minus_reference']:+.2f} points")
    console.print(cell(f"wrote {out}", "dim"))


@fix_app.command("apply")
def apply_cmd(
    rule: Path = typer.Argument(..., help="A rule file from 'classgap fix fit'.",
                                show_default=False),
    predictions: list[Path] = typer.Argument(..., help=PRED_HELP, show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the adjusted files (same "
                             "names and formats).", show_default=False),
    classes: Path | None = CLASSES_OPT,
) -> None:
    """Write adjusted prediction files: the rule's predictions and reweighted scores."""
    from classgap.audit.api import _class_names
    from classgap.fix import apply_rule_files

    written = apply_rule_files(rule, predictions, out, classes=_class_names(classes))
    for path in written:
        console.print(cell(f"wrote {path}", "dim"))
