"""What reading your own images costs a run: ``folder:`` and ``npz:`` in each layout (issue 20).

Every run of a study reads its dataset again (``make_splits`` in the run's process), so the
time to read a folder of PNGs is paid once per run. This writes a synthetic dataset of
``--classes`` x ``--per-class`` grayscale PNGs (28x28, noise around a class brightness) in
both folder layouts and both npz layouts, then times, best of ``--repeats``:

* ``load_splits`` of each layout (decoding every file; the one-split layouts include the
  stratified test hold-out);
* the hold-out alone (``stratified_test_split``);
* ``data.image_size`` resizing of every image (Pillow bilinear) to 32x32.

    .venv/bin/python bench/data_loading.py --classes 10 --per-class 1000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from classgap.data import load_splits, resize_images, stratified_test_split


def best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    n = a.classes * a.per_class
    labels = np.repeat(np.arange(a.classes), a.per_class)
    images = np.clip(labels[:, None, None] * (200 // a.classes) + rng.normal(40, 20, (n, 28, 28)),
                     0, 255).astype(np.uint8)
    test = np.zeros(n, bool)
    test[stratified_test_split(labels, 0.2, random_state=1)[1]] = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        for i, (img, y) in enumerate(zip(images, labels, strict=True)):
            for folder in (root / "one" / f"c{y}", root / "two" / ("test" if test[i] else
                                                                   "train") / f"c{y}"):
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(folder / f"{i:06d}.png")
        write = time.perf_counter() - t0
        np.savez(root / "one.npz", images=images, labels=labels)
        np.savez(root / "two.npz", x_train=images[~test], y_train=labels[~test],
                 x_test=images[test], y_test=labels[test])
        print(f"{n:,} images of 28x28 in {a.classes} classes (wrote both folders in "
              f"{write:.1f} s)")
        print("| what | time (s) | per 1,000 images (ms) |\n|---|---:|---:|")
        rows = [
            ("load_splits folder:PATH/<class>/ (+ 20% held out)",
             lambda: load_splits(f"folder:{root / 'one'}")),
            ("load_splits folder:PATH/train/ + PATH/test/",
             lambda: load_splits(f"folder:{root / 'two'}")),
            ("load_splits npz images, labels (+ 20% held out)",
             lambda: load_splits(f"npz:{root / 'one.npz'}")),
            ("load_splits npz x_train ... y_test", lambda: load_splits(f"npz:{root / 'two.npz'}")),
            ("stratified_test_split alone", lambda: stratified_test_split(labels, 0.2)),
            ("resize_images to 32x32 (data.image_size=32,32)",
             lambda: resize_images(images[:, None], (32, 32))),
        ]
        for name, fn in rows:
            t = best(fn, a.repeats)
            print(f"| {name} | {t:.3f} | {1000 * t / n * 1000:.2f} |")


if __name__ == "__main__":
    main()
