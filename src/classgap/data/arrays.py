"""Datasets stored as one ``.npz`` file of plain arrays (never pickles).

Array names: ``images``, ``labels`` (one split; ``npz:PATH`` then holds out a test part) or
``x_train``, ``y_train``, ``x_test``, ``y_test`` (two splits), and optionally ``classes``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from classgap._validation import check_labels
from classgap.data.dataset import Dataset, build_dataset
from classgap.errors import DataFormatError, InputError

_REQUIRED = ("images", "labels")
_OPTIONAL = ("classes",)


def _to_nchw(images: np.ndarray, source: str, field: str = "images") -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); 4-D arrays follow the channel rule of load_npz_dataset."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        if images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2))  # (N,H,W,C) -> (N,C,H,W)
        return images
    raise DataFormatError(f"{source}: field '{field}' must have shape (N, H, W), (N, C, H, W) "
                          f"or (N, H, W, C); got {images.shape}")


#: The two-split layout (Keras' ``mnist.npz`` names): train and test arrays in one file.
_SPLIT_ARRAYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}


def load_npz_dataset(path: str | os.PathLike[str]) -> Dataset:
    """A :class:`Dataset` from a ``.npz`` holding ``images``, ``labels`` and optional ``classes``.

    Parameters
    ----------
    path : path
        The ``.npz`` file. It must hold these arrays:

    images : uint8, shape (N, H, W), (N, C, H, W) or (N, H, W, C)
        4-D arrays are channels-first, except when ``shape[1]`` is not 1 or 3 while
        ``shape[3]`` is: then they are channels-last and transposed. So (N, 3, 32, 32) and
        (N, 32, 32, 3) both load as (N, 3, 32, 32); in the ambiguous (N, 3, H, 3) channels-first
        wins.
    labels : integers, shape (N,)
        Class indices in ``[0, K-1]``.
    classes : str, shape (K,), optional
        Class names; default ``"0"``, ``"1"``, ... up to the largest label.

    The file is opened with ``allow_pickle=False``: object arrays are refused, since loading
    them would run code from the file. Any other array name is an error (a typo such as
    ``label`` would otherwise silently lose the data). A file of the two-split layout is
    read by :func:`load_npz_splits`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> ds = Dataset(np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 1]), ("cat", "dog"), "toy")
    >>> p = save_npz_dataset(Path(tempfile.mkdtemp()) / "toy.npz", ds)
    >>> load_npz_dataset(p).classes
    ('cat', 'dog')
    """
    splits = load_npz_splits(path)
    if "all" not in splits:
        raise DataFormatError(f"{path}: holds train and test arrays (x_train, y_train, x_test, "
                              f"y_test); read it with load_npz_splits or the 'npz:PATH' spec")
    return splits["all"]


def load_npz_splits(path: str | os.PathLike[str]) -> dict[str, Dataset]:
    """The splits of a ``.npz``: ``{"all": ...}`` or ``{"train": ..., "test": ...}``.

    Two layouts, told apart by the array names (anything else is an error):

    * one split: ``images``, ``labels`` (and optional ``classes``), as in
      :func:`load_npz_dataset`;
    * two splits: ``x_train``, ``y_train``, ``x_test``, ``y_test`` (and optional ``classes``,
      shared), the names of Keras' ``mnist.npz``; each pair follows the rules of
      ``images`` and ``labels``, and both splits must have the same image shape.

    Returns
    -------
    dict of str to Dataset
        Named after the file's stem (``<stem>/train`` and ``<stem>/test`` for two splits).
    """
    path = Path(path)
    source = str(path)
    arrays = _read_arrays(path)
    names = set(arrays)
    two = {n for pair in _SPLIT_ARRAYS.values() for n in pair}
    if names & two:
        layout = dict(_SPLIT_ARRAYS)
        expected = sorted(two)
    else:
        layout = {"all": ("images", "labels")}
        expected = list(_REQUIRED)
    unknown = sorted(names - set(expected) - set(_OPTIONAL))
    if unknown:
        raise DataFormatError(f"{source}: unknown arrays {unknown}; expected 'images', "
                              f"'labels' (or 'x_train', 'y_train', 'x_test', 'y_test') and "
                              f"optionally 'classes'")
    missing = [n for n in expected if n not in names]
    if missing:
        raise DataFormatError(f"{source}: missing arrays {missing} (has {sorted(names)})")
    classes: list[str] = []
    n_classes: int | None = None
    if "classes" in arrays:
        classes_arr = arrays["classes"]
        if classes_arr.ndim != 1 or classes_arr.dtype.kind not in "US":
            raise DataFormatError(f"{source}: field 'classes' must be a 1-D array of strings; "
                                  f"got dtype {classes_arr.dtype}, shape {classes_arr.shape}")
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in classes_arr.tolist()]
        n_classes = len(classes)
    parts = {}
    for split, (x_name, y_name) in layout.items():
        images = arrays[x_name]
        if images.dtype != np.uint8:
            raise DataFormatError(f"{source}: field '{x_name}' must have dtype uint8; got "
                                  f"{images.dtype} (scale to 0..255 and cast before saving)")
        try:
            labels = check_labels(arrays[y_name], y_name, n_classes=n_classes, source=source)
        except InputError as exc:
            raise DataFormatError(str(exc)) from None
        parts[split] = (_to_nchw(images, source, x_name), labels)
    if not classes:
        top = max((int(y.max()) for _, y in parts.values() if y.size), default=0)
        classes = [str(k) for k in range(top + 1)]
    shapes = {split: x.shape[1:] for split, (x, _) in parts.items()}
    if len(set(shapes.values())) > 1:
        raise DataFormatError(f"{source}: fields 'x_train' and 'x_test' must hold images of "
                              f"one shape (C, H, W); got {shapes['train']} and "
                              f"{shapes['test']}")
    return {split: build_dataset(x, y, classes, path.stem if split == "all"
                                 else f"{path.stem}/{split}", source=source)
            for split, (x, y) in parts.items()}


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    source = str(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(f"{source}: not a readable .npz file ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{source}: expected a .npz archive of named arrays; got a "
                              f"single .npy array")
    arrays = {}
    with npz:
        for name in sorted(npz.files):
            try:
                arrays[name] = npz[name]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                # allow_pickle=False makes numpy raise ValueError for object arrays.
                raise DataFormatError(f"{source}: field '{name}' cannot be read without "
                                      f"unpickling, which is refused ({exc})") from None
    return arrays


def save_npz_dataset(path: str | os.PathLike[str], dataset: Dataset) -> Path:
    """Write ``dataset`` as a compressed ``.npz`` (images NCHW); return the path written.

    numpy appends ``.npz`` when ``path`` lacks it; the returned path includes it.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez_compressed(path, images=dataset.images, labels=dataset.labels,
                        classes=np.asarray(dataset.classes, dtype=str))
    return path
