"""Image folders: one sub-folder per class (``root/<class>/<image>``), read with Pillow.

A root may also hold the splits as folders, ``root/train/<class>/<image>`` and
``root/test/<class>/<image>`` (the ImageFolder convention; see :func:`folder_layout`).
"""

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


def resize_images(images: np.ndarray, image_size: int | tuple[int, int]) -> np.ndarray:
    """uint8 images (N, C, H, W) resized to ``image_size`` by Pillow's bilinear filter.

    The same filter :func:`load_image_folder` resizes files with, so ``data.image_size``
    gives the same pixels whether the images came from files or from arrays.

    Examples
    --------
    >>> resize_images(np.zeros((2, 3, 8, 8), np.uint8), (4, 6)).shape
    (2, 3, 4, 6)
    """
    h, w = _size_hw(image_size)
    if images.shape[2:] == (h, w):
        return images
    out = np.empty((*images.shape[:2], h, w), np.uint8)
    for i, img in enumerate(images):
        if img.shape[0] == 1:
            pil = Image.fromarray(np.ascontiguousarray(img[0]), mode="L")
        elif img.shape[0] == 3:
            pil = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)), mode="RGB")
        else:  # any other channel count: one grayscale image per channel
            out[i] = [np.asarray(Image.fromarray(np.ascontiguousarray(c), mode="L")
                                 .resize((w, h), Image.Resampling.BILINEAR)) for c in img]
            continue
        arr = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR), dtype=np.uint8)
        out[i] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return out


#: Split folders of the ImageFolder convention: ``root/train/<class>/<image>`` and
#: ``root/test/<class>/<image>`` (``val/`` stands for ``test/`` when there is no ``test/``;
#: with all three, ``val/`` is the validation split).
SPLIT_FOLDERS = ("train", "val", "test")


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def folder_layout(path: str | os.PathLike[str]) -> dict[str, Path]:
    """Which folder holds which split: ``{"all": root}`` or ``{"train": .., "test": ..}``.

    A root whose ``train/`` holds class sub-folders, next to a ``test/`` or ``val/`` that
    does too, is split by its folders (the ImageFolder convention): ``train/`` and ``test/``,
    or ``train/`` and ``val/`` (then ``val/`` is the test split), or all three (then ``val/``
    is the validation split too). Any other root is one split of class sub-folders.

    Raises
    ------
    DataFormatError
        ``path`` is not a folder; a ``train/`` of class folders has no ``test/`` or ``val/``
        beside it; other folders sit beside the split folders (classes at the wrong level).
    """
    root = Path(path)
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a folder (expected <folder>/<class>/<image>, or "
                              f"<folder>/train/<class>/<image> and <folder>/test/...)")
    found = {p.name: p for p in _subdirs(root) if p.name in SPLIT_FOLDERS and _subdirs(p)}
    if "train" not in found:
        # train/ and test/ of images and nothing else: split folders without class folders,
        # not a dataset of two classes called "test" and "train" (a class called "train"
        # among others is just a class)
        subdirs = _subdirs(root)
        flat = [p.name for p in subdirs if p.name in SPLIT_FOLDERS and _image_files(p)]
        if "train" in flat and len(flat) > 1 and len(flat) == len(subdirs):
            raise DataFormatError(
                f"{root}: {'/ and '.join(flat)}/ hold images directly, without class folders; "
                "an image's class is the name of its folder: put each split's images in one "
                "folder per class (train/<class>/<image>, test/<class>/<image>)")
        return {"all": root}
    if "test" not in found and "val" not in found:
        raise DataFormatError(f"{root}: train/ holds class folders but there is no test/ (or "
                              f"val/) beside it; add one, or put the class folders directly "
                              f"in {root.name}/ to have a test part held out "
                              f"(data.test_fraction)")
    others = [p.name for p in _subdirs(root) if p.name not in SPLIT_FOLDERS]
    if others:
        raise DataFormatError(f"{root}: folders {others} sit beside the split folders "
                              f"{sorted(found)}; class folders belong inside each split folder")
    layout = {"train": found["train"], "test": found["test"] if "test" in found else found["val"]}
    if "test" in found and "val" in found:
        layout["val"] = found["val"]
    return layout


def _class_files(folder: Path) -> tuple[list[str], list[list[Path]]]:
    class_dirs = _subdirs(folder)
    if not class_dirs:
        raise DataFormatError(f"{folder}: no class sub-folders (expected "
                              f"<folder>/<class>/<image>)")
    files = []
    for class_dir in class_dirs:
        images = _image_files(class_dir)
        if not images:
            raise DataFormatError(_no_images(class_dir))
        files.append(images)
    return [d.name for d in class_dirs], files


def _no_images(class_dir: Path) -> str:
    """Why a class folder without images is wrong, and the fix: often it is the dataset itself,
    given one level too high (its train/ and test/, or its classes, are inside)."""
    inner = [p.name for p in _subdirs(class_dir)]
    if any(name in SPLIT_FOLDERS for name in inner):
        return (f"{class_dir.parent}: its folder {class_dir.name}/ holds the split folders "
                f"{', '.join(n + '/' for n in inner)} of a dataset, not images of a class; "
                f"give that folder: folder:{class_dir}")
    if inner:
        return (f"{class_dir}: class folder holds folders ({', '.join(inner[:5])}), not images; "
                f"if {class_dir.name}/ is the dataset, give it: folder:{class_dir}")
    return (f"{class_dir}: class folder holds no images "
            f"(suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})")


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
    return _read({"all": root}, image_size, root)["all"]


def load_image_folder_splits(path: str | os.PathLike[str], *,
                             image_size: int | tuple[int, int] | None = None
                             ) -> dict[str, Dataset]:
    """Every split of an image folder, by :func:`folder_layout`: ``{"all": ...}`` or
    ``{"train": ..., "test": ...}`` (and ``"val"`` with ``train/``, ``val/`` and ``test/``).

    Classes are the class folder names, sorted, the same in every split: a class with a
    folder in one split and none in another is an error. The mode (gray or RGB) and the size
    rule of :func:`load_image_folder` hold across all splits together, so train and test
    images always have the same shape.

    Returns
    -------
    dict of str to Dataset
        Named ``<folder>`` (one split) or ``<folder>/<split>``.
    """
    return _read(folder_layout(path), image_size, Path(path))


def _read(layout: dict[str, Path], image_size: int | tuple[int, int] | None,
          root: Path) -> dict[str, Dataset]:
    size = None if image_size is None else _size_hw(image_size)
    listed = {split: _class_files(folder) for split, folder in layout.items()}
    names = {split: set(classes) for split, (classes, _) in listed.items()}
    every = set().union(*names.values())
    for split, have in names.items():
        if have != every:
            missing = sorted(every - have)
            where = ", ".join(f"{s}/" for s, h in names.items() if missing[0] in h)
            raise DataFormatError(
                f"{layout[split]}: no folder for class {missing[0]!r} (it has one in {where}); "
                f"every class needs images in every split")
    images: dict[str, list[Image.Image]] = {}
    first: tuple[Path, Image.Image] | None = None
    for split, (_, files) in listed.items():
        images[split] = []
        for file in (f for class_files in files for f in class_files):
            img = _open(file)
            if first is None:
                first = (file, img)
            elif size is None and img.size != first[1].size:
                w0, h0 = first[1].size
                raise DataFormatError(
                    f"{file}: image size {img.size[1]}x{img.size[0]} (HxW) differs from "
                    f"{h0}x{w0} of the first image ({first[0].name}); resize all with "
                    f"--set data.image_size=H,W (image_size=(H, W) in Python)")
            images[split].append(img)
    every_image = [img for imgs in images.values() for img in imgs]
    mode = "L" if all(img.mode in _GRAY_MODES for img in every_image) else "RGB"
    out = {}
    for split, (classes, files) in listed.items():
        arrays = []
        for img in images[split]:
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)  # PIL: (W, H)
            arr = np.asarray(img, dtype=np.uint8)
            arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))  # (C, H, W)
        labels = np.repeat(np.arange(len(classes)), [len(f) for f in files])
        name = root.resolve().name if split == "all" else f"{root.resolve().name}/{split}"
        out[split] = build_dataset(np.stack(arrays), labels.astype(np.int64), classes, name,
                                   source=str(layout[split]))
    return out
