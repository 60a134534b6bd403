"""IDX files (the MNIST family's format) and Fashion-MNIST: find, download, load.

IDX layout: two zero bytes, a dtype code, the number of dimensions, one big-endian uint32 per
dimension, then the big-endian payload. Files may be gzipped; gzip is recognised by its magic
bytes (1f 8b), never by the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from classgap._files import atomic_target
from classgap._validation import check_choice
from classgap.data.dataset import Dataset, build_dataset
from classgap.errors import DataFormatError

#: IDX dtype code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(f"{path}: corrupt gzip stream ({exc})") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file, gzipped or not, into a native-endian array of its stored shape.

    Raises :class:`~classgap.errors.DataFormatError` naming the file on a bad magic number, an
    unknown dtype code, or a payload shorter or longer than the header promises.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "x.idx.gz"
    >>> write_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> read_idx(p).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataFormatError(
            f"{path}: field 'magic' must start with two zero bytes (IDX format); "
            f"got {raw[:4].hex(' ') or 'an empty file'}")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataFormatError(
            f"{path}: field 'dtype code' must be one of {known}; got 0x{code:02X}")
    if ndim == 0:
        raise DataFormatError(f"{path}: field 'ndim' must be >= 1; got 0")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: truncated header: expected {header} bytes, "
                              f"got {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise DataFormatError(f"{path}: truncated data for shape {shape}: expected "
                              f"{expected} bytes, got {actual}")
    if actual > expected:
        raise DataFormatError(f"{path}: {actual - expected} trailing bytes after the data for "
                              f"shape {shape}: expected {expected} bytes, got {actual}")
    flat = np.frombuffer(raw, dtype, count=expected // dtype.itemsize, offset=header)
    # astype copies: the result is writable and native-endian (torch.from_numpy needs both).
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file; gzipped when ``path`` ends in ``.gz``."""
    arr = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise DataFormatError(f"{path}: IDX cannot store dtype {arr.dtype}")
    head = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    body = head + arr.astype(IDX_DTYPES[code], copy=False).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(body, mtime=0) if path.name.endswith(".gz") else body)


def load_idx_pair(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str],
                  classes: Sequence[str], name: str) -> Dataset:
    """A :class:`Dataset` from an IDX image file (N, H, W) and an IDX label file (N,).

    Images gain a channel axis: (N, H, W) -> (N, 1, H, W). (N, C, H, W) files are kept.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DataFormatError(f"{images_path}: images must be uint8 of shape (N, H, W); got "
                              f"dtype {images.dtype}, shape {images.shape}")
    if labels.ndim != 1:
        raise DataFormatError(f"{labels_path}: labels must have shape (N,); got {labels.shape}")
    if len(labels) != len(images):
        raise DataFormatError(f"{labels_path}: label count {len(labels)} does not match the "
                              f"image count {len(images)} of {images_path}")
    if images.ndim == 3:
        images = images[:, None]  # (N, H, W) -> (N, 1, H, W)
    return build_dataset(images, labels, classes, name, source=str(labels_path))


# --- Fashion-MNIST -------------------------------------------------------------------------

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
_SPLIT_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

#: stem -> (SHA-256 of the upstream .gz, SHA-256 of the decompressed IDX, IDX size in bytes).
#: The .gz digests are those published for the upstream files. Repackaged copies (Debian's
#: dataset-fashion-mnist strips the file name from the gzip header, so its .gz bytes differ)
#: hold the same deflate stream, so a file is also accepted when its IDX payload matches.
FASHION_MNIST_SHA256: dict[str, tuple[str, str, int]] = {
    "train-images-idx3-ubyte": (
        "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    "train-labels-idx1-ubyte": (
        "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    "t10k-images-idx3-ubyte": (
        "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    "t10k-labels-idx1-ubyte": (
        "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/classgap`` (``~/.cache/classgap`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "classgap"


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _search_dirs(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:  # the only place looked: a copy elsewhere is not what was asked
        return [Path(data_dir), Path(data_dir) / "fashion-mnist"]
    if os.environ.get("CLASSGAP_DATA"):
        env = Path(os.environ["CLASSGAP_DATA"])
        dirs += [env, env / "fashion-mnist"]
    return [*dirs, SYSTEM_DATA_DIR, default_cache_dir() / "fashion-mnist"]


def find_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The first folder holding all four Fashion-MNIST IDX files (``.gz`` or plain).

    Looks in ``data_dir`` (and its ``fashion-mnist/``) only, when it is given; else in
    ``$CLASSGAP_DATA`` (and its ``fashion-mnist/``), ``/usr/share/datasets/fashion-mnist``
    and the download cache (:func:`default_cache_dir` ``/fashion-mnist``), in that order.
    """
    dirs = _search_dirs(data_dir)
    stems = [s for pair in _SPLIT_STEMS.values() for s in pair]
    for folder in dirs:
        if all(_idx_file(folder, s) for s in stems):
            return folder
    looked = ", ".join(str(d) for d in dirs)
    raise DataFormatError(
        f"Fashion-MNIST not found (looked in {looked}); install it with "
        f"'apt-get install dataset-fashion-mnist', or download it with "
        f"classgap.data.download_fashion_mnist(), or set $CLASSGAP_DATA")


def load_fashion_mnist(split: str = "train",
                       data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Fashion-MNIST ``"train"`` (60,000 images) or ``"test"`` (10,000), shape (N, 1, 28, 28)."""
    check_choice(split, "split", _SPLIT_STEMS)
    folder = find_fashion_mnist(data_dir)
    img_stem, lab_stem = _SPLIT_STEMS[split]
    images, labels = _idx_file(folder, img_stem), _idx_file(folder, lab_stem)
    if images is None or labels is None:  # removed between find and load
        raise DataFormatError(f"{folder}: Fashion-MNIST {split} files disappeared")
    return load_idx_pair(images, labels, FASHION_MNIST_CLASSES, f"fashion-mnist/{split}")


def _is_genuine(stem: str, data: bytes) -> bool:
    gz_sha, idx_sha, idx_size = FASHION_MNIST_SHA256[stem]
    if hashlib.sha256(data).hexdigest() == gz_sha:
        return True
    try:  # read at most one byte past the expected size: a gzip bomb cannot blow up memory
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            payload = fh.read(idx_size + 1)
    except (OSError, EOFError, zlib.error):
        return False
    return len(payload) == idx_size and hashlib.sha256(payload).hexdigest() == idx_sha


def _urllib_fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as exc:  # URLError, HTTPError and timeouts all derive from OSError
        raise DataFormatError(f"could not download {url}: {exc}") from None


def download_fashion_mnist(cache_dir: str | os.PathLike[str] | None = None, *,
                           base_url: str = FASHION_MNIST_URL,
                           fetch: Callable[[str], bytes] | None = None) -> Path:
    """Download the four Fashion-MNIST ``.gz`` files into ``cache_dir``; return the folder.

    Every file is checked against :data:`FASHION_MNIST_SHA256` before it is written
    (atomically: temp file, then ``os.replace``), so a partial or tampered download never
    lands. Files already present and genuine are not fetched again.

    Parameters
    ----------
    cache_dir : path, optional
        Default ``default_cache_dir() / "fashion-mnist"``, where :func:`find_fashion_mnist`
        looks.
    base_url : str
        Folder URL the file names are appended to.
    fetch : callable(url) -> bytes, optional
        Downloads one URL; default uses :mod:`urllib`. Tests pass a fake one.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    fetch = _urllib_fetch if fetch is None else fetch
    for stem in FASHION_MNIST_SHA256:
        target = folder / f"{stem}.gz"
        if target.is_file() and _is_genuine(stem, target.read_bytes()):
            continue
        url = base_url.rstrip("/") + f"/{stem}.gz"
        data = fetch(url)
        with atomic_target(target, suffix=".part") as tmp:
            tmp.write_bytes(data)
            if not _is_genuine(stem, tmp.read_bytes()):
                raise DataFormatError(
                    f"{url}: SHA-256 mismatch: got {hashlib.sha256(data).hexdigest()}, "
                    f"expected {FASHION_MNIST_SHA256[stem][0]}; nothing was written")
    return folder
