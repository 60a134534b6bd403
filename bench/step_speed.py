"""One bare training step of a model on random tensors, per precision and memory format.

Isolates what the CPU's bf16 autocast + channels-last buys on the step itself (no data
loading, no augmentation): the ceiling of any pipeline speed-up on a compute-bound CPU.

Usage: ``python bench/step_speed.py [--model cnn] [--batch-size 128] [--steps 20]``
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from classgap.models import create_model


def step_time(model_name: str, *, bf16: bool, channels_last: bool, batch_size: int,
              steps: int, warmup: int = 3) -> float:
    """Seconds per SGD step (forward, backward, update) on random (B, 1, 28, 28) inputs."""
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_channels=1, image_size=(28, 28))
    x = torch.randn(batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (batch_size,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}, "
          f"batch {args.batch_size}")
    base = None
    for bf16, cl in ((False, False), (False, True), (True, False), (True, True)):
        seconds = step_time(args.model, bf16=bf16, channels_last=cl,
                            batch_size=args.batch_size, steps=args.steps)
        base = base or seconds
        print(f"{'bf16' if bf16 else 'fp32'} {'channels_last' if cl else 'NCHW':13s}: "
              f"{1000 * seconds:6.1f} ms/step {args.batch_size / seconds:6.0f} img/s "
              f"({base / seconds:.2f}x fp32 NCHW)")


if __name__ == "__main__":
    main()
