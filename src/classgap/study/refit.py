"""Class-aware refit (spec step 9): train the per-class strength vector, audit it.

The analysis fits ``class_aware["per_class_strengths"]``: for each class, the swept strength
with the best mean *validation* accuracy. :func:`refit_study` trains it as class-conditional
augmentation (Kirichenko et al. 2023: the knob's value depends on the sample's label, from
the start of training), with the selected run's recipe and the study's seeds, and audits the
refit runs with :func:`~classgap.audit.compare_predictions` against the selected strength
(baseline) and against the reference.

Choices:

* Augmentation knobs and label smoothing have a per-class version (class-conditional
  augmentation; class-conditional label smoothing, where a sample of class y is smoothed with
  ``eps_y``), but not ``mixup``/``cutmix`` (a mixed pair has two labels): any other axis
  raises :class:`~classgap.errors.ConfigError`.
* A strength of ``None`` in the sweep (knob absent) becomes the knob's off value.
* Runs live in ``out_dir/refit/seed<k>``; a directory already holding the same config and its
  ``metrics.json`` is reused, so a repeated ``--refit`` does not train again.
* ``out_dir/class_strengths.json`` is ``{class name: value}`` for ``classgap train --aug
  KNOB=@class_strengths.json``; a name that :func:`~classgap.augment.parse_aug` would read as
  an index or the default (digits, ``"*"``) is written as its index instead, so the file
  always means the same vector.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classgap.audit import Predictions, compare_predictions, read_predictions
from classgap.config import Config
from classgap.errors import ConfigError, InputError
from classgap.study.result import StudyResult
from classgap.sweep import RunSpec, Store, find_predictions
from classgap.sweep.store import write_json

__all__ = ["MAX_MEAN_COST", "axis_value", "check_refit_axis", "class_strengths_json",
           "refit_study", "refit_verdict"]

#: The refit's target (issue 9): no class significantly below the reference, at a mean test
#: accuracy at most this many points below the selected strength's.
MAX_MEAN_COST = 0.3

TrainFn = Callable[[Config, Path], Any]


def axis_value(spec: RunSpec, axis: str) -> Any:
    """A run's strength on ``axis``: its grid point's value, else the value in its config."""
    if axis in spec.point:
        return spec.point[axis]
    section, _, name = axis.partition(".")
    value = spec.config.to_dict().get(section, {}).get(name)
    return tuple(value) if isinstance(value, list) else value


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, tuple | list):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class _PerClassKey:
    """A config key that takes one value per class: its section, name, off value, type."""

    section: str
    name: str
    off: float
    integer: bool = False


def _knob(axis: str) -> _PerClassKey:
    """The per-class version of ``axis``: an augmentation knob or label smoothing."""
    if axis == "optim.label_smoothing":
        return _PerClassKey("optim", "label_smoothing", 0.0)
    from classgap.augment import AUGMENTATIONS

    section, _, name = axis.partition(".")
    if section != "aug":
        raise ConfigError(f"--refit needs an augmentation axis (aug.KNOB) or "
                          f"optim.label_smoothing; '{axis}' has no per-class version")
    knob = AUGMENTATIONS.get(name)
    if knob.mixes:
        raise ConfigError(f"--refit cannot train '{axis}' per class: a mixing augmentation "
                          "pairs samples of two classes, so it takes one alpha for all")
    return _PerClassKey("aug", name, float(knob.off), bool(knob.integer))


def check_refit_axis(axis: str) -> None:
    """Raise :class:`ConfigError` unless ``axis`` has a per-class version the refit can train."""
    _knob(axis)


def _vector(knob: _PerClassKey, values: Sequence[Any]) -> tuple[float, ...]:
    out = []
    for v in values:
        if isinstance(v, tuple | list):
            raise ConfigError(f"--refit needs scalar strengths on {knob.section}.{knob.name}; "
                              f"the sweep holds the per-class value {list(v)}")
        v = knob.off if v is None else float(v)
        out.append(int(v) if knob.integer else v)  # pixel knobs take whole numbers
    return tuple(out)


def class_strengths_json(names: Sequence[str], vector: Sequence[Any]) -> dict[str, Any]:
    """``{class name: value}`` that ``parse_aug("KNOB=@file")`` reads back as ``vector``.

    Examples
    --------
    >>> class_strengths_json(["cat", "dog"], [0.5, 1.0])
    {'cat': 0.5, 'dog': 1.0}
    >>> class_strengths_json(["1", "0"], [0.5, 1.0])  # names parse_aug would read as indices
    {'0': 0.5, '1': 1.0}
    """
    ambiguous = any(n == "*" or n.lstrip("-").isdigit() for n in names)
    keys = [str(i) for i in range(len(names))] if ambiguous else list(names)
    return dict(zip(keys, _jsonable(list(vector)), strict=True))


def _runs_at(runs: list[tuple[RunSpec, Path]], axis: str, strength: Any
             ) -> list[tuple[RunSpec, Path]]:
    found = sorted((r for r in runs if axis_value(r[0], axis) == strength),
                   key=lambda r: r[0].seed)
    if not found:
        raise InputError(f"the store holds no finished run at {axis}={strength!r}")
    return found


def _test_preds(run_dir: Path) -> Predictions:
    path = find_predictions(run_dir, "test")
    if path is None:
        raise InputError(f"run directory {run_dir} holds no test predictions")
    return read_predictions(path)


def _is_done(run_dir: Path, config: Config) -> bool:
    try:
        old = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (old == json.loads(json.dumps(config.to_dict()))
            and (run_dir / "metrics.json").is_file() and find_predictions(run_dir, "test")
            is not None)


def refit_verdict(vs_selected: Any, vs_reference: Any) -> dict[str, Any]:
    """Did the refit remove the drops at an acceptable price? JSON-safe, deltas in points.

    ``below_reference``: classes significantly below the reference (q < alpha, the study's
    test); ``mean_vs_selected`` / ``mean_vs_reference``: the refit's mean test accuracy minus
    theirs, with intervals; ``target_met``: no class below the reference and a mean at most
    :data:`MAX_MEAN_COST` points below the selected strength's (point estimate).
    """
    def pts(x: Any) -> float | None:
        return None if x is None or not math.isfinite(float(x)) else round(100 * float(x), 3)

    below = vs_reference.drops()
    o_sel, o_ref = vs_selected.overall, vs_reference.overall
    cost = pts(o_sel["delta"])
    return {
        "below_reference": [{"class": str(r["class"]), "delta": pts(r["delta"]),
                             "q_value": float(r["q_value"])} for _, r in below.iterrows()],
        "above_reference": [str(c) for c in
                            vs_reference.classes.loc[vs_reference.classes["verdict"] == "gain",
                                                     "class"]],
        "below_selected": [str(c) for c in vs_selected.drops()["class"]],
        "mean_vs_selected": {"delta": cost, "low": pts(o_sel["delta_low"]),
                             "high": pts(o_sel["delta_high"]), "p_value": o_sel["p_value"]},
        "mean_vs_reference": {"delta": pts(o_ref["delta"]), "low": pts(o_ref["delta_low"]),
                              "high": pts(o_ref["delta_high"]), "p_value": o_ref["p_value"]},
        "max_mean_cost": MAX_MEAN_COST,
        "target_met": bool(below.empty and cost is not None and cost >= -MAX_MEAN_COST),
    }


def refit_study(store: Store, result: StudyResult, *, out_dir: str | Path,
                seeds: Sequence[int] | None = None, train_fn: TrainFn | None = None,
                workers: int = 1, alpha: float = 0.05, correction: str = "bh",
                progress: bool = False) -> dict[str, Any]:
    """Train the per-class strength vector as class-conditional augmentation and audit it.

    Parameters
    ----------
    store : Store
        The source study (its selected and reference runs are the baselines).
    result : StudyResult
        The source analysis; ``result.axis`` must be an ``aug.KNOB`` with a per-class version.
    out_dir : path
        Receives ``refit/seed<k>/`` run directories, ``refit.json`` and
        ``class_strengths.json``.
    seeds : sequence of int, optional
        Default: the seeds of the selected strength's runs (the study's seeds).
    train_fn : callable, optional
        ``train_fn(config, run_dir)`` leaving a run directory with ``test`` predictions,
        called once per missing run; default: :func:`classgap.train.train_many` over
        ``workers`` processes.
    workers : int
        Parallel refit runs (default trainer only).
    alpha, correction
        As the study's: the refit is audited with the same tests.
    progress : bool
        A progress bar over the refit runs (on a terminal).

    Returns
    -------
    dict
        JSON-safe: ``axis``, ``per_class_strengths`` (class order), ``class_strengths``
        (by name), ``seeds``, ``runs`` (directories), ``vs_selected`` and ``vs_reference``
        (:meth:`~classgap.audit.Comparison.to_dict`; deltas are refit − baseline),
        ``verdict`` (:func:`refit_verdict`), ``mean_test`` (``{"refit", "selected",
        "reference"}``, mean over seeds). Also written to ``out_dir/refit.json``.

    Raises
    ------
    ConfigError
        The axis is not an augmentation knob with a per-class version.
    """
    axis = result.axis
    knob = _knob(axis)
    vector = _vector(knob, result.class_aware["per_class_strengths"])
    done = store.done_runs()
    selected = _runs_at(done, axis, result.selected)
    reference = _runs_at(done, axis, result.reference)
    seeds = sorted({s.seed for s, _ in selected}) if seeds is None else [int(s) for s in seeds]
    out = Path(out_dir)

    configs, refit_dirs = [], []
    for seed in seeds:
        # The selected run of this seed is the recipe (any selected run for a new seed);
        # only the knob becomes per class, so the audit isolates the class-conditioning.
        base = next((s for s, _ in selected if s.seed == seed), selected[0][0]).config
        data = copy.deepcopy(base.to_dict())
        data.setdefault(knob.section, {})[knob.name] = list(vector)
        data["train"]["seed"] = seed
        configs.append(Config.from_dict(data))
        refit_dirs.append(out / "refit" / f"seed{seed}")
    todo = [i for i, (c, d) in enumerate(zip(configs, refit_dirs, strict=True))
            if not _is_done(d, c)]
    if train_fn is not None:
        for i in todo:
            refit_dirs[i].mkdir(parents=True, exist_ok=True)
            train_fn(configs[i], refit_dirs[i])
    elif todo:
        from classgap.train import train_many

        train_many([configs[i] for i in todo], [refit_dirs[i] for i in todo],
                   workers=workers, threads_per_worker=configs[0].train.threads,
                   overwrite=True, progress=progress)
    refit_preds = [_test_preds(d) for d in refit_dirs]

    sel_preds = [_test_preds(d) for _, d in selected]
    ref_preds = [_test_preds(d) for _, d in reference]
    y = refit_preds[0].y_true
    for p in sel_preds + ref_preds + refit_preds:
        if not np.array_equal(p.y_true, y):
            raise InputError(f"test labels differ between the refit runs and {p.source}: "
                             "they must share the test set")
    k = max(p.n_classes_hint for p in sel_preds + refit_preds)
    names = next((list(p.classes) for p in sel_preds + refit_preds if p.classes is not None),
                 [str(c) for c in range(k)])
    if len(vector) != k:
        raise InputError(f"'per_class_strengths' must hold one value per class ({k}); "
                         f"got {len(vector)}")
    kw: dict[str, Any] = {"class_names": names, "random_state": 0, "alpha": alpha,
                          "correction": correction}
    cand = [p.y_pred for p in refit_preds]
    vs_sel = compare_predictions(y, [p.y_pred for p in sel_preds], cand, k, **kw)
    vs_ref = compare_predictions(y, [p.y_pred for p in ref_preds], cand, k, **kw)

    def mean_acc(preds: list[Predictions]) -> float:
        return float(np.mean([(p.y_pred == y).mean() for p in preds]))

    strengths = class_strengths_json(names, vector)
    verdict = refit_verdict(vs_sel, vs_ref)
    report = {"axis": axis, "per_class_strengths": _jsonable(list(vector)),
              "class_strengths": dict(zip(names, _jsonable(list(vector)), strict=True)),
              "selected": _jsonable(result.selected), "reference": _jsonable(result.reference),
              "seeds": list(seeds), "runs": [str(d) for d in refit_dirs],
              "vs_selected": vs_sel.to_dict(), "vs_reference": vs_ref.to_dict(),
              "verdict": verdict,
              "mean_test": {"refit": mean_acc(refit_preds), "selected": mean_acc(sel_preds),
                            "reference": mean_acc(ref_preds)}}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "class_strengths.json", strengths)
    write_json(out / "refit.json", report)
    return report
