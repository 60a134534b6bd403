"""A one-minute audit demo on bundled data (``make demo`` runs the main job, ``classgap study``).

Logistic regression on scikit-learn's ``digits``, with weak L2 regularization (C = 1e4) versus
the strength chosen the usual way, by 5-fold cross-validation of *average* accuracy. One fixed,
stratified test split; each seed draws a different training subsample, so each side has several
runs. The two sides are compared per class with ``classgap compare``: which classes move, by how
much, and whether the move is more than seed and test-sample noise.

Run it with ``python -m classgap.demo [--out DIR] [--seeds N]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console

from classgap._richtext import cell
from classgap.audit.api import compare_files
from classgap.audit.compare import Comparison
from classgap.audit.io import write_predictions
from classgap.cli import render
from classgap.data.splits import stratified_split

WEAK_C = 1e4  # ~unregularized: the "no regularization" reference
CV_GRID = np.logspace(-3, 3, 13)  # inverse L2 strengths cross-validated on average accuracy
TRAIN_FRACTION = 0.3  # of the training pool, per seed: small data is where L2 matters
# An example group map for `classgap audit --groups` (written beside the prediction files):
# the digits by the strokes that draw them.
DIGIT_SHAPES = {"0": "loops", "6": "loops", "8": "loops", "9": "loops", "1": "lines",
                "4": "lines", "7": "lines", "2": "curves", "3": "curves", "5": "curves"}


def make_predictions(out: Path, *, seeds: int = 5, console: Console | None = None) -> None:
    """Train both recipes on ``seeds`` training subsamples; write one .npz per run to ``out``,
    and ``digit_groups.csv``, a group map of the digits (``--groups``)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    console = console or Console()
    digits = load_digits()
    x = digits.data / 16.0  # (N, 64) pixel intensities in [0, 1]
    y = digits.target.astype(np.int64)
    classes = [str(c) for c in digits.target_names]
    train_idx, test_idx = stratified_split(y, 0.5, random_state=0)
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        sub = rng.choice(train_idx, size=int(TRAIN_FRACTION * len(train_idx)), replace=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter at the extreme C values
            weak = LogisticRegression(C=WEAK_C, max_iter=10_000).fit(x[sub], y[sub])
            tuned = LogisticRegressionCV(Cs=CV_GRID, cv=5, max_iter=10_000).fit(x[sub], y[sub])
        for name, model in (("weak", weak), ("cv", tuned)):
            write_predictions(
                out / f"{name}_seed{seed}.npz",
                y_true=y[test_idx],
                probs=model.predict_proba(x[test_idx]),
                sample_id=test_idx,
                seed=seed,
                classes=classes,
            )
        console.print(f"  seed {seed}: {len(sub)} training images, "
                      f"cross-validation chose C = {tuned.C_[0]:.3g} (weak: C = {WEAK_C:g})")
    (out / "digit_groups.csv").write_text(
        "class,shape\n" + "".join(f"{c},{DIGIT_SHAPES[c]}\n" for c in classes))


def who_pays(result: Comparison) -> str:
    """One paragraph: the average change, and which classes fell, significantly or not."""
    o = result.overall
    table = result.classes
    fell = table[table["delta"] < 0].sort_values("delta")
    lines = [f"\nAverage accuracy {100 * o['acc_baseline']:.1f}% → {100 * o['acc_candidate']:.1f}% "
             f"({100 * o['delta']:+.1f} points, p = {o['p_value']:.2g})."]
    if fell.empty:
        lines.append("No class fell.")
    else:
        listed = ", ".join(f"{c} ({100 * d:+.1f})" for c, d in zip(fell["class"], fell["delta"],
                                                                  strict=True))
        significant = int((fell["verdict"] == "drop").sum())
        lines.append(f"{len(fell)} class(es) fell: {listed}; {significant} of them significantly "
                     f"(q < {o['alpha']:g}, {o['correction']}).")
    return " ".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classgap.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-out"),
                        help="where the prediction files go (default: demo-out)")
    parser.add_argument("--seeds", type=int, default=5, help="training subsamples per side")
    args = parser.parse_args(argv)
    console = render.make_console()
    console.rule("[bold]classgap demo: who pays for cross-validated L2 regularization?")
    console.print("Logistic regression on digits (8×8), weak L2 vs L2 strength chosen by 5-fold "
                  "cross-validation of average accuracy;\none fixed test split, "
                  f"{args.seeds} training subsamples (seeds) per side.")
    start = time.perf_counter()
    make_predictions(args.out, seeds=args.seeds, console=console)
    weak = [args.out / f"weak_seed{s}.npz" for s in range(args.seeds)]
    tuned = [args.out / f"cv_seed{s}.npz" for s in range(args.seeds)]
    # --out is the user's path: text, never markup (cell), like every data string
    console.print()
    console.print(cell(f"$ classgap compare --baseline {args.out}/weak_seed*.npz "
                       f"--candidate {args.out}/cv_seed*.npz"))
    console.print()
    result = compare_files(weak, tuned, random_state=0)
    for table in render.comparison_tables(result):
        console.print(table)
    console.print()
    console.print(cell(who_pays(result).lstrip("\n")))
    console.print()
    console.print(cell(f"prediction files in {args.out}/ ({time.perf_counter() - start:.1f} s). "
                       f"Try: classgap audit {args.out}/cv_seed*.npz"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
