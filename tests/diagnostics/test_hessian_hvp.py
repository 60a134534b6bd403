"""Hessian-vector products against the exact Hessian of a tiny float64 model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from classgap.diagnostics import make_hvp, trainable_parameters
from classgap.errors import InputError

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, which spin-wait on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_mlp(seed: int = 0, batchnorm: bool = False) -> nn.Sequential:
    """3 → 5 (tanh) → 3: 38 parameters (48 with BatchNorm), float64."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(3, 5)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(5))
    layers += [nn.Tanh(), nn.Linear(5, 3)]
    return nn.Sequential(*layers).double()


def toy_data(n: int = 30, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.arange(n) % 3


def exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, n) Hessian of the mean cross-entropy over the flattened trainable parameters,
    with the model in eval mode."""
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    params = trainable_parameters(model)
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    was = model.training
    model.eval()

    def loss(theta: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [p.numel() for p in params])
        state = {k: v.view_as(p) for k, v, p in zip(names, pieces, params, strict=True)}
        return F.cross_entropy(torch.func.functional_call(model, state, (x,)), y)

    try:
        return torch.autograd.functional.hessian(loss, flat)
    finally:
        model.train(was)


def test_hvp_matches_exact_hessian_times_v() -> None:
    model = tiny_mlp()
    x, y = toy_data()
    H = exact_hessian(model, x, y)
    hvp = make_hvp(model, (x, y))
    assert hvp.n == H.shape[0] == 38 and hvp.dtype == torch.float64
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        v = torch.randn(hvp.n, generator=g, dtype=torch.float64)
        torch.testing.assert_close(hvp(v), H @ v, rtol=1e-10, atol=1e-12)


def test_batches_average_by_sample_count() -> None:
    """Unequal batches give the Hessian of the mean over all samples, not of batch means."""
    model = tiny_mlp()
    x, y = toy_data(31)
    H = exact_hessian(model, x, y)
    hvp = make_hvp(model, [(x[:4], y[:4]), (x[4:20], y[4:20]), (x[20:], y[20:])])
    v = torch.randn(hvp.n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(hvp(v), H @ v, rtol=1e-10, atol=1e-12)


def test_batchnorm_is_evaluated_in_eval_mode_and_mode_restored() -> None:
    model = tiny_mlp(batchnorm=True)
    x, y = toy_data()
    model.train()
    with torch.no_grad():  # non-trivial running statistics
        model[1].running_mean = torch.full((5,), 0.3, dtype=F64)
        model[1].running_var = torch.full((5,), 2.0, dtype=F64)
    stats = torch.full((5,), 0.3, dtype=F64)
    H = exact_hessian(model, x, y)  # eval mode: running statistics
    hvp = make_hvp(model, [(x[:7], y[:7]), (x[7:], y[7:])])
    v = torch.randn(hvp.n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(hvp(v), H @ v, rtol=1e-10, atol=1e-12)
    assert model.training  # restored
    assert torch.equal(model.state_dict()["1.running_mean"], stats)  # not updated


def test_frozen_parameters_are_excluded() -> None:
    model = tiny_mlp()
    model[0].weight.requires_grad_(False)
    x, y = toy_data()
    hvp = make_hvp(model, (x, y))
    assert hvp.n == 38 - 15
    H = exact_hessian(model, x, y)
    v = torch.ones(hvp.n, dtype=torch.float64)
    torch.testing.assert_close(hvp(v), H @ v, rtol=1e-10, atol=1e-12)


def test_linear_loss_has_zero_hessian() -> None:
    """A parameter the loss is linear in (here: the only one) contributes zeros, not errors."""
    class Shift(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = nn.Parameter(torch.zeros(2, dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.b.sum()  # every logit shifted equally: CE does not depend on b

    hvp = make_hvp(Shift(), (torch.zeros(3, 2, dtype=torch.float64), torch.tensor([0, 1, 0])))
    assert torch.equal(hvp(torch.ones(2, dtype=torch.float64)), torch.zeros(2, dtype=torch.float64))


def test_bad_inputs() -> None:
    model = tiny_mlp()
    x, y = toy_data()
    hvp = make_hvp(model, (x, y))
    with pytest.raises(InputError, match=r"'v' must have shape \(38,\); got shape \(5,\)"):
        hvp(torch.zeros(5, dtype=torch.float64))
    with pytest.raises(InputError, match="'batches'"):
        make_hvp(model, [])
    with pytest.raises(InputError, match="'batches' must hold non-empty x and y of equal"):
        make_hvp(model, (x, y[:3]))
    frozen = tiny_mlp().requires_grad_(False)
    with pytest.raises(InputError, match="'model' must have trainable parameters"):
        make_hvp(frozen, (x, y))
