"""Regime search for the default study: which recipe and axis show a class paying, measurably?

Each regime is a base recipe (``--set`` overrides on the study base, every other regularizer
off) and one axis. Every regime is run through ``classgap study`` itself, once per seed set, into
``bench/runs/regimes/<regime>/seeds<A>-<B>``; a study directory resumes, so rerunning this script
trains only what is missing. The table reads each study's ``summary.json`` (re-analysed with
``classgap report`` when ``--reanalyse`` is given, e.g. after a change of the statistics).

    python bench/regimes.py --regimes mlp10k-crop,mlp10k-mixup --seeds 0-5
    python bench/regimes.py --regimes mlp10k-crop --seeds 6-11      # the disjoint seed set
    python bench/regimes.py --table                                 # markdown, every study done

What a regime must show to become the default (issue 9): the selected strength is not the
reference, the mean test gain has a 95% interval above 0, at least one class drops with
q < 0.05, and that drop repeats on a disjoint seed set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "runs" / "regimes"

MLP = ("model.name=mlp",)
CNN_SMALL = ("model.name=cnn_small",)
SUB10K = ("data.train_subset=10000", "train.epochs=20", "train.eval_every=20")
SUB5K = ("data.train_subset=5000", "train.epochs=40", "train.eval_every=40")
SUB3K = ("data.train_subset=3000", "train.epochs=60", "train.eval_every=60")

AXES = {
    "mixup": "aug.mixup=0,1,2",
    "mixup4": "aug.mixup=0,0.2,1,2",
    "wd": "optim.weight_decay=0,1e-4,5e-4,2e-3,5e-3",
    "crop": "aug.crop=0,2,4",
    "crop1": "aug.crop=0,1,2",
    "ls": "optim.label_smoothing=0,0.1,0.3",
    "dropout": "model.dropout=0,0.2,0.5",
    "cutout": "aug.cutout=0,4,8,12",
    "flip": "aug.flip=0,0.5",
    "jitter": "aug.jitter=0,0.2,0.4",
    "rrc": "aug.rrc=1,0.8,0.5",
}

#: name -> (overrides on the study base recipe, axis)
REGIMES: dict[str, tuple[tuple[str, ...], str]] = {}
for _model, _mname in ((MLP, "mlp"), (CNN_SMALL, "cnn")):
    for _sub, _sname in ((SUB10K, "10k"), (SUB5K, "5k"), (SUB3K, "3k")):
        for _axis, _spec in AXES.items():
            REGIMES[f"{_mname}{_sname}-{_axis}"] = (_model + _sub, _spec)


def study_dir(regime: str, seeds: str) -> Path:
    return ROOT / regime / f"seeds{seeds}"


def run(regime: str, seeds: str, workers: int, reanalyse: bool, refit: bool = False) -> dict:
    overrides, axis = REGIMES[regime]
    out = study_dir(regime, seeds)
    cmd = [sys.executable, "-m", "classgap", "study", "--preset", "default", "--axis", axis,
           "--seeds", seeds, "--out", str(out), "--workers", str(workers),
           "--refit" if refit else "--no-refit"]
    for item in overrides:
        cmd += ["--set", item]
    if (out / "summary.json").is_file() and reanalyse:
        cmd = [sys.executable, "-m", "classgap", "report", str(out)]
    elif (out / "summary.json").is_file():
        return row(regime, seeds)
    t0 = time.perf_counter()
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    timing = out / "bench_wall.json"
    if not timing.is_file():
        timing.write_text(json.dumps({"wall_s": round(wall, 1)}))
    return row(regime, seeds)


def row(regime: str, seeds: str) -> dict:
    out = study_dir(regime, seeds)
    s = json.loads((out / "summary.json").read_text())
    g = s["mean_gain"]
    drops = [c for c in s["classes"] if c["verdict"] == "drop"]
    drops.sort(key=lambda c: c["delta"])
    val = {str(v["strength"]): v["val_mean"] for v in s["validation"]}
    wall = json.loads((out / "bench_wall.json").read_text())["wall_s"] \
        if (out / "bench_wall.json").is_file() else None
    worst = min(s["classes"], key=lambda c: c["delta"] if c["delta"] is not None else 9)
    return {"regime": regime, "seeds": seeds, "axis": s["axis"], "selected": s["selected"],
            "reference": s["reference"],
            "val": val, "delta": g["delta"], "low": g["low"], "high": g["high"],
            "p": g["p_value"], "drops": [(c["class"], c["delta"], c["q_value"]) for c in drops],
            "worst": (worst["class"], worst["delta"], worst["q_value"]), "wall_s": wall,
            "class_aware": s["class_aware"]["selected"]}


def fmt(r: dict) -> str:
    drops = ", ".join(f"{c} {100 * d:+.1f} (q={q:.3f})" for c, d, q in r["drops"]) or "none"
    wc, wd, wq = r["worst"]
    ok = (r["selected"] != r["reference"] and r["low"] > 0 and bool(r["drops"]))
    wall = f"{r['wall_s']:.0f}" if r["wall_s"] else "?"
    return (f"| {r['regime']} | {r['seeds']} | {r['selected']} | "
            f"{100 * r['delta']:+.2f} [{100 * r['low']:+.2f}, {100 * r['high']:+.2f}] | "
            f"{drops} | {wc} {100 * wd:+.1f} (q={wq:.2f}) | {r['class_aware']} | {wall} | "
            f"{'yes' if ok else 'no'} |")


def done_studies() -> list[tuple[str, str]]:
    """(regime, seeds) of every study directory with a summary, in name order."""
    return [(regime_dir.name, sd.name.removeprefix("seeds"))
            for regime_dir in sorted(ROOT.glob("*")) if regime_dir.name in REGIMES
            for sd in sorted(regime_dir.glob("seeds*")) if (sd / "summary.json").is_file()]


def table() -> str:
    lines = ["| regime | seeds | selected | mean test Δ [95%] | classes dropping (q < 0.05) | "
             "worst class | class-aware | wall s | conditions |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [fmt(row(regime, seeds)) for regime, seeds in done_studies()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", default="", help="comma-separated names; 'list' lists")
    parser.add_argument("--seeds", default="0-5", help="a count, a range A-B or a list")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reanalyse", action="store_true",
                        help="rerun 'classgap report' on studies already done")
    parser.add_argument("--table", action="store_true", help="print the table of every study")
    parser.add_argument("--refit", action="store_true",
                        help="also train the class-aware refit (augmentation and label "
                             "smoothing axes)")
    args = parser.parse_args()
    if args.regimes == "list":
        for name, (overrides, axis) in REGIMES.items():
            print(name, axis, " ".join(overrides))
        return
    if args.reanalyse and not args.regimes:  # every study already done
        for regime, seeds in done_studies():
            run(regime, seeds, args.workers, True)
    for name in filter(None, args.regimes.split(",")):
        if name not in REGIMES:
            sys.exit(f"unknown regime {name!r}; run with --regimes list")
        print(fmt(run(name, args.seeds, args.workers, args.reanalyse, args.refit)), flush=True)
    if args.table:
        print(table())


if __name__ == "__main__":
    main()
