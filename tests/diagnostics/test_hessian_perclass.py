"""per_class_hessian against the exact Hessian of each class's loss; result, plot, errors."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import trapezoid
from torch import nn

from classgap.diagnostics import (
    ALL_CLASSES,
    HessianResult,
    overall_hessian,
    per_class_hessian,
    plot_per_class_hessian,
    trainable_parameters,
)
from classgap.errors import InputError

F64 = torch.float64
COUNTS = (20, 12, 7)  # a long tail of 3 classes
EXACT: dict[str, Any] = {"lanczos_steps": 60, "tol": 1e-12, "trace_samples": 64,
                         "density_steps": 20, "density_vectors": 2, "grid": 256,
                         "progress": False}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, which spin-wait on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_model() -> nn.Sequential:
    """3 → 4 (tanh) → 3 with BatchNorm, float64 (39 parameters; BN must run in eval mode)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 3))
    model[1].running_mean = torch.linspace(-0.5, 0.5, 4)  # non-trivial running statistics
    model[1].running_var = torch.linspace(0.5, 2.0, 4)
    return model.double().train()


def toy_data() -> tuple[torch.Tensor, np.ndarray]:
    labels = np.repeat(np.arange(3), COUNTS)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(len(labels), 3, generator=g, dtype=F64) + torch.from_numpy(labels)[:, None]
    return x, labels


def exact_hessian(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> tuple[torch.Tensor, float]:
    """Exact Hessian (n, n) of the mean CE over (x, y) in eval mode, and the loss."""
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    params = trainable_parameters(model)
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    target = torch.from_numpy(y)
    was = model.training
    model.eval()

    def loss(theta: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [p.numel() for p in params])
        state = {k: v.view_as(p) for k, v, p in zip(names, pieces, params, strict=True)}
        return F.cross_entropy(torch.func.functional_call(model, state, (x,)), target)

    try:
        return torch.autograd.functional.hessian(loss, flat), float(loss(flat))
    finally:
        model.train(was)


@pytest.fixture(scope="module")
def exact_run() -> tuple[HessianResult, nn.Module, torch.Tensor, np.ndarray]:
    model = tiny_model()
    x, y = toy_data()
    result = per_class_hessian(model, x, y, k=2, batch_size=5, max_per_class=None, **EXACT)
    return result, model, x, y


def test_each_class_matches_exact_hessian_of_its_loss(
        exact_run: tuple[HessianResult, nn.Module, torch.Tensor, np.ndarray]) -> None:
    result, model, x, y = exact_run
    frame = result.to_frame()
    assert frame["class"].tolist() == [0, 1, 2] and frame["n"].tolist() == list(COUNTS)
    assert result.n_params == 3 * 4 + 4 + 4 + 4 + 4 * 3 + 3 == 39
    for row in frame.itertuples():
        H, loss = exact_hessian(model, x[y == row[1]], y[y == row[1]])
        ev = torch.linalg.eigvalsh(H).numpy()
        np.testing.assert_allclose(row.top_eigenvalue, ev[-1], rtol=1e-6)
        np.testing.assert_allclose(row.top_eigenvalue_2, ev[-2], rtol=1e-6)
        np.testing.assert_allclose(row.bottom_eigenvalue, ev[0], rtol=1e-6)
        assert row.bottom_eigenvalue < 0  # a saddle, so the ratio below is informative
        np.testing.assert_allclose(row.ratio, abs(ev[0]) / ev[-1], rtol=1e-6)
        assert abs(row.trace - float(torch.trace(H))) < 4 * row.trace_se
        np.testing.assert_allclose(row.loss, loss, rtol=1e-12)
    assert frame["converged"].all()
    assert model.training  # restored


def test_densities_share_a_grid_and_integrate_to_one(
        exact_run: tuple[HessianResult, nn.Module, torch.Tensor, np.ndarray]) -> None:
    result = exact_run[0]
    assert result.grid is not None and result.densities is not None
    assert result.grid.shape == (256,) and result.densities.shape == (3, 256)
    for rho in result.densities:
        assert math.isclose(trapezoid(rho, result.grid), 1.0, rel_tol=1e-9)
    assert result.settings["sigma"] > 0 and result.settings["seed"] == 0


def test_overall_is_the_pooled_loss() -> None:
    model = tiny_model()
    x, y = toy_data()
    result = overall_hessian(model, x, y, max_samples=None, density=False, **{
        k: v for k, v in EXACT.items() if not k.startswith(("density", "grid"))})
    H, _ = exact_hessian(model, x, y)
    ev = torch.linalg.eigvalsh(H).numpy()
    assert result.classes.tolist() == [ALL_CLASSES] and result.names == ("all",)
    np.testing.assert_allclose([result.top_eigenvalue[0], result.bottom_eigenvalue[0]],
                               [ev[-1], ev[0]], rtol=1e-6)
    assert result.grid is None and result.densities is None
    capped = overall_hessian(model, x, y, max_samples=10, density=False, progress=False)
    assert capped.n.tolist() == [10]


def test_seeded_cap_and_independence_of_other_classes() -> None:
    model = tiny_model()
    x, y = toy_data()
    opts: dict[str, Any] = {"max_per_class": 8, "lanczos_steps": 20, "trace_samples": 4,
                            "density_steps": 8, "density_vectors": 1, "progress": False}
    a = per_class_hessian(model, x, y, seed=3, **opts)
    b = per_class_hessian(model, x, y, seed=3, **opts)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert a.densities is not None and b.densities is not None
    assert np.array_equal(a.densities, b.densities)
    assert a.n.tolist() == [8, 8, 7]
    c = per_class_hessian(model, x, y, seed=4, **opts)
    assert not np.array_equal(a.trace, c.trace)
    # a class's numbers do not depend on which other classes are analysed
    only = per_class_hessian(model, x, y, seed=3, classes=[1], density=False,
                             **{k: v for k, v in opts.items() if not k.startswith("density")})
    row, full = only.to_frame().iloc[0], a.to_frame().iloc[1]
    assert row["class"] == 1
    for col in ("n", "loss", "top_eigenvalue", "bottom_eigenvalue", "trace", "trace_se"):
        assert row[col] == full[col], col


def test_transform_numpy_inputs_and_names() -> None:
    model = tiny_model()
    x, y = toy_data()
    opts: dict[str, Any] = {"lanczos_steps": 10, "trace_samples": 2, "density": False,
                            "progress": False}
    plain = per_class_hessian(model, x, y, **opts)
    scaled = per_class_hessian(model, (2 * x).numpy(), y.astype(np.int32),
                               transform=lambda t: t / 2, class_names=["a", "b", "c"], **opts)
    np.testing.assert_allclose(scaled.top_eigenvalue, plain.top_eigenvalue, rtol=1e-12)
    assert scaled.names == ("a", "b", "c") and plain.names == ("0", "1", "2")
    assert scaled.to_frame()["name"].tolist() == ["a", "b", "c"]


def test_ratio_is_nan_without_positive_curvature() -> None:
    r = HessianResult(classes=np.arange(3), names=("a", "b", "c"), n=np.ones(3, np.int64),
                      loss=np.zeros(3), top_eigenvalues=np.array([[2.0], [0.0], [-1.0]]),
                      bottom_eigenvalue=np.array([-1.0, -1.0, -2.0]), trace=np.zeros(3),
                      trace_se=np.zeros(3), iterations=np.ones(3, np.int64),
                      converged=np.ones(3, bool), grid=None, densities=None, n_params=5)
    assert r.ratio[0] == 0.5 and np.isnan(r.ratio[1:]).all()


def test_plot_writes_png(tmp_path: Path,
                         exact_run: tuple[HessianResult, nn.Module, torch.Tensor, np.ndarray],
                         ) -> None:
    result = exact_run[0]
    path = plot_per_class_hessian(result, tmp_path / "fig" / "hessian.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = tiny_model()
    x, y = toy_data()
    bare = per_class_hessian(model, x, y, density=False, lanczos_steps=5, trace_samples=2,
                             progress=False)
    assert plot_per_class_hessian(bare, tmp_path / "bare.png").stat().st_size > 1000
    with pytest.raises(InputError, match="'result' must be a HessianResult"):
        plot_per_class_hessian(result.to_frame(), tmp_path / "x.png")  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    model = tiny_model()
    x, y = toy_data()
    with pytest.raises(InputError, match="'classes' must name classes present in 'labels'; got 5"):
        per_class_hessian(model, x, y, classes=[0, 5])
    with pytest.raises(InputError, match=r"'images' must have as many rows as 'labels' \(39\)"):
        per_class_hessian(model, x[:10], y)
    with pytest.raises(InputError, match=r"'images' must be floating point .* dtype torch.uint8"):
        per_class_hessian(model, torch.zeros(39, 3, dtype=torch.uint8), y)
    with pytest.raises(InputError, match="'labels' must hold integers in"):
        per_class_hessian(model, x, y - 1)
    with pytest.raises(InputError, match="'class_names' must name every class up to 2"):
        per_class_hessian(model, x, y, class_names=["a"])
    with pytest.raises(InputError, match=r"'k' must be <= the number of trainable parameters"):
        per_class_hessian(model, x, y, k=100)
    with pytest.raises(InputError, match="'trace_samples' must be an integer >= 2; got 1"):
        per_class_hessian(model, x, y, trace_samples=1)
    with pytest.raises(InputError, match="'max_per_class' must be an integer >= 1; got 0"):
        per_class_hessian(model, x, y, max_per_class=0)
    with pytest.raises(InputError, match="'sigma' must be None or a finite number > 0"):
        per_class_hessian(model, x, y, sigma=-1.0)
    with pytest.raises(InputError, match="'seed' must be an integer >= 0; got -1"):
        per_class_hessian(model, x, y, seed=-1)
