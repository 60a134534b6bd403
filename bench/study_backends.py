"""One study, two backends: ``--backend ensemble`` (vmapped ensembles on CUDA) vs ``local``.

Workload (issue 12): the paper's run count, 20 seeds × 3 strengths of a small CNN, trained by
``classgap study`` through the pipeline (the same store, analysis and report), once per
backend into fresh directories, on the same device. Reports the wall time of each study, the
ratio, and whether both selected the same strength.

On a machine without CUDA the ensemble backend trains as ``local`` (with a warning), so the
ratio is ~1 by construction: run it where a GPU is lent.

Usage: ``python bench/study_backends.py [--seeds 20] [--axis aug.crop=0,2,4]
[--set train.epochs=10 ...]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from classgap.pipeline import plan_study, run_full_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--axis", default="aug.crop=0,2,4")
    parser.add_argument("--set", dest="overrides", action="append",
                        help="config overrides (replace the defaults: Fashion-MNIST 10k "
                             "images, cnn_small, 10 epochs)")
    parser.add_argument("--keep", type=Path, help="keep the study directories here")
    args = parser.parse_args()
    args.overrides = args.overrides or ["data.dataset=fashion-mnist", "model.name=cnn_small",
                                        "data.train_subset=10000", "train.epochs=10",
                                        "train.eval_every=10"]

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, device {device}, "
          f"torch {torch.__version__}")
    plan = plan_study(axes=[args.axis], seeds=args.seeds, overrides=args.overrides)
    print(f"study: {args.axis}, {args.seeds} seeds, {len(plan.grid().runs())} runs; "
          f"{' '.join(args.overrides)}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="classgap-backends-"))
    times, picks = {}, {}
    for backend in ("ensemble", "local"):
        out = root / backend
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_full_study(plan, out, backend=backend, workers=1, progress=True)
        times[backend] = time.perf_counter() - start
        picks[backend] = result.selected
        notes = "; ".join(str(w.message) for w in caught if "ensemble" in str(w.message))
        print(f"{backend:>8}: {times[backend]:8.1f} s, selected {result.selected}"
              + (f" ({notes})" if notes else ""), flush=True)
    print(f"ensemble is {times['local'] / times['ensemble']:.2f}x local; same selection: "
          f"{picks['ensemble'] == picks['local']}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
