"""ρ schedules: values at boundaries, endpoints, the DRW switch and config errors."""

from __future__ import annotations

import pytest
import torch

from classgap.errors import ConfigError, InputError
from classgap.optim import RHO_SCHEDULES, SAM, RhoSchedule, make_rho_schedule


def test_constant():
    s = make_rho_schedule("constant", 0.1)
    assert [s.rho_at(e) for e in (0, 1, 199)] == [0.1, 0.1, 0.1]
    assert s == RhoSchedule(name="constant", rho=0.1)


def test_step_values_at_boundaries():
    s = make_rho_schedule("step", 0.05, milestones=[5, 60, 75], values=[0.1, 0.5, 0.8])
    got = {e: s.rho_at(e) for e in (0, 4, 4.99, 5, 59, 60, 74, 75, 89)}
    assert got == {0: 0.05, 4: 0.05, 4.99: 0.05, 5: 0.1, 59: 0.1, 60: 0.5, 74: 0.5,
                   75: 0.8, 89: 0.8}
    assert s.milestones == (5.0, 60.0, 75.0)  # stored as a tuple: the dataclass stays hashable
    hash(s)


def test_imagenet_lt_recipe_with_drw_switch():
    # reference: 0.05 for (1-based) epochs <= 5, then 0.1, then 0.5 once DRW starts at 60
    s = make_rho_schedule("step", 0.05, milestones=(5,), values=(0.1,), drw_epoch=60,
                          drw_rho=0.5)
    assert [s.rho_at(e) for e in (0, 4, 5, 59, 60, 89)] == [0.05, 0.05, 0.1, 0.1, 0.5, 0.5]


def test_drw_switch_on_constant_and_linear():
    c = make_rho_schedule("constant", 0.1, epochs=200, drw_epoch=160, drw_rho=0.5)
    assert (c.rho_at(159), c.rho_at(160), c.rho_at(199)) == (0.1, 0.5, 0.5)
    lin = make_rho_schedule("linear", 0.0, rho_end=0.2, epochs=11, drw_epoch=5, drw_rho=0.9)
    assert lin.rho_at(4) == pytest.approx(0.08)
    assert lin.rho_at(5) == 0.9


def test_linear_endpoints_and_midpoint():
    s = make_rho_schedule("linear", 0.05, rho_end=0.8, epochs=200)
    assert s.rho_at(0) == 0.05
    assert s.rho_at(199) == 0.8  # exact at the last epoch
    assert s.rho_at(500) == 0.8  # clamped past the end
    assert s.rho_at(199 / 2) == pytest.approx((0.05 + 0.8) / 2)
    assert make_rho_schedule("linear", 0.3, rho_end=0.7, epochs=1).rho_at(0) == 0.3


def test_schedule_drives_sam():
    s = make_rho_schedule("step", 0.05, milestones=(2,), values=(0.1,))
    opt = SAM([torch.nn.Parameter(torch.ones(2))], torch.optim.SGD, lr=0.1)
    seen = []
    for epoch in range(4):
        opt.rho = s.rho_at(epoch)
        seen.append(opt.param_groups[0]["rho"])
    assert seen == [0.05, 0.05, 0.1, 0.1]


def test_registry_names():
    assert RHO_SCHEDULES == ("constant", "step", "linear")


# -- errors ------------------------------------------------------------------------------------
def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match=r"'name' must be one of 'constant', 'step', 'linear'; "
                                          r"got 'stpe' \(did you mean 'step'\?\)"):
        make_rho_schedule("stpe", 0.1)


@pytest.mark.parametrize(("kwargs", "pattern"), [
    (dict(name="constant", rho=-0.1), r"'rho' must be a finite number >= 0; got -0.1"),
    (dict(name="step", rho=0.1, milestones=(5, 5), values=(0.2, 0.3)),
     r"'milestones' must be strictly increasing; got \[5.0, 5.0\]"),
    (dict(name="step", rho=0.1, milestones=(5,), values=()), r"'values' must hold one ρ per"),
    (dict(name="step", rho=0.1, milestones=(-1,), values=(0.2,)),
     r"'milestones' must be an epoch index >= 0; got -1"),
    (dict(name="step", rho=0.1, milestones=(5,), values=(-0.2,)), r"'values' must be a finite"),
    (dict(name="constant", rho=0.1, milestones=(5,), values=(0.2,)),
     r"'milestones' must be empty unless name='step'"),
    (dict(name="linear", rho=0.1, epochs=10), r"'rho_end' must be given for name='linear'"),
    (dict(name="linear", rho=0.1, rho_end=0.5), r"'epochs' must be given for name='linear'"),
    (dict(name="linear", rho=0.1, rho_end=0.5, epochs=0), r"'epochs' must be an integer >= 1"),
    (dict(name="constant", rho=0.1, rho_end=0.5), r"'rho_end' must be None unless"),
    (dict(name="constant", rho=0.1, drw_epoch=160), r"'drw_rho' must be given when drw_epoch"),
    (dict(name="constant", rho=0.1, drw_rho=0.5), r"'drw_epoch' must be given when drw_rho"),
    (dict(name="constant", rho=0.1, drw_epoch=160, drw_rho=-1.0), r"'drw_rho' must be a finite"),
])
def test_bad_config(kwargs, pattern):
    name, rho = kwargs.pop("name"), kwargs.pop("rho")
    with pytest.raises(ConfigError, match=pattern):
        make_rho_schedule(name, rho, **kwargs)


@pytest.mark.parametrize("epoch", [-1, float("nan"), "3"])
def test_bad_epoch_is_an_input_error(epoch):
    with pytest.raises(InputError, match="'epoch' must be an epoch index >= 0"):
        make_rho_schedule("constant", 0.1).rho_at(epoch)
