"""hessian_for_run on a tiny trained run: the model and inputs it rebuilds are the trained ones."""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from classgap.audit.io import read_predictions
from classgap.config import load_config
from classgap.data import Dataset
from classgap.data.loader import DeviceLoader
from classgap.diagnostics import hessian_for_run, load_run
from classgap.errors import DataFormatError, InputError
from classgap.train import train

TINY = ["data.dataset=digits", "model.name=mlp", "train.epochs=1", "train.progress=false",
        "optim.batch_size=64", "train.checkpoint=true", "train.precision=fp32",
        "train.threads=1", "train.device=cpu"]
FAST: dict[str, Any] = {"lanczos_steps": 8, "trace_samples": 2, "density_steps": 4,
                        "density_vectors": 1, "grid": 64}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small tensors gain nothing from threads, which spin-wait on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hessian") / "run"
    train(load_config(overrides=TINY), out)
    return out


def test_load_run_rebuilds_the_trained_model_and_inputs(run_dir: Path) -> None:
    loaded = load_run(run_dir, split="test")
    assert not loaded.model.training
    x = loaded.transform(torch.from_numpy(loaded.images))
    # exactly the trainer's loader preprocessing (test split, training-split statistics)
    loader = DeviceLoader(Dataset(loaded.images, loaded.labels, loaded.classes, "test"),
                          batch_size=len(loaded.labels), mean=loaded.transform.mean.flatten(),
                          std=loaded.transform.std.flatten())
    reference, _, _ = next(loader.epoch(0))
    assert torch.equal(x, reference)
    with torch.no_grad():
        logits = loaded.model(x).numpy()
    saved = read_predictions(run_dir / "test.npz")
    assert saved.scores is not None
    np.testing.assert_allclose(logits, saved.scores, rtol=1e-5, atol=1e-5)
    assert np.array_equal(loaded.labels, saved.y_true)
    train_split = load_run(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(train_split.labels) == metrics["n_train"]
    assert train_split.classes == tuple(str(c) for c in range(10))


def test_hessian_for_run_per_class_and_pooled(run_dir: Path) -> None:
    rng_state = torch.get_rng_state()
    result = hessian_for_run(run_dir, max_per_class=16, device="cpu", **FAST)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global RNG is left alone
    frame = result.to_frame()
    assert frame["class"].tolist() == list(range(10))
    assert frame["name"].tolist() == [str(c) for c in range(10)]
    assert (frame["n"] == 16).all()
    values = frame[["loss", "top_eigenvalue", "bottom_eigenvalue", "trace"]].to_numpy()
    assert np.isfinite(values).all()
    assert (frame["top_eigenvalue"] > 0).all()
    assert (frame["top_eigenvalue"] >= frame["bottom_eigenvalue"]).all()
    assert result.densities is not None and result.densities.shape == (10, 64)
    assert result.settings["run_dir"] == str(run_dir) and result.settings["split"] == "train"
    again = hessian_for_run(run_dir, max_per_class=16, device="cpu", **FAST)
    assert np.array_equal(again.top_eigenvalues, result.top_eigenvalues)
    pooled = hessian_for_run(run_dir, per_class=False, max_per_class=3, device="cpu",
                             density=False, **{k: v for k, v in FAST.items()
                                               if not k.startswith(("density", "grid"))})
    assert pooled.to_frame()["n"].tolist() == [30] and pooled.names == ("all",)


def test_missing_checkpoint_says_how_to_get_one(run_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "config.json", bare / "config.json")
    with pytest.raises(InputError, match=r"'run_dir' must hold model.pt \(train the run with "
                       r"--set train.checkpoint=true\); got '.*bare'"):
        hessian_for_run(bare)
    with pytest.raises(InputError, match="'run_dir' must be a run directory holding config"):
        hessian_for_run(tmp_path / "nowhere")


def test_bad_files_and_options(run_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    (bad / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataFormatError, match=r"model\.pt: not a state_dict of tensors"):
        load_run(bad)
    torch.save({"when": datetime.datetime(2024, 1, 1)}, bad / "model.pt")  # not tensors
    with pytest.raises(DataFormatError, match=r"model\.pt: not a state_dict of tensors"):
        load_run(bad)
    torch.save({"head.weight": torch.zeros(2, 2)}, bad / "model.pt")
    with pytest.raises(DataFormatError, match="weights do not fit model 'mlp'"):
        load_run(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(DataFormatError, match=r"config\.json: not readable JSON"):
        load_run(bad)
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["val_size"] = 0
    (bad / "config.json").write_text(json.dumps(config))
    shutil.copy(run_dir / "model.pt", bad / "model.pt")
    with pytest.raises(InputError, match=r"'split' must name a split the run has .*; got 'val'"):
        load_run(bad, split="val")
    with pytest.raises(InputError, match=r"'split' must be one of 'train', 'val', 'test'"):
        load_run(run_dir, split="valid")
    with pytest.raises(InputError, match=r"got unknown option.*'iters'"):
        hessian_for_run(run_dir, iters=3)
