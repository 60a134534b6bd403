"""The baselines of `bench/train_speed.py`, in plain PyTorch.

* :func:`train_plain`: how the papers' scripts train. A `torch.utils.data.DataLoader` over a
  map-style dataset, per-sample transforms on each image (as torchvision's
  `RandomCrop(padding)` and `RandomHorizontalFlip` do), one optimizer step per batch; fp32 and
  NCHW by default, or bf16 autocast and channels-last, to compare at the precision classgap
  runs. Same model, optimizer, schedule and augmentation as the classgap trainer, so the
  comparison isolates the pipeline. Written here because torchvision is not installable beside
  this machine's torch build.
* :func:`train_floor`: the floor under any pipeline: the same optimizer steps on batches
  sliced from one pre-normalised resident tensor (no augmentation, no shuffling, no loader).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class PadCropFlip:
    """Per-sample transform: zero-pad by ``padding``, random crop back, flip with prob ``p``."""

    def __init__(self, padding: int, flip: float) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (C, H, W)
        if self.padding:
            _, h, w = x.shape
            x = F.pad(x, (self.padding,) * 4)
            i, j = torch.randint(0, 2 * self.padding + 1, (2,)).tolist()
            x = x[:, i:i + h, j:j + w]
        if self.flip and torch.rand(()) < self.flip:  # torch's RNG, as torchvision's
            x = x.flip(-1)
        return x


class ImageDataset(Dataset):
    """uint8 images (N, C, H, W) → normalised float tensors, one image at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: float, std: float,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.images, self.labels = images, labels
        self.mean, self.std, self.transform = mean, std, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i]).float() / 255.0
        if self.transform is not None:
            x = self.transform(x)
        return (x - self.mean) / self.std, int(self.labels[i])


@dataclass
class EpochLog:
    epoch: int
    seconds: float  # cumulative training time, evaluation excluded
    images_per_s: float
    test_acc: float


def _autocast(bf16: bool, device: torch.device | None = None) -> torch.autocast:
    """bf16 autocast on ``device`` (default the CPU) when ``bf16``."""
    kind = "cpu" if device is None else device.type
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=bf16)


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def evaluate(model: torch.nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
             bf16: bool = False, channels_last: bool = False,
             device: torch.device | None = None) -> float:
    """Top-1 accuracy over the batches ``(x (B, C, H, W), y (B,))`` of ``loader``, moved to
    ``device`` (default: where they are)."""
    model.eval()
    correct = total = 0
    with torch.no_grad(), _autocast(bf16, device):
        for x, y in loader:
            if device is not None:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            correct += int((model(_layout(x, channels_last)).argmax(1) == y).sum())
            total += len(y)
    model.train()
    return correct / total


def _sgd(model: torch.nn.Module, *, lr: float, momentum: float, weight_decay: float,
         total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD (Nesterov) with a per-step cosine from the first step, no warm-up."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=True,
                          weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps)))
    return opt, schedule


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer,
          schedule: torch.optim.lr_scheduler.LRScheduler, x: torch.Tensor, y: torch.Tensor,
          bf16: bool) -> None:
    with _autocast(bf16, x.device):
        logits = model(x)  # (B, K); the loss in fp32, as the classgap trainer computes it
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    schedule.step()


def train_plain(model: torch.nn.Module, train_set: ImageDataset, test_set: ImageDataset, *,
                epochs: int, batch_size: int, lr: float, momentum: float, weight_decay: float,
                num_workers: int, seed: int = 0, bf16: bool = False,
                channels_last: bool = False, val_set: ImageDataset | None = None,
                device: str | torch.device = "cpu") -> list[EpochLog]:
    """SGD (Nesterov) with a per-step cosine schedule; test accuracy after every epoch, after
    the accuracy on ``val_set`` when one is given (as the classgap trainer validates).

    ``bf16``: forward passes under bf16 autocast; ``channels_last``: the model and each batch
    channels-last (what the classgap trainer does on that numeric path); ``device``: where the
    model lives and each batch goes (pinned host memory when it is a GPU).
    """
    device = torch.device(device)
    pin = device.type == "cuda"
    torch.manual_seed(seed)  # DataLoader workers derive their seeds from it
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=num_workers, persistent_workers=num_workers > 0,
                        pin_memory=pin)
    test_loader = DataLoader(test_set, batch_size=1024, num_workers=0, pin_memory=pin)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt, schedule = _sgd(model, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         total_steps=epochs * len(loader))
    logs, elapsed = [], 0.0
    model.train()
    for epoch in range(1, epochs + 1):
        start, seen = time.perf_counter(), 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            _step(model, opt, schedule, _layout(x, channels_last), y, bf16)
            seen += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the epoch's steps done, not only queued
        seconds = time.perf_counter() - start
        elapsed += seconds
        if val_set is not None:  # read by nobody here: the same work as the trainer's
            evaluate(model, DataLoader(val_set, batch_size=1024, num_workers=0, pin_memory=pin),
                     bf16=bf16, channels_last=channels_last, device=device)
        accuracy = evaluate(model, test_loader, bf16=bf16, channels_last=channels_last,
                            device=device)
        logs.append(EpochLog(epoch, elapsed, seen / seconds, accuracy))
    return logs


def normalised(images: np.ndarray, mean: float, std: float, *,
               channels_last: bool = False) -> torch.Tensor:
    """uint8 images (N, C, H, W) → one float32 tensor (N, C, H, W), normalised."""
    x = (torch.from_numpy(images).float() / 255.0 - mean) / std
    return _layout(x, channels_last)


def train_floor(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                epochs: int, batch_size: int, lr: float, momentum: float, weight_decay: float,
                bf16: bool = False, channels_last: bool = False) -> float:
    """The bare optimizer steps of ``epochs`` epochs, as :func:`train_plain` takes them: the
    same optimizer, schedule and number of steps, on consecutive batches of ``images``
    (N, C, H, W), already normalised and resident (:func:`normalised`). Returns the seconds.
    """
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    steps = len(labels) // batch_size  # drop_last, as the loaders
    opt, schedule = _sgd(model, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         total_steps=epochs * steps)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, steps * batch_size, batch_size):
            _step(model, opt, schedule, images[i:i + batch_size], labels[i:i + batch_size],
                  bf16)
    return time.perf_counter() - start
