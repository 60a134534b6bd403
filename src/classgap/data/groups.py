"""Group maps by name or path: the one call behind ``--groups``.

``load_groups(spec, classes)`` turns what a user typed into a :class:`~classgap.audit.GroupMap`
in the audit's class order:

``fashion-mnist``        the built-in grouping (tops, bottoms, dresses, footwear, bags);
``cifar100``             CIFAR-100's 20 superclasses, from the batches in ``data_dir``, else
                         ``$CLASSGAP_DATA``;
``PATH/`` or ``.../meta`` a CIFAR-100 folder (or a folder holding ``cifar-100-python``), or its
                         ``meta`` file;
``FILE.csv|FILE.json``   any format :func:`~classgap.audit.read_group_map` reads (a CSV
                         ``class,<level>...``, the JSON forms, iNaturalist-2021 categories).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

from classgap.audit.groups import BUILTIN_GROUPS, GroupMap, read_group_map
from classgap.data.cifar import cifar100_groups
from classgap.data.registry import _cifar_root
from classgap.errors import InputError

__all__ = ["GROUP_SPECS", "dataset_groups", "load_groups"]

#: Group maps known by name: the built-in ones, and the datasets that carry their own.
GROUP_SPECS: tuple[str, ...] = (*BUILTIN_GROUPS, "cifar100")


def load_groups(spec: str | os.PathLike[str], classes: Sequence[str] | None, *,
                data_dir: str | os.PathLike[str] | None = None) -> GroupMap:
    """The group map ``spec`` names, aligned to ``classes`` (the audit's class order).

    Parameters
    ----------
    spec : str or path
        A name of :data:`GROUP_SPECS`, a CIFAR-100 folder or ``meta`` file, or a ``.csv`` /
        ``.json`` group-map file.
    classes : sequence of str, or None
        The audit's class names. Every one needs a group; classes of the map that are not
        here are dropped. None (the classes are not known yet: a ``--train-cmd`` study before
        it has trained) keeps the map's own classes and order, to be aligned later
        (:meth:`~classgap.audit.GroupMap.align`); an iNaturalist file's classes are then
        its ``name`` fields.
    data_dir : path, optional
        Where ``cifar100`` is looked for (else ``$CLASSGAP_DATA``).

    Raises
    ------
    InputError
        ``spec`` is neither a known name nor an existing path (the message lists the names).
    DataFormatError
        The file is unreadable or the map is bad (naming the file): see
        :func:`~classgap.audit.read_group_map` and :meth:`~classgap.audit.GroupMap.align`.

    Examples
    --------
    >>> from classgap.data import FASHION_MNIST_CLASSES
    >>> gm = load_groups("fashion-mnist", FASHION_MNIST_CLASSES)
    >>> [FASHION_MNIST_CLASSES[k] for k in gm.members("group", "footwear")]
    ['Sandal', 'Sneaker', 'Ankle boot']
    """
    text = os.fspath(spec)

    def aligned(groups: GroupMap) -> GroupMap:
        return groups if classes is None else groups.align(classes)

    if text in BUILTIN_GROUPS:
        return aligned(BUILTIN_GROUPS[text])
    if text == "cifar100":
        return aligned(cifar100_groups(_cifar_root(100, data_dir)))
    path = Path(text).expanduser()
    if path.is_dir() or (path.is_file() and path.name == "meta"):
        return aligned(cifar100_groups(path))
    if not path.exists():
        close = difflib.get_close_matches(text, GROUP_SPECS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"'groups' must be a built-in grouping ({', '.join(GROUP_SPECS)}), a "
                         f"CSV or JSON file, or a CIFAR-100 folder; got {text!r}, which is "
                         f"none of them (no such file){hint}")
    return aligned(read_group_map(path, classes=classes))


def dataset_groups(dataset: str, classes: Sequence[str], *,
                   data_dir: str | os.PathLike[str] | None = None) -> GroupMap | None:
    """The grouping a dataset comes with (``fashion-mnist``, ``cifar100``), aligned to
    ``classes``; None for a dataset without one.

    >>> dataset_groups("digits", [str(d) for d in range(10)]) is None
    True
    """
    return load_groups(dataset, classes, data_dir=data_dir) if dataset in GROUP_SPECS else None
