"""Which numeric path a run takes on this machine, chosen by measuring it.

A CPU run can compute in fp32 or under bf16 autocast, with its images channels-last or not.
Which is fastest depends on the CPU, not on what it claims to support: bf16 + channels-last
ran the ``cnn`` 2.6x faster than fp32 on an AMD EPYC with AVX512-BF16, bf16 was *slower* than
fp32 on an Intel Xeon with the same instructions but no AMX (``mlp`` 18 vs 12 ms a step), and
9x slower on an AVX2 machine that emulates it (bench/RESULTS.md). So ``train.precision="auto"``
(and ``train.channels_last="auto"``) on a CPU times a few training steps of each candidate
path for the run's model, input, batch size and thread count (:func:`measure_paths`), and
keeps the fastest; among paths within :data:`TOLERANCE` of the fastest it prefers fp32, whose
numbers do not depend on the rounding of bf16.

The choice is cached in one JSON file in the user's cache directory (:func:`cache_dir`), keyed
by the CPU model and flags, the torch version, the model and its input, the batch size and the
thread count (:func:`path_key`). Every later run and every worker on the machine reads the
same choice, so a config and seed give the same numbers there (which path a machine takes is
part of what its numbers depend on: the run's ``provenance.json`` records the choice, how it
was made, and the CPU). The first run to need a key measures it under a file lock; workers
starting at once wait for it rather than measure on a loaded machine.

Forced paths skip the measurement: ``train.precision="fp32"|"bf16"`` and
``train.channels_last=true|false`` in the config, or the ``CLASSGAP_PRECISION`` environment
variable (``fp32`` or ``bf16``), which replaces ``auto`` for every run of a process tree (what
``make test-precisions`` uses). On CUDA ``auto`` is bf16 with channels-last (tensor cores), on
other devices fp32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from classgap._files import write_json
from classgap.errors import ConfigError

__all__ = ["ENV_PRECISION", "TOLERANCE", "PathChoice", "cache_dir", "cached_choices",
           "choose_path", "cpu_info", "machine_id", "measure_paths", "path_key", "path_name"]

#: Environment variable that forces ``auto`` to one precision (``fp32`` or ``bf16``).
ENV_PRECISION = "CLASSGAP_PRECISION"

#: Environment variable naming the cache directory (default: the user's cache directory).
ENV_CACHE = "CLASSGAP_CACHE_DIR"

#: A path at most this much slower than the fastest counts as as fast; fp32 wins such ties.
TOLERANCE = 0.05

#: CPU flags that decide which paths are fast (as /proc/cpuinfo names them).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

CACHE_FILE = "precision.json"


@dataclass(frozen=True)
class PathChoice:
    """The numeric path of a run and how it was chosen.

    ``source``: ``"measured"`` (timed now), ``"cached"`` (timed earlier on this machine),
    ``"config"`` (both parts forced by the config), ``"env"`` (``CLASSGAP_PRECISION``), or
    ``"device"`` (CUDA or another non-CPU device: a fixed rule). ``timings_ms``: the median
    milliseconds a training step took on each candidate path, when measured.
    """

    bf16: bool
    channels_last: bool
    source: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    key: str | None = None

    @property
    def name(self) -> str:
        """``"bf16+cl"``, ``"fp32"``, ...: the path's name in tables and timings."""
        return path_name(self.bf16, self.channels_last)

    def provenance(self) -> dict[str, Any]:
        """What ``provenance.json`` records of the choice."""
        return {"path": self.name, "source": self.source, "timings_ms": dict(self.timings_ms),
                "key": self.key}


def path_name(bf16: bool, channels_last: bool) -> str:
    """``"fp32"``, ``"fp32+cl"``, ``"bf16"`` or ``"bf16+cl"``."""
    return ("bf16" if bf16 else "fp32") + ("+cl" if channels_last else "")


def cpu_info() -> dict[str, Any]:
    """The CPU's model name and the flags of :data:`CPU_FLAGS` it has (Linux reads
    /proc/cpuinfo; elsewhere the model is ``platform.processor()`` and flags are unknown).

    ``native_bf16``: whether oneDNN computes bf16 natively here (AVX512-BF16 or AMX).
    """
    model, flags = "", set[str]()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not model:
                model = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
            if model and flags:
                break
    return {"model": model or platform.processor() or platform.machine(),
            "machine": platform.machine(),
            "flags": [f for f in CPU_FLAGS if f in flags],
            "native_bf16": _native_bf16()}


def _native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def cache_dir() -> Path:
    """``$CLASSGAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/classgap``, else ``~/.cache/classgap``."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "classgap"


def machine_id(cpu: dict[str, Any] | None = None) -> str:
    """A short hash of the CPU model, its flags and the torch version: the first part of every
    cache key, so a cache copied to another machine measures again."""
    cpu = cpu or cpu_info()
    return hashlib.sha256(json.dumps([cpu["model"], cpu["flags"], torch.__version__])
                          .encode()).hexdigest()[:12]


def path_key(*, model: str, input_shape: Sequence[int], n_classes: int, batch_size: int,
             threads: int, candidates: Sequence[tuple[bool, bool]],
             cpu: dict[str, Any] | None = None) -> str:
    """The cache key of a measurement: what the timing depends on, as one readable string
    with a short hash of the CPU model and flags and the torch version."""
    machine = machine_id(cpu)
    paths = ",".join(path_name(*c) for c in candidates)
    shape = "x".join(str(int(s)) for s in input_shape)
    return (f"{machine}/{model}/{shape}/k{int(n_classes)}/b{int(batch_size)}/t{int(threads)}/"
            f"{paths}")


def choose_path(precision: str, channels_last: bool | str, device: torch.device, *,
                build_model: Callable[[], torch.nn.Module] | None = None,
                model: str = "", input_shape: Sequence[int] = (), n_classes: int = 0,
                batch_size: int = 0, threads: int | None = None) -> PathChoice:
    """The run's path: forced by the config or ``CLASSGAP_PRECISION``, fixed on non-CPU
    devices, else measured once per machine and key and cached (module docstring).

    ``build_model`` returns a fresh model of the run's architecture on ``device`` (needed only
    when a measurement runs); ``model``, ``input_shape`` (C, H, W), ``n_classes``,
    ``batch_size`` and ``threads`` describe the run for the key.
    """
    env = os.environ.get(ENV_PRECISION, "").strip().lower()
    if env and env not in ("fp32", "bf16"):
        raise ConfigError(f"'{ENV_PRECISION}' must be fp32 or bf16; got {env!r}")
    source = "config"
    if precision == "auto" and env:
        precision, source = env, "env"
    if device.type != "cpu":
        cuda = device.type == "cuda"
        bf16 = precision == "bf16" or (precision == "auto" and cuda)
        cl = cuda if channels_last == "auto" else bool(channels_last)
        return PathChoice(bf16, cl, "device" if "auto" in (precision, channels_last)
                          else source)
    precisions = [False, True] if precision == "auto" else [precision == "bf16"]
    if channels_last != "auto":
        layouts = [bool(channels_last)]
    elif build_model is not None and _has_conv(build_model):
        layouts = [False, True]
    else:  # a memory layout is meaningless without convolutions
        layouts = [False]
    candidates = [(b, c) for b in precisions for c in layouts]
    if len(candidates) == 1:  # nothing to choose
        return PathChoice(*candidates[0], source)
    if build_model is None:
        raise ValueError("choose_path needs build_model to measure the candidate paths")
    threads = torch.get_num_threads() if threads is None else int(threads)
    key = path_key(model=model, input_shape=input_shape, n_classes=n_classes,
                   batch_size=batch_size, threads=threads, candidates=candidates)
    directory = cache_dir()
    with _locked(directory):
        cached = _read_cache(directory).get(key)
        if cached is not None:
            return PathChoice(bool(cached["bf16"]), bool(cached["channels_last"]), "cached",
                              dict(cached.get("timings_ms", {})), key)
        timings = measure_paths(build_model, candidates, input_shape=input_shape,
                                n_classes=n_classes, batch_size=batch_size, device=device)
        bf16, cl = _fastest(timings, candidates)
        _write_cache(directory, key, {
            "bf16": bf16, "channels_last": cl, "timings_ms": timings,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu": cpu_info()["model"], "torch": torch.__version__})
    return PathChoice(bf16, cl, "measured", timings, key)


def _fastest(timings: dict[str, float], candidates: Sequence[tuple[bool, bool]],
             ) -> tuple[bool, bool]:
    """The fastest candidate; fp32 when an fp32 path is within :data:`TOLERANCE` of it."""
    best = min(timings.values())
    near = [c for c in candidates if timings[path_name(*c)] <= best * (1 + TOLERANCE)]
    return min(near, key=lambda c: (c[0], timings[path_name(*c)]))


def _has_conv(build_model: Callable[[], torch.nn.Module]) -> bool:
    with _rng_kept():
        return any(isinstance(m, torch.nn.Conv2d) for m in build_model().modules())


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    """Leave the global torch RNG as it was: measuring must not change the run's numbers."""
    state = torch.random.get_rng_state()
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def measure_paths(build_model: Callable[[], torch.nn.Module],
                  candidates: Sequence[tuple[bool, bool]], *, input_shape: Sequence[int],
                  n_classes: int, batch_size: int, device: torch.device, rounds: int = 3,
                  steps: int = 3, warmup: int = 2) -> dict[str, float]:
    """Median milliseconds of one SGD training step (forward, cross-entropy, backward,
    update) of a fresh model on each candidate path, on random data of the run's shape.

    After ``warmup`` untimed steps and one timed step per path, a path more than twice as
    slow as the fastest is out (its time is that one step). The others are timed round-robin
    (``rounds`` rounds of ``steps`` steps each), so a slow spell of a shared machine hits
    every path alike; a round's time is its mean step, and a path's the median over rounds.
    Runs with the current thread count and leaves the global RNG as it was.
    """
    from classgap.train.evaluate import autocast

    with _rng_kept():
        torch.manual_seed(0)
        x = torch.randn(int(batch_size), *(int(s) for s in input_shape), device=device)
        y = torch.randint(0, max(int(n_classes), 1), (int(batch_size),), device=device)
        setups = []
        for bf16, cl in candidates:
            model = build_model()
            inputs = x
            if cl:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                inputs = x.contiguous(memory_format=torch.channels_last)
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

            def step(model: torch.nn.Module = model, inputs: torch.Tensor = inputs,
                     optimizer: torch.optim.Optimizer = optimizer, bf16: bool = bf16) -> None:
                optimizer.zero_grad(set_to_none=True)
                with autocast(device, bf16):
                    logits = model(inputs)
                torch.nn.functional.cross_entropy(logits.float(), y).backward()
                optimizer.step()

            setups.append((path_name(bf16, cl), step))
        first: dict[str, float] = {}
        for name, step in setups:
            for _ in range(warmup):
                step()
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            first[name] = time.perf_counter() - start
        # a path over twice as slow as the fastest in its first timed step is out: an
        # emulated bf16 (9x slower) costs its warm-up only
        fastest = min(first.values())
        dropped = {name: t for name, t in first.items() if t > 2 * fastest}
        setups = [(name, step) for name, step in setups if name not in dropped]
        times: dict[str, list[float]] = {name: [] for name, _ in setups}
        for _ in range(rounds):
            for name, step in setups:
                _sync(device)
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                _sync(device)
                times[name].append((time.perf_counter() - start) / steps)
    seconds = {**dropped, **{name: sorted(t)[len(t) // 2] for name, t in times.items()}}
    return {name: round(1000 * seconds[name], 3) for name in first}  # candidates' order


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory/precision.lock`` (POSIX ``flock``; no lock elsewhere):
    one process measures a key while the others wait, then read its result."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / "precision.lock", "a")
    except OSError:  # a read-only home: measure without caching rather than fail the run
        yield
        return
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock


def _read_cache(directory: Path) -> dict[str, Any]:
    file = directory / CACHE_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"{file}: unreadable precision cache ({exc}); measuring again",
                      RuntimeWarning, stacklevel=3)
        return {}
    ok = isinstance(data, dict) and all(
        isinstance(v, dict) and isinstance(v.get("bf16"), bool)
        and isinstance(v.get("channels_last"), bool) for v in data.values())
    if not ok:
        warnings.warn(f"{file}: not a precision cache; measuring again", RuntimeWarning,
                      stacklevel=3)
        return {}
    return data


def _write_cache(directory: Path, key: str, entry: dict[str, Any]) -> None:
    data = _read_cache(directory)
    data[key] = entry
    with contextlib.suppress(OSError):  # a read-only cache: the run goes on, measured
        write_json(directory / CACHE_FILE, data)


def cached_choices() -> list[dict[str, Any]]:
    """This machine's cached measurements (``key`` and its entry), in key order."""
    mine = machine_id() + "/"
    return [{"key": k, **v} for k, v in sorted(_read_cache(cache_dir()).items())
            if k.startswith(mine)]
