"""Several seeds of one recipe: the unit of every per-class comparison.

:func:`train_seeds` picks the engine that pays on the device: one vmapped ensemble on CUDA
(:func:`~classgap.train.ensemble.train_ensemble`), a process pool elsewhere
(:func:`~classgap.train.pool.train_many`, ``workers`` processes of
``threads_per_worker`` threads), and writes one run directory per seed, ``OUT/seed<k>``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from classgap._validation import check_choice, check_positive_int
from classgap.config import Config
from classgap.train.ensemble import resolve_engine, train_ensemble
from classgap.train.pool import train_many
from classgap.train.trainer import RunResult, resolve_device

ENGINES = ("auto", "pool", "vmap")


def seed_configs(config: Config, seeds: int) -> list[Config]:
    """``seeds`` copies of ``config`` with seeds ``train.seed``, ``train.seed + 1``, ..."""
    check_positive_int(seeds, "seeds")
    first = config.train.seed
    return [dataclasses.replace(config, train=dataclasses.replace(config.train, seed=first + k))
            for k in range(seeds)]


def train_seeds(config: Config, seeds: int, out_dir: str | os.PathLike[str] | None = None, *,
                engine: str = "auto", workers: int = 1, threads_per_worker: int | None = None,
                overwrite: bool = False) -> list[RunResult]:
    """Train ``seeds`` runs of ``config`` (seeds ``train.seed`` onwards); results in seed order.

    Parameters
    ----------
    engine : {"auto", "pool", "vmap"}
        ``auto``: vmap on CUDA, the process pool elsewhere (vmap was measured slower on CPU).
    workers, threads_per_worker
        Process pool size and torch threads per process (pool engine only).
    out_dir
        Parent directory: run ``k`` goes to ``out_dir/seed<seed>``.

    Raises the first run's error if any run failed (the other runs still finish and keep their
    run directories).
    """
    configs = seed_configs(config, seeds)
    check_choice(engine, "engine", ENGINES)
    outs = None if out_dir is None else [Path(out_dir) / f"seed{c.train.seed}" for c in configs]
    device = resolve_device(config.train.device)
    if engine == "vmap" or (engine == "auto" and resolve_engine("auto", device) == "vmap"):
        return train_ensemble(configs, outs, engine="vmap", overwrite=overwrite)
    return train_many(configs, outs, workers=workers, threads_per_worker=threads_per_worker,
                      overwrite=overwrite)
