"""ρ schedules for SAM: constant, step and linear, with an optional switch when DRW starts.

Epochs are **0-based**, as in the trainer's loop (``for epoch in range(epochs)``) and its LR
``step`` schedule: a milestone ``m`` takes effect from epoch index ``m`` on. The reference
ImageNet-LT recipe (Rangwani et al. 2022, ``adjust_rho`` in ``imnet_train_sam.py``) counts
1-based epochs, "ρ = 0.05 for epochs ≤ 5", which is 0-based epochs 0-4, i.e. a milestone at 5;
its DRW starts at 0-based epoch 60 (``epoch // 60``)::

    make_rho_schedule("step", 0.05, milestones=(5,), values=(0.1,), drw_epoch=60, drw_rho=0.5)

The schedule is stepped once per epoch by the caller: ``sam.rho = schedule.rho_at(epoch)``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from classgap._validation import check_choice, fail
from classgap.errors import ConfigError, InputError

__all__ = ["RHO_SCHEDULES", "RhoSchedule", "check_rho", "make_rho_schedule"]

RHO_SCHEDULES = ("constant", "step", "linear")


def _is_real(value: Any) -> bool:
    """A finite int or float (booleans refused: ``rho=True`` is a typo, not 1.0)."""
    return (isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool) and math.isfinite(value))


def check_rho(value: Any, name: str = "rho") -> float:
    """Return ``value`` as a float, or raise :class:`ConfigError` unless it is finite and >= 0.

    >>> check_rho(0.05)
    0.05
    """
    if not (_is_real(value) and value >= 0):
        raise fail(name, "be a finite number >= 0", value, error=ConfigError)
    return float(value)


def _check_epoch(value: Any, name: str) -> float:
    if not (_is_real(value) and value >= 0):
        raise fail(name, "be an epoch index >= 0", value, error=ConfigError)
    return float(value)


@dataclass(frozen=True)
class RhoSchedule:
    """ρ as a function of the (0-based) epoch; build it with :func:`make_rho_schedule`.

    Attributes
    ----------
    name : {"constant", "step", "linear"}
    rho : float
        ρ at epoch 0 (and throughout for ``constant``).
    milestones, values : tuple of float
        ``step`` only: ρ becomes ``values[i]`` from epoch ``milestones[i]`` on.
    rho_end : float or None
        ``linear`` only: ρ at the last epoch ``epochs - 1``.
    epochs : int or None
        Length of the run; required by ``linear``, accepted (and unused) by the others so a
        caller can always pass it.
    drw_epoch, drw_rho : float or None
        From epoch ``drw_epoch`` on, ρ is ``drw_rho`` whatever the base schedule says ("large
        ρ with re-weighting"). Both or neither.
    """

    name: str = "constant"
    rho: float = 0.05
    milestones: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    rho_end: float | None = None
    epochs: int | None = None
    drw_epoch: float | None = None
    drw_rho: float | None = None

    def __post_init__(self) -> None:
        try:
            check_choice(self.name, "name", RHO_SCHEDULES)
        except InputError as exc:  # a schedule name is configuration
            raise ConfigError(str(exc)) from None
        check_rho(self.rho, "rho")
        milestones = tuple(_check_epoch(m, "milestones") for m in self.milestones)
        values = tuple(check_rho(v, "values") for v in self.values)
        object.__setattr__(self, "milestones", milestones)
        object.__setattr__(self, "values", values)
        if self.name == "step":
            if any(b <= a for a, b in pairwise(milestones)):
                raise fail("milestones", "be strictly increasing", list(milestones),
                           error=ConfigError)
            if len(values) != len(milestones):
                raise fail("values", f"hold one ρ per milestone ({len(milestones)})",
                           list(values), error=ConfigError)
        elif milestones or values:
            # silently ignoring them would hide a wrong schedule name
            raise fail("milestones", "be empty unless name='step'", list(milestones),
                       error=ConfigError)
        if self.name == "linear":
            if self.rho_end is None:
                raise fail("rho_end", "be given for name='linear'", None, error=ConfigError)
            check_rho(self.rho_end, "rho_end")
            if self.epochs is None:
                raise fail("epochs", "be given for name='linear'", None, error=ConfigError)
        elif self.rho_end is not None:
            raise fail("rho_end", "be None unless name='linear'", self.rho_end,
                       error=ConfigError)
        if self.epochs is not None and (isinstance(self.epochs, bool)
                                        or not isinstance(self.epochs, int | np.integer)
                                        or self.epochs < 1):
            raise fail("epochs", "be an integer >= 1", self.epochs, error=ConfigError)
        if (self.drw_epoch is None) != (self.drw_rho is None):
            missing, given = ("drw_rho", "drw_epoch") if self.drw_rho is None else (
                "drw_epoch", "drw_rho")
            raise fail(missing, f"be given when {given} is", None, error=ConfigError)
        if self.drw_epoch is not None:
            _check_epoch(self.drw_epoch, "drw_epoch")
            check_rho(self.drw_rho, "drw_rho")

    def rho_at(self, epoch: float) -> float:
        """ρ for the 0-based ``epoch`` (fractional epochs interpolate ``linear``).

        >>> s = make_rho_schedule("step", 0.05, milestones=(5,), values=(0.1,),
        ...                       drw_epoch=60, drw_rho=0.5)
        >>> [s.rho_at(e) for e in (0, 4, 5, 59, 60, 89)]
        [0.05, 0.05, 0.1, 0.1, 0.5, 0.5]
        """
        if not (_is_real(epoch) and epoch >= 0):
            raise fail("epoch", "be an epoch index >= 0", epoch, error=InputError)
        if self.drw_epoch is not None and self.drw_rho is not None and epoch >= self.drw_epoch:
            return float(self.drw_rho)
        if self.name == "step":
            k = bisect_right(self.milestones, epoch)  # milestones <= epoch
            return self.rho if k == 0 else self.values[k - 1]
        if self.name == "linear":
            assert self.epochs is not None and self.rho_end is not None  # __post_init__
            frac = min(epoch / max(self.epochs - 1, 1), 1.0)
            # (1 - f)·a + f·b hits both endpoints exactly, unlike a + f·(b - a)
            return (1.0 - frac) * self.rho + frac * self.rho_end
        return self.rho


def make_rho_schedule(name: str, rho: float, *, milestones: Sequence[float] = (),
                      values: Sequence[float] = (), rho_end: float | None = None,
                      epochs: int | None = None, drw_epoch: float | None = None,
                      drw_rho: float | None = None) -> RhoSchedule:
    """Build and validate a :class:`RhoSchedule`.

    Parameters
    ----------
    name : {"constant", "step", "linear"}
        Unknown names raise :class:`ConfigError` listing the choices.
    rho : float
        ρ at epoch 0 (>= 0).
    milestones : sequence of float
        ``step``: strictly increasing 0-based epochs at which ρ changes.
    values : sequence of float
        ``step``: ρ from each milestone on (same length as ``milestones``).
    rho_end : float, optional
        ``linear``: ρ at epoch ``epochs - 1``; ρ goes linearly from ``rho`` at epoch 0.
    epochs : int, optional
        Number of epochs; required by ``linear``.
    drw_epoch, drw_rho : float, optional
        Switch to ``drw_rho`` from epoch ``drw_epoch`` on (when DRW re-weighting starts).

    Returns
    -------
    RhoSchedule

    Examples
    --------
    >>> make_rho_schedule("constant", 0.1, drw_epoch=160, drw_rho=0.5).rho_at(160)
    0.5
    >>> s = make_rho_schedule("linear", 0.05, rho_end=0.8, epochs=4)
    >>> [round(s.rho_at(e), 3) for e in range(4)]
    [0.05, 0.3, 0.55, 0.8]
    """
    return RhoSchedule(name=name, rho=rho, milestones=tuple(milestones), values=tuple(values),
                       rho_end=rho_end, epochs=epochs, drw_epoch=drw_epoch, drw_rho=drw_rho)
