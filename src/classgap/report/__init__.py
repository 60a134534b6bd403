"""The study report: figures, a self-contained HTML page, tables and a terminal summary."""

from classgap.report.html import headline, write_report
from classgap.report.plots import (
    FIGURES,
    build_figures,
    class_aware,
    confusion_shifts,
    delta_at_selected,
    per_class_vs_strength,
    transfer,
)
from classgap.report.terminal import print_summary

__all__ = [
    "FIGURES",
    "build_figures",
    "class_aware",
    "confusion_shifts",
    "delta_at_selected",
    "headline",
    "per_class_vs_strength",
    "print_summary",
    "transfer",
    "write_report",
]
