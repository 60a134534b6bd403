"""Training speed: the classgap trainer vs a plain PyTorch pipeline, same model and recipe.

Fashion-MNIST (55k training images after the 5k stratified validation split, 10k test), the
small CNN, SGD (Nesterov, momentum 0.9, lr 0.05, weight decay 5e-4, batch 128, per-step cosine),
augmentation horizontal flip 0.5, 5 epochs:

* classgap: the whole split resident on the device as uint8, one seeded permutation per epoch,
  batched augmentation with per-sample parameters, bf16 autocast + channels-last (the CPU
  default), `classgap.train.train`;
* plain (`bench/plain_pipeline.py`): a torch `DataLoader` over a map-style dataset with
  per-sample transforms, fp32, NCHW: what the papers' scripts do.

Reports training images/s (evaluation excluded), the training time until test accuracy first
reaches 90% (test accuracy is measured after every epoch, for this benchmark only), and the
final test accuracy.

Usage: ``python bench/train_speed.py [--epochs 5] [--plain-workers 0] [--skip-plain]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime

import numpy as np
import torch

from classgap.config import load_config
from classgap.data import load_dataset, stratified_split
from classgap.models import create_model
from classgap.train import train

# No warm-up: the plain pipeline's schedule is cosine from the first step, and the two must
# train the same recipe (the default half-epoch warm-up came later, bench/stability.py).
RECIPE = ["data.dataset=fashion-mnist", "model.name=cnn", "optim.lr=0.05",
          "optim.batch_size=128", "optim.weight_decay=5e-4", "aug.flip=0.5",
          "schedule.name=cosine", "schedule.warmup_epochs=0", "train.track_test=true",
          "train.progress=false"]
TARGET = 0.90


def time_to_target(seconds: list[float], accuracy: list[float]) -> float | None:
    """Cumulative training time at the first epoch whose test accuracy reaches TARGET."""
    return next((s for s, a in zip(seconds, accuracy, strict=True) if a >= TARGET), None)


def run_classgap(epochs: int, seed: int, device: str) -> dict[str, object]:
    config = load_config(overrides=[*RECIPE, f"train.epochs={epochs}", f"train.seed={seed}",
                                    f"train.device={device}"])
    result = train(config)
    seconds = np.cumsum([row["epoch_time"] for row in result.history]).tolist()
    accuracy = [row["test_acc"] for row in result.history]
    return {"images_per_s": result.images_per_second, "seconds": seconds,
            "test_acc": accuracy, "to_target": time_to_target(seconds, accuracy)}


def run_plain(epochs: int, seed: int, workers: int) -> dict[str, object]:
    from plain_pipeline import ImageDataset, PadCropFlip, train_plain

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
        epochs=epochs, batch_size=128, lr=0.05, momentum=0.9, weight_decay=5e-4,
        num_workers=workers, seed=seed,
    )
    seconds = [log.seconds for log in logs]
    accuracy = [log.test_acc for log in logs]
    total_images = epochs * (len(labels) // 128) * 128
    return {"images_per_s": total_images / seconds[-1], "seconds": seconds,
            "test_acc": accuracy, "to_target": time_to_target(seconds, accuracy)}


def fmt(result: dict[str, object]) -> str:
    to_target = result["to_target"]
    reached = "not reached" if to_target is None else f"{to_target:.1f} s"
    accs = ", ".join(f"{100 * a:.2f}" for a in result["test_acc"])  # type: ignore[attr-defined]
    return (f"{result['images_per_s']:8.0f} img/s | to {100 * TARGET:.0f}%: {reached} | "
            f"test acc per epoch: {accs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--plain-workers", type=int, default=0,
                        help="DataLoader worker processes of the plain pipeline")
    parser.add_argument("--skip-plain", action="store_true")
    args = parser.parse_args()

    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    start = time.perf_counter()
    ours = run_classgap(args.epochs, args.seed, args.device)
    print(f"classgap (device-resident, batched aug, bf16+CL): {fmt(ours)}", flush=True)
    if args.skip_plain:
        return
    plain = run_plain(args.epochs, args.seed, args.plain_workers)
    print(f"plain (DataLoader x{args.plain_workers} workers, per-sample aug, fp32): "
          f"{fmt(plain)}")
    ratio = ours["images_per_s"] / plain["images_per_s"]  # type: ignore[operator]
    print(f"throughput ratio classgap / plain: {ratio:.2f}x")
    if ours["to_target"] and plain["to_target"]:
        print(f"time-to-{100 * TARGET:.0f}% ratio plain / classgap: "
              f"{plain['to_target'] / ours['to_target']:.2f}x")  # type: ignore[operator]
    print(f"total bench time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
