"""Optimizers for class-aware training: SAM (sharpness-aware minimization) and its ρ schedules.

LR schedules and weight-decay parameter groups live in :mod:`classgap.train.optim`.
"""

from classgap.optim.rho import RHO_SCHEDULES, RhoSchedule, check_rho, make_rho_schedule
from classgap.optim.sam import SAM

__all__ = ["RHO_SCHEDULES", "SAM", "RhoSchedule", "check_rho", "make_rho_schedule"]
