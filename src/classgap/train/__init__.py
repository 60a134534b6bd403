"""Training: one model from a :class:`~classgap.config.Config` to a run directory.

``train(config, out_dir)`` returns a :class:`RunResult`; the run directory layout is in
:mod:`classgap.train.rundir`. Many runs at once: :func:`train_ensemble` (M models of one
architecture in one process, vmap; pays on a GPU) and :func:`train_many` (a process pool; pays
on a CPU).
"""

from classgap.train.ensemble import ModelEnsemble, StackedSGD, train_ensemble
from classgap.train.evaluate import EvalResult, evaluate, loss_fn
from classgap.train.optim import build_optimizer, build_scheduler, lr_factor, param_groups
from classgap.train.pool import train_many
from classgap.train.precision import PathChoice, choose_path
from classgap.train.seeds import train_seeds
from classgap.train.trainer import RunResult, resolve_device, train

__all__ = [
    "EvalResult",
    "ModelEnsemble",
    "PathChoice",
    "RunResult",
    "StackedSGD",
    "build_optimizer",
    "build_scheduler",
    "choose_path",
    "evaluate",
    "loss_fn",
    "lr_factor",
    "param_groups",
    "resolve_device",
    "train",
    "train_ensemble",
    "train_many",
    "train_seeds",
]
