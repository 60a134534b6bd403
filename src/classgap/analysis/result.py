"""What a study's analysis produces: tidy tables the report, the CLI and ``summary.json`` read.

The analysis (:mod:`classgap.analysis.analysis`) fills a :class:`StudyResult` from stored
predictions; the report (:mod:`classgap.report`) only draws and prints it. Accuracies are
fractions in [0, 1]; deltas are ``selected − reference``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from classgap.analysis.groups import StudyGroups


@dataclass(frozen=True)
class StudyResult:
    """The outcome of one regularization study (one axis, several strengths and seeds).

    Attributes
    ----------
    axis : str
        The config key swept, e.g. ``"aug.mixup"``.
    strengths : tuple
        The axis values in sweep order (the reference included).
    reference : Any
        The reference strength (regularizer off), e.g. ``0.0`` for mixup, ``1.0`` for rrc.
    selected : Any
        The strength with the best mean validation accuracy over seeds (the usual choice).
    mean_gain : dict
        ``{"delta", "low", "high", "p_value"}``: mean test accuracy at ``selected`` minus at
        ``reference`` (the average gain that bought the per-class losses).
    validation : pd.DataFrame
        One row per strength: ``strength, val_mean, val_std, test_mean, test_std, n_seeds``.
    per_class : pd.DataFrame
        Long format, one row per (strength, class): ``strength, class, acc_mean, acc_low,
        acc_high`` (test accuracy, mean over seeds with a t-interval).
    classes : pd.DataFrame
        One row per class at ``selected`` versus ``reference``: ``class, acc_reference,
        acc_selected, delta, delta_low, delta_high, p_value, q_value, verdict`` (``"drop"``,
        ``"gain"``, ``"none"``), plus ``acc_own_best, own_best`` (each class's best strength).
    confusion_shifts : pd.DataFrame
        The pairs that moved most: ``true, predicted, rate_reference, rate_selected, change``
        (fractions of the true class's test samples, mean over seeds), sorted by ``change``.
    class_aware : dict
        ``{"max_drop", "selected", "val_mean", "per_class_strengths"}``: the strength with the
        best mean validation accuracy among those with no significant class drop larger than
        ``max_drop`` points, and a per-class strength vector fitted from the sweep.
    transfer : StudyResult or None
        The same analysis on a downstream linear probe, when one was run.
    notes : tuple of str
        Honest caveats the report must show (e.g. "the selection is within seed noise").
    meta : dict
        Dataset, model, epochs, seeds, test used, timings, versions.
    ensemble : pd.DataFrame or None
        The seed ensembles (mean softmax over seeds, FAIR-Ensemble) at ``selected`` versus
        ``reference``, one row per class: ``class, acc_reference, acc_selected, delta,
        delta_low, delta_high, p_value, q_value, verdict`` (McNemar's score test, one run per side).
    by_strength : pd.DataFrame or None
        Every strength against the reference, one row each (see
        :func:`classgap.analysis.analysis.strength_table`): what the sweep costs per class even
        where validation keeps the reference.
    failed_runs : pd.DataFrame or None
        The runs that look failed (collapsed training; :mod:`classgap.analysis.failed`), one
        row each: ``strength, seed, val_acc, train_acc, reason, excluded`` (``excluded``: left
        out of every statistic, only when the analysis was asked to); empty when none.
    fixes : tuple of dict
        The fix frontier (:mod:`classgap.analysis.fixes`): the selected strength, then each fix
        audited against the reference and the selected strength (deltas in points, costs,
        ``target_met``); empty when the study has none (e.g. validation selects the reference).
    fix_rule : classgap.fix.DecisionRule or None
        The post-hoc rule fit on every seed's validation runs (``fix_rule.json``).
    groups : StudyGroups or None
        Which group pays (:mod:`classgap.analysis.groups`): the selected strength against the
        reference per group of every level of the study's class grouping, and the tree
        test's verdicts; None without a grouping or when validation keeps the reference.
    """

    axis: str
    strengths: tuple[Any, ...]
    reference: Any
    selected: Any
    mean_gain: Mapping[str, float]
    validation: pd.DataFrame
    per_class: pd.DataFrame
    classes: pd.DataFrame
    confusion_shifts: pd.DataFrame
    class_aware: Mapping[str, Any] = field(default_factory=dict)
    transfer: StudyResult | None = None
    notes: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    ensemble: pd.DataFrame | None = None
    by_strength: pd.DataFrame | None = None
    failed_runs: pd.DataFrame | None = None
    fixes: tuple[Mapping[str, Any], ...] = ()
    fix_rule: Any = None
    groups: StudyGroups | None = None

    def best_fix(self) -> dict[str, Any] | None:
        """The best fix that meets the target (:func:`~classgap.analysis.fixes.best_fix`)."""
        from classgap.analysis.fixes import best_fix

        return best_fix(self.fixes)

    def drops(self) -> pd.DataFrame:
        """The rows of ``classes`` whose verdict is a significant drop, worst first."""
        classes = self.classes
        if classes.empty or "verdict" not in classes:
            return classes.iloc[0:0]
        return classes[classes["verdict"] == "drop"].sort_values("delta")
