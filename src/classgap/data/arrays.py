"""Datasets stored as one ``.npz`` file of plain arrays (never pickles)."""

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


def _to_nchw(images: np.ndarray, source: str) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); 4-D arrays follow the channel rule of load_npz_dataset."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        if images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2))  # (N,H,W,C) -> (N,C,H,W)
        return images
    raise DataFormatError(f"{source}: field 'images' must have shape (N, H, W), (N, C, H, W) "
                          f"or (N, H, W, C); got {images.shape}")


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
    ``label`` would otherwise silently lose the data).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> ds = Dataset(np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 1]), ("cat", "dog"), "toy")
    >>> p = save_npz_dataset(Path(tempfile.mkdtemp()) / "toy.npz", ds)
    >>> load_npz_dataset(p).classes
    ('cat', 'dog')
    """
    path = Path(path)
    source = str(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(f"{source}: not a readable .npz file ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{source}: expected a .npz archive of named arrays; got a "
                              f"single .npy array")
    with npz:
        names = set(npz.files)
        unknown = sorted(names - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise DataFormatError(f"{source}: unknown arrays {unknown}; expected 'images', "
                                  f"'labels' and optionally 'classes'")
        missing = [n for n in _REQUIRED if n not in names]
        if missing:
            raise DataFormatError(f"{source}: missing arrays {missing} (has {sorted(names)})")
        arrays = {}
        for name in sorted(names):
            try:
                arrays[name] = npz[name]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                # allow_pickle=False makes numpy raise ValueError for object arrays.
                raise DataFormatError(f"{source}: field '{name}' cannot be read without "
                                      f"unpickling, which is refused ({exc})") from None
    images = arrays["images"]
    if images.dtype != np.uint8:
        raise DataFormatError(f"{source}: field 'images' must have dtype uint8; got "
                              f"{images.dtype} (scale to 0..255 and cast before saving)")
    images = _to_nchw(images, source)
    if "classes" in arrays:
        classes_arr = arrays["classes"]
        if classes_arr.ndim != 1 or classes_arr.dtype.kind not in "US":
            raise DataFormatError(f"{source}: field 'classes' must be a 1-D array of strings; "
                                  f"got dtype {classes_arr.dtype}, shape {classes_arr.shape}")
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in classes_arr.tolist()]
        n_classes: int | None = len(classes)
    else:
        classes, n_classes = [], None
    try:
        labels = check_labels(arrays["labels"], "labels", n_classes=n_classes, source=source)
    except InputError as exc:
        raise DataFormatError(str(exc)) from None
    if not classes:
        classes = [str(k) for k in range(int(labels.max()) + 1 if labels.size else 1)]
    return build_dataset(images, labels, classes, path.stem, source=source)


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
