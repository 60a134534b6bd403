"""``classgap hessian``: per-class loss-landscape diagnostics of a saved run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from classgap._validation import check_choice
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
    from classgap.diagnostics import hessian_for_run, plot_per_class_hessian

    check_choice(split, "--split", ("train", "val", "test"))
    result = hessian_for_run(run_dir, split=split, per_class=per_class,
                             max_per_class=max_per_class, device=device,
                             data_dir=None if data_dir is None else str(data_dir),
                             progress=sys.stderr.isatty(), seed=seed,
                             lanczos_steps=lanczos_steps, trace_samples=trace_samples,
                             density=density)
    folder = out if out is not None else run_dir
    folder.mkdir(parents=True, exist_ok=True)
    frame = result.to_frame()
    frame.to_csv(folder / "hessian.csv", index=False)
    written = [folder / "hessian.csv"]
    if density and result.densities is not None and result.grid is not None:
        np.savez(folder / "hessian_density.npz", grid=result.grid, densities=result.densities,
                 classes=frame["class"].to_numpy())
        written.append(folder / "hessian_density.npz")
    written.append(plot_per_class_hessian(result, folder / "hessian.png"))
    table = Table(title=f"Hessian of the {split} loss ({run_dir})")
    for col in ("class", "n", "loss", "λ max", "λ min", "|λ min|/λ max", "trace"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for row in frame.itertuples():
        table.add_row(str(row.name), str(row.n), f"{row.loss:.3f}", f"{row.top_eigenvalue:.3g}",
                      f"{row.bottom_eigenvalue:.3g}", f"{row.ratio:.3f}",
                      f"{row.trace:.3g} ± {row.trace_se:.2g}")
    console.print(table)
    console.print("written: " + ", ".join(map(str, written)), style="dim", markup=False,
                  highlight=False)
