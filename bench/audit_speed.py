"""Per-class bootstrap intervals: classgap vs fairlearn MetricFrame vs a plain numpy loop.

Workload (issue 2): 1000 bootstrap replicates of per-class accuracy (recall) with intervals, on
50,000 test samples over 1,000 classes (50 per class), ~70% accuracy.

* classgap: ``bootstrap_class_accuracy`` (class-stratified, drawn as binomial counts) +
  ``bootstrap_interval`` (percentile), and the full ``audit()`` (per-class table, Wilson
  intervals, disparity summary with BCa intervals from one replicate matrix).
* fairlearn: ``MetricFrame(metrics=recall, sensitive_features=y_true, n_boot=B)``; it is slow,
  so it runs with a few replicates and is extrapolated linearly to 1000
  (t(0) + 1000 · (t(B) − t(0)) / B). Its bootstrap resamples rows without stratification.
* numpy loop: one Python iteration per replicate, each drawing a stratified resample of row
  indices and counting correct rows per class with ``np.bincount``.

Usage: ``python bench/audit_speed.py [--fairlearn-boot 10] [--repeats 5] [--skip-fairlearn]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from classgap.audit import audit
from classgap.audit.intervals import bootstrap_class_accuracy, bootstrap_interval
from classgap.audit.perclass import class_counts

N_SAMPLES, N_CLASSES, N_BOOT = 50_000, 1_000, 1_000


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(N_CLASSES), N_SAMPLES // N_CLASSES)
    p_correct = rng.uniform(0.4, 0.95, N_CLASSES)[y_true]
    wrong = (y_true + rng.integers(1, N_CLASSES, N_SAMPLES)) % N_CLASSES
    y_pred = np.where(rng.random(N_SAMPLES) < p_correct, y_true, wrong)
    return y_true, y_pred


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def classgap_intervals(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    support, correct = class_counts(y_true, y_pred, N_CLASSES)
    reps = bootstrap_class_accuracy(correct, support, n_boot=N_BOOT, random_state=0)
    bootstrap_interval(correct / support, reps, confidence=0.95, method="percentile")


def numpy_loop(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    order = np.argsort(y_true, kind="stable")
    hit = (y_pred == y_true)[order]
    counts = np.bincount(y_true, minlength=N_CLASSES)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = y_true[order]
    reps = np.empty((N_BOOT, N_CLASSES))
    for b in range(N_BOOT):  # the loop over replicates that classgap avoids
        idx = starts[owner] + (rng.random(len(owner)) * counts[owner]).astype(np.int64)
        reps[b] = np.bincount(owner, weights=hit[idx], minlength=N_CLASSES) / counts
    np.quantile(reps, [0.025, 0.975], axis=0)


def fairlearn_time(y_true: np.ndarray, y_pred: np.ndarray, n_boot: int) -> tuple[float, float]:
    from fairlearn.metrics import MetricFrame

    def recall(t: np.ndarray, p: np.ndarray) -> float:
        # Within one class group, recall of that class = accuracy on its rows.
        return float(np.mean(t == p)) if len(t) else float("nan")

    def run(b: int | None) -> None:
        kwargs = {} if b is None else {"n_boot": b, "ci_quantiles": [0.025, 0.975],
                                       "random_state": 0}
        MetricFrame(metrics=recall, y_true=y_true, y_pred=y_pred,
                    sensitive_features=y_true, **kwargs)

    base = best_of(lambda: run(None), 1)
    with_boot = best_of(lambda: run(n_boot), 1)
    per_replicate = max(with_boot - base, 0.0) / n_boot
    return base + N_BOOT * per_replicate, per_replicate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fairlearn-boot", type=int, default=10,
                        help="replicates actually run for fairlearn (extrapolated to 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many timings")
    parser.add_argument("--skip-fairlearn", action="store_true")
    args = parser.parse_args()

    y_true, y_pred = make_data()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(f"workload: {N_BOOT} replicates, {N_SAMPLES:,} samples x {N_CLASSES:,} classes")

    t_classgap = best_of(lambda: classgap_intervals(y_true, y_pred), args.repeats)
    print(f"classgap per-class intervals      : {t_classgap:8.3f} s")
    t_audit = best_of(lambda: audit(y_true, y_pred, n_classes=N_CLASSES, n_boot=N_BOOT,
                                    random_state=0), max(1, args.repeats // 2))
    print(f"classgap full audit() + disparity  : {t_audit:8.3f} s")
    t_loop = best_of(lambda: numpy_loop(y_true, y_pred), 1)
    print(f"plain numpy loop over replicates  : {t_loop:8.3f} s  "
          f"(classgap {t_loop / t_classgap:.0f}x faster)")
    if not args.skip_fairlearn:
        t_fl, per = fairlearn_time(y_true, y_pred, args.fairlearn_boot)
        print(f"fairlearn MetricFrame (extrapolated from {args.fairlearn_boot} replicates, "
              f"{per:.2f} s each): {t_fl:8.1f} s  (classgap {t_fl / t_classgap:.0f}x faster)")


if __name__ == "__main__":
    main()
