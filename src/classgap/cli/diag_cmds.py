"""``classgap hessian``: per-class loss-landscape diagnostics of a saved run."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from classgap._richtext import cell
from classgap._validation import check_choice
from classgap.cli import render
from classgap.cli.app import app, console


@app.command("hessian")
def hessian_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory trained with "
                                   "--set train.checkpoint=true.", show_default=False),
    per_class: bool = typer.Option(True, "--per-class/--overall", help="One row per class's "
                                   "training loss, or one for the pooled loss."),
    split: str = typer.Option("train", "--split", help="train, val or test."),
    max_per_class: int = typer.Option(512, "--max-per-class", help="Samples per class (a "
                                      "seeded subsample)."),
    lanczos_steps: int = typer.Option(100, "--lanczos-steps", help="Lanczos iterations for "
                                      "the extreme eigenvalues."),
    trace_samples: int = typer.Option(32, "--trace-samples", help="Hutchinson probe vectors."),
    density: bool = typer.Option(True, "--density/--no-density", help="Spectral density by "
                                 "stochastic Lanczos quadrature."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsample and probe vectors."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where the run's dataset "
                                         "lies now."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for hessian.csv, "
                                    "hessian.png and hessian_density.npz (default RUN_DIR)."),
) -> None:
    """Top and bottom Hessian eigenvalues, trace and spectral density of each class's loss.

    Negative bottom eigenvalues large next to the top one mark a saddle point (Rangwani et al.
    2022 find them on the tail classes of long-tailed training).
    """
    from classgap.data import check_data_dir
    from classgap.diagnostics import hessian_for_run, write_hessian

    check_choice(split, "--split", ("train", "val", "test"))
    check_data_dir(data_dir, "--data-dir")  # a wrong path is an error, named as typed
    result = hessian_for_run(run_dir, split=split, per_class=per_class,
                             max_per_class=max_per_class, device=device,
                             data_dir=None if data_dir is None else str(data_dir),
                             progress=sys.stderr.isatty(), seed=seed,
                             lanczos_steps=lanczos_steps, trace_samples=trace_samples,
                             density=density)
    written = write_hessian(result, out if out is not None else run_dir)
    console.print(render.hessian_table(result, f"Hessian of the {split} loss ({run_dir})"))
    console.print(cell("written: " + ", ".join(map(str, written)), "dim"),
                  highlight=False)
