"""How far from 1 do half-precision probability rows sum? The evidence behind the tolerance.

Issue 20: float16 / bfloat16 probabilities were refused because their rows sum to 0.99981, not
within the float64 tolerance 1e-4. This measures, for real softmax outputs, the largest
``|sum(row) - 1|`` in units of the type's machine epsilon, for K = 2 to 100,000 classes and
four ways of producing them:

* ``torch cast``: softmax in float32, the result rounded to the half type (autocast, .half());
* ``torch in-dtype``: ``torch.softmax`` on half-precision logits;
* ``numpy in-dtype``: ``exp`` and the normalising sum both in numpy float16 (float16 only);
* ``float64 cast``: softmax in float64, rounded to float16.

It prints a markdown table with the tolerance classgap applies
(:func:`classgap.audit.io.prob_tolerance`, ``max(1e-4, eps (1 + log2 K))``) in the same unit.

    OMP_NUM_THREADS=1 .venv/bin/python bench/half_precision_sums.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from classgap.audit.io import prob_tolerance

KS = (2, 10, 100, 1000, 10_000, 100_000)


def deviations(k: int, n_values: int, seed: int) -> dict[str, float]:
    """Max |row sum - 1| / eps of each way of producing half-precision probabilities."""
    n = max(50, n_values // k)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=gen) * 3  # (n, K) logits: confident and flat rows both
    out: dict[str, float] = {}
    for name, dtype in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        eps = torch.finfo(dtype).eps
        cast = torch.softmax(z, 1).to(dtype).double().sum(1)
        in_dtype = torch.softmax(z.to(dtype), 1).double().sum(1)
        out[f"{name} torch cast"] = float((cast - 1).abs().max()) / eps
        out[f"{name} torch in-dtype"] = float((in_dtype - 1).abs().max()) / eps
    zn = z.numpy().astype(np.float16)
    zn = zn - zn.max(axis=1, keepdims=True)
    e = np.exp(zn)
    p = e / e.sum(axis=1, keepdims=True, dtype=np.float16)
    eps16 = float(np.finfo(np.float16).eps)
    out["float16 numpy in-dtype"] = float(np.abs(p.astype(np.float64).sum(1) - 1).max()) / eps16
    z64 = z.double().numpy()
    p64 = np.exp(z64 - z64.max(1, keepdims=True))
    p64 /= p64.sum(1, keepdims=True)
    out["float16 float64 cast"] = float(
        np.abs(p64.astype(np.float16).astype(np.float64).sum(1) - 1).max()) / eps16
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=4_000_000,
                        help="probabilities per K (rows = values / K, at least 50)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {k: deviations(k, args.values, args.seed + k) for k in KS}
    columns = list(next(iter(rows.values())))
    print("| K | " + " | ".join(columns) + " | tolerance fp16 | tolerance bf16 |")
    print("|---:|" + "---:|" * (len(columns) + 2))
    for k, row in rows.items():
        tol16 = prob_tolerance(k, float(torch.finfo(torch.float16).eps))
        tolbf = prob_tolerance(k, float(torch.finfo(torch.bfloat16).eps))
        print(f"| {k:,} | " + " | ".join(f"{row[c]:.2f}" for c in columns)
              + f" | {tol16 / torch.finfo(torch.float16).eps:.2f} "
              f"| {tolbf / torch.finfo(torch.bfloat16).eps:.2f} |")
    worst = max(v for row in rows.values() for v in row.values())
    print(f"\nlargest deviation: {worst:.2f} eps; smallest tolerance: "
          f"{min(prob_tolerance(k, 1.0) for k in KS):.2f} eps")


if __name__ == "__main__":
    main()
