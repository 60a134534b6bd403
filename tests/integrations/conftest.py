"""What the integration tests share: their module's example, loaded, and one baseline run of it.

A test module names its example with ``EXAMPLE`` (a path under examples/) and the baseline's
extra arguments with ``BASE_ARGS``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def example(request: pytest.FixtureRequest) -> ModuleType:
    """The module's ``EXAMPLE`` script as a module (its ``main`` runs a whole training run)."""
    path: Path = request.module.EXAMPLE
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def base(example: ModuleType, request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's run directory after 8 epochs with seed 0: the gate's baseline."""
    out = tmp_path_factory.mktemp(request.module.EXAMPLE.stem) / "base"
    extra: list[str] = getattr(request.module, "BASE_ARGS", [])
    assert example.main(["--out", str(out), "--epochs", "8", *extra]) == 0
    return out
