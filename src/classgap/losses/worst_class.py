"""Worst-class reweighting from training statistics: CLAM, tilted CE, GGF and AP*.

Each rule updates the class weights of a weighted loss once per epoch from per-class training
statistics (accuracy or mean loss, from an evaluation pass over the training set), as in Jiang,
Ban and Weng, "Understanding and Reducing the Class-Dependent Effects of Data Augmentation with
A Two-Player Game Approach" (TMLR 2025; reference code ``jyp9961/CLAM``, ``train_CV.py``). The
rules are pure functions of the weights, the statistics and an explicit state
(:func:`class_weights_update`); weights always have mean 1 (sum K), as in the reference.

==========  ===================================================================================
``clam``    ``w ← clip(w · d, lo, hi)``, ``d = exp(−acc) / mean(exp(−acc))``, then mean 1
            (defaults ``clip=(0.5, 2)``).
``tilted``  ``w ← (1 − mix) w + mix · K softmax(loss)`` (default ``mix=0.5``).
``ggf``     classes sorted by loss, worst first, get ``max(discount^rank, min_weight)``,
            mean 1 (Fashion-MNIST defaults ``discount=0.95``, ``min_weight=0.1``).
``apstar``  the worst ``worst_fraction`` of classes by loss (at least one) get
            ``α w + (1 − α) (K / n_worst) / k``, the others ``α w``; clip to ``clip``; mean 1.
            The counter ``k`` returns to ``k_min`` when the worst class's loss reaches a new
            low and grows by one otherwise (defaults ``alpha=0.5``, ``worst_fraction=0.1``,
            ``clip=(0.5, 2)``, ``k_min=1``, initial best loss 10).
==========  ===================================================================================

Where this departs from the reference, on purpose (each for a stated reason):

* Ties in the loss ranking (GGF, AP*) share their ranks' weights equally, so classes with equal
  statistics get equal weights and a neutral epoch (every class alike) leaves every weight at
  1; the reference breaks ties by class index.
* AP* normalises once to mean 1 after clipping; the reference renormalises class by class in a
  loop whose running sum changes as it goes, which does not give mean 1 exactly.
* The pass that measures the statistics runs over the training set *without* augmentation
  (the trainer's choice: the weights should follow what the model learned, not the crop it
  drew); the reference evaluates on its augmented training loader.

>>> w, _ = class_weights_update("clam", [1.0, 1.0], train_acc=[0.9, 0.5])
>>> [round(float(x), 4) for x in w]
[0.8026, 1.1974]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from classgap._validation import check_choice, fail

__all__ = ["REWEIGHT_DEFAULTS", "REWEIGHT_METHODS", "class_weights_update", "initial_state"]

REWEIGHT_METHODS = ("clam", "tilted", "ggf", "apstar")
#: Parameters of each rule and their defaults (the reference's Fashion-MNIST settings).
REWEIGHT_DEFAULTS: dict[str, dict[str, Any]] = {
    "clam": {"clip": (0.5, 2.0)},
    "tilted": {"mix": 0.5},
    "ggf": {"discount": 0.95, "min_weight": 0.1},
    "apstar": {"alpha": 0.5, "worst_fraction": 0.1, "clip": (0.5, 2.0), "k_min": 1},
}
_NEEDS = {"clam": "train_acc", "tilted": "train_loss", "ggf": "train_loss",
          "apstar": "train_loss"}
APSTAR_START_LOSS = 10.0  # the reference's initial "best worst-class loss"


def initial_state(method: str) -> dict[str, Any] | None:
    """The state a rule starts from: AP*'s counter and best worst-class loss, else None."""
    check_choice(method, "method", REWEIGHT_METHODS)
    if method == "apstar":
        return {"k": int(REWEIGHT_DEFAULTS["apstar"]["k_min"]), "best_loss": APSTAR_START_LOSS}
    return None


def _vector(values: Any, name: str, k: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise fail(name, "be a 1-D array with one value per class", f"shape {arr.shape}")
    if k is not None and arr.size != k:
        raise fail(name, f"hold one value per class ({k})", f"{arr.size} values")
    if not np.isfinite(arr).all():
        raise fail(name, "be finite", arr[~np.isfinite(arr)][0].item())
    return arr


def _params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    known = REWEIGHT_DEFAULTS[method]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise fail(unknown[0], f"be a parameter of {method!r} ({', '.join(known)})",
                   params[unknown[0]])
    out = {**known, **params}
    if "clip" in out:
        lo, hi = (float(v) for v in out["clip"])
        if not 0 < lo <= 1 <= hi:
            raise fail("clip", "be (low, high) with 0 < low <= 1 <= high", out["clip"])
        out["clip"] = (lo, hi)
    for name, low, high in (("mix", 0.0, 1.0), ("discount", 0.0, 1.0), ("min_weight", 0.0, 1.0),
                            ("alpha", 0.0, 1.0), ("worst_fraction", 0.0, 1.0)):
        if name in out and not low < float(out[name]) <= high:
            raise fail(name, f"be in ({low:g}, {high:g}]", out[name])
    return out


def _mean_one(w: np.ndarray) -> np.ndarray:
    return w / w.mean()


def _tied_ranks(values: np.ndarray, per_rank: np.ndarray) -> np.ndarray:
    """``per_rank[r]`` given to the class of rank ``r`` (worst = highest value first), ties
    sharing the mean of their ranks' entries."""
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    out = np.empty_like(per_rank)
    start = 0
    while start < len(ranked):
        stop = start + 1
        while stop < len(ranked) and ranked[stop] == ranked[start]:
            stop += 1
        out[order[start:stop]] = per_rank[start:stop].mean()
        start = stop
    return out


def class_weights_update(method: str, weights: Any, *, train_acc: Any = None,
                         train_loss: Any = None, state: Mapping[str, Any] | None = None,
                         **params: Any) -> tuple[np.ndarray, dict[str, Any] | None]:
    """One epoch's update of the class weights; returns ``(new_weights, new_state)``.

    Parameters
    ----------
    method : {"clam", "tilted", "ggf", "apstar"}
    weights : array of shape (K,)
        The current weights (all 1 before the first update).
    train_acc : array of shape (K,), optional
        Per-class training accuracy in [0, 1] (``clam``).
    train_loss : array of shape (K,), optional
        Per-class mean training loss (``tilted``, ``ggf``, ``apstar``).
    state : mapping, optional
        The rule's state from the previous update (AP*: ``k`` and ``best_loss``); default
        :func:`initial_state`.
    **params
        The rule's parameters (:data:`REWEIGHT_DEFAULTS`).

    Returns
    -------
    new_weights : ndarray of float64, shape (K,), mean 1
    new_state : dict or None

    Examples
    --------
    >>> w, s = class_weights_update("apstar", np.ones(10), train_loss=np.arange(10.0))
    >>> round(float(w[9]), 3), s
    (3.077, {'k': 1, 'best_loss': 9.0})
    """
    method = check_choice(method, "method", REWEIGHT_METHODS)
    p = _params(method, params)
    w = _vector(weights, "weights")
    if (w <= 0).any():
        raise fail("weights", "be > 0", w[w <= 0][0].item())
    need = _NEEDS[method]
    given = train_acc if need == "train_acc" else train_loss
    if given is None:
        raise fail(need, f"be given for {method!r} (per-class training statistics)", None)
    stat = _vector(given, need, w.size)
    k = w.size

    if method == "clam":
        if ((stat < 0) | (stat > 1)).any():
            raise fail("train_acc", "be in [0, 1]", stat[(stat < 0) | (stat > 1)][0].item())
        d = np.exp(-stat)
        lo, hi = p["clip"]
        return _mean_one(np.clip(w * _mean_one(d), lo, hi)), None
    if method == "tilted":
        z = np.exp(stat - stat.max())  # softmax, stable
        tilt = k * z / z.sum()
        return _mean_one((1 - p["mix"]) * w + p["mix"] * tilt), None
    if method == "ggf":
        per_rank = np.maximum(p["discount"] ** np.arange(k), p["min_weight"])
        return _mean_one(_tied_ranks(stat, _mean_one(per_rank))), None

    # AP*: raise the worst classes by the identity vector of the worst n, divided by k.
    start = initial_state("apstar") if state is None else state
    st: dict[str, Any] = dict(start or {})
    if set(st) != {"k", "best_loss"} or not isinstance(st["k"], int) or st["k"] < 1:
        raise fail("state", "be AP*'s {'k': int >= 1, 'best_loss': float}", dict(st))
    n_worst = max(1, int(k * p["worst_fraction"]))
    identity = np.zeros(k)
    identity[:n_worst] = k / n_worst
    boost = _tied_ranks(stat, identity)  # ties at the boundary share the boost
    new = p["alpha"] * w + (1 - p["alpha"]) * boost / st["k"]
    lo, hi = p["clip"]
    new = _mean_one(np.clip(new, lo, hi))
    worst = float(stat.max())
    if worst < st["best_loss"]:
        st = {"k": int(p["k_min"]), "best_loss": worst}
    else:
        st = {"k": st["k"] + 1, "best_loss": float(st["best_loss"])}
    assert math.isclose(new.mean(), 1.0)
    return new, st
