"""Post-hoc constrained decision rules: the fix from predictions (numpy only, never torch).

:func:`fit_weights` fits per-class weights of ``argmax_k w_k p_k(x)`` on validation scores so
that no class falls below a reference recipe; :mod:`classgap.fix.rule` holds the rule file and
the file-level :func:`fit_rule_files` / :func:`apply_rule_files`.
"""

from classgap.fix.rule import (
    DecisionRule,
    apply_rule,
    apply_rule_files,
    fit_rule,
    fit_rule_files,
    load_rule,
)
from classgap.fix.solver import (
    InfeasibleRuleError,
    RuleFit,
    fit_weights,
    plugin_predict,
    softmax,
)

__all__ = ["DecisionRule", "InfeasibleRuleError", "RuleFit", "apply_rule", "apply_rule_files",
           "fit_rule", "fit_rule_files", "fit_weights", "load_rule", "plugin_predict",
           "softmax"]
