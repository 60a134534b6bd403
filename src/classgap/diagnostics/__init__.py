"""Loss-landscape diagnostics: Hessian spectra of each class's loss (saddle points of tail
classes, Rangwani et al. 2022).

* :mod:`~classgap.diagnostics.hvp`: Hessian-vector products by double backprop (eval-mode BN).
* :mod:`~classgap.diagnostics.spectrum`: pure functions on ``hvp(v) -> Hv``: Lanczos, extreme
  eigenvalues, Hutchinson trace, spectral density (stochastic Lanczos quadrature).
* :mod:`~classgap.diagnostics.perclass`: :func:`per_class_hessian` → :class:`HessianResult`.
* :mod:`~classgap.diagnostics.plot`: :func:`plot_per_class_hessian`.
* :mod:`~classgap.diagnostics.run`: :func:`hessian_for_run` on a saved run directory.
"""

from classgap.diagnostics.hvp import HessianVectorProduct, make_hvp, trainable_parameters
from classgap.diagnostics.perclass import (
    ALL_CLASSES,
    HessianResult,
    overall_hessian,
    per_class_hessian,
)
from classgap.diagnostics.plot import (
    per_class_hessian_figure,
    plot_per_class_hessian,
    write_hessian,
)
from classgap.diagnostics.run import LoadedRun, Normalize, hessian_for_run, load_run
from classgap.diagnostics.spectrum import (
    ExtremeEigenvalues,
    SpectralDensity,
    bottom_eigenvalue,
    extreme_eigenvalues,
    gaussian_density,
    hutchinson_trace,
    lanczos,
    ritz,
    slq_nodes,
    spectral_density,
    top_eigenvalues,
)

__all__ = [
    "ALL_CLASSES",
    "ExtremeEigenvalues",
    "HessianResult",
    "HessianVectorProduct",
    "LoadedRun",
    "Normalize",
    "SpectralDensity",
    "bottom_eigenvalue",
    "extreme_eigenvalues",
    "gaussian_density",
    "hessian_for_run",
    "hutchinson_trace",
    "lanczos",
    "load_run",
    "make_hvp",
    "overall_hessian",
    "per_class_hessian",
    "per_class_hessian_figure",
    "plot_per_class_hessian",
    "ritz",
    "slq_nodes",
    "spectral_density",
    "top_eigenvalues",
    "trainable_parameters",
    "write_hessian",
]
