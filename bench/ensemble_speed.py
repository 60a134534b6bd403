"""Training throughput of M small CNNs: one vmap ensemble vs M models stepped one after another.

Workload: M models ``create_model(--model)`` (default the small CNN, ≈139k parameters) on
Fashion-MNIST-sized inputs (1×28×28, 10 classes), SGD with Nesterov momentum 0.9 and weight
decay 5e-4, batch ``--batch-size`` per model, ``--steps`` timed optimizer steps after
``--warmup`` untimed ones. Each model draws its own batch indices every step from a
device-resident uint8 dataset (60,000 random images by default, or the real training split
with ``--data fashion-mnist``), as the trainer's loader does; no augmentation, no evaluation:
this isolates the engine.

* sequential: for each model in turn, forward, backward and ``torch.optim.SGD.step``;
* vmap: :class:`classgap.train.ensemble.ModelEnsemble` (all members in one vmapped forward and
  backward) and one :class:`~classgap.train.ensemble.StackedSGD` step.

Throughput counts every model's images: ``M · B · steps / seconds``; "per model" divides by M.

Usage: ``python bench/ensemble_speed.py [--device cuda] [--sizes 1,4,8,16] [--steps 50]
[--compile] [--precision fp32|bf16]`` (bf16 fails for vmap on CUDA: see
:mod:`classgap.train.stacked`)
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from classgap.models import create_model
from classgap.train.stacked import ModelEnsemble, StackedSGD, member_cross_entropy

N_IMAGES, SHAPE, N_CLASSES = 60_000, (1, 28, 28), 10
LR, MOMENTUM, WD = 0.05, 0.9, 5e-4


def load_images(kind: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 1, 28, 28) and labels (N,) on ``device``."""
    if kind == "fashion-mnist":
        from classgap.data import load_dataset

        ds = load_dataset("fashion-mnist", split="train")
        return (torch.from_numpy(ds.images).to(device), torch.from_numpy(ds.labels).to(device))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (N_IMAGES, *SHAPE), generator=g, dtype=torch.uint8)
    return x.to(device), torch.randint(0, N_CLASSES, (N_IMAGES,), generator=g).to(device)


def batch(images: torch.Tensor, labels: torch.Tensor, m: int, b: int,
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """An independent random batch per model: images (M, B, 1, 28, 28) float, labels (M, B)."""
    idx = torch.randint(0, len(images), (m, b), device=images.device)
    return images[idx].float().div_(255.0).sub_(0.5).div_(0.5), labels[idx]


def make_models(name: str, m: int, device: torch.device) -> list[torch.nn.Module]:
    models = []
    for seed in range(m):
        torch.manual_seed(seed)
        models.append(create_model(name, num_classes=N_CLASSES, in_channels=1,
                                   image_size=SHAPE[1:]).to(device).train())
    return models


def sequential_step_fn(models: list[torch.nn.Module], autocast: Callable[[], object],
                       ) -> Callable[[torch.Tensor, torch.Tensor], None]:
    opts = [torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True,
                            weight_decay=WD) for m in models]

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        for i, (model, opt) in enumerate(zip(models, opts, strict=True)):
            opt.zero_grad(set_to_none=True)
            with autocast():  # type: ignore[attr-defined]
                loss = F.cross_entropy(model(x[i]), y[i])
            loss.backward()
            opt.step()

    return step


def vmap_step_fn(models: list[torch.nn.Module], autocast: Callable[[], object],
                 compile: bool = False) -> Callable[[torch.Tensor, torch.Tensor], None]:
    ens = ModelEnsemble.from_models(models).train()
    opt = StackedSGD(dict(ens.named_parameters()), lr=LR, momentum=MOMENTUM, nesterov=True,
                     weight_decay=WD)
    forward = torch.compile(ens.forward) if compile else ens.forward

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad()
        with autocast():  # type: ignore[attr-defined]
            loss = member_cross_entropy(forward(x), y).sum()
        loss.backward()
        opt.step()

    return step


def throughput(step: Callable[[torch.Tensor, torch.Tensor], None], images: torch.Tensor,
               labels: torch.Tensor, m: int, args: argparse.Namespace) -> float:
    """Images per second over all M models."""
    device = images.device
    for _ in range(args.warmup):
        step(*batch(images, labels, m, args.batch_size))
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step(*batch(images, labels, m, args.batch_size))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return m * args.batch_size * args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="1,4,8,16", help="ensemble sizes M, comma-separated")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=128, help="per model")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--data", choices=("random", "fashion-mnist"), default="random")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action="store_true",
                        help="also time vmap under torch.compile (GPU: ~25 s to compile)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    def autocast() -> object:
        return torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=args.precision == "bf16")

    images, labels = load_images(args.data, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {device} ({name or platform.machine()}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, model {args.model}, batch {args.batch_size}/model, "
          f"{args.steps} steps, {args.precision}, data {args.data}\n")
    extra = " vmap+compile img/s | vmap+compile / sequential |" if args.compile else ""
    print("| M | sequential img/s | vmap img/s | vmap img/s per model | vmap / sequential |"
          + extra)
    print("|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.compile else ""))
    for m in (int(s) for s in args.sizes.split(",")):
        seq = throughput(sequential_step_fn(make_models(args.model, m, device), autocast),
                         images, labels, m, args)
        vec = throughput(vmap_step_fn(make_models(args.model, m, device), autocast),
                         images, labels, m, args)
        row = f"| {m} | {seq:,.0f} | {vec:,.0f} | {vec / m:,.0f} | {vec / seq:.2f}× |"
        if args.compile:
            comp = throughput(vmap_step_fn(make_models(args.model, m, device), autocast, True),
                              images, labels, m, args)
            row += f" {comp:,.0f} | {comp / seq:.2f}× |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
