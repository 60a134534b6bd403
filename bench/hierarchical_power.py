"""Which genera pay, when no single class can be tested: hierarchical tests at iNaturalist
scale (issue 23, "Done when").

A synthetic label space of 10,000 classes with 10 test images each, in a 4-level taxonomy
drawn once (seeded): 5 phyla > 25 orders > 100 families > 400 genera > 10,000 species. Sizes
vary as in real taxonomies: each level splits its parent's children by a Dirichlet(2) draw
(genera of 1 to ~100 species, 25 on average). The baseline gets image i right with
probability ``e_i ~ Beta(0.35, 0.15)`` (mean 70%; the bimodal spread of image difficulty that
makes two models agree on ~86% of images); the candidate is the same model except that on the
classes of 20 *dropped* genera it gets each image right with probability ``e_i x 6/7``: a
10-point drop of every class of those genera. Nothing else changes, so a node (group or
class) is a true null exactly when it holds no dropped class.

Scenarios: ``null`` (no genus drops), ``spread`` (the 20 genera drawn at random among the
400: they fall in different orders, and a coarse group sees a drop diluted by its other
genera), ``clustered`` (20 consecutive genera of the taxonomy: one or two orders, several
whole families). Per simulation, one run a side: each class's discordant counts are drawn
from their multinomial (what the images would give), every node's McNemar score test
(the test :func:`classgap.audit.hierarchical.compare_tree` runs; checked equal on one
materialised simulation) and then each procedure:

* flat per-class BH over the 10,000 classes (``compare_predictions``);
* :func:`hierarchical_test` with ``method`` fdr / fwer / yekutieli on three trees: all levels
  (phylum > order > family > genus > class, 5 depths), genus > class (``levels=["genus"]``),
  genus only (``levels=["genus"], test_classes=False``: flat BH over the genera).

Reported per procedure and scenario: dropped genera found (of 20), dropped classes found,
and the false discovery rate over every node of the tree (false / all discoveries, 0 when
none, averaged over simulations). ``--seed-sims N`` adds N simulations per scenario with 5
runs a side (the crossed seeds x images test): each run adds a seed x class effect
(logit-normal, sd 0.3) to the image probabilities.

Usage: ``python bench/hierarchical_power.py [--sims 200] [--seed-sims 0] [--json out.json]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
from scipy import sparse, special

from classgap.audit import GroupMap, adjust_pvalues, compare_tree, hierarchical_test
from classgap.audit.paired import crossed_test, mcnemar_score_test

K, IMAGES, N_DROPPED, KEEP = 10_000, 10, 20, 6 / 7  # KEEP x 70% = 60%: a 10-point drop
LEVELS = (("phylum", 5), ("order", 25), ("family", 100), ("genus", 400))
BETA = (0.35, 0.15)  # image difficulty: P(right) ~ Beta, mean 0.70
SEED_SD = 0.3  # seed x class effect on the logit, per run
TREES = {  # name: (levels, test_classes)
    "all levels": (("phylum", "order", "family", "genus"), True),
    "genus > class": (("genus",), True),
    "genus only": (("genus",), False),
}
METHODS = ("fdr", "fwer", "yekutieli")
SCENARIOS = ("null", "spread", "clustered")
BY_SIZE = "fdr: genus > class"  # the procedure whose finds are also counted by genus size
SIZE_BINS = (1, 10, 25, 50, 10_000)  # classes in a genus: [1, 10), [10, 25), ...


def taxonomy(rng: np.random.Generator) -> GroupMap:
    """10,000 species in nested groups whose sizes vary (Dirichlet(2) splits)."""
    counts = [K] + [n for _, n in reversed(LEVELS)]  # species, genera, ..., phyla
    parent_codes = []
    for units, groups in itertools.pairwise(counts):
        share = rng.dirichlet(np.full(groups, 2.0))
        sizes = 1 + rng.multinomial(units - groups, share)  # every group non-empty
        parent_codes.append(np.repeat(np.arange(groups), sizes))  # unit -> its group
    codes = [parent_codes[0]]  # genus of each species, then family, ...
    for up in parent_codes[1:]:
        codes.append(up[codes[-1]])
    codes = codes[::-1]  # coarsest first
    names = tuple(tuple(f"{level} {g}" for g in range(n)) for level, n in LEVELS)
    return GroupMap(tuple(f"species {k}" for k in range(K)), tuple(lv for lv, _ in LEVELS),
                    np.stack(codes), names)


def cell_probs() -> tuple[np.ndarray, np.ndarray]:
    """P(A right & B wrong), P(A wrong & B right) of one image: unchanged and dropped."""
    a, b = BETA
    m1 = a / (a + b)
    m2 = m1 * (a + 1) / (a + b + 1)  # E[e^2]
    same = np.array([m1 - m2, m1 - m2])
    dropped = np.array([m1 - KEEP * m2, KEEP * (m1 - m2)])
    return same, dropped


def depth_matrices(gm: GroupMap) -> list[sparse.csr_array]:
    """(K, G) 0/1 membership of the classes in the nodes of each depth (the classes last)."""
    rows = [*gm.codes, np.arange(K)]
    return [sparse.csr_array((np.ones(K), (np.arange(K), r)), shape=(K, int(r.max()) + 1))
            for r in rows]


def tree_parents(gm: GroupMap, levels: tuple[str, ...], test_classes: bool,
                 ) -> tuple[list[int], list[np.ndarray]]:
    """The depths (indices into :func:`depth_matrices`) of a tree and their parent arrays."""
    idx = [gm.level_index(lv) for lv in levels] + ([len(gm.levels)] if test_classes else [])
    rows = [*gm.codes, np.arange(K)]
    parents = []
    for i, d in enumerate(idx):
        parent = np.full(int(rows[d].max()) + 1, -1, dtype=np.int64)
        if i:
            parent[rows[d]] = rows[idx[i - 1]]
        parents.append(parent)
    return idx, parents


def dropped_genera(gm: GroupMap, scenario: str, rng: np.random.Generator) -> np.ndarray:
    n_genera = len(gm.names[-1])
    if scenario == "null":
        return np.zeros(0, dtype=np.int64)
    if scenario == "spread":
        return rng.choice(n_genera, N_DROPPED, replace=False)
    start = rng.integers(0, n_genera - N_DROPPED + 1)  # genera are numbered in tree order
    return np.arange(start, start + N_DROPPED)


def one_run_pvalues(drop: np.ndarray, mats: list[sparse.csr_array],
                    rng: np.random.Generator) -> list[np.ndarray]:
    """Every node's McNemar p-value for one simulation, one run a side."""
    same, dropped = cell_probs()
    pb, pc = np.where(drop[:, None], dropped, same).T  # (K,) each
    b = rng.binomial(IMAGES, pb)
    c = rng.binomial(IMAGES - b, pc / (1 - pb))
    return [mcnemar_score_test(b @ m, c @ m) for m in mats]


def seeds_data(drop: np.ndarray, runs: int, rng: np.random.Generator,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and (runs, N) correctness of each side: images shared, seeds not."""
    y = np.repeat(np.arange(K), IMAGES)
    logit = special.logit(np.clip(rng.beta(*BETA, y.size), 1e-6, 1 - 1e-6))
    sides = []
    for keep in (np.ones(K), np.where(drop, KEEP, 1.0)):
        effect = rng.normal(0, SEED_SD, (runs, K))[:, y]
        sides.append(rng.random((runs, y.size)) < special.expit(logit + effect) * keep[y])
    return y, sides[0], sides[1]


def seeds_pvalues(drop: np.ndarray, gm: GroupMap, runs: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    y, ok_a, ok_b = seeds_data(drop, runs, rng)
    rows = [*gm.codes, np.arange(K)]
    return [crossed_test(r[y], ok_a, ok_b, int(r.max()) + 1)["p_value"] for r in rows]


def check_same_as_compare_tree(gm: GroupMap, mats: list[sparse.csr_array]) -> None:
    """The fast path's p-values are compare_tree's on the images they stand for."""
    drop = np.isin(gm.codes[-1], np.arange(N_DROPPED))
    fast = one_run_pvalues(drop, mats, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    same, dropped = cell_probs()
    pb, pc = np.where(drop[:, None], dropped, same).T
    b = rng.binomial(IMAGES, pb)
    c = rng.binomial(IMAGES - b, pc / (1 - pb))
    y = np.repeat(np.arange(K), IMAGES)
    slot = np.tile(np.arange(IMAGES), K)  # image j of its class: A-only first, then B-only
    wrong = (y + 1) % K
    a_pred = np.where(slot < b[y], y, np.where(slot < (b + c)[y], wrong, y))
    b_pred = np.where(slot < b[y], wrong, np.where(slot < (b + c)[y], y, y))
    tree = compare_tree(y, a_pred, b_pred, gm)
    for d, level in enumerate([*gm.levels, "class"]):
        rows = tree.nodes[tree.nodes["level"] == level]
        names = list(gm.names[d]) if d < len(gm.levels) else list(gm.classes)
        order = rows["node"].map({n: i for i, n in enumerate(names)}).to_numpy()
        got = np.empty(len(names))
        got[order] = rows["p_value"].to_numpy()
        if not np.allclose(got, fast[d], rtol=1e-12, atol=0):
            raise SystemExit(f"fast p-values differ from compare_tree's at {level}")


def score(pvalues: list[np.ndarray], nonnull: list[np.ndarray], trees: dict,
          genus_depth: int, sizes: np.ndarray, alpha: float) -> dict[str, dict]:
    """Discoveries and false discovery proportion of every procedure on one simulation;
    for :data:`BY_SIZE`, the dropped genera and those found per size bin."""
    out: dict[str, dict] = {}
    flat = adjust_pvalues(pvalues[-1]) <= alpha
    out["flat class BH"] = {"genera": np.nan, "classes": int((flat & nonnull[-1]).sum()),
                            "fdp": (flat & ~nonnull[-1]).sum() / max(flat.sum(), 1)}
    for tree, (idx, parents) in trees.items():
        for method in METHODS:
            rejected = hierarchical_test([pvalues[d] for d in idx], parents, alpha=alpha,
                                         method=method)
            r = sum(int(x.sum()) for x in rejected)
            v = sum(int((x & ~nonnull[d]).sum()) for x, d in zip(rejected, idx, strict=True))
            genera = rejected[idx.index(genus_depth)] & nonnull[genus_depth]
            classes = (rejected[-1] & nonnull[-1]).sum() if idx[-1] == len(nonnull) - 1 else 0
            name = f"{method}: {tree}"
            out[name] = {"genera": int(genera.sum()), "classes": int(classes),
                         "fdp": v / max(r, 1)}
            if name == BY_SIZE:
                bins = np.digitize(sizes, SIZE_BINS) - 1
                n_bins = len(SIZE_BINS) - 1
                out["_by_size"] = {
                    "dropped": np.bincount(bins[nonnull[genus_depth]], minlength=n_bins),
                    "found": np.bincount(bins[genera], minlength=n_bins)}
    return out


def run(sims: int, runs: int, gm: GroupMap, alpha: float, seed: int) -> dict[str, dict]:
    mats = depth_matrices(gm)
    trees = {name: tree_parents(gm, lv, tc) for name, (lv, tc) in TREES.items()}
    genus_depth = len(gm.levels) - 1
    sizes = gm.sizes("genus")
    results: dict[str, dict] = {}
    for s_i, scenario in enumerate(SCENARIOS):
        rng = np.random.default_rng([seed, runs, s_i])
        rows: dict[str, list] = {}
        start = time.perf_counter()
        for _ in range(sims):
            genera = dropped_genera(gm, scenario, rng)
            drop = np.isin(gm.codes[-1], genera)
            pv = one_run_pvalues(drop, mats, rng) if runs == 1 else \
                seeds_pvalues(drop, gm, runs, rng)
            nonnull = [(drop.astype(float) @ m) > 0 for m in mats]
            for name, res in score(pv, nonnull, trees, genus_depth, sizes, alpha).items():
                rows.setdefault(name, []).append(res)
        by_size = rows.pop("_by_size")
        results[scenario] = {
            name: {key: float(np.mean([r[key] for r in res])) for key in res[0]}
            for name, res in rows.items()}
        results[scenario]["_by_size"] = {
            key: np.sum([r[key] for r in by_size], axis=0).tolist() for key in by_size[0]}
        results[scenario]["_seconds"] = time.perf_counter() - start
    return results


def table(results: dict[str, dict], sims: int, runs: int) -> str:
    names = [n for n in results["null"] if not n.startswith("_")]
    lines = [f"{runs} run(s) a side, {sims} simulations per scenario",
             "| procedure | null FDR | spread: genera found / 20 | classes found | FDR | "
             "clustered: genera found / 20 | classes found | FDR |",
             "|---|---|---|---|---|---|---|---|"]
    for n in names:
        cells = [f"{results['null'][n]['fdp']:.3f}"]
        for sc in ("spread", "clustered"):
            r = results[sc][n]
            genera = "–" if np.isnan(r["genera"]) else f"{r['genera']:.1f}"
            cells += [genera, f"{r['classes']:.1f}", f"{r['fdp']:.3f}"]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", f"{BY_SIZE}, dropped genera found by size (classes in the genus):",
              "| scenario | " + " | ".join(
                  f"{lo}-{hi - 1}" if hi < K else f"{lo}+"
                  for lo, hi in itertools.pairwise(SIZE_BINS)) + " |",
              "|---|" + "---|" * (len(SIZE_BINS) - 1)]
    for sc in ("spread", "clustered"):
        counts = results[sc]["_by_size"]
        lines.append(f"| {sc} | " + " | ".join(
            f"{f} of {d} ({f / d:.0%})" if d else "–"
            for f, d in zip(counts["found"], counts["dropped"], strict=True)) + " |")
    secs = sum(results[sc]["_seconds"] for sc in SCENARIOS)
    lines.append(f"({secs:.0f} s)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--seed-sims", type=int, default=0,
                        help="simulations per scenario with 5 runs a side (0: skip)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    gm = taxonomy(np.random.default_rng(args.seed))
    sizes = gm.sizes("genus")
    print(f"taxonomy: {', '.join(f'{n} {lv}' for lv, n in LEVELS)}, {K} species; genus "
          f"sizes {sizes.min()}-{sizes.max()} (median {np.median(sizes):.0f})")
    check_same_as_compare_tree(gm, depth_matrices(gm))
    out = {"one_run": run(args.sims, 1, gm, args.alpha, args.seed)}
    print(table(out["one_run"], args.sims, 1))
    if args.seed_sims:
        out["five_runs"] = run(args.seed_sims, 5, gm, args.alpha, args.seed)
        print(table(out["five_runs"], args.seed_sims, 5))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
