"""Which group pays: a study's selected strength against the reference, per group of a class
grouping (a superclass, a genus, "all the shoes"), and the hierarchical verdicts.

A study records its :class:`Grouping` inline in ``study.json`` (so ``classgap report`` needs
nothing but the study directory); :func:`compare_study_groups` runs the audit's paired
per-group comparison (:func:`~classgap.audit.grouped.compare_groups`: every level, the
correction over the groups of a level) and the tree test on it
(:func:`~classgap.audit.hierarchical.tree_comparison`: the top level first, then only inside
the groups found) on the same runs as the per-class comparison, and returns a
:class:`StudyGroups`: tidy tables the report, ``summary.json`` and the CSV files read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from classgap._files import jsonable
from classgap.errors import InputError

if TYPE_CHECKING:
    from classgap.audit.groups import GroupMap

__all__ = ["Grouping", "StudyGroups", "compare_study_groups"]

#: The columns of the comparison tables renamed as the study's per-class table names them.
_RENAME = {"acc_baseline": "acc_reference", "acc_candidate": "acc_selected"}


@dataclass(frozen=True)
class Grouping:
    """A group map and where it came from (a file, ``"fashion-mnist (built in)"``).

    ``to_dict`` is what ``study.json`` holds: ``{"source", "levels", "classes": {class:
    {level: group}}}`` (:meth:`~classgap.audit.groups.GroupMap.to_dict` and its source).
    """

    map: GroupMap
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, **self.map.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str) -> Grouping:
        """Read back :meth:`to_dict`; one error naming ``where`` otherwise."""
        from classgap.audit.groups import GroupMap

        try:
            levels = [str(level) for level in data["levels"]]
            classes = {str(name): row for name, row in data["classes"].items()}
            columns = {level: [row[level] for row in classes.values()] for level in levels}
            source = str(data["source"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{where}: 'groups' is not a readable group map "
                             f"({type(exc).__name__}: {exc})") from None
        return cls(GroupMap.from_columns(list(classes), columns, source=where), source)


@dataclass(frozen=True)
class StudyGroups:
    """The selected strength against the reference, per group, and the tree's verdicts.

    Attributes
    ----------
    source : str
        Where the map came from.
    levels : tuple of str
        The map's levels, coarsest first.
    groups : pd.DataFrame
        One row per (level, group), levels coarsest first and the worst Δ first within a
        level: ``level, group, parent, n_classes, support, acc_reference, acc_selected, delta,
        delta_low, delta_high, p_value, q_value, verdict`` (``"drop"``, ``"gain"``,
        ``"none"``; q over the groups of the level), ``test, b, c, mean_class_delta,
        n_class_drop``. Accuracies pooled over the group's test images, fractions.
    tree : pd.DataFrame
        The hierarchical test's nodes (:class:`~classgap.audit.hierarchical.TreeComparison`):
        ``depth, level, node, parent, n_classes, support, tested, acc_reference,
        acc_selected, delta, delta_low, delta_high, p_value, q_value, rejected, verdict``, the
        classes as the last level (``"class"``).
    classes : pd.DataFrame
        The map: ``class`` and one column per level, in the study's class order.
    method, bound : str
        The tree's procedure and what it guarantees, in words.
    alpha : float
    correction : str
        The correction over the groups of a level.
    """

    source: str
    levels: tuple[str, ...]
    groups: pd.DataFrame
    tree: pd.DataFrame
    classes: pd.DataFrame
    method: str
    bound: str
    alpha: float
    correction: str

    def paying(self) -> pd.DataFrame:
        """The groups that drop significantly at their level, coarsest level first, worst
        first within a level."""
        return self.groups[self.groups["verdict"] == "drop"]

    def level(self, level: str) -> pd.DataFrame:
        """The groups of one level, worst first."""
        return self.groups[self.groups["level"] == level]

    def members(self, level: str, group: str) -> list[str]:
        """The classes of ``group`` at ``level``, in the study's class order."""
        return [str(c) for c in self.classes.loc[self.classes[level] == group, "class"]]

    def found(self) -> pd.DataFrame:
        """The tree's nodes it rejects (found), top level first."""
        return self.tree[self.tree["rejected"].astype(bool)]

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: every group of every level, the tree, the map and its source."""
        return jsonable({"source": self.source, "levels": list(self.levels),
                         "alpha": self.alpha, "correction": self.correction,
                         "tree_method": self.method, "tree_bound": self.bound,
                         "groups": self.groups, "tree": self.tree, "map": self.classes})


def compare_study_groups(y_true: np.ndarray, reference: Sequence[np.ndarray],
                         selected: Sequence[np.ndarray], grouping: Grouping,
                         class_names: Sequence[str], *, alpha: float = 0.05,
                         correction: str = "bh", random_state: int = 0) -> StudyGroups:
    """The selected strength's runs against the reference's, per group and down the tree.

    Parameters
    ----------
    y_true : (N,) int array
        The test labels.
    reference, selected : sequence of (N,) int arrays
        One prediction array per seed of each strength (paired by test image).
    grouping : Grouping
        The map, aligned here to ``class_names`` (a class of the study missing from the map is
        one :class:`InputError` naming it; classes of the map the study lacks are dropped).
    class_names : sequence of str
        The study's K class names, in label order.
    alpha, correction : float, {"bh", "holm", "none"}
        Level of the q-values and the tree; the correction over the groups of a level.
    random_state : int
        Seed of the comparisons' random parts.

    Returns
    -------
    StudyGroups
    """
    from classgap.audit.grouped import compare_groups
    from classgap.audit.hierarchical import tree_comparison

    groups = grouping.map.align(list(class_names))
    k = len(class_names)
    flat = compare_groups(y_true, list(reference), list(selected), groups, n_classes=k,
                          alpha=alpha, correction=correction, random_state=random_state)
    tree = tree_comparison(flat, groups, alpha=alpha)  # on the tests above, not again
    table = flat.groups.rename(columns=_RENAME)
    order = {level: i for i, level in enumerate(groups.levels)}
    table = (table.assign(_level=table["level"].map(order))
             .sort_values(["_level", "delta"], kind="stable", na_position="last")
             .drop(columns="_level").reset_index(drop=True))
    return StudyGroups(source=grouping.source, levels=tuple(groups.levels), groups=table,
                       tree=tree.nodes.rename(columns=_RENAME).reset_index(drop=True),
                       classes=groups.to_frame(),
                       method=str(tree.method), bound=str(tree.bound), alpha=float(alpha),
                       correction=correction)
