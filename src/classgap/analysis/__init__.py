"""The analysis of a study: which classes pay for the strength chosen by average accuracy.

Pure functions of run records (predictions); nothing here trains, opens a store or imports the
sweep package (the pipeline, :mod:`classgap.pipeline`, does). :func:`analyze` turns stored
predictions (:class:`RunRecord`, one per strength and seed) into a :class:`StudyResult`;
:func:`summary_dict` is what ``summary.json`` holds; :func:`plan_seeds` turns a study's own
per-class variance into the drops it can detect and the seeds it needs;
:mod:`classgap.analysis.refit` audits the class-aware refit.
"""

from classgap.analysis.analysis import RunRecord, analyze, summary_dict
from classgap.analysis.multilabel import load_multi_label
from classgap.analysis.plan import SeedPlan, plan_seeds
from classgap.analysis.result import StudyResult
from classgap.analysis.select import per_class_strengths, pick_best

__all__ = [
    "RunRecord",
    "SeedPlan",
    "StudyResult",
    "analyze",
    "load_multi_label",
    "per_class_strengths",
    "pick_best",
    "plan_seeds",
    "summary_dict",
]
