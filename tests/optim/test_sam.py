"""SAM: hand-computed half-steps, equivalence with the base optimizer at ρ = 0, state, errors."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch import nn

from classgap.errors import ConfigError, InputError
from classgap.optim import SAM

F64 = torch.float64
EPS = 1e-12  # in ε's denominator: expected values below include it, so tolerances stay ~1 ulp


def _param(*values: float) -> nn.Parameter:
    return nn.Parameter(torch.tensor(values, dtype=F64))


def _linear_grad(w: nn.Parameter, a: torch.Tensor) -> None:
    """Gradient of f(w) = aᵀw, i.e. g = a whatever w."""
    w.grad = None
    (a @ w).backward()


# -- first_step: ε by hand -----------------------------------------------------------------------
def test_first_step_moves_by_rho_along_normalised_gradient():
    # f(w) = 3 w0 + 4 w1: g = (3, 4), ‖g‖ = 5, ε = ρ (3, 4) / 5 = (0.3, 0.4) at ρ = 0.5
    w = _param(1.0, 2.0)
    opt = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1)
    _linear_grad(w, torch.tensor([3.0, 4.0], dtype=F64))
    opt.first_step()
    eps = 0.5 * torch.tensor([3.0, 4.0], dtype=F64) / (5.0 + EPS)
    torch.testing.assert_close(w.detach(), torch.tensor([1.0, 2.0], dtype=F64) + eps,
                               rtol=0, atol=1e-15)
    assert torch.linalg.vector_norm(w.detach() - torch.tensor([1.0, 2.0], dtype=F64)).item() \
        == pytest.approx(0.5, abs=1e-12)  # ‖ε‖ = ρ
    opt.second_step()  # restore, then SGD with the (constant) gradient: w - 0.1 (3, 4)
    torch.testing.assert_close(w.detach(), torch.tensor([1.0 - 0.3, 2.0 - 0.4], dtype=F64),
                               rtol=0, atol=1e-15)


def test_global_norm_spans_all_groups():
    # g = 3 in one group and 4 in another: ‖g‖ is 5 over both, not 1 per group
    a, b = _param(0.0), _param(0.0)
    opt = SAM([{"params": [a]}, {"params": [b], "lr": 0.5}], torch.optim.SGD, rho=1.0, lr=0.1)
    a.grad = torch.tensor([3.0], dtype=F64)
    b.grad = torch.tensor([4.0], dtype=F64)
    opt.first_step()
    assert a.item() == pytest.approx(3.0 / (5.0 + EPS), abs=1e-15)
    assert b.item() == pytest.approx(4.0 / (5.0 + EPS), abs=1e-15)


def test_adaptive_scales_by_weight_magnitude():
    # ASAM: ε = ρ w² g / ‖|w| g‖; w = (1, -2), g = (3, 4): |w| g = (3, 8), norm √73,
    # w² g = (3, 16)
    w = _param(1.0, -2.0)
    opt = SAM([w], torch.optim.SGD, rho=0.2, adaptive=True, lr=0.1)
    _linear_grad(w, torch.tensor([3.0, 4.0], dtype=F64))
    opt.first_step()
    eps = 0.2 * torch.tensor([3.0, 16.0], dtype=F64) / (math.sqrt(73.0) + EPS)
    torch.testing.assert_close(w.detach(), torch.tensor([1.0, -2.0], dtype=F64) + eps,
                               rtol=0, atol=1e-15)


def test_zero_gradient_gives_zero_perturbation():
    w = _param(1.0, 2.0)
    opt = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1)
    w.grad = torch.zeros(2, dtype=F64)
    opt.first_step()
    assert torch.equal(w.detach(), torch.tensor([1.0, 2.0], dtype=F64))


def test_params_without_grad_are_skipped():
    w, unused = _param(1.0, 2.0), _param(5.0)
    opt = SAM([w, unused], torch.optim.SGD, rho=0.5, lr=0.1, momentum=0.9, weight_decay=0.1)
    _linear_grad(w, torch.tensor([3.0, 4.0], dtype=F64))
    opt.first_step(zero_grad=True)
    assert unused.item() == 5.0
    _linear_grad(w, torch.tensor([3.0, 4.0], dtype=F64))
    opt.second_step()
    assert unused.item() == 5.0  # no grad: neither perturbed nor stepped (weight decay too)


# -- the full step: gradient at w + ε ------------------------------------------------------------
def _quadratic(A: torch.Tensor):
    def f(w: torch.Tensor) -> torch.Tensor:
        return 0.5 * w @ A @ w
    return f


def test_base_step_uses_gradient_at_perturbed_point():
    # f = ½ wᵀAw, A = diag(3, 4), w = (1, 1): g = (3, 4), ε = ρ (0.6, 0.8) = (0.3, 0.4) at ρ = .5
    # new w = w - lr A (w + ε) = (1 - 0.1·3·1.3, 1 - 0.1·4·1.4) = (0.61, 0.44); plain SGD: (.7, .6)
    A = torch.diag(torch.tensor([3.0, 4.0], dtype=F64))
    f = _quadratic(A)
    w = _param(1.0, 1.0)
    opt = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1)

    def closure():
        loss = f(w)
        loss.backward()
        return loss

    opt.zero_grad()
    loss0 = closure()
    loss1 = opt.step(closure)
    eps = 0.5 * torch.tensor([3.0, 4.0], dtype=F64) / (5.0 + EPS)
    w0 = torch.tensor([1.0, 1.0], dtype=F64)
    torch.testing.assert_close(w.detach(), w0 - 0.1 * A @ (w0 + eps), rtol=0, atol=1e-15)
    torch.testing.assert_close(w.detach(), torch.tensor([0.61, 0.44], dtype=F64),
                               rtol=0, atol=1e-12)
    # step returns the closure's loss, taken at w + ε = (1.3, 1.4): ½ (3·1.69 + 4·1.96)
    assert loss1.item() == pytest.approx(0.5 * (3 * 1.69 + 4 * 1.96))
    assert loss0.item() == pytest.approx(3.5)
    # the gradients left behind are those at w + ε
    torch.testing.assert_close(w.grad, torch.tensor([3.9, 5.6], dtype=F64))


def test_sam_lowers_a_quadratic_loss():
    gen = torch.Generator().manual_seed(0)
    M = torch.randn(5, 5, generator=gen, dtype=F64)
    A = M @ M.T / 5 + 0.5 * torch.eye(5, dtype=F64)  # SPD, eigenvalues in ~[0.5, 3]
    f = _quadratic(A)
    w = nn.Parameter(3.0 * torch.randn(5, generator=gen, dtype=F64))
    opt = SAM([w], torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.5)

    def closure():
        loss = f(w)
        loss.backward()
        return loss

    losses = []
    for _ in range(60):
        opt.zero_grad()
        losses.append(closure().item())
        opt.step(closure)
    assert losses[-1] < 1e-2 * losses[0]
    assert f(w).item() < losses[0]


# -- ρ = 0 is the base optimizer -----------------------------------------------------------------
def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to(F64)


def _groups(model: nn.Module) -> list[dict]:
    params = list(model.parameters())
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-3},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def test_rho_zero_matches_base_optimizer_bitwise():
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 6, generator=gen, dtype=F64),
                torch.randint(0, 3, (16,), generator=gen)) for _ in range(5)]
    kw = dict(lr=0.1, momentum=0.9, nesterov=True)
    plain, sam_model = _mlp(), _mlp()
    sgd = torch.optim.SGD(_groups(plain), **kw)
    sam = SAM(_groups(sam_model), torch.optim.SGD, rho=0.0, **kw)
    for x, y in batches:
        sgd.zero_grad()
        nn.functional.cross_entropy(plain(x), y).backward()
        sgd.step()

        def closure(x=x, y=y):
            loss = nn.functional.cross_entropy(sam_model(x), y)
            loss.backward()
            return loss

        sam.zero_grad()
        closure()
        sam.step(closure)
    for p, q in zip(plain.parameters(), sam_model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_rho_positive_differs_from_base_optimizer():
    x, y = torch.randn(16, 6, dtype=F64), torch.randint(0, 3, (16,))
    plain, sam_model = _mlp(), _mlp()
    sgd = torch.optim.SGD(plain.parameters(), lr=0.1)
    sam = SAM(sam_model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    nn.functional.cross_entropy(plain(x), y).backward()
    sgd.step()

    def closure():
        loss = nn.functional.cross_entropy(sam_model(x), y)
        loss.backward()
        return loss

    closure()
    sam.step(closure)
    assert not torch.equal(plain[0].weight, sam_model[0].weight)


# -- models, precision, schedules ----------------------------------------------------------------
def _train_step(model: nn.Module, opt: SAM, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    def closure():
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.zero_grad()
    closure()
    return opt.step(closure)


def test_batchnorm_statistics_update_in_both_passes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    bn = model[1]
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)
    before = bn.running_mean.clone()
    loss = _train_step(model, opt, torch.randn(32, 4) + 2.0, torch.randint(0, 2, (32,)))
    assert bn.num_batches_tracked.item() == 2
    assert not torch.equal(bn.running_mean, before)
    assert torch.isfinite(loss)


def test_bf16_autocast_runs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1)
    w0 = model[0].weight.detach().clone()
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))

    def closure():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.zero_grad()
    closure()
    opt.step(closure)
    assert model[0].weight.dtype == torch.float32
    assert torch.isfinite(model[0].weight).all()
    assert not torch.equal(model[0].weight, w0)


def test_rho_property_sets_every_group():
    model = _mlp()
    opt = SAM(_groups(model), torch.optim.SGD, rho=0.05, lr=0.1)
    assert opt.rho == 0.05
    opt.rho = 0.5
    assert [g["rho"] for g in opt.param_groups] == [0.5, 0.5]
    assert opt.rho == 0.5
    with pytest.raises(ConfigError, match="'rho' must be a finite number >= 0; got -1"):
        opt.rho = -1


def test_groups_are_shared_with_base_optimizer_and_lr_scheduler():
    model = _mlp()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1)
    assert opt.param_groups is opt.base_optimizer.param_groups
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
    _train_step(model, opt, torch.randn(4, 6, dtype=F64), torch.randint(0, 3, (4,)))
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_add_param_group_reaches_base_optimizer():
    w, extra = _param(1.0, 2.0), _param(3.0)
    opt = SAM([w], torch.optim.SGD, rho=0.0, lr=0.1)
    opt.add_param_group({"params": [extra], "lr": 1.0})
    assert len(opt.base_optimizer.param_groups) == 2
    assert opt.param_groups[1]["rho"] == 0.0
    w.grad, extra.grad = torch.tensor([3.0, 4.0], dtype=F64), torch.tensor([2.0], dtype=F64)
    opt.first_step()
    opt.second_step()
    assert extra.item() == pytest.approx(1.0)  # 3 - 1.0 · 2


# -- state -------------------------------------------------------------------------------------
def test_state_dict_round_trip_keeps_momentum():
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(8, 6, generator=gen, dtype=F64),
                torch.randint(0, 3, (8,), generator=gen)) for _ in range(4)]
    kw = dict(rho=0.2, lr=0.1, momentum=0.9, weight_decay=1e-3)
    model = _mlp()
    opt = SAM(_groups(model), torch.optim.SGD, **kw)
    for x, y in batches[:3]:
        _train_step(model, opt, x, y)
    opt.rho = 0.3
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    sd = opt.state_dict()
    assert "momentum_buffer" in sd["state"][0]
    assert sd["param_groups"][0]["rho"] == 0.3

    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    resumed = _mlp()
    resumed.load_state_dict(ckpt["model"])
    opt2 = SAM(_groups(resumed), torch.optim.SGD, **kw)
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.rho == 0.3
    assert opt2.state is opt2.base_optimizer.state
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    x, y = batches[3]
    _train_step(model, opt, x, y)
    _train_step(resumed, opt2, x, y)
    for p, q in zip(model.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_loads_a_plain_base_optimizer_state_dict():
    model = _mlp()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = SAM(copy.deepcopy(model).parameters(), torch.optim.SGD, rho=0.2, lr=0.1, momentum=0.9)
    opt.load_state_dict(sgd.state_dict())
    assert opt.rho == 0.2 and opt.param_groups[0]["adaptive"] is False


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_bad_rho_is_a_config_error(rho):
    with pytest.raises(ConfigError, match=r"'rho' must be a finite number >= 0; got"):
        SAM([_param(1.0)], torch.optim.SGD, rho=rho, lr=0.1)


def test_negative_rho_message_names_the_value():
    with pytest.raises(ConfigError, match=r"^'rho' must be a finite number >= 0; got -0\.1$"):
        SAM([_param(1.0)], torch.optim.SGD, rho=-0.1, lr=0.1)


def test_negative_group_rho_is_a_config_error():
    with pytest.raises(ConfigError, match="'rho'"):
        SAM([{"params": [_param(1.0)], "rho": -1.0}], torch.optim.SGD, lr=0.1)


@pytest.mark.parametrize("base", [torch.optim.SGD([_param(1.0)], lr=0.1), "sgd", int, SAM])
def test_base_optimizer_must_be_an_optimizer_class(base):
    with pytest.raises(ConfigError, match=r"'base_optimizer' must be a torch\.optim\.Optimizer"):
        SAM([_param(1.0)], base, lr=0.1)


def test_adaptive_must_be_bool():
    with pytest.raises(ConfigError, match="'adaptive' must be True or False; got 'yes'"):
        SAM([_param(1.0)], torch.optim.SGD, adaptive="yes", lr=0.1)


def test_second_step_before_first_step():
    opt = SAM([_param(1.0)], torch.optim.SGD, lr=0.1)
    with pytest.raises(InputError, match=r"second_step\(\) must follow first_step\(\)"):
        opt.second_step()


def test_first_step_twice_in_a_row():
    w = _param(1.0)
    opt = SAM([w], torch.optim.SGD, lr=0.1)
    w.grad = torch.ones(1, dtype=F64)
    opt.first_step()
    with pytest.raises(InputError, match="two first_step"):
        opt.first_step()


def test_first_step_without_gradients():
    opt = SAM([_param(1.0)], torch.optim.SGD, lr=0.1)
    with pytest.raises(InputError, match=r"call loss.backward\(\)"):
        opt.first_step()


@pytest.mark.parametrize("closure", [None, 3])
def test_step_needs_a_closure(closure):
    w = _param(1.0)
    opt = SAM([w], torch.optim.SGD, lr=0.1)
    w.grad = torch.ones(1, dtype=F64)
    with pytest.raises(InputError, match="'closure' must be a callable"):
        opt.step(closure)
    assert w.item() == 1.0  # nothing moved


def test_failing_closure_restores_weights():
    w = _param(1.0, 2.0)
    opt = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1)
    w.grad = torch.tensor([3.0, 4.0], dtype=F64)

    def closure():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        opt.step(closure)
    assert torch.equal(w.detach(), torch.tensor([1.0, 2.0], dtype=F64))
    w.grad = torch.tensor([3.0, 4.0], dtype=F64)
    opt.first_step()  # usable again: no stale perturbation
