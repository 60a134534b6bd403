"""What the Lightning ``PredictionWriter`` adds to a training run's wall time (issue 14).

Workload: ``examples/lightning_digits.py``'s model and loaders (digits, an MLP), ``--epochs``
epochs, fit then test, on the CPU with one thread, timed without the callback, with it at its
defaults (files every epoch), and with ``log_per_class=True`` too (30 more logged values an
epoch), alternating, best of ``--repeats`` each. Target: under 5% more wall time.

Usage: ``python bench/lightning_overhead.py [--epochs 2] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lightning_digits.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("lightning_digits", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from classgap.integrations.lightning import PredictionWriter

    def once(mode: str, out: Path) -> float:
        L.seed_everything(0, verbose=False)
        train, val, test = example.loaders()
        callbacks = [] if mode == "none" else [
            PredictionWriter(out, log_per_class=mode == "files + per-class logging")]
        trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1,
                            logger=CSVLogger(out / "logs", name=""), callbacks=callbacks,
                            enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=False)
        model = example.Digits()
        start = time.perf_counter()
        trainer.fit(model, train, val)
        trainer.test(model, test, verbose=False)
        return time.perf_counter() - start

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"lightning {L.__version__}; {args.epochs} epochs, 1 thread")
    modes = ("none", "files (defaults)", "files + per-class logging")
    times: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:  # imports and first-call costs
            once(mode, Path(tmp) / f"warm{len(mode)}")
        for i in range(args.repeats):
            for j, mode in enumerate(modes):
                times[mode].append(once(mode, Path(tmp) / f"{j}-{i}"))
    plain = min(times["none"])
    print(f"without the callback: {plain:.3f} s (best of {args.repeats})")
    for mode in modes[1:]:
        best = min(times[mode])
        print(f"with it, {mode}: {best:.3f} s, overhead {100 * (best / plain - 1):+.1f}%")


if __name__ == "__main__":
    main()
