"""The one in-memory image-classification format every loader returns.

Images stay ``uint8`` in ``(N, C, H, W)`` layout, the way they are stored on disk: a whole
Fashion-MNIST train split is 47 MB, so datasets live in memory and (later) on the device as
uint8, and normalisation happens in the batched training code, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from classgap._validation import check_labels, fail
from classgap.errors import DataFormatError, InputError

if TYPE_CHECKING:  # the audit package (pandas, scipy) loads only for a dataset that has groups
    from classgap.audit.groups import GroupMap


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images, integer labels and class names of one split.

    Parameters
    ----------
    images : np.ndarray of uint8, shape (N, C, H, W)
    labels : np.ndarray of int, shape (N,)
        Class indices in ``[0, K-1]``; any integer dtype is accepted and stored as int64.
    classes : tuple of str, length K
        Class names, unique; ``classes[k]`` names label ``k``.
    name : str
        Short name used in reports, e.g. ``"fashion-mnist/train"``.
    groups : GroupMap or None
        The dataset's own grouping of its classes, in class order (CIFAR-100's superclasses);
        None when it has none.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(np.zeros((4, 1, 2, 2), np.uint8), np.array([0, 1, 1, 1]), ("a", "b"), "toy")
    >>> len(ds), ds.n_classes, ds.image_shape, ds.class_counts().tolist()
    (4, 2, (1, 2, 2), [1, 3])
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str
    groups: GroupMap | None = None

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, np.ndarray):
            raise fail("images", "be a numpy array", type(images).__name__)
        if images.dtype != np.uint8:
            raise fail("images", "have dtype uint8", f"dtype {images.dtype}")
        if images.ndim != 4:
            raise fail("images", "have shape (N, C, H, W)", f"shape {images.shape}")
        if isinstance(self.classes, str):
            raise fail("classes", "be a sequence of class names", self.classes)
        classes = tuple(self.classes)
        if not classes or not all(isinstance(c, str) for c in classes):
            raise fail("classes", "be a non-empty sequence of str", classes)
        if len(set(classes)) != len(classes):
            dup = next(c for i, c in enumerate(classes) if c in classes[:i])
            raise fail("classes", "hold unique names, no repeats", dup)
        labels = check_labels(self.labels, "labels", n_classes=len(classes))
        if len(labels) != len(images):
            raise fail("labels", f"have one entry per image ({len(images)})", len(labels))
        # frozen: normalised values go in through object.__setattr__, once, here.
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "name", str(self.name))
        if self.groups is not None and self.groups.classes != classes:
            raise fail("groups", "list the dataset's classes in its order", "a map of "
                       f"{self.groups.n_classes} classes starting {self.groups.classes[:2]}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
                f"n_classes={self.n_classes})")

    @property
    def n_classes(self) -> int:
        """Number of classes K (including classes with no image in this split)."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def class_counts(self) -> np.ndarray:
        """Images per class, shape (K,), int64."""
        return np.bincount(self.labels, minlength=self.n_classes).astype(np.int64)

    def subset(self, indices: Any, *, name: str | None = None) -> Dataset:
        """The images at ``indices`` (integer indices or a boolean mask of length N).

        Class names are kept, so a subset that misses a class still has K classes.
        """
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise fail("indices", f"be a boolean mask of length {len(self)}",
                           f"shape {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise fail("indices", "be a 1-D array of integer indices",
                       f"shape {idx.shape}, dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            bad = idx[(idx < -len(self)) | (idx >= len(self))][0]
            raise fail("indices", f"be in [0, {len(self) - 1}]", int(bad))
        return Dataset(self.images[idx], self.labels[idx], self.classes,
                       self.name if name is None else name, self.groups)


def build_dataset(images: np.ndarray, labels: np.ndarray, classes: Any, name: str, *,
                  source: str, groups: GroupMap | None = None) -> Dataset:
    """Construct a :class:`Dataset` from file contents; errors name ``source`` (the file).

    Loaders use this so that a bad array in a file is reported as a
    :class:`~classgap.errors.DataFormatError` prefixed with the file, not as an argument error.
    """
    try:
        return Dataset(images, labels, tuple(classes), name, groups)
    except InputError as exc:
        raise DataFormatError(f"{source}: {exc}") from None
