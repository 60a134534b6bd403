"""Train a grid of runs into a store: in this process, in worker processes, or on Ray.

Every backend runs the same loop against the :class:`~classgap.sweep.store.Store`: claim a run,
train it into a fresh working directory, commit the directory, mark the row done (or failed
with its error text, and go on). ``local`` and ``processes`` claim from the store directly, so
any number of study commands pointed at one directory share the work. ``ray`` claims in the
driver, sends plain Ray tasks, gets the metrics and the run's files back as bytes and writes
them itself: the driver alone touches the store, so the Ray workers need no shared file system.

**Dying workers** (``processes`` and ``ray``). A worker process that dies in the middle of a
run (killed by a signal, SIGKILL from the OOM killer included, or exiting without recording
its run; on Ray, a lost worker or node) is not the run's fault: the run is tried again, at most
``retries`` times in one study command (default 1), and a run whose worker died on every
attempt is recorded ``failed`` with how it died ("the worker running it died (SIGKILL) on
each of 2 attempts"). The other runs go on: the ``processes`` driver starts a new worker in
place of the dead one, Ray reschedules the task (its own ``max_retries``). A trainer that
*raises* (a bug, bad data, a ``--train-cmd`` that exits non-zero, even one killed by a signal:
its worker lives) fails the run at once, not retried: the same error would come again;
``retry_failed`` (``--retry-failed``) trains failed runs again on request. ``local`` and
``ensemble`` run in the study's own process, which cannot outlive its worker: a killed study
resumes on the next command.

A trainer is any ``train_fn(spec, run_dir) -> metrics`` that writes ``val.*`` and ``test.*``
predictions into ``run_dir`` (default: :func:`default_train`, the classgap trainer; bring your
own with :class:`~classgap.sweep.external.ExternalTrainer`). It must be picklable for the
``processes`` and ``ray`` backends (a module-level function or an instance of one's class).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import pickle
import queue as queue_module
import shutil
import signal
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from classgap._files import atomic_write
from classgap._format import plain
from classgap._registry import Registry
from classgap._validation import check_choice, check_positive_int
from classgap.config import check_no_cmd
from classgap.errors import ClassgapError, DiskFullError, disk_full
from classgap.sweep.grid import RunSpec
from classgap.sweep.store import Store

__all__ = ["AUTO", "BACKENDS", "GridSummary", "TrainFn", "default_train", "resolve_backend",
           "run_grid"]

#: Backend name → runner ``runner(store, run_ids, train_fn, *, workers, threads, retry_failed,
#: retries, address, bar)``; ``auto`` (not a runner) means ``processes`` for several workers,
#: else ``local``.
BACKENDS: Registry[Callable[..., None]] = Registry("backend", sort=False)
AUTO = "auto"
TrainFn = Callable[[RunSpec, Path], Mapping[str, Any]]
ERROR_CHARS = 4000  # error text kept per failed run: the end of the traceback says most
RETRIES = 1  # default: a run whose worker died is tried once more in the same command


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


def _stop_if_disk_full(store: Store, run_ids: Sequence[str], exc: BaseException) -> None:
    """When ``exc`` says the disk is full, give ``run_ids`` back (pending, the attempt not
    counted) and raise :class:`~classgap.errors.DiskFullError`: not the runs' fault, and every
    run left would fail the same way, so the study stops (see :mod:`classgap.sweep.store`)."""
    full = disk_full(exc)
    if full is None:
        return
    for run_id in run_ids:
        with contextlib.suppress(DiskFullError):  # then its row stays running under this
            store.release(run_id)                 # process, and the next study redoes it
    raise full


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
    except Exception as exc:  # one failed run does not stop the study (a full disk does)
        _stop_if_disk_full(store, [spec.run_id], exc)
        store.fail(spec.run_id, _error_text(exc))
        return False
    except BaseException:  # interrupted (Ctrl-C): give the run back untouched
        store.release(spec.run_id)
        raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _death_text(attempts: int, how: str = "", detail: str = "") -> str:
    """The error recorded for a run whose worker died on each of its ``attempts``."""
    text = f"the worker running it died{f' ({how})' if how else ''} on each of {attempts} " \
           f"attempt{'s' if attempts != 1 else ''}"
    return f"{text}: {detail}" if detail else text


@dataclass(frozen=True)
class _Attempts:
    """The attempts one study command may start at each run: the first, then one per retry
    after its worker died. Counted in the store's ``attempts`` column from the values it held
    when the command began (``before``), so that the command's every worker process keeps the
    one limit."""

    before: dict[str, int]
    retries: int

    def made(self, store: Store, run_id: str) -> int:
        """Attempts this command has started at ``run_id`` (a running one included)."""
        return store.attempts([run_id])[run_id] - self.before.get(run_id, 0)


def _claim_loop(store: Store, run_ids: Sequence[str], train_fn: TrainFn, *,
                retry_failed: bool, worker_id: str | None = None,
                on_run: Callable[[], None] | None = None,
                limit: _Attempts | None = None) -> None:
    while (spec := store.claim(worker_id, retry_failed=retry_failed, run_ids=run_ids)):
        if limit is not None and (made := limit.made(store, spec.run_id)) > 1 + limit.retries:
            # Within one command a run is claimed again only after its worker died (a failed
            # run is not): this worker took it between the last death and the study's
            # process recording it failed (_bury), so it records it, without the signal.
            store.fail(spec.run_id, _death_text(made - 1))
            continue
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
               threads: int | None, retry_failed: bool, retries: int, address: str | None,
               bar: Any) -> None:
    """One run after another in this process (``workers``, ``retries`` and ``address`` do not
    apply)."""
    old = _set_threads(threads)
    try:
        _claim_loop(store, run_ids, train_fn or default_train, retry_failed=retry_failed,
                    on_run=lambda: bar.update(1))
    finally:
        _set_threads(old)


def _worker_main(path: str, run_ids: list[str], train_fn: TrainFn | None, retry_failed: bool,
                 threads: int | None, session_start: float, worker_id: str,
                 warned: Any = None, limit: _Attempts | None = None) -> None:
    """Entry point of one ``processes`` worker (spawned)."""
    if warned is not None:
        warnings.showwarning = partial(_forward_warning, warned)
    _set_threads(threads)
    with Store(path, session_start=session_start) as store:
        try:
            _claim_loop(store, run_ids, train_fn or default_train, retry_failed=retry_failed,
                        worker_id=worker_id, limit=limit)
        except DiskFullError as exc:  # the study's process says it, on one line, and stops
            if warned is None:
                raise
            warned.put((DiskFullError, exc))


# A warning sent from a worker stays under PIPE_BUF (4096 bytes): one atomic pipe write, so a
# worker killed mid-send cannot leave half a message for the parent to wait on.
_WARNING_CHARS = 1000


def _forward_warning(queue: Any, message: Warning | str, category: type[Warning],
                     *args: Any, **kwargs: Any) -> None:
    """A worker's ``warnings.showwarning``: send the warning to the study's process, which
    warns it again (:func:`_rewarn`), rather than print Python's raw two-line format."""
    queue.put(_sendable(message, category))


def _sendable(message: Warning | str, category: type[Warning]) -> tuple[type[Warning], str]:
    """A worker's warning as ``(category, text)`` for the study's process to warn again."""
    try:
        pickle.dumps(category)
    except Exception:  # a category the parent cannot import (defined in a closure, say)
        category = UserWarning
    return category, str(message)[:_WARNING_CHARS]


def _rewarn(queue: Any) -> DiskFullError | None:
    """Warn, in this process, what the workers sent: the caller's filters and printer apply
    (the CLI prints each distinct message once, on one line) as if the runs were local.
    Returns the full disk a worker stopped on, if one did."""
    full = None
    while True:
        try:
            category, text = queue.get_nowait()
        except queue_module.Empty:
            return full
        if isinstance(text, DiskFullError):
            full = text
            continue
        warnings.warn(text, category, stacklevel=2)


def _run_processes(store: Store, run_ids: list[str], train_fn: TrainFn | None, *,
                   workers: int, threads: int | None, retry_failed: bool, retries: int,
                   address: str | None, bar: Any) -> None:
    """``workers`` spawned processes, each claiming runs from the store; one that dies in a run
    is replaced, and its run tried again at most ``retries`` times (:func:`_bury`)."""
    from classgap.train.pool import default_threads

    ctx = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
    warned = ctx.Queue()
    limit = _Attempts(store.attempts(run_ids), retries)
    args = (str(store.path), run_ids, train_fn, retry_failed, threads or default_threads(workers),
            store.session_start)

    def start(name: str) -> Any:
        proc = ctx.Process(target=_worker_main, daemon=True, args=(*args, name, warned, limit))
        proc.start()
        return proc

    procs = {f"w{i}": start(f"w{i}") for i in range(workers)}
    started = workers
    deaths: dict[str, list[str]] = {}  # run_id -> how each of its workers died
    full = None
    try:
        while full is None and procs:
            ready = multiprocessing.connection.wait([p.sentinel for p in procs.values()],
                                                    timeout=0.5)
            full = _rewarn(warned)
            # What each ended worker held, read before it is reaped: until then its pid
            # exists, so no other worker reclaims its run before _bury has seen it.
            ended = [(name, proc, _held_run(store, name, proc.pid))
                     for name, proc in procs.items() if proc.sentinel in ready]
            for name, proc, held in ended:
                proc.join()
                del procs[name]
                if proc.exitcode and full is None \
                        and _bury(store, name, proc.exitcode, held, limit, deaths):
                    procs[f"w{started}"] = start(f"w{started}")  # the other runs go on
                    started += 1
            bar.n = store.counts(run_ids)["done"]
            bar.refresh()
    finally:
        for p in procs.values():  # Ctrl-C or a full disk: stop the workers; their runs are
            if p.is_alive():      # reclaimed (dead pids)
                p.terminate()
            p.join()
        full = _rewarn(warned) or full
        warned.close()
    if full is not None:  # a worker found the disk full: the study stops
        store.discard_partials(p.pid for p in procs.values())
        raise full


def _exit_text(exitcode: int) -> str:
    """How a process ended, from its exit code: ``SIGKILL`` (negative: the signal), or
    ``exit status 3``."""
    if exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def _held_run(store: Store, name: str, pid: int | None) -> Any:
    """The store's row of the run that worker ``name`` (process ``pid``) has claimed and not
    finished, or None."""
    frame = store.status()
    mine = frame[(frame["status"] == "running")  # claimed_by as Store.claim writes it
                 & (frame["claimed_by"] == f"{socket.gethostname()}:{pid}/{name}")]
    return None if mine.empty else mine.iloc[0]


def _bury(store: Store, name: str, exitcode: int, held: Any, limit: _Attempts,
          deaths: dict[str, list[str]]) -> bool:
    """Deal with the ``processes`` worker ``name`` that ended abnormally holding the run
    ``held`` (a store row, or None); True when it died in a run (a new worker then takes its
    place).

    The run, still ``running`` under the dead pid, is claimed again by the next worker to ask
    (the store reclaims runs of dead processes) while it has attempts left; after its last one
    it is recorded failed, with how its workers died. One warning says which.
    """
    how = _exit_text(exitcode)
    if held is None:  # between runs (a crash at start-up, say): nothing to retry
        warnings.warn(f"study worker {name} ended ({how}) holding no run; the other workers "
                      "go on", RuntimeWarning, stacklevel=3)
        return False
    run_id = held["run_id"]
    deaths.setdefault(run_id, []).append(how)
    made = limit.made(store, run_id)
    if made > limit.retries:
        store.fail(run_id, _death_text(made, ", ".join(dict.fromkeys(deaths[run_id]))))
        outcome = f"recorded failed after {made} attempt{'s' if made != 1 else ''}"
    else:
        outcome = f"retrying it (attempt {made + 1} of {1 + limit.retries})"
    warnings.warn(f"study worker {name} died ({how}) while training {held['point_json']} seed "
                  f"{held['seed']} (run {run_id}): {outcome}", RuntimeWarning, stacklevel=3)
    return True


def _ray_body(spec: RunSpec, train_fn: TrainFn) -> dict[str, Any]:
    """Ray task: train into a private temp dir; return the metrics and every file's bytes (or
    the error), and the warnings raised, for the driver to warn again (Ray would only print
    them, in Python's raw two-line format)."""
    with warnings.catch_warnings(record=True) as caught:
        reply = _train_for_ray(spec, train_fn)
    reply["warnings"] = [_sendable(w.message, w.category) for w in caught]
    return reply


def _train_for_ray(spec: RunSpec, train_fn: TrainFn) -> dict[str, Any]:
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


def _ray_death(ray: Any, exc: Exception, retries: int) -> str | None:
    """The error to record when ``exc`` says the task's worker (or its node) died on each of
    its ``1 + retries`` attempts; None for any other error."""
    deaths = tuple(getattr(ray.exceptions, name) for name in (
        "WorkerCrashedError", "OutOfMemoryError", "NodeDiedError", "LocalRayletDiedError")
        if hasattr(ray.exceptions, name))
    if not isinstance(exc, deaths):
        return None
    return _death_text(1 + retries, type(exc).__name__,
                       (str(exc).strip().splitlines() or [""])[0])


def _run_ray(store: Store, run_ids: list[str], train_fn: TrainFn | None, *, workers: int,
             threads: int | None, retry_failed: bool, retries: int, address: str | None,
             bar: Any) -> None:
    """At most ``workers`` Ray tasks at a time; the driver alone touches the store. Ray
    retries a task whose worker died (``max_retries=retries``); an error the trainer raised is
    returned, not retried."""
    ray = _import_ray()
    train_fn = train_fn or default_train
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=max(2, workers), include_dashboard=False)
    task = ray.remote(max_retries=retries, num_cpus=threads or 1)(_ray_body)
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
            except Exception as exc:  # its worker died on every attempt, or Ray failed it
                reply = {"error": _ray_death(ray, exc, retries) or _error_text(exc)}
            for category, text in reply.get("warnings", ()):
                warnings.warn(text, category, stacklevel=2)
            if "error" in reply:
                store.fail(spec.run_id, reply["error"])
            else:
                partial = store.new_partial_dir(spec.run_id)
                try:
                    for name, data in sorted(reply["files"].items(),
                                             key=lambda kv: kv[0] == "metrics.json"):
                        atomic_write(partial / name, data)  # metrics.json last
                    store.commit(spec, partial, reply["metrics"])
                except Exception as exc:
                    _stop_if_disk_full(store, [spec.run_id], exc)
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
                _stop_if_disk_full(store, [s.run_id for s in chunk], exc)
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
                  threads: int | None, retry_failed: bool, retries: int, address: str | None,
                  bar: Any) -> None:
    """Runs that share an architecture and data as vmapped ensembles on CUDA (at most
    ``max(workers, ENSEMBLE_MEMBERS)`` members each); elsewhere, or with a training command,
    one run after another as ``local``, with a note (``retries`` does not apply: both run in
    this process)."""
    import torch

    why = ("a training command (--train-cmd) trains one run at a time" if train_fn is not None
           else None if torch.cuda.is_available() else "no CUDA device")
    if why is not None:
        warnings.warn(f"the ensemble backend trains on CUDA only ({why}): training one run "
                      "after another, as --backend local", RuntimeWarning, stacklevel=4)
        _run_local(store, run_ids, train_fn, workers=workers, threads=threads,
                   retry_failed=retry_failed, retries=retries, address=address, bar=bar)
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
             retry_failed: bool = False, retries: int = RETRIES, address: str | None = None,
             progress: bool = True, train_fn: TrainFn | None = None,
             desc: str = "runs") -> GridSummary:
    """Register ``specs`` in ``store`` and train every run not done yet.

    Parameters
    ----------
    store : Store
    specs : sequence of RunSpec
        The study's grid (``Grid.runs()``); runs already done are skipped, unless their files
        no longer match their checksums (:meth:`Store.heal`): those are trained again.
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
    retries : int
        ``processes`` and ``ray``: how many times a run is tried again after its worker died
        in it (killed, e.g. by the OOM killer); a run whose worker died on each of its
        ``1 + retries`` attempts is failed with how it died. An error the trainer raised is
        never retried in the same call. See the module docstring.
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
    retries = check_positive_int(retries, "retries", minimum=0)
    specs = list(specs)
    if train_fn is None:  # cmd.* keys are for a training command; ours would ignore them
        check_no_cmd((s.config for s in specs), "classgap's own trainer")
    elif callable(getattr(train_fn, "check", None)):
        train_fn.check(specs)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    store.register(specs)
    run_ids = [s.run_id for s in specs]
    store.heal(run_ids)  # a finished run whose files changed is pending again: trained below
    before = store.counts(run_ids)
    bar = tqdm(total=len(run_ids), initial=before["done"], unit="run", desc=desc,
               disable=None if progress else True)  # None: off when not on a terminal
    try:
        BACKENDS.get(backend)(store, run_ids, train_fn, workers=workers,
                              threads=threads_per_worker, retry_failed=retry_failed,
                              retries=retries, address=address, bar=bar)
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
