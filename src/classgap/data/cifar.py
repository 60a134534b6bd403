"""CIFAR-10 / CIFAR-100 "python version" batches, read through a restricted unpickler.

CIFAR-100's batches also hold each image's coarse label (one of 20 superclasses): they become
the dataset's group map (:func:`cifar100_groups`, level ``"superclass"``).

The batches are pickles, and unpickling runs whatever callable the file names. The real files
only need dicts, lists, strings, ints and numpy arrays, so :class:`RestrictedUnpickler` admits
exactly the globals that rebuild a numpy array and refuses everything else (``os.system``,
``builtins.eval``...) with a :class:`~classgap.errors.DataFormatError`, before anything runs.
"""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classgap._validation import check_choice, check_labels, fail
from classgap.data.dataset import Dataset, build_dataset
from classgap.errors import ClassgapError, DataFormatError, InputError

if TYPE_CHECKING:
    from classgap.audit.groups import GroupMap

try:  # numpy >= 2 moved the internals to numpy._core; old pickles still name numpy.core
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]

# The only globals a CIFAR batch needs. Mapping to the objects directly (not importing by
# name) also avoids numpy 2's deprecation warning for the numpy.core alias.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # array, protocols 0-4
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # array, protocol 5
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # bytes written by Python 3 at protocol <= 2
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed for dicts of numpy arrays."""

    def __init__(self, file: Any, *, source: str, encoding: str = "bytes") -> None:
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataFormatError(
                f"{self.source}: refusing to unpickle global '{module}.{name}'; a CIFAR batch "
                f"only holds dicts, lists and numpy arrays") from None


def load_pickle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Unpickle a CIFAR batch safely; return its dict with ``str`` keys.

    Read with ``encoding="bytes"`` (the originals are Python 2 pickles), so keys arrive as
    bytes; they are decoded, and files written with ``str`` keys work the same.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            obj = RestrictedUnpickler(fh, source=str(path)).load()
    except ClassgapError:
        raise
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except Exception as exc:  # any malformed pickle: UnpicklingError, EOFError, TypeError...
        raise DataFormatError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})"
                              ) from None
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: expected a dict; got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _field(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise DataFormatError(f"{path}: missing field '{key}' (fields: {sorted(batch)})")
    return batch[key]


def _names(values: Any, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        raise DataFormatError(f"{path}: field '{key}' must be a list of names; got "
                              f"{type(values).__name__}")
    return tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values)


def _read_batch(path: Path, label_key: str, n_classes: int
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Images (N, 3, 32, 32), labels (N,) and the whole batch dict of one batch file."""
    batch = load_pickle(path)
    data = _field(batch, "data", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        got = (f"dtype {data.dtype}, shape {data.shape}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise DataFormatError(
            f"{path}: field 'data' must be a uint8 array of shape (N, 3072); got {got}")
    labels = _batch_labels(batch, label_key, len(data), n_classes, path)
    # Rows are 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane.
    return data.reshape(-1, 3, 32, 32), labels, batch


def _batch_labels(batch: dict[str, Any], key: str, n: int, n_classes: int,
                  path: Path) -> np.ndarray:
    """Field ``key`` of a batch: ``n`` labels in [0, n_classes - 1]."""
    labels = np.asarray(_field(batch, key, path))
    if labels.ndim != 1 or len(labels) != n:
        raise DataFormatError(f"{path}: field '{key}' must hold {n} labels "
                              f"(one per row of 'data'); got shape {labels.shape}")
    try:  # checked per batch, so that the error names the batch file and its row
        return check_labels(labels, key, n_classes=n_classes, source=str(path))
    except InputError as exc:
        raise DataFormatError(str(exc)) from None


_LAYOUT = {
    10: ("cifar-10-batches-py", "batches.meta", "label_names", "labels",
         {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}),
    100: ("cifar-100-python", "meta", "fine_label_names", "fine_labels",
          {"train": ["train"], "test": ["test"]}),
}


def find_cifar(root: str | os.PathLike[str], num_classes: int = 10) -> Path | None:
    """The CIFAR batch folder under ``root`` (or ``root`` itself), or None if absent."""
    folder_name, meta, *_ = _LAYOUT[num_classes]
    for folder in (Path(root) / folder_name, Path(root)):
        if (folder / meta).is_file():
            return folder
    return None


def load_cifar(root: str | os.PathLike[str], *, num_classes: int = 10,
               split: str = "train") -> Dataset:
    """CIFAR-10 or CIFAR-100 (fine labels) from the python-version batches.

    Parameters
    ----------
    root : path
        Folder holding ``cifar-10-batches-py/`` (``data_batch_1``..``5``, ``test_batch``,
        ``batches.meta``) or ``cifar-100-python/`` (``train``, ``test``, ``meta``), or that
        folder itself.
    num_classes : {10, 100}
    split : {"train", "test"}

    Returns
    -------
    Dataset
        Images (N, 3, 32, 32) uint8: 50,000 train or 10,000 test images for the real data.
        A CIFAR-100 dataset carries its superclasses as ``groups`` (see
        :func:`cifar100_groups`) when its batches hold ``coarse_labels``.
    """
    if num_classes not in _LAYOUT:
        raise fail("num_classes", "be 10 or 100", num_classes)
    check_choice(split, "split", ("train", "test"))
    folder_name, meta, names_key, label_key, files = _LAYOUT[num_classes]
    folder = find_cifar(root, num_classes)
    if folder is None:
        raise DataFormatError(
            f"CIFAR-{num_classes} not found in {root} (need {folder_name}/{meta}); download "
            f"the python version from https://www.cs.toronto.edu/~kriz/cifar.html and extract "
            f"it there")
    classes = _names(_field(load_pickle(folder / meta), names_key, folder / meta), names_key,
                     folder / meta)
    parts = []
    for file_name in files[split]:
        if not (folder / file_name).is_file():
            raise DataFormatError(f"{folder / file_name}: missing CIFAR-{num_classes} batch")
        parts.append(_read_batch(folder / file_name, label_key, len(classes)))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    groups = None
    if num_classes == 100:
        try:  # superclasses ride along when the files hold them; their errors wait for
            # cifar100_groups, which is asked for them (a training run needs only the images)
            groups = _superclasses(folder / meta, classes, [(folder / f, p[1], p[2])
                                                            for f, p in zip(files[split], parts,
                                                                            strict=True)])
        except DataFormatError:
            groups = None
    return build_dataset(images, labels, classes, f"cifar{num_classes}/{split}",
                         source=str(folder / files[split][-1]), groups=groups)


#: The level of CIFAR-100's coarse labels in its group map.
SUPERCLASS = "superclass"


def cifar100_groups(path: str | os.PathLike[str]) -> GroupMap:
    """CIFAR-100's superclasses (its 20 coarse labels) as a group map, level ``"superclass"``.

    Parameters
    ----------
    path : path
        The ``cifar-100-python`` folder, a folder holding it, or its ``meta`` file. The
        coarse names come from ``meta`` (``coarse_label_names``); which superclass each class
        belongs to, from the ``fine_labels`` and ``coarse_labels`` of the ``test`` batch
        beside it (else ``train``).

    Returns
    -------
    GroupMap
        The 100 classes in label order (``fine_label_names``).
    """
    given = Path(path)
    folder = given.parent if given.is_file() else find_cifar(given, 100)
    if folder is None:
        raise DataFormatError(f"{given}: holds no CIFAR-100 'meta' file (need "
                              "cifar-100-python/meta, or the meta file itself)")
    meta = given if given.is_file() else folder / "meta"
    fine_names = _names(_field(load_pickle(meta), "fine_label_names", meta),
                        "fine_label_names", meta)
    batch_file = next((folder / b for b in ("test", "train") if (folder / b).is_file()), None)
    if batch_file is None:
        raise DataFormatError(f"{folder}: no CIFAR-100 batch ('test' or 'train') beside {meta}: "
                              "the superclass of each class is read from a batch's "
                              "fine_labels and coarse_labels")
    batch = load_pickle(batch_file)
    n = np.size(_field(batch, "fine_labels", batch_file))
    fine = _batch_labels(batch, "fine_labels", n, len(fine_names), batch_file)
    return _superclasses(meta, fine_names, [(batch_file, fine, batch)])


def _superclasses(meta: Path, fine_names: tuple[str, ...],
                  batches: list[tuple[Path, np.ndarray, dict[str, Any]]]) -> GroupMap:
    """The fine -> coarse map read off the label pairs of ``batches`` (path, fine labels,
    batch dict); each class must have an image and one coarse label."""
    from classgap.audit.groups import GroupMap

    coarse_names = _names(_field(load_pickle(meta), "coarse_label_names", meta),
                          "coarse_label_names", meta)
    fine = np.concatenate([b[1] for b in batches])
    coarse = np.concatenate([_batch_labels(batch, "coarse_labels", len(labels),
                                           len(coarse_names), path)
                             for path, labels, batch in batches])
    parent = np.full(len(fine_names), -1, dtype=np.int64)
    parent[fine[::-1]] = coarse[::-1]  # the last write wins: each class's first coarse label
    clash = np.flatnonzero(parent[fine] != coarse)
    source = str(batches[0][0])
    if clash.size:
        k = int(clash[0])
        raise DataFormatError(f"{source}: class {fine_names[fine[k]]!r} has two coarse labels, "
                              f"{coarse_names[parent[fine[k]]]!r} and "
                              f"{coarse_names[coarse[k]]!r}")
    unseen = np.flatnonzero(parent < 0)
    if unseen.size:
        raise DataFormatError(f"{source}: class {fine_names[unseen[0]]!r} (and "
                              f"{unseen.size - 1} more) has no image, so its superclass is "
                              "unknown")
    superclass = np.asarray(coarse_names, dtype=object)[parent]
    return GroupMap.from_columns(fine_names, {SUPERCLASS: superclass}, source=str(meta))
