"""`python -m classgap.demo` trains both recipes and prints a comparison."""

from __future__ import annotations

import numpy as np

from classgap.demo import main


def test_demo_writes_runs_and_compares(tmp_path, capsys) -> None:
    code = main(["--out", str(tmp_path), "--seeds", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Per-class change" in out and "Overall accuracy" in out
    for name in ("weak_seed0", "weak_seed1", "cv_seed0", "cv_seed1"):
        data = np.load(tmp_path / f"{name}.npz")
        assert data["probs"].shape[1] == 10
        np.testing.assert_allclose(data["probs"].sum(axis=1), 1.0, atol=1e-6)
