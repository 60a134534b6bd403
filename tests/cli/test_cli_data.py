"""``folder:`` and ``npz:`` datasets through ``train``, ``study`` and ``data info``; ``--data-dir``.

Every dataset here is built by the test: a few 6x6 PNGs or a small npz, classes told apart by
brightness, so that 1-2 epochs of an mlp are enough and each run takes about a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classgap.cli import run

CLASSES = ("ant", "bee", "cat")
FAST = ("--set", "train.progress=false", "--set", "train.threads=1",
        "--set", "train.precision=fp32")


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _images(n: int, k: int, seed: int, size: tuple[int, int] = (6, 6)) -> np.ndarray:
    rng = np.random.default_rng([seed, k])
    return (60 * k + rng.integers(0, 40, (n, *size))).astype(np.uint8)


def _folder(root: Path, n: int, seed: int, size: tuple[int, int] = (6, 6)) -> None:
    for k, cls in enumerate(CLASSES):
        (root / cls).mkdir(parents=True)
        for i, img in enumerate(_images(n, k, seed, size)):
            Image.fromarray(img, "L").save(root / cls / f"{i}.png")


def _arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([_images(n, k, seed) for k in range(len(CLASSES))])
    return x, np.repeat(np.arange(len(CLASSES)), n)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One dataset of each layout, by name: spec."""
    root = tmp_path_factory.mktemp("data")
    _folder(root / "one", 10, 0)  # PATH/<class>/: 20% held out
    _folder(root / "two" / "train", 8, 1)  # PATH/train/<class>/ and PATH/test/<class>/
    _folder(root / "two" / "test", 3, 2)
    x, y = _arrays(10, 3)
    np.savez(root / "one.npz", images=x, labels=y, classes=np.array(CLASSES))
    (x_tr, y_tr), (x_te, y_te) = _arrays(8, 4), _arrays(3, 5)
    np.savez(root / "two.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return {"folder-one": f"folder:{root / 'one'}", "folder-two": f"folder:{root / 'two'}",
            "npz-one": f"npz:{root / 'one.npz'}", "npz-two": f"npz:{root / 'two.npz'}"}


@pytest.mark.parametrize("layout, n_test", [("folder-one", 6), ("folder-two", 9),
                                            ("npz-one", 6), ("npz-two", 9)])
def test_train_then_audit(capsys, tmp_path: Path, datasets: dict[str, str], layout: str,
                          n_test: int) -> None:
    out = tmp_path / "run"
    code, stdout, err = invoke(capsys, "train", "--dataset", datasets[layout], "--model", "mlp",
                               "--epochs", "2", "--batch-size", "8", *FAST, "--out", out)
    assert code == 0, err
    assert "test accuracy" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["dataset"] == datasets[layout]
    assert config["data"]["test_fraction"] == 0.2  # recorded, used or not
    data = json.loads((out / "provenance.json").read_text())["data"]
    assert data["path"] == str(Path(datasets[layout].partition(":")[2]).resolve())
    assert data["test_split"]["held_out"] is layout.endswith("one")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == n_test
    code, stdout, err = invoke(capsys, "audit", out / "test.npz", "-f", "json")
    assert code == 0, err
    names = [c["class"] for c in json.loads(stdout)["classes"]]
    assert names == (list(CLASSES) if layout != "npz-two" else ["0", "1", "2"])


@pytest.mark.parametrize("layout", ["folder-one", "folder-two", "npz-one", "npz-two"])
def test_study(capsys, tmp_path: Path, datasets: dict[str, str], layout: str) -> None:
    out = tmp_path / "study"
    code, _, err = invoke(capsys, "study", "--set", f"data.dataset={datasets[layout]}",
                          "--set", "model.name=mlp", "--set", "train.epochs=1",
                          "--set", "optim.batch_size=8", *FAST[2:], "--axis", "aug.flip=0,0.5",
                          "--seeds", "2", "--backend", "local", "--out", out)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert [c["class"] for c in summary["classes"]] \
        == (list(CLASSES) if layout != "npz-two" else ["0", "1", "2"])
    # every run of the study is tested on the same images, whatever its seed
    tests = [np.load(p)["y_true"] for p in sorted(out.glob("runs/*/test.npz"))]
    assert len(tests) == 4 and all(np.array_equal(t, tests[0]) for t in tests)


def test_folder_with_mixed_sizes_needs_image_size(capsys, tmp_path: Path) -> None:
    _folder(tmp_path / "mixed", 5, 0)
    Image.fromarray(_images(1, 0, 9, (9, 7))[0], "L").save(tmp_path / "mixed" / "cat" / "z.png")
    args = ("train", "--dataset", f"folder:{tmp_path / 'mixed'}", "--model", "mlp", "--epochs",
            "1", "--batch-size", "4", *FAST, "--out", tmp_path / "run")
    code, _, err = invoke(capsys, *args)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "z.png: image size 9x7 (HxW) differs" in err and "--set data.image_size=H,W" in err
    code, _, err = invoke(capsys, *args, "--set", "data.image_size=8,8")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["image_size"] \
        == [8, 8]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n_test"] == 3
    code, stdout, err = invoke(capsys, "data", "info", f"folder:{tmp_path / 'mixed'}",
                               "--image-size", "8,8", "-f", "json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["splits"]["test"]["image_shape"] == [1, 8, 8]
    assert info["splits"]["train"]["class_counts"] == [4, 4, 5]


def test_data_info_of_both_layouts(capsys, datasets: dict[str, str]) -> None:
    code, stdout, err = invoke(capsys, "data", "info", datasets["folder-two"], "-f", "json")
    assert code == 0, err
    info = json.loads(stdout)
    assert {s: v["size"] for s, v in info["splits"].items()} == {"train": 24, "test": 9}
    code, stdout, err = invoke(capsys, "data", "info", datasets["npz-one"],
                               "--test-fraction", "0.3")
    assert code == 0, err
    assert "read from" in stdout and "ant" in stdout and " 7 " in stdout  # 7 + 3 per class


@pytest.mark.parametrize("args", [
    ("data", "info", "fashion-mnist", "--data-dir", "/nonexistent/dir"),
    ("train", "--dataset", "digits", "--data-dir", "/nonexistent/dir", "--epochs", "1"),
])
def test_a_wrong_data_dir_is_an_error(capsys, args: tuple[str, ...]) -> None:
    code, stdout, err = invoke(capsys, *args)
    assert code == 1 and not stdout
    assert err.strip() == ("error: '--data-dir' must be an existing folder; got "
                           "'/nonexistent/dir' (does not exist)")


def test_data_dir_is_the_only_place_looked(capsys, tmp_path: Path,
                                           datasets: dict[str, str]) -> None:
    # an existing folder without the data: not found there, no fall-back to a system copy
    code, _, err = invoke(capsys, "data", "info", "fashion-mnist", "--data-dir", tmp_path)
    assert code == 1 and f"Fashion-MNIST not found (looked in {tmp_path}, " in err
    code, _, err = invoke(capsys, "data", "info", "digits", "--data-dir", tmp_path)
    assert code == 1 and "'--data-dir' has no use with dataset 'digits'" in err
    # a relative PATH is taken inside --data-dir, and the run records the path it read
    root = Path(datasets["npz-two"].partition(":")[2]).parent
    out = tmp_path / "run"
    code, _, err = invoke(capsys, "train", "--dataset", "npz:two.npz", "--data-dir", root,
                          "--model", "mlp", "--epochs", "1", "--batch-size", "8", *FAST,
                          "--out", out)
    assert code == 0, err
    data = json.loads((out / "provenance.json").read_text())["data"]
    assert data["path"] == str((root / "two.npz").resolve())


def test_list_and_help_say_the_layouts(capsys) -> None:
    code, stdout, err = invoke(capsys, "list", "datasets")
    assert code == 0, err
    text = " ".join(stdout.split())
    assert "PATH/train/<class>/" in text and "x_train, y_train, x_test, y_test" in text
    code, stdout, _ = invoke(capsys, "train", "--help")
    text = " ".join(stdout.replace("│", " ").split())
    assert "PATH/train/ and PATH/test/ of class folders" in text and "x_train" in text


def test_study_on_missing_data_fails_before_making_a_directory(capsys, tmp_path: Path) -> None:
    out = tmp_path / "study"
    code, _, err = invoke(capsys, "study", "--set", f"data.dataset=folder:{tmp_path / 'none'}",
                          "--set", "model.name=mlp", "--axis", "aug.flip=0,0.5", "--seeds", "2",
                          "--out", out)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"{tmp_path / 'none'}: no such folder (dataset 'folder:" in err
    assert not out.exists()
    code, _, err = invoke(capsys, "study", "--set", "data.dataset=fashion-mnist", "--set",
                          "data.data_dir=/nonexistent/dir", "--axis", "aug.flip=0,0.5",
                          "--out", out)
    assert code == 1 and "'data.data_dir' must be an existing folder; got '/nonexistent/dir'" \
        in err and not out.exists()
