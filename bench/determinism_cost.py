"""What CPU determinism costs a training epoch: with torch's NaN fill, without it, and off.

With ``torch.use_deterministic_algorithms(True)`` torch also fills every fresh tensor with NaN
(``torch.utils.deterministic.fill_uninitialized_memory``), which only shows an op that reads
memory it never wrote. The trainer keeps determinism and turns the fill off for the run
(``classgap.train.trainer.numerics``). This benchmark times one epoch of the side-by-side
recipe of ``bench/train_speed.py`` (``cnn_small`` by default, bf16, pad-2 crop + flip) in
fresh processes, three variants a round in a seeded random order:

* ``fill``: determinism with the fill (the trainer before 2026-12-07);
* ``nofill``: determinism without it (the trainer now);
* ``off``: no deterministic algorithms at all.

It reports each variant's median training time (the trainer's own epoch time) and the median
of its per-round ratios to ``fill``, and checks that the test logits are bitwise the same.

    python bench/determinism_cost.py [--rounds 8] [--model cnn_small] [--precision bf16]
        [--train-subset 20000] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
VARIANTS = ("fill", "nofill", "off")
MARK = "DETERMINISM_COST "


def run_one(variant: str, model: str, precision: str, train_subset: int, threads: int) -> None:
    """One epoch in this process under ``variant``; prints its training time and a digest of
    its test logits."""
    import torch

    sys.path.insert(0, str(SCRIPT.parent))
    from train_speed import PAD, RECIPE

    from classgap.config import load_config
    from classgap.train import train, trainer

    torch.set_num_threads(threads)
    numerics = trainer.numerics
    flags = torch.utils.deterministic  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def variant_numerics(*args: Any) -> Iterator[None]:
        with numerics(*args):
            if variant == "fill":
                flags.fill_uninitialized_memory = True
            elif variant == "off":
                trainer._set_deterministic(False, warn_only=False)
            yield

    trainer.numerics = variant_numerics  # type: ignore[assignment]  # this process only
    result = train(load_config(overrides=[
        *RECIPE, f"model.name={model}", "train.epochs=1", "train.track_test=false",
        f"aug.crop={PAD}", f"train.precision={precision}", f"train.threads={threads}",
        "train.device=cpu", f"data.train_subset={train_subset}"]))
    seconds = sum(row["epoch_time"] for row in result.history)
    digest = hashlib.sha256(result.test_logits.tobytes()).hexdigest()[:16]
    print(MARK + json.dumps({"variant": variant, "train_s": seconds, "logits": digest}))


def child(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(SCRIPT), "--one", variant, "--model", args.model,
           "--precision", args.precision, "--train-subset", str(args.train_subset),
           "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode or not lines:
        sys.exit(f"determinism_cost.py: {variant} failed:\n{done.stderr.strip()[-2000:]}")
    return dict(json.loads(lines[-1][len(MARK):]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--model", default="cnn_small")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--train-subset", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.model, args.precision, args.train_subset, args.threads)
        return
    rounds = []
    for r in range(args.rounds):
        order = list(VARIANTS)
        random.Random(r).shuffle(order)
        rounds.append({v: child(v, args) for v in order})
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{v} {rounds[-1][v]['train_s']:.2f} s" for v in VARIANTS), file=sys.stderr)
    print(f"{args.model}, {args.precision}, {args.train_subset:,} images, one epoch, "
          f"{args.threads} thread(s), {args.rounds} rounds of fresh processes\n")
    print("| variant | training s, median [min, max] | median ratio to `fill` |")
    print("|---|---:|---:|")
    for v in VARIANTS:
        times = [r[v]["train_s"] for r in rounds]
        ratio = statistics.median(r[v]["train_s"] / r["fill"]["train_s"] for r in rounds)
        print(f"| {v} | {statistics.median(times):.2f} [{min(times):.2f}, {max(times):.2f}] "
              f"| {ratio:.2f}x |")
    digests = {r[v]["logits"] for r in rounds for v in VARIANTS}
    print(f"\nTest logits bitwise the same in every run: {'yes' if len(digests) == 1 else 'NO'}")


if __name__ == "__main__":
    main()
