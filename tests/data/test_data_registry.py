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
    ds = Dataset(np.zeros((10, 1, 2, 2), np.uint8), np.array([0] * 5 + [1] * 5), ("a", "b"), "t")
    path = save_npz_dataset(tmp_path / "t.npz", ds)
    # one split: a stratified 20% test part is held out (the old error was "got 'test'")
    train, test = load_dataset(f"npz:{path}"), load_dataset(f"npz:{path}", split="test")
    assert (len(train), len(test)) == (8, 2) and test.class_counts().tolist() == [1, 1]
    assert (train.name, test.name) == ("t/train", "t/test")
    assert len(load_dataset(f"npz:{path}", split="all")) == 10
    assert len(load_dataset(f"npz:{path}", split="test", test_fraction=0.4)) == 4
    info = dataset_info(f"npz:{path}")
    assert info["path"] == str(path.resolve())
    assert info["splits"]["test"] == {"size": 2, "image_shape": [1, 2, 2],
                                      "classes": ["a", "b"], "class_counts": [1, 1]}
    with pytest.raises(InputError, match=r"'split' must be one of 'train', 'test', 'all'; "
                                         r"got 'val'"):
        load_dataset(f"npz:{path}", split="val")
    with pytest.raises(DataFormatError, match=r"nope: not a folder"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(InputError, match=r"'test_fraction' must give between 2 and 8 test "
                                         r"samples .*; got 0.05"):
        load_dataset(f"npz:{path}", test_fraction=0.05)


def test_image_size_resizes_every_dataset_like_a_folder(tmp_path: Path) -> None:
    from PIL import Image

    from classgap.data import resize_images

    digits = load_dataset("digits", split="test", image_size=(12, 10))
    assert digits.image_shape == (1, 12, 10) and len(digits) == 449
    assert load_dataset("digits", split="all", image_size=4).image_shape == (1, 4, 4)
    # arrays are resized with the filter image folders resize their files with
    ds = load_dataset("digits", split="all")
    for i in range(4):
        (tmp_path / "f" / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(ds.images[i, 0]).save(tmp_path / "f" / "ab"[i % 2] / f"{i}.png")
    folder = load_dataset(f"folder:{tmp_path / 'f'}", split="all", image_size=(12, 10))
    np.testing.assert_array_equal(folder.images[0], resize_images(ds.images[:1], (12, 10))[0])
    assert not np.array_equal(folder.images[0], folder.images[2])  # image 0 and image 1


def test_data_dir_given_must_exist_and_is_the_only_place_looked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classgap.data import data_source

    with pytest.raises(InputError, match=r"'data_dir' must be an existing folder; got "
                                         r"'/nonexistent/x' \(does not exist\)"):
        load_dataset("fashion-mnist", data_dir="/nonexistent/x")
    with pytest.raises(InputError, match=r"'data_dir' has no use with dataset 'digits'"):
        load_dataset("digits", data_dir=tmp_path)
    # a relative folder:/npz: PATH is taken inside data_dir; an absolute one cannot be
    ds = Dataset(np.zeros((10, 1, 2, 2), np.uint8), np.arange(10) % 2, ("a", "b"), "t")
    save_npz_dataset(tmp_path / "t.npz", ds)
    assert len(load_dataset("npz:t.npz", split="all", data_dir=tmp_path)) == 10
    assert data_source("npz:t.npz", data_dir=tmp_path) == str((tmp_path / "t.npz").resolve())
    with pytest.raises(InputError, match=r"'data_dir' has no use with the absolute path"):
        load_dataset(f"npz:{tmp_path / 't.npz'}", data_dir=tmp_path)
    file = tmp_path / "t.npz"
    with pytest.raises(InputError, match=r"'data_dir' must be an existing folder; got .*t\.npz"
                                         r"' \(is not a folder\)"):
        load_dataset("fashion-mnist", data_dir=file)


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
        load_dataset("cifar100", data_dir=tmp_path)
    # a data_dir given is the only place looked, not $CLASSGAP_DATA behind it
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataFormatError, match=r"CIFAR-10 not found \(looked in \S*elsewhere\);"):
        load_dataset("cifar10", data_dir=tmp_path / "elsewhere")
    assert dataset_info("cifar10", data_dir=tmp_path)["path"] == str(folder.resolve())
