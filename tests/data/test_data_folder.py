"""Image folders: class sub-folders, mode and size rules, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classgap.data import load_image_folder
from classgap.errors import DataFormatError, InputError


def _png(path: Path, value: int, size: tuple[int, int] = (5, 4), mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, color).save(path)  # size is (W, H) for Pillow


def test_grayscale_round_trip(tmp_path: Path) -> None:
    for cls, n in (("cat", 3), ("ant", 2)):
        for i in range(n):
            _png(tmp_path / "pets" / cls / f"{i}.png", 10 * i + len(cls))
    (tmp_path / "pets" / "ant" / "notes.txt").write_text("ignored")
    (tmp_path / "pets" / ".hidden").mkdir()
    ds = load_image_folder(tmp_path / "pets")
    assert ds.classes == ("ant", "cat") and ds.name == "pets"
    assert ds.images.shape == (5, 1, 4, 5) and ds.labels.tolist() == [0, 0, 1, 1, 1]
    assert ds.images[3, 0, 0, 0] == 13  # cat/1.png, value 10 * 1 + 3


def test_mixed_modes_become_rgb_and_resize(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "x.png", 100, (6, 6), "RGB")
    _png(tmp_path / "b" / "y.png", 50, (3, 3), "L")
    with pytest.raises(DataFormatError, match=r"y\.png: image size 3x3 \(HxW\) differs from "
                                              r"6x6 of the first image \(x\.png\); resize "
                                              r"all with --set data\.image_size=H,W"):
        load_image_folder(tmp_path)
    ds = load_image_folder(tmp_path, image_size=(4, 8))
    assert ds.images.shape == (2, 3, 4, 8)
    np.testing.assert_array_equal(ds.images[0, :, 0, 0], [100, 0, 155])
    np.testing.assert_array_equal(ds.images[1, :, 0, 0], [50, 50, 50])  # gray -> RGB
    assert load_image_folder(tmp_path, image_size=2).image_shape == (3, 2, 2)
    with pytest.raises(InputError, match=r"'image_size' must be a positive int"):
        load_image_folder(tmp_path, image_size=0)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=rf"{tmp_path}: no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "readme.md").write_text("x")
    with pytest.raises(DataFormatError, match=r"cls: class folder holds no images"):
        load_image_folder(tmp_path)
    with pytest.raises(DataFormatError, match=r"missing: not a folder"):
        load_image_folder(tmp_path / "missing")


def test_corrupt_png(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "0.png", 1)
    (tmp_path / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(DataFormatError, match=r"a/1\.png: unreadable image"):
        load_image_folder(tmp_path)


def test_truncated_png(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "0.png", 1, (64, 64))
    data = (tmp_path / "a" / "0.png").read_bytes()
    (tmp_path / "a" / "0.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"0\.png: unreadable image"):
        load_image_folder(tmp_path)


def _split_tree(root: Path, splits: dict[str, dict[str, int]], size: tuple[int, int] = (4, 4),
                mode: str = "L") -> None:
    for split, classes in splits.items():
        for cls, n in classes.items():
            for i in range(n):
                _png(root / split / cls / f"{i}.png", 10 * i + len(cls), size, mode)


@pytest.mark.parametrize("held", ["test", "val"])
def test_train_and_test_folders(tmp_path: Path, held: str) -> None:
    from classgap.data import folder_layout, load_image_folder_splits

    _split_tree(tmp_path / "pets", {"train": {"dog": 3, "cat": 2}, held: {"dog": 1, "cat": 2}})
    assert folder_layout(tmp_path / "pets") == {"train": tmp_path / "pets" / "train",
                                                "test": tmp_path / "pets" / held}
    splits = load_image_folder_splits(tmp_path / "pets")
    assert set(splits) == {"train", "test"}
    train, test = splits["train"], splits["test"]
    assert train.classes == test.classes == ("cat", "dog")  # sorted, the same in both
    assert train.labels.tolist() == [0, 0, 1, 1, 1] and test.labels.tolist() == [0, 0, 1]
    assert (train.name, test.name) == ("pets/train", "pets/test")


def test_train_val_and_test_folders(tmp_path: Path) -> None:
    from classgap.data import load_image_folder_splits

    _split_tree(tmp_path, {"train": {"a": 2, "b": 2}, "val": {"a": 1, "b": 1},
                           "test": {"a": 3, "b": 1}})
    splits = load_image_folder_splits(tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "test": 4, "val": 2}


def test_split_folders_share_mode_and_size(tmp_path: Path) -> None:
    from classgap.data import load_image_folder_splits

    _split_tree(tmp_path, {"train": {"a": 1, "b": 1}}, mode="L")
    _split_tree(tmp_path, {"test": {"a": 1, "b": 1}}, mode="RGB")
    splits = load_image_folder_splits(tmp_path)  # one RGB image anywhere: all RGB
    assert splits["train"].image_shape == splits["test"].image_shape == (3, 4, 4)
    _png(tmp_path / "test" / "a" / "big.png", 3, (8, 8))
    with pytest.raises(DataFormatError, match=r"big\.png: image size 8x8 \(HxW\) differs from "
                                              r"4x4 of the first image"):
        load_image_folder_splits(tmp_path)
    assert load_image_folder_splits(tmp_path, image_size=(6, 5))["test"].image_shape \
        == (3, 6, 5)


def test_split_folder_errors(tmp_path: Path) -> None:
    from classgap.data import load_image_folder_splits

    _split_tree(tmp_path / "x", {"train": {"a": 1, "b": 1}, "test": {"a": 1}})
    with pytest.raises(DataFormatError, match=r"x/test: no folder for class 'b' \(it has one in "
                                              r"train/\); every class needs images in every "
                                              r"split"):
        load_image_folder_splits(tmp_path / "x")
    _split_tree(tmp_path / "y", {"train": {"a": 1, "b": 1}})
    with pytest.raises(DataFormatError, match=r"y: train/ holds class folders but there is no "
                                              r"test/ \(or val/\) beside it"):
        load_image_folder_splits(tmp_path / "y")
    _split_tree(tmp_path / "z", {"train": {"a": 1}, "test": {"a": 1}, "c": {"x": 1}})
    with pytest.raises(DataFormatError, match=r"folders \['c'\] sit beside the split folders"):
        load_image_folder_splits(tmp_path / "z")
    # a class that happens to be called "train" (images directly inside) is just a class
    _png(tmp_path / "w" / "train" / "0.png", 1)
    _png(tmp_path / "w" / "bus" / "0.png", 2)
    assert set(load_image_folder_splits(tmp_path / "w")) == {"all"}
    # but train/ and test/ of images alone are split folders without their class folders
    _png(tmp_path / "v" / "train" / "0.png", 1)
    _png(tmp_path / "v" / "test" / "0.png", 2)
    with pytest.raises(DataFormatError, match=r"v: test/ and train/ hold images directly, "
                                              r"without class folders; .* one folder per class "
                                              r"\(train/<class>/<image>"):
        load_image_folder_splits(tmp_path / "v")
