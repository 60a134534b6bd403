"""Boundary checks shared by the losses: configuration (ConfigError) and tensors (InputError).

Messages follow the package template ``'<name>' must <constraint>; got <value>``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from classgap._validation import fail
from classgap.errors import ConfigError

__all__ = ["check_batch", "check_class_counts", "check_features", "check_num_classes",
           "check_param", "check_weight"]


def check_param(value: Any, name: str, low: float, high: float = math.inf, *,
                inclusive: tuple[bool, bool] = (True, False)) -> float:
    """``value`` as a float in the interval ``low .. high``, or raise :class:`ConfigError`."""
    ok = (not isinstance(value, bool)
          and isinstance(value, int | float | np.integer | np.floating)
          and math.isfinite(float(value)))
    if ok:
        v = float(value)
        ok = (v >= low if inclusive[0] else v > low) and (v <= high if inclusive[1] else v < high)
    if not ok:
        left = "[" if inclusive[0] else "("
        right = "]" if inclusive[1] and not math.isinf(high) else ")"
        raise fail(name, f"be a finite number in {left}{low:g}, {high:g}{right}", value,
                   error=ConfigError)
    return float(value)


def check_num_classes(value: Any, name: str = "num_classes") -> int:
    """``value`` as an int >= 1, or raise :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise fail(name, "be an integer >= 1", value, error=ConfigError)
    return int(value)


def _as_vector(x: Any, name: str) -> Tensor:
    """``x`` (list, array or tensor) as a 1-D float64 CPU tensor, or raise InputError."""
    try:
        t = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x))
    except (TypeError, ValueError):
        raise fail(name, "be a 1-D sequence of numbers", type(x).__name__) from None
    if t.ndim != 1 or t.numel() == 0:
        raise fail(name, "be a non-empty 1-D sequence (one entry per class)",
                   f"shape {tuple(t.shape)}")
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise fail(name, "hold numbers", f"dtype {t.dtype}")
    return t.to(torch.float64)


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def check_class_counts(class_counts: Any, num_classes: int | None = None) -> Tensor:
    """Training count of each class as a float64 tensor ``(K,)``; every count an integer > 0.

    Raises :class:`~classgap.errors.InputError` naming ``class_counts`` and the first bad entry
    (or the length, when it disagrees with ``num_classes``).
    """
    counts = _as_vector(class_counts, "class_counts")
    if num_classes is not None and counts.numel() != num_classes:
        raise fail("class_counts", f"have one entry per class ({num_classes})",
                   f"{counts.numel()} entries")
    bad = ~torch.isfinite(counts) | (counts <= 0) | (counts != counts.round())
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise fail("class_counts", "hold integers > 0 (a training count per class)",
                   f"{counts[i].item()!r} at index {i}")
    return counts


def check_weight(weight: Any, num_classes: int | None = None) -> Tensor:
    """Class weights as a float32 tensor ``(K,)``: finite, >= 0, not all zero."""
    w = _as_vector(weight, "weight")
    if num_classes is not None and w.numel() != num_classes:
        raise fail("weight", f"have one entry per class ({num_classes})", f"{w.numel()} entries")
    bad = ~torch.isfinite(w) | (w < 0)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise fail("weight", "hold finite numbers >= 0", f"{w[i].item()!r} at index {i}")
    if not bool((w > 0).any()):
        raise fail("weight", "have at least one entry > 0", "all zeros")
    return w.to(torch.float32)


def _describe(x: Any) -> str:
    if isinstance(x, Tensor):
        return f"shape {tuple(x.shape)} dtype {x.dtype}"
    return type(x).__name__


def check_batch(logits: Any, targets: Any, num_classes: int | None, *,
                values: bool = True) -> None:
    """Check logits ``(N, K)`` float and targets ``(N,)`` integer class indices in ``[0, K)``.

    ``values=False`` skips the range check of the targets, the only one that syncs the device.
    """
    if not isinstance(logits, Tensor) or logits.ndim != 2 or not logits.is_floating_point():
        raise fail("logits", "be a float tensor of shape (N, K)", _describe(logits))
    n, k = logits.shape
    if num_classes is not None and k != num_classes:
        raise fail("logits", f"have one column per class ({num_classes})", f"{k} columns")
    if (not isinstance(targets, Tensor) or targets.shape != (n,)
            or targets.dtype not in _INT_DTYPES):
        raise fail("targets", f"be an integer tensor of shape ({n},) (class indices; soft "
                   "targets are not supported)", _describe(targets))
    if values and n:
        bad = (targets < 0) | (targets >= k)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise fail("targets", f"hold class indices in [0, {k - 1}]",
                       f"{int(targets[i])} at row {i}")


def check_features(features: Any, n: int, loss: str) -> None:
    """Check features ``(N, D)`` float for a loss that needs them."""
    if features is None:
        raise fail("features", f"be given for loss {loss!r}: call loss(logits, targets, "
                   "features=f) with the penultimate features (N, D), e.g. from "
                   "model(x, return_features=True)", None)
    if (not isinstance(features, Tensor) or features.ndim != 2 or features.shape[0] != n
            or not features.is_floating_point()):
        raise fail("features", f"be a float tensor of shape ({n}, D)", _describe(features))
