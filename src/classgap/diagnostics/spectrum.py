"""Spectrum of a symmetric operator known only through ``hvp(v) -> H @ v`` (dimension n).

Pure functions; every random vector comes from an explicit seed (an int or a CPU
``torch.Generator``), drawn on the CPU and then moved, so a seed gives the same vectors on
every device. Vectors live in ``dtype`` on ``device`` (default: the ``dtype``/``device``
attributes of ``hvp`` when it has them, as :class:`~classgap.diagnostics.hvp.
HessianVectorProduct` does; else the default dtype on the CPU). Small outputs (tridiagonals,
eigenvalues, densities) are float64 numpy arrays.

* :func:`lanczos`: ``m`` Lanczos steps with full reorthogonalisation → tridiagonal
  ``(alphas, betas)``; :func:`ritz` turns it into Ritz values and quadrature weights.
* :func:`extreme_eigenvalues`, :func:`top_eigenvalues`, :func:`bottom_eigenvalue`: Lanczos run
  until the wanted Ritz values have relative residual ≤ ``tol`` (algebraic extremes: the
  "top" of an indefinite Hessian is its most positive eigenvalue, the "bottom" its most
  negative one). Lanczos finds both ends in one run and converges much faster than power
  iteration with deflation when eigenvalues cluster.
* :func:`hutchinson_trace`: ``E[zᵀHz] = tr H`` over Rademacher ``z``, with its standard error.
* :func:`spectral_density`: stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani,
  Krishnan & Xiao 2019), Gaussian-broadened on a grid.

>>> import torch
>>> H = torch.diag(torch.tensor([3.0, 1.0, -2.0], dtype=torch.float64))
>>> top_eigenvalues(lambda v: H @ v, 3, k=2, dtype=torch.float64).round(6).tolist()
[3.0, 1.0]
>>> round(bottom_eigenvalue(lambda v: H @ v, 3, dtype=torch.float64), 6)
-2.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.integrate import trapezoid
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from classgap._validation import check_positive_int, fail

__all__ = ["HVP", "ExtremeEigenvalues", "SpectralDensity", "bottom_eigenvalue", "default_sigma",
           "density_grid", "extreme_eigenvalues", "gaussian_density", "hutchinson_trace",
           "lanczos", "ritz", "slq_nodes", "spectral_density", "top_eigenvalues"]

HVP = Callable[[Tensor], Tensor]
Seed = int | torch.Generator


# --------------------------------------------------------------------------- helpers


def _breakdown_tol(dtype: torch.dtype) -> float:
    """A new Lanczos direction shorter than this times |H| is rounding noise: the Krylov
    space is invariant and the direction is replaced (or the run stops).

    float64: 1.8e-12 (eps ** 0.75), above the few hundred eps measured for exhausted spaces
    of small test matrices. float32: 10 eps = 1.2e-6, the noise floor of a float32 Hessian-
    vector product; a larger threshold would cut real betas of a large network's bulk (they
    can be 1e-5 of λ_max), where a breakdown never truly happens.
    """
    eps = torch.finfo(dtype).eps
    return eps**0.75 if eps < 1e-10 else 10 * eps


def _generator(seed: Seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise fail("seed", "be an integer >= 0 or a torch.Generator", seed)
    return torch.Generator().manual_seed(int(seed))


def _space(hvp: HVP, dtype: torch.dtype | None,
           device: torch.device | str | None) -> tuple[torch.dtype, torch.device]:
    dtype = dtype or getattr(hvp, "dtype", None) or torch.get_default_dtype()
    return dtype, torch.device(device or getattr(hvp, "device", None) or "cpu")


def _gaussian(n: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.randn(n, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)


def _rademacher(n: int, gen: torch.Generator, dtype: torch.dtype,
                device: torch.device) -> Tensor:
    z = torch.randint(0, 2, (n,), generator=gen).mul_(2).sub_(1)  # ±1, exact in any dtype
    return z.to(device=device, dtype=dtype)


def _apply(hvp: HVP, v: Tensor, n: int) -> Tensor:
    hv = hvp(v)
    if not isinstance(hv, Tensor) or hv.shape != (n,):
        shape = tuple(hv.shape) if isinstance(hv, Tensor) else type(hv).__name__
        raise fail("hvp", f"return a tensor of shape ({n},)", f"{shape} (n={n})")
    return hv.to(v.dtype)


def _orthogonalise(w: Tensor, basis: Tensor) -> Tensor:
    """``w`` minus its projection on the rows of ``basis`` (j, n), twice ("twice is enough":
    one classical Gram-Schmidt pass leaves O(eps·κ) error, the second removes it)."""
    for _ in range(2):
        w = w - basis.T @ (basis @ w)
    return w


def _lanczos(hvp: HVP, q: Tensor, m: int, *, restart: torch.Generator | None = None,
             stop: Callable[[list[float], list[float], float], bool] | None = None,
             ) -> tuple[list[float], list[float], bool]:
    """Core Lanczos with full reorthogonalisation from ``q`` (n,), at most ``m`` steps.

    At a breakdown (the Krylov space is invariant) it stops, or with ``restart`` continues
    from a random vector orthogonal to the basis, recording beta = 0 (the tridiagonal becomes
    block diagonal; its eigenvalues stay exact). ``stop(alphas, betas, beta_next)`` is asked
    after each step until the first breakdown. Returns ``(alphas, betas, stopped)``; the basis
    takes m·n memory.
    """
    n = q.numel()
    m = min(m, n)
    basis = torch.empty(m, n, dtype=q.dtype, device=q.device)  # (m, n) orthonormal rows
    basis[0] = q / torch.linalg.vector_norm(q)
    alphas: list[float] = []
    betas: list[float] = []
    tiny = _breakdown_tol(q.dtype)
    restarted = False
    scale = 0.0  # max |H q_j| so far, a lower bound on |H|: the size of rounding errors
    for j in range(m):
        w = _apply(hvp, basis[j], n)  # (n,)
        scale = max(scale, float(torch.linalg.vector_norm(w)))
        alpha = float(basis[j] @ w)
        w = w - alpha * basis[j]
        if j > 0:
            w = w - betas[-1] * basis[j - 1]
        w = _orthogonalise(w, basis[: j + 1])
        beta = float(torch.linalg.vector_norm(w))
        alphas.append(alpha)
        breakdown = beta <= tiny * scale  # invariant subspace: exact Ritz values
        if breakdown and restart is None:
            break
        # At a breakdown every Ritz pair has zero residual, yet copies of a repeated
        # eigenvalue may lie outside the subspace, and no residual can tell: go on from a
        # fresh direction, and from then on until the space or the steps run out.
        restarted = restarted or breakdown
        if not restarted and stop is not None and stop(alphas, betas, beta):
            return alphas, betas, True
        if j + 1 == m:
            break
        if breakdown and restart is not None:  # (without restart it stopped above)
            w = _orthogonalise(_gaussian(n, restart, q.dtype, q.device), basis[: j + 1])
            beta = 0.0
            w = w / torch.linalg.vector_norm(w)
        else:
            w = w / beta
        betas.append(beta)
        basis[j + 1] = w
    return alphas, betas, False


def ritz(alphas: Any, betas: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values and Gauss quadrature weights of a Lanczos tridiagonal.

    Parameters
    ----------
    alphas : array of float, shape (m,)
        Diagonal.
    betas : array of float, shape (m - 1,)
        Off-diagonal.

    Returns
    -------
    values : np.ndarray of float64, shape (m,)
        Eigenvalues of the tridiagonal, ascending.
    weights : np.ndarray of float64, shape (m,)
        Squared first components of its eigenvectors; they sum to 1. For Lanczos started from
        a unit vector ``v``, ``Σ w_j f(θ_j) ≈ vᵀ f(H) v``.

    Examples
    --------
    >>> values, weights = ritz([1.0, 1.0], [1.0])
    >>> values.round(6).tolist(), weights.round(6).tolist()
    ([0.0, 2.0], [0.5, 0.5])
    """
    a = np.asarray(alphas, dtype=np.float64)
    b = np.asarray(betas, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or b.shape != (a.size - 1,):
        raise fail("betas", "have one entry fewer than a non-empty 1-D 'alphas'",
                   f"shapes {a.shape} and {b.shape}")
    values, vectors = eigh_tridiagonal(a, b)
    return values, vectors[0] ** 2


# --------------------------------------------------------------------------- public


def lanczos(hvp: HVP, n: int, m: int, *, seed: Seed = 0, dtype: torch.dtype | None = None,
            device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos tridiagonalisation from a random unit Gaussian vector, fully reorthogonalised.

    Parameters
    ----------
    hvp : callable
        ``v (n,) -> H @ v (n,)`` for a symmetric ``H``.
    n : int
        Dimension.
    m : int
        Steps; capped at ``n``. Fewer are returned when the Krylov space becomes invariant
        (then the Ritz values are exact eigenvalues).
    seed : int or torch.Generator
    dtype, device : optional
        Where the vectors live (module docstring).

    Returns
    -------
    alphas : np.ndarray of float64, shape (m',)
    betas : np.ndarray of float64, shape (m' - 1,)
        The tridiagonal ``T = Qᵀ H Q``; ``m' <= m``.

    Notes
    -----
    Full reorthogonalisation keeps ``Q`` orthonormal to working precision, so no spurious
    copies of converged eigenvalues ("ghosts") appear; it costs O(m²n) flops and m·n memory.
    """
    n = check_positive_int(n, "n")
    m = check_positive_int(m, "m")
    dtype, device = _space(hvp, dtype, device)
    q = _gaussian(n, _generator(seed), dtype, device)
    alphas, betas, _ = _lanczos(hvp, q, m)
    return np.asarray(alphas, dtype=np.float64), np.asarray(betas, dtype=np.float64)


@dataclass(frozen=True)
class ExtremeEigenvalues:
    """Result of :func:`extreme_eigenvalues`.

    Attributes
    ----------
    top : np.ndarray of float64, shape (k,)
        The k largest eigenvalues, descending.
    bottom : float
        The smallest eigenvalue.
    iterations : int
        Lanczos steps (Hessian-vector products) used.
    converged : bool
        Whether every returned value reached relative residual ``tol`` within ``iters``.
    """

    top: np.ndarray
    bottom: float
    iterations: int
    converged: bool


def extreme_eigenvalues(hvp: HVP, n: int, *, k: int = 1, iters: int = 100, tol: float = 1e-5,
                        seed: Seed = 0, dtype: torch.dtype | None = None,
                        device: torch.device | str | None = None) -> ExtremeEigenvalues:
    """The k largest and the smallest eigenvalue of ``H`` from one Lanczos run.

    Parameters
    ----------
    hvp : callable
        ``v (n,) -> H @ v (n,)`` for a symmetric ``H``.
    n : int
    k : int
        How many of the largest eigenvalues, in [1, n].
    iters : int
        Most Lanczos steps (one ``hvp`` each); the run stops earlier once converged.
    tol : float
        Convergence: each wanted Ritz pair ``(θ, y)`` has ``|H y - θ y| <= tol · max|θ|``.
        The eigenvalue error is at most that residual, and typically its square over the gap.
    seed : int or torch.Generator
        Start vector (Gaussian) and restarts after an invariant subspace. One Krylov space
        holds one copy of each eigenvalue: when it is exhausted (tiny problems, e.g. with the
        repeated zero eigenvalues of a softmax Hessian), the run restarts orthogonally and
        goes on to ``iters`` (or n) steps without the early stop, so the copies are found.
        Copies of an eigenvalue that converges before any breakdown are not.
    dtype, device : optional
        Where the vectors live (module docstring).

    Returns
    -------
    ExtremeEigenvalues
        Not converged after ``iters`` steps: the current Ritz values, ``converged=False``.
    """
    n = check_positive_int(n, "n")
    k = check_positive_int(k, "k")
    if k > n:
        raise fail("k", f"be <= n ({n})", k)
    iters = check_positive_int(iters, "iters")
    if not (isinstance(tol, int | float) and tol > 0):
        raise fail("tol", "be a number > 0", tol)
    dtype, device = _space(hvp, dtype, device)
    gen = _generator(seed)
    q = _gaussian(n, gen, dtype, device)

    def converged(alphas: list[float], betas: list[float], beta_next: float) -> bool:
        if len(alphas) < min(k + 1, n):  # the bottom must be a different Ritz value
            return False
        values, vectors = eigh_tridiagonal(np.asarray(alphas), np.asarray(betas))
        residual = beta_next * np.abs(vectors[-1])  # |H y_i - θ_i y_i| for each Ritz pair i
        wanted = np.r_[residual[-k:], residual[0]]
        return bool(np.all(wanted <= tol * max(np.abs(values).max(), np.finfo(float).tiny)))

    alphas, betas, done = _lanczos(hvp, q, iters, restart=gen, stop=converged)
    values, _ = ritz(alphas, betas)
    done = done or len(alphas) == n  # a full tridiagonalisation is exact
    top = np.full(k, np.nan)
    top[: min(k, values.size)] = values[::-1][:k]
    return ExtremeEigenvalues(top, float(values[0]), len(alphas), bool(done))


def _warn_unconverged(result: ExtremeEigenvalues, iters: int) -> None:
    if not result.converged:
        warnings.warn(f"Lanczos did not converge in iters={iters} steps; the eigenvalues are "
                      f"the current Ritz values (raise 'iters' or 'tol')", RuntimeWarning,
                      stacklevel=3)


def top_eigenvalues(hvp: HVP, n: int, k: int = 1, *, iters: int = 100, tol: float = 1e-5,
                    seed: Seed = 0, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None) -> np.ndarray:
    """The k largest (most positive) eigenvalues of ``H``, descending, shape (k,).

    See :func:`extreme_eigenvalues` for the parameters; warns when not converged.
    """
    result = extreme_eigenvalues(hvp, n, k=k, iters=iters, tol=tol, seed=seed, dtype=dtype,
                                 device=device)
    _warn_unconverged(result, iters)
    return result.top


def bottom_eigenvalue(hvp: HVP, n: int, *, iters: int = 100, tol: float = 1e-5,
                      seed: Seed = 0, dtype: torch.dtype | None = None,
                      device: torch.device | str | None = None) -> float:
    """The smallest (most negative) eigenvalue of ``H``.

    Negative at a saddle point; its magnitude relative to :func:`top_eigenvalues` is the
    saddle-point evidence of Rangwani et al. (2022). See :func:`extreme_eigenvalues` for the
    parameters; warns when not converged.
    """
    result = extreme_eigenvalues(hvp, n, k=1, iters=iters, tol=tol, seed=seed, dtype=dtype,
                                 device=device)
    _warn_unconverged(result, iters)
    return result.bottom


def hutchinson_trace(hvp: HVP, n: int, samples: int = 64, *, seed: Seed = 0,
                     dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> tuple[float, float]:
    """Hutchinson's estimate of ``tr H`` from Rademacher probes, and its standard error.

    Parameters
    ----------
    hvp : callable
        ``v (n,) -> H @ v (n,)``.
    n : int
    samples : int
        Probes ``z`` (one ``hvp`` each), at least 2 for the standard error.
    seed : int or torch.Generator
    dtype, device : optional

    Returns
    -------
    estimate : float
        Mean of ``zᵀHz``; unbiased.
    se : float
        Sample standard deviation / sqrt(samples). Zero for a diagonal ``H`` (Rademacher
        probes then give the trace exactly).
    """
    n = check_positive_int(n, "n")
    samples = check_positive_int(samples, "samples", minimum=2)
    dtype, device = _space(hvp, dtype, device)
    gen = _generator(seed)
    values = np.empty(samples)
    for i in range(samples):
        z = _rademacher(n, gen, dtype, device)
        values[i] = float(z @ _apply(hvp, z, n))
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(samples))


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    """Result of :func:`spectral_density`.

    Attributes
    ----------
    grid : np.ndarray of float64, shape (G,)
    density : np.ndarray of float64, shape (G,)
        Integrates to 1 over ``grid`` (trapezoid rule).
    nodes : np.ndarray of float64, shape (V, m)
        Ritz values of each start vector; NaN-padded where Lanczos stopped early.
    weights : np.ndarray of float64, shape (V, m)
        Their quadrature weights (each row sums to 1; 0 in the padding).
    sigma : float
        Gaussian broadening (standard deviation).
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float


def slq_nodes(hvp: HVP, n: int, *, m: int = 64, n_vectors: int = 4, seed: Seed = 0,
              dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature nodes and weights, one row per start vector.

    Each start vector is a Rademacher vector scaled to unit length (so ``E[vvᵀ] = I/n`` and
    ``Σ_j w_j θ_j = vᵀHv`` estimates ``tr H / n``). Returns ``(nodes, weights)``, both
    (n_vectors, min(m, n)), NaN / 0 padded where Lanczos stopped at an invariant subspace.
    """
    n = check_positive_int(n, "n")
    m = check_positive_int(m, "m")
    n_vectors = check_positive_int(n_vectors, "n_vectors")
    dtype, device = _space(hvp, dtype, device)
    gen = _generator(seed)
    width = min(m, n)
    nodes = np.full((n_vectors, width), np.nan)
    weights = np.zeros((n_vectors, width))
    for i in range(n_vectors):
        v = _rademacher(n, gen, dtype, device)
        alphas, betas, _ = _lanczos(hvp, v, width)  # normalised inside
        values, w = ritz(alphas, betas)
        nodes[i, : values.size], weights[i, : values.size] = values, w
    return nodes, weights


def default_sigma(nodes: np.ndarray) -> float:
    """1% of the span of the finite ``nodes`` (1% of their magnitude when they coincide; 1e-3
    when they are all zero): a scale-free broadening."""
    finite = nodes[np.isfinite(nodes)]
    if finite.size == 0:
        return 1e-3
    span = float(finite.max() - finite.min())
    if span > 0:
        return 0.01 * span
    return 0.01 * float(np.abs(finite).max()) or 1e-3


def density_grid(nodes: np.ndarray, sigma: float, points: int = 512) -> np.ndarray:
    """``points`` evenly spaced values from 5 sigma below the smallest node to 5 above the
    largest: the Gaussian mass outside is below 1e-6."""
    finite = nodes[np.isfinite(nodes)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    return np.linspace(lo - 5 * sigma, hi + 5 * sigma, points)


def gaussian_density(nodes: Any, weights: Any, grid: Any, sigma: float) -> np.ndarray:
    """``ρ(λ) = mean over rows of Σ_j w_j N(λ; θ_j, σ²)`` on ``grid``, normalised to 1.

    Parameters
    ----------
    nodes, weights : array of float, shape (V, m) or (m,)
        Ritz values and weights (NaN nodes are padding and ignored).
    grid : array of float, shape (G,)
        Increasing.
    sigma : float
        Broadening, > 0.

    Returns
    -------
    np.ndarray of float64, shape (G,)
        Divided by its trapezoid integral over ``grid`` (so mass outside the grid is dropped,
        not lost); all zeros when nothing lands on the grid.
    """
    nodes = np.atleast_2d(np.asarray(nodes, dtype=np.float64))
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    grid = np.asarray(grid, dtype=np.float64)
    if not (isinstance(sigma, int | float) and sigma > 0 and math.isfinite(sigma)):
        raise fail("sigma", "be a finite number > 0", sigma)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.diff(grid) > 0):
        raise fail("grid", "be an increasing 1-D array of at least 2 points",
                   f"shape {grid.shape}")
    keep = np.isfinite(nodes)
    theta, w = nodes[keep], weights[keep] / nodes.shape[0]  # (P,), rows averaged
    z = (grid[:, None] - theta[None, :]) / sigma  # (G, P)
    rho = (np.exp(-0.5 * z**2) @ w) / (sigma * math.sqrt(2 * math.pi))  # (G,)
    mass = float(trapezoid(rho, grid))
    return rho / mass if mass > 0 else rho


def spectral_density(hvp: HVP, n: int, *, m: int = 64, n_vectors: int = 4, seed: Seed = 0,
                     grid: int | Any = 512, sigma: float | None = None,
                     dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> SpectralDensity:
    """Eigenvalue density of ``H`` by stochastic Lanczos quadrature.

    Parameters
    ----------
    hvp : callable
        ``v (n,) -> H @ v (n,)``.
    n : int
    m : int
        Lanczos steps per start vector (capped at n); ``m · n_vectors`` products in all.
    n_vectors : int
        Rademacher start vectors, averaged.
    seed : int or torch.Generator
    grid : int or array of float
        Number of points of the default grid (:func:`density_grid`), or the grid itself.
    sigma : float, optional
        Gaussian broadening; default :func:`default_sigma` (1% of the Ritz-value span).
    dtype, device : optional

    Returns
    -------
    SpectralDensity
        ``∫ρ = 1`` on the grid and ``∫λρ(λ)dλ ≈ tr H / n``.
    """
    nodes, weights = slq_nodes(hvp, n, m=m, n_vectors=n_vectors, seed=seed, dtype=dtype,
                               device=device)
    sigma = default_sigma(nodes) if sigma is None else sigma
    if isinstance(grid, int | np.integer) and not isinstance(grid, bool):
        points = check_positive_int(grid, "grid", minimum=2)
        if not (isinstance(sigma, int | float) and sigma > 0 and math.isfinite(sigma)):
            raise fail("sigma", "be a finite number > 0", sigma)
        grid = density_grid(nodes, sigma, points)
    density = gaussian_density(nodes, weights, grid, sigma)
    return SpectralDensity(np.asarray(grid, dtype=np.float64), density, nodes, weights,
                           float(sigma))
