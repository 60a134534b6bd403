"""`python -m classgap.demo` trains both recipes and prints a comparison."""

from __future__ import annotations

import numpy as np

from classgap.demo import main


def test_demo_writes_runs_and_compares(tmp_path, capsys) -> None:
    out_dir = tmp_path / "[demo]"  # a path that reads as rich markup is printed as it is
    code = main(["--out", str(out_dir), "--seeds", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Per-class change" in out and "Overall accuracy" in out
    assert f"Try: classgap audit {out_dir}/cv_seed*.npz" in " ".join(out.split())
    for name in ("weak_seed0", "weak_seed1", "cv_seed0", "cv_seed1"):
        data = np.load(out_dir / f"{name}.npz")
        assert data["probs"].shape[1] == 10
        np.testing.assert_allclose(data["probs"].sum(axis=1), 1.0, atol=1e-6)
