"""The layering of the package: who may import whom (issue 12).

``sweep`` trains grids and knows nothing of studies; ``analysis`` is pure (no store, no
training); ``pipeline`` is the one module on top. Checked on every import statement, the
lazy ones inside functions included, so a shortcut cannot hide in a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "classgap"


def _imports(path: Path) -> set[str]:
    """Every ``classgap...`` module a file imports (absolute, as written)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("classgap")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("classgap"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _unit(module: str) -> str:
    """The layer a module belongs to: ``classgap.<package>`` or ``classgap.<module>``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        unit = _unit(".".join(rel.parts))
        targets = {_unit(m) for m in _imports(path)} - {unit}
        graph.setdefault(unit, set()).update(t for t in targets if (SRC.parent / Path(
            *t.split("."))).exists() or (SRC.parent / (t.replace(".", "/") + ".py")).exists())
    return graph


@pytest.mark.parametrize(("package", "forbidden"), [
    ("analysis", {"classgap.sweep", "classgap.train", "classgap.pipeline", "classgap.report"}),
    ("sweep", {"classgap.analysis", "classgap.report", "classgap.pipeline"}),
    # the post-hoc rules serve predictions from any framework: audit and the ground floor only
    ("fix", {"classgap.sweep", "classgap.train", "classgap.pipeline", "classgap.report",
             "classgap.analysis", "classgap.cli", "classgap.models", "classgap.data"}),
])
def test_layers_import_only_downwards(package: str, forbidden: set[str]) -> None:
    for path in sorted((SRC / package).rglob("*.py")):
        bad = {m for m in _imports(path) if _unit(m) in forbidden}
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_the_fix_rules_never_import_torch() -> None:
    """``classgap.fix`` is numpy/scipy only (ARCHITECTURE.md): checked on every import."""
    for path in sorted((SRC / "fix").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in names if m.split(".")[0] == "torch"}, path


def test_only_the_pipeline_and_the_cli_import_the_pipeline() -> None:
    for path in sorted(SRC.rglob("*.py")):
        unit = _unit(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
        if unit in ("classgap.pipeline", "classgap.cli", "classgap.demo"):
            continue
        assert "classgap.pipeline" not in {_unit(m) for m in _imports(path)}, path


def test_no_import_cycle_between_layers() -> None:
    graph = _graph()
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                assert nxt != start, f"import cycle: {' -> '.join([*trail, nxt])}"
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """`classgap --help` answers in ~0.5 s: the CLI module loads neither pandas nor scipy's
    statistics (~1 s together); the commands import them when they run."""
    import subprocess
    import sys

    probe = ("import sys, classgap.cli; "
             "print(sorted(m for m in ('pandas', 'scipy.stats', 'torch.optim', 'matplotlib') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout
