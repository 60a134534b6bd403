"""Per-class loss-landscape diagnostics: is each class's loss at a minimum or a saddle point?

For each class c the loss is the mean cross-entropy over (a seeded subsample of) the class's
samples, ``L_c(θ) = mean_{i: y_i = c} CE(f_θ(x_i), c)``, and its Hessian with respect to all
trainable parameters is summarised by

* ``top_eigenvalue`` λ_max (sharpness) and ``bottom_eigenvalue`` λ_min (negative at a saddle),
  from one Lanczos run (:func:`~classgap.diagnostics.spectrum.extreme_eigenvalues`);
* ``ratio`` = |λ_min| / λ_max: Rangwani et al. (2022, "Escaping Saddle Points for Effective
  Generalization on Class-Imbalanced Data") find tail classes of long-tailed training with
  large negative curvature relative to their sharpness, i.e. sitting at saddle points;
* ``trace`` (Hutchinson, with its standard error) and the spectral density (stochastic Lanczos
  quadrature), all densities on one common grid so the classes can be compared.

The model is evaluated in eval mode (:mod:`classgap.diagnostics.hvp`), so each L_c is a
deterministic function of the weights. All randomness (subsamples, probes, start vectors)
derives from ``seed`` and the class index, so one class's numbers do not depend on which other
classes are analysed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from classgap._validation import check_in_range, check_labels, check_positive_int, fail
from classgap.diagnostics.hvp import HessianVectorProduct, make_hvp, trainable_parameters
from classgap.diagnostics.spectrum import (
    default_sigma,
    density_grid,
    extreme_eigenvalues,
    gaussian_density,
    hutchinson_trace,
    slq_nodes,
)

__all__ = ["ALL_CLASSES", "HessianResult", "overall_hessian", "per_class_hessian"]

#: ``class`` of the row that pools every class (:func:`overall_hessian`).
ALL_CLASSES = -1
Transform = Callable[[Tensor], Tensor]
# Independent random streams per class (SeedSequence keys).
_SUBSAMPLE, _LANCZOS, _TRACE, _DENSITY = range(4)


@dataclass(frozen=True, eq=False)
class HessianResult:
    """Hessian summaries, one row per class (R rows); :meth:`to_frame` is the tidy view.

    Attributes
    ----------
    classes : np.ndarray of int64, shape (R,)
        Class index of each row; :data:`ALL_CLASSES` (-1) for the pooled row.
    names : tuple of str, length R
    n : np.ndarray of int64, shape (R,)
        Samples in the row's loss (after the per-class cap).
    loss : np.ndarray of float64, shape (R,)
        The row's mean loss at the current weights.
    top_eigenvalues : np.ndarray of float64, shape (R, k)
        The k largest Hessian eigenvalues, descending.
    bottom_eigenvalue, trace, trace_se : np.ndarray of float64, shape (R,)
    iterations : np.ndarray of int64, shape (R,)
        Lanczos steps of the eigenvalue run.
    converged : np.ndarray of bool, shape (R,)
    grid : np.ndarray of float64, shape (G,), or None
        Common eigenvalue grid of the densities (None without densities).
    densities : np.ndarray of float64, shape (R, G), or None
        Spectral density of each row on ``grid``; each integrates to 1.
    n_params : int
        Dimension of the Hessian.
    settings : dict
        The options that produced the result (seed, caps, steps, sigma...).
    """

    classes: np.ndarray
    names: tuple[str, ...]
    n: np.ndarray
    loss: np.ndarray
    top_eigenvalues: np.ndarray
    bottom_eigenvalue: np.ndarray
    trace: np.ndarray
    trace_se: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    grid: np.ndarray | None
    densities: np.ndarray | None
    n_params: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def top_eigenvalue(self) -> np.ndarray:
        """λ_max per row, shape (R,)."""
        return self.top_eigenvalues[:, 0]

    @property
    def ratio(self) -> np.ndarray:
        """|λ_min| / λ_max per row, shape (R,); NaN where λ_max <= 0 (no positive curvature)."""
        top = self.top_eigenvalue
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(top > 0, np.abs(self.bottom_eigenvalue) / top, np.nan)

    def to_frame(self) -> pd.DataFrame:
        """One row per class: class, name, n, loss, top_eigenvalue, bottom_eigenvalue, ratio,
        trace, trace_se, iterations, converged (and top_eigenvalue_2.. for k > 1)."""
        frame = pd.DataFrame({
            "class": self.classes, "name": list(self.names), "n": self.n, "loss": self.loss,
            "top_eigenvalue": self.top_eigenvalue, "bottom_eigenvalue": self.bottom_eigenvalue,
            "ratio": self.ratio, "trace": self.trace, "trace_se": self.trace_se,
            "iterations": self.iterations, "converged": self.converged})
        for j in range(1, self.top_eigenvalues.shape[1]):
            frame[f"top_eigenvalue_{j + 1}"] = self.top_eigenvalues[:, j]
        return frame


def _derive_seed(seed: int, stream: int, key: int) -> int:
    """A 63-bit seed for (seed, stream, key), independent across all three."""
    state = np.random.SeedSequence([seed, stream, key]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def _subsample(rows: np.ndarray, cap: int | None, seed: int, key: int) -> np.ndarray:
    """At most ``cap`` of ``rows``, drawn without replacement, kept in dataset order."""
    if cap is None or len(rows) <= cap:
        return rows
    rng = np.random.default_rng(_derive_seed(seed, _SUBSAMPLE, key))
    return np.sort(rng.choice(rows, size=cap, replace=False))


def _as_images(images: Any, transform: Transform | None, n: int) -> Tensor:
    x = torch.as_tensor(images) if isinstance(images, np.ndarray | Tensor) else None
    if x is None or x.ndim < 2:
        shape = f"shape {tuple(x.shape)}" if x is not None else type(images).__name__
        raise fail("images", "be an array or tensor of shape (N, ...)", shape)
    if len(x) != n:
        raise fail("images", f"have as many rows as 'labels' ({n})", len(x))
    if not x.is_floating_point() and transform is None:
        raise fail("images", "be floating point as the model takes them (or pass 'transform' "
                   "to convert raw images)", f"dtype {x.dtype}")
    return x


def _mean_loss(hvp: HessianVectorProduct) -> float:
    """Sample-weighted mean loss over the batches of ``hvp``, in eval mode."""
    total = sum(len(y) for _, y in hvp.batches)
    was_training = hvp.model.training
    hvp.model.eval()
    try:
        with torch.no_grad():
            loss = sum(float(hvp.loss_fn(hvp.model(x), y)) * len(y) for x, y in hvp.batches)
    finally:
        hvp.model.train(was_training)
    return loss / total


def _analyse(model: nn.Module, images: Tensor, labels: Tensor,
             groups: Sequence[tuple[int, str, np.ndarray]], *, transform: Transform | None,
             batch_size: int, k: int, lanczos_steps: int, tol: float, trace_samples: int,
             density: bool, density_steps: int, density_vectors: int, grid: int,
             sigma: float | None, label_smoothing: float, seed: int, device: Any,
             progress: bool, settings: dict[str, Any]) -> HessianResult:
    """Shared core: one Hessian summary per group ``(class, name, rows)``."""
    if device is not None:
        model.to(device)
    params = trainable_parameters(model)
    if not params:
        raise fail("model", "have trainable parameters (requires_grad=True)",
                   f"{type(model).__name__} with none")
    where, dtype = params[0].device, params[0].dtype
    n_params = sum(p.numel() for p in params)
    if k > n_params:
        raise fail("k", f"be <= the number of trainable parameters ({n_params})", k)
    rows: list[dict[str, Any]] = []
    nodes: list[tuple[np.ndarray, np.ndarray]] = []
    bar = tqdm(groups, disable=not progress, unit="class", leave=False, desc="Hessian")
    for cls, _, idx in bar:
        key = cls + 1  # the pooled row (-1) gets key 0
        batches = []
        for start in range(0, len(idx), batch_size):
            take = torch.from_numpy(idx[start:start + batch_size])
            x = images[take].to(where)  # (B, ...)
            if transform is not None:
                x = transform(x)
            batches.append((x.to(dtype), labels[take].to(where)))
        hvp = make_hvp(model, batches, label_smoothing=label_smoothing)
        eig = extreme_eigenvalues(hvp, n_params, k=k, iters=lanczos_steps, tol=tol,
                                  seed=_derive_seed(seed, _LANCZOS, key))
        trace, se = hutchinson_trace(hvp, n_params, trace_samples,
                                     seed=_derive_seed(seed, _TRACE, key))
        rows.append({"n": len(idx), "loss": _mean_loss(hvp), "top": eig.top,
                     "bottom": eig.bottom, "trace": trace, "se": se,
                     "iterations": eig.iterations, "converged": eig.converged})
        if density:
            nodes.append(slq_nodes(hvp, n_params, m=density_steps, n_vectors=density_vectors,
                                   seed=_derive_seed(seed, _DENSITY, key)))
    bar.close()

    grid_values = densities = None
    if density:
        every = np.concatenate([v.ravel() for v, _ in nodes])
        sigma = default_sigma(every) if sigma is None else sigma
        grid_values = density_grid(every, sigma, grid)
        densities = np.stack([gaussian_density(v, w, grid_values, sigma) for v, w in nodes])
    settings = {**settings, "sigma": sigma}
    return HessianResult(
        classes=np.array([g[0] for g in groups], dtype=np.int64),
        names=tuple(g[1] for g in groups),
        n=np.array([r["n"] for r in rows], dtype=np.int64),
        loss=np.array([r["loss"] for r in rows], dtype=np.float64),
        top_eigenvalues=np.array([r["top"] for r in rows], dtype=np.float64).reshape(-1, k),
        bottom_eigenvalue=np.array([r["bottom"] for r in rows], dtype=np.float64),
        trace=np.array([r["trace"] for r in rows], dtype=np.float64),
        trace_se=np.array([r["se"] for r in rows], dtype=np.float64),
        iterations=np.array([r["iterations"] for r in rows], dtype=np.int64),
        converged=np.array([r["converged"] for r in rows], dtype=bool),
        grid=grid_values, densities=densities, n_params=n_params, settings=settings)


def _check_options(batch_size: int, k: int, lanczos_steps: int, tol: float,
                   trace_samples: int, density_steps: int, density_vectors: int, grid: int,
                   sigma: float | None, label_smoothing: float, seed: int) -> None:
    check_positive_int(batch_size, "batch_size")
    check_positive_int(k, "k")
    check_positive_int(lanczos_steps, "lanczos_steps")
    if not (isinstance(tol, int | float) and not isinstance(tol, bool) and tol > 0):
        raise fail("tol", "be a number > 0", tol)
    check_positive_int(trace_samples, "trace_samples", minimum=2)
    check_positive_int(density_steps, "density_steps")
    check_positive_int(density_vectors, "density_vectors")
    check_positive_int(grid, "grid", minimum=2)
    if sigma is not None and not (isinstance(sigma, int | float) and 0 < sigma < float("inf")):
        raise fail("sigma", "be None or a finite number > 0", sigma)
    check_in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    check_positive_int(seed, "seed", minimum=0)


def per_class_hessian(
    model: nn.Module, images: Any, labels: Any, *, classes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None, transform: Transform | None = None,
    batch_size: int = 256, max_per_class: int | None = 512, k: int = 1,
    lanczos_steps: int = 100, tol: float = 1e-4, trace_samples: int = 32, density: bool = True,
    density_steps: int = 64, density_vectors: int = 2, grid: int = 512,
    sigma: float | None = None, label_smoothing: float = 0.0, seed: int = 0,
    device: torch.device | str | None = None, progress: bool = True,
) -> HessianResult:
    """Hessian spectrum of each class's mean cross-entropy at the model's current weights.

    Parameters
    ----------
    model : nn.Module
        ``(B, ...) -> (B, K)`` logits; evaluated in eval mode, weights untouched.
    images : np.ndarray or Tensor, shape (N, ...)
        Model inputs. Floating point as the model takes them, or raw (e.g. uint8) with
        ``transform``.
    labels : array of int, shape (N,)
    classes : sequence of int, optional
        Classes to analyse (each must occur in ``labels``); default every class present.
    class_names : sequence of str, optional
        ``class_names[c]`` names class c in the result (default ``str(c)``).
    transform : callable, optional
        ``transform(x (B, ...)) -> (B, ...)`` applied to each batch on the model's device
        before the model (the training preprocessing, e.g. scaling and normalising uint8).
    batch_size : int
        Samples per forward pass; the loss is the same for any value (eval-mode BN).
    max_per_class : int or None
        Cap on samples per class, a seeded subsample without replacement; None for all.
    k : int
        Largest eigenvalues to report per class.
    lanczos_steps, tol :
        Most Lanczos steps and relative residual of the eigenvalue run
        (:func:`~classgap.diagnostics.spectrum.extreme_eigenvalues`).
    trace_samples : int
        Hutchinson probes (>= 2).
    density : bool
        Also estimate each class's spectral density (``density_steps · density_vectors``
        Hessian-vector products per class), on a grid of ``grid`` points shared by all
        classes, broadened by ``sigma`` (default 1% of the pooled Ritz-value span).
    label_smoothing : float
        Of the cross-entropy; 0 for the plain loss.
    seed : int
        Root of every random choice (per class, per purpose).
    device : torch.device or str, optional
        Move the model there first (in place); default: where its parameters are.
    progress : bool
        A tqdm bar over the classes.

    Returns
    -------
    HessianResult
        One row per class, in increasing class order.

    Notes
    -----
    Cost per class: at most ``lanczos_steps + trace_samples + density_steps · density_vectors``
    Hessian-vector products over ``min(n_c, max_per_class)`` samples, each about three
    forward passes; the Lanczos basis holds ``max(lanczos_steps, density_steps)`` vectors of
    the parameters' size.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(2, 2).double()
    >>> x = torch.randn(8, 2, dtype=torch.float64)
    >>> y = torch.tensor([0, 1] * 4)
    >>> result = per_class_hessian(model, x, y, density=False, progress=False)
    >>> result.to_frame()[["class", "n"]].values.tolist()
    [[0, 4], [1, 4]]
    """
    _check_options(batch_size, k, lanczos_steps, tol, trace_samples, density_steps,
                   density_vectors, grid, sigma, label_smoothing, seed)
    y = check_labels(labels, "labels")
    x = _as_images(images, transform, len(y))
    if max_per_class is not None:
        max_per_class = check_positive_int(max_per_class, "max_per_class")
    present = np.unique(y)
    if classes is None:
        wanted = present
    else:
        wanted = np.unique(check_labels(list(classes), "classes"))
        missing = np.setdiff1d(wanted, present)
        if wanted.size == 0 or missing.size:
            raise fail("classes", "name classes present in 'labels'",
                       int(missing[0]) if missing.size else "an empty sequence")
    if wanted.size == 0:
        raise fail("labels", "hold at least one sample", "an empty array")
    if class_names is not None and len(class_names) <= int(wanted.max()):
        raise fail("class_names", f"name every class up to {int(wanted.max())}",
                   f"{len(class_names)} names")
    groups = [(int(c), str(class_names[c]) if class_names is not None else str(c),
               _subsample(np.flatnonzero(y == c), max_per_class, seed, int(c) + 1))
              for c in wanted]
    options: dict[str, Any] = {
        "batch_size": batch_size, "k": k, "lanczos_steps": lanczos_steps, "tol": tol,
        "trace_samples": trace_samples, "density": density, "density_steps": density_steps,
        "density_vectors": density_vectors, "grid": grid, "label_smoothing": label_smoothing,
        "seed": seed}
    return _analyse(model, x, torch.from_numpy(y), groups, transform=transform, sigma=sigma,
                    device=device, progress=progress, **options,
                    settings={"scope": "per_class", "max_per_class": max_per_class, **options})


def overall_hessian(
    model: nn.Module, images: Any, labels: Any, *, transform: Transform | None = None,
    batch_size: int = 256, max_samples: int | None = 4096, k: int = 1,
    lanczos_steps: int = 100, tol: float = 1e-4, trace_samples: int = 32, density: bool = True,
    density_steps: int = 64, density_vectors: int = 2, grid: int = 512,
    sigma: float | None = None, label_smoothing: float = 0.0, seed: int = 0,
    device: torch.device | str | None = None, progress: bool = False,
) -> HessianResult:
    """Hessian spectrum of the mean loss over all samples: one row, class ``-1``, name "all".

    ``max_samples`` caps the samples (a seeded uniform subsample, so class proportions are
    kept in expectation); the other parameters are those of :func:`per_class_hessian`.
    """
    _check_options(batch_size, k, lanczos_steps, tol, trace_samples, density_steps,
                   density_vectors, grid, sigma, label_smoothing, seed)
    y = check_labels(labels, "labels")
    x = _as_images(images, transform, len(y))
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples")
    if y.size == 0:
        raise fail("labels", "hold at least one sample", "an empty array")
    groups = [(ALL_CLASSES, "all", _subsample(np.arange(len(y)), max_samples, seed, 0))]
    options: dict[str, Any] = {
        "batch_size": batch_size, "k": k, "lanczos_steps": lanczos_steps, "tol": tol,
        "trace_samples": trace_samples, "density": density, "density_steps": density_steps,
        "density_vectors": density_vectors, "grid": grid, "label_smoothing": label_smoothing,
        "seed": seed}
    return _analyse(model, x, torch.from_numpy(y), groups, transform=transform, sigma=sigma,
                    device=device, progress=progress, **options,
                    settings={"scope": "overall", "max_samples": max_samples, **options})
