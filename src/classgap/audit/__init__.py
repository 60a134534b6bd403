"""Per-class audit statistics for predictions from any framework (numpy/scipy/pandas only).

Start with :func:`audit` (one model) and :func:`compare_predictions` (two recipes); the
statistics they are built from are exported one by one.
"""

from classgap.audit.api import audit_files, compare_files
from classgap.audit.compare import (
    Comparison,
    compare_predictions,
    effect_size,
    mcnemar_exact,
    mcnemar_interval,
    mcnemar_score_test,
    paired_bootstrap_delta,
    permutation_test,
    welch_test,
)
from classgap.audit.disparity import (
    balanced_accuracy,
    difficulty_tertiles,
    disparity_summary,
    harmonic_mean,
    worst_class,
    worst_k_mean,
)
from classgap.audit.frame import ClassAudit, audit, audit_predictions
from classgap.audit.grouped import GroupAudit, GroupComparison, audit_groups, compare_groups
from classgap.audit.groups import BUILTIN_GROUPS, GroupMap, read_group_map
from classgap.audit.hierarchical import (
    TreeComparison,
    compare_tree,
    hierarchical_test,
    tree_comparison,
)
from classgap.audit.intervals import (
    bootstrap_class_accuracy,
    bootstrap_interval,
    bootstrap_statistic,
    seed_interval,
    two_level_bootstrap_accuracy,
    wilson_interval,
)
from classgap.audit.io import (
    Predictions,
    align_runs,
    load_runs,
    read_class_names,
    read_predictions,
    write_predictions,
)
from classgap.audit.multiplicity import adjust_pvalues
from classgap.audit.perclass import (
    class_counts,
    confusion_matrix,
    per_class_metrics,
    sparse_confusion,
)

__all__ = [
    "BUILTIN_GROUPS",
    "ClassAudit",
    "Comparison",
    "GroupAudit",
    "GroupComparison",
    "GroupMap",
    "Predictions",
    "TreeComparison",
    "adjust_pvalues",
    "align_runs",
    "audit",
    "audit_files",
    "audit_groups",
    "audit_predictions",
    "balanced_accuracy",
    "bootstrap_class_accuracy",
    "bootstrap_interval",
    "bootstrap_statistic",
    "class_counts",
    "compare_files",
    "compare_groups",
    "compare_predictions",
    "compare_tree",
    "confusion_matrix",
    "difficulty_tertiles",
    "disparity_summary",
    "effect_size",
    "harmonic_mean",
    "hierarchical_test",
    "load_runs",
    "mcnemar_exact",
    "mcnemar_interval",
    "mcnemar_score_test",
    "paired_bootstrap_delta",
    "per_class_metrics",
    "permutation_test",
    "read_class_names",
    "read_group_map",
    "read_predictions",
    "seed_interval",
    "sparse_confusion",
    "tree_comparison",
    "two_level_bootstrap_accuracy",
    "welch_test",
    "wilson_interval",
    "worst_class",
    "worst_k_mean",
    "write_predictions",
]
