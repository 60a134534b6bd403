"""What the training-loop callbacks add to a run's wall time (issue 14).

Workloads, on the CPU with one torch thread, for each of ``--epochs`` (2 and 10 by default):

- Lightning: ``examples/lightning_digits.py``'s model and loaders (digits, an MLP),
  fit then test; without the callback, with an empty ``Callback`` (what
  Lightning's hook dispatch costs for any callback), with ``PredictionWriter`` recording but
  writing no file, at its defaults (the last validation epoch's file when fit ends, and the
  test file), with a file every validation epoch (``every_n_epochs=1``), and with
  ``log_per_class=True``.
- Hugging Face: ``examples/hf_digits.py``'s ``Trainer`` (the same data and MLP as a
  ``PreTrainedModel``), train then predict; without the callback (an accuracy
  ``compute_metrics``, what a user has anyway), and with ``PredictionWriterCallback`` wrapping
  that same function: at its defaults, with ``every_n_epochs=1``, with ``log_per_class``.

Each of ``--repeats`` rounds runs every variant once, in a random order. The table gives the
best and the median time; the overhead against the run without the callback, best against
best and as the median of each round's ratio with a bootstrap interval; and the time spent
inside the Lightning callback's own hooks (a direct measure, free of run-to-run noise).

Targets (issue 24): the time inside the Lightning callback's own hooks, at its defaults, is at
most 5% of a 2-epoch run and at most 2% of a 10-epoch run. The last table gives, per number of
epochs, that time as a share of the run without the callback in the same round (the median of
the rounds' shares, with a 95% bootstrap interval) and whether the median meets the target.

Usage: ``python bench/callback_overhead.py [--epochs 2,10] [--repeats 31] [--only lightning|hf]
[--dir DIR] [--variants without,empty,recording,defaults,every-epoch,per-class] [--files]``;
``--files`` also times one prediction file's write inside a Lightning run (of the first
``--epochs``), against the same size of bytes written atomically and plainly in its place.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import io
import logging
import os
import platform
import statistics
import struct
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# the most the callback's own hooks may take, as a share of a run of this many epochs
TARGETS = {2: 0.05, 10: 0.02}
HOOKS = ("on_validation_epoch_start", "on_validation_batch_end",
         "on_validation_epoch_end", "on_fit_end", "on_test_epoch_start",
         "on_test_batch_end", "on_test_epoch_end", "setup")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def timed_hooks(cls: type, spent: list[float]) -> None:
    """Add the time spent inside ``cls``'s callback hooks to ``spent[0]``."""
    for name in HOOKS:
        hook = getattr(cls, name)

        @functools.wraps(hook)
        def wrapper(*args: Any, _hook: Callable[..., Any] = hook, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(cls, name, wrapper)


def lightning_variants(epochs: int) -> dict[str, Callable[[Path], float]]:
    """The Lightning runs, by variant; ``timed_hooks`` times the writer's hooks (once)."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    import classgap.integrations.lightning as callback_module
    from classgap.integrations import PredictionRecorder
    from classgap.integrations.lightning import PredictionWriter

    example = load("lightning_digits")

    def run(out: Path, callback: Any) -> float:
        L.seed_everything(0, verbose=False)
        train, val, test = example.loaders()
        trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1,
                            logger=CSVLogger(out / "logs", name=""),
                            callbacks=[callback] if callback else [], enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False)
        model = example.Digits()
        start = time.perf_counter()
        trainer.fit(model, train, val)
        trainer.test(model, test, verbose=False)
        return time.perf_counter() - start

    class Empty(L.Callback):
        """What Lightning's dispatch costs for any callback: every hook, doing nothing."""

    class Unwritten(PredictionRecorder):
        """A recorder whose files are not written: what recording alone costs."""

        def write(self, path: Any, **kwargs: Any) -> Path:
            return Path(path)

    def recording_only(out: Path) -> float:
        original = callback_module.PredictionRecorder
        callback_module.PredictionRecorder = Unwritten
        try:
            return run(out, PredictionWriter(out))
        finally:
            callback_module.PredictionRecorder = original

    return {
        "without": lambda out: run(out, None),
        "empty": lambda out: run(out, Empty()),
        "recording": recording_only,
        "defaults": lambda out: run(out, PredictionWriter(out)),
        "every-epoch": lambda out: run(out, PredictionWriter(out, every_n_epochs=1)),
        "per-class": lambda out: run(out, PredictionWriter(out, log_per_class=True)),
    }


def hf_variants(epochs: int) -> dict[str, Callable[[Path], float]]:
    from classgap.integrations.hf import PredictionWriterCallback

    example = load("hf_digits")
    test_set = example.datasets()[2]

    def accuracy(eval_pred: Any) -> dict[str, float]:
        return {"accuracy": float((np.argmax(eval_pred.predictions, 1)
                                   == eval_pred.label_ids).mean())}

    def run(out: Path, writer: Any) -> float:
        trainer = example.trainer_for(out, writer, epochs=epochs, seed=0)
        if writer is None:
            trainer.compute_metrics = accuracy
        start = time.perf_counter()
        trainer.train()
        trainer.predict(test_set)
        return time.perf_counter() - start

    return {
        "without": lambda out: run(out, None),
        "defaults": lambda out: run(out, PredictionWriterCallback(out, metrics=accuracy)),
        "every-epoch": lambda out: run(out, PredictionWriterCallback(out, metrics=accuracy,
                                                                     every_n_epochs=1)),
        "per-class": lambda out: run(out, PredictionWriterCallback(out, metrics=accuracy,
                                                                   log_per_class=True)),
    }


LABELS = {
    "without": "without",
    "empty": "an empty Callback",
    "recording": "recording only (no files)",
    "defaults": "with, defaults",
    "every-epoch": "with, every_n_epochs=1",
    "per-class": "with, + per-class logging",
}
INSIDE = "inside the callback's hooks (defaults)"


def measure(variants: dict[str, Callable[[Path], float]], repeats: int, where: Path | None,
            spent: list[float] | None = None) -> dict[str, list[float]]:
    """``repeats`` rounds of one run of each variant, in a random order each round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    inside: list[float] = []
    order = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        for j, run in enumerate(variants.values()):  # imports and first-call costs
            run(Path(tmp) / f"warm{j}")
        for i in range(repeats):
            for name in order.permutation(list(variants)):
                if spent is not None:
                    spent[0] = 0.0
                times[name].append(variants[name](Path(tmp) / f"{name}-{i}"))
                if spent is not None and name == "defaults":
                    inside.append(spent[0])
    if inside:
        times[INSIDE] = inside
    return times


def _stored_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """The archive ``np.savez`` writes (``.npy`` members, stored uncompressed), built with
    ``struct`` instead of ``zipfile``: what the archive itself costs. A floor for this
    benchmark, not a writer for the library (``np.load`` reads it; the smoke test checks)."""
    out, central = io.BytesIO(), []
    for name, array in arrays.items():
        member = io.BytesIO()
        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        data, filename, offset = member.getvalue(), f"{name}.npy".encode(), out.tell()
        sizes = (zlib.crc32(data), len(data), len(data))  # stored: compressed = original
        # local header: version 2.0, no flags, stored, 1980-01-01 00:00, no extra field
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, *sizes,
                              len(filename), 0) + filename + data)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, *sizes,
                                   len(filename), 0, 0, 0, 0, 0o644 << 16, offset) + filename)
    start = out.tell()
    out.write(b"".join(central))
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central),
                          out.tell() - start, start, 0))
    return out.getvalue()


def file_costs(run: Callable[[Path], float], repeats: int, where: Path | None) -> None:
    """What one prediction file costs inside a run, and where it goes: the callback's own
    write, timed in ``run`` (the Lightning run at its defaults); its arrays written without
    the validation every prediction file gets (``np.savez``, then a hand-built archive); and
    16 KiB (about these files' size) written in its place atomically and plainly, the file
    system's share."""
    from classgap._files import atomic_write
    from classgap.audit._io_formats import write_raw
    from classgap.integrations.recorder import PredictionRecorder

    write, payload = PredictionRecorder.write, os.urandom(16 * 2**10)

    def fields(recorder: Any) -> dict[str, np.ndarray]:
        logits, targets, _ = recorder.arrays()
        return {"y_true": targets, "logits": logits, "seed": np.int64(recorder.seed or 0),
                "classes": np.array(recorder.classes or [], dtype=str)}

    def unvalidated(self: Any, path: Any, **kwargs: Any) -> Path:
        write_raw(Path(path), str(path), fields(self))
        return Path(path)

    def hand_built(self: Any, path: Any, **kwargs: Any) -> Path:
        return atomic_write(path, _stored_npz(fields(self)))

    def atomic(self: Any, path: Any, **kwargs: Any) -> Path:
        return atomic_write(path, payload)

    def plain(self: Any, path: Any, **kwargs: Any) -> Path:
        with open(path, "wb") as fh:
            fh.write(payload)
        return Path(path)

    ways = {"the callback's write": write,
            "its arrays, np.savez, atomically, not validated": unvalidated,
            "its arrays, a hand-built archive, atomically, not validated": hand_built,
            "16 KiB, atomically": atomic, "16 KiB, a plain open and write": plain}
    spent: dict[str, list[float]] = {name: [] for name in ways}
    order = np.random.default_rng(1)
    try:
        with tempfile.TemporaryDirectory(dir=where) as tmp:
            for i in range(repeats):
                for j in order.permutation(len(ways)):
                    name = list(ways)[j]

                    def timed(self: Any, path: Any, _way: Any = ways[name],
                              _spent: list[float] = spent[name], **kwargs: Any) -> Path:
                        start = time.perf_counter()
                        try:
                            return _way(self, path, **kwargs)
                        finally:
                            _spent.append(time.perf_counter() - start)

                    PredictionRecorder.write = timed  # type: ignore[method-assign]
                    run(Path(tmp) / f"{i}-{j}")
            built = list(ways.values()).index(hand_built)
            archives = list(Path(tmp).glob(f"*-{built}/*.npz"))
            assert archives, "no hand-built archive was written"
            for archive in archives:  # they read back as np.savez's do
                with np.load(archive) as got:
                    assert got["logits"].shape == (len(got["y_true"]), 10), archive
    finally:
        PredictionRecorder.write = write  # type: ignore[method-assign]
    print("\nOne prediction file inside a Lightning run (defaults: two files a run)")
    print("| written | best | median |")
    print("|---|---:|---:|")
    for name, values in spent.items():
        print(f"| {name} | {1e3 * min(values):.2f} ms | {1e3 * statistics.median(values):.2f} ms |")


def paired_ratio(numerator: list[float], denominator: list[float], seed: int = 0,
                 ) -> tuple[float, float, float]:
    """Median of the paired ratios (times of one round, back to back), with a 95% bootstrap
    interval: slow drifts of the machine cancel within a round."""
    ratios = np.asarray(numerator) / np.asarray(denominator)
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(ratios, size=(10_000, len(ratios))), axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(np.median(ratios)), float(low), float(high)


def paired_overhead(with_: list[float], without: list[float], seed: int = 0,
                    ) -> tuple[float, float, float]:
    """What a variant adds to the run without the callback: :func:`paired_ratio` minus 1."""
    mid, low, high = paired_ratio(with_, without, seed)
    return mid - 1, low - 1, high - 1


def report_targets(shares: dict[int, tuple[list[float], list[float]]]) -> None:
    """Per number of epochs, the time inside the hooks (defaults) against its target."""
    print("\nTarget: the time inside the Lightning callback's own hooks (defaults), as a share of"
          " the run without the callback in the same round")
    print("| epochs | inside the hooks, median | run without, median | share, median [95% CI] "
          "| target | met |")
    print("|---:|---:|---:|---:|---:|---|")
    for epochs, (inside, without) in shares.items():
        mid, low, high = paired_ratio(inside, without)
        target = TARGETS.get(epochs)
        verdict = "—" if target is None else ("yes" if mid <= target else "no")
        print(f"| {epochs} | {1e3 * statistics.median(inside):.2f} ms | "
              f"{1e3 * statistics.median(without):.1f} ms | {100 * mid:.1f}% "
              f"[{100 * low:.1f}, {100 * high:.1f}] | "
              f"{'—' if target is None else f'≤ {100 * target:g}%'} | {verdict} |")


def report(title: str, times: dict[str, list[float]]) -> None:
    base = times["without"]
    base_best, base_median = min(base), statistics.median(base)
    print(f"\n{title}")
    print("| variant | best | median | overhead, best vs best | overhead, paired median "
          "[95% CI] |")
    print("|---|---:|---:|---:|---:|")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        label = LABELS.get(name, name)
        if name == INSIDE:
            print(f"| {label} | {1e3 * best:.2f} ms | {1e3 * median:.2f} ms | "
                  f"{100 * best / base_best:.1f}% of the best run | "
                  f"{100 * median / base_median:.1f}% of the median run |")
        elif name == "without":
            print(f"| {label} | {best:.3f} s | {median:.3f} s | — | — |")
        else:
            mid, low, high = paired_overhead(values, base)
            print(f"| {label} | {best:.3f} s | {median:.3f} s | "
                  f"{100 * (best / base_best - 1):+.1f}% | "
                  f"{100 * mid:+.1f}% [{100 * low:+.1f}, {100 * high:+.1f}] |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", default="2,10",
                        help="the runs' numbers of epochs, comma-separated (default: 2,10, "
                             "the two the targets name)")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--only", choices=("lightning", "hf"), default=None)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the runs write (default: a temporary directory)")
    parser.add_argument("--files", action="store_true",
                        help="Lightning: also time one prediction file's write inside a run "
                             "(of the first --epochs)")
    parser.add_argument("--variants", default=",".join(LABELS),
                        help=f"which to time, comma-separated, from {', '.join(LABELS)} "
                             "('without' is always timed; Hugging Face has no 'empty' or "
                             "'recording')")
    args = parser.parse_args()
    chosen = {"without", *args.variants.split(",")}
    unknown = chosen - set(LABELS)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from "
                     f"{', '.join(LABELS)}")
    try:
        epoch_counts = [int(e) for e in args.epochs.split(",")]
    except ValueError:
        epoch_counts = []
    if not epoch_counts or min(epoch_counts) < 1:
        parser.error(f"--epochs must be positive whole numbers, comma-separated; got "
                     f"{args.epochs!r}")
    torch.set_num_threads(1)
    quiet()
    versions = [f"torch {torch.__version__}"]
    if args.only != "hf":
        import lightning

        versions.append(f"lightning {lightning.__version__}")
    if args.only != "lightning":
        import transformers

        versions.append(f"transformers {transformers.__version__}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {', '.join(versions)}; "
          f"{args.epochs} epochs, 1 thread, {args.repeats} repeats")
    spent = [0.0]
    if args.only != "hf":
        from classgap.integrations.lightning import PredictionWriter

        timed_hooks(PredictionWriter, spent)
    shares: dict[int, tuple[list[float], list[float]]] = {}
    for epochs in epoch_counts:
        if args.only != "hf":
            runs = lightning_variants(epochs)
            variants = {k: v for k, v in runs.items() if k in chosen}
            times = measure(variants, args.repeats, args.dir, spent)
            report(f"Lightning (fit + test), {epochs} epochs", times)
            if INSIDE in times:
                shares[epochs] = (times[INSIDE], times["without"])
            if args.files and epochs == epoch_counts[0]:  # a file costs the same at any length
                file_costs(runs["defaults"], args.repeats, args.dir)
        if args.only != "lightning":
            variants = {k: v for k, v in hf_variants(epochs).items() if k in chosen}
            report(f"Hugging Face Trainer (train + predict), {epochs} epochs",
                   measure(variants, args.repeats, args.dir))
    if shares:
        report_targets(shares)


if __name__ == "__main__":
    main()
