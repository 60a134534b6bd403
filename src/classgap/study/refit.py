"""Class-aware refit (spec step 9): train the per-class strength vector, audit it.

The analysis fits ``class_aware["per_class_strengths"]``: for each class, the swept strength
with the best mean *validation* accuracy. :func:`refit_study` trains it as class-conditional
augmentation (Kirichenko et al. 2023: the knob's value depends on the sample's label, from
the start of training), with the selected run's recipe and the study's seeds, and audits the
refit runs with :func:`~classgap.audit.compare_predictions` against the selected strength
(baseline) and against the reference.

Choices:

* Only augmentation knobs have a per-class version, and among them not ``mixup``/``cutmix``
  (a mixed pair has two labels): any other axis raises :class:`~classgap.errors.ConfigError`.
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
from pathlib import Path
from typing import Any

import numpy as np

from classgap.audit import Predictions, compare_predictions, read_predictions
from classgap.config import Config
from classgap.errors import ConfigError, InputError
from classgap.study.result import StudyResult
from classgap.sweep import RunSpec, Store, find_predictions
from classgap.sweep.store import write_json

__all__ = ["axis_value", "class_strengths_json", "refit_study"]

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


def _knob(axis: str) -> Any:
    from classgap.augment import AUGMENTATIONS

    section, _, name = axis.partition(".")
    if section != "aug":
        raise ConfigError(f"--refit needs an augmentation axis (aug.KNOB); '{axis}' has no "
                          "per-class version (a class-conditional recipe exists only for "
                          "augmentation strengths)")
    knob = AUGMENTATIONS.get(name)
    if knob.mixes:
        raise ConfigError(f"--refit cannot train '{axis}' per class: a mixing augmentation "
                          "pairs samples of two classes, so it takes one alpha for all")
    return knob


def _vector(knob: Any, values: Sequence[Any]) -> tuple[float, ...]:
    out = []
    for v in values:
        if isinstance(v, tuple | list):
            raise ConfigError(f"--refit needs scalar strengths on aug.{knob.name}; the sweep "
                              f"holds the per-class value {list(v)}")
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


def _default_train(config: Config, run_dir: Path) -> Any:
    from classgap.train import train

    return train(config, run_dir, progress=False)


def _is_done(run_dir: Path, config: Config) -> bool:
    try:
        old = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (old == json.loads(json.dumps(config.to_dict()))
            and (run_dir / "metrics.json").is_file() and find_predictions(run_dir, "test")
            is not None)


def refit_study(store: Store, result: StudyResult, *, out_dir: str | Path,
                seeds: Sequence[int] | None = None,
                train_fn: TrainFn | None = None) -> dict[str, Any]:
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
        ``train_fn(config, run_dir)`` leaving a run directory with ``test`` predictions;
        default :func:`classgap.train.train`.

    Returns
    -------
    dict
        JSON-safe: ``axis``, ``per_class_strengths`` (class order), ``class_strengths``
        (by name), ``seeds``, ``runs`` (directories), ``vs_selected`` and ``vs_reference``
        (:meth:`~classgap.audit.Comparison.to_dict`; deltas are
        refit − baseline), ``mean_test`` (``{"refit", "selected", "reference"}``, mean over
        seeds). Also written to ``out_dir/refit.json``.

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
    train_fn = train_fn or _default_train

    refit_dirs, refit_preds = [], []
    for seed in seeds:
        # The selected run of this seed is the recipe (any selected run for a new seed);
        # only the knob becomes per class, so the audit isolates the class-conditioning.
        base = next((s for s, _ in selected if s.seed == seed), selected[0][0]).config
        data = copy.deepcopy(base.to_dict())
        data.setdefault("aug", {})[knob.name] = list(vector)
        data["train"]["seed"] = seed
        config = Config.from_dict(data)
        run_dir = out / "refit" / f"seed{seed}"
        if not _is_done(run_dir, config):
            run_dir.mkdir(parents=True, exist_ok=True)
            train_fn(config, run_dir)
        refit_dirs.append(run_dir)
        refit_preds.append(_test_preds(run_dir))

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
    kw: dict[str, Any] = {"class_names": names, "random_state": 0}
    cand = [p.y_pred for p in refit_preds]
    vs_sel = compare_predictions(y, [p.y_pred for p in sel_preds], cand, k, **kw)
    vs_ref = compare_predictions(y, [p.y_pred for p in ref_preds], cand, k, **kw)

    def mean_acc(preds: list[Predictions]) -> float:
        return float(np.mean([(p.y_pred == y).mean() for p in preds]))

    strengths = class_strengths_json(names, vector)
    report = {"axis": axis, "per_class_strengths": _jsonable(list(vector)),
              "class_strengths": dict(zip(names, _jsonable(list(vector)), strict=True)),
              "selected": _jsonable(result.selected), "reference": _jsonable(result.reference),
              "seeds": list(seeds), "runs": [str(d) for d in refit_dirs],
              "vs_selected": vs_sel.to_dict(), "vs_reference": vs_ref.to_dict(),
              "mean_test": {"refit": mean_acc(refit_preds), "selected": mean_acc(sel_preds),
                            "reference": mean_acc(ref_preds)}}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "class_strengths.json", strengths)
    write_json(out / "refit.json", report)
    return report
