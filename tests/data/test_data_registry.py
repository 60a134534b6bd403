"""load_dataset / list_datasets / dataset_info by spec."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from classgap.data import Dataset, dataset_info, list_datasets, load_dataset, save_npz_dataset
from classgap.errors import DataFormatError, InputError


def test_list() -> None:
    assert list_datasets() == ["cifar10", "cifar100", "digits", "fashion-mnist", "folder:PATH",
                               "npz:PATH"]


def test_unknown_name_suggests() -> None:
    with pytest.raises(InputError, match=r"'dataset' must be one of 'fashion-mnist', .*'npz'; got "
                                         r"'fashion_mnist' \(did you mean 'fashion-mnist'\?\)"):
        load_dataset("fashion_mnist")
    with pytest.raises(InputError, match=r"dataset 'npz' needs a path: 'npz:PATH'"):
        load_dataset("npz")
    with pytest.raises(InputError, match=r"dataset 'digits' takes no path"):
        load_dataset("digits:/tmp")


def test_digits_splits() -> None:
    assert len(load_dataset("digits", split="all")) == 1797
    with pytest.raises(InputError, match=r"'split' must be one of 'train', 'test', 'all'; "
                                         r"got 'val'"):
        load_dataset("digits", split="val")
    info = dataset_info("digits")
    assert info["name"] == "digits" and set(info["splits"]) == {"train", "test"}
    assert info["splits"]["test"]["size"] == 449
    assert info["splits"]["train"]["image_shape"] == [1, 8, 8]
    assert sum(info["splits"]["train"]["class_counts"]) == 1348


def test_npz_and_folder_specs(tmp_path: Path) -> None:
    ds = Dataset(np.zeros((3, 1, 2, 2), np.uint8), np.array([0, 1, 1]), ("a", "b"), "t")
    path = save_npz_dataset(tmp_path / "t.npz", ds)
    assert len(load_dataset(f"npz:{path}")) == 3
    assert len(load_dataset(f"npz:{path}", split="all")) == 3
    with pytest.raises(InputError, match=r"'split' must be one of 'all', 'train'; got 'test'"):
        load_dataset(f"npz:{path}", split="test")
    info = dataset_info(f"npz:{path}")
    assert info["splits"] == {"all": {"size": 3, "image_shape": [1, 2, 2],
                                      "classes": ["a", "b"], "class_counts": [1, 2]}}
    with pytest.raises(DataFormatError, match=r"nope: not a folder"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_cifar_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLASSGAP_DATA", raising=False)
    with pytest.raises(DataFormatError, match=r"CIFAR-10 not found \(looked in nowhere"):
        load_dataset("cifar10")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 9]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    monkeypatch.setenv("CLASSGAP_DATA", str(tmp_path))
    assert len(load_dataset("cifar10")) == 10
    assert dataset_info("cifar10")["splits"]["test"]["class_counts"][9] == 1
    with pytest.raises(DataFormatError, match=r"CIFAR-100 not found \(looked in .*"
                                              r"cifar-100-python/"):
        load_dataset("cifar100", data_dir=tmp_path / "elsewhere")
