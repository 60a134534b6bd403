"""Without the extras, the core imports and each callback module fails with the pip command."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "transformers"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
import classgap, classgap.integrations, classgap.audit
from classgap.errors import ClassgapError
try:
    import classgap.integrations.{module}
except ClassgapError as exc:
    print(exc)
"""


@pytest.mark.parametrize(("module", "extra"), [("lightning", "lightning"), ("hf", "hf")])
def test_a_missing_extra_names_its_pip_command(module: str, extra: str) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"pip install 'classgap[{extra}]'" in done.stdout
