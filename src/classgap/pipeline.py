"""The whole study: plan a grid, train it (resumably), analyse it, write the report.

The one module that touches the store, training, the analysis and the report: the sweep
package (:mod:`classgap.sweep`) trains grids of runs and knows nothing of studies, the analysis
package (:mod:`classgap.analysis`) turns predictions into a :class:`StudyResult` and never
trains. The class-aware refit and the transfer probe are runs of the study's own store,
trained by the same backend (and, for the refit, the same ``--train-cmd``) as the grid:
resumable, failures recorded in ``study.sqlite`` and retried with ``--retry-failed``. Their
points carry ``run.kind`` (``"refit"`` or ``"probe"``), which keeps them apart from the grid.

:func:`plan_study` turns a preset, axes, a config file and ``--set`` overrides into a
:class:`StudyPlan`; :func:`run_full_study` trains what is not done yet in ``out_dir`` and
writes ``report.html`` and ``summary.json`` there; :func:`report_study` re-analyses a study
directory (``classgap report``); :func:`plan_study_seeds` plans seeds from its variance
(``classgap plan-seeds``); :func:`verify_study` checks its runs' files against their
checksums (``classgap study --verify``).

**Layers of the base recipe**: config defaults ← preset ← ``--config`` file ← ``--set``.
Without a preset, a study with axes uses the config defaults; with neither, the ``default``
preset (``--quick``: the ``quick`` one).

**Reference** (regularizer off) of an axis: the knob's off value (``aug.rrc`` 1.0, other
``aug.*`` 0; weight decay, dropout and label smoothing 0), prepended to the axis when missing;
for any other key, the axis's first value. The base recipe takes each axis's reference, so in
``one_at_a_time`` mode every axis is swept with the others off.

**Groups** (:func:`study_grouping`): a class grouping, ``--groups`` or the dataset's own
(Fashion-MNIST, CIFAR-100), is read before anything is created, recorded inline in
``study.json`` and tested for the selected strength against the reference (which group pays,
:mod:`classgap.analysis.groups`); ``classgap report --groups`` overrides it for one report.

**Several axes**: each axis is analysed alone, on the runs where the other axes are at their
reference; the first axis's report goes to ``out_dir``, each other's to
``out_dir/axes/<key>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classgap._files import write_json
from classgap._validation import check_choice, check_in_range, check_positive_int
from classgap.analysis import RunRecord, StudyResult, analyze, load_multi_label, summary_dict
from classgap.analysis.analysis import plan_records
from classgap.analysis.groups import Grouping
from classgap.analysis.plan import SeedPlan
from classgap.audit.io import read_predictions
from classgap.config import Config, check_no_cmd, flatten, get_key, load_config, with_point
from classgap.errors import ClassgapError, ConfigError, StudyError
from classgap.sweep.backends import RETRIES, resolve_backend, run_grid
from classgap.sweep.external import ExternalTrainer
from classgap.sweep.grid import (
    MODES,
    Axis,
    Grid,
    RunSpec,
    Seeds,
    parse_axis,
    parse_seeds,
)
from classgap.sweep.integrity import RunCheck
from classgap.sweep.presets import QUICK_OVERRIDES, QUICK_SEEDS, get_preset
from classgap.sweep.store import Store, find_predictions

__all__ = [
    "StudyError",
    "StudyPlan",
    "StudyRun",
    "Training",
    "check_no_failed",
    "check_study",
    "group_refit_runs",
    "plan_study",
    "plan_study_seeds",
    "reference_value",
    "refit_runs",
    "report_study",
    "resolve_study_run",
    "run_full_study",
    "study_grouping",
    "transfer_runs",
    "verify_study",
]

#: Non-augmentation regularizers and their off value.
OFF_VALUES = {"optim.weight_decay": 0.0, "model.dropout": 0.0, "optim.label_smoothing": 0.0}




def reference_value(key: str) -> Any | None:
    """The off value of a regularizer key (``aug.rrc`` → 1.0), None when it has none."""
    section, _, name = key.partition(".")
    if section == "aug":
        from classgap.augment import AUGMENTATIONS

        return float(AUGMENTATIONS.get(name).off)
    return OFF_VALUES.get(key)


@dataclass(frozen=True)
class StudyPlan:
    """What to train: base recipe, axes, seeds, mode, and each axis's reference strength."""

    base: Config
    axes: tuple[Axis, ...]
    seeds: Seeds
    mode: str = "product"
    references: dict[str, Any] | None = None
    preset: str | None = None
    notes: tuple[str, ...] = ()

    def grid(self) -> Grid:
        return Grid(self.base, self.axes, seeds=self.seeds, mode=self.mode)


def _key(item: str) -> str:
    return str(item).partition("=")[0].strip()


def _apply(config: Config, overrides: Sequence[str]) -> Config:
    """``config`` with ``--set`` style overrides (each value typed as ``--set`` types it)."""
    point = {}
    for item in overrides:
        key = _key(item)
        point[key] = get_key(load_config(overrides=[item]).to_dict(), key)
    return with_point(config, point)


#: Torch threads of every study run unless the recipe sets ``train.threads``: the thread count
#: changes floating-point sums, so it is part of the run's config (and of its run id), and a
#: study trains the same numbers on every backend and resumes the same way on another one.
#: One thread per run, one run per core, was measured the faster use of 2 cores.
STUDY_THREADS = 1


def plan_study(preset: str | None = None, *, axes: Sequence[str | Axis] = (),
               seeds: int | str | Sequence[int] | None = None,
               config_file: str | os.PathLike[str] | None = None,
               overrides: Sequence[str] = (), quick: bool = False,
               mode: str | None = None, threads: int | None = None) -> StudyPlan:
    """Resolve a study from a preset, axes, a config or grid TOML file and overrides.

    Parameters
    ----------
    preset : str, optional
        A name of :func:`~classgap.sweep.presets.list_presets`.
    axes : sequence of str or Axis
        ``"section.key=v1,v2"``; replaces the preset's axis.
    seeds : int, str or sequence of int, optional
        Seeds per point: a count ``S`` (seeds 0 .. S-1), a range ``"8-15"`` or a list
        (default: the preset's, else the grid file's, else 3); see
        :func:`~classgap.sweep.grid.parse_seeds`.
    config_file : path, optional
        A config TOML (``[optim]`` ...) or a grid TOML (``[study]`` + ``[base]``, see
        :func:`~classgap.sweep.grid.load_grid_toml`), whose axes are used when none given.
    overrides : sequence of str
        ``section.key=value``, applied last.
    quick : bool
        Shrink the recipe (:data:`~classgap.sweep.presets.QUICK_OVERRIDES`, 2 seeds).
    mode : {"product", "one_at_a_time"}, optional
    threads : int, optional
        Torch threads of every run, written into each run's config (``train.threads``);
        default: the recipe's ``train.threads``, else :data:`STUDY_THREADS`.
    """
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{config_file}: config file does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{config_file}: cannot be read as TOML ({exc})") from None
    grid_file = "study" in data or "base" in data
    if preset is None and not axes and not grid_file:
        preset = "quick" if quick else "default"
    chosen = get_preset(preset) if preset is not None else None
    layer = list(chosen.overrides) if chosen else []
    if quick:
        layer += list(QUICK_OVERRIDES)
    if grid_file and config_file is not None:
        from classgap.sweep.grid import load_grid_toml

        file_grid = load_grid_toml(config_file)  # validates the file's tables and axes
        file_point = flatten(data.get("base", {}))
        base = with_point(load_config(overrides=[o for o in layer if _key(o) not in file_point]),
                     file_point)
    else:
        file_grid = None
        file_keys = {f"{s}.{k}" for s, t in data.items() if isinstance(t, dict) for k in t}
        base = load_config(config_file, [o for o in layer if _key(o) not in file_keys])
    base = _apply(base, overrides)
    if threads is not None or base.train.threads is None:
        base = with_point(base, {"train.threads": STUDY_THREADS if threads is None else threads})

    parsed = [a if isinstance(a, Axis) else parse_axis(a) for a in axes]
    if not parsed:
        parsed = list(file_grid.axes) if file_grid else [parse_axis(chosen.axis)] if chosen \
            else []
    if not parsed:
        raise ConfigError("a study needs an axis: give --axis SECTION.KEY=V1,V2 or a --preset")
    if seeds is None:
        seeds = QUICK_SEEDS if quick else chosen.seeds if chosen else \
            file_grid.seeds if file_grid else 3
    seeds = parse_seeds(seeds)
    mode = (mode or (file_grid.mode if file_grid else "product")).replace("-", "_")
    if mode not in MODES:
        raise ConfigError(f"'mode' must be one of {', '.join(MODES)}; got {mode!r}")

    notes, final, references = [], [], {}
    for axis in parsed:
        off = reference_value(axis.key)
        if off is None:
            ref = axis.values[0]
            notes.append(f"{axis.key} has no off value: its first value {ref!r} is the reference")
        elif any(v == off for v in axis.values):
            ref = next(v for v in axis.values if v == off)
        else:
            ref = off
            axis = Axis(axis.key, (off, *axis.values))
            notes.append(f"added the reference {axis.key}={off:g} (regularizer off) to the axis")
        final.append(axis)
        references[axis.key] = ref
    base = with_point(base, references)  # the others' reference: one-at-a-time sweeps around "off"
    return StudyPlan(base, tuple(final), seeds, mode, references, preset, tuple(notes))


@dataclass(frozen=True)
class StudyRun:
    """Where and how a planned study runs (what ``classgap study`` resolves before training)."""

    out_dir: Path
    workers: int
    refit: bool
    n_runs: int


def resolve_study_run(plan: StudyPlan, *, out: str | os.PathLike[str] | None = None,
                      workers: int | None = None, refit: bool | None = None,
                      axes_given: bool = False, quick: bool = False) -> StudyRun:
    """The defaults of a study run.

    ``out``: ``runs/study-<preset>[-quick]`` (``custom`` without a preset). ``workers``: one
    run per usable core, each with the plan's threads, at most one per run. ``refit``: the
    preset's choice when the preset's own axis is swept, else off.
    """
    from classgap.train.pool import default_threads

    name = (plan.preset or "custom") + ("-quick" if quick and plan.preset != "quick" else "")
    out_dir = Path(out) if out is not None else Path("runs") / f"study-{name}"
    if refit is None:
        refit = plan.preset is not None and get_preset(plan.preset).refit and not axes_given
    n_runs = len(plan.grid().runs())
    if workers is None:
        workers = max(1, min(n_runs, default_threads(plan.base.train.threads or 1)))
    return StudyRun(out_dir, workers, bool(refit), n_runs)


#: ``--groups none``: no class grouping, not even the dataset's own.
NO_GROUPS = "none"


def study_grouping(plan: StudyPlan, spec: str | Grouping | None = None, *,
                   train_cmd: str | None = None,
                   classes: Sequence[str] | None = None) -> Grouping | None:
    """The class grouping a study records (``--groups``), read before anything is created.

    ``spec`` is what :func:`~classgap.data.groups.load_groups` takes (a built-in name such
    as ``fashion-mnist``, ``cifar100``, a CIFAR-100 folder, a CSV or JSON group-map file),
    :data:`NO_GROUPS`, or a :class:`Grouping` already read. Without one, a study that
    classgap trains on Fashion-MNIST or CIFAR-100 uses the dataset's own grouping; any other
    study (a ``--train-cmd`` trains classes of its own) has none.

    The map is put in the order of ``classes`` (the study's, when its predictions are there:
    ``classgap report``) or of the dataset's classes where they are known before training
    (Fashion-MNIST, digits): a class the map lacks is then an error here, not after training.
    Otherwise it is kept in its own order and aligned when the predictions name the classes
    (:meth:`~classgap.audit.groups.GroupMap.align`); an iNaturalist file's classes are then
    matched by ``name``.

    Raises
    ------
    InputError or DataFormatError
        One line naming ``--groups`` or the file: an unknown name, a missing or malformed
        file, levels that do not nest, a class of the dataset the map lacks.
    """
    if isinstance(spec, Grouping) or (spec is not None and spec.strip() == NO_GROUPS):
        return spec if isinstance(spec, Grouping) else None
    data = plan.base.data
    from classgap.data.groups import GROUP_SPECS, load_groups

    if spec is None:
        if train_cmd or data.dataset not in GROUP_SPECS:
            return None
        spec, source = data.dataset, f"{data.dataset} (built in)"
    else:
        source = spec
    if classes is None and not train_cmd:
        classes = _known_classes(data.dataset)
    try:
        groups = load_groups(spec, classes, data_dir=data.data_dir)
    except ClassgapError as exc:
        text = str(exc)
        raise type(exc)(text if text.startswith(("'groups'", spec)) else
                        f"--groups {spec}: {text}") from None
    return Grouping(groups, source)


def _known_classes(dataset: str) -> list[str] | None:
    """The class names of a dataset known without reading it (None for the others)."""
    from classgap.data import FASHION_MNIST_CLASSES

    return {"fashion-mnist": list(FASHION_MNIST_CLASSES),
            "digits": [str(d) for d in range(10)]}.get(dataset)


def _failures(store: Store, specs: Sequence[RunSpec], done: dict[str, Path]) -> list[str]:
    frame = store.status().set_index("run_id")
    out = []
    for s in specs:
        if s.run_id in done:
            continue
        row = frame.loc[s.run_id] if s.run_id in frame.index else None
        status = row["status"] if row is not None else "missing"
        text = row["error"] if row is not None else None  # NaN for runs that never failed
        out.append(_run_text(s.point, s.seed, status, text))
    return out


def _run_text(point: dict[str, Any], seed: int, status: str, error: Any) -> str:
    """A run as messages name it: ``{point} seed S: status (the last line of its error)``."""
    last = (error.strip().splitlines() or [""])[-1] if isinstance(error, str) else ""
    return f"{point} seed {seed}: {status}" + (f" ({last})" if last else "")


def check_no_failed(out_dir: str | os.PathLike[str], *, since: float) -> None:
    """Raise a :class:`StudyError` naming the runs of the study in ``out_dir`` that failed in
    attempts begun at ``since`` (``time.time()``) or later, with the last line of each error.

    ``classgap study`` calls it once the report is written, so that a study left with
    failed runs exits 1, with one line saying to re-run it with ``--retry-failed``.
    """
    with Store(out_dir) as store:
        frame = store.status()
    failed = frame[(frame["status"] == "failed") & (frame["claimed_at"] >= since)]
    if failed.empty:
        return
    runs = [_run_text(json.loads(point), int(seed), "failed", error) for point, seed, error
            in zip(failed["point_json"], failed["seed"], failed["error"], strict=True)]
    raise StudyError(f"{len(runs)} run(s) failed: {'; '.join(runs[:5])}"
                     f"{' ...' if len(runs) > 5 else ''}; the others, the report and "
                     f"summary.json are written; re-run the same command with --retry-failed "
                     f"to train the failed runs again (errors in {store.path}/study.sqlite)")


def _axis_records(store: Store, plan: StudyPlan, specs: Sequence[RunSpec], axis: Axis,
                  ) -> tuple[list[RunRecord], list[str], int]:
    """The finished runs of one axis where every other axis is at its reference.

    Returns the records, the runs not done (as text) and the runs the axis has in all; a
    StudyError when some strength has no finished seed.
    """
    refs = plan.references or {}
    mine = [s for s in specs if all(s.point.get(k) == v for k, v in refs.items()
                                    if k != axis.key)]
    done = {spec.run_id: path for spec, path in store.done_runs()}
    missing = _failures(store, mine, done)
    have = {_strength_key(s.point[axis.key]) for s in mine if s.run_id in done}
    if missing and any(_strength_key(v) not in have for v in axis.values):
        raise StudyError(f"{len(missing)} of {len(mine)} runs of axis {axis.key} are not done "
                         f"and some strength has no finished seed: {'; '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}; see {store.path}/study.sqlite, "
                         f"rerun (with --retry-failed for failed runs)")
    records = []
    for s in mine:
        if s.run_id in done:
            run_dir = done[s.run_id]
            records.append(RunRecord(s.point, s.point[axis.key], s.seed,
                                     read_predictions(_predictions(run_dir, "val")),
                                     read_predictions(_predictions(run_dir, "test")),
                                     train_accuracy=_train_accuracy(run_dir)))
    return records, missing, len(mine)


def _train_accuracy(run_dir: Path) -> float | None:
    """The last epoch's training accuracy from the run's ``history.csv``; None without one
    (a ``--train-cmd`` run need not write it: its validation accuracy is still checked)."""
    import csv

    try:
        with (run_dir / "history.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        value = float(rows[-1]["train_acc"])
    except (OSError, IndexError, KeyError, TypeError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def _analyse_axis(store: Store, plan: StudyPlan, specs: Sequence[RunSpec], axis: Axis,
                  opts: dict[str, Any], train_cmd: str | None = None,
                  groups: Grouping | None = None) -> StudyResult:
    """Analyse one axis on the runs where every other axis is at its reference."""
    refs = plan.references or {}
    records, missing, total = _axis_records(store, plan, specs, axis)
    labels = None
    if opts.get("multi_label") is not None:
        first = records[0].test
        k = max(max(r.val.n_classes_hint, r.test.n_classes_hint) for r in records)
        labels = load_multi_label(opts["multi_label"], len(first.y_true), k)
    result = analyze(records, axis=axis.key, reference=refs.get(axis.key, axis.values[0]),
                     alpha=opts["alpha"], correction=opts["correction"],
                     max_drop=opts["max_drop"], multi_label=labels,
                     exclude_failed=bool(opts.get("exclude_failed", False)), groups=groups)
    notes = list(plan.notes)
    if missing:
        notes.append(f"{len(missing)} of {total} runs are not done and were left out: "
                     + "; ".join(missing[:5]))
    fixes, rule, fix_notes = _fix_frontier(records, result, opts)
    notes += fix_notes
    meta = {**result.meta, **_trainer_meta(plan, axis, train_cmd), "seeds": plan.seeds,
            "preset": plan.preset, "runs": len(records)}
    return replace(result, notes=tuple(notes) + result.notes, meta=meta, fixes=tuple(fixes),
                   fix_rule=rule)


def _trainer_meta(plan: StudyPlan, axis: Axis, train_cmd: str | None) -> dict[str, Any]:
    """What trained the runs, for the report's provenance: the built-in recipe (dataset,
    model, epochs), or the training command, its axis and the values it read besides."""
    cfg = plan.base
    if train_cmd is None:
        return {"dataset": cfg.data.dataset, "model": cfg.model.name,
                "epochs": cfg.train.epochs, "train_subset": cfg.data.train_subset}
    meta: dict[str, Any] = {"train_cmd": train_cmd, "axis": axis.key}
    # the recipe's values the template read (the rest of the config never reached the script)
    for name in ExternalTrainer(train_cmd).placeholders():
        key = name if "." in name else f"cmd.{name}"
        if key != axis.key and key not in meta and get_key(cfg, key) is not None:
            meta[key] = get_key(cfg, key)
    return meta


def _fix_frontier(records: Sequence[RunRecord], result: StudyResult, opts: dict[str, Any],
                  ) -> tuple[list[dict[str, Any]], Any, list[str]]:
    """The fixes built from the study's own predictions
    (:func:`~classgap.analysis.fixes.fix_frontier`), on the runs the statistics used (runs
    left out by ``--exclude-failed`` are left out here too); nothing when validation selects
    the reference (there is nothing to fix)."""
    if result.selected == result.reference:
        return [], None, []
    from classgap.analysis.fixes import fix_frontier

    failed = result.failed_runs
    out = set() if failed is None or failed.empty else {
        (_strength_key(s), int(seed)) for s, seed, x in
        zip(failed["strength"], failed["seed"], failed["excluded"], strict=True) if x}

    def at(strength: Any) -> list[RunRecord]:
        return sorted((r for r in records if r.strength == strength
                       and (_strength_key(r.strength), int(r.seed)) not in out),
                      key=lambda r: r.seed)

    def seeded(runs: list[RunRecord], split: str) -> list[Any]:
        # the run's seed is the study's (a --train-cmd file need not record it)
        return [replace(getattr(r, split), seed=int(r.seed)) for r in runs]

    ref, sel = at(result.reference), at(result.selected)
    aware = result.class_aware.get("selected", result.selected)
    aware_runs = at(aware) if aware is not None and aware != result.selected else None
    return fix_frontier(reference_val=seeded(ref, "val"), reference_test=seeded(ref, "test"),
                        selected_val=seeded(sel, "val"), selected_test=seeded(sel, "test"),
                        class_aware_test=None if aware_runs is None else
                        seeded(aware_runs, "test"),
                        class_aware_strength=aware, ensemble=bool(opts.get("ensemble")),
                        alpha=opts["alpha"], correction=opts["correction"])


def _strength_key(value: Any) -> str:
    """A strength as a hashable key (per-class strengths are lists)."""
    return repr(tuple(value) if isinstance(value, list | tuple) else float(value)
                if isinstance(value, int | float) and not isinstance(value, bool) else value)


def _write(result: StudyResult, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary_dict(result))
    if result.fix_rule is not None:  # the post-hoc rule, for 'classgap fix apply'
        result.fix_rule.save(out / "fix_rule.json")
    else:  # a re-analysis without a rule (e.g. it now selects the reference) leaves none stale
        (out / "fix_rule.json").unlink(missing_ok=True)
    from classgap.report import write_report  # lazy: matplotlib loads slowly

    return write_report(result, out)


def _analyse_all(store: Store, plan: StudyPlan, opts: dict[str, Any],
                 train_cmd: str | None = None, groups: Grouping | None = None) -> StudyResult:
    specs = plan.grid().runs()
    first: StudyResult | None = None
    for i, axis in enumerate(plan.axes):
        result = _analyse_axis(store, plan, specs, axis, opts, train_cmd, groups)
        _write(result, store.path if i == 0 else store.path / "axes" / axis.key)
        first = first or result
    assert first is not None
    return first


def run_full_study(plan: StudyPlan, out_dir: str | os.PathLike[str], *, backend: str = "local",
                   workers: int = 1, threads_per_worker: int | None = None,
                   retry_failed: bool = False, retries: int = RETRIES,
                   address: str | None = None,
                   train_cmd: str | None = None, alpha: float = 0.05, correction: str = "bh",
                   max_drop: float = 2.0, multi_label: str | os.PathLike[str] | None = None,
                   progress: bool = True, transfer_to: str | None = None,
                   refit: bool = False, reweight: str | None = None,
                   group_refit: bool = False, ensemble: bool = False,
                   exclude_failed: bool = False,
                   groups: str | Grouping | None = None) -> StudyResult:
    """Train the plan's grid into ``out_dir`` (resuming), analyse it and write the report.

    Every option is checked first (:func:`check_study`), before ``out_dir`` is created.
    Writes ``out_dir/report.html`` (figures, tables) and ``out_dir/summary.json``. Finished
    runs are never trained again; failed runs are retried only with ``retry_failed``. On the
    ``processes`` and ``ray`` backends a run whose worker died in it (killed, say by the OOM
    killer) is tried again, at most ``retries`` times, then recorded failed
    (:mod:`classgap.sweep.backends`).
    Incomplete runs are left out with a note as long as every strength has a finished seed;
    otherwise :class:`StudyError` lists them with their error text. Runs that finished but
    look collapsed (:mod:`classgap.analysis.failed`) are reported, and left out of the
    statistics only with ``exclude_failed``.
    ``groups`` (:func:`study_grouping`: a spec, ``"none"`` or a :class:`Grouping`; default
    the dataset's own) is recorded in ``study.json`` and adds which group pays to the report.

    Returns
    -------
    StudyResult
        The first axis's analysis (the others are written to ``out_dir/axes/<key>/``).
    """
    if transfer_to is not None:  # the probe needs each run's backbone (model.pt)
        plan = replace(plan, base=with_point(plan.base, {"train.checkpoint": True}))
    trainer = check_study(plan, backend=backend, workers=workers,
                          threads_per_worker=threads_per_worker, train_cmd=train_cmd,
                          alpha=alpha, correction=correction, max_drop=max_drop,
                          multi_label=multi_label, transfer_to=transfer_to, refit=refit,
                          reweight=reweight, group_refit=group_refit, retries=retries)
    grouping = study_grouping(plan, groups, train_cmd=train_cmd)
    opts = {"alpha": alpha, "correction": correction, "max_drop": max_drop,
            "multi_label": None if multi_label is None else str(Path(multi_label).resolve()),
            "exclude_failed": bool(exclude_failed), "ensemble": bool(ensemble)}
    grid = plan.grid()
    specs = grid.runs()
    with Store(out_dir) as store:
        store.write_study({**grid.to_dict(), "references": plan.references,
                           "preset": plan.preset, "notes": list(plan.notes), "analysis": opts,
                           "groups": None if grouping is None else grouping.to_dict(),
                           **({"train_cmd": train_cmd} if trainer is not None else {}),
                           "downstream": {"transfer_to": transfer_to, "refit": refit,
                                          **({"reweight": reweight} if reweight else {}),
                                          **({"group_refit": True} if group_refit else {})}})
        training = Training(backend, workers, threads_per_worker or plan.base.train.threads,
                            retry_failed, address, trainer, progress, retries)
        training.run(store, specs, desc="study")
        result = _analyse_all(store, plan, opts, train_cmd if trainer is not None else None,
                              grouping)
        result = _downstream(store, result, opts, training, transfer_to=transfer_to,
                             refit=refit, reweight=reweight, group_refit=group_refit)
    return result


def check_study(plan: StudyPlan, *, backend: str = "local", workers: int = 1,
                threads_per_worker: int | None = None, train_cmd: str | None = None,
                alpha: float = 0.05, correction: str = "bh", max_drop: float = 2.0,
                multi_label: str | os.PathLike[str] | None = None,
                transfer_to: str | None = None, refit: bool = False,
                reweight: str | None = None, group_refit: bool = False,
                retries: int = RETRIES) -> ExternalTrainer | None:
    """Check every option of :func:`run_full_study` against ``plan``; create nothing.

    Raises the first error (one line naming the option and its value) before a study
    directory exists: :func:`run_full_study` calls it first, and ``classgap study`` before it
    prints its header. Cheap: no image is read, no run is trained; the training command's
    program is looked up once here rather than failing once per run.

    Returns
    -------
    ExternalTrainer or None
        The trainer of ``train_cmd`` (placeholders and program checked), None without one.
    """
    from classgap.audit.multiplicity import CORRECTIONS
    from classgap.data import data_source

    resolve_backend(backend, workers, threads_per_worker)
    check_positive_int(retries, "retries", minimum=0)
    check_in_range(alpha, "alpha", 0, 1, inclusive=(False, False))
    check_choice(correction, "correction", CORRECTIONS)
    check_in_range(max_drop, "max_drop", 0.0, 100.0)
    if multi_label is not None and not Path(multi_label).is_file():
        raise ConfigError(f"{multi_label}: multi-label file does not exist")
    if reweight is not None:  # an unknown method fails before anything is trained
        with_point(plan.base, {"loss.reweight": reweight})
    if refit or group_refit:  # an axis without a per-class version fails before training
        from classgap.analysis.refit import check_refit_axis

        check_refit_axis(plan.axes[0].key)
    if transfer_to is not None:
        try:
            data_source(transfer_to, option="--transfer-to")
        except ClassgapError as exc:  # the message names 'dataset': say which one
            raise type(exc)(f"--transfer-to: {exc}") from None
    specs = plan.grid().runs()
    if not train_cmd:
        check_no_cmd((s.config for s in specs), "classgap's own trainer")
        # data that is not there: one error, not one failed run per seed
        for dataset, data_dir in sorted({(s.config.data.dataset, s.config.data.data_dir or "")
                                         for s in specs}):
            data_source(dataset, data_dir=data_dir or None, option="data.data_dir")
        return None
    trainer = ExternalTrainer(train_cmd)
    trainer.check(specs)  # placeholders every run can fill; the program is there
    return trainer


@dataclass(frozen=True)
class Training:
    """How a study's runs are trained: the arguments of :func:`~classgap.sweep.run_grid`."""

    backend: str = "local"
    workers: int = 1
    threads_per_worker: int | None = None
    retry_failed: bool = False
    address: str | None = None
    train_fn: Any = None
    progress: bool = False
    retries: int = RETRIES

    def run(self, store: Store, specs: Sequence[RunSpec], *, desc: str,
            train_fn: Any = None) -> None:
        run_grid(store, specs, backend=self.backend, workers=self.workers,
                 threads_per_worker=self.threads_per_worker, retry_failed=self.retry_failed,
                 retries=self.retries, address=self.address, progress=self.progress,
                 train_fn=train_fn or self.train_fn, desc=desc)


KIND = "run.kind"  # point key of the refit and probe runs (absent on grid runs)


def _grid_done(store: Store) -> list[tuple[RunSpec, Path]]:
    """The store's finished grid runs (not refit or probe runs)."""
    return [(s, d) for s, d in store.done_runs() if KIND not in s.point]


def _strength_of(spec: RunSpec, axis: str) -> Any:
    """A run's strength on ``axis``: its grid point's value, else the value in its config."""
    if axis in spec.point:
        return spec.point[axis]
    value = get_key(spec.config, axis)
    return tuple(value) if isinstance(value, list) else value


def _runs_at(runs: list[tuple[RunSpec, Path]], axis: str, strength: Any,
             ) -> list[tuple[RunSpec, Path]]:
    found = sorted((r for r in runs if _strength_of(r[0], axis) == strength),
                   key=lambda r: r[0].seed)
    if not found:
        raise StudyError(f"the store holds no finished run at {axis}={strength!r}")
    return found


def _kept(runs: list[tuple[RunSpec, Path]], result: StudyResult,
          ) -> list[tuple[RunSpec, Path]]:
    """``runs`` without those the analysis left out as failed (``--exclude-failed``), so the
    refit and reweighting audits compare the same runs as the study's statistics."""
    failed = result.failed_runs
    if failed is None or failed.empty or not failed["excluded"].any():
        return runs
    out = failed[failed["excluded"]]
    return [(spec, path) for spec, path in runs
            if not any(spec.seed == seed and _strength_of(spec, result.axis) == strength
                       for strength, seed in zip(out["strength"], out["seed"], strict=True))]


def _outcome(store: Store, specs: Sequence[RunSpec], what: str) -> list[Path]:
    """The run directories of ``specs``, or a StudyError naming the runs not done."""
    done = {spec.run_id: path for spec, path in store.done_runs()}
    missing = _failures(store, specs, done)
    if missing:
        raise StudyError(f"{len(missing)} of {len(specs)} {what} runs are not done: "
                         f"{'; '.join(missing[:5])}; see {store.path}/study.sqlite, rerun "
                         "(with --retry-failed for failed runs)")
    return [done[s.run_id] for s in specs]


def _per_class_runs(store: Store, result: StudyResult, training: Training,
                    vector: Sequence[Any], kind: str,
                    ) -> tuple[list[Path], list[Path], list[Path]]:
    """Train ``vector`` on the study's axis, one run per seed of the selected strength (that
    seed's selected recipe with the axis per class), as runs of ``store`` marked ``kind``;
    finished runs are reused. Returns the run directories of the fix, the selected and the
    reference strength (runs left out as failed are left out here too)."""
    from classgap.analysis.refit import refit_config

    axis = result.axis
    done = _grid_done(store)
    selected = _kept(_runs_at(done, axis, result.selected), result)
    reference = _kept(_runs_at(done, axis, result.reference), result)
    specs = [RunSpec.from_config(refit_config(spec.config, axis, vector, spec.seed),
                                 {**spec.point, axis: list(vector), KIND: kind})
             for spec, _ in selected]
    training.run(store, specs, desc=kind.replace("_", "-"))
    dirs = _outcome(store, specs, kind.replace("_", "-"))
    return dirs, [d for _, d in selected], [d for _, d in reference]


def _audit_per_class(result: StudyResult, dirs: Sequence[Path],
                     selected: Sequence[Path], reference: Sequence[Path],
                     vector: Sequence[Any], *, alpha: float, correction: str,
                     ) -> dict[str, Any]:
    from classgap.analysis.refit import audit_refit

    def test(runs: Sequence[Path]) -> list[Any]:
        return [read_predictions(_predictions(d, "test")) for d in runs]

    report = audit_refit(test(dirs), test(selected), test(reference), axis=result.axis,
                         vector=vector, selected_strength=result.selected,
                         reference_strength=result.reference, alpha=alpha,
                         correction=correction)
    report["runs"] = [str(d) for d in dirs]
    return report


def refit_runs(store: Store, result: StudyResult, training: Training, *,
               alpha: float = 0.05, correction: str = "bh") -> dict[str, Any]:
    """Train the class-aware refit as runs of ``store`` and audit it.

    One run per seed of the selected strength: that seed's selected recipe with the axis per
    class (:func:`~classgap.analysis.refit.refit_config`), trained by ``training`` like the
    grid; finished runs are reused. Writes ``refit.json`` (the audit of
    :func:`~classgap.analysis.refit.audit_refit` plus ``runs``, the run directories) and
    ``class_strengths.json`` into the study directory, and returns the audit.

    Raises
    ------
    ConfigError
        The axis has no per-class version.
    StudyError
        A refit run failed (its error is in ``study.sqlite``).
    """
    from classgap.analysis.refit import class_strengths_json, refit_vector

    vector = refit_vector(result.axis, result.class_aware["per_class_strengths"])
    dirs, selected, reference = _per_class_runs(store, result, training, vector, "refit")
    report = _audit_per_class(result, dirs, selected, reference, vector, alpha=alpha,
                              correction=correction)
    names = [r["class"] for r in report["vs_selected"]["classes"]]
    write_json(store.path / "class_strengths.json", class_strengths_json(names, vector))
    write_json(store.path / "refit.json", report)
    return report


def group_refit_runs(store: Store, result: StudyResult, training: Training, *,
                     alpha: float = 0.05, correction: str = "bh",
                     paying_drop: float | None = None) -> dict[str, Any] | None:
    """Train the group-aware refit as runs of ``store`` and audit it like the refit.

    The vector is :func:`~classgap.analysis.refit.group_refit_vector`: the per-class refit's,
    with each class that pays on validation giving its strength to its confusion group, found
    in the reference's and the selected strength's *validation* runs. Writes
    ``group_refit.json`` (the audit plus ``groups`` and ``runs``) and
    ``group_class_strengths.json``; returns the audit, or None when no class pays on
    validation (the group refit would be the per-class refit: nothing is trained).
    ``paying_drop``: points of validation accuracy a class must lose to pay (default
    :data:`~classgap.analysis.refit.PAYING_DROP`).
    """
    from classgap.analysis.refit import PAYING_DROP, class_strengths_json, group_refit_vector

    axis = result.axis
    done = _grid_done(store)

    def val(strength: Any) -> list[Any]:
        return [read_predictions(_predictions(d, "val"))
                for _, d in _kept(_runs_at(done, axis, strength), result)]

    ref_val, sel_val = val(result.reference), val(result.selected)
    y = ref_val[0].y_true
    names = next((list(p.classes) for p in [*sel_val, *ref_val] if p.classes is not None),
                 [str(c) for c in range(len(result.class_aware["per_class_strengths"]))])
    vector, groups = group_refit_vector(axis, result.class_aware["per_class_strengths"], y,
                                        np.stack([p.y_pred for p in ref_val]),
                                        np.stack([p.y_pred for p in sel_val]), names,
                                        paying_drop=PAYING_DROP if paying_drop is None
                                        else paying_drop, alpha=alpha, correction=correction)
    (store.path / "group_refit.json").unlink(missing_ok=True)  # never a stale audit
    if not groups:
        return None
    dirs, selected, reference = _per_class_runs(store, result, training, vector, "group_refit")
    report = _audit_per_class(result, dirs, selected, reference, vector, alpha=alpha,
                              correction=correction)
    report["groups"] = groups
    write_json(store.path / "group_class_strengths.json", class_strengths_json(names, vector))
    write_json(store.path / "group_refit.json", report)
    return report


def reweight_runs(store: Store, result: StudyResult, method: str, training: Training, *,
                  alpha: float = 0.05, correction: str = "bh") -> dict[str, Any]:
    """Train the selected strength with worst-class reweighting (``loss.reweight=method``) as
    runs of ``store``, one per seed of the selected strength, and audit them like the refit.

    Writes ``reweight.json`` into the study directory: :func:`~classgap.analysis.refit.
    audit_fix`'s audit plus ``method``, ``runs`` and ``class_weights`` (the weights of each
    epoch, mean over seeds, ``{class: [w_epoch1, ...]}``); returns it.
    """
    from classgap.analysis.refit import audit_fix

    done = _grid_done(store)
    selected = _kept(_runs_at(done, result.axis, result.selected), result)
    reference = _kept(_runs_at(done, result.axis, result.reference), result)
    specs = [RunSpec.from_config(with_point(spec.config, {"loss.reweight": method}),
                                 {**spec.point, "loss.reweight": method, KIND: "reweight"})
             for spec, _ in selected]  # an unknown method fails here, before training
    training.run(store, specs, desc="reweight")
    dirs = _outcome(store, specs, "reweight")
    report = audit_fix([read_predictions(_predictions(d, "test")) for d in dirs],
                       [read_predictions(_predictions(d, "test")) for _, d in selected],
                       [read_predictions(_predictions(d, "test")) for _, d in reference],
                       name="reweight", alpha=alpha, correction=correction)
    tables = [pd.read_csv(d / "class_weights.csv", index_col="epoch")
              for d in dirs if (d / "class_weights.csv").is_file()]
    weights = (sum(tables) / len(tables)) if tables else None
    report.update(method=method, runs=[str(d) for d in dirs],
                  class_weights=None if weights is None else
                  {str(c): [float(v) for v in weights[c]] for c in weights.columns})
    write_json(store.path / "reweight.json", report)
    return report


def transfer_runs(store: Store, training: Training, *, axis: str, reference: Any,
                  downstream: str = "digits", image_size: Any = None, random_state: int = 0,
                  **analyze_kwargs: Any) -> StudyResult:
    """One linear probe per finished grid run's frozen backbone, as runs of ``store``.

    The probe runs (:class:`~classgap.train.probe.ProbeTrainer`) are trained by ``training``'s
    backend (never by a ``--train-cmd``: the probe is classgap's, whatever trained the
    backbone) and analysed like the source task; ``analyze_kwargs`` go to
    :func:`~classgap.analysis.analyze` (``alpha``, ``max_drop``, ...).

    Returns
    -------
    StudyResult
        On the downstream classes; ``meta`` adds ``dataset``, ``source_dataset``,
        ``image_size``, ``normalisation``, ``probe_val_fraction`` and ``runs``.

    Raises
    ------
    ConfigError
        No finished run has a ``model.pt`` (train with ``train.checkpoint=true``).
    StudyError
        A probe run failed (its error, e.g. images an MLP cannot take, is in the message).
    """
    from classgap.config import config_id
    from classgap.train.probe import VAL_FRACTION, ProbeTrainer

    sources = [(s, d) for s, d in _grid_done(store) if (d / "model.pt").is_file()]
    if not sources:
        raise ConfigError("transfer needs finished runs with a saved backbone (model.pt); "
                          "none found: train the study with train.checkpoint=true")
    probe = {"probe.downstream": downstream, "probe.image_size": image_size,
             "probe.random_state": random_state}
    specs = []
    for spec, _ in sources:
        point = {**spec.point, KIND: "probe", "probe.source": spec.run_id, **probe}
        key = json.dumps([config_id(spec.config), probe], sort_keys=True, default=str)
        specs.append(RunSpec(spec.config, point, spec.seed,
                             "probe-" + hashlib.sha256(key.encode()).hexdigest()[:16]))
    trainer = ProbeTrainer(str(store.path / "runs"), downstream, image_size, random_state)
    training.run(store, specs, desc="transfer", train_fn=trainer)
    dirs = _outcome(store, specs, "transfer probe")
    records = [RunRecord(dict(spec.point), _strength_of(spec, axis), spec.seed,
                         read_predictions(_predictions(d, "val")),
                         read_predictions(_predictions(d, "test")))
               for spec, d in zip(specs, dirs, strict=True)]
    result = analyze(records, axis=axis, reference=reference, random_state=random_state,
                     **analyze_kwargs)
    size = json.loads((dirs[0] / "metrics.json").read_text()).get("image_size")
    meta = {**result.meta, "dataset": downstream,
            "source_dataset": sources[0][0].config.data.dataset, "image_size": size,
            "normalisation": "source training split mean/std (channel_stats)",
            "probe_val_fraction": VAL_FRACTION, "runs": len(records)}
    return replace(result, meta=meta)


def _downstream(store: Store, result: StudyResult, opts: dict[str, Any], training: Training,
                *, transfer_to: str | None, refit: bool, reweight: str | None = None,
                group_refit: bool = False) -> StudyResult:
    """Add the transfer probe, the class-conditional and group-aware refits and the
    reweighted selected strength, then rewrite the report."""
    if transfer_to is None and not refit and reweight is None and not group_refit:
        return result
    from classgap.analysis.fixes import frontier_row
    from classgap.analysis.refit import PAYING_DROP

    if transfer_to is not None:
        probe = transfer_runs(store, training, axis=result.axis, reference=result.reference,
                              downstream=transfer_to, alpha=opts["alpha"],
                              correction=opts["correction"], max_drop=opts["max_drop"])
        result = replace(result, transfer=probe)
    if refit:  # finished refit runs are reused, so a second call trains nothing
        outcome = refit_runs(store, result, training, alpha=opts["alpha"],
                             correction=opts["correction"])
        result = replace(result, class_aware={**result.class_aware, "refit": outcome},
                         fixes=(*result.fixes, frontier_row(
                             outcome, name="per-class refit", kind="refit",
                             training_runs=len(outcome["runs"]), inference_cost=1,
                             tuned_on="validation (per-class strengths from the sweep)")))
    if group_refit and result.selected != result.reference:
        grouped = group_refit_runs(store, result, training, alpha=opts["alpha"],
                                   correction=opts["correction"])
        if grouped is None:
            result = replace(result, notes=(*result.notes, (
                f"group-aware refit: no class's validation accuracy at the selected strength "
                f"is {PAYING_DROP:g} points or more below the reference's, so there is no "
                "group to give a strength to; nothing was trained")))
        else:
            result = replace(result, class_aware={**result.class_aware,
                                                  "group_refit": grouped},
                             fixes=(*result.fixes, frontier_row(
                                 grouped, name="group-aware refit", kind="group_refit",
                                 training_runs=len(grouped["runs"]), inference_cost=1,
                                 tuned_on="validation (per-class strengths from the sweep, "
                                          "groups from validation confusions)",
                                 groups=grouped["groups"])))
    if reweight is not None:
        fixed = reweight_runs(store, result, reweight, training, alpha=opts["alpha"],
                              correction=opts["correction"])
        result = replace(result, class_aware={**result.class_aware, "reweight": fixed},
                         fixes=(*result.fixes, frontier_row(
                             fixed, name=f"reweighting ({reweight})", kind="reweight",
                             training_runs=len(fixed["runs"]), inference_cost=1,
                             tuned_on="training (weights from the training loss)")))
    _write(result, store.path)
    return result


def _read_study(path: Path) -> tuple[StudyPlan, dict[str, Any]]:
    """The plan of a study directory's latest grid and that grid's entry of ``study.json``."""
    import json

    file = path / "study.json"
    if not (path / "study.sqlite").is_file() or not file.is_file():
        raise StudyError(f"{path}: not a study directory (no study.json and study.sqlite); "
                         f"run 'classgap study --out {path}' first")
    try:
        last = json.loads(file.read_text(encoding="utf-8"))["grids"][-1]
        base = Config.from_dict(last["base"])
        axes = tuple(Axis(k, tuple(tuple(x) if isinstance(x, list) else x for x in v))
                     for k, v in last["axes"].items())
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StudyError(f"{file}: not a readable study definition ({exc})") from None
    refs = last.get("references") or {a.key: a.values[0] for a in axes}
    plan = StudyPlan(base, axes, parse_seeds(last["seeds"]), last["mode"], refs,
                     last.get("preset"),
                     tuple(last.get("notes", ())))
    return plan, last


def report_study(out_dir: str | os.PathLike[str], *, groups: str | None = None,
                 **analysis: Any) -> StudyResult:
    """Re-analyse a study directory and rewrite its report (``classgap report STUDY_DIR``).

    Reads the latest grid of ``study.json`` with its references, analysis options and class
    grouping; ``analysis`` (``alpha``, ``correction``, ``max_drop``, ``multi_label``,
    ``exclude_failed``) overrides them, and ``groups`` (a spec of :func:`study_grouping`, or
    ``"none"``) the grouping, for this report only. A finished run whose files no longer
    match their checksums is a :class:`StudyError` naming it (``classgap study`` trains it
    again).
    """
    path = Path(out_dir)
    plan, last = _read_study(path)
    grouping = _recorded_grouping(path, plan, last) if groups is None else \
        study_grouping(plan, groups, train_cmd=last.get("train_cmd"),
                       classes=_study_classes(path))
    opts = {"alpha": 0.05, "correction": "bh", "max_drop": 2.0, "multi_label": None,
            "exclude_failed": False, **last.get("analysis", {}),
            **{k: v for k, v in analysis.items() if v is not None}}
    downstream = last.get("downstream") or {}
    with Store(path) as store:
        _check_intact(store)
        result = _analyse_all(store, plan, opts, last.get("train_cmd"), grouping)
        # the transfer probe and the refit are part of the study: a re-report keeps them
        return _downstream(store, result, opts, Training(threads_per_worker=
                                                         plan.base.train.threads),
                           transfer_to=downstream.get("transfer_to"),
                           refit=bool(downstream.get("refit")),
                           reweight=downstream.get("reweight"),
                           group_refit=bool(downstream.get("group_refit")))


def _study_classes(path: Path) -> list[str] | None:
    """The class names a finished grid run's test predictions give (None without names or
    runs): what ``report --groups`` aligns its map to."""
    with Store(path) as store:
        done = _grid_done(store)
    if not done:
        return None
    names = read_predictions(_predictions(done[0][1], "test")).classes
    return None if names is None else [str(c) for c in names]


def _recorded_grouping(path: Path, plan: StudyPlan, last: dict[str, Any]) -> Grouping | None:
    """The grouping ``study.json`` records; for a study recorded before groups were, the
    dataset's own when it can still be read (a CIFAR-100 folder may have moved)."""
    if "groups" in last:
        recorded = last["groups"]
        return None if recorded is None else \
            Grouping.from_dict(recorded, where=str(path / "study.json"))
    try:
        return study_grouping(plan, None, train_cmd=last.get("train_cmd"))
    except ClassgapError:
        return None


def verify_study(out_dir: str | os.PathLike[str]) -> list[RunCheck]:
    """Check every finished run of a study directory against the checksums recorded when it
    finished (``classgap study --verify``); change no run.

    Returns
    -------
    list of RunCheck
        One per finished run, in registration order; ``ok`` False for the runs the next
        ``classgap study`` would train again, with the damaged files and their problems.
    """
    path = Path(out_dir)
    if not (path / "study.sqlite").is_file():
        raise StudyError(f"{path}: not a study directory (no study.sqlite); run "
                         f"'classgap study --out {path}' first")
    with Store(path) as store:
        return store.verify()


def _check_intact(store: Store) -> None:
    """A StudyError naming the finished runs whose files changed, for the commands that read a
    study without training (``classgap report``, ``plan-seeds``): ``classgap study`` heals."""
    damaged = [c for c in store.verify() if not c.ok]
    if not damaged:
        return
    shown = "; ".join(c.describe() for c in damaged[:3])
    more = f"; and {len(damaged) - 3} more" if len(damaged) > 3 else ""
    raise StudyError(f"{store.path}: {len(damaged)} finished run(s) must be trained again, "
                     f"their files changed since they finished: {shown}{more}; re-run the "
                     f"'classgap study' command that made it (--out {store.path}): it sets them "
                     f"aside and trains them again ('classgap study --verify {store.path}' "
                     f"lists them)")


def plan_study_seeds(out_dir: str | os.PathLike[str], *, drop: float = 1.0,
                     power: float = 0.8, alpha: float | None = None,
                     correction: str | None = None, groups: str | None = None) -> SeedPlan:
    """Plan seeds from a study directory's own variance (``classgap plan-seeds STUDY_DIR``).

    Reads the study as :func:`report_study` does and plans on its first axis, on the runs
    where the other axes are at their reference; ``alpha`` and ``correction`` default to the
    study's own (``study.json``). See :func:`~classgap.analysis.plan.plan_seeds`.

    Parameters
    ----------
    out_dir : path
        A study directory (``classgap study --out``).
    drop : float in (0, 100]
        The drop to plan seeds for, in points.
    power : float in (0, 1)
        Target probability of detecting it.
    alpha, correction : optional
        Override the study's level and correction across classes.
    groups : str, optional
        Also plan per group, level by level (:meth:`SeedPlan.with_groups`): a spec of
        :func:`~classgap.data.groups.load_groups`, or ``"none"``; default the grouping the
        study recorded (``study.json``), if any.

    Returns
    -------
    SeedPlan
        Per class (and per group): what the study's seeds detect and the seeds ``drop`` needs.
    """
    path = Path(out_dir)
    plan, last = _read_study(path)
    opts = {"alpha": 0.05, "correction": "bh", **last.get("analysis", {})}
    axis = plan.axes[0]
    with Store(path) as store:
        _check_intact(store)
        records, _, _ = _axis_records(store, plan, plan.grid().runs(), axis)
    seeds: dict[str, int] = {}
    for r in records:
        seeds[_strength_key(r.strength)] = seeds.get(_strength_key(r.strength), 0) + 1
    if min(seeds.values()) < 2:
        few = ", ".join(f"{k} ({v})" for k, v in seeds.items() if v < 2)
        raise StudyError(f"{path}: seed planning needs at least 2 finished seeds per strength "
                         f"of {axis.key}; got one at {few}")
    seed_plan = plan_records(records, reference=(plan.references or {}).get(axis.key,
                                                                            axis.values[0]),
                             drop=drop, power=power,
                             alpha=opts["alpha"] if alpha is None else alpha,
                             correction=opts["correction"] if correction is None else correction)
    classes = [str(c) for c in seed_plan.classes["class"]]
    if groups is None:
        recorded = _recorded_grouping(path, plan, last)
        group_map = None if recorded is None else recorded.map.align(classes)
    elif groups.strip() == NO_GROUPS:
        group_map = None
    else:
        from classgap.data.groups import load_groups

        group_map = load_groups(groups, classes, data_dir=plan.base.data.data_dir)
    return seed_plan if group_map is None else seed_plan.with_groups(group_map)


def _predictions(run_dir: str | os.PathLike[str], split: str) -> Path:
    """The ``split`` prediction file of a finished run, or a StudyError saying it is gone."""
    path = find_predictions(run_dir, split)
    if path is None:
        raise StudyError(f"{run_dir}: the run is recorded as done but its {split} "
                         "predictions (npz, csv, parquet or pt) are missing; was the study "
                         "directory changed by hand?")
    return path
