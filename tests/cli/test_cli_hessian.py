"""``classgap hessian RUN_DIR``: files and table from a saved run; one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from classgap.cli import run


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small tensors gain nothing from threads, which spin-wait on a busy machine (the
    Hessian of this test took 317 s instead of 4 s at two threads beside one busy core)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hrun")
    assert run(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "1",
                "--set", "train.checkpoint=true", "--set", "train.threads=1",
                "--out", str(out)]) == 0
    return out


def test_per_class_files_and_table(run_dir: Path, tmp_path: Path, capsys) -> None:
    code = run(["hessian", str(run_dir), "--max-per-class", "16", "--lanczos-steps", "12",
                "--trace-samples", "4", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    frame = pd.read_csv(tmp_path / "hessian.csv")
    assert len(frame) == 10 and (frame["top_eigenvalue"] >= frame["bottom_eigenvalue"]).all()
    assert (tmp_path / "hessian.png").stat().st_size > 1000
    density = np.load(tmp_path / "hessian_density.npz")
    assert density["densities"].shape == (10, density["grid"].size)
    assert "λ max" in out


def test_errors_are_one_line(run_dir: Path, tmp_path: Path, capsys) -> None:
    assert run(["hessian", str(tmp_path)]) == 1  # not a run directory
    err = capsys.readouterr().err
    assert "config.json" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "config.json").write_text((run_dir / "config.json").read_text())
    assert run(["hessian", str(tmp_path)]) == 1  # a run trained without a checkpoint
    err = capsys.readouterr().err
    assert "train.checkpoint=true" in err and len(err.strip().splitlines()) == 1
    assert run(["hessian", str(run_dir), "--split", "tain"]) == 1
    err = capsys.readouterr().err
    assert "--split" in err and "Traceback" not in err
