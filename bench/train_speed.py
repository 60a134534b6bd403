"""Training speed: the classgap trainer vs a plain PyTorch pipeline, same model and recipe.

Fashion-MNIST (55k training images after the 5k stratified validation split, 10k test), SGD
(Nesterov, momentum 0.9, lr 0.05, weight decay 5e-4, batch 128, per-step cosine, no warm-up).
classgap (`classgap.train.train`): the whole split resident as uint8, one seeded permutation
per epoch, batched augmentation with per-sample parameters. Plain (`bench/plain_pipeline.py`):
a torch `DataLoader` over a map-style dataset with per-sample transforms: what the papers'
scripts do. Two modes:

**Side by side** (``--side-by-side``; the bar of issue 24, CPU): whole processes, each one
start-up, data load, ONE epoch with pad-2 random crop + horizontal flip 0.5, the test
evaluation, exit; timed by this driver around the process, which also reports its parts.
Kinds per model: ``classgap-auto`` (``train.precision=auto``: the path measured once and
cached, in an untimed warm-up run per kind, in a temporary ``$CLASSGAP_CACHE_DIR``),
``classgap-P`` (precision P forced, channels-last auto), ``plain-P`` (the plain pipeline at
P, channels-last as ``classgap-P`` chose it; it evaluates the 5k validation split before the
test set, as the trainer does) and ``floor-P`` (the same optimizer steps on
batches sliced from a pre-normalised resident tensor: no augmentation, no loader; then it
evaluates the 5k validation split and the test set, as every classgap run does), for P in
fp32 and bf16 (bf16 only where the CPU computes it natively, unless ``--precisions`` says so).
The kinds of one model run round-robin, ``--repeats`` rounds, so a slow spell of a shared
machine hits all alike, each round in its own seeded random order, so no kind always runs
first or after the same neighbour; each ratio is the median of its per-round ratios.
``--kinds classgap-bf16,floor-bf16`` runs only those kinds: one ratio, with more rounds in
the same time and the two processes of each round adjacent.
Targets: classgap >= 1.5x the plain pipeline at the same precision for ``mlp`` and
``cnn_small`` (or within 5% of the floor), >= 1.0x for ``cnn``, and ``auto`` at most 5%
slower than the faster forced path.

    python bench/train_speed.py --side-by-side --models mlp,cnn_small,cnn --repeats 3
        [--threads 2] [--precisions fp32,bf16] [--kinds KIND,...] [--train-subset N]
        [--plain-workers 0] [--json FILE]

**Throughput** (the default; issue 3): in one process, the ``cnn``, horizontal flip only,
classgap on its default path (bf16 + channels-last where that is fastest) against the plain
pipeline in fp32, 5 epochs. Reports training images/s (evaluation excluded), the training
time until test accuracy first reaches 90% (measured after every epoch, for this benchmark
only), and the final test accuracy.

    python bench/train_speed.py [--epochs 5] [--plain-workers 0] [--skip-plain]
"""

from __future__ import annotations

# Only the standard library at the top: a ``--one`` process times its own imports.
import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()

# -- the recipe ------------------------------------------------------------------------------
BATCH = 128  # training batch (images)
LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4  # SGD, Nesterov
# No warm-up: the plain pipeline's schedule is cosine from the first step, and the two must
# train the same recipe (the default half-epoch warm-up came later, bench/stability.py).
RECIPE = ["data.dataset=fashion-mnist", "model.name=cnn", "optim.lr=0.05",
          "optim.batch_size=128", "optim.weight_decay=5e-4", "aug.flip=0.5",
          "schedule.name=cosine", "schedule.warmup_epochs=0", "train.track_test=true",
          "train.progress=false"]
TARGET = 0.90  # throughput mode: the test accuracy whose first epoch is timed
PAD = 2  # side by side: zero-pad and random crop (px), then horizontal flip
FLIP = 0.5

# -- side by side: the targets (issue 24, item 2) ----------------------------------------------
#: classgap's speed-up over the plain pipeline at the same precision (plain wall / classgap's)
SPEEDUP_TARGET = {"mlp": 1.5, "cnn_small": 1.5, "cnn": 1.0}
FLOOR_SLACK = 1.05  # ... or classgap within 5% of the floor, where the speed-up is past it
AUTO_SLACK = 1.05  # auto at most 5% slower than the faster forced path
WARMUP_SUBSET = 1280  # training images of a warm-up run: the path's cache key ignores it
MARK = "TRAIN_SPEED_RESULT "  # a child's stdout line that carries its report


class BenchError(Exception):
    """A bad option or a failed child: one line for the user."""


# ============================================================================ a child (--one)
def run_one(kind: str, model: str, *, threads: int, train_subset: int | None = None,
            workers: int = 0, channels_last: bool = False, seed: int = 0) -> dict[str, Any]:
    """One whole run of ``kind`` (``classgap-auto``, ``plain-fp32``, ...) in this process:
    imports, data, one epoch, the test evaluation. Returns its parts in seconds, the test
    accuracy and the numeric path it took."""
    t0 = time.perf_counter()
    import torch  # timed as start-up, as the imports below

    torch.set_num_threads(threads)  # and train.threads: pinned both ways
    family, precision = kind.split("-")
    if family == "classgap":
        report = _one_classgap(model, precision, threads, train_subset, t0)
    else:
        report = _one_plain(family, model, precision == "bf16", channels_last, train_subset,
                            workers, seed, t0)
    return {"kind": kind, "model": model, **report,
            "total_s": round(time.perf_counter() - t0, 3)}


def _one_classgap(model: str, precision: str, threads: int, train_subset: int | None,
                  t0: float) -> dict[str, Any]:
    from classgap.config import load_config
    from classgap.train import precision as paths
    from classgap.train import train, trainer

    imports = time.perf_counter() - t0
    chosen: list[Any] = []

    def recorded(*args: Any, **kwargs: Any) -> Any:  # the path the trainer takes, and how
        chosen.append(paths.choose_path(*args, **kwargs))
        return chosen[-1]

    trainer.choose_path = recorded  # type: ignore[assignment]  # this process only
    overrides = [*RECIPE, f"model.name={model}", "train.epochs=1", "train.track_test=false",
                 f"aug.crop={PAD}", f"train.precision={precision}", f"train.threads={threads}",
                 "train.device=cpu"]
    if train_subset is not None:
        overrides.append(f"data.train_subset={train_subset}")
    result = train(load_config(overrides=overrides))
    train_s = sum(row["epoch_time"] for row in result.history)
    return {"imports_s": round(imports, 3), "train_s": round(train_s, 3),
            "other_s": round(result.wall_time - train_s, 3),
            "test_acc": result.test_accuracy, "path": chosen[0].name,
            "path_source": chosen[0].source}


def _one_plain(family: str, model: str, bf16: bool, channels_last: bool,
               train_subset: int | None, workers: int, seed: int, t0: float) -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(SCRIPT.parent))
    from plain_pipeline import (
        ImageDataset,
        PadCropFlip,
        evaluate,
        normalised,
        train_floor,
        train_plain,
    )

    from classgap.config import DataConfig
    from classgap.data.loader import channel_stats, make_splits
    from classgap.models import create_model

    imports = time.perf_counter() - t0
    t1 = time.perf_counter()
    splits = make_splits(DataConfig(dataset="fashion-mnist", train_subset=train_subset))
    images, labels, test = splits.train.images, splits.train.labels, splits.test
    # classgap's statistics (a histogram, 0.07 s) rather than numpy's float64 pass (0.7 s), so
    # neither the plain pipeline nor the floor pays for what the trainer has optimised away.
    mean, std = (float(v[0]) for v in channel_stats(images))
    torch.manual_seed(seed)
    c, h, w = images.shape[1:]
    net = create_model(model, num_classes=10, in_channels=c, image_size=(h, w))
    if family == "plain":
        logs = train_plain(
            net, ImageDataset(images, labels, mean, std, PadCropFlip(padding=PAD, flip=FLIP)),
            ImageDataset(test.images, test.labels, mean, std), epochs=1, batch_size=BATCH,
            num_workers=workers, seed=seed, bf16=bf16, channels_last=channels_last, lr=LR,
            momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
            val_set=None if splits.val is None else ImageDataset(
                splits.val.images, splits.val.labels, mean, std))
        train_s, accuracy = logs[-1].seconds, logs[-1].test_acc
    else:  # floor
        x = normalised(images, mean, std, channels_last=channels_last)  # (N, C, H, W)
        y = torch.from_numpy(labels).long()
        train_s = train_floor(net, x, y, epochs=1, batch_size=BATCH, bf16=bf16,
                              channels_last=channels_last, lr=LR, momentum=MOMENTUM,
                              weight_decay=WEIGHT_DECAY)
        for split in (splits.val, test):  # the splits every classgap run evaluates
            if split is None:
                continue
            x_eval = normalised(split.images, mean, std)
            y_eval = torch.from_numpy(split.labels).long()
            accuracy = evaluate(net, zip(x_eval.split(1024), y_eval.split(1024), strict=True),
                                bf16=bf16, channels_last=channels_last)  # the test's, last
    return {"imports_s": round(imports, 3), "train_s": round(train_s, 3),
            "other_s": round(time.perf_counter() - t1 - train_s, 3), "test_acc": accuracy,
            "path": ("bf16" if bf16 else "fp32") + ("+cl" if channels_last else ""),
            "path_source": "as classgap's"}


# ====================================================================== the side-by-side driver
def kinds_of(precisions: list[str], only: list[str] | None = None) -> list[str]:
    """The kinds one model runs, in their round-robin order (those of ``only`` if given)."""
    kinds = (["classgap-auto"] + [f"classgap-{p}" for p in precisions]
             + [f"plain-{p}" for p in precisions] + [f"floor-{p}" for p in precisions])
    return kinds if only is None else [k for k in kinds if k in only]


def child(kind: str, model: str, *, threads: int, env: dict[str, str],
          train_subset: int | None = None, workers: int = 0,
          channels_last: bool = False) -> dict[str, Any]:
    """Run ``kind`` as a fresh process; its report plus ``wall_s``, the driver's clock around
    the whole process (interpreter start-up and exit included)."""
    cmd = [sys.executable, str(SCRIPT), "--one", kind, "--model", model,
           "--threads", str(threads), "--plain-workers", str(workers)]
    if train_subset is not None:
        cmd += ["--train-subset", str(train_subset)]
    if channels_last:
        cmd.append("--channels-last")
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    reports = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode or not reports:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise BenchError(f"{kind} ({model}) failed with exit code {done.returncode}:\n  "
                         + "\n  ".join(tail))
    return {**json.loads(reports[-1][len(MARK):]), "wall_s": round(wall, 3)}


def child_env(threads: int, cache: str) -> dict[str, str]:
    """The children's environment: their own precision cache, ``threads`` threads, and no
    ``CLASSGAP_PRECISION`` (it would force ``auto``)."""
    env = {k: v for k, v in os.environ.items() if k != "CLASSGAP_PRECISION"}
    env.update(CLASSGAP_CACHE_DIR=cache, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    return env


def measure_model(model: str, precisions: list[str], *, repeats: int, threads: int,
                  env: dict[str, str], train_subset: int | None, workers: int,
                  only: list[str] | None = None,
                  log: Any = print) -> list[dict[str, dict[str, Any]]]:
    """Warm up (each classgap path measured and cached), then ``repeats`` rounds of every kind
    (of ``only``, if given); one dict ``kind -> report`` a round."""
    layout: dict[str, bool] = {}
    for p in ["auto", *precisions]:  # untimed: each kind's cache key measured here, once
        warm = child(f"classgap-{p}", model, threads=threads, env=env,
                     train_subset=WARMUP_SUBSET)
        layout[p] = warm["path"].endswith("+cl")
        log(f"[{model} warm-up] classgap-{p}: {warm['path']} ({warm['path_source']}), "
            f"{warm['wall_s']:.1f} s")
    rounds = []
    for r in range(repeats):
        round_: dict[str, dict[str, Any]] = {}
        order = kinds_of(precisions, only)
        random.Random(r).shuffle(order)  # no kind always follows the same one (seeded)
        for kind in order:
            family, p = kind.split("-")
            round_[kind] = child(kind, model, threads=threads, env=env,
                                 train_subset=train_subset, workers=workers,
                                 channels_last=family != "classgap" and layout[p])
            log(f"[{model} round {r + 1}/{repeats}] {kind}: {round_[kind]['wall_s']:.1f} s "
                f"({round_[kind]['path']})")
        rounds.append({kind: round_[kind] for kind in kinds_of(precisions, only)})
    return rounds


def round_ratios(rounds: list[dict[str, dict[str, Any]]],
                 precisions: list[str]) -> dict[str, list[float]]:
    """Per-round ratios of whole-process wall times, by name: the speed-up over plain
    (``plain-P / classgap-P``), the distance to the floor (``classgap-P / floor-P``) and
    ``auto`` against the faster forced path of its round); only those whose kinds ran."""
    def wall(r: dict[str, dict[str, Any]], kind: str) -> float:
        return float(r[kind]["wall_s"])

    ran = set(rounds[0]) if rounds else set()
    out: dict[str, list[float]] = {}
    for p in precisions:
        for a, b in ((f"plain-{p}", f"classgap-{p}"), (f"classgap-{p}", f"floor-{p}")):
            if {a, b} <= ran:
                out[f"{a} / {b}"] = [wall(r, a) / wall(r, b) for r in rounds]
    forced = [f"classgap-{p}" for p in precisions if f"classgap-{p}" in ran]
    if "classgap-auto" in ran and forced:
        out["classgap-auto / faster forced"] = [
            wall(r, "classgap-auto") / min(wall(r, k) for k in forced) for r in rounds]
    return out


@dataclass(frozen=True)
class Verdict:
    """One target of one model: the measured median ratio(s) and whether it holds (None:
    no target for this model)."""

    model: str
    what: str
    measured: str
    target: str
    holds: bool | None


def verdicts(model: str, ratios: dict[str, list[float]], precisions: list[str]) -> list[Verdict]:
    """Item 2's targets for ``model`` from its per-round ratios (module docstring); a target
    whose ratios did not run (``--kinds``) is judged on those that did, or left out."""
    med = {name: statistics.median(values) for name, values in ratios.items()}
    goal = SPEEDUP_TARGET.get(model)
    out = []
    for p in precisions:
        speedup = med.get(f"plain-{p} / classgap-{p}")
        floor = med.get(f"classgap-{p} / floor-{p}")
        if speedup is None and floor is None:
            continue
        measured = "; ".join(m for m in (
            None if speedup is None else f"{speedup:.2f}x plain",
            None if floor is None else f"{floor:.2f}x the floor") if m)
        what = f"classgap vs plain, {p}"
        if goal is None:
            out.append(Verdict(model, what, measured, "none", None))
        elif goal > 1:
            out.append(Verdict(model, what, measured,
                               f">= {goal:g}x plain, or <= {FLOOR_SLACK:g}x the floor",
                               (speedup is not None and speedup >= goal)
                               or (floor is not None and floor <= FLOOR_SLACK)))
        elif speedup is not None:
            out.append(Verdict(model, what, measured, f">= {goal:g}x plain", speedup >= goal))
    auto = med.get("classgap-auto / faster forced")
    if auto is not None:
        out.append(Verdict(model, "auto vs the faster forced path", f"{auto:.2f}x its time",
                           f"<= {AUTO_SLACK:g}x", auto <= AUTO_SLACK))
    return out


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def _median(rows: list[dict[str, Any]], part: str) -> str:
    return f"{statistics.median(float(r[part]) for r in rows):.2f}"


def markdown(header: str, results: dict[str, list[dict[str, dict[str, Any]]]],
             precisions: list[str]) -> str:
    """The report: the header, one row per model and kind (median whole-process wall and its
    parts), then one row per target with the median of its per-round ratios."""
    lines = [header, "",
             "| model | kind | path | wall s, median [min, max] | train s | imports s | "
             "data, set-up, evaluation s | interpreter start/exit s | test acc % |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for model, rounds in results.items():
        for kind in kinds_of(precisions, list(rounds[0])):
            rows = [r[kind] for r in rounds]
            path = "/".join(sorted({r["path"] for r in rows}))
            sources = sorted({r["path_source"] for r in rows})
            if "measured" in sources:  # the warm-up should have cached it
                path += " (measured inside a timed run!)"
            elif kind == "classgap-auto":
                path += f" ({'/'.join(sources)})"
            boot = [float(r["wall_s"]) - float(r["total_s"]) for r in rows]
            acc = statistics.median(100 * float(r["test_acc"]) for r in rows)
            lines.append(f"| {model} | {kind} | {path} | "
                         f"{_spread([float(r['wall_s']) for r in rows])} | "
                         f"{_median(rows, 'train_s')} | {_median(rows, 'imports_s')} | "
                         f"{_median(rows, 'other_s')} | {statistics.median(boot):.2f} | "
                         f"{acc:.2f} |")
    lines += ["", "| model | ratio (median of per-round ratios of wall times) | median | "
              "[min, max] |", "|---|---|---:|---:|"]
    for model, rounds in results.items():
        for name, values in round_ratios(rounds, precisions).items():
            lines.append(f"| {model} | {name} | {statistics.median(values):.2f}x | "
                         f"[{min(values):.2f}, {max(values):.2f}] |")
    lines += ["", "| model | target | measured | target holds when | holds |",
              "|---|---|---|---|---|"]
    for model, rounds in results.items():
        for v in verdicts(model, round_ratios(rounds, precisions), precisions):
            holds = "no target" if v.holds is None else "yes" if v.holds else "**NO**"
            lines.append(f"| {model} | {v.what} | {v.measured} | {v.target} | {holds} |")
    return "\n".join(lines)


def header_line(*, cpu: dict[str, Any], torch_version: str, threads: int, repeats: int,
                train_subset: int | None, workers: int, note: str = "") -> str:
    flags = ", ".join(cpu["flags"]) or "none known"
    images = "55,000" if train_subset is None else f"{train_subset:,} (a stratified subset)"
    return (f"CPU: **{cpu['model']}** ({os.cpu_count()} cores; flags {flags}; native bf16: "
            f"{'yes' if cpu['native_bf16'] else 'no'}); {datetime.now(UTC):%Y-%m-%d %H:%M} UTC;"
            f" torch {torch_version}; {threads} thread(s) a process; plain DataLoader workers "
            f"{workers}. Fashion-MNIST, {images} training images, 1 epoch (pad-{PAD} crop + "
            f"flip {FLIP}), then the 5k validation split and the 10k test set evaluated (in every "
            f"kind, as every classgap run does), whole processes, {repeats} round(s) "
            f"round-robin, each in a seeded random order.{note}")


def side_by_side(args: argparse.Namespace) -> None:
    import torch

    from classgap.models import list_models
    from classgap.train.precision import cpu_info

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in list_models()]
    if not models or unknown:
        raise BenchError(f"'--models' must name models of {', '.join(list_models())}; "
                         f"got {args.models!r}")
    cpu = cpu_info()
    note = ""
    if args.precisions is None:
        precisions = ["fp32", "bf16"] if cpu["native_bf16"] else ["fp32"]
        if not cpu["native_bf16"]:
            note = " bf16 left out: emulated on this CPU (--precisions fp32,bf16 adds it)."
    else:
        precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
        if not precisions or any(p not in ("fp32", "bf16") for p in precisions) \
                or len(set(precisions)) < len(precisions):
            raise BenchError(f"'--precisions' must be fp32, bf16 or fp32,bf16; "
                             f"got {args.precisions!r}")
    only = None
    if args.kinds is not None:
        only = [k.strip() for k in args.kinds.split(",") if k.strip()]
        offered = kinds_of(precisions)
        if not only or any(k not in offered for k in only):
            raise BenchError(f"'--kinds' must name kinds of {', '.join(offered)}; "
                             f"got {args.kinds!r}")
        note += f" Kinds run: {', '.join(kinds_of(precisions, only))}."
    header = header_line(cpu=cpu, torch_version=torch.__version__, threads=args.threads,
                         repeats=args.repeats, train_subset=args.train_subset,
                         workers=args.plain_workers, note=note)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="train-speed-cache-") as cache:
        env = child_env(args.threads, cache)
        results = {model: measure_model(model, precisions, repeats=args.repeats,
                                        threads=args.threads, env=env,
                                        train_subset=args.train_subset,
                                        workers=args.plain_workers, only=only, log=log)
                   for model in models}
    print(markdown(header, results, precisions))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "precisions": precisions,
                                               "rounds": results}, indent=1))


# ================================================================ throughput mode (issue 3)
def time_to_target(seconds: list[float], accuracy: list[float]) -> float | None:
    """Cumulative training time at the first epoch whose test accuracy reaches TARGET."""
    return next((s for s, a in zip(seconds, accuracy, strict=True) if a >= TARGET), None)


def run_classgap(epochs: int, seed: int, device: str) -> dict[str, object]:
    import numpy as np

    from classgap.config import load_config
    from classgap.train import train

    config = load_config(overrides=[*RECIPE, f"train.epochs={epochs}", f"train.seed={seed}",
                                    f"train.device={device}"])
    result = train(config)
    seconds = np.cumsum([row["epoch_time"] for row in result.history]).tolist()
    accuracy = [row["test_acc"] for row in result.history]
    return {"images_per_s": result.images_per_second, "seconds": seconds,
            "test_acc": accuracy, "to_target": time_to_target(seconds, accuracy)}


def run_plain(epochs: int, seed: int, workers: int, device: str) -> dict[str, object]:
    import torch

    sys.path.insert(0, str(SCRIPT.parent))
    from plain_pipeline import ImageDataset, PadCropFlip, train_plain

    from classgap.data import load_dataset, stratified_split
    from classgap.models import create_model
    from classgap.train import resolve_device

    full = load_dataset("fashion-mnist", split="train")
    test = load_dataset("fashion-mnist", split="test")
    train_idx, _ = stratified_split(full.labels, val_size=5000, random_state=0)
    images, labels = full.images[train_idx], full.labels[train_idx]
    mean, std = float(images.mean() / 255), float(images.std() / 255)
    torch.manual_seed(seed)
    model = create_model("cnn", num_classes=10, in_channels=1, image_size=(28, 28))
    logs = train_plain(
        model,
        ImageDataset(images, labels, mean, std, PadCropFlip(padding=0, flip=0.5)),
        ImageDataset(test.images, test.labels, mean, std),
        epochs=epochs, batch_size=BATCH, num_workers=workers, seed=seed, lr=LR,
        momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
        device=resolve_device(device),  # before 2026-12-07 plain ignored --device: CPU only
    )
    seconds = [log.seconds for log in logs]
    accuracy = [log.test_acc for log in logs]
    total_images = epochs * (len(labels) // BATCH) * BATCH
    return {"images_per_s": total_images / seconds[-1], "seconds": seconds,
            "test_acc": accuracy, "to_target": time_to_target(seconds, accuracy)}


def fmt(result: dict[str, object]) -> str:
    to_target = result["to_target"]
    reached = "not reached" if to_target is None else f"{to_target:.1f} s"
    accs = ", ".join(f"{100 * a:.2f}" for a in result["test_acc"])  # type: ignore[attr-defined]
    return (f"{result['images_per_s']:8.0f} img/s | to {100 * TARGET:.0f}%: {reached} | "
            f"test acc per epoch: {accs}")


def throughput(args: argparse.Namespace) -> None:
    import torch

    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    start = time.perf_counter()
    ours = run_classgap(args.epochs, args.seed, args.device)
    print(f"classgap (device-resident, batched aug, auto path): {fmt(ours)}", flush=True)
    if args.skip_plain:
        return
    plain = run_plain(args.epochs, args.seed, args.plain_workers, args.device)
    print(f"plain (DataLoader x{args.plain_workers} workers, per-sample aug, fp32): "
          f"{fmt(plain)}")
    ratio = ours["images_per_s"] / plain["images_per_s"]  # type: ignore[operator]
    print(f"throughput ratio classgap / plain: {ratio:.2f}x")
    if ours["to_target"] and plain["to_target"]:
        print(f"time-to-{100 * TARGET:.0f}% ratio plain / classgap: "
              f"{plain['to_target'] / ours['to_target']:.2f}x")  # type: ignore[operator]
    print(f"total bench time {time.perf_counter() - start:.0f} s")


# ============================================================================== command line
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side-by-side", action="store_true",
                        help="whole processes, one epoch + test, every kind round-robin")
    parser.add_argument("--models", default="mlp,cnn_small,cnn",
                        help="side by side: comma-separated models")
    parser.add_argument("--repeats", type=int, default=3, help="side by side: rounds")
    parser.add_argument("--threads", type=int, default=2,
                        help="side by side: torch threads of every process")
    parser.add_argument("--precisions", default=None,
                        help="side by side: forced precisions (default fp32,bf16 where bf16 "
                             "is native, else fp32)")
    parser.add_argument("--kinds", default=None,
                        help="side by side: only these kinds (e.g. classgap-bf16,floor-bf16: "
                             "more rounds of one ratio in the same time)")
    parser.add_argument("--train-subset", type=int, default=None,
                        help="side by side: a stratified subset of the training split")
    parser.add_argument("--json", default=None, help="side by side: write every report here")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child's kind
    parser.add_argument("--model", default="cnn", help=argparse.SUPPRESS)
    parser.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=5, help="throughput mode: epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="throughput mode: the device")
    parser.add_argument("--plain-workers", type=int, default=0,
                        help="DataLoader worker processes of the plain pipeline")
    parser.add_argument("--skip-plain", action="store_true", help="throughput mode")
    args = parser.parse_args(argv)
    for name in ("repeats", "threads", "epochs"):
        if getattr(args, name) < 1:
            raise BenchError(f"'--{name}' must be >= 1; got {getattr(args, name)}")
    if args.plain_workers < 0:
        raise BenchError(f"'--plain-workers' must be >= 0; got {args.plain_workers}")
    if args.train_subset is not None and args.train_subset < BATCH:
        raise BenchError(f"'--train-subset' must be >= the batch size {BATCH}; "
                         f"got {args.train_subset}")
    if args.one is not None and args.one not in kinds_of(["fp32", "bf16"]):
        raise BenchError(f"'--one' must be one of {', '.join(kinds_of(['fp32', 'bf16']))}; "
                         f"got {args.one!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.one is not None:
            report = run_one(args.one, args.model, threads=args.threads,
                             train_subset=args.train_subset, workers=args.plain_workers,
                             channels_last=args.channels_last, seed=args.seed)
            print(MARK + json.dumps(report), flush=True)
        elif args.side_by_side:
            side_by_side(args)
        else:
            throughput(args)
    except BenchError as exc:
        print(f"train_speed.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
