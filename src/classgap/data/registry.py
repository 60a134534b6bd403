"""Datasets by name: ``load_dataset("fashion-mnist")``, ``load_dataset("npz:train.npz")``.

Specs
-----
``fashion-mnist``  splits train / test (see :func:`~classgap.data.find_fashion_mnist`).
``digits``         splits train / test (fixed stratified 75/25, seed 0) and all.
``cifar10``        splits train / test; looked up in ``data_dir``, then ``$CLASSGAP_DATA``.
``cifar100``       same, fine labels.
``folder:PATH``    one split, all (``"train"`` is accepted as a synonym; there is no test).
``npz:PATH``       same as folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from classgap._registry import Registry
from classgap._validation import check_choice
from classgap.data.arrays import load_npz_dataset
from classgap.data.cifar import find_cifar, load_cifar
from classgap.data.dataset import Dataset
from classgap.data.digits import load_digits
from classgap.data.folder import load_image_folder
from classgap.data.idx import load_fashion_mnist
from classgap.errors import DataFormatError, InputError

Loader = Callable[[str, str, "str | os.PathLike[str] | None"], Dataset]
"""(path or "", split, data_dir) -> Dataset."""

_DATASETS: Registry[Loader] = Registry("dataset")
#: Splits each dataset offers; the first is what ``dataset_info`` describes for path specs.
SPLITS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("train", "test"), "digits": ("train", "test", "all"),
    "cifar10": ("train", "test"), "cifar100": ("train", "test"),
    "folder": ("all", "train"), "npz": ("all", "train"),
}
_PATH_SPECS = ("folder", "npz")


@_DATASETS.register("fashion-mnist")
def _fashion_mnist(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_fashion_mnist(split, data_dir)


@_DATASETS.register("digits")
def _digits(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_digits(split)


def _cifar(num_classes: int, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    roots = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("CLASSGAP_DATA"):
        roots.append(Path(os.environ["CLASSGAP_DATA"]))
    for root in roots:
        if find_cifar(root, num_classes) is not None:
            return load_cifar(root, num_classes=num_classes, split=split)
    looked = ", ".join(map(str, roots)) or "nowhere: pass data_dir or set $CLASSGAP_DATA"
    folder = "cifar-10-batches-py" if num_classes == 10 else "cifar-100-python"
    raise DataFormatError(
        f"CIFAR-{num_classes} not found (looked in {looked}); download the python version "
        f"from https://www.cs.toronto.edu/~kriz/cifar.html and extract it so that "
        f"<data_dir>/{folder}/ exists")


@_DATASETS.register("cifar10")
def _cifar10(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return _cifar(10, split, data_dir)


@_DATASETS.register("cifar100")
def _cifar100(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return _cifar(100, split, data_dir)


@_DATASETS.register("folder")
def _folder(path: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_image_folder(path)


@_DATASETS.register("npz")
def _npz(path: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_npz_dataset(path)


def _parse(spec: str) -> tuple[str, str]:
    if not isinstance(spec, str):
        raise InputError(f"'spec' must be a dataset name or 'folder:PATH' / 'npz:PATH'; "
                         f"got {spec!r}")
    name, sep, path = spec.partition(":")
    _DATASETS.get(name)  # unknown names: lists the valid ones and suggests the closest
    if name in _PATH_SPECS and not path:
        raise InputError(f"dataset '{name}' needs a path: '{name}:PATH'; got {spec!r}")
    if sep and name not in _PATH_SPECS:
        raise InputError(f"dataset '{name}' takes no path; got {spec!r}")
    return name, path


def list_datasets() -> list[str]:
    """Valid specs, path-based ones shown with their ``:PATH`` placeholder."""
    return [f"{n}:PATH" if n in _PATH_SPECS else n for n in _DATASETS.list()]


def load_dataset(spec: str, *, split: str = "train",
                 data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a dataset by spec (see :func:`list_datasets`).

    Parameters
    ----------
    spec : str
        ``"fashion-mnist"``, ``"digits"``, ``"cifar10"``, ``"cifar100"``, ``"folder:PATH"`` or
        ``"npz:PATH"``.
    split : str
        ``"train"`` or ``"test"``; ``"all"`` for digits. Folder and npz specs hold one split:
        they accept ``"all"`` or ``"train"`` (both give everything) and refuse ``"test"``;
        make a validation split with :func:`~classgap.data.stratified_split`.
    data_dir : path, optional
        Where to look first for files (Fashion-MNIST, CIFAR).

    Examples
    --------
    >>> load_dataset("digits", split="test").name
    'digits/test'
    """
    name, path = _parse(spec)
    check_choice(split, "split", SPLITS[name])
    return _DATASETS.get(name)(path, split, data_dir)


def dataset_info(spec: str, *, data_dir: str | os.PathLike[str] | None = None
                 ) -> dict[str, Any]:
    """Sizes, image shape, class names and class counts of each split, as plain Python types.

    Returns
    -------
    dict
        ``{"name": spec, "splits": {split: {"size": int, "image_shape": [C, H, W],
        "classes": [str], "class_counts": [int]}}}``: train and test for datasets that have
        them, ``"all"`` for folder and npz specs.
    """
    name, _ = _parse(spec)
    splits = ("all",) if name in _PATH_SPECS else ("train", "test")
    info: dict[str, Any] = {"name": spec, "splits": {}}
    for split in splits:
        ds = load_dataset(spec, split=split, data_dir=data_dir)
        info["splits"][split] = {
            "size": len(ds), "image_shape": list(ds.image_shape), "classes": list(ds.classes),
            "class_counts": [int(c) for c in ds.class_counts()],
        }
    return info
