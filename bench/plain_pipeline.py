"""The baseline of `bench/train_speed.py`: how the papers' scripts train, in plain PyTorch.

A `torch.utils.data.DataLoader` over a map-style dataset, per-sample transforms on each image
(as torchvision's `RandomCrop(padding)` and `RandomHorizontalFlip` do), fp32, NCHW, one
optimizer step per batch. Same model, optimizer, schedule and augmentation as the classgap
trainer, so the comparison isolates the pipeline. Written here because torchvision is not
installable beside this machine's torch build.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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


def evaluate(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    model.train()
    return correct / total


def train_plain(model: torch.nn.Module, train_set: ImageDataset, test_set: ImageDataset, *,
                epochs: int, batch_size: int, lr: float, momentum: float, weight_decay: float,
                num_workers: int, seed: int = 0) -> list[EpochLog]:
    """SGD (Nesterov) with a per-step cosine schedule; test accuracy after every epoch."""
    torch.manual_seed(seed)  # DataLoader workers derive their seeds from it
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=num_workers, persistent_workers=num_workers > 0)
    test_loader = DataLoader(test_set, batch_size=1024, num_workers=0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=True,
                          weight_decay=weight_decay)
    total_steps = epochs * len(loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps)))
    logs, elapsed = [], 0.0
    model.train()
    for epoch in range(1, epochs + 1):
        start, seen = time.perf_counter(), 0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            seen += len(y)
        seconds = time.perf_counter() - start
        elapsed += seconds
        logs.append(EpochLog(epoch, elapsed, seen / seconds, evaluate(model, test_loader)))
    return logs
