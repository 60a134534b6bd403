"""Long-tail benchmark: classgap's class-aware recipes against plain CE, per class, over seeds.

Workload: every ``METHOD@fmnist-lt`` recipe of ``--methods`` (Fashion-MNIST-LT, ρ = 100,
exponential profile, class 0 the head; the small CNN, 16 epochs, cosine lr, DRW from epoch 12;
see :mod:`classgap.train.recipes`), ``--seeds`` seeds each (``train.seed`` = 0..S-1, the same
data split), and with ``--mr2`` also ``mr2@fmnist`` vs ``ce@fmnist`` (balanced). ``ce`` is
always trained: it is the baseline of every comparison. ``--epochs E`` shortens training and
keeps DRW at 75% of it (``loss.drw_epoch = min(round(0.75 E), E - 1)``).

Runs go to ``OUT/<setting>/<method>/seed<k>`` (the trainer's run directories); a run whose
``metrics.json`` exists is not trained again, so the bench can be stopped and resumed. Missing
runs are trained with :func:`classgap.train.pool.train_many` (``--workers`` processes of
``--threads-per-worker`` torch threads).

Measured, per method, on the test set at the last epoch (nothing selects an epoch on test):

* overall accuracy: seed mean ± seed std, with the audit's 95% interval (two-level bootstrap:
  seeds, then test samples; :func:`classgap.audit.audit_predictions`);
* group means of per-class accuracy: head / medium / tail by class index (3 / 4 / 3 of 10
  classes, 30% / 40% / 30% in general) and many / medium / few by training count (> 100,
  20–100, < 20 images; "none" when a group is empty); on the balanced setting easy / medium /
  hard, the tertiles of CE's per-class accuracy, and the Shirt class (class 6);
* worst-class accuracy and the harmonic mean of per-class accuracies, with intervals;
* :func:`classgap.audit.compare_files` against CE (paired per class, Welch over seeds, BH
  q-values): Δ overall accuracy with its interval, classes improved / dropped at q < 0.05.

Prints a markdown section (command, machine, date, two tables, and the verdict on the
published ordering LDAM-DRW+SAM > LDAM-DRW > CE, computed from the numbers).

Usage: ``python bench/longtail.py [--out bench/runs/longtail] [--methods ce,ldam-drw,...]
[--seeds 3] [--epochs 16] [--workers 2] [--threads-per-worker 1] [--no-mr2]
[--set KEY=VALUE ...] [--report FILE]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from classgap.audit import ClassAudit, Comparison, audit_predictions, compare_files, load_runs
from classgap.audit.disparity import difficulty_tertiles
from classgap.config import Config, load_config
from classgap.data.longtail import frequency_groups, index_groups
from classgap.errors import ConfigError
from classgap.train.pool import train_many
from classgap.train.recipes import METHODS, recipe_overrides

DEFAULT_METHODS = "ce,ce-drw,ldam-drw,ldam-drw-sam,vs,vs-sam,la,bs,focal"
LT, BALANCED = "fmnist-lt", "fmnist"
BASELINE = "ce"
ALPHA = 0.05
SHIRT = 6  # Fashion-MNIST class 6
# Keys that do not change what a run computes: a finished run is reused whatever they are.
_IGNORED_KEYS = (("data", "data_dir"), ("train", "threads"), ("train", "progress"))


@dataclass(frozen=True)
class Run:
    setting: str
    method: str
    seed: int
    out: Path
    config: Config

    @property
    def done(self) -> bool:
        return (self.out / "metrics.json").is_file()


@dataclass(frozen=True)
class MethodResult:
    method: str
    seed_acc: np.ndarray  # (S,) test accuracy of each seed
    audit: ClassAudit
    vs_ce: Comparison | None  # None for CE itself


# -- plan and train ----------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/runs/longtail"),
                        help="root of the run directories (OUT/<setting>/<method>/seed<k>)")
    parser.add_argument("--methods", default=DEFAULT_METHODS,
                        help="comma-separated recipe methods on fmnist-lt (ce is always run); "
                             "METHOD:rho=R is a SAM method at another radius")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None,
                        help="override train.epochs (default: the setting's 16); DRW stays at "
                             "75%% of training")
    parser.add_argument("--workers", type=int, default=2, help="training processes")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--mr2", action=argparse.BooleanOptionalAction, default=True,
                        help="also mr2@fmnist vs ce@fmnist (balanced)")
    parser.add_argument("--data-dir", default=None, help="data.data_dir of every run")
    parser.add_argument("--set", dest="set_", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override of every run (repeatable), after the recipe")
    parser.add_argument("--report", type=Path, default=None,
                        help="also write the markdown to this file")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.workers < 1 or args.threads_per_worker < 1:
        parser.error("--seeds, --workers and --threads-per-worker must be >= 1")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return args


def split_method(method: str) -> tuple[str, list[str]]:
    """``"ldam-drw-sam:rho=0.1"`` → ``("ldam-drw-sam", ["optim.rho=0.1"])``: a recipe method
    and SAM radius variant (``:rho=R``), so one bench can hold several ρ of one method."""
    name, _, variant = method.partition(":")
    if not variant:
        return name, []
    key, _, value = variant.partition("=")
    if key != "rho" or not value:
        raise ConfigError(f"--methods: a variant must be ':rho=VALUE'; got {method!r}")
    return name, [f"optim.rho={value}"]


def method_list(text: str) -> list[str]:
    """The methods of ``--methods``, CE first, each checked to be a recipe method."""
    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    for m in methods:
        recipe_overrides(split_method(m)[0])  # ConfigError (did-you-mean) for an unknown one
    return list(dict.fromkeys([BASELINE, *methods]))


def run_config(setting: str, method: str, seed: int, args: argparse.Namespace) -> Config:
    name, variant = split_method(method)
    overrides = [*recipe_overrides(f"{name}@{setting}"), *variant, f"train.seed={seed}",
                 "train.progress=false"]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
        if METHODS[name].drw:  # DRW at 75% of training, as 12 of the setting's 16 epochs
            overrides.append(f"loss.drw_epoch={min(round(0.75 * args.epochs), args.epochs - 1)}")
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={args.data_dir}")
    return load_config(overrides=[*overrides, *args.set_])


def plan(args: argparse.Namespace) -> dict[str, dict[str, list[Run]]]:
    """setting → method → its runs (one per seed); every config built (and checked) here."""
    settings = {LT: method_list(args.methods)}
    if args.mr2:
        settings[BALANCED] = [BASELINE, "mr2"]
    return {setting: {method: [Run(setting, method, seed,
                                   args.out / setting / method.replace(":", "_")
                                   .replace("=", "") / f"seed{seed}",
                                   run_config(setting, method, seed, args))
                               for seed in range(args.seeds)]
                      for method in methods}
            for setting, methods in settings.items()}


def _comparable(config: dict) -> dict:
    out = {section: dict(values) for section, values in config.items()}
    for section, key in _IGNORED_KEYS:
        out.get(section, {}).pop(key, None)
    return out


def check_finished(run: Run) -> None:
    """A finished run must hold the config the bench would train now (else: a clear error)."""
    saved = Config.from_dict(json.loads((run.out / "config.json").read_text(encoding="utf-8")))
    if _comparable(saved.to_dict()) != _comparable(run.config.to_dict()):
        raise ConfigError(f"{run.out} holds a finished run of another config (other --epochs or "
                          f"--set?); choose another --out or delete that directory")


def train_missing(runs: list[Run], args: argparse.Namespace) -> None:
    done = [r for r in runs if r.done]
    for run in done:
        check_finished(run)
    todo = [r for r in runs if not r.done]
    print(f"longtail: {len(runs)} runs, {len(done)} already done, training {len(todo)} "
          f"({args.workers} worker(s) x {args.threads_per_worker} thread(s))",
          file=sys.stderr, flush=True)
    if not todo:
        return
    start = time.perf_counter()
    results = train_many([r.config for r in todo], [r.out for r in todo], workers=args.workers,
                         threads_per_worker=args.threads_per_worker, progress=True)
    failed = [(r, res) for r, res in zip(todo, results, strict=True)
              if isinstance(res, BaseException)]
    print(f"longtail: trained {len(todo) - len(failed)} run(s) in "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    if failed:
        names = ", ".join(f"{r.setting}/{r.method}/seed{r.seed}" for r, _ in failed)
        raise RuntimeError(f"{len(failed)} of {len(todo)} runs failed ({names}); the others "
                           f"are saved, run again to resume") from failed[0][1]


# -- analysis ----------------------------------------------------------------------------------
def _index_split(n_classes: int) -> np.ndarray:
    """head / medium / tail by class index: 3 / 4 / 3 of 10 classes (30% / 40% / 30%)."""
    h = round(0.3 * n_classes)
    labels = index_groups(n_classes, (h, n_classes - 2 * h, h))
    return np.select([labels == "many", labels == "few"], ["head", "tail"], "medium")


def _train_counts(runs: list[Run]) -> np.ndarray:
    counts = [json.loads((r.out / "train_counts.json").read_text(encoding="utf-8"))
              for r in runs]
    if any(c != counts[0] for c in counts):
        raise RuntimeError(f"runs of {runs[0].setting} have different training counts")
    return np.asarray(counts[0], dtype=np.int64)


def analyse(setting_runs: dict[str, list[Run]]) -> dict[str, MethodResult]:
    all_runs = [r for runs in setting_runs.values() for r in runs]
    counts = _train_counts(all_runs)
    ce_paths = [r.out / "test.npz" for r in setting_runs[BASELINE]]
    ce_runs = load_runs(ce_paths)
    k = len(counts)
    ce_acc = np.mean([np.bincount(p.y_true, weights=p.y_pred == p.y_true, minlength=k)
                      / np.bincount(p.y_true, minlength=k) for p in ce_runs], axis=0)
    groups = {"index": _index_split(k), "frequency": frequency_groups(counts),
              "difficulty": difficulty_tertiles(ce_acc)}
    out = {}
    for method, runs in setting_runs.items():
        paths = [r.out / "test.npz" for r in runs]
        seed_acc = np.array([json.loads((r.out / "metrics.json").read_text(encoding="utf-8"))
                             ["test_accuracy"] for r in runs])
        with warnings.catch_warnings():  # precision of a class never predicted: NaN, fine
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            audit = audit_predictions(load_runs(paths), groups=groups, random_state=0)
        vs_ce = None if method == BASELINE else compare_files(ce_paths, paths, alpha=ALPHA,
                                                              random_state=0)
        out[method] = MethodResult(method, seed_acc, audit, vs_ce)
    return out


# -- formatting --------------------------------------------------------------------------------
def pct(x: float | None) -> str:
    return "none" if x is None or not math.isfinite(x) else f"{100 * x:.2f}"


def ci(low: float, high: float) -> str:
    return f"[{pct(low)}, {pct(high)}]"


def metric(audit: ClassAudit, name: str, with_ci: bool = False) -> str:
    summary = audit.overall_ci()
    if name not in summary.index:
        return "none"  # an empty group
    row = summary.loc[name]
    return pct(row["estimate"]) + (f" {ci(row['low'], row['high'])}" if with_ci else "")


def group(audit: ClassAudit, kind: str, name: str) -> float:
    key = f"group:{kind}={name}"
    return float(audit.overall[key]) if key in audit.overall.index else float("nan")


def accuracy_cell(res: MethodResult) -> str:
    std = float(np.std(res.seed_acc, ddof=1)) if len(res.seed_acc) > 1 else float("nan")
    spread = "–" if not math.isfinite(std) else f"{100 * std:.2f}"
    row = res.audit.overall_ci().loc["accuracy"]
    return f"{pct(float(res.seed_acc.mean()))} ± {spread} {ci(row['low'], row['high'])}"


def worst_cell(audit: ClassAudit) -> str:
    worst = audit.by_class["accuracy"].idxmin()
    return f"{metric(audit, 'worst_class', with_ci=True)} ({worst})"


def delta_cells(res: MethodResult) -> list[str]:
    if res.vs_ce is None:
        return ["—", "—"]
    o = res.vs_ce.overall
    return [delta_text(res.vs_ce), f"{o['n_gain']} / {o['n_drop']}"]


def groups_cell(audit: ClassAudit, kind: str, names: tuple[str, ...]) -> str:
    return " / ".join(metric(audit, f"group:{kind}={n}") for n in names)


def lt_table(results: dict[str, MethodResult]) -> list[str]:
    lines = ["| method | accuracy % (± seed sd) [95% CI] | head / medium / tail % (index 3/4/3) "
             "| many / medium / few % (>100, 20–100, <20 train) | worst class % [95% CI] "
             "(class) | harmonic mean % [95% CI] | Δ accuracy vs CE, pts [95% CI] "
             f"| classes up / down vs CE (q < {ALPHA}) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for method, res in results.items():
        a = res.audit
        lines.append("| " + " | ".join([
            method, accuracy_cell(res), groups_cell(a, "index", ("head", "medium", "tail")),
            groups_cell(a, "frequency", ("many", "medium", "few")), worst_cell(a),
            metric(a, "harmonic_mean", with_ci=True), *delta_cells(res)]) + " |")
    return lines


def balanced_table(results: dict[str, MethodResult]) -> list[str]:
    names = list(results[BASELINE].audit.by_class.index)
    shirt = names[SHIRT] if len(names) > SHIRT else None
    lines = ["| method | accuracy % (± seed sd) [95% CI] | easy / medium / hard % (CE tertiles) "
             f"| {shirt} (class {SHIRT}) % [95% CI] | worst class % [95% CI] (class) "
             "| harmonic mean % [95% CI] | Δ accuracy vs CE, pts [95% CI] "
             f"| classes up / down vs CE (q < {ALPHA}) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for method, res in results.items():
        a = res.audit
        if shirt is None:
            shirt_cell = "none"
        else:
            row = a.by_class_ci().iloc[SHIRT]
            shirt_cell = f"{pct(row['estimate'])} {ci(row['low'], row['high'])}"
        lines.append("| " + " | ".join([
            method, accuracy_cell(res), groups_cell(a, "difficulty", ("easy", "medium", "hard")),
            shirt_cell, worst_cell(a), metric(a, "harmonic_mean", with_ci=True),
            *delta_cells(res)]) + " |")
    return lines


def delta_text(c: Comparison, unit: str = "") -> str:
    """Δ overall accuracy (candidate − baseline) in points, with its interval."""
    o = c.overall
    return (f"{100 * o['delta']:+.2f}{unit} [{100 * o['delta_low']:+.2f}, "
            f"{100 * o['delta_high']:+.2f}]")


def _excludes_zero(c: Comparison) -> bool:
    return c.overall["delta_low"] > 0 or c.overall["delta_high"] < 0


def ordering_sentence(results: dict[str, MethodResult],
                      runs: dict[str, list[Run]]) -> str:
    """Does LDAM-DRW+SAM > LDAM-DRW > CE hold here, and do the gains sit on the tail?"""
    needed = (BASELINE, "ldam-drw", "ldam-drw-sam")
    missing = [m for m in needed if m not in results]
    if missing:
        return (f"The published ordering LDAM-DRW+SAM > LDAM-DRW > CE cannot be checked here: "
                f"{', '.join(missing)} not in --methods.")
    acc = {m: float(results[m].seed_acc.mean()) for m in needed}
    holds = acc["ldam-drw-sam"] > acc["ldam-drw"] > acc[BASELINE]
    sam_vs_ldam = compare_files([r.out / "test.npz" for r in runs["ldam-drw"]],
                                [r.out / "test.npz" for r in runs["ldam-drw-sam"]],
                                alpha=ALPHA, random_state=0)
    ldam_vs_ce = results["ldam-drw"].vs_ce
    sam_vs_ce = results["ldam-drw-sam"].vs_ce
    assert ldam_vs_ce is not None and sam_vs_ce is not None
    steps = [sam_vs_ldam, ldam_vs_ce]
    resolved = sum(_excludes_zero(c) for c in steps)
    sure = ("both steps beyond seed and test-set noise (95% intervals exclude 0)"
            if resolved == 2 else f"{resolved} of its 2 steps with a 95% interval excluding 0")
    d_tail = (group(results["ldam-drw-sam"].audit, "index", "tail")
              - group(results[BASELINE].audit, "index", "tail"))
    d_head = (group(results["ldam-drw-sam"].audit, "index", "head")
              - group(results[BASELINE].audit, "index", "head"))
    tail = d_tail > d_head and d_tail > 0
    return (f"The published ordering LDAM-DRW+SAM > LDAM-DRW > CE in overall accuracy "
            f"**{'holds' if holds else 'does not hold'}** here "
            f"({pct(acc['ldam-drw-sam'])} vs {pct(acc['ldam-drw'])} vs {pct(acc[BASELINE])}%; "
            f"LDAM-DRW+SAM − LDAM-DRW {delta_text(sam_vs_ldam, ' pts')}, LDAM-DRW − CE "
            f"{delta_text(ldam_vs_ce, ' pts')}: {sure}), and the gains of LDAM-DRW+SAM over CE "
            f"**{'do' if tail else 'do not'} concentrate on the tail** (tail-group Δ "
            f"{100 * d_tail:+.2f} vs head-group Δ {100 * d_head:+.2f} pts, index split).")


def mr2_sentence(results: dict[str, MethodResult]) -> str:
    c = results["mr2"].vs_ce
    assert c is not None
    d_hard = (group(results["mr2"].audit, "difficulty", "hard")
              - group(results[BASELINE].audit, "difficulty", "hard"))
    d_easy = (group(results["mr2"].audit, "difficulty", "easy")
              - group(results[BASELINE].audit, "difficulty", "easy"))
    verdict = ("beyond noise" if _excludes_zero(c) else "within noise (95% interval holds 0)")
    return (f"MR² vs CE on balanced data: overall Δ {delta_text(c, ' pts')}, {verdict}; "
            f"hard-tertile Δ {100 * d_hard:+.2f} vs easy-tertile Δ {100 * d_easy:+.2f} pts; "
            f"{c.overall['n_gain']} class(es) up, {c.overall['n_drop']} down at q < {ALPHA}.")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} CPU cores{gpu}; torch {torch.__version__}"


def report(argv: list[str], args: argparse.Namespace, runs: dict[str, dict[str, list[Run]]],
           results: dict[str, dict[str, MethodResult]]) -> str:
    lt_cfg = runs[LT][BASELINE][0].config
    lines = ["## Long-tail recipes vs CE (`bench/longtail.py`)", "",
             f"- Command: `{' '.join(['python bench/longtail.py', shlex.join(argv)]).strip()}`",
             f"- Machine: {machine()}",
             f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
             f"- Data: {lt_cfg.data.dataset}, imbalance ρ = {lt_cfg.data.imbalance} "
             f"({lt_cfg.data.profile}), model {lt_cfg.model.name}, {lt_cfg.train.epochs} epochs, "
             f"{args.seeds} seed(s) per method; test accuracy at the last epoch",
             "- Intervals: 95%, two-level bootstrap (seeds, then test samples); Δ vs CE and "
             "class verdicts from `compare_files` (Welch over seeds, BH q-values)", "",
             f"### {LT}: long-tailed training set", "",
             "training images per class: "
             + ", ".join(map(str, _train_counts(runs[LT][BASELINE]))), "",
             *lt_table(results[LT]), "", ordering_sentence(results[LT], runs[LT])]
    if BALANCED in results:
        lines += ["", f"### {BALANCED}: MR² vs CE, balanced training set", "",
                  *balanced_table(results[BALANCED]), "", mr2_sentence(results[BALANCED])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    runs = plan(args)  # every config checked before any training
    train_missing([r for setting in runs.values() for rs in setting.values() for r in rs], args)
    results = {setting: analyse(method_runs) for setting, method_runs in runs.items()}
    text = report(argv, args, runs, results)
    print(text)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
