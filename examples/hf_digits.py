"""A tiny Hugging Face model on digits, trained by ``transformers.Trainer``, audited by classgap.

    python examples/hf_digits.py --out runs/hf [--baseline runs/base/test.npz]

The model is a two-layer MLP written as a ``PreTrainedModel`` here, so nothing is downloaded.
``PredictionWriterCallback`` writes ``OUT/val_epoch{E}.npz`` of the last epoch's evaluation
and ``OUT/test.npz`` after ``trainer.predict``, and adds per-class accuracy with its interval to
the evaluation metrics; with ``--baseline`` the run fails when a class drops significantly by
more than ``--fail-on-drop`` points.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from transformers import (
    PretrainedConfig,
    PreTrainedModel,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from classgap.errors import DropGateError
from classgap.integrations.hf import PredictionWriterCallback


class DigitsConfig(PretrainedConfig):
    model_type = "classgap-digits-mlp"

    def __init__(self, n_features: int = 64, hidden: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_features, self.hidden = n_features, hidden


class DigitsModel(PreTrainedModel):
    config_class = DigitsConfig

    def __init__(self, config: DigitsConfig) -> None:
        super().__init__(config)
        self.net = torch.nn.Sequential(torch.nn.Linear(config.n_features, config.hidden),
                                       torch.nn.ReLU(),
                                       torch.nn.Linear(config.hidden, config.num_labels))
        self.post_init()

    def forward(self, pixels: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.net(pixels)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class Digits(torch.utils.data.Dataset):
    """Rows of sklearn's digits as ``{"pixels", "labels"}``, the Trainer's dict batches."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixels": self.x[i], "labels": self.y[i]}


def datasets(drop_class: int | None = None) -> tuple[Digits, Digits, Digits]:
    """The same train / validation / test split as examples/lightning_digits.py."""
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.3, stratify=digits.target, random_state=0)
    tr, va = train_test_split(tr, test_size=0.2, stratify=digits.target[tr], random_state=0)
    if drop_class is not None:
        tr = tr[digits.target[tr] != drop_class]
    return Digits(x[tr], y[tr]), Digits(x[va], y[va]), Digits(x[te], y[te])


def trainer_for(out: Path, writer: PredictionWriterCallback | None, *, epochs: int, seed: int,
                drop_class: int | None = None, report_to: str = "none") -> Trainer:
    train, val, _ = datasets(drop_class)
    args = TrainingArguments(output_dir=str(out / "trainer"), num_train_epochs=epochs,
                             per_device_train_batch_size=64, per_device_eval_batch_size=64,
                             lr_scheduler_type="constant",
                             eval_strategy="epoch", save_strategy="no", logging_strategy="epoch",
                             report_to=report_to, seed=seed,
                             use_cpu=True, disable_tqdm=True, log_level="error")
    torch.manual_seed(seed)
    model = DigitsModel(DigitsConfig(num_labels=10, id2label={c: str(c) for c in range(10)}))
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # as the Lightning example
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      optimizers=(sgd, None), callbacks=[writer] if writer else None,
                      compute_metrics=writer.compute_metrics if writer else None)
    trainer.remove_callback(PrinterCallback)  # the metrics go to the logs, not the terminal
    return trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop-class", type=int, default=None)
    parser.add_argument("--baseline", type=Path, nargs="*", default=None)
    parser.add_argument("--fail-on-drop", type=float, default=5.0)
    parser.add_argument("--report-to", default="none", help="e.g. tensorboard")
    args = parser.parse_args(argv)

    writer = PredictionWriterCallback(args.out, log_per_class=True,
                                      baseline=args.baseline or None,
                                      fail_on_drop=args.fail_on_drop)
    trainer = trainer_for(args.out, writer, epochs=args.epochs, seed=args.seed,
                          drop_class=args.drop_class, report_to=args.report_to)
    trainer.train()
    try:
        trainer.predict(datasets()[2])
    except DropGateError as exc:
        print(f"gate failed: {exc}", file=sys.stderr)
        return 3
    print(f"wrote {args.out / 'test.npz'}")
    return 0


def _main_then_close() -> int:
    try:
        return main()
    finally:
        # Under torchrun, a rank that exits with its process group open can abort at
        # interpreter shutdown ("terminate called without an active exception", SIGABRT) after
        # its work is done: 2 of 4 runs here did, each after writing its files.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(_main_then_close())
