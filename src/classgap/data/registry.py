"""Datasets by name: ``load_dataset("fashion-mnist")``, ``load_dataset("npz:train.npz")``.

Specs
-----
``fashion-mnist``  splits train / test (see :func:`~classgap.data.find_fashion_mnist`).
``digits``         splits train / test (fixed stratified 75/25, seed 0) and all.
``cifar10``        splits train / test; looked up in ``data_dir``, else ``$CLASSGAP_DATA``.
``cifar100``       same, fine labels.
``folder:PATH``    splits train / test and all: ``PATH/train/<class>/`` and ``PATH/test/<class>/``
                   (or ``val/``), or ``PATH/<class>/`` divided by a stratified split
                   (``test_fraction``, default 0.2, fixed seed :data:`TEST_SPLIT_SEED`).
``npz:PATH``       same: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``, or
                   ``images``, ``labels`` divided like a one-split folder.

A ``data_dir`` that is given must exist and be used: it is the only place Fashion-MNIST and
CIFAR are looked up, and the folder a relative ``folder:``/``npz:`` PATH is taken from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from classgap._registry import Registry
from classgap._validation import check_choice
from classgap.data.arrays import load_npz_splits
from classgap.data.cifar import find_cifar, load_cifar
from classgap.data.dataset import Dataset
from classgap.data.digits import load_digits
from classgap.data.folder import load_image_folder_splits, resize_images
from classgap.data.idx import find_fashion_mnist, load_fashion_mnist
from classgap.data.splits import stratified_test_split
from classgap.errors import DataFormatError, InputError

Loader = Callable[[str, str, "str | os.PathLike[str] | None"], Dataset]
"""(path or "", split, data_dir) -> Dataset."""

_DATASETS: Registry[Loader] = Registry("dataset")
#: Splits each dataset offers (a folder of train/, val/ and test/ also has "val").
SPLITS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("train", "test"), "digits": ("train", "test", "all"),
    "cifar10": ("train", "test"), "cifar100": ("train", "test"),
    "folder": ("train", "test", "val", "all"), "npz": ("train", "test", "all"),
}
_PATH_SPECS = ("folder", "npz")
#: What each dataset reads, as ``classgap list datasets`` shows it.
SOURCES: dict[str, str] = {
    "fashion-mnist": "IDX files in --data-dir (only there, when given), else $CLASSGAP_DATA, "
                     "/usr/share/datasets/fashion-mnist, the download cache",
    "digits": "scikit-learn's 8x8 digits, built in (75/25 stratified split, seed 0)",
    "cifar10": "the python-version batches in --data-dir, else $CLASSGAP_DATA",
    "cifar100": "the python-version batches in --data-dir, else $CLASSGAP_DATA",
    "folder": "PATH/train/<class>/ + PATH/test/<class>/ (or val/), or PATH/<class>/ with "
              "data.test_fraction held out; val with train/, val/ and test/",
    "npz": "arrays x_train, y_train, x_test, y_test, or images, labels with "
           "data.test_fraction held out; optional classes",
}
#: Test share of a one-split folder or npz (``data.test_fraction``).
DEFAULT_TEST_FRACTION = 0.2
#: Seed of that test split: fixed like digits' (not the run seed, not ``data.split_seed``), so
#: every run of a study, whatever its seeds, is tested on the same images.
TEST_SPLIT_SEED = 0


@_DATASETS.register("fashion-mnist")
def _fashion_mnist(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_fashion_mnist(split, data_dir)


@_DATASETS.register("digits")
def _digits(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_digits(split)


def _cifar_root(num_classes: int, data_dir: str | os.PathLike[str] | None) -> Path:
    # A data_dir given is the only place looked: falling back to $CLASSGAP_DATA would train
    # on other files than the ones asked for.
    roots = [Path(data_dir)] if data_dir is not None else \
        [Path(os.environ["CLASSGAP_DATA"])] if os.environ.get("CLASSGAP_DATA") else []
    for root in roots:
        if find_cifar(root, num_classes) is not None:
            return root
    looked = ", ".join(map(str, roots)) or "nowhere: pass data_dir or set $CLASSGAP_DATA"
    folder = "cifar-10-batches-py" if num_classes == 10 else "cifar-100-python"
    raise DataFormatError(
        f"CIFAR-{num_classes} not found (looked in {looked}); download the python version "
        f"from https://www.cs.toronto.edu/~kriz/cifar.html and extract it so that "
        f"<data_dir>/{folder}/ exists")


def _cifar(num_classes: int, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_cifar(_cifar_root(num_classes, data_dir), num_classes=num_classes, split=split)


@_DATASETS.register("cifar10")
def _cifar10(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return _cifar(10, split, data_dir)


@_DATASETS.register("cifar100")
def _cifar100(_: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return _cifar(100, split, data_dir)


# Path specs are read whole by load_splits (one read for every split); their entries in the
# registry exist for the names, the listing and the suggestions.
@_DATASETS.register("folder")
def _folder(path: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_splits(f"folder:{path}", data_dir=data_dir)[split]


@_DATASETS.register("npz")
def _npz(path: str, split: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    return load_splits(f"npz:{path}", data_dir=data_dir)[split]


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


def check_data_dir(data_dir: str | os.PathLike[str] | None,
                   name: str = "data_dir") -> Path | None:
    """``data_dir`` as a Path, None when not given; a path given must be an existing folder.

    A wrong path is an error rather than a silent fall-back to another copy of the data.
    ``name`` is what the message calls it (``--data-dir`` on the command line).
    """
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise InputError(f"'{name}' must be an existing folder; got {str(data_dir)!r} ({what})")
    return path


def _path_of(spec: str, name: str, path: str, data_dir: Path | None, option: str) -> Path:
    """The file or folder of a path spec: relative paths are taken inside ``data_dir``."""
    where = Path(path).expanduser()
    if data_dir is not None:
        if where.is_absolute():
            raise InputError(f"'{option}' has no use with the absolute path of {spec!r} (a "
                             f"relative PATH is looked up inside it); got {str(data_dir)!r}")
        where = data_dir / where
    return where


def data_source(spec: str, *, data_dir: str | os.PathLike[str] | None = None,
                option: str = "data_dir") -> str:
    """The absolute path the data of ``spec`` is read from (``"built in"`` for digits).

    What a run records in its provenance: which copy of the data it trained on. Cheap (no
    image is read), so a study calls it before it makes a directory: data that is not there
    is one error, not one failed run per seed.

    Raises
    ------
    InputError
        ``data_dir`` is given and is not a folder, or is of no use to ``spec``.
    DataFormatError
        The data is not found.
    """
    name, path = _parse(spec)
    root = check_data_dir(data_dir, option)
    if name == "digits":
        if root is not None:
            raise InputError(f"'{option}' has no use with dataset 'digits' (built in, it "
                             f"reads no files); got {str(data_dir)!r}")
        return "built in (scikit-learn digits)"
    if name == "fashion-mnist":
        where = find_fashion_mnist(root)
    elif name in ("cifar10", "cifar100"):
        num_classes = 10 if name == "cifar10" else 100
        where = find_cifar(_cifar_root(num_classes, root), num_classes) or Path()
    else:
        where = _path_of(spec, name, path, root, option)
        if not where.exists():
            raise DataFormatError(f"{where}: no such {'folder' if name == 'folder' else 'file'}"
                                  f" (dataset {spec!r})")
    return str(where.resolve())


def load_splits(spec: str, *, data_dir: str | os.PathLike[str] | None = None,
                test_fraction: float = DEFAULT_TEST_FRACTION,
                image_size: int | tuple[int, ...] | None = None,
                split_seed: int = TEST_SPLIT_SEED, option: str = "data_dir"
                ) -> dict[str, Dataset]:
    """Every split of ``spec`` that training uses: ``"train"``, ``"test"`` (and ``"val"``).

    Datasets with a test split give it. A ``folder:`` or ``npz:`` of one split is divided
    here into ``"train"`` and ``"test"`` by :func:`~classgap.data.stratified_test_split`
    (``test_fraction``, seeded by ``split_seed``); a folder of ``train/``, ``val/`` and
    ``test/`` gives its ``val/`` as ``"val"``.

    Parameters
    ----------
    spec : str
        See :func:`load_dataset`.
    data_dir : path, optional
        Where the files are: Fashion-MNIST and CIFAR are looked up only there when it is
        given; a relative ``folder:``/``npz:`` PATH is taken inside it. It must exist.
    test_fraction : float in (0, 1)
        Test share of a one-split ``folder:`` or ``npz:``.
    image_size : int, (S,) or (H, W), optional
        Resize every image to this size (Pillow bilinear, like image folders).
    split_seed : int
        Seed of that test split; keep it fixed so that every run is tested on the same images.
    option : str
        What errors call ``data_dir`` (``--data-dir``, ``data.data_dir``).

    Returns
    -------
    dict of str to Dataset
    """
    return _load_splits(spec, data_dir, test_fraction, image_size, split_seed, option)[0]


def _load_splits(spec: str, data_dir: str | os.PathLike[str] | None, test_fraction: float,
                 image_size: int | tuple[int, ...] | None, split_seed: int, option: str,
                 hold_out: bool = True) -> tuple[dict[str, Dataset], bool]:
    """:func:`load_splits`, and whether the test split was held out here (``hold_out=False``:
    a one-split folder or npz stays ``{"all": ...}``)."""
    name, path = _parse(spec)
    root = check_data_dir(data_dir, option)
    size = _image_size(image_size)
    held_out = False
    if name in _PATH_SPECS:
        where = _path_of(spec, name, path, root, option)
        splits = (load_image_folder_splits(where, image_size=size) if name == "folder"
                  else load_npz_splits(where))
        if "all" in splits and hold_out:
            whole = splits.pop("all")
            try:
                tr, te = stratified_test_split(whole.labels, test_fraction,
                                               random_state=split_seed)
            except InputError as exc:  # say which dataset, and the key a run sets it with
                key = "data.test_fraction" if option.startswith("data.") else "test_fraction"
                message = str(exc).replace("'test_fraction'", f"'{key}'")
                raise InputError(f"{spec}: {message}") from None
            splits = {"train": whole.subset(tr, name=f"{whole.name}/train"),
                      "test": whole.subset(te, name=f"{whole.name}/test")}
            held_out = True
    else:
        data_source(spec, data_dir=root, option=option)  # a data_dir of no use is an error
        splits = {s: _DATASETS.get(name)("", s, root) for s in ("train", "test")}
    if size is not None and name != "folder":  # folders resize each file as it is read
        splits = {s: _resized(ds, size) for s, ds in splits.items()}
    return splits, held_out


def load_run_data(spec: str, *, data_dir: str | os.PathLike[str] | None = None,
                  test_fraction: float = DEFAULT_TEST_FRACTION,
                  image_size: int | tuple[int, ...] | None = None,
                  option: str = "data_dir") -> tuple[dict[str, Dataset], dict[str, Any]]:
    """:func:`load_splits` with the test split's fixed seed, and a record of what was read.

    Returns
    -------
    splits : dict of str to Dataset
    record : dict
        ``{"dataset": spec, "path": absolute path read (data_source), "test_split": ...}``
        where ``test_split`` is ``{"held_out": True, "fraction": f, "seed": s, "stratified":
        True}`` for a one-split folder or npz, else ``{"held_out": False}`` (the dataset's
        own test split): what a run writes into its provenance.
    """
    splits, held_out = _load_splits(spec, data_dir, test_fraction, image_size, TEST_SPLIT_SEED,
                                    option)
    test_split: dict[str, Any] = {"held_out": held_out}
    if held_out:
        test_split.update(fraction=test_fraction, seed=TEST_SPLIT_SEED, stratified=True)
    record = {"dataset": spec, "path": data_source(spec, data_dir=data_dir, option=option),
              "test_split": test_split}
    return splits, record


def _resized(ds: Dataset, size: int | tuple[int, int]) -> Dataset:
    return Dataset(resize_images(ds.images, size), ds.labels, ds.classes, ds.name)


def _image_size(image_size: int | tuple[int, ...] | None) -> int | tuple[int, int] | None:
    if image_size is None or isinstance(image_size, int):
        return image_size
    size = tuple(image_size)
    if len(size) == 1:
        return int(size[0])
    if len(size) == 2:
        return int(size[0]), int(size[1])
    raise InputError(f"'image_size' must be an int or (H, W); got {image_size!r}")


def list_datasets() -> list[str]:
    """Valid specs, path-based ones shown with their ``:PATH`` placeholder."""
    return [f"{n}:PATH" if n in _PATH_SPECS else n for n in _DATASETS.list()]


def load_dataset(spec: str, *, split: str = "train",
                 data_dir: str | os.PathLike[str] | None = None,
                 test_fraction: float = DEFAULT_TEST_FRACTION,
                 image_size: int | tuple[int, ...] | None = None,
                 split_seed: int = TEST_SPLIT_SEED) -> Dataset:
    """Load a dataset by spec (see :func:`list_datasets`).

    Parameters
    ----------
    spec : str
        ``"fashion-mnist"``, ``"digits"``, ``"cifar10"``, ``"cifar100"``, ``"folder:PATH"`` or
        ``"npz:PATH"``.
    split : str
        ``"train"`` or ``"test"``; ``"all"`` for digits, folder and npz (every image).
        A folder or npz of one split is divided into train and test by a stratified split
        (``test_fraction``, ``split_seed``); a folder of ``train/`` and ``test/`` (or
        ``val/``) sub-folders, or an npz of ``x_train``, ``y_train``, ``x_test``, ``y_test``,
        gives its own; a folder of ``train/``, ``val/`` and ``test/`` also has ``"val"``.
    data_dir, test_fraction, image_size, split_seed
        See :func:`load_splits`.

    Examples
    --------
    >>> load_dataset("digits", split="test").name
    'digits/test'
    """
    name, path = _parse(spec)
    check_choice(split, "split", SPLITS[name])
    if name not in _PATH_SPECS:
        data_source(spec, data_dir=data_dir)  # a data_dir that is wrong or of no use: error
        ds = _DATASETS.get(name)(path, split, check_data_dir(data_dir))
        size = _image_size(image_size)
        return ds if size is None else _resized(ds, size)
    splits, _ = _load_splits(spec, data_dir, test_fraction, image_size, split_seed,
                             "data_dir", hold_out=split != "all")
    if split == "all" and "all" in splits:
        return splits["all"]
    if split == "all":
        parts = [splits[s] for s in ("train", "val", "test") if s in splits]
        return Dataset(np.concatenate([p.images for p in parts]),
                       np.concatenate([p.labels for p in parts]), parts[0].classes,
                       parts[0].name.rpartition("/")[0] or parts[0].name)
    if split not in splits:
        raise InputError(f"'split' must be one of {', '.join(map(repr, splits))} for {spec!r} "
                         f"(a val split needs train/, val/ and test/ folders); got {split!r}")
    return splits[split]


def dataset_info(spec: str, *, data_dir: str | os.PathLike[str] | None = None,
                 test_fraction: float = DEFAULT_TEST_FRACTION,
                 image_size: int | tuple[int, ...] | None = None,
                 option: str = "data_dir") -> dict[str, Any]:
    """Sizes, image shape, class names and class counts of each split, as plain Python types.

    Returns
    -------
    dict
        ``{"name": spec, "path": str, "splits": {split: {"size": int, "image_shape":
        [C, H, W], "classes": [str], "class_counts": [int]}}}``: train and test (and val for a
        folder of three splits) as training sees them (:func:`load_splits`); ``path`` is
        where the data was read (:func:`data_source`).
    """
    splits = load_splits(spec, data_dir=data_dir, test_fraction=test_fraction,
                         image_size=image_size, option=option)
    info: dict[str, Any] = {"name": spec,
                            "path": data_source(spec, data_dir=data_dir, option=option),
                            "splits": {}}
    for split, ds in splits.items():
        info["splits"][split] = {
            "size": len(ds), "image_shape": list(ds.image_shape), "classes": list(ds.classes),
            "class_counts": [int(c) for c in ds.class_counts()],
        }
    return info
