"""Post-hoc logit adjustment in the audit: argmax(z - tau log prior) on the files' logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classgap.audit.api import audit_files
from classgap.cli import run
from classgap.errors import ClassgapError


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    logits = rng.normal(size=(120, 3))
    logits[:, 0] += 1.0  # a head-biased model: class 0 wins too often
    np.savez(tmp_path / "p.npz", y_true=y, logits=logits)
    counts = np.array([900, 90, 10])
    (tmp_path / "counts.json").write_text(json.dumps(counts.tolist()))
    return tmp_path / "p.npz", tmp_path / "counts.json", logits, y


def test_adjusted_predictions_match_the_formula(files) -> None:
    path, counts_file, logits, y = files
    prior = np.array([900, 90, 10]) / 1000
    expected = (logits - 1.0 * np.log(prior)).argmax(1)
    adjusted = audit_files([path], train_counts=counts_file, posthoc_tau=1.0, n_boot=50)
    plain = audit_files([path], train_counts=counts_file, n_boot=50)
    acc = adjusted.by_class["accuracy"].to_numpy()
    want = np.array([(expected[y == k] == k).mean() for k in range(3)])
    np.testing.assert_allclose(acc, want)
    # tau = 0 changes nothing
    zero = audit_files([path], train_counts=counts_file, posthoc_tau=0.0, n_boot=50)
    np.testing.assert_allclose(zero.by_class["accuracy"], plain.by_class["accuracy"])


def test_needs_counts_and_logits(files, tmp_path: Path) -> None:
    path, counts_file, _, y = files
    with pytest.raises(ClassgapError, match="train_counts"):
        audit_files([path], posthoc_tau=1.0)
    np.savez(tmp_path / "labels.npz", y_true=y, y_pred=y)
    with pytest.raises(ClassgapError, match="logits"):
        audit_files([tmp_path / "labels.npz"], train_counts=counts_file, posthoc_tau=1.0)


def test_cli_option(files, capsys) -> None:
    path, counts_file, _, _ = files
    assert run(["audit", str(path), "--train-counts", str(counts_file), "--posthoc-tau", "1",
                "--format", "json", "--n-boot", "50"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert run(["audit", str(path), "--posthoc-tau", "1"]) == 1
    assert "train_counts" in capsys.readouterr().err
