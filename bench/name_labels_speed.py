"""Reading prediction files whose labels are class names, against the same files with indices.

Issue 20: labels may be class names (``"species_00042"``); they are mapped to indices once,
when the file is read. This times :func:`classgap.audit.io.read_predictions` on the
iNaturalist-2021 validation layout (218,410 samples, 10,000 classes, one name per class) as
CSV and as npz, with names and with integer labels (the baseline, in the same run): best of
``--repeats`` after one warm read.

    OMP_NUM_THREADS=1 .venv/bin/python bench/name_labels_speed.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from classgap.audit.io import read_predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=218_410)
    parser.add_argument("--classes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = np.array([f"species_{i:05d}" for i in range(args.classes)])
    y = rng.integers(0, args.classes, args.samples)
    p = np.where(rng.random(args.samples) < 0.7, y, rng.integers(0, args.classes, args.samples))
    warnings.simplefilter("ignore")  # the inferred-classes note, once per read
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for kind, (yt, yp) in {"indices": (y, p), "names": (names[y], names[p])}.items():
            files[f"{kind}, .csv"] = Path(tmp) / f"{kind}.csv"
            pd.DataFrame({"y_true": yt, "y_pred": yp}).to_csv(files[f"{kind}, .csv"],
                                                              index=False)
            files[f"{kind}, .npz"] = Path(tmp) / f"{kind}.npz"
            np.savez(files[f"{kind}, .npz"], y_true=yt, y_pred=yp)
        print(f"| labels, format ({args.samples:,} samples, {args.classes:,} classes) "
              "| read_predictions |")
        print("|---|---:|")
        for label, path in files.items():
            read_predictions(path)  # warm: imports, file cache
            best = np.inf
            for _ in range(args.repeats):
                start = time.perf_counter()
                got = read_predictions(path)
                best = min(best, time.perf_counter() - start)
            assert got.n_samples == args.samples
            print(f"| {label} | {best:.3f} s |")


if __name__ == "__main__":
    main()
