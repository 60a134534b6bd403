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

Scale rows (issue 11), in the same run: the audit (1000 replicates) and ``compare_predictions``
(1 v 1 and 5 v 5 seeds) on label spaces of iNaturalist-2021 validation (100,000 images x 10,000
classes, 10 each) and ImageNet-21k (218,410 x 21,841 classes, 10 each), wrong predictions spread
uniformly over the other classes (the most distinct confusion cells). Each row is the best of
``--repeats`` timings; its peak memory is what ``tracemalloc`` saw allocated during one more
call (numpy reports its buffers to it), above what was allocated before the call.

Grouped rows (issue 23), in the same run: at 10,000 classes x 10 images and a 5-level nested
group map (4 > 20 > 200 > 1,000 > 5,000 groups, classes assigned at random), what ``audit
--groups`` computes (the audit, then ``audit_groups``) beside the audit alone, and what
``compare --groups`` computes (``compare_predictions``, ``compare_groups``, ``compare_tree``)
beside ``compare_predictions`` alone, for 1 and 5 runs (1 v 1 and 5 v 5); timed and measured
as the scale rows.
``--write-files DIR`` also writes the 10,000-class runs and the map as files, for timing the
commands as whole processes.

Usage: ``python bench/audit_speed.py [--fairlearn-boot 10] [--repeats 5] [--skip-fairlearn]
[--skip-scale] [--skip-groups] [--write-files DIR]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from classgap.audit import audit, compare_predictions
from classgap.audit.grouped import audit_groups, compare_groups
from classgap.audit.groups import GroupMap
from classgap.audit.hierarchical import compare_tree
from classgap.audit.intervals import bootstrap_class_accuracy, bootstrap_interval
from classgap.audit.io import write_predictions
from classgap.audit.perclass import class_counts

N_SAMPLES, N_CLASSES, N_BOOT = 50_000, 1_000, 1_000


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(N_CLASSES), N_SAMPLES // N_CLASSES)
    p_correct = rng.uniform(0.4, 0.95, N_CLASSES)[y_true]
    wrong = (y_true + rng.integers(1, N_CLASSES, N_SAMPLES)) % N_CLASSES
    y_pred = np.where(rng.random(N_SAMPLES) < p_correct, y_true, wrong)
    return y_true, y_pred


SCALES = ((10_000, 10), (21_841, 10))  # (classes, test images per class)


def make_scale_data(n_classes: int, per_class: int, n_runs: int, seed: int = 0,
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``y_true`` with ``per_class`` images a class and ``n_runs`` prediction vectors."""
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(n_classes), per_class)
    p_correct = rng.uniform(0.4, 0.95, n_classes)[y_true]
    runs = []
    for _ in range(n_runs):
        wrong = (y_true + rng.integers(1, n_classes, y_true.size)) % n_classes
        runs.append(np.where(rng.random(y_true.size) < p_correct, y_true, wrong))
    return y_true, runs


def peak_memory(fn: Callable[[], object]) -> float:
    """Peak bytes allocated during ``fn()`` above the allocation before it (tracemalloc)."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(peak - base)


def scale_rows(repeats: int) -> None:
    print(f"\n{'scale row':<52} {'time':>9} {'peak memory':>12}")
    for n_classes, per_class in SCALES:
        y_true, runs = make_scale_data(n_classes, per_class, 10)
        base, cand = runs[:5], runs[5:]
        size = f"{y_true.size:,} x {n_classes:,}"
        cases: list[tuple[str, Callable[[], object]]] = [
            (f"audit, 1 run, {size}",
             lambda y=y_true, r=runs[0], k=n_classes: audit(y, r, n_classes=k, n_boot=N_BOOT,
                                                            random_state=0)),
            (f"audit, 5 runs, {size}",
             lambda y=y_true, r=base, k=n_classes: audit(y, r, n_classes=k, n_boot=N_BOOT,
                                                         random_state=0)),
            (f"compare 1 v 1, {size}",
             lambda y=y_true, a=base[:1], b=cand[:1], k=n_classes: compare_predictions(y, a, b, k)),
            (f"compare 5 v 5, {size}",
             lambda y=y_true, a=base, b=cand, k=n_classes: compare_predictions(y, a, b, k)),
        ]
        for name, fn in cases:
            fn()  # warm: page faults of the first large allocation are not the method's cost
            seconds = best_of(fn, repeats)
            peak = peak_memory(fn)
            print(f"{name:<52} {seconds:8.3f} s {peak / 2**30:9.3f} GB", flush=True)


GROUP_SIZES = (2_500, 500, 50, 10, 2)  # classes a group, coarse to fine: 5 nested levels
GROUP_LEVELS = ("kingdom", "phylum", "order", "family", "genus")


def make_group_map(n_classes: int, seed: int = 0) -> GroupMap:
    """A nested map of ``n_classes`` classes: level l groups ``GROUP_SIZES[l]`` classes of a
    random order of the classes (so a group's classes are not neighbours in the labels)."""
    rank = np.random.default_rng(seed).permutation(n_classes)
    return GroupMap(tuple(str(k) for k in range(n_classes)), GROUP_LEVELS,
                    np.stack([rank // size for size in GROUP_SIZES]),
                    tuple(tuple(f"{level}{g}" for g in range(-(-n_classes // size)))
                          for level, size in zip(GROUP_LEVELS, GROUP_SIZES, strict=True)))


def group_rows(repeats: int, write_files: Path | None) -> None:
    """``audit --groups`` and ``compare --groups`` at 10,000 classes and 5 levels, each beside
    its ungrouped counterpart."""
    n_classes, per_class = SCALES[0]
    y_true, runs = make_scale_data(n_classes, per_class, 10)
    base, cand = runs[:5], runs[5:]
    groups = make_group_map(n_classes)
    if write_files is not None:
        save_files(write_files, y_true, runs, groups)

    def audited(r: np.ndarray | list[np.ndarray], grouped: bool) -> None:
        result = audit(y_true, r, n_classes=n_classes, n_boot=N_BOOT, random_state=0)
        if grouped:  # as audit --groups: the per-class audit is reused, not done again
            audit_groups(y_true, r, groups, n_classes=n_classes, n_boot=N_BOOT, random_state=0,
                         class_audit=result)

    def compared(a: list[np.ndarray], b: list[np.ndarray], grouped: bool) -> None:
        compare_predictions(y_true, a, b, n_classes)
        if grouped:
            compare_groups(y_true, a, b, groups, n_classes=n_classes)
            compare_tree(y_true, a, b, groups)

    size = f"{y_true.size:,} x {n_classes:,}, {len(GROUP_LEVELS)} levels"
    print(f"\n{'grouped row (' + size + ')':<52} {'time':>9} {'peak memory':>12}")
    cases: list[tuple[str, Callable[[], object]]] = []
    for what, r in (("1 run", runs[0]), ("5 runs", base)):
        cases += [(f"audit, {what}", partial(audited, r, False)),
                  (f"audit --groups, {what}", partial(audited, r, True))]
    for a, b in ((base[:1], cand[:1]), (base, cand)):
        vs = f"{len(a)} v {len(b)}"
        cases += [(f"compare {vs}", partial(compared, a, b, False)),
                  (f"compare --groups {vs}", partial(compared, a, b, True))]
    for name, fn in cases:
        fn()  # warm, as the scale rows
        seconds = best_of(fn, repeats)
        peak = peak_memory(fn)
        print(f"{name:<52} {seconds:8.3f} s {peak / 2**30:9.3f} GB", flush=True)


def save_files(folder: Path, y_true: np.ndarray, runs: list[np.ndarray],
               groups: GroupMap) -> None:
    """``run0.npz`` .. ``run9.npz`` (labels only) and ``groups.csv`` (``class,<level>...``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, y_pred in enumerate(runs):
        write_predictions(folder / f"run{i}.npz", y_true=y_true, y_pred=y_pred, seed=i)
    groups.to_frame().to_csv(folder / "groups.csv", index=False)
    print(f"wrote {len(runs)} runs and groups.csv to {folder}")


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
    parser.add_argument("--skip-scale", action="store_true", help="leave out the scale rows")
    parser.add_argument("--skip-groups", action="store_true",
                        help="leave out the grouped rows")
    parser.add_argument("--write-files", type=Path, default=None, metavar="DIR",
                        help="write the grouped rows' runs and group map to DIR")
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
    if not args.skip_scale:
        scale_rows(args.repeats)
    if not args.skip_groups:
        group_rows(args.repeats, args.write_files)


if __name__ == "__main__":
    main()
