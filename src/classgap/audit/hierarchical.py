"""Hierarchical tests over a taxonomy: the top level first, then only inside what was found.

At 10 test images a class no per-class test sees a 10-point drop, but a genus of 25 classes
has 250 images. :func:`compare_tree` tests the groups of the coarsest chosen level, then the
sub-groups of the groups it found, and so on down to the classes, each node with the same
paired test as a class (its test labels mapped to the node's group: the tests of
:func:`~classgap.audit.grouped.compare_groups`). :func:`hierarchical_test` is the
multiple-testing core on p-values alone.

A *family* is a set of siblings: the nodes of the top level, or the children of one node. A
family is tested only when its parent node was rejected. Three ways to test a family
(``method``):

``"fdr"`` (default): Benjamini-Hochberg within each family, at a level that splits alpha
    over the whole tree: family F at depth d is tested at ``alpha |F| / (D M_d)``, with ``D``
    the number of depths and ``M_d`` the nodes at depth d (those with a p-value). The levels
    of all the families of the tree add up to alpha. **Guarantee**: the false discovery rate
    over the whole tree (every rejected node of every depth together) is at most alpha when
    the p-values *within each family* are independent or positively dependent (PRDS) and
    valid. Nothing is assumed between a node's test and its parent's, or between families:
    the images of a class are part of its genus's test, and that is allowed. Proof: the
    false discovery proportion of the tree is at most the sum over families of their own
    (``V/R <= sum_F V_F / R_F``); a family's rejections, when it is tested, are those of BH on
    its own p-values at a fixed level, so ``E[V_F / R_F]`` is at most that level whether or
    not the family is reached (Benjamini & Hochberg 1995; Benjamini & Yekutieli 2001 for
    PRDS); the levels add up to alpha. With one run a side the siblings are disjoint groups
    of test images, hence independent given the two models. With several runs a side every
    test shares the runs' seed noise: positive dependence is plausible but not proven.
``"fwer"``: Meinshausen's (2008) hierarchical procedure, the base of the inheritance
    procedure of Goeman & Finos (2012): a node is rejected when its parent was and
    ``p <= alpha L_v / L`` (``L_v`` leaves under it, ``L`` in the tree). **Guarantee**: the
    family-wise error rate over the whole tree (hence its FDR) is at most alpha under *any*
    dependence, several runs a side included: a false rejection lies under (or is) a true
    null whose ancestors are all false nulls; such nodes never nest, so their leaf shares add
    up to at most 1 and a union bound applies. (The inheritance procedure passes on the
    alpha of fully rejected branches: with 10 images a class the leaves are rarely rejected,
    where it would help, so it is not implemented.)
``"yekutieli"``: BH at alpha in every tested family (Yekutieli 2008). The most powerful, but
    its full-tree bound (FDR <= 2 x 1.44 x alpha) assumes independent p-values across the
    tree, which shared images break (a genus of one species has its species' p-value); for
    p-values of your own that are independent across the tree. ``bench/hierarchical_power.py``
    measures all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from classgap._files import jsonable
from classgap._validation import check_choice, check_in_range, fail
from classgap.audit.grouped import GroupComparison, compare_groups
from classgap.audit.groups import GroupMap

__all__ = ["METHODS", "TreeComparison", "compare_tree", "hierarchical_test", "tree_comparison"]

METHODS = ("fdr", "fwer", "yekutieli")
CLASS_LEVEL = "class"  # the name of the leaf depth in the node table
NODE_COLUMNS = ("depth", "level", "node", "parent", "n_classes", "support", "tested",
                "acc_baseline", "acc_candidate", "delta", "delta_low", "delta_high",
                "p_value", "q_value", "rejected", "verdict")


# ------------------------------------------------------------------ the multiple testing
def _check_tree(pvalues: Any, parents: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if isinstance(pvalues, np.ndarray) or not isinstance(pvalues, Sequence) or not pvalues:
        raise fail("pvalues", "be a non-empty sequence of 1-D arrays, one per depth",
                   type(pvalues).__name__)
    if not isinstance(parents, Sequence) or len(parents) != len(pvalues):
        raise fail("parents", f"be a sequence of one array per depth ({len(pvalues)})",
                   len(parents) if isinstance(parents, Sequence) else type(parents).__name__)
    ps: list[np.ndarray] = []
    pa: list[np.ndarray] = []
    for d, (p, parent) in enumerate(zip(pvalues, parents, strict=True)):
        p = np.asarray(p, dtype=np.float64)
        if p.ndim != 1:
            raise fail(f"pvalues[{d}]", "be 1-D", f"shape {p.shape}")
        bad = np.isinf(p) | (p < 0) | (p > 1)
        if bad.any():
            raise fail(f"pvalues[{d}]", "hold p-values in [0, 1] (or NaN)", float(p[bad][0]))
        parent = np.asarray(parent)
        if parent.shape != p.shape or parent.dtype.kind not in "iu":
            raise fail(f"parents[{d}]", f"be integers, one per node ({p.size})",
                       f"{parent.dtype} of shape {parent.shape}")
        parent = parent.astype(np.int64)
        top = len(ps[-1]) if d else 0
        lo, hi = (-1, -1) if d == 0 else (0, top - 1)
        if parent.size and (parent.min() < lo or parent.max() > hi):
            want = "be -1 (the top depth has no parent)" if d == 0 else \
                f"index the {top} nodes of depth {d - 1}"
            raise fail(f"parents[{d}]", want, int(parent[(parent < lo) | (parent > hi)][0]))
        ps.append(p)
        pa.append(parent)
    return ps, pa


def _bh_by_family(p: np.ndarray, family: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values computed within each family, all families at once.

    ``q_(i) = min_{j >= i} p_(j) m / j`` over the ``m`` members of a family sorted by p:
    equal to ``adjust_pvalues(p[family == f])`` for each family ``f``.
    """
    order = np.lexsort((p, family))
    ps, fs = p[order], family[order]
    by_family = pd.Series(fs).groupby(fs)
    rank = by_family.cumcount().to_numpy() + 1
    size = by_family.transform("size").to_numpy()
    adj = np.minimum(ps * size / rank, 1.0)
    # the running minimum from each family's largest p-value down
    running = pd.Series(adj[::-1]).groupby(fs[::-1]).cummin().to_numpy()[::-1]
    out = np.empty_like(p)
    out[order] = running
    return out


def _leaf_share(parents: list[np.ndarray]) -> list[np.ndarray]:
    """Per depth, each node's share of the tree's leaves (nodes without children)."""
    counts = [np.ones(len(parents[-1]))]
    for d in range(len(parents) - 2, -1, -1):
        below = np.bincount(parents[d + 1], weights=counts[0], minlength=len(parents[d]))
        has_children = np.bincount(parents[d + 1], minlength=len(parents[d])) > 0
        counts.insert(0, np.where(has_children, below, 1.0))
    return [c / counts[0].sum() for c in counts]


def _tree_adjust(pvalues: list[np.ndarray], parents: list[np.ndarray], alpha: float,
                 method: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per depth: each node's adjusted p-value (``q``; rejected iff ``q <= alpha``; NaN when
    its family was not tested or it has no p-value) and whether its family was tested."""
    depths = len(pvalues)
    share = _leaf_share(parents) if method == "fwer" else None
    adjusted: list[np.ndarray] = []
    tested: list[np.ndarray] = []
    for d, (p, parent) in enumerate(zip(pvalues, parents, strict=True)):
        reached = np.ones(p.size, bool) if d == 0 else adjusted[-1][parent] <= alpha
        live = reached & ~np.isnan(p)
        q = np.full(p.size, np.nan)
        if share is not None:
            q[live] = np.minimum(p[live] / share[d][live], 1.0)
        elif live.any():
            family = np.maximum(parent[live], 0)
            q[live] = _bh_by_family(p[live], family)
            if method == "fdr":
                # family F at level alpha |F| / (D M_d): q scales by D M_d / |F|
                size = np.bincount(family)[family]
                q[live] = np.minimum(q[live] * depths * np.count_nonzero(~np.isnan(p)) / size,
                                     1.0)
        adjusted.append(q)
        tested.append(reached)
    return adjusted, tested


def hierarchical_test(pvalues: Sequence[Any], parents: Sequence[Any], *, alpha: float = 0.05,
                      method: str = "fdr") -> list[np.ndarray]:
    """Which nodes of a tree of hypotheses are rejected, testing from the top down.

    Depth 0 is tested first; a node at depth d + 1 is tested only when its parent was
    rejected, within the family of its siblings (module docstring: what each ``method``
    controls, under which assumption, and how alpha is split).

    Parameters
    ----------
    pvalues : sequence of arrays of float, one (M_d,) array per depth
        p-values in [0, 1]; NaN for an untestable node (never rejected, left out of the
        counts).
    parents : sequence of arrays of int, one (M_d,) array per depth
        ``parents[d][i]``: the index of node i's parent among the nodes of depth d - 1;
        ``parents[0]`` is all -1 (``GroupMap.parents`` of the coarsest level).
    alpha : float in (0, 1)
    method : {"fdr", "fwer", "yekutieli"}

    Returns
    -------
    list of ndarray of bool, one (M_d,) array per depth

    Examples
    --------
    Two groups; the first is found, then one of its two classes:

    >>> rejected = hierarchical_test([[0.001, 0.6], [0.004, 0.3, 0.9]], [[-1, -1], [0, 0, 1]],
    ...                              alpha=0.05)
    >>> [r.tolist() for r in rejected]
    [[True, False], [True, False, False]]
    """
    alpha = float(check_in_range(alpha, "alpha", 0, 1, inclusive=(False, False)))
    method = check_choice(method, "method", METHODS)
    ps, pa = _check_tree(pvalues, parents)
    adjusted, _ = _tree_adjust(ps, pa, alpha, method)
    return [q <= alpha for q in adjusted]


def _bound_text(method: str, alpha: float, depths: int, several_runs: bool) -> str:
    """What ``method`` guarantees over a tree of ``depths`` depths, in words."""
    if method == "fwer":
        return (f"family-wise error rate over the whole tree <= {alpha:g}, under any "
                "dependence between the tests (Meinshausen 2008)")
    if method == "yekutieli":
        return (f"none proven for these tests: BH at {alpha:g} in every family (Yekutieli "
                "2008) bounds the full-tree FDR by 2 x 1.44 x alpha only for tests independent "
                "across the tree, and a node's images are its parent's too")
    runs = ("several runs a side: siblings share the runs' seed noise, positive dependence "
            "assumed") if several_runs else \
        "one run a side: siblings are disjoint test images, independent given the models"
    return (f"false discovery rate over the whole tree <= {alpha:g}: BH within each family "
            f"at {alpha:g} x family size / ({depths} depths x nodes at its depth); valid when "
            f"the tests within a family are independent or positively dependent ({runs})")


# ------------------------------------------------------------------------- compare_tree
@dataclass(frozen=True)
class TreeComparison:
    """Result of :func:`compare_tree`: every node of the tree, tested or not.

    Attributes
    ----------
    nodes : DataFrame
        One row per node, depth by depth (coarsest first), the largest drop first within a
        depth; columns ``depth, level, node, parent, n_classes, support, tested,
        acc_baseline, acc_candidate, delta, delta_low, delta_high, p_value, q_value,
        rejected, verdict``. ``level`` is the map's level name, ``"class"`` for the classes;
        ``tested``: its parent was rejected (always at depth 0); ``p_value`` and the
        interval come from the node's own paired test (computed for every node, tested or
        not); ``q_value`` is its adjusted p-value within its family on the scale of alpha
        (NaN when not tested): ``rejected`` is ``q_value <= alpha``; ``verdict`` is
        ``"drop"`` / ``"gain"`` for a rejected node (by the sign of ``delta``), else
        ``"none"``.
    method, alpha, bound
        The procedure, its level and what it guarantees, in words.
    test : str
        The paired test of every node: ``"mcnemar"``, ``"crossed"``, ...
    """

    nodes: pd.DataFrame
    method: str
    alpha: float
    bound: str
    test: str

    def found(self, level: str | None = None) -> pd.DataFrame:
        """The rejected nodes (of ``level`` only, when given), depth by depth, largest drop
        first."""
        table = self.nodes[self.nodes["rejected"]]
        if level is not None:
            level = check_choice(level, "level", list(dict.fromkeys(self.nodes["level"])))
            table = table[table["level"] == level]
        return table

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``method, alpha, bound, test`` and the ``nodes`` records."""
        return {"method": self.method, "alpha": self.alpha, "bound": self.bound,
                "test": self.test, "nodes": jsonable(self.nodes)}


def _tree_levels(groups: GroupMap, levels: Sequence[str | int] | None) -> list[int]:
    """Indices of the chosen levels of the map, coarse to fine."""
    if levels is None:
        return list(range(len(groups.levels)))
    if isinstance(levels, str) or not isinstance(levels, Sequence) or not levels:
        raise fail("levels", "be a non-empty sequence of level names of the group map",
                   levels)
    index = [groups.level_index(level) for level in levels]
    if len(set(index)) != len(index) or index != sorted(index):
        raise fail("levels", "name distinct levels, coarsest first (the map's order is "
                   f"{', '.join(map(repr, groups.levels))})", list(levels))
    return index


def compare_tree(y_true: Any, preds_a: Any, preds_b: Any, groups: GroupMap, *,
                 levels: Sequence[str | int] | None = None, test_classes: bool = True,
                 alpha: float = 0.05, method: str = "fdr", test: str = "auto",
                 confidence: float | None = None,
                 random_state: int | np.random.Generator | None = None) -> TreeComparison:
    """Compare a baseline and a candidate down a taxonomy: which branch of the tree pays.

    The groups of the coarsest chosen level are tested first, then the sub-groups (at the
    next chosen level) of the groups found, and so on down to the classes inside the groups
    found at the finest level (:func:`hierarchical_test`; the module docstring says what
    each ``method`` guarantees). Every node's p-value and interval are those of
    :func:`~classgap.audit.grouped.compare_groups` (a class's: of
    :func:`~classgap.audit.compare.compare_predictions`): the per-class test with each test
    label replaced by its group, McNemar's score test and the interval that inverts it for
    one run a side, the crossed seeds x images test for several. With that comparison at
    hand, :func:`tree_comparison` runs the tree on it without computing it again.

    Parameters
    ----------
    y_true : array, shape (N,)
        Class indices into ``groups.classes``, or class names.
    preds_a, preds_b : array (N,) or sequence of arrays / (S, N) array
        Baseline and candidate predictions, one array per run, as ``y_true``.
    groups : GroupMap
        Aligned to the classes (:meth:`GroupMap.align`).
    levels : sequence of level names, optional
        The levels that form the tree, coarsest first; default every level of the map.
        Fewer levels mean fewer depths to split alpha over and no dilution of a drop in a
        large coarse group (``levels=["genus"]`` tests every genus first).
    test_classes : bool
        Test the classes inside the groups found at the finest level (the last depth);
        False stops at the finest chosen level and gives its depth share to the groups.
    alpha : float in (0, 1)
    method : {"fdr", "fwer", "yekutieli"}
    test : {"auto", "crossed", "mcnemar", "welch", "permutation"}
        As ``compare_predictions``: ``"auto"`` is ``"crossed"`` with >= 2 runs a side, else
        ``"mcnemar"``.
    confidence : float, optional
        Level of the intervals; default ``1 - alpha``.
    random_state
        Seed of the permutation test (the others are analytic).

    Returns
    -------
    TreeComparison

    Examples
    --------
    >>> gm = GroupMap.from_columns([f"c{k}" for k in range(40)],
    ...                            {"genus": [f"g{k // 10}" for k in range(40)]})
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(40), 30)
    >>> a = np.where(rng.random(y.size) < 0.8, y, (y + 1) % 40)
    >>> b = np.where((y < 10) & (rng.random(y.size) < 0.3), (y + 1) % 40, a)
    >>> tree = compare_tree(y, a, b, gm)
    >>> tree.found("genus")[["node", "delta", "verdict"]].round(2).values.tolist()
    [['g0', -0.23, 'drop']]
    """
    alpha, method, chosen = _check_options(groups, levels, alpha, method)
    flat = compare_groups(y_true, preds_a, preds_b, groups, alpha=alpha, test=test,
                          confidence=confidence, random_state=random_state)
    return _tree(flat, groups, chosen, test_classes, alpha, method)


def tree_comparison(comparison: GroupComparison, groups: GroupMap, *,
                    levels: Sequence[str | int] | None = None, test_classes: bool = True,
                    alpha: float = 0.05, method: str = "fdr") -> TreeComparison:
    """The hierarchical test of :func:`compare_tree` on a comparison already computed.

    Parameters
    ----------
    comparison : GroupComparison
        :func:`~classgap.audit.grouped.compare_groups` of the two sides with ``groups``.
    groups, levels, test_classes, alpha, method
        As :func:`compare_tree`.

    Returns
    -------
    TreeComparison
    """
    alpha, method, chosen = _check_options(groups, levels, alpha, method)
    if not isinstance(comparison, GroupComparison) or \
            list(comparison.classes["class"]) != list(groups.classes):
        raise fail("comparison", "be compare_groups' result for the classes of 'groups'",
                   type(comparison).__name__)
    return _tree(comparison, groups, chosen, test_classes, alpha, method)


def _check_options(groups: Any, levels: Any, alpha: Any, method: Any,
                   ) -> tuple[float, str, list[int]]:
    if not isinstance(groups, GroupMap):
        raise fail("groups", "be a GroupMap (read_group_map, GroupMap.from_columns)",
                   type(groups).__name__)
    alpha = float(check_in_range(alpha, "alpha", 0, 1, inclusive=(False, False)))
    return alpha, check_choice(method, "method", METHODS), _tree_levels(groups, levels)


def _tree(flat: GroupComparison, groups: GroupMap, chosen: list[int], test_classes: bool,
          alpha: float, method: str) -> TreeComparison:
    """Run the tree on the nodes' tests and lay every node out as a row."""
    # depth by depth: (level name, node names, parent index, class -> node, node statistics)
    depths = []
    for i, lvl in enumerate(chosen):
        codes, level = groups.codes[lvl], groups.levels[lvl]
        parent = np.full(len(groups.names[lvl]), -1, dtype=np.int64)
        if i:
            parent[codes] = groups.codes[chosen[i - 1]]
        rows = flat.groups[flat.groups["level"] == level].set_index("group")
        depths.append((level, groups.names[lvl], parent, codes,
                       rows.loc[list(groups.names[lvl])]))
    if test_classes:
        depths.append((CLASS_LEVEL, groups.classes, groups.codes[chosen[-1]].copy(),
                       np.arange(groups.n_classes), flat.classes.set_index("class")))
    parents = [parent for _, _, parent, _, _ in depths]
    adjusted, tested = _tree_adjust([st["p_value"].to_numpy(dtype=np.float64)
                                     for *_, st in depths], parents, alpha, method)
    frames = []
    for d, (level, names, parent, codes, st) in enumerate(depths):
        above = np.asarray(depths[d - 1][1], dtype=object)[parent] if d else \
            [None] * len(names)
        rejected = adjusted[d] <= alpha
        delta = st["delta"].to_numpy(dtype=np.float64)
        frames.append(pd.DataFrame({
            "depth": d, "level": level, "node": pd.Series(names, dtype=object),
            "parent": pd.Series(above, dtype=object),
            "n_classes": np.bincount(codes, minlength=len(names)),
            **{key: st[key].to_numpy() for key in ("support", "acc_baseline", "acc_candidate",
                                                   "delta", "delta_low", "delta_high",
                                                   "p_value")},
            "tested": tested[d], "q_value": adjusted[d], "rejected": rejected,
            "verdict": pd.Series(np.where(rejected & (delta < 0), "drop",
                                          np.where(rejected & (delta > 0), "gain", "none")),
                                 dtype=object),
        }, columns=list(NODE_COLUMNS)).sort_values("delta", kind="stable",
                                                   na_position="last"))
    overall = flat.overall
    several = min(overall["n_runs_baseline"], overall["n_runs_candidate"]) >= 2
    return TreeComparison(nodes=pd.concat(frames, ignore_index=True), method=method,
                          alpha=alpha, bound=_bound_text(method, alpha, len(depths), several),
                          test=str(overall["test"]))
