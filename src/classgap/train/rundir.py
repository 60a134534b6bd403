"""Run directories: provenance, and every file written atomically (temp file + ``os.replace``).

A run directory holds::

    config.json       the resolved Config (Config.from_dict(json.load(...)) rebuilds it)
    provenance.json   seed, git hash, python/torch/numpy/classgap versions, device, precision,
                      hostname, start time, and the data read (data: dataset, absolute path,
                      how the test split was made)
    history.csv       epoch, lr, train_loss, train_acc, val_acc, val_loss, epoch_time
    metrics.json      final val/test accuracy, wall time, images/s
    val.npz test.npz  predictions for ``classgap audit`` (y_true, logits, sample_id, seed,
                      classes)
    model.pt          with train.checkpoint: the state_dict; load it with
                      ``model.load_state_dict(torch.load(path, weights_only=True))``

A crash never leaves half a file, and a directory holding another run's config is not
overwritten unless asked.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classgap._files import atomic_write, jsonable, write_json
from classgap.errors import ConfigError

__all__ = [
    "HISTORY_COLUMNS",
    "RUN_FILES",
    "atomic_write",
    "git_hash",
    "load_model",
    "prepare_run_dir",
    "provenance",
    "save_state_dict",
    "write_class_weights",
    "write_history",
    "write_json",
]

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc", "val_loss",
                   "epoch_time", "test_acc")  # test_acc only with train.track_test
RUN_FILES = ("config.json", "provenance.json", "history.csv", "metrics.json", "val.npz",
             "test.npz", "model.pt", "train_counts.json", "class_weights.csv")


def write_class_weights(path: str | os.PathLike[str], rows: Sequence[Sequence[float]],
                        classes: Sequence[str]) -> Path:
    """``class_weights.csv``: column ``epoch`` (1-based), then one column per class name, one
    row per epoch holding the class weights that epoch trained with."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", *classes])
    for epoch, weights in enumerate(rows, start=1):
        writer.writerow([epoch, *(f"{w:.6g}" for w in weights)])
    return atomic_write(path, buf.getvalue())


def write_history(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """``history.csv`` with :data:`HISTORY_COLUMNS` (empty cell where a value is missing)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if (v := row.get(k)) is None or v != v else v)
                         for k in HISTORY_COLUMNS})
    return atomic_write(path, lambda fh: fh.write(buf.getvalue().encode()))


def save_state_dict(path: str | os.PathLike[str], module: torch.nn.Module) -> Path:
    """``torch.save(module.state_dict())`` atomically (tensors only: loads with weights_only)."""
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    return atomic_write(path, lambda fh: torch.save(state, fh))


def prepare_run_dir(out_dir: str | os.PathLike[str], config: Mapping[str, Any], *,
                    overwrite: bool = False) -> Path:
    """Create ``out_dir``, or accept an existing one, without clobbering another run.

    An empty or missing directory is fine; so is one whose ``config.json`` equals ``config``
    (re-running the same config replaces its files). A non-empty directory with any other
    content raises :class:`~classgap.errors.ConfigError` unless ``overwrite``; then the run
    files (:data:`RUN_FILES`) it holds are removed first, and nothing else is touched.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: output path exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if overwrite:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        else:
            old = out / "config.json"
            try:
                same = json.loads(old.read_text(encoding="utf-8")) == jsonable(config)
            except (OSError, ValueError):
                same = False
            if not same:
                what = "a different config" if old.is_file() else "other files"
                raise ConfigError(f"{out}: output directory is not empty and holds {what}; "
                                  f"pass --overwrite (overwrite=True) or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def git_hash(path: str | os.PathLike[str] | None = None) -> str | None:
    """Commit of the git work tree holding ``path`` (default: this package), ``+dirty`` when
    tracked files differ from it; None outside a repository or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        # diff-index is read-only plumbing (status would refresh the index)
        dirty = subprocess.run(["git", "-C", str(where), "diff-index", "--quiet", "HEAD", "--"],
                               capture_output=True, timeout=5).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def provenance(*, seed: int, device: torch.device, precision: str, channels_last: bool,
               threads: int, start_time: datetime | None = None) -> dict[str, Any]:
    """What produced a run: seed, code version, library versions, machine, numeric settings."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        classgap_version = version("classgap")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        classgap_version = None
    from classgap.train.precision import cpu_info

    cpu = cpu_info()
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu["model"]
    return {
        "seed": seed,
        "git_hash": git_hash(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "classgap": classgap_version,
        "device": str(device),
        "device_name": device_name,
        "cpu": cpu,
        "precision": precision,
        "channels_last": channels_last,
        "threads": threads,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "start_time": (start_time or datetime.now(UTC)).isoformat(timespec="seconds"),
    }


def write_run(out: Path, config: Any, *, splits: Any, history: Sequence[Mapping[str, Any]],
              val: Any, test: Any, model: torch.nn.Module, device: torch.device,
              precision: str, channels_last: bool, started: datetime, wall_time: float,
              train_time: float, images_per_second: float,
              extra_provenance: Mapping[str, Any] | None = None,
              class_weights: Sequence[Sequence[float]] | None = None) -> dict[str, Path]:
    """Write every file of a finished run into ``out``; return their paths by name.

    ``config`` is the run's :class:`~classgap.config.Config`, ``splits`` its
    :class:`~classgap.data.loader.Splits`, ``val``/``test`` its
    :class:`~classgap.train.evaluate.EvalResult` (``val`` may be None). Shared by the
    single-model trainer and the ensemble engine, so both leave the same run directory.
    """
    from classgap.audit.io import write_predictions

    tc = config.train
    paths = {"config": write_json(out / "config.json", config.to_dict())}
    prov = provenance(seed=tc.seed, device=device, precision=precision,
                      channels_last=channels_last, start_time=started,
                      threads=torch.get_num_threads() if tc.threads is None else tc.threads)
    # which copy of the data, and how its test split was made: a run can be traced to files
    prov["data"] = dict(getattr(splits, "source", None) or {})
    prov.update(extra_provenance or {})
    paths["provenance"] = write_json(out / "provenance.json", prov)
    paths["history"] = write_history(out / "history.csv", history)
    # what `classgap audit --train-counts` reads: many/medium/few groups of long-tailed runs
    paths["train_counts"] = write_json(out / "train_counts.json",
                                       [int(n) for n in splits.train.class_counts()])
    classes = list(splits.train.classes)
    for name, result in (("val", val), ("test", test)):
        if result is not None:
            paths[name] = write_predictions(
                out / f"{name}.npz", y_true=result.labels,
                y_pred=result.logits.argmax(axis=1), logits=result.logits,
                sample_id=splits.indices[name], seed=tc.seed, classes=classes)
    if class_weights:  # worst-class reweighting: the weights each epoch trained with
        paths["class_weights"] = write_class_weights(out / "class_weights.csv", class_weights,
                                                     classes)
    if tc.checkpoint:
        paths["model"] = save_state_dict(out / "model.pt", model)
    paths["metrics"] = write_json(out / "metrics.json", {
        "val_accuracy": val.accuracy if val else None, "val_loss": val.loss if val else None,
        "test_accuracy": test.accuracy, "test_loss": test.loss,
        "wall_time": round(wall_time, 3), "train_time": round(train_time, 3),
        "images_per_second": round(images_per_second, 1), "epochs": tc.epochs,
        "n_train": len(splits.train), "n_val": len(splits.val) if splits.val is not None else 0,
        "n_test": len(splits.test), "n_params": sum(p.numel() for p in model.parameters()),
    })
    return paths



def read_run_config(run_dir: str | os.PathLike[str]) -> Any:
    """The :class:`~classgap.config.Config` a run directory was trained with."""
    from classgap.config import Config
    from classgap.errors import DataFormatError, InputError

    path = Path(run_dir) / "config.json"
    if not path.is_file():  # the whole path: fail() would shorten it
        raise InputError(f"'run_dir' must be a run directory holding config.json; got "
                         f"{str(run_dir)!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataFormatError(f"{path}: not readable JSON ({exc})") from exc
    return Config.from_dict(data)


def load_model(run_dir: str | os.PathLike[str], config: Any, *,
               image_shape: Sequence[int], n_classes: int) -> torch.nn.Module:
    """The model of a run directory: its architecture from ``config``, weights from
    ``model.pt``, on the CPU in eval mode.

    ``model.pt`` is read with ``torch.load(..., weights_only=True)``, which refuses anything
    but tensors: a run directory is data, never code to unpickle. The global RNG is left as
    it was (building the model draws an initialisation that the weights overwrite).

    Raises
    ------
    InputError
        No ``model.pt`` (the run was trained without ``train.checkpoint=true``).
    DataFormatError
        ``model.pt`` is unreadable, not a state dict, or does not fit the architecture.
    """
    from classgap.errors import DataFormatError, InputError
    from classgap.models import create_model

    weights = Path(run_dir) / "model.pt"
    if not weights.is_file():
        raise InputError(f"'run_dir' must hold model.pt (train the run with --set "
                         f"train.checkpoint=true); got {str(run_dir)!r}")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or anything but tensors (refused, not run)
        raise DataFormatError(f"{weights}: not a state_dict of tensors ({exc})") from exc
    if not isinstance(state, dict):
        raise DataFormatError(f"{weights}: must hold a state_dict; got {type(state).__name__}")
    c, h, w = image_shape
    with torch.random.fork_rng(devices=[]):
        model = create_model(config.model.name, num_classes=n_classes, in_channels=c,
                             image_size=(h, w), head=config.model.head,
                             dropout=config.model.dropout)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing/unexpected keys or shapes
        raise DataFormatError(f"{weights}: weights do not fit model {config.model.name!r} "
                              f"({exc})") from exc
    return model.eval()
