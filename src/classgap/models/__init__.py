"""Classifier models: small CNN, MLP, CIFAR ResNet-20/32, ResNet-18; linear and cosine heads.

``create_model(name, num_classes=..., in_channels=..., image_size=...)`` builds a
:class:`ClassifierModel` (backbone → dropout → head); ``list_models`` and ``model_info`` describe
what is available.
"""

from classgap.models.cnn import MLP, SmallCNN
from classgap.models.heads import (
    ClassifierModel,
    CosineHead,
    LinearHead,
    list_heads,
    make_head,
)
from classgap.models.registry import ModelSpec, create_model, list_models, model_info
from classgap.models.resnet import BasicBlock, CifarResNet, ResNet18, ShortcutA

__all__ = [
    "MLP",
    "BasicBlock",
    "CifarResNet",
    "ClassifierModel",
    "CosineHead",
    "LinearHead",
    "ModelSpec",
    "ResNet18",
    "ShortcutA",
    "SmallCNN",
    "create_model",
    "list_heads",
    "list_models",
    "make_head",
    "model_info",
]
