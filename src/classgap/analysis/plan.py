"""Seed planning: the smallest per-class drop a study can detect, and the seeds it would need.

The variance model is the one :func:`~classgap.audit.paired.crossed_test` estimates. For a
comparison with ``S`` seeds per side on a class with ``n`` test images, the per-class
``delta`` (mean accuracy B - mean accuracy A) has variance::

    V(S) = 2 sigma2 / S + B

``sigma2`` is the across-seed variance of the class's test accuracy on the fixed test set,
pooled over every strength of the study (``sum_m (S_m - 1) s2_m / sum_m (S_m - 1)``); ``B`` is
the test-image part, ``v_img - v_int`` of :func:`~classgap.audit.paired.crossed_components`
clipped at 0 and averaged over the non-reference strengths. More seeds shrink only the first
term: when ``B`` alone is too wide for a drop, no number of seeds detects it and the class
needs more test images.

The test is two-sided at a per-class level ``alpha'``: ``alpha / K`` for the corrections
``"bh"`` and ``"holm"``, since with one true drop among K classes Benjamini-Hochberg's threshold
for a lone discovery is ``alpha / K`` (and Holm's first step is the same), so this is the power
to find a class that drops alone; ``alpha`` for ``"none"``. Its degrees of freedom are
Welch-Satterthwaite's over the parts ``sigma2 / S`` (twice, ``S - 1`` each) and ``B``
(``n - 1``), and its power at a drop ``delta`` is the noncentral t's with
``ncp = delta / sqrt(V)``.

``crossed_test`` itself counts ``v_img``, which also holds the run × image interaction, in its
degrees of freedom, and floors its variance estimate. In a simulation of crossed data
(K = 10, 200 test images per class, 1500 studies per seed count) the degrees of freedom above
made the plan conservative at 2 and 3 seeds per side (planned power 0.32 and 0.62, observed
0.58 and 0.68) and kept it within 0.04 of the observed power at 4, 8 and 16; counting the
interaction as the test does over-promised at 2 and 3 seeds (0.70 and 0.78). So at very few
seeds the plan errs toward asking for more.

The plan is itself an estimate: ``sigma2`` from 8 seeds per side has 14 degrees of freedom and
``B`` from 200 test images about 11% of noise; in the simulation above the planned power at 4
seeds had a standard deviation of 0.16 over pilot studies of 8 seeds per side (0.07 with 64).

Two ends where the estimate says more than the data. A class in which no run and no image
differs (say 100% in every seed of every strength) has ``sigma2 = B = 0``, which would plan a
drop of 0 with 2 seeds; no variation seen in a few seeds is not certainty, so such a class
gets ``sigma2`` = the variance of a binomial proportion of its ``n`` images at ``(x + 1/2) /
(n + 1)`` (:func:`~classgap.audit.intervals.binomial_floor`, ``x`` its mean correct count), and
its ``note`` says so. And a class whose smallest detectable drop exceeds its own accuracy at
the reference cannot drop that far: its ``min_detectable_drop`` is NaN (null in JSON) and its
note says "not detectable with these seeds".

Units: the array functions (:func:`power`, :func:`min_detectable_drop`, :func:`seeds_needed`)
work on the accuracy scale of :mod:`classgap.audit` (fractions; variances in fractions
squared); :func:`plan_seeds`, like the study's ``max_drop``, takes and reports points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from classgap._validation import (
    check_choice,
    check_in_range,
    check_labels,
    check_positive_int,
    fail,
)
from classgap.audit.intervals import binomial_floor, quiet
from classgap.audit.multiplicity import CORRECTIONS
from classgap.audit.paired import crossed_components
from classgap.audit.perclass import check_class_names

NOT_DETECTABLE = "not detectable with these seeds"
NO_VARIATION = "no variation seen: binomial variance floor"

__all__ = ["MAX_SEEDS", "NOT_DETECTABLE", "NO_VARIATION", "SeedPlan", "class_level",
           "min_detectable_drop", "plan_seeds", "power", "seeds_needed"]

#: The largest number of seeds per strength :func:`seeds_needed` considers.
MAX_SEEDS = 1000


def class_level(alpha: float, correction: str, n_classes: int) -> float:
    """The per-class two-sided level ``alpha'``: ``alpha / K`` for "bh" and "holm", else alpha.

    Examples
    --------
    >>> class_level(0.05, "bh", 10), class_level(0.05, "none", 10)
    (0.005, 0.05)
    """
    alpha = float(check_in_range(alpha, "alpha", 0, 1, inclusive=(False, False)))
    correction = check_choice(correction, "correction", CORRECTIONS)
    k = check_positive_int(n_classes, "n_classes")
    return alpha if correction == "none" else alpha / k


def _per_class(x: Any, name: str) -> np.ndarray:
    """A non-negative (or NaN) float array; NaN marks an absent class."""
    arr = np.asarray(x, dtype=np.float64)
    if np.isinf(arr).any() or (arr < 0).any():
        raise fail(name, "hold non-negative finite values (NaN for absent classes)",
                   arr[np.isinf(arr) | (arr < 0)].flat[0].item())
    return arr


def _inputs(seed_var: Any, image_var: Any, n_images: Any, seeds: Any, alpha: float,
            correction: str, n_classes: int | None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Broadcast the per-class arrays to (K,) and resolve the per-class level."""
    sv, iv = _per_class(seed_var, "seed_var"), _per_class(image_var, "image_var")
    n = _per_class(n_images, "n_images")
    s = np.asarray(seeds)
    if s.dtype.kind not in "iu" or (s < 2).any():
        bad = s[s < 2].flat[0].item() if s.dtype.kind in "iu" else f"dtype {s.dtype}"
        raise fail("seeds", "hold integers >= 2 (seeds per side)", bad)
    try:
        sv, iv, n, s = (np.atleast_1d(a) for a in np.broadcast_arrays(sv, iv, n, s))
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in (sv, iv, n, s))
        raise fail("seed_var", "broadcast with 'image_var', 'n_images' and 'seeds'",
                   f"shapes {shapes}") from None
    if sv.ndim != 1:
        raise fail("seed_var", "be a 1-D per-class array", f"shape {sv.shape}")
    level = class_level(alpha, correction, len(sv) if n_classes is None else n_classes)
    return sv, iv, n, s.astype(np.float64), level


def _variance(sv: np.ndarray, iv: np.ndarray, n: np.ndarray, s: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
    """(K,) ``V(S)`` and its Welch-Satterthwaite degrees of freedom (inf when V = 0)."""
    v_seed = sv / s  # each side's part
    var = 2.0 * v_seed + iv
    parts = 2.0 * v_seed**2 / (s - 1.0) + iv**2 / np.maximum(n - 1.0, 1.0)
    with quiet():
        df = np.where(parts > 0, var**2 / parts, np.inf)
    return var, df


def _power_ncp(ncp: Any, df: Any, level: float) -> np.ndarray:
    """Two-sided t power at noncentrality ``ncp`` (no validation: the solvers' inner loop).

    ``scipy.special`` directly: ``stats.nct`` gives the same numbers 100 times slower, which
    matters for brentq on K = 1000 classes.
    """
    with quiet():
        t_crit = special.stdtrit(df, 1.0 - level / 2.0)
        upper = 1.0 - special.nctdtr(df, ncp, t_crit)
        # the noncentral t returns NaN for some far tails: there the wrong-sign tail is 0
        # (about 1e-20 or less) and the right one the normal's (1 to double precision)
        lower = special.nctdtr(df, ncp, -t_crit)
        upper = np.where(np.isnan(upper), special.ndtr(ncp - t_crit), upper)
    bad = np.isnan(np.asarray(ncp, dtype=np.float64)) | np.isnan(t_crit)
    out = np.clip(upper + np.nan_to_num(lower, nan=0.0), 0.0, 1.0)
    return np.asarray(np.where(bad, np.nan, out))


def _power(delta: np.ndarray, var: np.ndarray, df: np.ndarray, level: float) -> np.ndarray:
    with quiet():
        ncp = delta / np.sqrt(var)
    out = _power_ncp(np.where(var > 0, ncp, 0.0), df, level)
    return np.where(np.isnan(var), np.nan, np.where(var > 0, out, 1.0))  # V = 0: sure


def _check_target(value: float) -> float:
    return float(check_in_range(value, "power", 0, 1, inclusive=(False, False)))


def _check_drop(drop: Any) -> np.ndarray:
    delta = np.asarray(drop, dtype=np.float64)
    bad = ~(np.isfinite(delta) & (delta > 0) & (delta <= 1))
    if bad.any():
        raise fail("drop", "be in (0, 1] (a fraction of the class's images)",
                   delta[bad].flat[0].item())
    return delta


def power(drop: Any, seed_var: Any, image_var: Any, n_images: Any, seeds: Any, *,
          alpha: float = 0.05, correction: str = "bh", n_classes: int | None = None,
          ) -> np.ndarray:
    """Per-class power of the crossed test to detect a drop of ``drop`` with ``seeds`` seeds.

    Parameters
    ----------
    drop : float or array, in (0, 1]
        The size of the drop (a fraction: 0.01 is one point).
    seed_var : array, shape (K,)
        Across-seed variance of each class's test accuracy (``sigma2``, fractions squared).
    image_var : array, shape (K,)
        The test-image part ``B`` of the variance of delta (already divided by ``n``).
    n_images : array, shape (K,)
        Test images per class (for the degrees of freedom).
    seeds : int or array of int >= 2
        Seeds per side.
    alpha, correction : float, {"bh", "holm", "none"}
        The study's level and correction; the per-class level is :func:`class_level`.
    n_classes : int, optional
        K of the correction (default: the length of the per-class arrays).

    Returns
    -------
    ndarray, shape (K,)
        NaN where ``seed_var`` or ``image_var`` is NaN (absent classes); 1 where both are 0.

    Examples
    --------
    >>> power(0.02, [1e-4, 4e-4], [0.0, 0.0], [200, 200], 8, n_classes=10).round(3).tolist()
    [0.734, 0.141]
    """
    sv, iv, n, s, level = _inputs(seed_var, image_var, n_images, seeds, alpha, correction,
                                  n_classes)
    delta = _check_drop(drop)
    var, df = _variance(sv, iv, n, s)
    return _power(np.broadcast_to(delta, var.shape), var, df, level)


def min_detectable_drop(seed_var: Any, image_var: Any, n_images: Any, seeds: Any, *,
                        power: float = 0.8, alpha: float = 0.05, correction: str = "bh",
                        n_classes: int | None = None) -> np.ndarray:
    """Per-class smallest drop (fraction) the crossed test finds with probability ``power``.

    Solves :func:`power` ``= power`` for the drop with :func:`scipy.optimize.brentq`, class by
    class (on the noncentrality, since the degrees of freedom do not depend on the drop).
    Same parameters as :func:`power`; ``power`` in (0, 1) is the target.

    Returns
    -------
    ndarray, shape (K,)
        NaN for absent classes; 0 where the class has no variance at all.

    Examples
    --------
    >>> min_detectable_drop([1e-4], [0.0], [200], 8, n_classes=10).round(4).tolist()
    [0.0213]
    """
    target = _check_target(power)
    sv, iv, n, s, level = _inputs(seed_var, image_var, n_images, seeds, alpha, correction,
                                  n_classes)
    var, df = _variance(sv, iv, n, s)
    out = np.full(var.shape, np.nan)
    for k in map(int, np.flatnonzero(np.isfinite(var))):
        if var[k] == 0 or _power_ncp(0.0, df[k], level) >= target:
            out[k] = 0.0
            continue

        def gap(ncp: float, k: int = k) -> float:
            return float(_power_ncp(ncp, df[k], level)) - target

        hi = float(special.stdtrit(df[k], 1.0 - level / 2.0)) + 4.0
        while gap(hi) < 0:  # power tends to 1 with the noncentrality: a bracket exists
            hi *= 2.0
        out[k] = optimize.brentq(gap, 0.0, hi, xtol=1e-6) * math.sqrt(var[k])
    return out


def seeds_needed(drop: Any, seed_var: Any, image_var: Any, n_images: Any, *,
                 power: float = 0.8, alpha: float = 0.05, correction: str = "bh",
                 n_classes: int | None = None, max_seeds: int = MAX_SEEDS,
                 ) -> pd.arrays.IntegerArray:
    """Per-class smallest number of seeds per side ``S >= 2`` with :func:`power` >= ``power``.

    The power grows with ``S`` (``V(S)`` shrinks; checked against an exhaustive scan in the
    tests), so a bisection on ``[2, max_seeds]`` finds it, all classes at once. Same
    parameters as :func:`power`.

    Returns
    -------
    pandas Int64 array, shape (K,)
        ``<NA>`` where even ``max_seeds`` seeds do not reach the power (the test-image part
        ``image_var`` alone is too wide: the class needs more test images), and for absent
        classes.

    Examples
    --------
    >>> seeds_needed(0.02, [1e-4, 1e-4], [0.0, 1e-4], [200, 200], n_classes=10).tolist()
    [9, <NA>]
    """
    target = _check_target(power)
    max_seeds = check_positive_int(max_seeds, "max_seeds", minimum=2)
    sv, iv, n, _, level = _inputs(seed_var, image_var, n_images, 2, alpha, correction,
                                  n_classes)
    delta = np.broadcast_to(_check_drop(drop), sv.shape)

    def reaches(s: np.ndarray) -> np.ndarray:
        var, df = _variance(sv, iv, n, s.astype(np.float64))
        return _power(delta, var, df, level) >= target  # NaN compares False

    lo, hi = np.full(sv.shape, 2), np.full(sv.shape, max_seeds)
    done_at_2, possible = reaches(lo), reaches(hi)
    # invariant on the open classes: power(lo) < target <= power(hi)
    while ((hi - lo > 1) & possible & ~done_at_2).any():
        mid = (lo + hi) // 2
        ok = reaches(mid)
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    out = np.where(done_at_2, 2, hi).astype(np.int64)
    return pd.arrays.IntegerArray(out, ~possible)  # masked: NA


def detectable_sentence(detect: Mapping[str, Any]) -> str:
    """"With S seeds per strength this study can detect drops of X points or more (median over
    classes; the hardest class, C: Y)", in words that stay true past 100 points."""
    seeds, median, worst = detect["seeds"], float(detect["median"]), float(detect["worst"])
    if median > 100:
        return (f"With {seeds} seeds per strength no drop is detectable in most classes (the "
                "median detectable drop exceeds 100 points or the class's own accuracy)")
    hardest = f"{worst:.1f}" if worst <= 100 else "no drop is detectable"
    return (f"With {seeds} seeds per strength this study can detect drops of {median:.1f} "
            f"points or more (median over classes; the hardest class, {detect['worst_class']}: "
            f"{hardest})")


@dataclass(frozen=True)
class SeedPlan:
    """What a study can detect per class, and the seeds a given drop needs.

    Attributes
    ----------
    classes : pd.DataFrame
        One row per class: ``class, support, seed_sd`` (points: across-seed sd of the class's
        test accuracy), ``image_sd`` (points: the test-image part of the sd of delta, which
        seeds do not shrink), ``accuracy`` (points: the class's mean test accuracy at the
        reference), ``min_detectable_drop`` (points, at ``seeds`` seeds; NaN where it exceeds
        ``accuracy``: not detectable with these seeds), ``power_at_drop`` (power for ``drop``
        at ``seeds`` seeds), ``seeds_needed`` (Int64 seeds per strength for ``drop``;
        ``<NA>`` where no number up to ``max_seeds`` does) and ``note`` (``""``,
        :data:`NO_VARIATION`, :data:`NOT_DETECTABLE` or both, ``"; "``-joined).
    seeds : int
        Seeds per strength the study used (the fewest over its strengths).
    drop : float
        The drop ``seeds_needed`` plans for, in points.
    power, alpha, correction, level, max_seeds
        Target power, the study's level and correction, the per-class level
        (:func:`class_level`) and the largest seed count searched.
    """

    classes: pd.DataFrame
    seeds: int
    drop: float
    power: float
    alpha: float
    correction: str
    level: float
    max_seeds: int = MAX_SEEDS

    def settings(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "drop": self.drop, "power": self.power,
                "alpha": self.alpha, "correction": self.correction, "level": self.level,
                "max_seeds": self.max_seeds}

    def detectable(self) -> dict[str, Any]:
        """``{"seeds", "power", "median", "worst", "worst_class"}``: points over classes."""
        mdd = self.classes["min_detectable_drop"].to_numpy(dtype=np.float64)
        # a drop past the class's own accuracy counts as the hardest there is, not as absent
        mdd = np.where(self.undetectable(), np.inf, mdd)
        if np.isnan(mdd).all():
            return {"seeds": self.seeds, "power": self.power, "median": math.nan,
                    "worst": math.nan, "worst_class": None}
        worst = int(np.nanargmax(mdd))
        # JSON turns the infinite "worst" into null: worst_note keeps the reason
        return {"seeds": self.seeds, "power": self.power, "median": float(np.nanmedian(mdd)),
                "worst": float(mdd[worst]), "worst_class": str(self.classes["class"].iloc[worst]),
                "worst_note": NOT_DETECTABLE if np.isinf(mdd[worst]) else ""}

    def undetectable(self) -> np.ndarray:
        """(K,) bool: the classes whose smallest detectable drop exceeds their accuracy."""
        if "note" not in self.classes:
            return np.zeros(len(self.classes), dtype=bool)
        return self.classes["note"].astype(str).str.contains(NOT_DETECTABLE).to_numpy()

    def lines(self) -> list[str]:
        """The plan in words: what the study detects, and the classes no seed count rescues."""
        out = [f"{detectable_sentence(self.detectable())} ({100 * self.power:g}% power at a "
               f"per-class level of {self.level:.2g})"]
        undetectable = self.classes[self.undetectable()]
        if len(undetectable):
            names = ", ".join(map(str, undetectable["class"].head(10)))
            out.append(f"{len(undetectable)} class(es) {NOT_DETECTABLE}: the smallest drop "
                       f"{self.seeds} seeds detect exceeds the class's own accuracy "
                       f"({names}{', ...' if len(undetectable) > 10 else ''})")
        flat = self.classes[self.classes["note"].astype(str).str.contains(NO_VARIATION)] \
            if "note" in self.classes else self.classes.iloc[:0]
        if len(flat):
            names = ", ".join(map(str, flat["class"].head(10)))
            out.append(f"{len(flat)} class(es) showed no variation at all (every seed and "
                       "image alike); their seed sd is the floor a binomial of their images "
                       f"implies, not 0 ({names}{', ...' if len(flat) > 10 else ''})")
        blocked = self.classes[self.classes["seeds_needed"].isna()
                               & self.classes["support"].gt(0)]
        if len(blocked):
            names = ", ".join(map(str, blocked["class"].head(10)))
            out.append(f"{len(blocked)} class(es) cannot reach {100 * self.power:g}% power for "
                       f"a {self.drop:g}-point drop with up to {self.max_seeds} seeds: their "
                       f"test-image noise alone is too wide; they need more test images "
                       f"({names}{', ...' if len(blocked) > 10 else ''})")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: ``{"settings": {...}, "classes": [{...}, ...]}`` (NaN and NA → None)."""
        def clean(v: Any) -> Any:
            if v is pd.NA or v is None:
                return None
            if isinstance(v, np.generic):
                v = v.item()
            return None if isinstance(v, float) and not math.isfinite(v) else v

        records = [{key: clean(v) for key, v in row.items()}
                   for row in self.classes.astype(object).to_dict(orient="records")]
        return {"settings": {key: clean(v) for key, v in self.settings().items()},
                "classes": records}


def _check_preds(test_preds: Any, n: int) -> list[np.ndarray]:
    if isinstance(test_preds, np.ndarray) and test_preds.ndim == 2:
        raise fail("test_preds", "be a sequence of (seeds, N) arrays, one per strength",
                   f"one array of shape {test_preds.shape}")
    runs = [np.asarray(p) for p in test_preds]
    if len(runs) < 2:
        raise fail("test_preds", "hold at least 2 strengths (the reference and another)",
                   f"{len(runs)} strength(s)")
    for m, p in enumerate(runs):
        if p.ndim != 2 or p.shape[1] != n:
            raise fail("test_preds", f"hold (seeds, {n}) label arrays",
                       f"shape {p.shape} at strength {m}")
        if p.shape[0] < 2:
            raise fail("test_preds", "hold at least 2 seeds per strength",
                       f"{p.shape[0]} seed at strength {m}")
    return runs


def plan_seeds(y_test: Any, test_preds: Sequence[Any], *, reference: int = 0,
               class_names: Sequence[Any] | None = None, n_classes: int | None = None,
               drop: float = 1.0, power: float = 0.8, alpha: float = 0.05,
               correction: str = "bh", max_seeds: int = MAX_SEEDS) -> SeedPlan:
    """Plan seeds from a study's own variance: what it can detect and what a drop needs.

    Parameters
    ----------
    y_test : array of int, shape (N,)
        The shared test set.
    test_preds : sequence of M arrays of int, each shape (S_m, N)
        Predicted labels per strength (sweep order), ``S_m >= 2`` seeds each, M >= 2.
    reference : int
        Index of the reference strength in ``test_preds``.
    class_names : sequence of K names, optional
    n_classes : int, optional
        Default: ``len(class_names)``, else the largest label + 1.
    drop : float in (0, 100]
        The drop to plan seeds for, in points.
    power : float in (0, 1)
        Target probability of detecting it.
    alpha, correction : float, {"bh", "holm", "none"}
        The study's level and correction (see :func:`class_level`).
    max_seeds : int
        The largest number of seeds per strength considered.

    Returns
    -------
    SeedPlan
        ``min_detectable_drop`` at the fewest seeds of any strength.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 300)
    >>> preds = [np.where(rng.random((4, 600)) < 0.8, y, 1 - y) for _ in range(2)]
    >>> plan = plan_seeds(y, preds, drop=5.0)
    >>> plan.seeds, plan.classes.columns.tolist()[:4]
    (4, ['class', 'support', 'seed_sd', 'image_sd'])
    """
    drop = float(check_in_range(drop, "drop", 0.0, 100.0, inclusive=(False, True)))
    target = _check_target(power)
    max_seeds = check_positive_int(max_seeds, "max_seeds", minimum=2)
    if n_classes is None and class_names is not None:
        n_classes = len(class_names)
    yt = check_labels(y_test, "y_test", n_classes=n_classes)
    if yt.size == 0:
        raise fail("y_test", "hold at least one sample", "0 samples")
    runs = _check_preds(test_preds, len(yt))
    if n_classes is None:
        n_classes = int(max(yt.max(), *(p.max() for p in runs))) + 1
    k = check_positive_int(n_classes, "n_classes")
    names = check_class_names(class_names, k)
    if isinstance(reference, bool) or not isinstance(reference, int | np.integer) \
            or not 0 <= reference < len(runs):
        raise fail("reference", f"be an index in [0, {len(runs) - 1}]", reference)
    for m, p in enumerate(runs):
        check_labels(p.ravel(), f"test_preds[{m}]", n_classes=k)
    level = class_level(alpha, correction, k)

    correct = [p == yt for p in runs]  # (S_m, N) each
    comps = {m: crossed_components(yt, correct[reference], correct[m], k)
             for m in range(len(runs)) if m != reference}
    first = next(iter(comps.values()))
    sizes = np.array([len(p) for p in runs], dtype=np.float64)
    s2 = [first["v_seed_a"] * sizes[reference] if m == reference
          else comps[m]["v_seed_b"] * sizes[m] for m in range(len(runs))]  # (K,) each
    seed_var = np.sum([(sizes[m] - 1) * s2[m] for m in range(len(runs))], axis=0) \
        / (sizes - 1).sum()
    with quiet():
        image_var = np.mean([np.maximum(c["v_img"] - c["v_int"], 0.0) for c in comps.values()],
                            axis=0)
    n = first["n"]
    seeds = int(sizes.min())
    with quiet():
        acc_ref = np.bincount(yt, weights=correct[reference].mean(axis=0), minlength=k) / n
        acc_all = np.bincount(yt, weights=np.mean([c.mean(axis=0) for c in correct], axis=0),
                              minlength=k) / n
    flat = (seed_var == 0) & (image_var == 0) & (n > 0)  # no run, no image differs
    seed_var = np.where(flat, binomial_floor(acc_all, n), seed_var)
    var, df = _variance(seed_var, image_var, n, np.full(k, float(seeds)))
    opts: dict[str, Any] = {"alpha": alpha, "correction": correction, "n_classes": k}
    with quiet():
        mdd = 100 * min_detectable_drop(seed_var, image_var, n, seeds, power=target, **opts)
        beyond = mdd > 100 * acc_ref  # a drop the class cannot make: it has less accuracy
        notes = [("; ".join(t for t, on in ((NO_VARIATION, f), (NOT_DETECTABLE, b)) if on))
                 for f, b in zip(flat, beyond, strict=True)]
        classes = pd.DataFrame({
            "class": names, "support": n.astype(np.int64),
            "seed_sd": 100 * np.sqrt(seed_var), "image_sd": 100 * np.sqrt(image_var),
            "accuracy": 100 * acc_ref,
            "min_detectable_drop": np.where(beyond, np.nan, mdd),
            "power_at_drop": _power(np.full(k, drop / 100), var, df, level),
            "seeds_needed": seeds_needed(drop / 100, seed_var, image_var, n, power=target,
                                         max_seeds=max_seeds, **opts),
            "note": pd.Series(notes, dtype=object)})
    return SeedPlan(classes, seeds, drop, target, float(alpha), correction, level, max_seeds)
