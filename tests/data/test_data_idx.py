"""IDX reading/writing, malformed IDX files, and Fashion-MNIST find / load / download."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from classgap.data import (
    FASHION_MNIST_CLASSES,
    download_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    load_idx_pair,
    read_idx,
    write_idx,
)
from classgap.data import idx as idx_module
from classgap.errors import DataFormatError

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
def test_round_trip(tmp_path: Path, suffix: str, dtype: type) -> None:
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4) * dtype(1)
    if dtype in (np.float32, np.float64):
        arr = arr / 3
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, arr)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    arr = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", arr)
    (tmp_path / "a.gz").rename(tmp_path / "plain-name")
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-name"), arr)
    write_idx(tmp_path / "b", arr)
    (tmp_path / "b").rename(tmp_path / "b.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), arr)


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\x01\x00\x08\x01" + bytes(8),
         r"field 'magic' must start with two zero bytes.*got 01 00 08 01"),
        (b"", r"field 'magic'.*got an empty file"),
        (_header(0x0A, (3,)) + bytes(3), r"field 'dtype code' must be one of 0x08, .*; got 0x0A"),
        (_header(0x08, (2, 5)) + bytes(7),
         r"truncated data for shape \(2, 5\): expected 10 bytes, got 7"),
        (_header(0x0D, (3,)) + bytes(12 + 2), r"2 trailing bytes .*expected 12 bytes, got 14"),
        (bytes([0, 0, 8, 3]) + bytes(4), r"truncated header: expected 16 bytes, got 8"),
        (b"\x1f\x8b\x08\x00garbage", r"corrupt gzip stream"),
    ],
)
def test_malformed_idx(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=rf"^{tmp_path}/bad\.idx: " + match):
        read_idx(path)


def test_truncated_gz_payload(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(_header(0x08, (100,)) + bytes(60)))
    with pytest.raises(DataFormatError,
                       match=r"t\.gz: truncated data .*expected 100 bytes, got 60"):
        read_idx(path)


def _fake_pair(folder: Path, n: int, prefix: str = "train", gz: bool = True,
               labels: np.ndarray | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    lab = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}",
              np.full((n, 28, 28), 7, dtype=np.uint8))
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", lab)


def test_load_idx_pair(tmp_path: Path) -> None:
    _fake_pair(tmp_path, 20)
    ds = load_idx_pair(tmp_path / "train-images-idx3-ubyte.gz",
                       tmp_path / "train-labels-idx1-ubyte.gz", FASHION_MNIST_CLASSES, "fake")
    assert ds.images.shape == (20, 1, 28, 28) and ds.class_counts().tolist() == [2] * 10


def test_label_count_mismatch(tmp_path: Path) -> None:
    _fake_pair(tmp_path, 20, labels=np.zeros(19, np.uint8))
    with pytest.raises(DataFormatError,
                       match=r"train-labels-idx1-ubyte\.gz: label count 19 does not match the "
                             r"image count 20 of .*train-images-idx3-ubyte\.gz"):
        load_idx_pair(tmp_path / "train-images-idx3-ubyte.gz",
                      tmp_path / "train-labels-idx1-ubyte.gz", FASHION_MNIST_CLASSES, "fake")


def test_label_out_of_range(tmp_path: Path) -> None:
    _fake_pair(tmp_path, 3, labels=np.array([0, 12, 1], np.uint8))
    with pytest.raises(DataFormatError, match=r"labels-idx1-ubyte\.gz: 'labels' must hold "
                                              r"integers in \[0, 9\]; got 12 at row 1"):
        load_idx_pair(tmp_path / "train-images-idx3-ubyte.gz",
                      tmp_path / "train-labels-idx1-ubyte.gz", FASHION_MNIST_CLASSES, "fake")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No system copy, no $CLASSGAP_DATA, a private cache: only what the test creates."""
    monkeypatch.setattr(idx_module, "SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.delenv("CLASSGAP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_find_order_and_plain_files(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataFormatError, match=r"Fashion-MNIST not found \(looked in .*system.*"
                                              r"apt-get install dataset-fashion-mnist.*"
                                              r"download_fashion_mnist\(\)"):
        find_fashion_mnist()
    env = isolated / "env"
    _fake_pair(env / "fashion-mnist", 20)
    _fake_pair(env / "fashion-mnist", 10, prefix="t10k", gz=False)
    monkeypatch.setenv("CLASSGAP_DATA", str(env))
    assert find_fashion_mnist() == env / "fashion-mnist"
    given = isolated / "given"
    _fake_pair(given, 30, gz=False)
    _fake_pair(given, 10, prefix="t10k")
    assert find_fashion_mnist(given) == given  # data_dir wins over $CLASSGAP_DATA
    assert len(load_fashion_mnist("train", data_dir=given)) == 30
    test = load_fashion_mnist("test")
    assert len(test) == 10 and test.name == "fashion-mnist/test"


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist() -> None:
    for split, n in (("train", 60_000), ("test", 10_000)):
        ds = load_fashion_mnist(split, data_dir=REAL_DIR)
        assert len(ds) == n and ds.image_shape == (1, 28, 28)
        assert ds.class_counts().tolist() == [n // 10] * 10
        assert ds.classes == FASHION_MNIST_CLASSES


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="Fashion-MNIST not installed")
def test_download_with_fake_fetch(isolated: Path) -> None:
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return (REAL_DIR / url.rsplit("/", 1)[1]).read_bytes()

    folder = download_fashion_mnist(isolated / "dl", base_url="https://mirror.invalid/fm/",
                                    fetch=fetch)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.gz" for s in STEMS)
    assert calls[0] == "https://mirror.invalid/fm/train-images-idx3-ubyte.gz"
    assert len(load_fashion_mnist("test", data_dir=folder)) == 10_000
    calls.clear()
    download_fashion_mnist(isolated / "dl", fetch=fetch)
    assert calls == []  # genuine files already present are not fetched again
    # The default cache folder is where find_fashion_mnist looks last.
    shutil.copytree(folder, isolated / "cache" / "classgap" / "fashion-mnist")
    assert find_fashion_mnist() == isolated / "cache" / "classgap" / "fashion-mnist"


def test_download_hash_mismatch(isolated: Path) -> None:
    def fetch(url: str) -> bytes:
        return gzip.compress(b"not fashion-mnist")

    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte\.gz: SHA-256 mismatch: "
                                              r"got [0-9a-f]{64}, expected 08dc20ab"):
        download_fashion_mnist(isolated / "dl", fetch=fetch)
    assert list((isolated / "dl").iterdir()) == []  # no partial or temp file left behind


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="Fashion-MNIST not installed")
def test_download_corrupted_bytes(isolated: Path) -> None:
    def fetch(url: str) -> bytes:
        data = bytearray((REAL_DIR / url.rsplit("/", 1)[1]).read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the deflate stream
        return bytes(data)

    with pytest.raises(DataFormatError, match=r"SHA-256 mismatch"):
        download_fashion_mnist(isolated / "dl", fetch=fetch)
    assert list((isolated / "dl").iterdir()) == []
