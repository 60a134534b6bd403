"""Image folders: one sub-folder per class (``root/<class>/<image>``), read with Pillow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from classgap._validation import fail
from classgap.data.dataset import Dataset, build_dataset
from classgap.errors import DataFormatError

#: File suffixes read as images (case-insensitive); other files are ignored.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".ppm", ".pgm", ".pbm"})
# Modes without colour: if every image has one of these, the dataset is kept single-channel.
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def _open(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a corrupt file fails here with its name
            return img.copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # Pillow reports some truncated or malformed files as SyntaxError or ValueError.
        raise DataFormatError(f"{path}: unreadable image ({exc})") from None


def _size_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool) and image_size > 0:
        return image_size, image_size
    if (isinstance(image_size, tuple) and len(image_size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                    for v in image_size)):
        return image_size
    raise fail("image_size", "be a positive int or a (height, width) tuple", image_size)


def load_image_folder(path: str | os.PathLike[str], *,
                      image_size: int | tuple[int, int] | None = None) -> Dataset:
    """A :class:`Dataset` from ``path/<class>/<image>`` files.

    Classes are the sub-folder names, sorted; images within a class are read in sorted file
    order. Every image is converted to one mode: ``L`` (1 channel) when all are grayscale,
    ``RGB`` (3 channels) otherwise (alpha is dropped).

    Parameters
    ----------
    path : path
        The root folder. Hidden entries and files without an image suffix are ignored.
    image_size : int or (height, width), optional
        Resize every image to this size (bilinear). Without it, all images must have the size
        of the first one, and the first that differs is reported.

    Returns
    -------
    Dataset
        Images (N, C, H, W) uint8, named after the folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a folder (expected <folder>/<class>/<image>)")
    size = None if image_size is None else _size_hw(image_size)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataFormatError(f"{root}: no class sub-folders (expected <folder>/<class>/<image>)")
    images: list[Image.Image] = []
    labels: list[int] = []
    for k, class_dir in enumerate(class_dirs):
        files = _image_files(class_dir)
        if not files:
            raise DataFormatError(f"{class_dir}: class folder holds no images "
                                  f"(suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})")
        for file in files:
            img = _open(file)
            if size is None and images and img.size != images[0].size:
                w0, h0 = images[0].size
                raise DataFormatError(
                    f"{file}: image size {img.size[1]}x{img.size[0]} (HxW) differs from "
                    f"{h0}x{w0} of the first image; pass image_size=(H, W) to resize")
            images.append(img)
            labels.append(k)
    mode = "L" if all(img.mode in _GRAY_MODES for img in images) else "RGB"
    arrays = []
    for img in images:
        img = img.convert(mode)
        if size is not None and img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)  # PIL takes (W, H)
        arr = np.asarray(img, dtype=np.uint8)
        arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))  # -> (C, H, W)
    return build_dataset(np.stack(arrays), np.asarray(labels, np.int64),
                         [d.name for d in class_dirs], root.resolve().name, source=str(root))
