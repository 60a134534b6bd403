"""Spectrum estimators against torch.linalg.eigvalsh of exact matrices and model Hessians."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import trapezoid
from torch import nn

from classgap.diagnostics import (
    HessianVectorProduct,
    bottom_eigenvalue,
    extreme_eigenvalues,
    gaussian_density,
    hutchinson_trace,
    lanczos,
    make_hvp,
    ritz,
    slq_nodes,
    spectral_density,
    top_eigenvalues,
    trainable_parameters,
)
from classgap.errors import InputError


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, which spin-wait on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


F64 = torch.float64
Exact = tuple[torch.Tensor, HessianVectorProduct]  # exact Hessian (n, n), its hvp


def model_hessian() -> Exact:
    """Exact (38, 38) Hessian of a tanh MLP's cross-entropy, and its hvp (indefinite)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(30, 3, generator=g, dtype=F64), torch.arange(30) % 3
    names = [k for k, _ in model.named_parameters()]
    params = trainable_parameters(model)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [p.numel() for p in params])
        state = {k: v.view_as(p) for k, v, p in zip(names, pieces, params, strict=True)}
        return F.cross_entropy(torch.func.functional_call(model, state, (x,)), y)

    H = torch.autograd.functional.hessian(loss, torch.cat([p.detach().ravel() for p in params]))
    return H, make_hvp(model, (x, y))


@pytest.fixture(scope="module")
def hessian() -> Exact:
    return model_hessian()


def random_symmetric(n: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=F64)
    return (a + a.T) / 2


class MatVec:
    """``v -> H @ v`` with the ``dtype`` attribute the estimators read (as make_hvp's has)."""

    def __init__(self, H: torch.Tensor) -> None:
        self.H, self.dtype = H, H.dtype

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.H @ v


def test_model_hessian_is_indefinite(hessian: Exact) -> None:
    H, _ = hessian
    ev = torch.linalg.eigvalsh(H)
    assert ev[0] < 0 < ev[-1]  # the test below checks a genuine saddle


def test_top_and_bottom_match_eigvalsh(hessian: Exact) -> None:
    H, hvp = hessian
    ev = torch.linalg.eigvalsh(H).numpy()
    top = top_eigenvalues(hvp, 38, k=3, iters=38, tol=1e-10, seed=0)
    np.testing.assert_allclose(top, ev[::-1][:3], rtol=1e-6)
    np.testing.assert_allclose(bottom_eigenvalue(hvp, 38, iters=38, tol=1e-10), ev[0], rtol=1e-6)
    result = extreme_eigenvalues(hvp, 38, k=2, iters=38, tol=1e-10, seed=5)
    assert result.converged and result.iterations <= 38
    np.testing.assert_allclose(result.top, ev[::-1][:2], rtol=1e-6)
    np.testing.assert_allclose(result.bottom, ev[0], rtol=1e-6)


def test_extremes_converge_early_on_a_spread_spectrum() -> None:
    """Well-separated extremes converge long before n steps; the stop is the residual test."""
    n = 200
    ev = np.r_[10.0, 9.0, np.linspace(-0.5, 1.0, n - 3), -4.0]
    H = torch.diag(torch.tensor(ev, dtype=F64))
    result = extreme_eigenvalues(MatVec(H), n, k=2, iters=200, tol=1e-8, seed=0)
    assert result.converged and result.iterations < 100
    np.testing.assert_allclose(result.top, [10.0, 9.0], rtol=1e-10)
    np.testing.assert_allclose(result.bottom, -4.0, rtol=1e-10)


def test_repeated_eigenvalues_found_with_multiplicity() -> None:
    """An invariant Krylov subspace restarts orthogonally, so copies are not lost."""
    ev = torch.tensor([5.0, 5.0, 5.0, 1.0, 0.5, -2.0, -2.0], dtype=F64)
    q, _ = torch.linalg.qr(torch.randn(7, 7, generator=torch.Generator().manual_seed(0),
                                       dtype=F64))
    H = q @ torch.diag(ev) @ q.T
    np.testing.assert_allclose(top_eigenvalues(MatVec(H), 7, k=3, tol=1e-12), [5, 5, 5],
                               rtol=1e-10)
    np.testing.assert_allclose(bottom_eigenvalue(MatVec(H), 7, tol=1e-12), -2.0, rtol=1e-10)


def test_zero_operator() -> None:
    zero = lambda v: torch.zeros_like(v)  # noqa: E731 - a plain callable: dtype given
    result = extreme_eigenvalues(zero, 10, k=2, dtype=F64)
    assert result.converged and result.top.tolist() == [0.0, 0.0] and result.bottom == 0.0
    assert hutchinson_trace(zero, 10, 4, dtype=F64) == (0.0, 0.0)
    density = spectral_density(zero, 10, m=5, n_vectors=2, dtype=F64)
    assert math.isclose(trapezoid(density.density, density.grid), 1.0, rel_tol=1e-9)


def test_lanczos_ritz_values_match_eigvalsh(hessian: Exact) -> None:
    H, hvp = hessian
    ev = torch.linalg.eigvalsh(H).numpy()
    scale = np.abs(ev).max()
    alphas, betas = lanczos(hvp, 38, 38, seed=1)
    # CE is invariant to a common shift of the 3 logits: the last layer's bias (1 direction)
    # and weights (5) give a 6-fold zero eigenvalue, of which one Krylov space sees one copy
    assert alphas.shape == (33,) and betas.shape == (32,)
    values, weights = ritz(alphas, betas)
    distinct = np.r_[ev[np.abs(ev) > 1e-9 * scale], 0.0]
    np.testing.assert_allclose(np.sort(values), np.sort(distinct), atol=1e-9 * scale)
    assert math.isclose(weights.sum(), 1.0, rel_tol=1e-12)
    few, _ = lanczos(hvp, 38, 12, seed=1)  # the same start: the same first coefficients
    np.testing.assert_allclose(few, alphas[:12], rtol=1e-8, atol=1e-12)
    small, _ = ritz(*lanczos(hvp, 38, 25, seed=1))  # extremes converge first
    np.testing.assert_allclose([small[0], small[-1]], [ev[0], ev[-1]], rtol=1e-4)


def test_lanczos_stops_at_invariant_subspace() -> None:
    H = torch.diag(torch.tensor([2.0, 2.0, 1.0, 1.0], dtype=F64))  # minimal polynomial degree 2
    alphas, betas = lanczos(MatVec(H), 4, 4)
    assert alphas.shape == (2,) and betas.shape == (1,)
    np.testing.assert_allclose(np.sort(ritz(alphas, betas)[0]), [1.0, 2.0], rtol=1e-12)


def test_hutchinson_trace(hessian: Exact) -> None:
    H, _ = hessian
    hvp = MatVec(H)  # many probes: the exact matrix is faster than double backprop
    exact = float(torch.trace(H))
    est, se = hutchinson_trace(hvp, 38, 400, seed=0)
    assert se > 0 and abs(est - exact) < 4 * se
    assert hutchinson_trace(hvp, 38, 20, seed=3) == hutchinson_trace(hvp, 38, 20, seed=3)
    assert hutchinson_trace(hvp, 38, 20, seed=3) != hutchinson_trace(hvp, 38, 20, seed=4)
    D = torch.diag(torch.arange(1.0, 11.0, dtype=F64))  # diagonal: exact from one probe
    assert hutchinson_trace(MatVec(D), 10, 2) == (55.0, 0.0)


def test_spectral_density_integrates_to_one_with_mean_trace_over_n(
        hessian: Exact) -> None:
    H, _ = hessian
    hvp = MatVec(H)  # 1000 products: the exact matrix is faster than double backprop
    n, vectors = 38, 50
    density = spectral_density(hvp, n, m=20, n_vectors=vectors, seed=0)
    assert density.grid.shape == density.density.shape == (512,)
    assert np.all(density.density >= 0)
    assert math.isclose(trapezoid(density.density, density.grid), 1.0, rel_tol=1e-9)
    mean = trapezoid(density.grid * density.density, density.grid)
    # mean = average of z^T H z / n over Rademacher z: Var(z^T H z) = 2 sum_{i != j} H_ij^2
    off = H - torch.diag(torch.diag(H))
    se = math.sqrt(2 * float((off**2).sum())) / n / math.sqrt(vectors)
    assert abs(mean - float(torch.trace(H)) / n) < 4 * se
    np.testing.assert_allclose(density.weights.sum(axis=1), 1.0, rtol=1e-12)
    # the quadrature itself: sum_j w_j theta_j is exactly v^T H v, so the pooled node mean
    # equals the density mean up to the (tiny) Gaussian mass outside the grid
    assert math.isclose(np.nansum(density.nodes * density.weights) / vectors, mean,
                        rel_tol=1e-6, abs_tol=1e-9)


def test_slq_nodes_with_full_lanczos_are_the_eigenvalues(
        hessian: Exact) -> None:
    H, hvp = hessian
    ev = torch.linalg.eigvalsh(H).numpy()
    scale = np.abs(ev).max()
    nodes, weights = slq_nodes(hvp, 38, m=100, n_vectors=2, seed=0)
    assert nodes.shape == weights.shape == (2, 38)
    distinct = np.sort(np.r_[ev[np.abs(ev) > 1e-9 * scale], 0.0])  # see the Lanczos test
    for row, w in zip(nodes, weights, strict=True):
        assert np.isnan(row[33:]).all() and (w[33:] == 0).all()  # padding
        np.testing.assert_allclose(row[:33], distinct, atol=1e-9 * scale)


def test_gaussian_density_single_node_is_the_normal_pdf() -> None:
    grid = np.linspace(-6, 6, 2001)
    rho = gaussian_density([[0.0, np.nan]], [[1.0, 0.0]], grid, 1.0)
    np.testing.assert_allclose(rho, np.exp(-grid**2 / 2) / math.sqrt(2 * math.pi), rtol=1e-6)


def test_seeded_and_float32() -> None:
    H = random_symmetric()
    ev = torch.linalg.eigvalsh(H).numpy()
    a = spectral_density(MatVec(H), 40, m=10, n_vectors=3, seed=7)
    b = spectral_density(MatVec(H), 40, m=10, n_vectors=3, seed=torch.Generator().manual_seed(7))
    assert np.array_equal(a.density, b.density) and np.array_equal(a.nodes, b.nodes)
    H32 = H.float()
    top = top_eigenvalues(MatVec(H32), 40, k=1, iters=40, tol=1e-5, dtype=torch.float32)
    np.testing.assert_allclose(top, ev[-1:], rtol=1e-4)


def test_unconverged_warns() -> None:
    H = random_symmetric()
    with pytest.warns(RuntimeWarning, match="did not converge in iters=3"):
        top_eigenvalues(MatVec(H), 40, iters=3)
    assert not extreme_eigenvalues(MatVec(H), 40, iters=3).converged


def test_bad_inputs() -> None:
    H = random_symmetric(5)
    f = MatVec(H)
    with pytest.raises(InputError, match=r"'k' must be <= n \(5\); got 6"):
        top_eigenvalues(f, 5, k=6)
    with pytest.raises(InputError, match="'k' must be an integer >= 1; got 0"):
        top_eigenvalues(f, 5, k=0)
    with pytest.raises(InputError, match="'n' must be an integer >= 1"):
        lanczos(f, 0, 3)
    with pytest.raises(InputError, match="'samples' must be an integer >= 2; got 1"):
        hutchinson_trace(f, 5, 1)
    with pytest.raises(InputError, match="'seed' must be an integer >= 0"):
        hutchinson_trace(f, 5, 4, seed=-1)
    with pytest.raises(InputError, match="'tol' must be a number > 0"):
        extreme_eigenvalues(f, 5, tol=0)
    with pytest.raises(InputError, match="'sigma' must be a finite number > 0; got 0"):
        spectral_density(f, 5, m=3, sigma=0)
    with pytest.raises(InputError, match="'grid' must be an increasing"):
        spectral_density(f, 5, m=3, grid=np.array([1.0, 0.0]))
    with pytest.raises(InputError, match=r"'hvp' must return a tensor of shape \(5,\)"):
        lanczos(lambda v: v[:2], 5, 3)
    with pytest.raises(InputError, match="'betas' must have one entry fewer"):
        ritz([1.0, 2.0], [1.0, 2.0])
