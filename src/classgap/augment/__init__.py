"""Batched, seedable data augmentation with per-class (class-conditional) strengths.

Pure ops on (N, C, H, W) tensors live in :mod:`classgap.augment.ops`; the knob registry and
:class:`AugmentPipeline` in :mod:`classgap.augment.policy`::

    >>> from classgap.augment import AugmentPipeline, parse_aug
    >>> AugmentPipeline(dict([parse_aug("rrc=0.08")]), num_classes=10).describe()
    'rrc=0.08'
"""

from classgap.augment.mix import cutmix, mixup
from classgap.augment.ops import (
    color_jitter,
    crop_boxes_to_theta,
    cutout,
    hflip,
    pad_crop,
    random_resized_crop,
    resample_boxes,
)
from classgap.augment.policy import (
    AUGMENTATIONS,
    ORDER,
    AugKnob,
    AugmentPipeline,
    list_augs,
    parse_aug,
)

__all__ = [
    "AUGMENTATIONS",
    "ORDER",
    "AugKnob",
    "AugmentPipeline",
    "color_jitter",
    "crop_boxes_to_theta",
    "cutmix",
    "cutout",
    "hflip",
    "list_augs",
    "mixup",
    "pad_crop",
    "parse_aug",
    "random_resized_crop",
    "resample_boxes",
]
