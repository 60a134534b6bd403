"""CIFAR-10/100 batches: round trips on fake batches and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classgap.data import load_cifar
from classgap.data.cifar import load_pickle
from classgap.errors import DataFormatError, InputError


def _dump(path: Path, obj: Any, protocol: int = 2) -> None:
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def _batch(n: int, seed: int, label_key: bytes | str, k: int) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake", label_key: [int(v) for v in rng.integers(0, k, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * n}


def _fake_cifar10(root: Path, n: int = 4, protocol: int = 2) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                  "frog", "horse", "ship", "truck")]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072}, protocol)
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", _batch(n, i, b"labels", 10), protocol)
    _dump(folder / "test_batch", _batch(n, 0, b"labels", 10), protocol)
    return folder


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar10_round_trip(tmp_path: Path, protocol: int) -> None:
    folder = _fake_cifar10(tmp_path, protocol=protocol)
    train = load_cifar(tmp_path, split="train")
    assert len(train) == 20 and train.image_shape == (3, 32, 32) and train.n_classes == 10
    assert train.classes[0] == "airplane" and train.name == "cifar10/train"
    first = _batch(4, 1, b"labels", 10)
    # Row layout: 1024 red, then green, then blue; each a row-major 32x32 plane.
    np.testing.assert_array_equal(train.images[0, 1, 0, :5], first[b"data"][0, 1024:1029])
    assert train.labels[:4].tolist() == first[b"labels"]
    test = load_cifar(folder, split="test")  # the batch folder itself works as root too
    assert len(test) == 4 and test.name == "cifar10/test"


def test_cifar100_round_trip_str_keys(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    fine = [f"class{i:02d}" for i in range(100)]
    _dump(folder / "meta", {"fine_label_names": fine, "coarse_label_names": ["c"] * 20}, 4)
    for split, n in (("train", 6), ("test", 3)):
        batch = {"data": np.full((n, 3072), 9, np.uint8), "fine_labels": list(range(n)),
                 "coarse_labels": [0] * n, "filenames": ["f"] * n}
        _dump(folder / split, batch, 4)
    ds = load_cifar(tmp_path, num_classes=100, split="train")
    assert len(ds) == 6 and ds.n_classes == 100 and ds.classes[5] == "class05"
    assert ds.labels.tolist() == list(range(6))
    assert len(load_cifar(tmp_path, num_classes=100, split="test")) == 3


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("payload", [
    pickle.dumps(_Evil(), protocol=2),
    b"cposix\nsystem\n(S'touch PWNED'\ntR.",
    pickle.dumps({b"data": _Evil()}, protocol=4),
])
def test_malicious_pickle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     payload: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(payload)
    with pytest.raises(DataFormatError, match=r"data_batch_1: refusing to unpickle global "
                                              r"'(posix|os|nt)\.system'"):
        load_pickle(bad)
    assert not (tmp_path / "PWNED").exists()


def test_malicious_batch_inside_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = _fake_cifar10(tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil()}))
    with pytest.raises(DataFormatError, match=r"data_batch_3: refusing .*system"):
        load_cifar(tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_builtins_eval_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "batch"
    bad.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(DataFormatError, match=r"refusing to unpickle global 'builtins\.eval'"):
        load_pickle(bad)


@pytest.mark.parametrize(
    ("data", "labels", "match"),
    [
        (np.zeros((4, 1024), np.uint8), [0] * 4,
         r"data_batch_2: field 'data' must be a uint8 array of shape \(N, 3072\); got dtype "
         r"uint8, shape \(4, 1024\)"),
        (np.zeros((4, 3072), np.float32), [0] * 4, r"field 'data' must be a uint8 .*float32"),
        ([[0] * 3072] * 4, [0] * 4, r"field 'data' must be a uint8 array .*got list"),
        (np.zeros((4, 3072), np.uint8), [0] * 3,
         r"data_batch_2: field 'labels' must hold 4 labels .*got shape \(3,\)"),
        (np.zeros((4, 3072), np.uint8), [0, 1, 2, 10],
         r"data_batch_2: field 'labels' must hold integers in \[0, 9\]; got 10 at row 3"),
    ],
)
def test_bad_batch(tmp_path: Path, data: Any, labels: list, match: str) -> None:
    folder = _fake_cifar10(tmp_path)
    _dump(folder / "data_batch_2", {b"data": data, b"labels": labels})
    with pytest.raises(DataFormatError, match=match):
        load_cifar(tmp_path)


def test_missing_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"CIFAR-10 not found in .*cifar-10-batches-py/"
                                              r"batches\.meta.*cs\.toronto\.edu"):
        load_cifar(tmp_path)
    folder = _fake_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataFormatError, match=r"test_batch: not a readable pickle"):
        load_cifar(tmp_path, split="test")
    _dump(folder / "test_batch", [1, 2, 3])
    with pytest.raises(DataFormatError, match=r"test_batch: expected a dict; got list"):
        load_cifar(tmp_path, split="test")
    (folder / "data_batch_5").unlink()
    with pytest.raises(DataFormatError, match=r"data_batch_5: missing CIFAR-10 batch"):
        load_cifar(tmp_path)
    with pytest.raises(InputError, match=r"'num_classes' must be 10 or 100; got 20"):
        load_cifar(tmp_path, num_classes=20)
