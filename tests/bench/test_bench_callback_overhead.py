"""bench/callback_overhead.py stays runnable: two rounds of each variant print their tables,
and the hooks' share of a 2-epoch run is set against its target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "callback_overhead.py"


def test_one_round_prints_both_tables(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--epochs", "2", "--repeats", "2",
                           "--dir", str(tmp_path), "--files"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Lightning (fit + test), 2 epochs" in out and "Hugging Face Trainer" in out
    rows = [line for line in out.splitlines() if line.startswith("| with, defaults")]
    assert "| an empty Callback" in out
    assert len(rows) == 2 and all("%" in row for row in rows)
    assert "inside the callback's hooks" in out
    targets = [line for line in out.splitlines() if line.startswith("| 2 |")]
    assert len(targets) == 1 and "| ≤ 5% |" in targets[0], out[-2000:]
    assert targets[0].endswith(("| yes |", "| no |"))
    files = [line for line in out.splitlines() if line.startswith(("| the callback's write",
                                                                   "| its arrays", "| 16 KiB"))]
    assert len(files) == 5 and all(line.endswith(" ms |") for line in files)
    assert not list(tmp_path.iterdir())  # the runs' files go with their temporary directory
