"""The rule file and the file-level entry points: fit on validation files, apply to any file.

A rule is JSON (never pickle): its classes, objective, tolerance, noise margin, per-class
weights and log offsets, the files it was fit on with their sha256, and its validation figures
(per-class accuracy before and after, against the reference). Prediction files are read with
:mod:`classgap.audit.io`, so every format and label convention of ``classgap audit`` works here.

>>> import numpy as np
>>> from classgap.audit import Predictions
>>> y = np.array([0, 0, 1, 1])
>>> cand = Predictions.from_arrays(y, probs=np.array([[.9, .1], [.6, .4], [.45, .55], [.7, .3]]))
>>> ref = Predictions.from_arrays(y, np.array([0, 1, 1, 1]))
>>> rule = fit_rule([ref], [cand], z=0.0)
>>> apply_rule(rule, cand).y_pred.tolist()
[0, 1, 1, 1]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from classgap._files import atomic_write
from classgap._validation import check_in_range, fail
from classgap.audit.io import Predictions, align_runs, load_groups, write_predictions
from classgap.errors import DataFormatError, InputError
from classgap.fix.solver import RuleFit, fit_weights, softmax

__all__ = ["DecisionRule", "apply_rule", "apply_rule_files", "fit_rule", "fit_rule_files",
           "load_rule"]

PathLike = str | os.PathLike[str]
FORMAT = "classgap-rule/1"


@dataclass(frozen=True, eq=False)
class DecisionRule:
    """Per-class weights of ``argmax_k w_k p_k(x)`` for one recipe, with their provenance.

    ``weights`` (K,) has max 1; ``offsets`` = log weights (add them to logits).
    ``tolerance`` and ``z`` are as fit (points; standard errors); ``validation`` holds the
    figures of :meth:`to_dict`; ``fit_on`` the files (path and sha256) per side.
    """

    classes: tuple[str, ...]
    weights: np.ndarray
    objective: str
    tolerance: float
    z: float
    validation: dict[str, Any]
    fit_on: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @property
    def offsets(self) -> np.ndarray:
        """(K,) log-space offsets: the rule is ``argmax_k (logit_k + offset_k)``."""
        return np.log(self.weights)

    def to_dict(self) -> dict[str, Any]:
        """The rule file's content (JSON-ready)."""
        return {"format": FORMAT, "classes": list(self.classes),
                "objective": self.objective, "tolerance_points": self.tolerance,
                "noise_margin_z": self.z,
                "weights": [float(w) for w in self.weights],
                "offsets": [float(b) for b in self.offsets],
                "fit_on": self.fit_on, "validation": self.validation}

    def save(self, path: PathLike) -> Path:
        """Write the rule as JSON (atomically); returns the path."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")


def load_rule(path: PathLike) -> DecisionRule:
    """Read a rule file written by :meth:`DecisionRule.save`; one clear error if it is not one."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(f"{source}: rule file does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{source}: is not a rule file (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise fail("format", f"be {FORMAT!r} (a file written by 'classgap fix fit')", got,
                   source=source, error=DataFormatError)
    try:
        classes = tuple(str(c) for c in data["classes"])
        weights = np.asarray(data["weights"], dtype=np.float64)
        rule = DecisionRule(classes=classes, weights=weights, objective=str(data["objective"]),
                            tolerance=float(data["tolerance_points"]),
                            z=float(data["noise_margin_z"]), validation=data["validation"],
                            fit_on=data.get("fit_on", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"{source}: is not a complete rule file ({exc!r})") from None
    if weights.shape != (len(classes),) or not (np.isfinite(weights) & (weights > 0)).all():
        raise fail("weights", f"hold {len(classes)} finite positive numbers", weights.tolist(),
                   source=source, error=DataFormatError)
    return rule


def _probs(run: Predictions, what: str) -> np.ndarray:
    """(N, K) probabilities of a run (logits softmaxed); labels-only files refused."""
    if run.scores is None:
        raise fail("scores", f"be present (logits or probs) in every {what} file: the rule "
                   "reweights scores", "predicted labels only", source=run.source,
                   error=DataFormatError)
    return softmax(run.scores) if run.score_kind == "logits" else run.scores


def fit_rule(reference: Sequence[Predictions], candidate: Sequence[Predictions], *,
             tolerance: float = 0.0, objective: str = "mean", z: float = 0.5,
             polish: bool = False) -> DecisionRule:
    """Fit the rule for the candidate recipe against the reference, on validation runs.

    Parameters
    ----------
    reference : the reference recipe's validation runs (labels suffice).
    candidate : the candidate recipe's validation runs; scores (logits or probs) needed.
        Every run of both sides must cover the same validation images (aligned by
        ``sample_id`` when present).
    tolerance : points of per-class accuracy a class may lose against the reference's mean.
    objective : ``"mean"`` or ``"balanced"`` accuracy.
    z : noise margin, in standard errors of each class's paired validation difference
        (:mod:`classgap.fix.solver`); 0 constrains the point estimate.
    polish : exact coordinate ascent after the dual (:func:`~classgap.fix.fit_weights`).

    Raises
    ------
    InfeasibleRuleError
        when no weights keep every class at its target on validation.
    """
    check_in_range(tolerance, "tolerance", 0.0, 100.0)
    cands = list(candidate) if not isinstance(candidate, Predictions) else [candidate]
    refs = list(reference) if not isinstance(reference, Predictions) else [reference]
    if not cands or not refs:
        raise fail("candidate" if not cands else "reference", "hold at least one run", "none")
    for run in cands:  # before alignment: the clearer error first
        _probs(run, "candidate")
    (cands, refs), n_classes, names = align_runs(cands, refs)
    widths = {r.scores.shape[1] for r in cands if r.scores is not None}
    if widths != {n_classes}:
        raise fail("scores", f"have one column per class ({n_classes})",
                   f"{sorted(widths)} columns", source=cands[0].source, error=DataFormatError)
    probs = [_probs(r, "candidate") for r in cands]
    fit = fit_weights(cands[0].y_true, probs, [r.y_pred for r in refs],
                      tolerance=tolerance / 100.0, objective=objective, z=z, polish=polish,
                      class_names=names)
    return DecisionRule(classes=names, weights=fit.weights, objective=objective,
                        tolerance=float(tolerance), z=float(z),
                        validation=_figures(fit, names, len(cands), len(refs)))


def _figures(fit: RuleFit, names: tuple[str, ...], n_cand: int, n_ref: int) -> dict[str, Any]:
    """The rule file's validation figures, in points (accuracy x 100)."""
    def pts(x: np.ndarray) -> list[float]:
        return [round(100 * float(v), 4) for v in x]

    return {"candidate_runs": n_cand, "reference_runs": n_ref, "noise_margin_z_used": fit.z_used,
            "objective_before": round(100 * fit.objective_before, 4),
            "objective_after": round(100 * fit.objective_after, 4),
            "per_class": {"reference": pts(fit.reference), "before": pts(fit.before),
                          "after": pts(fit.after), "target": pts(fit.target),
                          "noise_margin": pts(fit.margin),
                          "after_minus_reference": pts(fit.after - fit.reference)},
            "worst_after_minus_reference": round(100 * float((fit.after - fit.reference).min()),
                                                 4)}


def apply_rule(rule: DecisionRule, run: Predictions, *, source: str | None = None
               ) -> Predictions:
    """``run`` with the rule's predictions and adjusted scores (logits + offsets, or the
    reweighted probabilities renormalised). Its classes must be the rule's."""
    where = source or "the rule"
    scores = run.scores
    if scores is None:
        raise fail("scores", "be present (logits or probs) to apply a rule",
                   "predicted labels only", source=run.source, error=DataFormatError)
    if run.classes is not None and tuple(run.classes) != rule.classes:
        shown = ", ".join(run.classes[:5]) + (", ..." if len(run.classes) > 5 else "")
        raise InputError(f"{run.source}: its classes ({shown}) are not the classes of "
                         f"{where} ({', '.join(rule.classes[:5])}"
                         f"{', ...' if len(rule.classes) > 5 else ''}): a rule applies only to "
                         "the classes it was fit on")
    if scores.shape[1] != len(rule.classes):
        raise InputError(f"{run.source}: has {scores.shape[1]} score columns but {where} "
                         f"was fit on {len(rule.classes)} classes: a rule applies only to the "
                         "classes it was fit on")
    if run.score_kind == "logits":
        adjusted = scores + rule.offsets[None, :]
    else:
        weighted = scores * rule.weights[None, :]
        adjusted = weighted / weighted.sum(axis=1, keepdims=True)
    return Predictions(y_true=run.y_true, y_pred=adjusted.argmax(axis=1), scores=adjusted,
                       score_kind=run.score_kind, sample_id=run.sample_id, seed=run.seed,
                       classes=run.classes, source=run.source)


def _sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _group(paths: Sequence[PathLike] | PathLike, name: str) -> list[PathLike]:
    group = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not group:
        raise fail(name, "hold at least one prediction file", group)
    return group


def fit_rule_files(reference: Sequence[PathLike], candidate: Sequence[PathLike], *,
                   classes: Sequence[str] | None = None, tolerance: float = 0.0,
                   objective: str = "mean", z: float = 0.5, polish: bool = False
                   ) -> DecisionRule:
    """:func:`fit_rule` on validation prediction files (any format ``classgap audit`` reads);
    the rule records each file's path and sha256."""
    refs, cands = _group(reference, "reference"), _group(candidate, "candidate")
    ref_runs, cand_runs = load_groups([refs, cands], classes=classes)
    rule = fit_rule(ref_runs, cand_runs, tolerance=tolerance, objective=objective, z=z,
                    polish=polish)
    fit_on = {side: [{"path": str(p), "sha256": _sha256(p)} for p in group]
              for side, group in (("reference", refs), ("candidate", cands))}
    return DecisionRule(classes=rule.classes, weights=rule.weights, objective=rule.objective,
                        tolerance=rule.tolerance, z=rule.z, validation=rule.validation,
                        fit_on=fit_on)


def _out_names(paths: list[Path]) -> list[str]:
    """Output file names: the input's name, prefixed by its folder where names repeat (a
    study's runs are all ``test.npz``)."""
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}_{p.name}" for p in paths]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise fail("predictions", "have distinct file names (or folder/name pairs)",
                   f"{dup!r} twice")
    return names


def apply_rule_files(rule: DecisionRule | PathLike, paths: Sequence[PathLike],
                     out_dir: PathLike, *, classes: Sequence[str] | None = None
                     ) -> list[Path]:
    """Apply a rule (or a rule file) to prediction files; write the adjusted files (same
    format: suffix, labels as the rule's classes, adjusted scores and ``y_pred``) into
    ``out_dir``. Returns the written paths."""
    source = str(rule) if not isinstance(rule, DecisionRule) else None
    rule = load_rule(rule) if not isinstance(rule, DecisionRule) else rule
    files = [Path(p) for p in _group(cast(Any, paths), "predictions")]
    names = _out_names(files)
    runs = load_groups([files], classes=classes)[0]
    adjusted = [apply_rule(rule, r, source=source) for r in runs]  # all checked before writing
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail("out_dir", "be a folder that can be created", f"{out} ({exc.strerror})",
                   error=DataFormatError) from None
    written = []
    for run, name in zip(adjusted, names, strict=True):
        fields: dict[str, Any] = {cast(str, run.score_kind): run.scores}
        y_true: Any = run.y_true
        y_pred: Any = run.y_pred
        if Path(name).suffix.lower() == ".csv" and run.classes is not None:
            labels = np.array(run.classes, dtype=str)  # a CSV keeps the names as labels
            y_true, y_pred = labels[run.y_true], labels[run.y_pred]
        written.append(write_predictions(out / name, y_true=y_true, y_pred=y_pred,
                                         sample_id=run.sample_id, seed=run.seed,
                                         classes=run.classes, **fields))
    return written
