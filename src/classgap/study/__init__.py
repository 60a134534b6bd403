"""Regularization studies: which classes pay for the strength chosen by average accuracy.

:func:`analyze` turns stored predictions (:class:`RunRecord`, one per strength and seed) into a
:class:`StudyResult`; :func:`summary_dict` is what ``summary.json`` holds; :func:`plan_seeds`
turns a study's own per-class variance into the drops it can detect and the seeds it needs.
"""

from classgap.study.analysis import RunRecord, analyze, summary_dict
from classgap.study.multilabel import load_multi_label
from classgap.study.plan import SeedPlan, plan_seeds
from classgap.study.result import StudyResult
from classgap.study.select import per_class_strengths, pick_best
from classgap.study.transfer import extract_features, linear_probe

__all__ = [
    "RunRecord",
    "SeedPlan",
    "StudyResult",
    "analyze",
    "extract_features",
    "linear_probe",
    "load_multi_label",
    "per_class_strengths",
    "pick_best",
    "plan_seeds",
    "summary_dict",
]
