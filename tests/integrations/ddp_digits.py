"""Two CPU processes under DDP (run by tests/integrations/test_lightning.py): the files hold
every test sample once when the steps return sample ids."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from classgap.integrations.lightning import PredictionWriter


class Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):  # no ids: the padding stays in
        x, y, _ = batch
        return {"logits": self(x), "targets": y}

    def test_step(self, batch, batch_idx):
        x, y, ids = batch
        return {"logits": self(x), "targets": y, "sample_ids": ids}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def main() -> None:
    out = Path(sys.argv[1])
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16
    y = torch.tensor(digits.target)
    ids = torch.arange(len(y))
    data = lambda sl: DataLoader(TensorDataset(x[sl], y[sl], ids[sl]), batch_size=50)  # noqa: E731
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=2, strategy="ddp",
                        logger=False, callbacks=[PredictionWriter(out)],
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)
    model = Net()
    trainer.fit(model, data(slice(0, 1000)), data(slice(1000, 1253)))  # 253: one padded row
    trainer.test(model, data(slice(1258, 1797)), verbose=False)  # 539: one padded, dropped


if __name__ == "__main__":
    try:
        main()
    finally:
        # A rank that exits with its process group open can abort at interpreter shutdown
        # ("terminate called without an active exception", SIGABRT) after its work is done,
        # as examples/hf_digits.py did under torchrun.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
