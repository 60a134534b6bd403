"""A plain PyTorch training loop that leaves classgap prediction files, and gates on drops.

    python examples/torch_loop.py --out runs/loop --epochs 5 [--baseline runs/base/test.npz]

A small MLP on scikit-learn's digits. ``PredictionRecorder`` collects the test logits batch by
batch and writes ``OUT/test.npz``, which ``classgap audit OUT/test.npz`` reads; with
``--baseline``, ``check_drops`` fails the run (exit 3) when a class drops significantly by
more than ``--fail-on-drop`` points against it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from classgap.errors import DropGateError
from classgap.integrations import PredictionRecorder, check_drops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop-class", type=int, default=None,
                        help="train without this class's images (plants a drop)")
    parser.add_argument("--baseline", type=Path, nargs="*", default=None)
    parser.add_argument("--fail-on-drop", type=float, default=5.0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.3,
                                              stratify=digits.target, random_state=0)
    if args.drop_class is not None:
        keep = y_tr != args.drop_class
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for _ in range(args.epochs):
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()

    recorder = PredictionRecorder(classes=[str(c) for c in range(10)], seed=args.seed)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(x_te), 128):  # batch by batch, as an evaluation loop does
            batch = slice(start, start + 128)
            recorder.update(model(torch.from_numpy(x_te[batch])), torch.from_numpy(y_te[batch]),
                            sample_ids=np.arange(len(x_te))[batch])
    path = recorder.write(args.out / "test.npz")
    print(f"test accuracy {100 * recorder.accuracy():.1f}%: {path}")
    if args.baseline:
        try:
            check_drops(args.baseline, path, fail_on_drop=args.fail_on_drop)
        except DropGateError as exc:
            print(f"gate failed: {exc}", file=sys.stderr)
            return 3
        print(f"gate passed: no class dropped by more than {args.fail_on_drop:g} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
