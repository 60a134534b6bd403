"""Group maps: each class's group at one or more nested levels (a taxonomy, superclasses).

A :class:`GroupMap` says, for every class of an audit, which group it belongs to at each level,
coarsest level first (``order`` > ``family`` > ``genus``). Levels nest: a group lies inside
exactly one group of the next coarser level. Per-group audits, comparisons and hierarchical
tests (:mod:`classgap.audit.grouped`, :mod:`classgap.audit.hierarchical`) all read it.

Build one with :meth:`GroupMap.from_columns` (a column of group names per level) or read one
with :func:`read_group_map`; then :meth:`GroupMap.align` puts it in the audit's class order.

>>> gm = GroupMap.from_columns(["cat", "dog", "oak"],
...                            {"kind": ["animal", "animal", "plant"]})
>>> gm.groups("kind"), gm.members("kind", "animal").tolist(), gm.sizes(0).tolist()
(('animal', 'plant'), [0, 1], [2, 1])
"""

from __future__ import annotations

import difflib
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classgap._validation import fmt_value
from classgap.errors import DataFormatError, InputError

__all__ = ["BUILTIN_GROUPS", "CLASS_COLUMN", "INAT_LEVELS", "GroupMap", "group_map_from_json",
           "read_group_map"]

#: The column (CSV) or key that holds the class names; no level may take this name.
CLASS_COLUMN = "class"
_SHOWN = 3  # names quoted in a message before "and N more"
#: Taxonomic ranks, coarse to fine: the order of levels that have as many groups.
_RANKS = {rank: i for i, rank in enumerate(("domain", "kingdom", "phylum", "division",
                                            "tax_class", "order", "family",
                                            "subfamily", "tribe", "genus", "species"))}


def _error(source: str | None, message: str) -> Exception:
    """A file's problem (``DataFormatError`` prefixed with the file) or an argument's."""
    if source:
        return DataFormatError(f"{source}: {message}")
    return InputError(f"'groups': {message}")


def _quoted(names: Sequence[Any], total: int | None = None) -> str:
    """``'a', 'b', 'c' and 4 more`` (the first few names of a longer list)."""
    total = len(names) if total is None else total
    quoted = [repr(str(n)) for n in names[:_SHOWN]]
    shown = ", ".join(q if len(q) <= 60 else q[:57] + "..." for q in quoted)
    return shown + (f" and {total - _SHOWN} more" if total > _SHOWN else "")


@dataclass(frozen=True, eq=False)
class GroupMap:
    """Each class's group at one or more levels; levels nested, coarsest first.

    Parameters
    ----------
    classes : tuple of str, length K
        Class names, unique, in the audit's class order (after :meth:`align`).
    levels : tuple of str, length L
        Level names, coarsest first, e.g. ``("order", "family", "genus")``; unique, never
        ``"class"``.
    codes : np.ndarray of int64, shape (L, K)
        ``codes[l, k]`` is the group of class ``k`` at level ``l`` (an index into
        ``names[l]``); every group has at least one class.
    names : tuple of tuple of str
        ``names[l][g]`` is the name of group ``g`` at level ``l``; unique within a level.
    source : str or None
        The file the map was read from, named by error messages (not compared).

    Examples
    --------
    >>> gm = GroupMap.from_columns(
    ...     ["Abra alba", "Abra nitida", "Macoma balthica", "Mytilus edulis"],
    ...     {"genus": ["Abra", "Abra", "Macoma", "Mytilus"],
    ...      "family": ["Semelidae", "Semelidae", "Tellinidae", "Mytilidae"],
    ...      "order": ["Cardiida", "Cardiida", "Cardiida", "Mytilida"]})
    >>> gm.levels
    ('order', 'family', 'genus')
    >>> gm.groups("family"), gm.parents("family").tolist()
    (('Mytilidae', 'Semelidae', 'Tellinidae'), [1, 0, 0])
    >>> mine = gm.align(["Mytilus edulis", "Abra alba"])  # the audit's classes, its order
    >>> mine.to_frame()["family"].tolist(), mine.groups("order")
    (['Mytilidae', 'Semelidae'], ('Cardiida', 'Mytilida'))
    """

    classes: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    names: tuple[tuple[str, ...], ...]
    source: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        src = self.source
        classes = tuple(str(c) for c in self.classes)
        levels = tuple(str(level) for level in self.levels)
        names = tuple(tuple(str(n) for n in level_names) for level_names in self.names)
        codes = np.asarray(self.codes)
        if not classes:
            raise _error(src, "holds no class")
        if not levels:
            raise _error(src, "holds no level (give at least one column of groups)")
        _check_unique(levels, "level", src)
        if CLASS_COLUMN in levels:
            raise _error(src, f"a level may not be called {CLASS_COLUMN!r} (that name is the "
                              "column of class names); rename it")
        _check_unique(classes, "class", src)
        if codes.shape != (len(levels), len(classes)) or codes.dtype.kind not in "iu":
            raise _error(src, f"'codes' must be an integer array of shape ({len(levels)}, "
                              f"{len(classes)}); got {codes.dtype} {codes.shape}")
        if len(names) != len(levels):
            raise _error(src, f"'names' must hold one tuple of group names per level "
                              f"({len(levels)}); got {len(names)}")
        codes = codes.astype(np.int64, copy=False)
        for level, row, level_names in zip(levels, codes, names, strict=True):
            _check_level(level, row, level_names, src)
        for i in range(1, len(levels)):
            _check_nested(classes, levels, codes, names, i, src)
        codes = codes.copy()
        codes.flags.writeable = False  # frozen: the codes are shared by every aligned copy
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "names", names)

    @classmethod
    def from_columns(cls, classes: Iterable[str], columns: Mapping[str, Iterable[Any]], *,
                     source: str | None = None) -> GroupMap:
        """A map from one column of group names per level.

        Parameters
        ----------
        classes : iterable of str, length K
            Class names. A class listed twice must have the same groups both times (the
            repeat is dropped).
        columns : mapping of str to iterable of str (a list, an array, a Series)
            Level name -> the group of each class (length K). Levels may come in any order:
            taxonomic ranks (kingdom, phylum, tax_class, order, family, genus...) are put in
            rank order, other names coarse to fine by number of groups (in their order here
            on a tie).
            Groups are listed in sorted order within a level.
        source : str, optional
            The file the columns come from, named by errors.

        Raises
        ------
        InputError or DataFormatError (``source`` given)
            A column of the wrong length, an empty group name, a class listed twice with
            different groups, a level called ``"class"``, levels that do not nest.
        """
        if isinstance(classes, str):
            raise _error(source, f"'classes' must be a sequence of class names; got "
                                 f"{fmt_value(classes)}")
        class_arr = np.asarray([str(c) for c in classes], dtype=object)
        if not len(class_arr):
            raise _error(source, "holds no class")
        if not columns:
            raise _error(source, "holds no level (give at least one column of groups)")
        levels = [str(level) for level in columns]
        values = [_group_column(class_arr, level, col, source)
                  for level, col in zip(levels, columns.values(), strict=True)]
        class_arr, values = _drop_repeats(class_arr, levels, values, source)
        coded = [pd.factorize(v, sort=True) for v in values]
        order = _coarse_to_fine(levels, [len(c[1]) for c in coded])
        return cls(tuple(class_arr.tolist()), tuple(levels[i] for i in order),
                   np.stack([coded[i][0] for i in order]).astype(np.int64),
                   tuple(tuple(coded[i][1].tolist()) for i in order), source)

    @property
    def n_classes(self) -> int:
        """Number of classes K."""
        return len(self.classes)

    def level_index(self, level: str | int) -> int:
        """The position of ``level`` (its name, or an index; negative counts from the finest).

        >>> BUILTIN_GROUPS["fashion-mnist"].level_index("group")
        0
        """
        n = len(self.levels)
        if isinstance(level, int | np.integer) and not isinstance(level, bool):
            if -n <= level < n:
                return int(level) % n
            raise _error(self.source, f"level {int(level)} is out of range: the map has {n} "
                                      f"level(s), {_quoted(self.levels)}")
        if level in self.levels:
            return self.levels.index(str(level))
        close = difflib.get_close_matches(str(level), self.levels, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _error(self.source, f"no level {fmt_value(level)} in the group map; its levels "
                                  f"are {', '.join(map(repr, self.levels))}{hint}")

    def groups(self, level: str | int) -> tuple[str, ...]:
        """Names of the groups at ``level``, in code order (sorted)."""
        return self.names[self.level_index(level)]

    def members(self, level: str | int, group: str) -> np.ndarray:
        """Indices (into :attr:`classes`) of the classes in ``group`` at ``level``, ascending.

        >>> BUILTIN_GROUPS["fashion-mnist"].members("group", "footwear").tolist()
        [5, 7, 9]
        """
        i = self.level_index(level)
        names = self.names[i]
        try:
            g = names.index(group)
        except ValueError:
            close = difflib.get_close_matches(str(group), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _error(self.source, f"no group {fmt_value(group)} at level "
                                      f"{self.levels[i]!r}; its groups are "
                                      f"{_quoted(names)}{hint}") from None
        return np.flatnonzero(self.codes[i] == g)

    def parents(self, level: str | int) -> np.ndarray:
        """(G_l,) int64: the parent of each group of ``level`` at the next coarser level
        (an index into that level's groups); all -1 at the coarsest level."""
        i = self.level_index(level)
        parent = np.full(len(self.names[i]), -1, dtype=np.int64)
        if i > 0:
            parent[self.codes[i]] = self.codes[i - 1]
        return parent

    def sizes(self, level: str | int) -> np.ndarray:
        """(G_l,) int64: the number of classes in each group of ``level``."""
        i = self.level_index(level)
        return np.bincount(self.codes[i], minlength=len(self.names[i])).astype(np.int64)

    def align(self, classes: Sequence[str]) -> GroupMap:
        """The map in the audit's class order: ``classes[k]`` becomes class ``k``.

        Classes of the map that the audit lacks are dropped, and so are the groups they
        leave empty; a class of the audit that the map lacks is an error naming it (and how
        many more are missing).
        """
        if isinstance(classes, str):
            raise _error(self.source, f"'classes' must be a sequence of class names; got "
                                      f"{fmt_value(classes)}")
        wanted = pd.Index([str(c) for c in classes], dtype=object)
        if not len(wanted):
            raise _error(self.source, "'classes' is empty: there is no class to group")
        if not wanted.is_unique:
            raise _error(self.source, "'classes' must hold unique names; got "
                                      f"{_quoted(wanted[wanted.duplicated()].unique().tolist())}"
                                      " more than once")
        if tuple(wanted) == self.classes:
            return self
        where = pd.Index(self.classes, dtype=object).get_indexer(wanted)
        missing = wanted[where < 0].tolist()
        if missing:
            raise _error(self.source, f"class {_quoted(missing)} of the predictions "
                                      f"{'is' if len(missing) == 1 else 'are'} not in the "
                                      f"group map ({len(missing)} of {len(wanted)} classes "
                                      "missing); every class needs a group at every level")
        codes = self.codes[:, where]
        new_codes = np.empty_like(codes)
        names = []
        for i, row in enumerate(codes):  # one pass per level: renumber the groups still used
            used, new_codes[i] = np.unique(row, return_inverse=True)
            names.append(tuple(self.names[i][g] for g in used.tolist()))
        return GroupMap(tuple(wanted), self.levels, new_codes, tuple(names), self.source)

    def to_frame(self) -> pd.DataFrame:
        """One row per class: ``class`` then one column per level, coarse to fine."""
        data = {CLASS_COLUMN: list(self.classes)}
        for level, row, names in zip(self.levels, self.codes, self.names, strict=True):
            data[level] = np.asarray(names, dtype=object)[row]
        return pd.DataFrame(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form :func:`read_group_map` reads back: ``{"levels": [...], "classes":
        {class: {level: group}}}``."""
        frame = self.to_frame().set_index(CLASS_COLUMN)
        return {"levels": list(self.levels), "classes": frame.to_dict(orient="index")}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupMap):
            return NotImplemented
        return (self.classes == other.classes and self.levels == other.levels
                and self.names == other.names and np.array_equal(self.codes, other.codes))

    __hash__ = None  # type: ignore[assignment]  # holds an array: equal maps, no hash


def _coarse_to_fine(levels: list[str], n_groups: list[int]) -> list[int]:
    """The order of ``levels``, coarsest first: taxonomic ranks (all of them known) in rank
    order, so that a genus found in two families is an error rather than a coarser level;
    any other names by number of groups, fewer first (on a tie, ranks in rank order, then the
    order given: levels with as many groups that nest are the same partition)."""
    if all(level in _RANKS for level in levels):
        return sorted(range(len(levels)), key=lambda i: _RANKS[levels[i]])
    return sorted(range(len(levels)),
                  key=lambda i: (n_groups[i], _RANKS.get(levels[i], len(_RANKS))))


def _check_unique(names: Sequence[str], what: str, src: str | None) -> None:
    index = pd.Index(names, dtype=object)
    if not index.is_unique:
        dup = index[index.duplicated()].unique().tolist()
        raise _error(src, f"{what} {_quoted(dup)} is listed more than once")


def _check_level(level: str, row: np.ndarray, names: tuple[str, ...], src: str | None) -> None:
    """Codes in range, every group used, group names unique."""
    if row.size and (row.min() < 0 or row.max() >= len(names)):
        raise _error(src, f"level {level!r}: codes must be in [0, {len(names) - 1}]; got "
                          f"{int(row.min() if row.min() < 0 else row.max())}")
    empty = np.flatnonzero(np.bincount(row, minlength=len(names)) == 0)
    if empty.size:
        raise _error(src, f"level {level!r}: group {_quoted([names[g] for g in empty])} "
                          "has no class")
    _check_unique(names, f"level {level!r}: group", src)


def _check_nested(classes: tuple[str, ...], levels: tuple[str, ...], codes: np.ndarray,
                  names: tuple[tuple[str, ...], ...], i: int, src: str | None) -> None:
    """Every group of level ``i`` lies inside one group of level ``i - 1``."""
    child, parent = codes[i], codes[i - 1]
    first_parent = np.full(len(names[i]), -1, dtype=np.int64)
    first_class = np.full(len(names[i]), -1, dtype=np.int64)
    # Reversed assignment keeps each group's first class (the last write wins).
    first_parent[child[::-1]] = parent[::-1]
    first_class[child[::-1]] = np.arange(len(child))[::-1]
    bad = np.flatnonzero(first_parent[child] != parent)
    if not bad.size:
        return
    k = int(bad[0])
    g, j = int(child[k]), int(first_class[child[k]])
    raise _error(src, f"levels must nest, but {levels[i]} {names[i][g]!r} is in two "
                      f"{levels[i - 1]} groups: {names[i - 1][parent[j]]!r} (class "
                      f"{classes[j]!r}) and {names[i - 1][parent[k]]!r} (class "
                      f"{classes[k]!r}); give each {levels[i]} one {levels[i - 1]}, or "
                      "rename one of them")


def _group_column(classes: np.ndarray, level: str, column: Any, src: str | None) -> np.ndarray:
    """One level's group names as an object array of non-empty str, one per class."""
    if isinstance(column, str):
        raise _error(src, f"level {level!r} must hold one group name per class; got "
                          f"{fmt_value(column)}")
    values = np.empty(len(classes), dtype=object)
    raw = list(column)
    if len(raw) != len(classes):
        raise _error(src, f"level {level!r} must hold one group name per class "
                          f"({len(classes)}); got {len(raw)}")
    values[:] = raw
    text = values.astype(str)  # (K,) fixed-width unicode: numpy's string ops run in C
    blank = pd.isna(values) | (np.char.strip(text) == "")
    if blank.any():
        raise _error(src, f"class {_quoted(classes[blank].tolist(), int(blank.sum()))} "
                          f"{'has' if blank.sum() == 1 else 'have'} no {level} (empty "
                          "group name); every class needs a group at every level")
    return text.astype(object)


def _drop_repeats(classes: np.ndarray, levels: list[str], values: list[np.ndarray],
                  src: str | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Drop classes listed twice with the same groups; a repeat that disagrees is an error."""
    repeated = pd.Index(classes).duplicated()
    if not repeated.any():
        return classes, values
    frame = pd.DataFrame(dict(zip(levels, values, strict=True)))
    frame.insert(0, "\0class", classes)
    distinct = frame.drop_duplicates()
    clash = distinct["\0class"].duplicated(keep=False).to_numpy()
    if clash.any():
        name = distinct["\0class"].to_numpy()[clash][0]
        rows = distinct[distinct["\0class"] == name]
        level = next(c for c in levels if rows[c].nunique() > 1)
        a, b = rows[level].tolist()[:2]
        raise _error(src, f"class {name!r} is listed twice with different {level} groups: "
                          f"{a!r} and {b!r}")
    keep = ~repeated
    return classes[keep], [v[keep] for v in values]


#: Fashion-MNIST's classes, as :data:`classgap.data.FASHION_MNIST_CLASSES` (restated here:
#: the audit layer imports nothing from ``classgap.data``).
_FASHION_MNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FASHION_GROUPS = ("tops", "bottoms", "tops", "dresses", "tops",
                   "footwear", "tops", "footwear", "bags", "footwear")

#: Built-in group maps by name (``--groups fashion-mnist``).
BUILTIN_GROUPS: Mapping[str, GroupMap] = {
    "fashion-mnist": GroupMap.from_columns(_FASHION_MNIST, {"group": _FASHION_GROUPS}),
}


# --- readers ---------------------------------------------------------------------------------

#: The taxonomy fields of an iNaturalist category, coarse to fine, and the level each becomes
#: (the taxonomic "class" is renamed: "class" is the column of class names).
INAT_LEVELS: Mapping[str, str] = {"kingdom": "kingdom", "phylum": "phylum", "class": "tax_class",
                                  "order": "order", "family": "family", "genus": "genus"}
#: Fields that may name an iNaturalist category, in the order tried on a tie.
_INAT_KEYS = ("name", "image_dir_name", "id", "common_name")


def read_group_map(path: str | os.PathLike[str], *,
                   classes: Sequence[str] | None = None) -> GroupMap:
    """A group map from a CSV or JSON file, in the file's class order (then
    :meth:`~GroupMap.align` it to the audit's).

    Formats
    -------
    CSV
        A header ``class,<level>,<level>...`` (columns in any order), then one row per class:
        ``Abra alba,Abra,Semelidae,Cardiida`` under ``class,genus,family,order``.
    JSON
        ``{"levels": ["family", "genus"], "classes": {"Abra alba": {"family": "Semelidae",
        "genus": "Abra"}, ...}}`` (``levels`` optional; :meth:`GroupMap.to_dict` writes it),
        or the short form ``{"Shirt": "tops", "Bag": "bags", ...}`` (one level, ``"group"``).
    iNaturalist 2021
        A train/val JSON with a ``"categories"`` list, or that list alone: levels ``kingdom``,
        ``phylum``, ``tax_class``, ``order``, ``family``, ``genus`` from the fields of the same
        names. A class is a category's ``name`` (``"Abra alba"``), ``image_dir_name``
        (``"00000_Animalia_..._Abra_alba"``) or ``id``: whichever names most of ``classes``
        when given, else ``name``. A genus name found under two families (``Prunella``, a
        plant and a bird) is told apart by its family: ``"Prunella (Lamiaceae)"``.

    Parameters
    ----------
    path : path
        A ``.csv`` or ``.json`` file.
    classes : sequence of str, optional
        The audit's class names: pick which field of an iNaturalist file names the classes.

    Raises
    ------
    DataFormatError
        Naming the file: missing, empty, not valid CSV/JSON, no ``class`` column, an unknown
        key, and every problem of :meth:`GroupMap.from_columns`.
    """
    source, file = str(path), Path(path)
    if not file.is_file():
        problem = "is a folder, not a group-map file" if file.is_dir() else "file does not exist"
        raise DataFormatError(f"{source}: {problem}")
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise DataFormatError(f"{source}: a group map must be a .csv or .json file; got "
                              f"{suffix or 'no suffix'}")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{source}: cannot be read as text ({exc})") from None
    if not text.strip():
        raise DataFormatError(f"{source}: is empty (a group map needs a header or a JSON "
                              "object)")
    if suffix == ".csv":
        return _from_csv(text, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{source}: is not valid JSON ({exc})") from None
    return group_map_from_json(data, source=source, classes=classes)


def _from_csv(text: str, source: str) -> GroupMap:
    try:  # every cell as text: "1" is a group name, not a number; "" and "NA" stay as they are
        frame = pd.read_csv(io.StringIO(text), dtype=str, header=None, keep_default_na=False,
                            skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0]
        raise DataFormatError(f"{source}: is not a valid CSV ({detail})") from None
    header = [str(h).strip() for h in frame.iloc[0]]
    unnamed = [i + 1 for i, h in enumerate(header) if not h]
    if unnamed:
        raise DataFormatError(f"{source}: column {unnamed[0]} of the header has no name; "
                              f"name every column (class,<level>,...)")
    _check_unique(header, "column", source)
    if CLASS_COLUMN not in header:
        raise DataFormatError(f"{source}: has no {CLASS_COLUMN!r} column; its columns are "
                              f"{_quoted(header)} (the header must read class,<level>,...)")
    if len(header) < 2:
        raise DataFormatError(f"{source}: has no level column (the header must read "
                              "class,<level>,...)")
    body = frame.iloc[1:]
    if body.empty:
        raise DataFormatError(f"{source}: holds no class (only a header)")
    cells = {h: body[i].str.strip().to_numpy(dtype=object) for i, h in enumerate(header)}
    classes = cells.pop(CLASS_COLUMN)
    return GroupMap.from_columns(classes, cells, source=source)


def group_map_from_json(data: Any, *, source: str | None = None,
                        classes: Sequence[str] | None = None) -> GroupMap:
    """A group map from parsed JSON in any of :func:`read_group_map`'s JSON forms (a study's
    stored map, an inline ``--groups`` value)."""
    if isinstance(data, list) or (isinstance(data, dict) and "categories" in data):
        return _from_inat(data, source, classes)
    if not isinstance(data, dict) or not data:
        raise _error(source, "a JSON group map must be an object ({\"levels\": [...], "
                             "\"classes\": {...}} or {class: group}) or an iNaturalist "
                             f"categories list; got {_json_kind(data)}")
    if "classes" in data or "levels" in data:
        return _from_long_json(data, source)
    bad = next((k for k, v in data.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise _error(source, f"class {bad!r} must map to a group name (the short form "
                             "{class: group}); got " + _json_kind(data[bad]) + "; for several "
                             "levels write {\"levels\": [...], \"classes\": {class: {level: "
                             "group}}}")
    return GroupMap.from_columns(list(data), {"group": list(data.values())}, source=source)


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null"}
    return kinds.get(type(value), "a number") + ("" if value or value == 0 else " (empty)")


def _from_long_json(data: dict[str, Any], source: str | None) -> GroupMap:
    unknown = [k for k in data if k not in ("levels", "classes")]
    if unknown:
        raise _error(source, f"unknown key {unknown[0]!r}; a group map holds \"levels\" and "
                             "\"classes\"")
    entries = data.get("classes")
    if not isinstance(entries, dict) or not entries:
        raise _error(source, "\"classes\" must be a non-empty object {class: {level: group}}; "
                             f"got {_json_kind(entries)}")
    bad = next((k for k, v in entries.items() if not isinstance(v, dict)), None)
    if bad is not None:
        raise _error(source, f"class {bad!r} must map to an object {{level: group}}; got "
                             f"{_json_kind(entries[bad])}")
    frame = pd.DataFrame.from_dict(entries, orient="index", dtype=object)
    levels = data.get("levels")
    if levels is None:
        levels = frame.columns.tolist()
    elif not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
        raise _error(source, f"\"levels\" must be a list of level names; got {levels!r:.60}")
    _check_unique(levels, "level", source)
    extra = [c for c in frame.columns if c not in levels]
    if extra:
        who = next(k for k, v in entries.items() if extra[0] in v)
        raise _error(source, f"class {who!r} has an unknown level {extra[0]!r}; the levels "
                             f"are {', '.join(map(repr, levels))}")
    columns = {level: frame[level] if level in frame else [None] * len(frame)
               for level in levels}
    return GroupMap.from_columns(frame.index.astype(str).tolist(), columns, source=source)


def _from_inat(data: Any, source: str | None, classes: Sequence[str] | None) -> GroupMap:
    categories = data["categories"] if isinstance(data, dict) else data
    if not isinstance(categories, list) or not categories \
            or not all(isinstance(c, dict) for c in categories):
        raise _error(source, "\"categories\" must be a non-empty list of objects (id, name, "
                             f"kingdom ... genus); got {_json_kind(categories)}")
    frame = pd.DataFrame(categories, dtype=object)
    fields = [f for f in INAT_LEVELS if f in frame.columns]
    keys = [f for f in _INAT_KEYS if f in frame.columns]
    if not fields or not keys:
        need = "taxonomy fields (kingdom ... genus)" if not fields else "a 'name' field"
        raise _error(source, f"the categories have no {need}; their fields are "
                             f"{_quoted(frame.columns.tolist())}")
    key = _inat_key(frame, keys, classes)
    columns = {INAT_LEVELS[f]: frame[f] for f in fields}
    return GroupMap.from_columns(frame[key].astype(str).tolist(), _told_apart(columns),
                                 source=source)


def _inat_key(frame: pd.DataFrame, keys: list[str], classes: Sequence[str] | None) -> str:
    """The field that names the most of ``classes`` (the first of ``keys`` on a tie)."""
    if classes is None:
        return keys[0]
    wanted = pd.Index([str(c) for c in classes], dtype=object)
    hits = [int(wanted.isin(frame[k].astype(str)).sum()) for k in keys]
    return keys[int(np.argmax(hits))]


def _told_apart(columns: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """Columns (coarse to fine) where a name found under two parents is suffixed with its
    parent: taxonomies reuse names across kingdoms (the genus *Prunella*: a plant, a bird)."""
    out: dict[str, pd.Series] = {}
    parent: pd.Series | None = None
    for level, column in columns.items():
        column = column.astype(object)
        if parent is not None:
            valid = column.notna() & parent.notna()
            n_parents = parent[valid].groupby(column[valid]).nunique()
            shared = column.isin(n_parents.index[n_parents > 1]) & valid
            column = column.where(~shared, column.astype(str) + " (" + parent.astype(str) + ")")
        out[level] = parent = column
    return out
