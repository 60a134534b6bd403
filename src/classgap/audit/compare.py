"""Per-class comparison of a baseline (A) and a candidate (B) on the same test set.

**One inferential target per design, one procedure for verdict, p, q and interval**:

* several runs (seeds) per side: a drop that would reappear with new seeds on new test images
  from the same distribution; the crossed seeds × images test
  (:func:`~classgap.audit.paired.crossed_test`) and the t-interval it inverts;
* one run per side: a drop of these two trained models that would reappear on new test images;
  McNemar's score test (continuity correction 1/2) and the score interval of the paired
  difference of proportions that inverts it (Tango 1998;
  :func:`~classgap.audit.paired.mcnemar_score_test`,
  :func:`~classgap.audit.paired.mcnemar_interval`), which covers Δ when new test images
  change the discordant counts too.

So ``p < 1 - confidence`` exactly when the interval excludes 0 (``confidence`` defaults to
``1 - alpha``). On request, ``test="welch"`` or ``"permutation"`` tests across seeds on *fixed*
test images (a narrower target: Welch's t-interval goes with both). q-values across classes by
Benjamini-Hochberg (default) or Holm. Sign convention everywhere:
``delta = acc_B - acc_A``, so a negative delta is a drop caused by the candidate. The tests
themselves live in :mod:`classgap.audit.paired`; their public names are re-exported here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from classgap._files import jsonable
from classgap._validation import (
    check_choice,
    check_in_range,
    check_labels,
    check_random_state,
    fail,
)
from classgap.audit._labels import is_text, name_labels
from classgap.audit._runs import as_runs, check_runs
from classgap.audit.intervals import (
    ClipCounter,
    check_confidence,
    clip_interval,
    quiet,
    warn_clipped,
)
from classgap.audit.multiplicity import CORRECTIONS, adjust_pvalues
from classgap.audit.paired import (
    crossed_test,
    effect_size,
    mcnemar_exact,
    mcnemar_interval,
    mcnemar_score_test,
    paired_bootstrap_delta,
    permutation_test,
    welch_test,
)
from classgap.audit.perclass import (
    EmptyClassWarning,
    check_class_names,
    check_n_classes,
    warn_absent,
)

__all__ = [
    "Comparison",
    "compare_predictions",
    "crossed_test",
    "effect_size",
    "mcnemar_exact",
    "mcnemar_interval",
    "mcnemar_score_test",
    "paired_bootstrap_delta",
    "permutation_test",
    "welch_test",
]

TESTS = ("auto", "crossed", "mcnemar", "welch", "permutation")
CLASS_COLUMNS = ("class", "support", "acc_baseline", "acc_candidate", "delta", "delta_low",
                 "delta_high", "p_value", "q_value", "verdict", "test", "b", "c", "effect_size",
                 "acc_baseline_std", "acc_candidate_std")


# ---------------------------------------------------------------- compare_predictions




@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare_predictions`: a per-class table and an overall summary.

    Attributes
    ----------
    classes : DataFrame
        One row per class, columns ``class, support, acc_baseline, acc_candidate, delta,
        delta_low, delta_high, p_value, q_value, verdict, test, b, c, effect_size,
        acc_baseline_std, acc_candidate_std``. ``verdict`` is ``"drop"``, ``"gain"`` or
        ``"none"``; ``b`` / ``c`` are the discordant counts (A right & B wrong / A wrong & B
        right) summed over all run pairs; ``*_std`` are NaN with a single run.
    overall : dict
        ``acc_baseline, acc_candidate, delta, delta_low, delta_high, p_value, n_classes,
        n_drop, n_gain, alpha, correction, test, n_runs_baseline, n_runs_candidate,
        confidence``.
    """

    classes: pd.DataFrame
    overall: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (Python scalars; NaN and inf become None): ``overall``, ``classes``
        and ``classes_without_samples`` (names of the classes with support 0)."""
        records = [{key: jsonable(value) for key, value in row.items()}
                   for row in self.classes.to_dict(orient="records")]
        empty = self.classes.loc[self.classes["support"] == 0, "class"]
        return {"overall": {key: jsonable(v) for key, v in self.overall.items()},
                "classes": records,
                "classes_without_samples": [str(c) for c in empty]}

    def drops(self, min_points: float = 0.0) -> pd.DataFrame:
        """Significant drops larger than ``min_points`` accuracy points, worst first."""
        min_points = float(check_in_range(min_points, "min_points", 0.0, 100.0))
        t = self.classes
        keep = (t["verdict"] == "drop") & (t["delta"].abs() * 100.0 > min_points)
        return t[keep].sort_values("delta", kind="stable")


def _run_counts(yt: np.ndarray, correct: np.ndarray, k: int) -> np.ndarray:
    """(S, K) correct counts per run, one bincount over (run, class) cells."""
    s = correct.shape[0]
    cell = (np.arange(s)[:, None] * k + yt[None, :])[correct]
    return np.bincount(cell, minlength=s * k).reshape(s, k)


def _welch_interval(acc_a: np.ndarray, acc_b: np.ndarray,
                    confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch's t-interval of ``mean(B) - mean(A)`` across runs (fixed test images), per column."""
    sa, sb = acc_a.shape[0], acc_b.shape[0]
    with quiet():
        va, vb = acc_a.var(axis=0, ddof=1) / sa, acc_b.var(axis=0, ddof=1) / sb
        df = (va + vb) ** 2 / (va**2 / (sa - 1) + vb**2 / (sb - 1))
        half = stats.t.ppf(0.5 + confidence / 2.0, np.where(va + vb > 0, df, np.inf)) \
            * np.sqrt(va + vb)
    delta = acc_b.mean(axis=0) - acc_a.mean(axis=0)
    return clip_interval(delta - half, delta + half, (-1.0, 1.0), "change (Δ)")


def paired_class_test(test: str, yt: np.ndarray, ok_a: np.ndarray, ok_b: np.ndarray, k: int,
                      confidence: float, rng: np.random.Generator,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p, low, high)`` per class of ``y`` (K = ``k``) under ``test``; all from one procedure.

    Package-internal (not in ``__all__``): :mod:`classgap.audit.grouped` runs it on labels
    mapped to groups.
    """
    if test == "crossed":
        res = crossed_test(yt, ok_a, ok_b, k, confidence=confidence)
        return res["p_value"], res["low"], res["high"]
    support = np.bincount(yt, minlength=k)
    if test == "mcnemar":
        # The test of one typical run pair: per-pair average discordant counts. Pooling the
        # counts of all Sa * Sb pairs would count the same test images several times.
        right_a, right_b = ok_a.sum(axis=0), ok_b.sum(axis=0)  # (N,)
        sa, sb = len(ok_a), len(ok_b)
        b = np.bincount(yt, weights=right_a * (sb - right_b), minlength=k) / (sa * sb)
        c = np.bincount(yt, weights=(sa - right_a) * right_b, minlength=k) / (sa * sb)
        b, c = np.rint(b), np.rint(c)
        low, high = mcnemar_interval(b, c, support, confidence=confidence)
        return mcnemar_score_test(b, c), low, high
    with quiet():
        acc_a = _run_counts(yt, ok_a, k) / support  # (Sa, K)
        acc_b = _run_counts(yt, ok_b, k) / support
    low, high = _welch_interval(acc_a, acc_b, confidence)
    p = welch_test(acc_a, acc_b)[1] if test == "welch" else \
        permutation_test(acc_a, acc_b, random_state=rng)
    return p, low, high


def compare_predictions(y_true: Any, preds_a: Sequence[np.ndarray], preds_b: Sequence[np.ndarray],
                        n_classes: int | None = None, *,
                        class_names: Sequence[Any] | None = None,
                        alpha: float = 0.05, correction: str = "bh", test: str = "auto",
                        confidence: float | None = None,
                        random_state: int | np.random.Generator | None = None) -> Comparison:
    """Compare a baseline (``preds_a``) and a candidate (``preds_b``) per class.

    Parameters
    ----------
    y_true : array of int, shape (N,)
        The shared test set: class indices, or class names (str), which map through
        ``class_names``, else through the sorted unique names of ``y_true`` and every run of
        both sides (one warning), so that class k is the same class on both sides.
    preds_a, preds_b : sequence of arrays of int, each shape (N,)
        Predicted labels (indices or names, as ``y_true``), one array per run (seed); a
        single (N,) array or an (S, N) array also works.
    n_classes : int, optional
        K; default ``len(class_names)``, else the largest label + 1 (or the number of names).
    class_names : sequence of K names, optional
    alpha : float in (0, 1)
        Level at which a q-value makes a verdict.
    correction : {"bh", "holm", "none"}
        Multiple-comparison adjustment across classes.
    test : {"auto", "crossed", "mcnemar", "welch", "permutation"}
        ``"auto"``: ``"crossed"`` (seeds and test images random) when both sides have >= 2
        runs, else ``"mcnemar"``. ``"crossed"``, ``"welch"`` and ``"permutation"`` need >= 2
        runs per side. McNemar with several runs uses the per-pair average discordant counts
        ``round(b / (Sa Sb))`` and ``round(c / (Sa Sb))``, i.e. the test of one typical run
        pair: pooling the counts of all pairs would count the same test images several times
        as independent evidence.
    confidence : float, optional
        Level of the interval of ``delta``; default ``1 - alpha``, at which an interval that
        excludes 0 and ``p < alpha`` are the same statement (the verdict uses the q-value).
    random_state
        Seed of the permutation test's random relabellings (the other tests are exact or
        analytic).

    Returns
    -------
    Comparison
        ``p_value`` and ``delta_low``/``delta_high`` come from one procedure (module
        docstring); ``verdict`` is ``"drop"`` when ``q < alpha`` and ``delta < 0``, ``"gain"`` when
        ``q < alpha`` and ``delta > 0``, else ``"none"``. Classes absent from ``y_true`` get
        NaN (one ``UserWarning``) and verdict ``"none"``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 3000)
    >>> a = np.where(rng.random(3000) < 0.9, y, (y + 1) % 3)
    >>> b = np.where((y == 2) & (rng.random(3000) < 0.3), 0, a)
    >>> res = compare_predictions(y, [a], [b], 3, random_state=0)
    >>> res.classes["verdict"].tolist()
    ['none', 'none', 'drop']
    """
    a_runs, b_runs = as_runs(preds_a), as_runs(preds_b)
    if is_text(y_true) or any(is_text(r) for r in [*a_runs, *b_runs]):
        # names: one class list for both sides, so that class k is the same class in each
        y_true, named, class_names = name_labels(y_true, [*a_runs, *b_runs], class_names,
                                                 run_name="preds")
        preds_a, preds_b = named[:len(a_runs)], named[len(a_runs):]
    if n_classes is None:
        n_classes = len(class_names) if class_names is not None else 1 + max(
            int(check_labels(y, name).max(initial=-1)) for name, y in
            [("y_true", y_true), *((f"preds[{i}]", r) for i, r in enumerate(a_runs + b_runs))])
    k = check_n_classes(n_classes)
    yt = check_labels(y_true, "y_true", n_classes=k)
    if yt.size == 0:
        raise fail("y_true", "hold at least one sample", "0 samples")
    names = check_class_names(class_names, k)
    runs_a = check_runs(preds_a, "preds_a", len(yt), k)  # (Sa, N)
    runs_b = check_runs(preds_b, "preds_b", len(yt), k)  # (Sb, N)
    alpha = float(check_in_range(alpha, "alpha", 0, 1, inclusive=(False, False)))
    correction = check_choice(correction, "correction", CORRECTIONS)
    test = check_choice(test, "test", TESTS)
    confidence = check_confidence(1.0 - alpha if confidence is None else confidence)
    rng = check_random_state(random_state)
    sa, sb = len(runs_a), len(runs_b)
    if test == "auto":
        test = "crossed" if sa >= 2 and sb >= 2 else "mcnemar"
    elif test != "mcnemar" and min(sa, sb) < 2:
        raise fail("test", "be 'mcnemar' or 'auto' when a side has a single run",
                   f"{test!r} with {sa} baseline and {sb} candidate run(s)")

    ok_a, ok_b = runs_a == yt, runs_b == yt  # (S, N) bool
    support = np.bincount(yt, minlength=k)
    warn_absent(support, names)  # once: the tests below are told not to say it again
    with quiet():
        acc_a = _run_counts(yt, ok_a, k) / support  # (Sa, K), NaN for absent classes
        acc_b = _run_counts(yt, ok_b, k) / support
        overall_a, overall_b = ok_a.mean(axis=1), ok_b.mean(axis=1)  # (S,)
    # Discordant counts summed over all Sa * Sb run pairs, per sample then per class.
    right_a, right_b = ok_a.sum(axis=0), ok_b.sum(axis=0)  # (N,)
    b = np.bincount(yt, weights=right_a * (sb - right_b), minlength=k).round().astype(np.int64)
    c = np.bincount(yt, weights=(sa - right_a) * right_b, minlength=k).round().astype(np.int64)

    if runs_a.shape == runs_b.shape and np.array_equal(runs_a, runs_b):
        # The same runs on both sides (a strength compared with itself): no change at all,
        # whatever the noise; a test across "independent" seeds would invent one.
        p, low, high = (np.where(support > 0, v, np.nan) for v in (1.0, 0.0, 0.0))
        p_all, low_all, high_all = 1.0, 0.0, 0.0
    else:
        clipped = ClipCounter()  # the classes' and the whole set's intervals: one warning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyClassWarning)
            p, low, high = clipped(paired_class_test, test, yt, ok_a, ok_b, k, confidence, rng)
        # The whole test set as one class: the same procedure for the mean accuracy.
        p_all, low_all, high_all = (
            float(v[0]) for v in clipped(paired_class_test, test, np.zeros_like(yt), ok_a, ok_b,
                                         1, confidence, rng))
        if clipped.count:
            warn_clipped(clipped.count, (-1.0, 1.0), "change (Δ)", stacklevel=2)
    p = np.where(support > 0, p, np.nan)
    delta = acc_b.mean(axis=0) - acc_a.mean(axis=0)

    q = adjust_pvalues(p, correction)
    significant = q < alpha
    verdict = np.where(significant & (delta < 0), "drop",
                       np.where(significant & (delta > 0), "gain", "none"))
    with quiet():
        std_a = acc_a.std(axis=0, ddof=1) if sa > 1 else np.full(k, np.nan)
        std_b = acc_b.std(axis=0, ddof=1) if sb > 1 else np.full(k, np.nan)
    classes = pd.DataFrame({
        "class": pd.Series(names, dtype=object),
        "support": support.astype(np.int64),
        "acc_baseline": acc_a.mean(axis=0),
        "acc_candidate": acc_b.mean(axis=0),
        "delta": delta,
        "delta_low": low,
        "delta_high": high,
        "p_value": p,
        "q_value": q,
        "verdict": pd.Series(verdict, dtype=object),
        "test": test,
        "b": b,
        "c": c,
        "effect_size": effect_size(acc_a, acc_b),
        "acc_baseline_std": std_a,
        "acc_candidate_std": std_b,
    }, columns=list(CLASS_COLUMNS))
    overall = {
        "acc_baseline": float(overall_a.mean()),
        "acc_candidate": float(overall_b.mean()),
        "delta": float(overall_b.mean() - overall_a.mean()),
        "delta_low": float(low_all),
        "delta_high": float(high_all),
        "p_value": float(p_all),
        "n_classes": k,
        "n_drop": int((verdict == "drop").sum()),
        "n_gain": int((verdict == "gain").sum()),
        "alpha": alpha,
        "correction": correction,
        "test": test,
        "n_runs_baseline": sa,
        "n_runs_candidate": sb,
        "confidence": confidence,
    }
    return Comparison(classes=classes, overall=overall)
