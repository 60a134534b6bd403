"""Training: one model from a :class:`~classgap.config.Config` to a run directory.

``train(config, out_dir)`` returns a :class:`RunResult`; the run directory layout is in
:mod:`classgap.train.rundir`.
"""

from classgap.train.evaluate import EvalResult, evaluate, loss_fn
from classgap.train.optim import build_optimizer, build_scheduler, lr_factor, param_groups
from classgap.train.trainer import RunResult, resolve_device, resolve_precision, train

__all__ = [
    "EvalResult",
    "RunResult",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "loss_fn",
    "lr_factor",
    "param_groups",
    "resolve_device",
    "resolve_precision",
    "train",
]
