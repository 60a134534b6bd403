"""Prediction files: round trips for every format, alignment of runs, class names, top-k."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classgap.audit.io import (
    Predictions,
    align_runs,
    load_runs,
    read_class_names,
    read_predictions,
    write_predictions,
)
from classgap.errors import DataFormatError, InputError

N, K = 40, 5
FORMATS = [".npz", ".csv", ".parquet", ".pt"]
NAMES = ("cat", "dog", "ship", "truck", "frog, the green one")  # a comma: CSV/JSON quoting


def _data(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N, K))  # (N, K)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {"y_true": rng.integers(0, K, N), "y_pred": rng.integers(0, K, N), "logits": logits,
            "probs": probs, "int_ids": rng.permutation(N) * 3 + 1000,
            "str_ids": np.array([f"img_{i:05d}.jpg" for i in rng.permutation(N)])}


VARIANTS = {
    "labels": lambda d: {"y_pred": d["y_pred"]},
    "logits": lambda d: {"logits": d["logits"]},
    "probs": lambda d: {"probs": d["probs"]},
    "labels+logits": lambda d: {"y_pred": d["y_pred"], "logits": d["logits"]},
    "int_ids+seed": lambda d: {"logits": d["logits"], "sample_id": d["int_ids"], "seed": 7},
    "str_ids+seed0": lambda d: {"probs": d["probs"], "sample_id": d["str_ids"], "seed": 0},
    "classes": lambda d: {"probs": d["probs"], "classes": NAMES},
    "everything": lambda d: {"y_pred": d["y_pred"], "logits": d["logits"],
                             "sample_id": d["str_ids"], "seed": 123, "classes": NAMES},
}


def _same(a: Predictions, b: Predictions) -> None:
    for field in ("y_true", "y_pred", "scores", "sample_id"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            assert x.dtype.kind == y.dtype.kind, field
            np.testing.assert_array_equal(x, y, err_msg=field)  # exact, floats included
    assert (a.score_kind, a.seed, a.classes) == (b.score_kind, b.seed, b.classes)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip(tmp_path: Path, suffix: str, variant: str) -> None:
    data = _data()
    fields = VARIANTS[variant](data)
    expected = Predictions.from_arrays(data["y_true"], **fields)
    path = tmp_path / f"run{suffix}"
    if suffix == ".csv" and "classes" in fields:
        names = fields.pop("classes")  # CSV has no place for names: they come back via classes=
        assert write_predictions(path, y_true=data["y_true"], **fields) == path
        got = read_predictions(path, classes=names)
    else:
        assert write_predictions(path, y_true=data["y_true"], **fields) == path
        got = read_predictions(path)
    _same(got, expected)
    assert got.source == str(path)
    assert got.y_true.dtype == np.int64 and got.y_pred.dtype == np.int64
    assert got.scores is None or got.scores.dtype == np.float64
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


@pytest.mark.parametrize("suffix", FORMATS)
def test_y_pred_is_argmax_when_only_scores(tmp_path: Path, suffix: str) -> None:
    data = _data(1)
    path = write_predictions(tmp_path / f"p{suffix}", y_true=data["y_true"], probs=data["probs"])
    got = read_predictions(path)
    np.testing.assert_array_equal(got.y_pred, data["probs"].argmax(axis=1))
    assert got.score_kind == "probs" and got.n_classes_hint == K and got.n_samples == N


def test_overwrite_is_atomic_replacement(tmp_path: Path) -> None:
    data = _data()
    path = tmp_path / "run.parquet"
    write_predictions(path, y_true=data["y_true"], y_pred=data["y_pred"])
    write_predictions(path, y_true=data["y_true"], logits=data["logits"])
    assert read_predictions(path).score_kind == "logits"
    assert [p.name for p in tmp_path.iterdir()] == ["run.parquet"]


def test_csv_written_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "hand.csv"
    # float labels with whole values, columns in any order, ids with leading zeros stay text
    path.write_text("prob_1,sample_id,y_true,prob_0,seed\n0.25,007,1.0,0.75,3\n"
                    "0.5,010,0,0.5,3\n")
    got = read_predictions(path, classes=["neg", "pos"])
    assert got.y_true.tolist() == [1, 0] and got.y_pred.tolist() == [0, 0]
    assert got.sample_id.tolist() == ["007", "010"] and got.seed == 3
    np.testing.assert_array_equal(got.scores, [[0.75, 0.25], [0.5, 0.5]])
    assert got.classes == ("neg", "pos")


def test_npz_written_by_numpy(tmp_path: Path) -> None:
    path = tmp_path / "np.npz"
    np.savez(path, y_true=np.array([0, 1, 2], dtype=np.uint8),
             logits=np.eye(3, dtype=np.float32), seed=np.array(4),
             classes=np.array([b"a", b"b", b"c"]))
    got = read_predictions(path)
    assert got.classes == ("a", "b", "c") and got.seed == 4
    assert got.y_pred.tolist() == [0, 1, 2] and got.scores.dtype == np.float64


def test_pt_written_by_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    logits = torch.randn(6, 3, dtype=torch.bfloat16)
    torch.save({"y_true": torch.tensor([0, 1, 2, 0, 1, 2]), "logits": logits,
                "sample_id": [f"s{i}" for i in range(6)], "seed": 5,
                "classes": ["a", "b", "c"]}, path)
    got = read_predictions(path)
    np.testing.assert_array_equal(got.scores, logits.double().numpy())
    assert got.sample_id.tolist() == [f"s{i}" for i in range(6)]
    assert got.seed == 5 and got.classes == ("a", "b", "c")


def test_given_classes_override_file(tmp_path: Path) -> None:
    path = write_predictions(tmp_path / "r.npz", y_true=[0, 1], y_pred=[1, 1], classes=["a", "b"])
    assert read_predictions(path, classes=["x", "y"]).classes == ("x", "y")
    assert read_predictions(path).classes == ("a", "b")


def test_predictions_are_frozen_and_read_only() -> None:
    y = np.array([0, 1, 1])
    pred = Predictions.from_arrays(y, y)
    with pytest.raises(AttributeError):
        pred.seed = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        pred.y_true[0] = 1
    y[0] = 1  # the caller's array stays writable and is not shared
    assert pred.y_true[0] == 0 and pred.source == "<array>"


def test_in_memory_errors_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"^'y_pred' must hold integers in \[0, inf\)"):
        Predictions.from_arrays([0, 1], [0, -1])
    with pytest.raises(InputError, match="'probs' must not be given together with 'logits'"):
        Predictions.from_arrays([0], logits=[[1.0, 0.0]], probs=[[1.0, 0.0]])


def test_n_classes_hint() -> None:
    assert Predictions.from_arrays([0, 3], [1, 1]).n_classes_hint == 4
    assert Predictions.from_arrays([0, 1], [6, 1]).n_classes_hint == 7
    assert Predictions.from_arrays([0, 1], logits=np.zeros((2, 9))).n_classes_hint == 9
    assert Predictions.from_arrays([0, 1], [0, 0], classes=list("abc")).n_classes_hint == 3


def test_topk_correct_matches_sorting() -> None:
    data = _data(2)
    pred = Predictions.from_arrays(data["y_true"], logits=data["logits"])
    order = np.argsort(-data["logits"], axis=1, kind="stable")  # (N, K) classes by score
    for k in range(1, K + 1):
        expected = (order[:, :k] == data["y_true"][:, None]).any(axis=1)
        np.testing.assert_array_equal(pred.topk_correct(k), expected)
    np.testing.assert_array_equal(pred.topk_correct(1), pred.y_pred == pred.y_true)


def test_topk_ties_follow_argmax() -> None:
    pred = Predictions.from_arrays([1, 0], logits=[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert pred.topk_correct(1).tolist() == [False, True]
    assert pred.topk_correct(2).tolist() == [True, True]


def test_topk_needs_scores_and_valid_k() -> None:
    pred = Predictions.from_arrays([0, 1], [0, 1])
    with pytest.raises(InputError, match=r"'scores' must be present \(logits or probs\) for "
                                         r"top-5 accuracy; got predicted labels only"):
        pred.topk_correct(5)
    scored = Predictions.from_arrays([0, 1], logits=np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"'k' must be at most the number of score columns"):
        scored.topk_correct(4)
    with pytest.raises(InputError, match=r"'k' must be an integer >= 1; got 0"):
        scored.topk_correct(0)


@pytest.mark.parametrize(("name", "text"), [
    ("names.json", json.dumps(list(NAMES))),
    ("names.txt", "\n".join(NAMES) + "\n\n"),
    ("names.txt", "  cat\n\ndog \nship\r\ntruck\nfrog, the green one"),
])
def test_read_class_names(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert read_class_names(path) == NAMES


def test_read_class_names_missing(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"names\.txt: file does not exist"):
        read_class_names(tmp_path / "names.txt")


def _write_runs(tmp: Path, suffixes: list[str], *, ids: bool, shuffle: bool,
                classes: tuple[str, ...] | None = None) -> list[Path]:
    """One test set, several runs (seeds), each possibly in its own row order and format."""
    data = _data()
    paths = []
    for seed, suffix in enumerate(suffixes):
        order = np.random.default_rng(seed).permutation(N) if shuffle else np.arange(N)
        extra = {"sample_id": data["str_ids"][order]} if ids else {}
        if classes is not None and suffix != ".csv":
            extra["classes"] = classes
        paths.append(write_predictions(
            tmp / f"seed{seed}{suffix}", y_true=data["y_true"][order],
            logits=data["logits"][order] + seed, seed=seed, **extra))
    return paths


def test_align_runs_reorders_by_sample_id(tmp_path: Path) -> None:
    data = _data()
    paths = _write_runs(tmp_path, [".npz", ".csv", ".parquet", ".pt"], ids=True, shuffle=True)
    side_a, side_b = load_runs(paths[:2]), load_runs(paths[2:])
    (a, b), n_classes, names = align_runs(side_a, side_b)
    assert n_classes == K and names == tuple(str(i) for i in range(K))
    ref_ids = side_a[0].sample_id
    for run in [*a, *b]:
        np.testing.assert_array_equal(run.sample_id, ref_ids)
        np.testing.assert_array_equal(run.y_true, side_a[0].y_true)
        # each row still carries its own scores: logits were shifted by the seed
        position = {sid: i for i, sid in enumerate(data["str_ids"])}
        rows = [position[s] for s in run.sample_id]
        np.testing.assert_array_equal(run.scores, data["logits"][rows] + run.seed)
        np.testing.assert_array_equal(run.y_pred, run.scores.argmax(axis=1))
    assert a[0] is side_a[0]  # the reference run is returned as is


def test_align_runs_positional_without_ids(tmp_path: Path) -> None:
    paths = _write_runs(tmp_path, [".npz", ".pt", ".csv"], ids=False, shuffle=False,
                        classes=NAMES)
    (a, b), n_classes, names = align_runs(load_runs(paths[:1]), load_runs(paths[1:]))
    assert len(a) == 1 and len(b) == 2
    assert n_classes == K and names == NAMES  # the csv run has none: names come from the others


def test_align_runs_given_classes(tmp_path: Path) -> None:
    paths = _write_runs(tmp_path, [".csv", ".csv"], ids=True, shuffle=True)
    (side,), n_classes, names = align_runs(load_runs(paths, classes=NAMES))
    assert names == NAMES and n_classes == K and len(side) == 2


def test_align_runs_int_ids_against_text_ids(tmp_path: Path) -> None:
    a = write_predictions(tmp_path / "a.npz", y_true=[0, 1, 2], y_pred=[0, 1, 2],
                          sample_id=np.array(["10", "11", "12"]))
    b = write_predictions(tmp_path / "b.parquet", y_true=[2, 0, 1], y_pred=[2, 2, 2],
                          sample_id=[12, 10, 11])
    (runs,), n_classes, _ = align_runs(load_runs([a, b]))
    assert runs[1].y_pred.tolist() == [2, 2, 2] and runs[1].y_true.tolist() == [0, 1, 2]
    assert n_classes == 3


def test_align_runs_labels_only_width(tmp_path: Path) -> None:
    a = Predictions.from_arrays([0, 1, 2], [0, 1, 2])
    b = Predictions.from_arrays([0, 1, 2], [0, 7, 2])
    _, n_classes, names = align_runs([a], [b])
    assert n_classes == 8 and names[-1] == "7"


def test_load_runs_accepts_one_path_and_rejects_none(tmp_path: Path) -> None:
    path = write_predictions(tmp_path / "r.npz", y_true=[0, 1], y_pred=[0, 1])
    assert len(load_runs(path)) == 1 and len(load_runs(str(path))) == 1
    with pytest.raises(InputError, match="'paths' must hold at least one prediction file"):
        load_runs([])
    with pytest.raises(InputError, match=r"'sides\[1\]' must hold at least one run"):
        align_runs(load_runs(path), [])


def test_audit_io_does_not_import_torch(tmp_path: Path) -> None:
    # torch is imported lazily, only to read or write .pt files
    path = write_predictions(tmp_path / "r.npz", y_true=[0, 1], y_pred=[0, 1])
    code = ("import sys\n"
            "from classgap.audit.io import read_predictions\n"
            f"print(read_predictions({str(path)!r}).n_samples, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "False"]


@pytest.mark.parametrize("in_memory", [True, False])
def test_npz_written_in_memory_or_streamed_reads_back_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory: bool) -> None:
    from classgap.audit import _io_formats

    if not in_memory:  # every archive above the threshold: streamed to the file
        monkeypatch.setattr(_io_formats, "NPZ_IN_MEMORY_BYTES", 0)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    path = write_predictions(tmp_path / "p.npz", y_true=y, logits=logits, seed=4,
                             classes=["a", "b", "c"])
    back = read_predictions(path)
    np.testing.assert_array_equal(back.y_true, y)
    np.testing.assert_array_equal(back.scores, logits)
    assert back.seed == 4 and back.classes == ("a", "b", "c")
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]  # no temporary file left


def test_scores_keep_their_float_type_in_binary_files_and_read_back_exactly(
        tmp_path: Path) -> None:
    logits = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = np.arange(40) % 3
    sizes = {}
    for suffix in (".npz", ".pt", ".parquet", ".csv"):
        path = write_predictions(tmp_path / f"p{suffix}", y_true=y, logits=logits)
        np.testing.assert_array_equal(read_predictions(path).scores, logits.astype(np.float64))
        sizes[suffix] = path.stat().st_size
    assert np.load(tmp_path / "p.npz")["logits"].dtype == np.float32  # 4 bytes a value
    write_predictions(tmp_path / "wide.npz", y_true=y, logits=logits.astype(np.float64))
    assert sizes[".npz"] < (tmp_path / "wide.npz").stat().st_size - 400
