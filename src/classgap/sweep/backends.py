"""Train a grid of runs into a store: in this process, in worker processes, or on Ray.

Every backend runs the same loop against the :class:`~classgap.sweep.store.Store`: claim a run,
train it into a fresh working directory, commit the directory, mark the row done (or failed
with its error text, and go on). ``local`` and ``processes`` claim from the store directly, so
any number of study commands pointed at one directory share the work. ``ray`` claims in the
driver, sends plain Ray tasks (``max_retries=2`` for lost workers), gets the metrics and the
run's files back as bytes and writes them itself: the driver alone touches the store, so the
Ray workers need no shared file system.

A trainer is any ``train_fn(spec, run_dir) -> metrics`` that writes ``val.*`` and ``test.*``
predictions into ``run_dir`` (default: :func:`default_train`, the classgap trainer; bring your
own with :class:`~classgap.sweep.external.ExternalTrainer`). It must be picklable for the
``processes`` and ``ray`` backends (a module-level function or an instance of one's class).
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue as queue_module
import shutil
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from classgap._format import plain
from classgap._registry import Registry
from classgap._validation import check_choice, check_positive_int
from classgap.config import check_no_cmd
from classgap.errors import ClassgapError
from classgap.sweep.grid import RunSpec
from classgap.sweep.store import Store

__all__ = ["AUTO", "BACKENDS", "GridSummary", "TrainFn", "default_train", "resolve_backend",
           "run_grid"]

#: Backend name → runner ``runner(store, run_ids, train_fn, *, workers, threads, retry_failed,
#: address, bar)``; ``auto`` (not a runner) means ``processes`` for several workers, else
#: ``local``.
BACKENDS: Registry[Callable[..., None]] = Registry("backend", sort=False)
AUTO = "auto"
TrainFn = Callable[[RunSpec, Path], Mapping[str, Any]]
ERROR_CHARS = 4000  # error text kept per failed run: the end of the traceback says most


@dataclass(frozen=True)
class GridSummary:
    """What one :func:`run_grid` call did.

    Attributes
    ----------
    total : int
        Runs in the study's grid.
    skipped : int
        Already done before this call (never redone).
    trained : int
        Done by this call (or by a concurrent study on the same directory meanwhile).
    failed : int
        Failed in this call; their error text is in ``errors`` (run_id → text).
    counts : dict
        Final runs per status among the grid's runs; ``running`` counts runs that another
        study process on the same directory was still training when this one ran out of
        pending runs.
    """

    total: int
    skipped: int
    trained: int
    failed: int
    counts: dict[str, int]
    errors: dict[str, str] = field(default_factory=dict)
    wall_time: float = 0.0

    @property
    def complete(self) -> bool:
        """Every run of the grid is done."""
        return self.counts.get("done", 0) == self.total


def default_train(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """Train ``spec.config`` with :func:`classgap.train.train` into ``run_dir``."""
    from classgap.train import train

    result = train(spec.config, run_dir, progress=False)
    return {"val_accuracy": result.val_accuracy, "test_accuracy": result.test_accuracy,
            "wall_time": result.wall_time}


def _error_text(exc: BaseException) -> str:
    """A failed run's error as recorded in the store and quoted in messages and notes, without
    colour codes (a trainer's coloured stderr; its train.log keeps them)."""
    if isinstance(exc, ClassgapError):  # a user error: its one-line message says it all
        return plain(f"{type(exc).__name__}: {exc}")
    return plain("".join(traceback.format_exception(exc)))[-ERROR_CHARS:]


def _attempt(store: Store, spec: RunSpec, train_fn: TrainFn) -> bool:
    """Train one claimed run and record the outcome; True when done."""
    if store.adopt(spec):
        return True
    partial = store.new_partial_dir(spec.run_id)
    t0 = time.perf_counter()
    try:
        metrics = dict(train_fn(spec, partial) or {})
        metrics.setdefault("wall_time", round(time.perf_counter() - t0, 3))
        store.commit(spec, partial, metrics)
        return True
    except Exception as exc:  # one failed run does not stop the study
        store.fail(spec.run_id, _error_text(exc))
        return False
    except BaseException:  # interrupted (Ctrl-C): give the run back untouched
        store.release(spec.run_id)
        raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _claim_loop(store: Store, run_ids: Sequence[str], train_fn: TrainFn, *,
                retry_failed: bool, worker_id: str | None = None,
                on_run: Callable[[], None] | None = None) -> None:
    while (spec := store.claim(worker_id, retry_failed=retry_failed, run_ids=run_ids)):
        _attempt(store, spec, train_fn)
        if on_run is not None:
            on_run()


def _set_threads(threads: int | None) -> int | None:
    """``torch.set_num_threads(threads)`` unless None; return the previous count (or None)."""
    if threads is None:
        return None
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    return old


def _run_local(store: Store, run_ids: list[str], train_fn: TrainFn | None, *, workers: int,
               threads: int | None, retry_failed: bool, address: str | None, bar: Any) -> None:
    """One run after another in this process (``workers`` and ``address`` do not apply)."""
    old = _set_threads(threads)
    try:
        _claim_loop(store, run_ids, train_fn or default_train, retry_failed=retry_failed,
                    on_run=lambda: bar.update(1))
    finally:
        _set_threads(old)


def _worker_main(path: str, run_ids: list[str], train_fn: TrainFn | None, retry_failed: bool,
                 threads: int | None, session_start: float, worker_id: str,
                 warned: Any = None) -> None:
    """Entry point of one ``processes`` worker (spawned)."""
    if warned is not None:
        warnings.showwarning = partial(_forward_warning, warned)
    _set_threads(threads)
    with Store(path, session_start=session_start) as store:
        _claim_loop(store, run_ids, train_fn or default_train, retry_failed=retry_failed,
                    worker_id=worker_id)


# A warning sent from a worker stays under PIPE_BUF (4096 bytes): one atomic pipe write, so a
# worker killed mid-send cannot leave half a message for the parent to wait on.
_WARNING_CHARS = 1000


def _forward_warning(queue: Any, message: Warning | str, category: type[Warning],
                     *args: Any, **kwargs: Any) -> None:
    """A worker's ``warnings.showwarning``: send the warning to the study's process, which
    warns it again (:func:`_rewarn`), rather than print Python's raw two-line format."""
    try:
        pickle.dumps(category)
    except Exception:  # a category the parent cannot import (defined in a closure, say)
        category = UserWarning
    queue.put((category, str(message)[:_WARNING_CHARS]))


def _rewarn(queue: Any) -> None:
    """Warn, in this process, what the workers sent: the caller's filters and printer apply
    (the CLI prints each distinct message once, on one line) as if the runs were local."""
    while True:
        try:
            category, text = queue.get_nowait()
        except queue_module.Empty:
            return
        warnings.warn(text, category, stacklevel=2)


def _run_processes(store: Store, run_ids: list[str], train_fn: TrainFn | None, *,
                   workers: int, threads: int | None, retry_failed: bool, address: str | None,
                   bar: Any) -> None:
    """``workers`` spawned processes, each claiming runs from the store."""
    from classgap.train.pool import default_threads

    ctx = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
    warned = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, daemon=True,
                         args=(str(store.path), run_ids, train_fn, retry_failed,
                               threads or default_threads(workers), store.session_start,
                               f"w{i}", warned))
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            _rewarn(warned)
            bar.n = store.counts(run_ids)["done"]
            bar.refresh()
    finally:
        for p in procs:  # Ctrl-C: stop the workers; their runs are reclaimed (dead pids)
            if p.is_alive():
                p.terminate()
            p.join()
        _rewarn(warned)
        warned.close()
    for i, p in enumerate(procs):
        if p.exitcode:  # killed or crashed outside a run: its claim is reclaimed next time
            warnings.warn(f"study worker w{i} exited with status {p.exitcode}; runs it left "
                          f"are resumed by the next study command", RuntimeWarning,
                          stacklevel=3)


def _ray_body(spec: RunSpec, train_fn: TrainFn) -> dict[str, Any]:
    """Ray task: train into a private temp dir, return the metrics and every file's bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="classgap-") as tmp:
        out = Path(tmp) / spec.run_id
        out.mkdir()
        t0 = time.perf_counter()
        try:
            metrics = dict(train_fn(spec, out) or {})
        except Exception as exc:  # an application error is final: Ray retries lost workers
            return {"error": _error_text(exc)}
        metrics.setdefault("wall_time", round(time.perf_counter() - t0, 3))
        files = {p.relative_to(out).as_posix(): p.read_bytes()
                 for p in sorted(out.rglob("*")) if p.is_file()}
        return {"metrics": metrics, "files": files}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClassgapError("the 'ray' backend needs Ray, which is not installed; install the "
                            "extra: pip install 'classgap[ray]'") from None
    return ray


def _run_ray(store: Store, run_ids: list[str], train_fn: TrainFn | None, *, workers: int,
             threads: int | None, retry_failed: bool, address: str | None, bar: Any) -> None:
    """At most ``workers`` Ray tasks at a time; the driver alone touches the store."""
    ray = _import_ray()
    train_fn = train_fn or default_train
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=max(2, workers), include_dashboard=False)
    task = ray.remote(max_retries=2, num_cpus=threads or 1)(_ray_body)
    in_flight: dict[Any, RunSpec] = {}
    try:
        while True:
            while len(in_flight) < workers and (spec := store.claim(
                    "ray", retry_failed=retry_failed, run_ids=run_ids)):
                if store.adopt(spec):
                    bar.update(1)
                    continue
                in_flight[task.remote(spec, train_fn)] = spec
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            spec = in_flight.pop(ready[0])
            try:
                reply = ray.get(ready[0])
            except Exception as exc:  # the task's worker died max_retries + 1 times
                reply = {"error": _error_text(exc)}
            if "error" in reply:
                store.fail(spec.run_id, reply["error"])
            else:
                partial = store.new_partial_dir(spec.run_id)
                try:
                    for name, data in sorted(reply["files"].items(),
                                             key=lambda kv: kv[0] == "metrics.json"):
                        (partial / name).parent.mkdir(parents=True, exist_ok=True)
                        (partial / name).write_bytes(data)  # metrics.json last
                    store.commit(spec, partial, reply["metrics"])
                except Exception as exc:
                    store.fail(spec.run_id, _error_text(exc))
                finally:
                    shutil.rmtree(partial, ignore_errors=True)
            bar.update(1)
    except BaseException:
        for ref, spec in in_flight.items():  # interrupted: cancel and give the runs back
            ray.cancel(ref, force=True)
            store.release(spec.run_id)
        raise
    finally:
        if started:
            ray.shutdown()


def ensemble_key(config: Any) -> str:
    """What runs must share to train as one ensemble: the config without its per-member keys
    (:data:`classgap.train.ensemble.PER_MEMBER`: seed, augmentation, lr, weight decay, ...)."""
    import json

    from classgap.train.ensemble import shared_keys

    return json.dumps(shared_keys(config), sort_keys=True, default=str)


def train_groups(store: Store, specs: Sequence[RunSpec], *, members: int, engine: str,
                 bar: Any = None) -> None:
    """Train claimed runs as ensembles of at most ``members`` runs sharing an
    :func:`ensemble_key`, each member committed to the store as its own run.

    Every member writes the run directory the local backend writes
    (:func:`~classgap.train.ensemble.train_ensemble`). A group that fails marks each of its
    runs failed with the error; an interrupt gives them back.
    """
    from classgap.train.ensemble import train_ensemble

    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(ensemble_key(spec.config), []).append(spec)
    for group in groups.values():
        for start in range(0, len(group), members):
            chunk = [s for s in group[start:start + members] if not store.adopt(s)]
            partials = [store.new_partial_dir(s.run_id) for s in chunk]
            try:
                if chunk:
                    results = train_ensemble([s.config for s in chunk], partials,
                                             engine=engine, overwrite=True, progress=False)
                    for spec, partial, result in zip(chunk, partials, results, strict=True):
                        store.commit(spec, partial, {"val_accuracy": result.val_accuracy,
                                                     "test_accuracy": result.test_accuracy,
                                                     "wall_time": result.wall_time})
            except Exception as exc:  # one failed ensemble does not stop the study
                for spec in chunk:
                    store.fail(spec.run_id, _error_text(exc))
            except BaseException:
                for spec in chunk:
                    store.release(spec.run_id)
                raise
            finally:
                for partial in partials:
                    shutil.rmtree(partial, ignore_errors=True)
            if bar is not None:
                bar.update(len(group[start:start + members]))


def _run_ensemble(store: Store, run_ids: list[str], train_fn: TrainFn | None, *, workers: int,
                  threads: int | None, retry_failed: bool, address: str | None,
                  bar: Any) -> None:
    """Runs that share an architecture and data as vmapped ensembles on CUDA (at most
    ``max(workers, ENSEMBLE_MEMBERS)`` members each); elsewhere, or with a training command,
    one run after another as ``local``, with a note."""
    import torch

    why = ("a training command (--train-cmd) trains one run at a time" if train_fn is not None
           else None if torch.cuda.is_available() else "no CUDA device")
    if why is not None:
        warnings.warn(f"the ensemble backend trains on CUDA only ({why}): training one run "
                      "after another, as --backend local", RuntimeWarning, stacklevel=4)
        _run_local(store, run_ids, train_fn, workers=workers, threads=threads,
                   retry_failed=retry_failed, address=address, bar=bar)
        return
    claimed = []
    while (spec := store.claim("ensemble", retry_failed=retry_failed, run_ids=run_ids)):
        claimed.append(spec)
    train_groups(store, claimed, members=max(workers, ENSEMBLE_MEMBERS), engine="auto",
                 bar=bar)


#: Members per ensemble unless ``--workers`` asks for more (measured: 7.3x over sequential at
#: 16 small CNNs with compile on an H100, bench/RESULTS.md).
ENSEMBLE_MEMBERS = 16

BACKENDS.add("local", _run_local)
BACKENDS.add("processes", _run_processes)
BACKENDS.add("ray", _run_ray)
BACKENDS.add("ensemble", _run_ensemble)


def resolve_backend(backend: str = AUTO, workers: int = 1,
                    threads_per_worker: int | None = None) -> tuple[str, int, int | None]:
    """``(backend, workers, threads_per_worker)`` checked, ``auto`` resolved: ``processes``
    for several workers, else ``local``. Cheap and creates nothing, so a caller checks its
    options before it makes a directory; Ray, when named, must be importable."""
    check_choice(backend, "backend", (AUTO, *BACKENDS))
    workers = check_positive_int(workers, "workers")
    if backend == AUTO:
        backend = "processes" if workers > 1 else "local"
    if threads_per_worker is not None:
        threads_per_worker = check_positive_int(threads_per_worker, "threads_per_worker")
    if backend == "ray":
        _import_ray()  # a missing extra fails before anything is registered
    return backend, workers, threads_per_worker


def run_grid(store: Store, specs: Sequence[RunSpec], *, backend: str = "local",
             workers: int = 1, threads_per_worker: int | None = None,
             retry_failed: bool = False, address: str | None = None, progress: bool = True,
             train_fn: TrainFn | None = None, desc: str = "runs") -> GridSummary:
    """Register ``specs`` in ``store`` and train every run not done yet.

    Parameters
    ----------
    store : Store
    specs : sequence of RunSpec
        The study's grid (``Grid.runs()``); runs already done are skipped.
    backend : {"auto", "local", "processes", "ray", "ensemble"}
        ``auto``: ``processes`` when ``workers > 1``, else ``local``. ``local``: one after
        another in this process. ``processes``: ``workers`` spawned
        processes. ``ray``: at most ``workers`` Ray tasks at a time. ``ensemble``: runs that
        share an architecture and data trained as vmapped ensembles on CUDA, each member
        committed as its own run (elsewhere: ``local``, with a warning).
    workers : int
    threads_per_worker : int, optional
        ``torch.set_num_threads`` per worker (Ray: CPUs per task); default: the usable cores
        divided among the workers for ``processes``, torch's default for ``local``.
    retry_failed : bool
        Also retry runs that failed before this call (once each); by default they stay failed.
    address : str, optional
        Ray cluster address (``ray``); default: a local Ray started for this study.
    progress : bool
        A progress bar over runs (on a terminal), labelled ``desc``.
    train_fn : callable, optional
        ``train_fn(spec, run_dir) -> metrics``; default :func:`default_train`. If it has a
        ``check(specs)`` method (as :class:`ExternalTrainer`), it is called before any run.

    Returns
    -------
    GridSummary
        Failed runs do not stop the study; they are counted and their errors returned.
    """
    backend, workers, threads_per_worker = resolve_backend(backend, workers,
                                                           threads_per_worker)
    specs = list(specs)
    if train_fn is None:  # cmd.* keys are for a training command; ours would ignore them
        check_no_cmd((s.config for s in specs), "classgap's own trainer")
    elif callable(getattr(train_fn, "check", None)):
        train_fn.check(specs)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    store.register(specs)
    run_ids = [s.run_id for s in specs]
    before = store.counts(run_ids)
    bar = tqdm(total=len(run_ids), initial=before["done"], unit="run", desc=desc,
               disable=None if progress else True)  # None: off when not on a terminal
    try:
        BACKENDS.get(backend)(store, run_ids, train_fn, workers=workers,
                              threads=threads_per_worker, retry_failed=retry_failed,
                              address=address, bar=bar)
    finally:
        bar.close()
    after = store.counts(run_ids)
    frame = store.status()
    mine = frame[frame["run_id"].isin(run_ids) & (frame["status"] == "failed")
                 & (frame["claimed_at"] >= store.session_start)]
    return GridSummary(total=len(run_ids), skipped=before["done"],
                        trained=after["done"] - before["done"], failed=len(mine),
                        counts=after, errors=dict(zip(mine["run_id"], mine["error"],
                                                      strict=True)),
                        wall_time=round(time.perf_counter() - t0, 3))
