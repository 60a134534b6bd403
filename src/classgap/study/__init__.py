"""Regularization studies: which classes pay for the strength chosen by average accuracy.

:func:`analyze` turns stored predictions (:class:`RunRecord`, one per strength and seed) into a
:class:`StudyResult`; :func:`summary_dict` is what ``summary.json`` holds.
"""

from classgap.study.analysis import RunRecord, analyze, summary_dict
from classgap.study.multilabel import load_multi_label
from classgap.study.result import StudyResult
from classgap.study.select import per_class_strengths, pick_best
from classgap.study.transfer import extract_features, linear_probe

__all__ = [
    "RunRecord",
    "StudyResult",
    "analyze",
    "extract_features",
    "linear_probe",
    "load_multi_label",
    "per_class_strengths",
    "pick_best",
    "summary_dict",
]
