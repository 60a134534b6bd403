"""A tiny Lightning model on digits whose validation and test predictions classgap audits.

    python examples/lightning_digits.py --out runs/lightning [--baseline runs/base/test.npz]

``PredictionWriter`` writes ``OUT/val_epoch{E}.npz`` of the last epoch (``E`` counted from 0,
as Lightning counts: ``val_epoch9.npz`` after 10 epochs) and ``OUT/test.npz``, with the seed
that ``seed_everything`` set, and logs per-class validation accuracy with its interval to a
CSV logger (``OUT/logs``), beside ``val_loss``; with ``--baseline`` the run fails when a class
drops significantly by more than ``--fail-on-drop`` points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from classgap.errors import DropGateError
from classgap.integrations.lightning import PredictionWriter


class Digits(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                       torch.nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        return {"logits": logits, "targets": y}

    def test_step(self, batch, batch_idx):  # returns nothing: the callback runs the model
        x, y = batch
        self.log("test_loss", torch.nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def loaders(drop_class: int | None = None) -> tuple[DataLoader, DataLoader, DataLoader]:
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.3, stratify=digits.target, random_state=0)
    tr, va = train_test_split(tr, test_size=0.2, stratify=digits.target[tr], random_state=0)
    if drop_class is not None:
        tr = tr[digits.target[tr] != drop_class]
    make = lambda i, shuffle: DataLoader(TensorDataset(x[i], y[i]), batch_size=64,  # noqa: E731
                                         shuffle=shuffle)
    return make(tr, True), make(va, False), make(te, False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop-class", type=int, default=None)
    parser.add_argument("--baseline", type=Path, nargs="*", default=None)
    parser.add_argument("--fail-on-drop", type=float, default=5.0)
    args = parser.parse_args(argv)

    L.seed_everything(args.seed, verbose=False)
    train, val, test = loaders(args.drop_class)
    writer = PredictionWriter(args.out, classes=[str(c) for c in range(10)],
                              log_per_class=True, baseline=args.baseline or None,
                              fail_on_drop=args.fail_on_drop)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, log_every_n_steps=5,
                        logger=CSVLogger(args.out / "logs", name=""), callbacks=[writer],
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)
    model = Digits()
    trainer.fit(model, train, val)
    try:
        trainer.test(model, test, verbose=False)
    except DropGateError as exc:
        print(f"gate failed: {exc}", file=sys.stderr)
        return 3
    print(f"wrote {args.out / 'test.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
