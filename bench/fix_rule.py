"""The post-hoc constrained rule (issue 21, parts 1-2) on a default study's own runs.

Fits ``classgap fix`` on the selected strength's validation files against the reference's
(ε = 0), applies it to the test files, and audits the adjusted test predictions with the
study's test (``compare_files``: crossed seeds × test images, BH) against the reference and the
selected strength. The test set is touched only by the audit.

Usage: ``python bench/fix_rule.py STUDY_DIR [--selected 0.3] [--z 0,0.5,1,2]
[--tolerance 0]``; STUDY_DIR from ``classgap study --out STUDY_DIR`` (the default study).
Another study's axis: ``--axis aug.mixup --selected summary`` (the strength the study selected,
read from its ``summary.json``); ``--ensemble`` adds the two-model ensemble (the mean of the
reference's and the selected run's probabilities, same seed; 2x inference).
``--rule-file RULE.json`` audits a rule fit elsewhere (e.g. another seed set's study's
``fix_rule.json``) on this study's test runs: a rule shown on seeds it was not tuned on.
``--folds 2,3,4,6`` prints the study's cross-fitted rule (``fix_frontier``: each fold's test
runs adjusted by the rule fit on the other folds' validation runs) at each fold count, for the
tolerance and the first ``--z``.
``--test-halves 0,0.5,1`` is a diagnostic, not a fix: the rule (z = 0) fit on half of the
*test* images (stratified by class) and audited on the other half, at each tolerance, to tell
a misleading validation split from a target that no reweighting of the model reaches.
The same as the CLI, for one setting::

    classgap fix fit --reference REF/*/val.npz --candidate SEL/*/val.npz --z 1 --out rule.json
    classgap compare -b REF/*/test.npz -c SEL/*/test.npz --rule rule.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from classgap.analysis import fixes
from classgap.audit import Comparison, Predictions, compare_predictions
from classgap.audit.api import compare_files
from classgap.audit.io import read_predictions
from classgap.errors import InputError
from classgap.fix import (
    DecisionRule,
    InfeasibleRuleError,
    apply_rule,
    fit_rule,
    fit_rule_files,
    load_rule,
)
from classgap.fix.solver import softmax

TARGET_CLASS_PTS = -0.5  # every class's point estimate vs the reference at least this
TARGET_MEAN_PTS = -0.3  # the mean vs the selected strength at least this


def runs_by_strength(study: Path, axis: str = "optim.label_smoothing"
                     ) -> dict[float, list[Path]]:
    """Run directories of the swept strengths of ``axis`` (the refit runs, whose strength
    is a per-class list, and the reweighting runs, ``loss.reweight`` set, left out), sorted
    by seed."""
    section, key = axis.split(".")
    found: dict[float, list[tuple[int, Path]]] = {}
    for cfg in sorted(study.glob("runs/*/config.json")):
        c = json.loads(cfg.read_text())
        eps = c[section][key]
        if (c.get("loss") or {}).get("reweight"):  # a reweighting fix's run, not the sweep's
            continue
        if isinstance(eps, float | int) and (cfg.parent / "val.npz").exists():
            found.setdefault(float(eps), []).append((int(c["train"]["seed"]), cfg.parent))
    return {e: [d for _, d in sorted(v)] for e, v in found.items()}


def summary(comp: Comparison) -> dict[str, Any]:
    """Mean Δ, worst class Δ and the classes significantly below (points)."""
    table = comp.classes
    deltas = 100 * table["delta"].to_numpy()
    worst = int(np.argmin(deltas))
    below = [str(c) for c, v in zip(table["class"], table["verdict"], strict=True)
             if v == "drop"]
    overall = comp.to_dict()["overall"]
    return {"mean": 100 * overall["delta"], "worst": (str(table["class"].iloc[worst]),
                                                      deltas[worst],
                                                      float(table["q_value"].iloc[worst])),
            "below": below}


def probabilities(run: Predictions) -> np.ndarray:
    """(N, K) probabilities of a run with scores (softmax of logits)."""
    if run.scores is None:
        raise SystemExit(f"error: {run.source} has no scores; the ensemble needs them")
    return softmax(run.scores) if run.score_kind == "logits" else np.asarray(run.scores)


def two_model_ensemble(reference: list[Path]) -> Any:
    """An ``adjust`` for ``compare_files``: each selected run becomes the library's
    :func:`~classgap.analysis.fixes.two_model_ensemble` with the same seed's reference run (the
    mean of the two models' probabilities, as ``classgap study --ensemble`` reports it)."""
    runs = [read_predictions(path) for path in reference]

    def adjust(run: Predictions) -> Predictions:
        try:
            return fixes.two_model_ensemble(runs, [run])[0]
        except InputError as exc:
            raise SystemExit(f"error: {exc}") from None
    return adjust


def fit_on_test_halves(ref_test: list[Path], sel_test: list[Path], tolerance: float,
                seed: int = 0) -> list[str]:
    """Diagnostic rows: the rule (z = 0) fit on one class-stratified half of the test images
    (both sides' runs) and audited on the other half, each way round."""
    ref = [read_predictions(p) for p in ref_test]
    sel = [read_predictions(p) for p in sel_test]
    y = ref[0].y_true
    first = np.zeros(y.size, dtype=bool)
    rng = np.random.default_rng(seed)
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        first[idx[: idx.size // 2]] = True

    def part(run: Predictions, mask: np.ndarray) -> Predictions:
        ids = None if run.sample_id is None else run.sample_id[mask]
        return Predictions.from_arrays(run.y_true[mask], probs=probabilities(run)[mask],
                                       sample_id=ids, seed=run.seed, classes=run.classes,
                                       source=run.source)

    rows = []
    for name, fit_on in (("first", first), ("second", ~first)):
        audit_on = ~fit_on
        try:
            rule = fit_rule([part(r, fit_on) for r in ref], [part(r, fit_on) for r in sel],
                            tolerance=tolerance, z=0.0)
        except InfeasibleRuleError as exc:
            rows.append(f"| fit on the {name} test half, tolerance {tolerance:g} | infeasible "
                        f"in-sample: {exc} |")
            continue
        base = [part(r, audit_on).y_pred for r in ref]
        cand = [part(r, audit_on).y_pred for r in sel]
        fixed = [apply_rule(rule, part(r, audit_on)).y_pred for r in sel]
        names = list(ref[0].classes) if ref[0].classes else None
        k = int(y.max()) + 1
        vs_ref = summary(compare_predictions(y[audit_on], base, fixed, k, class_names=names))
        vs_sel = summary(compare_predictions(y[audit_on], cand, fixed, k, class_names=names))
        unfixed = summary(compare_predictions(y[audit_on], base, cand, k, class_names=names))
        rows.append(f"| fit on the {name} test half, tolerance {tolerance:g} | unfixed worst "
                    f"{unfixed['worst'][0]} {unfixed['worst'][1]:+.2f} | "
                    f"{vs_sel['mean']:+.2f} | {vs_ref['mean']:+.2f} | {vs_ref['worst'][0]} "
                    f"{vs_ref['worst'][1]:+.2f} (q = {vs_ref['worst'][2]:.2g}) | "
                    f"{', '.join(vs_ref['below']) or 'none'} |")
    return rows


def seeded(runs: list[Path], split: str) -> list[Predictions]:
    """The runs' ``split`` predictions with the seed of their ``config.json``."""
    from dataclasses import replace

    return [replace(read_predictions(d / f"{split}.npz"),
                    seed=int(json.loads((d / "config.json").read_text())["train"]["seed"]))
            for d in runs]


def cross_fit_rows(ref: list[Path], sel: list[Path], folds: list[int], tolerance: float,
                   z: float) -> list[str]:
    """The study's frontier row of the cross-fitted rule at each fold count (markdown)."""
    from classgap.analysis.fixes import fix_frontier

    rv, rt, sv, st = (seeded(ref, "val"), seeded(ref, "test"), seeded(sel, "val"),
                      seeded(sel, "test"))
    out = []
    for n in folds:
        rows, _, notes = fix_frontier(reference_val=rv, reference_test=rt, selected_val=sv,
                                      selected_test=st, settings=((tolerance, z),), n_folds=n)
        r = rows[-1]
        if r.get("error") or r["kind"] != "rule":
            out.append(f"| {n} folds | {r.get('error') or '; '.join(notes)} |")
            continue
        w = r["worst_class"]
        out.append(f"| {n} folds (tolerance {tolerance:g}, z = {z:g}) | "
                   f"{r['mean_vs_selected']['delta']:+.2f} | {w['class']} {w['delta']:+.2f} "
                   f"(q = {w['q_value']:.2g}) | {', '.join(r['below_reference']) or 'none'} | "
                   f"{'yes' if r['target_met'] else 'no'} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--selected", default="0.3",
                        help="the selected strength, or 'summary' for the study's own choice")
    parser.add_argument("--axis", default="optim.label_smoothing",
                        help="the study's axis (section.key of the run config)")
    parser.add_argument("--ensemble", action="store_true",
                        help="also audit the two-model ensemble (reference + selected, 2x "
                             "inference)")
    parser.add_argument("--rule-file", type=Path, action="append", default=[],
                        help="audit this rule file (fit elsewhere) on the study's test runs; "
                             "repeatable")
    parser.add_argument("--z", default="0,0.5,1,2")
    parser.add_argument("--tolerance", type=float, default=0.0)
    parser.add_argument("--objective", default="mean")
    parser.add_argument("--polish", action="store_true",
                        help="coordinate ascent on the validation objective after the dual")
    parser.add_argument("--folds", default="",
                        help="the study's cross-fitted rule at these fold counts, e.g. 2,3,4")
    parser.add_argument("--test-halves", default="",
                        help="diagnostic: tolerances at which to fit on half of the test "
                             "images and audit on the other half")
    args = parser.parse_args()
    if args.selected == "summary":
        args.selected = float(json.loads((args.study / "summary.json").read_text())["selected"])
    else:
        args.selected = float(args.selected)
    runs = runs_by_strength(args.study, args.axis)
    ref, sel = runs[0.0], runs[args.selected]
    ref_test = [d / "test.npz" for d in ref]
    sel_test = [d / "test.npz" for d in sel]
    base_ref = summary(compare_files(ref_test, sel_test))
    print(f"{args.study}: {len(ref)} reference and {len(sel)} selected runs ({args.axis} = "
          f"{args.selected:g})")
    print("| rule | val mean before → after | val worst vs ref | mean vs selected | "
          "mean vs reference | worst class vs reference (q) | significantly below | "
          "target met | fit s |")
    print("|---|---|---|---|---|---|---|---|---|")
    name = "ε" if args.axis == "optim.label_smoothing" else args.axis.split(".")[1]
    print(f"| selected {name} = {args.selected:g} | | | 0 | {base_ref['mean']:+.2f} | "
          f"{base_ref['worst'][0]} {base_ref['worst'][1]:+.2f} (q = {base_ref['worst'][2]:.2g})"
          f" | {', '.join(base_ref['below']) or 'none'} | no | |")
    def audited_row(label: str, adjust: Any) -> str:
        """A row for an adjustment of the selected test runs that nothing here fits."""
        vs_ref = summary(compare_files(ref_test, sel_test, adjust=adjust))
        vs_sel = summary(compare_files(sel_test, sel_test, adjust=adjust))
        met = (not vs_ref["below"] and vs_ref["worst"][1] >= TARGET_CLASS_PTS
               and vs_sel["mean"] >= TARGET_MEAN_PTS)
        return (f"| {label} | | | {vs_sel['mean']:+.2f} | {vs_ref['mean']:+.2f} | "
                f"{vs_ref['worst'][0]} {vs_ref['worst'][1]:+.2f} (q = {vs_ref['worst'][2]:.2g})"
                f" | {', '.join(vs_ref['below']) or 'none'} | {'yes' if met else 'no'} | |")

    if args.ensemble:
        print(audited_row("two-model ensemble (2x inference)", two_model_ensemble(ref_test)))
    for path in args.rule_file:
        given = load_rule(path)

        def adjust_given(run: Predictions, rule: DecisionRule = given) -> Predictions:
            return apply_rule(rule, run)

        print(audited_row(f"rule file {path} (tolerance {given.tolerance:g})", adjust_given))
    for z in (float(v) for v in args.z.split(",") if v):
        start = time.perf_counter()
        try:
            rule = fit_rule_files([d / "val.npz" for d in ref], [d / "val.npz" for d in sel],
                                  tolerance=args.tolerance, objective=args.objective, z=z,
                                  polish=args.polish)
        except InfeasibleRuleError as exc:
            print(f"| z = {z:g} | infeasible: {exc} |")
            continue
        seconds = time.perf_counter() - start

        def adjust(run: Predictions, rule: DecisionRule = rule) -> Predictions:
            return apply_rule(rule, run)

        vs_ref = summary(compare_files(ref_test, sel_test, adjust=adjust))
        vs_sel = summary(compare_files(sel_test, sel_test, adjust=adjust))
        v = rule.validation
        met = (not vs_ref["below"] and vs_ref["worst"][1] >= TARGET_CLASS_PTS
               and vs_sel["mean"] >= TARGET_MEAN_PTS)
        print(f"| dual rule{' + polish' if args.polish else ''}, {args.objective}, "
              f"tolerance {args.tolerance:g}, z = {z:g} (met: "
              f"{rule.validation['noise_margin_z_used']:.3g}) | "
              f"{v['objective_before']:.2f} → {v['objective_after']:.2f} | "
              f"{v['worst_after_minus_reference']:+.2f} | {vs_sel['mean']:+.2f} | "
              f"{vs_ref['mean']:+.2f} | {vs_ref['worst'][0]} {vs_ref['worst'][1]:+.2f} "
              f"(q = {vs_ref['worst'][2]:.2g}) | {', '.join(vs_ref['below']) or 'none'} | "
              f"{'yes' if met else 'no'} | {seconds:.1f} |")

    if args.folds:
        z0 = float((args.z.split(",") or ["0.5"])[0] or 0.5)
        print("\nThe study's cross-fit (fix_frontier) at each fold count")
        print("| cross-fit | mean vs selected | worst class vs reference (q) | "
              "significantly below | target met |")
        print("|---|---|---|---|---|")
        print("\n".join(cross_fit_rows(ref, sel, [int(v) for v in args.folds.split(",")],
                                      args.tolerance, z0)))

    if args.test_halves:
        print("\nDiagnostic (fit on test images, not a fix): the rule fit on one half of the "
              "test images, audited on the other half")
        print("| fit | before the rule | mean vs selected | mean vs reference | "
              "worst class vs reference (q) | significantly below |")
        print("|---|---|---|---|---|---|")
        for tol in (float(v) for v in args.test_halves.split(",")):
            print("\n".join(fit_on_test_halves(ref_test, sel_test, tol)))


if __name__ == "__main__":
    main()
