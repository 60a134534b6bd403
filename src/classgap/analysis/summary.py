"""``summary.json``: a :class:`~classgap.analysis.result.StudyResult` as strict JSON."""

from __future__ import annotations

from typing import Any

from classgap._files import jsonable
from classgap.analysis.result import StudyResult

__all__ = ["summary_dict"]


SUMMARY_CLASS_COLUMNS = ("class", "acc_reference", "acc_selected", "delta", "delta_low",
                         "delta_high", "p_value", "q_value", "verdict")


def summary_dict(result: StudyResult) -> dict[str, Any]:
    """The content of ``summary.json``: strict JSON (no NaN), accuracies as fractions.

    Keys: ``axis, strengths, reference, selected, mean_gain, notes, class_aware, validation,
    classes`` (records with at least ``class, acc_reference, acc_selected, delta, delta_low,
    delta_high, q_value, verdict``), ``by_strength`` (every strength against the reference:
    mean change with its interval, significant drops / gains, worst class), ``ensemble`` and
    ``transfer`` (the same dict or None), ``detectable_drop`` (what the seeds can detect,
    points, or None with fewer than 2 seeds per strength), ``failed_runs`` (the runs that look
    failed: ``strength, seed, val_acc, train_acc, reason, excluded``; None for a result without
    the check) and ``exclude_failed`` (whether they were left out of the statistics),
    ``fixes`` (the fix frontier, :mod:`classgap.analysis.fixes`) and ``best_fix`` (the best
    fix that meets the target, or None when none does), ``groups`` (which group pays:
    :meth:`~classgap.analysis.groups.StudyGroups.to_dict`, every group of every level and the
    tree, or None without a grouping).
    """
    classes = result.classes
    first = [c for c in SUMMARY_CLASS_COLUMNS if c in classes.columns]
    classes = classes[first + [c for c in classes.columns if c not in first]]
    return jsonable({
        "axis": result.axis, "strengths": list(result.strengths),
        "reference": result.reference, "selected": result.selected,
        "mean_gain": dict(result.mean_gain), "notes": list(result.notes),
        "class_aware": dict(result.class_aware), "validation": result.validation,
        "classes": classes,
        "by_strength": result.by_strength,
        "ensemble": {"classes": result.ensemble,
                     "overall": result.meta.get("ensemble")} if result.ensemble is not None
        else None,
        "transfer": summary_dict(result.transfer) if result.transfer is not None else None,
        "detectable_drop": result.meta.get("detectable_drop"),
        "failed_runs": result.failed_runs,
        "exclude_failed": bool(result.meta.get("exclude_failed", False)),
        "fixes": [dict(f) for f in result.fixes],
        "best_fix": result.best_fix(),
        "groups": result.groups.to_dict() if result.groups is not None else None,
    })
