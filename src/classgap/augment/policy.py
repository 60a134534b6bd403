"""Augmentation knobs and the batched pipeline that applies them, optionally per class.

A knob has a name, a natural unit, an *off* value (the identity) and a valid range. A pipeline
is a mapping ``{knob: value}`` where a value is one number or a per-class vector (class-
conditional augmentation, Kirichenko et al. 2023): per-sample strengths are ``table[labels]``
on the device. Knobs not named are off, and a pipeline with every knob off is exactly the
identity.

>>> import torch
>>> pipe = AugmentPipeline({"rrc": 0.08, "flip": 0.5}, num_classes=10)
>>> pipe.describe()
'rrc=0.08, flip=0.5'
>>> g = torch.Generator().manual_seed(0)
>>> x, y = torch.rand(8, 1, 28, 28, generator=g), torch.arange(8)
>>> xa, ya = pipe(x, y, generator=g)
>>> xa.shape, ya is y
(torch.Size([8, 1, 28, 28]), True)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from classgap._registry import Registry
from classgap._validation import check_choice, check_positive_int, fail, fmt_value
from classgap.augment import mix, ops
from classgap.errors import DataFormatError

__all__ = ["AUGMENTATIONS", "ORDER", "AugKnob", "AugmentPipeline", "list_augs", "parse_aug"]

Strength = float | tuple[float, ...]
"""One number for every class, or one per class."""


@dataclass(frozen=True)
class AugKnob:
    """One augmentation axis: its unit, off value, valid range and op."""

    name: str
    unit: str
    off: float
    low: float
    high: float  # math.inf for unbounded
    low_open: bool  # (low, ...] instead of [low, ...]
    integer: bool  # whole pixels
    mixes: bool  # mixes pairs of samples and their targets: one scalar α, targets (N, K)
    typical: float  # a usual "on" setting, for examples and tests
    description: str
    op: Callable[..., Any]

    @property
    def range(self) -> str:
        """The valid range in interval notation, e.g. ``(0, 1]`` or ``[0, inf)``."""
        left = "(" if self.low_open else "["
        right = ")" if math.isinf(self.high) else "]"
        return f"{left}{_num(self.low)}, {_num(self.high)}{right}"

    def constraint(self) -> str:
        """The range as the ``must ...`` part of an error message."""
        if self.integer:
            return f"be a whole number >= {_num(self.low)}"
        if math.isinf(self.high):
            return f"be a finite number >= {_num(self.low)}"
        return f"be in {self.range}"


def _num(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:g}"


AUGMENTATIONS: Registry[AugKnob] = Registry("aug")
#: The fixed application order of the pipeline (also the order of ``list_augs``).
ORDER = ("rrc", "crop", "flip", "jitter", "cutout", "mixup", "cutmix")

for _knob in (
    AugKnob("rrc", "scale lower bound s (area fraction)", 1.0, 0.0, 1.0, True, False, False,
            0.08, "random-resized crop: area U(s, 1), aspect ratio (3/4, 4/3), resized back",
            ops.random_resized_crop),
    AugKnob("crop", "padding (px)", 0, 0, math.inf, False, True, False, 4,
            "zero-pad and random crop: a random translation in [-p, p] px",
            ops.pad_crop),
    AugKnob("flip", "probability", 0.0, 0.0, 1.0, False, False, False, 0.5,
            "horizontal flip", ops.hflip),
    AugKnob("jitter", "magnitude m", 0.0, 0.0, 1.0, False, False, False, 0.4,
            "colour jitter: brightness, contrast, saturation U(1-m, 1+m), hue +-m/4 turns",
            ops.color_jitter),
    AugKnob("cutout", "side (px)", 0, 0, math.inf, False, True, False, 8,
            "zero a square of this side at a random centre", ops.cutout),
    AugKnob("mixup", "alpha", 0.0, 0.0, math.inf, False, False, True, 1.0,
            "mixup with lambda ~ Beta(alpha, alpha) per sample", mix.mixup),
    AugKnob("cutmix", "alpha", 0.0, 0.0, math.inf, False, False, True, 1.0,
            "cutmix with lambda ~ Beta(alpha, alpha) per sample", mix.cutmix),
):
    AUGMENTATIONS.register(_knob.name)(_knob)


def list_augs() -> list[dict[str, Any]]:
    """One row per knob, in pipeline order: name, unit, off, range, description."""
    return [{"name": k.name, "unit": k.unit, "off": k.off, "range": k.range,
             "description": k.description}
            for k in map(AUGMENTATIONS.get, ORDER)]


# ------------------------------------------------------------------------------ values
def _check_number(knob: AugKnob, v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise fail(name, "be a number", v)
    f = float(v)
    lo_ok = f > knob.low if knob.low_open else f >= knob.low
    if not (math.isfinite(f) and lo_ok and f <= knob.high
            and (not knob.integer or f.is_integer())):
        raise fail(name, knob.constraint(), v)
    return int(f) if knob.integer else f


def _check_value(knob: AugKnob, value: Any, name: str, num_classes: int | None) -> Strength:
    """A knob's value as a number or a tuple of per-class numbers, or raise."""
    if isinstance(value, Tensor | np.ndarray):
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str):
        if knob.mixes:
            raise fail(name, "be one number (a per-class alpha is not supported: mixing "
                       "pairs samples of two classes)", list(value))
        if num_classes is not None and len(value) != num_classes:
            raise fail(name, f"be one number or one per class ({num_classes} values)",
                       f"{len(value)} values")
        return tuple(_check_number(knob, v, f"{name}[{i}]") for i, v in enumerate(value))
    return _check_number(knob, value, name)


def _is_off(knob: AugKnob, value: Strength) -> bool:
    return all(v == knob.off for v in value) if isinstance(value, tuple) else value == knob.off


def _load_json_value(path: str, name: str, class_names: Sequence[str] | None,
                     num_classes: int | None) -> Any:
    """A per-class vector from a JSON list, or an object {class name or index: value, "*": ...}."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise fail(name, "name a readable JSON file", f"{path!r} ({exc.strerror})",
                   error=DataFormatError) from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON for '{name}' ({exc})") from None
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise fail(name, "be a JSON list or object", type(data).__name__, source=path,
                   error=DataFormatError)
    k = len(class_names) if class_names is not None else num_classes
    if k is None:
        raise fail(name, "be a JSON list when the class names are not known",
                   "a JSON object", source=path)
    default = data.get("*")
    values: list[Any] = [default] * k
    for key, v in data.items():
        if key == "*":
            continue
        if key.lstrip("-").isdigit():
            i = int(key)
            if not 0 <= i < k:
                raise fail(f"{name} class index", f"be in [0, {k - 1}]", i, source=path)
        elif class_names is not None:
            i = list(class_names).index(check_choice(key, f"{name} class", class_names))
        else:
            raise fail(f"{name} class", "be an index (no class names given)", key, source=path)
        values[i] = v
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        labels = [class_names[i] if class_names is not None else i for i in missing]
        raise fail(name, "give a value for every class or a '*' default",
                   f"no value for {fmt_value(labels)}", source=path)
    return values


def parse_aug(spec: str, *, class_names: Sequence[str] | None = None,
              num_classes: int | None = None) -> tuple[str, Strength]:
    """Parse ``NAME=VALUE`` (e.g. a ``--aug`` option) into a knob name and a checked value.

    Parameters
    ----------
    spec : str
        ``"rrc=0.5"``, a per-class vector ``"rrc=[0.08,0.08,1.0]"``, or ``"rrc=@path.json"``
        holding a JSON list or an object ``{class name or index: value, "*": default}``.
    class_names : sequence of str, optional
        Resolves class names in a JSON object; its length is the number of classes.
    num_classes : int, optional
        Checks the length of a per-class vector (defaults to ``len(class_names)``).

    Returns
    -------
    (str, float or tuple of float)
        The knob name and its value (whole numbers for pixel knobs).

    Examples
    --------
    >>> parse_aug("rrc=0.5")
    ('rrc', 0.5)
    >>> parse_aug("crop=[0, 4]")
    ('crop', (0, 4))
    """
    if not isinstance(spec, str) or "=" not in spec:
        raise fail("aug", "look like NAME=VALUE", spec)
    key, _, text = spec.partition("=")
    key, text = key.strip(), text.strip()
    knob = AUGMENTATIONS.get(key)  # unknown names list the choices and suggest the closest
    name = f"aug.{key}"
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if text.startswith("@"):
        raw = _load_json_value(text[1:], name, class_names, num_classes)
    else:
        try:
            raw = json.loads(text) if text.startswith("[") else float(text)
        except ValueError:
            raise fail(name, "be a number, a list [v1, v2, ...] or @file.json", text) from None
    return key, _check_value(knob, raw, name, num_classes)


# ---------------------------------------------------------------------------- pipeline
class AugmentPipeline:
    """Batched augmentation with per-class strengths, in the fixed order of :data:`ORDER`.

    rrc -> crop -> flip -> jitter -> cutout -> mixup or cutmix. When both mixup and cutmix
    are on, each batch uses one of them, chosen with probability 1/2 (as timm's Mixup with
    ``switch_prob=0.5``).

    Parameters
    ----------
    spec : mapping of str to float or sequence of float
        ``{knob: value}``; a sequence gives one value per class (length ``num_classes``).
        Knobs not named are off. mixup and cutmix take one number.
    num_classes : int
        K: the length of per-class vectors and the width of mixed targets.
    """

    def __init__(self, spec: Mapping[str, float | Sequence[float]], num_classes: int) -> None:
        self.num_classes = check_positive_int(num_classes, "num_classes")
        if not isinstance(spec, Mapping):
            raise fail("spec", "be a mapping {knob name: value}", type(spec).__name__)
        values: dict[str, Strength] = {name: AUGMENTATIONS.get(name).off for name in ORDER}
        for name, value in spec.items():
            knob = AUGMENTATIONS.get(name)
            values[name] = _check_value(knob, value, f"aug.{name}", self.num_classes)
        self._values = values
        self._tables: dict[tuple[str, torch.device], Tensor] = {}  # per-class tables by device

    @classmethod
    def from_strings(cls, specs: Iterable[str], num_classes: int, *,
                     class_names: Sequence[str] | None = None) -> AugmentPipeline:
        """Build from ``NAME=VALUE`` strings (see :func:`parse_aug`); a knob may appear once."""
        spec: dict[str, Strength] = {}
        for s in specs:
            name, value = parse_aug(s, class_names=class_names, num_classes=num_classes)
            if name in spec:
                raise fail("aug", f"name each knob once ({name!r} is repeated)", s)
            spec[name] = value
        return cls(spec, num_classes)

    @property
    def values(self) -> dict[str, Strength]:
        """Every knob's value, in pipeline order (off values included)."""
        return dict(self._values)

    def is_on(self, name: str) -> bool:
        """Whether knob ``name`` changes any class's samples."""
        return not _is_off(AUGMENTATIONS.get(name), self._values[name])

    @property
    def is_identity(self) -> bool:
        """True when every knob is off: the pipeline returns its input unchanged."""
        return not any(self.is_on(name) for name in ORDER)

    @property
    def mixes(self) -> bool:
        """True when mixup or cutmix is on: targets come out as (N, K) probabilities."""
        return self.is_on("mixup") or self.is_on("cutmix")

    def _strength(self, name: str, labels: Tensor) -> float | Tensor:
        """One number when all classes share it, else the (N,) per-sample ``table[labels]``."""
        value = self._values[name]
        if not isinstance(value, tuple):
            return float(value)
        if len(set(value)) == 1:
            return float(value[0])
        key = (name, labels.device)
        if key not in self._tables:
            self._tables[key] = torch.tensor(value, dtype=torch.float32, device=labels.device)
        return self._tables[key][labels]

    def _check_batch(self, x: Any, labels: Any, generator: torch.Generator,
                     validate: bool) -> tuple[Tensor, Tensor]:
        if not isinstance(x, Tensor) or x.ndim != 4 or not (
                x.is_floating_point() or x.dtype == torch.uint8):
            desc = (f"shape {tuple(x.shape)} dtype {x.dtype}" if isinstance(x, Tensor)
                    else type(x).__name__)
            raise fail("x", "be a float (in [0, 1]) or uint8 tensor of shape (N, C, H, W)",
                       desc)
        if (not isinstance(labels, Tensor) or labels.shape != (x.shape[0],)
                or labels.is_floating_point() or labels.dtype == torch.bool):
            desc = (f"shape {tuple(labels.shape)} dtype {labels.dtype}"
                    if isinstance(labels, Tensor) else type(labels).__name__)
            raise fail("labels", f"be an integer tensor of shape ({x.shape[0]},)", desc)
        if labels.device != x.device:
            raise fail("labels", f"be on the images' device ({x.device})", str(labels.device))
        if not isinstance(generator, torch.Generator):
            raise fail("generator", "be a torch.Generator", type(generator).__name__)
        labels = labels.to(torch.int64)  # the same tensor when already int64
        if validate and labels.numel():
            bad = (labels < 0) | (labels >= self.num_classes)
            if bool(bad.any()):  # one device sync; pass validate=False in hot loops
                i = int(bad.nonzero()[0, 0])
                raise fail("labels", f"hold class indices in [0, {self.num_classes - 1}]",
                           f"{int(labels[i])} at row {i}")
        if x.dtype == torch.uint8:
            x = x.to(torch.float32).div_(255)
        return x, labels

    def __call__(self, x: Tensor, labels: Tensor, *, generator: torch.Generator,
                 validate: bool = True) -> tuple[Tensor, Tensor]:
        """Augment one batch.

        Parameters
        ----------
        x : Tensor
            (N, C, H, W) float in [0, 1], or uint8 (converted to float32 / 255 first).
        labels : Tensor
            (N,) integer class indices, on the device of ``x``.
        generator : torch.Generator
            On the device of ``x``; the same seed gives the same batch.
        validate : bool
            Check that labels lie in [0, K) (one device sync per call).

        Returns
        -------
        (Tensor, Tensor)
            Images (N, C, H, W) float, and either the labels (N,) int64 when neither mixup nor
            cutmix is on, or (N, K) float32 target probabilities. An identity pipeline returns
            the float input and int64 labels themselves (not copies).
        """
        x, labels = self._check_batch(x, labels, generator, validate)
        for name in ORDER:
            knob = AUGMENTATIONS.get(name)
            if knob.mixes or not self.is_on(name):
                continue
            x = knob.op(x, self._strength(name, labels), generator=generator)
        if not self.mixes:
            return x, labels
        targets = F.one_hot(labels, self.num_classes).to(torch.float32)  # (N, K)
        name = "mixup" if self.is_on("mixup") else "cutmix"
        if self.is_on("mixup") and self.is_on("cutmix"):
            # One scalar read back per batch to pick the op (cheaper than computing both).
            coin = torch.rand((), generator=generator, device=x.device)
            name = "cutmix" if bool(coin < 0.5) else "mixup"
        alpha = self._values[name]  # a number: _check_value refuses per-class alpha
        return AUGMENTATIONS.get(name).op(x, targets, alpha, generator=generator)

    def to_dict(self) -> dict[str, float | list[float]]:
        """Every knob's value, JSON-ready, in pipeline order; ``AugmentPipeline(d, K)`` rebuilds."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._values.items()}

    def describe(self) -> str:
        """One line: the knobs that are on, e.g. ``'rrc=0.08, crop=per-class[0..4]'``."""
        parts = []
        for name in ORDER:
            if not self.is_on(name):
                continue
            v = self._values[name]
            if isinstance(v, tuple):
                text = f"per-class[{_num(min(v))}..{_num(max(v))}]"
            else:
                text = _num(v)
            parts.append(f"{name}={text}")
        return ", ".join(parts) if parts else "none (identity)"

    def __repr__(self) -> str:
        return f"AugmentPipeline({self.describe()!r}, num_classes={self.num_classes})"
