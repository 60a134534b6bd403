"""The examples in the docstrings run and print what they say (the API reference's promise)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "classgap.config",
    "classgap._files",
    "classgap._format",
    "classgap._richtext",
    "classgap._registry",
    "classgap.catalog",
    "classgap.losses.worst_class",
    "classgap.integrations.recorder",
    "classgap.audit._sampling",
    "classgap.audit._labels",
    "classgap.audit.io",
    "classgap.audit.perclass",
    "classgap.audit.intervals",
    "classgap.audit.disparity",
    "classgap.audit.paired",
    "classgap.audit.compare",
    "classgap.audit.frame",
    "classgap.audit.groups",
    "classgap.audit.hierarchical",
    "classgap.audit.grouped",
    "classgap.data.groups",
    "classgap.analysis.plan",
    "classgap.fix.solver",
    "classgap.fix.rule",
    "classgap.sweep.integrity",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS
                                      | doctest.NORMALIZE_WHITESPACE)
    assert tried > 0, f"{name} has no examples"
    assert failures == 0
