"""Independent runs in parallel worker processes: :func:`train_many`.

A small model on a small CPU does not keep every core busy inside one process (Python, the
optimizer step and small kernels are serial), so P processes with T threads each beat one
process with P·T threads: two 1-thread workers trained ~10% more images/s than one 2-thread
process on the 2-core development machine. Workers are started with "spawn" (fork after torch
has started its thread pools can deadlock), each sets ``torch.set_num_threads`` and calls
:func:`~classgap.train.trainer.train`.

A run that raises does not stop the others; once all are done, :class:`RunsFailed` names every
failed run (its index, seed and directory) with its error, and carries the finished results.
A worker that dies without raising (killed, out of memory) breaks the whole pool, as
``ProcessPoolExecutor`` does; the runs not finished by then fail with ``BrokenProcessPool``.
Spawned workers re-import the calling script, so a script that calls :func:`train_many` must
keep its top-level code under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch
from tqdm.auto import tqdm

from classgap._validation import check_positive_int, fail
from classgap.config import Config
from classgap.errors import RunsFailed
from classgap.train.trainer import RunResult

__all__ = ["RunsFailed", "default_threads", "train_many"]


PathLike = str | os.PathLike[str]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers)
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def default_threads(workers: int) -> int:
    """Torch threads per worker: the usable cores divided among ``workers``, at least 1."""
    return max(1, _cpu_count() // max(1, workers))


def _run(config: Config, out_dir: PathLike | None, threads: int,
         overwrite: bool, progress: bool) -> RunResult | Exception:
    """One run in a worker (or in-process); an exception is returned, not raised."""
    from classgap.train.trainer import train

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = train(config, out_dir, overwrite=overwrite, progress=progress)
        return result
    except Exception as exc:
        exc.add_note(f"in run {config.data.dataset}/{config.model.name} seed "
                     f"{config.train.seed}; worker traceback:\n{traceback.format_exc()}")
        try:
            pickle.dumps(exc)  # it must cross the process boundary intact
        except Exception:
            return RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return exc
    finally:
        torch.set_num_threads(old)


def train_many(configs: Sequence[Config], out_dirs: Sequence[PathLike | None] | None = None,
               *, workers: int = 1, threads_per_worker: int | None = None,
               overwrite: bool = False, progress: bool = True,
               ) -> list[RunResult]:
    """Train every config, ``workers`` runs at a time; results in input order.

    Parameters
    ----------
    configs : sequence of Config, length R
    out_dirs : sequence of path or None, length R, optional
        Run directory of each run (None: not written).
    workers : int
        Worker processes; 1 runs in this process, one run after another.
    threads_per_worker : int, optional
        ``torch.set_num_threads`` in each worker; default :func:`default_threads`. A config's
        own ``train.threads``, when set, wins inside its run (the trainer sets it).
    overwrite : bool
        As :func:`~classgap.train.train`.
    progress : bool
        One bar over runs (finished / R), on a terminal; per-run bars are off.

    Returns
    -------
    list of RunResult, length R
        ``results[i]`` is the :class:`~classgap.train.RunResult` of ``configs[i]``.

    Raises
    ------
    RunsFailed
        After every run has ended, when any failed: names each failed run and its error, and
        holds the results of the others.

    Examples
    --------
    >>> from classgap.config import load_config
    >>> cfg = load_config(overrides=["data.dataset=digits", "model.name=mlp",
    ...                              "train.epochs=1", "train.progress=false"])
    >>> [type(r).__name__ for r in train_many([cfg], progress=False)]
    ['RunResult']
    """
    results = _train_all(configs, out_dirs, workers=workers,
                         threads_per_worker=threads_per_worker, overwrite=overwrite,
                         progress=progress)
    errors = {i: r for i, r in enumerate(results) if isinstance(r, Exception)}
    if errors:
        labels = [f"seed {c.train.seed}" + (f", {d}" if d is not None else "")
                  for c, d in zip(configs, out_dirs or [None] * len(results), strict=True)]
        raise RunsFailed(errors, [None if isinstance(r, Exception) else r for r in results],
                         labels)
    return results


def _train_all(configs: Sequence[Config], out_dirs: Sequence[PathLike | None] | None, *,
               workers: int, threads_per_worker: int | None, overwrite: bool,
               progress: bool) -> list[Any]:
    """Every run's RunResult, or the exception it raised, in input order."""
    configs = list(configs)
    if not all(isinstance(c, Config) for c in configs):
        raise fail("configs", "be a sequence of Config", configs)
    dirs = list(out_dirs) if out_dirs is not None else [None] * len(configs)
    if len(dirs) != len(configs):
        raise fail("out_dirs", f"hold one entry per config ({len(configs)})", len(dirs))
    workers = check_positive_int(workers, "workers")
    threads = default_threads(workers) if threads_per_worker is None else check_positive_int(
        threads_per_worker, "threads_per_worker")
    results: list[Any] = [None] * len(configs)
    bar = tqdm(total=len(configs), disable=not (progress and sys.stderr.isatty()), unit="run",
               leave=False)
    if workers == 1 or len(configs) <= 1:
        for i, (config, out) in enumerate(zip(configs, dirs, strict=True)):
            results[i] = _run(config, out, threads, overwrite, False)
            bar.update()
        bar.close()
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(configs)),
                             mp_context=context) as pool:
        futures = {pool.submit(_run, config, out, threads, overwrite, False): i
                   for i, (config, out) in enumerate(zip(configs, dirs, strict=True))}
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as exc:  # the worker died or the result did not unpickle
                results[i] = exc
            bar.update()
    bar.close()
    return results
