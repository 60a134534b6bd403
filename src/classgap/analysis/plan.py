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

Per level (:func:`detectable_by_level`, :meth:`SeedPlan.with_groups`): with a class grouping
(:class:`~classgap.audit.groups.GroupMap`) the same model plans each group of a level on its
pooled images (:func:`group_components`: its classes' parts weighted by their test images) and
corrects over the groups of that level only. At 10 images a class and BH over 10,000 classes a
class would have to fall by more than its whole accuracy to be found; a genus of 10 classes or a
family of 100, corrected over a few hundred or thousand groups, can show drops of a fraction of
that. The plan says which, level by level.

Units: the array functions (:func:`power`, :func:`min_detectable_drop`, :func:`seeds_needed`)
work on the accuracy scale of :mod:`classgap.audit` (fractions; variances in fractions
squared); :func:`plan_seeds`, like the study's ``max_drop``, takes and reports points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

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

if TYPE_CHECKING:
    from classgap.audit.groups import GroupMap

NOT_DETECTABLE = "not detectable with these seeds"
NO_VARIATION = "no variation seen: binomial variance floor"

__all__ = ["CLASS_LEVEL", "MAX_SEEDS", "NOT_DETECTABLE", "NO_VARIATION", "SeedPlan",
           "class_level", "detectable_by_level", "group_components", "level_sentence",
           "min_detectable_drop", "plan_seeds", "power", "seeds_needed"]

#: The largest number of seeds per strength :func:`seeds_needed` considers.
MAX_SEEDS = 1000

#: The finest level of :func:`detectable_by_level`: the classes themselves.
CLASS_LEVEL = "class"


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
    matters for the solver on K = 10,000 classes.
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

    Solves :func:`power` ``= power`` for the noncentrality (the degrees of freedom do not
    depend on the drop) by regula falsi, all classes at once and each distinct df once
    (:func:`_solve_ncp`: 10,000 classes in a fraction of a second), then scales it by the sd.
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
    with quiet():
        sure = (var == 0) | (_power_ncp(0.0, df, level) >= target)  # NaN var: False
    out[sure] = 0.0
    todo = np.isfinite(var) & ~sure
    out[todo] = _solve_ncp(df[todo], level, target) * np.sqrt(var[todo])
    return out


def _solve_ncp(df: np.ndarray, level: float, target: float) -> np.ndarray:
    """(U,) the noncentrality at which the two-sided t test at ``level`` with ``df`` degrees of
    freedom has power ``target`` (> its power at 0).

    Regula falsi with the Illinois step, vectorized over the distinct ``df`` (many units share
    one: the classes of a level with as many images and no seed part): the power grows with the
    noncentrality, so a bracket ``[0, hi]`` holds the root once ``hi`` is doubled past it; the
    iteration stops when every power is within 1e-12 of the target or every bracket within
    1e-12 of its width.
    """
    if not df.size:
        return np.zeros(0)
    uniq, inverse = np.unique(df, return_inverse=True)

    def gap(ncp: np.ndarray) -> np.ndarray:
        return _power_ncp(ncp, uniq, level) - target

    # the normal guess t_crit + z_target, then doubled until it brackets the root
    hi = np.maximum(special.stdtrit(uniq, 1.0 - level / 2.0) + special.ndtri(target), 0.5)
    f_hi = gap(hi)
    while (short := f_hi < 0).any():
        hi = np.where(short, 2.0 * hi, hi)
        f_hi = np.where(short, gap(hi), f_hi)
    lo, f_lo = np.zeros_like(hi), np.full_like(hi, level - target)  # the power at 0: its level
    x = hi
    last = np.zeros(hi.shape, dtype=np.int8)  # which end moved last: -1 lo, 1 hi
    for _ in range(100):
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo)  # f_lo < 0 <= f_hi: no division by 0
        fx = gap(x)
        if ((np.abs(fx) < 1e-12) | (hi - lo <= 1e-12 * hi)).all():
            break
        up = fx >= 0  # x replaces hi; if hi moved last time too, halve f_lo (Illinois)
        f_lo = np.where(up & (last == 1), f_lo / 2.0, f_lo)
        f_hi = np.where(~up & (last == -1), f_hi / 2.0, f_hi)
        hi, f_hi = np.where(up, x, hi), np.where(up, fx, f_hi)
        lo, f_lo = np.where(up, lo, x), np.where(up, f_lo, fx)
        last = np.where(up, 1, -1).astype(np.int8)
    return np.asarray(x[inverse])


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


def group_components(seed_var: Any, image_var: Any, n_images: Any, codes: Any, n_groups: int,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group, the variance parts of its pooled delta, from its classes' parts.

    A group's accuracy pooled over its images is ``sum_k w_k acc_k`` with ``w_k = n_k / n_g``
    (its classes weighted by their test images), so its delta has the parts::

        sigma2_g = sum_k w_k^2 sigma2_k,    B_g = sum_k w_k^2 B_k,    n_g = sum_k n_k

    The image parts of different classes are independent (different images). The seed parts
    are taken as independent too; where a run that gains one class loses another of the same
    group (confusions inside the group) the true ``sigma2_g`` is smaller and the plan errs
    toward asking for a larger drop, where a seed lifts every class at once it is larger.

    Parameters
    ----------
    seed_var, image_var, n_images : array, shape (K,)
        Per class, as :func:`power` takes them (NaN parts for classes without test images).
    codes : array of int, shape (K,)
        Each class's group, in ``[0, n_groups)``.
    n_groups : int

    Returns
    -------
    seed_var, image_var, n_images : ndarray, shape (G,)
        NaN parts for a group without test images.

    Examples
    --------
    >>> sv, iv, n = group_components([4e-4, 1e-4], [1e-4, 0.0], [100, 300], [0, 0], 1)
    >>> sv.round(8).tolist(), iv.round(8).tolist(), n.tolist()
    ([8.125e-05], [6.25e-06], [400.0])
    """
    sv, iv = _per_class(seed_var, "seed_var"), _per_class(image_var, "image_var")
    n = _per_class(n_images, "n_images")
    g = check_positive_int(n_groups, "n_groups")
    code = np.asarray(codes)
    if code.dtype.kind not in "iu" or any(x.shape != code.shape for x in (sv, iv, n)):
        raise fail("codes", "be an integer array with one group per class of 'seed_var', "
                   "'image_var' and 'n_images'",
                   f"{code.dtype} {code.shape} against {sv.shape}, {iv.shape}, {n.shape}")
    if code.size and (code.min() < 0 or code.max() >= g):
        raise fail("codes", f"hold groups in [0, {g - 1}]", int(code.max()))
    n_g = np.bincount(code, weights=n, minlength=g)
    with quiet():
        w2 = (n / n_g[code]) ** 2  # absent classes weigh 0 (and so drop their NaN parts)
        parts = [np.bincount(code, weights=np.where(n > 0, w2 * x, 0.0), minlength=g)
                 for x in (sv, iv)]
    sv_g, iv_g = (np.where(n_g > 0, p, np.nan) for p in parts)
    return sv_g, iv_g, n_g


def _pooled(values: np.ndarray, n: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(G,) the support-weighted mean of a per-class array (NaN for a group without images)."""
    n_g = np.bincount(codes, weights=n, minlength=n_groups)
    with quiet():
        return np.bincount(codes, weights=np.where(n > 0, n * values, 0.0),
                           minlength=n_groups) / np.where(n_g > 0, n_g, np.nan)


def _level_row(level: str, n_units: int, n: np.ndarray, accuracy: np.ndarray,
               mdd: np.ndarray, unit_level: float) -> dict[str, Any]:
    """One row of :func:`detectable_by_level` from its units' images, accuracies and drops."""
    seen = (n > 0) & np.isfinite(mdd)
    # without an accuracy a unit can fall by at most 100 points
    ceiling = np.where(np.isnan(accuracy), 100.0, accuracy)
    row = {"level": level, "n_units": n_units, "n_with_images": int(seen.sum()),
           "median_images": float(np.median(n[seen])) if seen.any() else math.nan,
           "unit_level": unit_level,
           "min_detectable_drop": float(np.median(mdd[seen])) if seen.any() else math.nan,
           "median_accuracy": float(np.nanmedian(accuracy[seen]))
           if (seen & ~np.isnan(accuracy)).any() else math.nan,
           "n_detectable": int((seen & (mdd <= ceiling)).sum())}
    return {**row, "sentence": level_sentence(row)}


def level_sentence(row: Mapping[str, Any]) -> str:
    """A row of :func:`detectable_by_level` in words: what one unit of the level can show.

    Examples
    --------
    >>> level_sentence({"level": "class", "n_units": 10000, "n_with_images": 10000,
    ...                 "median_images": 10.0, "min_detectable_drop": 112.4,
    ...                 "median_accuracy": 70.0, "n_detectable": 0})
    'Per class (10,000 classes, median 10 test images each): no single class can be tested: it
    would have to lose 112 points (median) to be found, more than its whole accuracy in 10,000
    of 10,000 classes (median accuracy 70 points)'
    """
    level, present, found = row["level"], row["n_with_images"], row["n_detectable"]
    kind = "classes" if level == CLASS_LEVEL else "groups"
    if not present:
        return f"Per {level} ({row['n_units']:,} {kind}): no test images"
    head = f"Per {level} ({row['n_units']:,} {kind}, median {row['median_images']:g} test " \
           "images each)"
    mdd, acc = row["min_detectable_drop"], row["median_accuracy"]
    if 2 * found >= present:
        return (f"{head}: drops of {mdd:.1f} points or more are detectable (median over the "
                f"{kind}; {found:,} of {present:,} have the accuracy to fall that far)")
    who = f"no single {level} can be tested" if not found else \
        f"most {kind} cannot be tested alone ({found:,} of {present:,} can)"
    whole = f"its whole accuracy in {present - found:,} of {present:,} {kind} (median " \
        f"accuracy {acc:.0f} points)" if math.isfinite(acc) else \
        f"the 100 points a {level} could lose in {present - found:,} of {present:,} {kind}"
    return f"{head}: {who}: it would have to lose {mdd:.0f} points (median) to be found, " \
           f"more than {whole}"


def detectable_by_level(seed_var: Any, image_var: Any, n_images: Any, seeds: int,
                        groups: GroupMap | None = None, *, accuracy: Any = None,
                        power: float = 0.8, alpha: float = 0.05, correction: str = "bh",
                        n_classes: int | None = None) -> pd.DataFrame:
    """Per level of a group map, and per class: the smallest drop one unit can show.

    The units of a level are its groups, each tested on its pooled images (the parts of
    :func:`group_components`) against the others of its level: the per-unit level is
    :func:`class_level` with the level's number of groups as the family (BH or Holm over the
    groups of that level, not over all classes). The class level is :func:`min_detectable_drop`
    per class, over K. So at 10 images a class and 10,000 classes the class row says that no
    class can be tested while a genus of 10 classes and a family of 100 can.

    Parameters
    ----------
    seed_var, image_var, n_images, seeds
        Per class, as :func:`power` takes them (fractions). From one run a side (an audit,
        no seeds), pass ``seed_var = 0``, ``seeds = 2`` and the variance of each class's delta
        as ``image_var``: the degrees of freedom are then the images'.
    groups : GroupMap, optional
        In the classes' order (:meth:`GroupMap.align`); without it, the class row alone.
    accuracy : array, shape (K,), optional
        Each class's accuracy (fraction): a unit whose smallest detectable drop exceeds its
        accuracy cannot show it (a group's accuracy is pooled over its images).
    power, alpha, correction
        Target power, level and correction (``"bh"``, ``"holm"`` or ``"none"``).
    n_classes : int, optional
        K of the class level's correction (default: the length of the per-class arrays).

    Returns
    -------
    pd.DataFrame
        One row per level, coarsest first, ``"class"`` last: ``level``, ``n_units`` (the
        level's family: its groups, or K), ``n_with_images``, ``median_images`` (per unit),
        ``unit_level`` (the two-sided level of one unit's test), ``min_detectable_drop``
        (points, median over the units with images: past ``median_accuracy`` or 100 it is a
        drop no unit of the level can make), ``median_accuracy`` (points; NaN without
        ``accuracy``), ``n_detectable`` (units whose smallest detectable drop is within their
        accuracy, or within 100 points without ``accuracy``) and ``sentence``.

    Examples
    --------
    >>> from classgap.audit.groups import GroupMap
    >>> k, n, p = 1000, 10, 0.7  # 1000 classes of 10 images at 70%; 100 genera of 10 classes
    >>> genus = GroupMap.from_columns([f"c{i}" for i in range(k)],
    ...                               {"genus": [f"g{i // 10}" for i in range(k)]})
    >>> # one run a side: no seed part; two runs' accuracies differ with variance 2 p (1 - p) / n
    >>> table = detectable_by_level(np.zeros(k), np.full(k, 2 * p * (1 - p) / n), np.full(k, n),
    ...                             2, genus, accuracy=np.full(k, p))
    >>> table[["level", "n_units", "median_images", "n_detectable"]].values.tolist()
    [['genus', 100, 100.0, 100], ['class', 1000, 10.0, 0]]
    >>> table["min_detectable_drop"].round(1).tolist()  # points: a class cannot lose 177
    [28.9, 177.2]
    """
    target = _check_target(power)
    seeds = check_positive_int(seeds, "seeds", minimum=2)
    sv, iv, n, _, _ = _inputs(seed_var, image_var, n_images, seeds, alpha, correction,
                              n_classes)
    k = len(sv) if n_classes is None else check_positive_int(n_classes, "n_classes")
    acc = np.full(len(sv), np.nan) if accuracy is None else _accuracy(accuracy, len(sv))
    if groups is not None and groups.n_classes != len(sv):
        raise fail("groups", f"map the {len(sv)} classes of 'seed_var' (GroupMap.align)",
                   f"a map of {groups.n_classes} classes")
    opts: dict[str, Any] = {"power": target, "alpha": alpha, "correction": correction}
    rows = []
    for level, codes, size in _levels(groups):
        gsv, giv, gn = group_components(sv, iv, n, codes, size)
        mdd = 100 * min_detectable_drop(gsv, giv, gn, seeds, n_classes=size, **opts)
        rows.append(_level_row(level, size, gn, 100 * _pooled(acc, n, codes, size), mdd,
                               class_level(alpha, correction, size)))
    mdd = 100 * min_detectable_drop(sv, iv, n, seeds, n_classes=k, **opts)
    rows.append(_level_row(CLASS_LEVEL, k, n, 100 * acc, mdd, class_level(alpha, correction, k)))
    return pd.DataFrame(rows)


def _accuracy(accuracy: Any, k: int) -> np.ndarray:
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.shape != (k,):
        raise fail("accuracy", f"be a per-class array of shape ({k},)", f"shape {acc.shape}")
    if ((acc < 0) | (acc > 1)).any():
        raise fail("accuracy", "hold fractions in [0, 1] (NaN for absent classes)",
                   acc[(acc < 0) | (acc > 1)][0].item())
    return acc


def _levels(groups: GroupMap | None) -> list[tuple[str, np.ndarray, int]]:
    """(name, (K,) codes, number of groups) per level of ``groups``, coarsest first."""
    if groups is None:
        return []
    return [(level, groups.codes[i], len(groups.names[i]))
            for i, level in enumerate(groups.levels)]


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
    groups : pd.DataFrame or None
        With a class grouping (:meth:`with_groups`): one row per group of every level,
        coarsest level first: ``level, group, n_classes``, then the columns of ``classes``
        for the group on its pooled images (its ``min_detectable_drop`` corrected over the
        groups of its level; ``note`` :data:`NOT_DETECTABLE` or ``""``).
    levels : pd.DataFrame or None
        With a class grouping: :func:`detectable_by_level`, one row per level and the class
        level last.
    """

    classes: pd.DataFrame
    seeds: int
    drop: float
    power: float
    alpha: float
    correction: str
    level: float
    max_seeds: int = MAX_SEEDS
    groups: pd.DataFrame | None = None
    levels: pd.DataFrame | None = None

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
        if self.levels is not None:
            corrected = "uncorrected" if self.correction == "none" else \
                f"{self.correction} over the units of each level"
            out.append(f"Per level, with {self.seeds} seeds per strength "
                       f"({100 * self.power:g}% power, {corrected}):")
            out.extend(self.levels["sentence"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: ``{"settings": {...}, "classes": [{...}, ...]}`` (NaN and NA → None)."""
        def clean(v: Any) -> Any:
            if v is pd.NA or v is None:
                return None
            if isinstance(v, np.generic):
                v = v.item()
            return None if isinstance(v, float) and not math.isfinite(v) else v

        def records(table: pd.DataFrame) -> list[dict[str, Any]]:
            return [{key: clean(v) for key, v in row.items()}
                    for row in table.astype(object).to_dict(orient="records")]

        out = {"settings": {key: clean(v) for key, v in self.settings().items()},
               "classes": records(self.classes)}
        for key, table in (("levels", self.levels), ("groups", self.groups)):
            if table is not None:
                out[key] = records(table)
        return out

    def with_groups(self, groups: GroupMap) -> SeedPlan:
        """The plan per group of every level of ``groups`` (:attr:`groups`, :attr:`levels`).

        ``groups`` lists the plan's classes in its order (:meth:`GroupMap.align`). A group is
        planned on its pooled images from its classes' parts (:func:`group_components`), at
        the plan's seeds, power, level and drop, corrected over the groups of its level.
        """
        names = [str(c) for c in self.classes["class"]]
        if list(groups.classes) != names:
            first = next((c for c, d in zip(groups.classes, names, strict=False) if c != d),
                         f"{groups.n_classes} classes")
            raise fail("groups", f"list the plan's {len(names)} classes in its order "
                       "(GroupMap.align)", first)
        sv, iv = ((self.classes[c].to_numpy(dtype=np.float64) / 100) ** 2
                  for c in ("seed_sd", "image_sd"))
        n = self.classes["support"].to_numpy(dtype=np.float64)
        acc = self.classes["accuracy"].to_numpy(dtype=np.float64) / 100
        tables = []
        for i, (level, codes, size) in enumerate(_levels(groups)):
            gsv, giv, gn = group_components(sv, iv, n, codes, size)
            gacc = _pooled(acc, n, codes, size)
            settings = {k: v for k, v in self.settings().items() if k != "level"}
            cols, beyond = _plan_units(gsv, giv, gn, gacc, size, **settings)
            tables.append(pd.DataFrame({
                "level": level, "group": groups.names[i], "n_classes": groups.sizes(i),
                "support": gn.astype(np.int64), "seed_sd": 100 * np.sqrt(gsv),
                "image_sd": 100 * np.sqrt(giv), "accuracy": 100 * gacc, **cols,
                "note": pd.Series(np.where(beyond, NOT_DETECTABLE, ""), dtype=object)}))
        levels = detectable_by_level(sv, iv, n, self.seeds, groups, accuracy=acc,
                                     power=self.power, alpha=self.alpha,
                                     correction=self.correction, n_classes=len(names))
        return replace(self, groups=pd.concat(tables, ignore_index=True), levels=levels)


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
               correction: str = "bh", max_seeds: int = MAX_SEEDS,
               groups: GroupMap | None = None) -> SeedPlan:
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
    groups : GroupMap, optional
        A class grouping in the classes' order: the plan per group of every level too
        (:meth:`SeedPlan.with_groups`).

    Returns
    -------
    SeedPlan
        ``min_detectable_drop`` at the fewest seeds of any strength. With ``groups``, its
        ``groups`` and ``levels`` tables.

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
    cols, beyond = _plan_units(seed_var, image_var, n, acc_ref, k, seeds=seeds, drop=drop,
                               power=target, alpha=alpha, correction=correction,
                               max_seeds=max_seeds)
    notes = [("; ".join(t for t, on in ((NO_VARIATION, f), (NOT_DETECTABLE, b)) if on))
             for f, b in zip(flat, beyond, strict=True)]
    classes = pd.DataFrame({
        "class": names, "support": n.astype(np.int64),
        "seed_sd": 100 * np.sqrt(seed_var), "image_sd": 100 * np.sqrt(image_var),
        "accuracy": 100 * acc_ref, **cols, "note": pd.Series(notes, dtype=object)})
    plan = SeedPlan(classes, seeds, drop, target, float(alpha), correction, level, max_seeds)
    return plan if groups is None else plan.with_groups(groups)


def _plan_units(sv: np.ndarray, iv: np.ndarray, n: np.ndarray, accuracy: np.ndarray,
                family: int, *, seeds: int, drop: float, power: float, alpha: float,
                correction: str, max_seeds: int) -> tuple[dict[str, Any], np.ndarray]:
    """The plan's columns for units (classes, or the groups of one level) in a family of
    ``family`` tests: ``min_detectable_drop`` (points; NaN past the unit's ``accuracy``),
    ``power_at_drop``, ``seeds_needed``; and the (U,) bool of those past their accuracy."""
    opts: dict[str, Any] = {"alpha": alpha, "correction": correction, "n_classes": family}
    var, df = _variance(sv, iv, n, np.full(len(sv), float(seeds)))
    with quiet():
        mdd = 100 * min_detectable_drop(sv, iv, n, seeds, power=power, **opts)
        beyond = mdd > 100 * accuracy  # a drop the unit cannot make: it has less accuracy
        cols = {"min_detectable_drop": np.where(beyond, np.nan, mdd),
                "power_at_drop": _power(np.full(len(sv), drop / 100), var, df,
                                        class_level(alpha, correction, family)),
                "seeds_needed": seeds_needed(drop / 100, sv, iv, n, power=power,
                                             max_seeds=max_seeds, **opts)}
    return cols, beyond
