"""Figure of a :class:`~classgap.diagnostics.perclass.HessianResult`: curvature per class.

Built like :mod:`classgap.report.plots`: a fresh ``Figure`` on the Agg canvas, nothing
registered with ``pyplot``, no ``rcParams`` touched.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from classgap._format import figure_text
from classgap._validation import fail
from classgap.diagnostics.perclass import HessianResult

__all__ = ["per_class_hessian_figure", "plot_per_class_hessian"]

# Above this many classes per-class tick labels and legend entries are unreadable.
MANY_CLASSES = 20
# Densities are drawn on a log axis down to this share of the highest peak; lower values
# (Gaussian tails, which underflow to 0) are clipped to it so the curves stay continuous.
DENSITY_RANGE = 1e-6


def per_class_hessian_figure(result: HessianResult) -> Figure:
    """(a) λ_max and λ_min per class (symlog y: both signs, many decades); (b) each class's
    spectral density (log y), coloured from head (first class) to tail (last)."""
    if not isinstance(result, HessianResult):
        raise fail("result", "be a HessianResult", type(result).__name__)
    grid, densities = result.grid, result.densities
    has_density = grid is not None and densities is not None
    fig = Figure(figsize=(11 if has_density else 6, 4), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if has_density else 1, squeeze=False)[0]

    ax = axes[0]
    x = np.arange(len(result.classes))
    ax.axhline(0.0, color="#999999", lw=0.8)
    ax.plot(x, result.top_eigenvalue, "o-", color="#1f77b4", label="λ_max", gid="top")
    ax.plot(x, result.bottom_eigenvalue, "s-", color="#d62728", label="λ_min", gid="bottom")
    scale = np.nanmax(np.abs(np.r_[result.top_eigenvalue, result.bottom_eigenvalue, 0.0]))
    linthresh = max(1e-2 * float(scale), 1e-12)
    ax.set_yscale("symlog", linthresh=linthresh, linscale=2.0)
    # Label 0 and whole decades beyond the linear band only: ticks inside it collide.
    decades = range(math.floor(math.log10(linthresh)) + 1,
                    math.ceil(math.log10(max(float(scale), linthresh))) + 1)
    ax.set_yticks(sorted([0.0, *(10.0 ** d for d in decades), *(-(10.0 ** d) for d in decades)]))
    step = max(1, len(x) // MANY_CLASSES)
    ax.set_xticks(x[::step], [figure_text(n) for n in result.names[::step]], rotation=45,
                  ha="right")
    ax.set_xlabel("class")
    ax.set_ylabel("Hessian eigenvalue")
    ax.set_title("(a) extreme eigenvalues per class")
    ax.legend(loc="best")

    if grid is not None and densities is not None:
        ax = axes[1]
        colors = matplotlib.colormaps["viridis"](np.linspace(0, 1, max(len(x), 2)))
        floor = DENSITY_RANGE * float(np.max(densities)) or DENSITY_RANGE
        for i, (name, rho) in enumerate(zip(result.names, densities, strict=True)):
            label = figure_text(name) if len(x) <= MANY_CLASSES else None
            ax.plot(grid, np.maximum(rho, floor), color=colors[i], lw=1.0,
                    label=label, gid=f"density:{name}")
        ax.set_yscale("log")
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("density")
        ax.set_title("(b) spectral density (SLQ)")
        if len(x) <= MANY_CLASSES:
            ax.legend(loc="best", fontsize="small", ncols=2)
    return fig


def plot_per_class_hessian(result: HessianResult, path: str | os.PathLike[str]) -> Path:
    """Write :func:`per_class_hessian_figure` to ``path`` (format from its suffix, e.g. .png).

    Returns
    -------
    Path
    """
    from classgap._files import atomic_write

    path = Path(path)
    figure = per_class_hessian_figure(result)
    fmt = path.suffix.lstrip(".") or "png"
    return atomic_write(path, lambda fh: figure.savefig(fh, format=fmt))


def write_hessian(result: HessianResult, folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``hessian.csv``, ``hessian_density.npz`` (when densities were computed) and
    ``hessian.png`` into ``folder`` (created when missing), each atomically; return the paths.
    """
    import numpy as np

    from classgap._files import atomic_write

    folder = Path(folder)
    frame = result.to_frame()
    written = [atomic_write(folder / "hessian.csv", frame.to_csv(index=False))]
    grid, densities = result.grid, result.densities
    if densities is not None and grid is not None:
        written.append(atomic_write(
            folder / "hessian_density.npz",
            lambda fh: np.savez(fh, grid=grid, densities=densities,
                                classes=frame["class"].to_numpy())))
    written.append(plot_per_class_hessian(result, folder / "hessian.png"))
    return written
