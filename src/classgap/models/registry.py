"""Models by name: ``create_model("resnet32", num_classes=10, in_channels=3, image_size=(32, 32))``.

Names
-----
``cnn``       small CNN (32-32 / 64-64 / 128, BN + ReLU, GAP), ≈ 139k params; the workhorse.
``cnn_small`` the study net: conv 32, pool, conv 64, pool, fc 32 (BN + ReLU), ≈ 120k params,
              ≈ 5× cheaper than ``cnn``; built for one image size.
``mlp``       flatten → hidden layers (default 256, 128) → ReLU; built for one image size.
``resnet20``  He et al. CIFAR ResNet-20, option-A shortcuts, ≈ 0.27 M params.
``resnet32``  He et al. CIFAR ResNet-32, option-A shortcuts, ≈ 0.46 M params (CIFAR-LT recipe).
``resnet18``  ResNet-18 with a CIFAR stem (3×3 stride 1, no max-pool), ≈ 11.2 M params.

Minimum image size
------------------
Twice the total downsampling, so that the last stage still sees at least 2×2 pixels: below
that its 3×3 convolutions see mostly zero padding (and below the downsampling itself a max-pool
gets an empty map). ``cnn``, ``cnn_small``, ``resnet20``, ``resnet32``: 8×8; ``resnet18``:
16×16; ``mlp``: any. ``cnn_small`` and ``mlp`` are fixed at construction.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from classgap._registry import Registry
from classgap._validation import check_in_range, check_positive_int, fail
from classgap.errors import InputError
from classgap.models.cnn import MLP, SmallCNN, StudyCNN
from classgap.models.heads import ClassifierModel, make_head
from classgap.models.resnet import CifarResNet, ResNet18

__all__ = ["ModelSpec", "create_model", "list_models", "model_info"]

#: Classes of the reference configuration that :func:`model_info` counts parameters for.
REFERENCE_NUM_CLASSES = 10


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model.

    ``build(in_channels, image_size, **options)`` returns a backbone with a ``feature_dim``
    attribute; ``default_input`` is (C, H, W) of the dataset the model is meant for.
    """

    build: Callable[..., nn.Module]
    description: str
    default_input: tuple[int, int, int]
    min_size: int

    def options(self) -> dict[str, Any]:
        """Model-specific keyword arguments of ``build`` and their defaults."""
        params = list(inspect.signature(self.build).parameters.values())[2:]
        return {p.name: p.default for p in params}


_MODELS: Registry[ModelSpec] = Registry("model")


def _register(name: str, spec: ModelSpec) -> None:
    _MODELS.register(name)(spec)


def _cnn(in_channels: int, image_size: tuple[int, int], width: float = 1.0) -> nn.Module:
    return SmallCNN(in_channels, width=width)


def _cnn_small(in_channels: int, image_size: tuple[int, int], hidden: int = 32) -> nn.Module:
    return StudyCNN(in_channels, image_size, hidden=hidden)


def _mlp(in_channels: int, image_size: tuple[int, int], hidden: tuple[int, ...] = (256, 128),
         batchnorm: bool = False) -> nn.Module:
    return MLP(in_channels, image_size, hidden=hidden, batchnorm=batchnorm)


def _resnet20(in_channels: int, image_size: tuple[int, int]) -> nn.Module:
    return CifarResNet(3, in_channels)


def _resnet32(in_channels: int, image_size: tuple[int, int]) -> nn.Module:
    return CifarResNet(5, in_channels)


def _resnet18(in_channels: int, image_size: tuple[int, int]) -> nn.Module:
    return ResNet18(in_channels)


_register("cnn", ModelSpec(
    _cnn, "small CNN: conv 32-32, pool, 64-64, pool, 128, global average pool (BN + ReLU); "
    "the workhorse for 28×28 grayscale, also takes 32×32 RGB", (1, 28, 28), 8))
_register("cnn_small", ModelSpec(
    _cnn_small, "the study net: conv 32, pool, conv 64, pool, fc 32 (BN + ReLU); about 5× "
    "cheaper than cnn, for sweeps over many seeds; fixed image size", (1, 28, 28), 8))
_register("mlp", ModelSpec(
    _mlp, "MLP: flatten, hidden Linear + ReLU layers (optional BatchNorm1d); fixed image size",
    (1, 28, 28), 1))
_register("resnet20", ModelSpec(
    _resnet20, "CIFAR ResNet-20 (He et al. 2016): 3×3 BasicBlocks, widths 16/32/64, "
    "option-A shortcuts", (3, 32, 32), 8))
_register("resnet32", ModelSpec(
    _resnet32, "CIFAR ResNet-32 (He et al. 2016): 3×5 BasicBlocks, widths 16/32/64, "
    "option-A shortcuts; the CIFAR-LT reference model", (3, 32, 32), 8))
_register("resnet18", ModelSpec(
    _resnet18, "ResNet-18 with a CIFAR stem (3×3 stride-1 conv, no max-pool), "
    "widths 64-128-256-512", (3, 32, 32), 16))


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return _MODELS.list()


def _check_image_size(image_size: Any) -> tuple[int, int]:
    ok = (isinstance(image_size, tuple | list) and len(image_size) == 2
          and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in image_size))
    if not ok:
        raise fail("image_size", "be a pair (H, W) of integers >= 1", image_size)
    return int(image_size[0]), int(image_size[1])


def create_model(name: str, *, num_classes: int, in_channels: int, image_size: tuple[int, int],
                 head: str = "linear", dropout: float = 0.0,
                 head_kwargs: Mapping[str, Any] | None = None, **kwargs: Any) -> ClassifierModel:
    """Build a classifier by name (see :func:`list_models`).

    Parameters
    ----------
    name : str
        ``"cnn"``, ``"mlp"``, ``"resnet20"``, ``"resnet32"`` or ``"resnet18"``.
    num_classes : int
        K, the number of logits.
    in_channels : int
        C of the input ``(N, C, H, W)``: 1 for grayscale, 3 for RGB.
    image_size : (int, int)
        (H, W). Convolutional models accept any size of at least their minimum (module
        docstring) at forward time; the MLP is built for exactly this size.
    head : {"linear", "cosine"}
        Classifier head; ``"cosine"`` is the LDAM normed classifier
        (:class:`~classgap.models.CosineHead`, cosines in [-1, 1] by default).
    dropout : float
        Dropout probability in [0, 1) on the features before the head.
    head_kwargs : mapping, optional
        Passed to the head, e.g. ``{"scale": 30.0}`` for the cosine head.
    **kwargs
        Model options: ``width`` (cnn), ``hidden`` and ``batchnorm`` (mlp); see
        :func:`model_info`. Unknown ones raise :class:`~classgap.errors.InputError`.

    Returns
    -------
    ClassifierModel
        ``model(x)`` maps ``(N, C, H, W)`` to logits ``(N, K)``; ``model(x, return_features=True)``
        also returns the features ``(N, D)``, ``D = model.feature_dim``. ``model.config`` holds the
        resolved arguments.

    Examples
    --------
    >>> model = create_model("cnn", num_classes=10, in_channels=1, image_size=(28, 28))
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    spec = _MODELS.get(name)  # unknown names list the valid ones and suggest the closest
    check_positive_int(num_classes, "num_classes")
    check_positive_int(in_channels, "in_channels")
    size = _check_image_size(image_size)
    if min(size) < spec.min_size:
        m = spec.min_size
        raise fail("image_size", f"be at least ({m}, {m}) for model {name!r} (its last stage "
                   f"needs >= 2×2 pixels)", size)
    check_in_range(dropout, "dropout", 0.0, 1.0, inclusive=(True, False))
    options = spec.options()
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        takes = ", ".join(map(repr, options)) or "no options"
        raise InputError(f"model {name!r} takes {takes}; got unknown option(s) "
                         f"{', '.join(map(repr, unknown))}")
    backbone = spec.build(in_channels, size, **kwargs)
    feature_dim = int(backbone.feature_dim)  # type: ignore[arg-type]
    head_module = make_head(head, feature_dim, num_classes, **dict(head_kwargs or {}))
    model = ClassifierModel(backbone, feature_dim, head_module, dropout=dropout)
    model.config = {  # the resolved arguments, for provenance next to checkpoints and results
        "name": name, "num_classes": num_classes, "in_channels": in_channels,
        "image_size": list(size), "head": head, "dropout": float(dropout),
        "head_kwargs": dict(head_kwargs or {}), **options, **kwargs,
    }
    return model


def _count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of the convolutions and linear layers in one forward pass of ``x``."""
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total += output.numel() * per_output
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return total


def model_info(name: str) -> dict[str, Any]:
    """Description, default input, options and parameter count of a model, as plain Python types.

    The parameter count and the cost are for the reference configuration: the default input,
    10 classes and a linear head. ``macs`` is the multiply-adds of one image's forward pass
    through the convolutions and linear layers (a training step costs about 3× that). The model
    is built and run on the ``meta`` device, so this allocates no weights and leaves the global
    RNG untouched.

    Returns
    -------
    dict
        ``{"name", "description", "default_input": [C, H, W], "min_image_size": [m, m],
        "feature_dim", "params", "macs", "reference": {...}, "options": {...}}``.

    Examples
    --------
    >>> model_info("resnet32")["params"]
    464154
    """
    spec = _MODELS.get(name)
    c, h, w = spec.default_input
    reference = {"num_classes": REFERENCE_NUM_CLASSES, "in_channels": c, "image_size": [h, w],
                 "head": "linear"}
    with torch.device("meta"):
        model = create_model(name, num_classes=REFERENCE_NUM_CLASSES, in_channels=c,
                             image_size=(h, w))
        macs = _count_macs(model, torch.empty(1, c, h, w))
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.options().items()}
    return {
        "name": name, "description": spec.description, "default_input": [c, h, w],
        "min_image_size": [spec.min_size, spec.min_size], "feature_dim": model.feature_dim,
        "params": sum(p.numel() for p in model.parameters()), "macs": macs,
        "reference": reference,
        "options": options,
    }
