"""Which fix removes the drop, at what mean cost: worst-class reweighting vs the study's refit.

Workload (issue 13): the default study's regime (Fashion-MNIST, 5k training images, MLP, 40
epochs; ``classgap.sweep.presets.MLP_5K``) and seeds, at its CV-selected strength, label
smoothing ε = 0.3. Trained here, one 1-thread run per core through ``run_grid`` (resumable,
in ``bench/runs/worst_class``): the reference (ε = 0), plain CE at ε = 0.3, and ε = 0.3 with
each reweighting rule (``loss.reweight`` = clam, tilted, ggf, apstar). The study's own fix, the
class-conditional refit, is read from the default study's directory when it is there
(``bench/regimes.py --regimes mlp5k-ls --refit``). Every candidate is compared with the
reference by ``compare_predictions`` (the crossed seeds × test-images test, BH q-values):
mean accuracy change, worst class, harmonic mean of recalls, and the classes that were paying
at ε = 0.3 (their Δ with interval and q).

Usage: ``python bench/worst_class.py [--seeds 0-11] [--workers 2]
[--refit-study bench/runs/regimes/mlp5k-ls/seeds0-11]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from classgap.audit import compare_predictions, read_predictions
from classgap.config import load_config, with_point
from classgap.sweep import RunSpec, Store, run_grid
from classgap.sweep.grid import parse_seeds, seed_list
from classgap.sweep.presets import MLP_5K

ROOT = Path(__file__).resolve().parent
METHODS = ("clam", "tilted", "ggf", "apstar")
SELECTED = 0.3


def specs(seeds: list[int]) -> dict[str, list[RunSpec]]:
    base = load_config(overrides=[*MLP_5K, "train.threads=1", "train.progress=false"])
    arms: dict[str, dict] = {"reference (ε = 0)": {"optim.label_smoothing": 0.0},
                             "CE, ε = 0.3 (CV-selected)": {"optim.label_smoothing": SELECTED}}
    for method in METHODS:
        arms[f"{method}, ε = 0.3"] = {"optim.label_smoothing": SELECTED, "loss.reweight": method}
    return {name: [RunSpec.from_config(with_point(base, {**point, "train.seed": s}),
                                       {**point, "seed": s}) for s in seeds]
            for name, point in arms.items()}


def harmonic(acc: np.ndarray) -> float:
    return float(len(acc) / (1.0 / np.maximum(acc, 1e-12)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-11")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "worst_class")
    parser.add_argument("--refit-study", type=Path,
                        default=ROOT / "runs" / "regimes" / "mlp5k-ls" / "seeds0-11")
    args = parser.parse_args()
    seeds = seed_list(parse_seeds(args.seeds))
    arms = specs(seeds)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; seeds {args.seeds}; "
          f"{sum(map(len, arms.values()))} runs into {args.out}")
    with Store(args.out) as store:
        run_grid(store, [s for group in arms.values() for s in group],
                 backend="processes" if args.workers > 1 else "local", workers=args.workers,
                 threads_per_worker=1, progress=True)
        tests = {name: [read_predictions(store.run_dir(s.run_id) / "test.npz") for s in group]
                 for name, group in arms.items()}
    refit = args.refit_study / "refit.json"
    if refit.is_file():
        runs = json.loads(refit.read_text())["runs"]
        tests["class-conditional refit (study)"] = [
            read_predictions(Path(r) / "test.npz") for r in runs
            if int(Path(r).name.removeprefix("seed")) in seeds]
    reference = tests.pop("reference (ε = 0)")
    y, names = reference[0].y_true, list(reference[0].classes or [])
    k = len(names)
    ref_pred = [p.y_pred for p in reference]
    ce = compare_predictions(y, ref_pred, [p.y_pred for p in tests["CE, ε = 0.3 (CV-selected)"]],
                             k, class_names=names)
    paying = list(ce.drops()["class"])
    print(f"classes paying at ε = 0.3 (vs ε = 0, q < 0.05): {', '.join(paying) or 'none'}")
    head = ["candidate (vs reference ε = 0)", "mean Δ pts [95% CI]", "worst class acc",
            "harmonic mean", "classes below reference",
            *[f"{c} Δ pts [CI], q" for c in paying]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ref_acc = np.mean([np.bincount(y, weights=p == y, minlength=k) / np.bincount(y, minlength=k)
                       for p in ref_pred], axis=0)
    print(f"| reference (ε = 0) | — | {100 * ref_acc.min():.1f} ({names[ref_acc.argmin()]}) | "
          f"{100 * harmonic(ref_acc):.2f} | — |" + " — |" * len(paying))
    for name, preds in tests.items():
        res = compare_predictions(y, ref_pred, [p.y_pred for p in preds], k, class_names=names)
        o, t = res.overall, res.classes.set_index("class")
        acc = t["acc_candidate"].to_numpy()
        below = ", ".join(res.drops()["class"]) or "none"
        cells = [f"{100 * t.loc[c, 'delta']:+.2f} [{100 * t.loc[c, 'delta_low']:+.2f}, "
                 f"{100 * t.loc[c, 'delta_high']:+.2f}], q {t.loc[c, 'q_value']:.2g}"
                 for c in paying]
        print(f"| {name} | {100 * o['delta']:+.2f} [{100 * o['delta_low']:+.2f}, "
              f"{100 * o['delta_high']:+.2f}] | {100 * acc.min():.1f} ({names[acc.argmin()]}) | "
              f"{100 * harmonic(acc):.2f} | {below} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
