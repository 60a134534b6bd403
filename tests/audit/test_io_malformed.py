"""Malformed prediction files: each one is a single DataFormatError naming file, field and value."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classgap.audit.io import (
    align_runs,
    load_runs,
    read_class_names,
    read_predictions,
    write_predictions,
)
from classgap.errors import DataFormatError

Action = Callable[[], object]
MARKER = "classgap_pwned_marker"


class _Evil:
    """Pickles to a call of os.system: must never run when a .pt file is read."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _npz(tmp: Path, name: str = "bad.npz", **arrays) -> Path:
    path = tmp / name
    with open(path, "wb") as handle:  # a handle: np.savez would append ".npz" to odd names
        np.savez(handle, **arrays)
    return path


def _text(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _bytes(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _read(path: Path) -> Action:
    return lambda: read_predictions(path)


def _align(*paths: Path) -> Action:
    return lambda: align_runs(load_runs(paths[:1]), load_runs(paths[1:]))


Y = np.array([0, 1, 2])
LOGITS = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
PROBS = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])


def _probs_with(row: int, col: int, value: float) -> np.ndarray:
    probs = PROBS.copy()
    probs[row, col] = value
    return probs


def _truncated(tmp: Path, name: str, fraction: float) -> Path:
    whole = tmp / f"whole{Path(name).suffix}"
    write_predictions(whole, y_true=Y, logits=LOGITS, sample_id=["a", "b", "c"], seed=1)
    data = whole.read_bytes()
    return _bytes(tmp, name, data[: int(len(data) * fraction)])


def _malicious_pt(tmp: Path) -> Path:
    import torch

    path = tmp / "evil.pt"
    torch.save({"y_true": _Evil(tmp / MARKER)}, path)
    return path


# (id, setup(tmp) -> (action, file name in the message), pattern after the file name)
CASES: list[tuple[str, Callable[[Path], tuple[Action, str]], str]] = [
    ("wrong_lengths",
     lambda t: (_read(_npz(t, y_true=Y, y_pred=Y[:2])), "bad.npz"),
     r"field 'y_pred' must have the same length as 'y_true' \(3\); got 2"),
    ("scores_wrong_length",
     lambda t: (_read(_npz(t, y_true=Y, logits=LOGITS[:2])), "bad.npz"),
     r"field 'logits' must have the same length as 'y_true' \(3\); got 2"),
    ("label_out_of_range",
     lambda t: (_read(_npz(t, y_true=np.array([0, 1, 3]), logits=LOGITS)), "bad.npz"),
     r"field 'y_true' must hold integers in \[0, 2\]; got 3 at row 2"),
    ("label_out_of_range_given_classes",
     lambda t: (lambda: read_predictions(_npz(t, y_true=Y, y_pred=Y), classes=["a", "b"]),
                "bad.npz"),
     r"field 'y_true' must hold integers in \[0, 1\]; got 2 at row 2"),
    ("negative_label",
     lambda t: (_read(_npz(t, y_true=Y, y_pred=np.array([0, -1, 2]))), "bad.npz"),
     r"field 'y_pred' must hold integers in \[0, inf\); got -1 at row 1"),
    ("non_integer_label_csv",
     lambda t: (_read(_text(t, "bad.csv", "y_true,y_pred\n0,0\n2.5,1\n")), "bad.csv"),
     r"field 'y_true' must hold integers; got 2.5 at row 1"),
    ("text_label_csv",
     lambda t: (_read(_text(t, "bad.csv", "y_true,y_pred\n0,0\ncat,1\n")), "bad.csv"),
     r"field 'y_pred' must hold class names as 'y_true' does \(names and class indices do "
     r"not mix\); got 0 at row 0"),
    ("missing_label_csv",
     lambda t: (_read(_text(t, "bad.csv", "y_true,y_pred\n0,0\n,1\n")), "bad.csv"),
     r"field 'y_true' must hold integers; got nan at row 1"),
    ("nan_logits",
     lambda t: (_read(_npz(t, y_true=Y, logits=np.where(LOGITS == 2.0, np.nan, 0.0))),
                "bad.npz"),
     r"field 'logits' must be finite; got nan at row 0, column 0"),
    ("inf_probs",
     lambda t: (_read(_npz(t, y_true=Y, probs=_probs_with(1, 2, np.inf))), "bad.npz"),
     r"field 'probs' must be finite; got inf at row 1, column 2"),
    ("probs_not_summing_to_one",
     lambda t: (_read(_npz(t, y_true=Y, probs=_probs_with(2, 2, 0.5))), "bad.npz"),
     r"field 'probs' must have rows summing to 1 \(tolerance 0.0001\); got sum 0.7 at row 2"),
    ("probs_above_one",
     lambda t: (_read(_npz(t, y_true=Y, probs=_probs_with(0, 1, 1.5))), "bad.npz"),
     r"field 'probs' must be in \[0, 1\]; got 1.5 at row 0, column 1"),
    ("probs_csv_not_summing",
     lambda t: (_read(_text(t, "bad.csv", "y_true,prob_0,prob_1\n0,0.9,0.1\n1,0.3,0.3\n")),
                "bad.csv"),
     r"field 'probs' must have rows summing to 1.*got sum 0.6 at row 1"),
    ("logits_and_probs",
     lambda t: (_read(_npz(t, y_true=Y, logits=LOGITS, probs=PROBS)), "bad.npz"),
     r"field 'probs' must not be given together with 'logits'"),
    ("one_dim_logits",
     lambda t: (_read(_npz(t, y_true=Y, logits=np.zeros(3))), "bad.npz"),
     r"field 'logits' must be a 2-D array \(N samples, K classes\); got shape \(3,\)"),
    ("two_dim_y_true",
     lambda t: (_read(_npz(t, y_true=np.zeros((3, 2), dtype=int), y_pred=Y)), "bad.npz"),
     r"field 'y_true' must be a 1-D array of class indices; got shape \(3, 2\)"),
    ("no_y_true",
     lambda t: (_read(_npz(t, y_pred=Y)), "bad.npz"),
     r"field 'y_true' must be present"),
    ("no_y_pred_no_scores",
     lambda t: (_read(_npz(t, y_true=Y, sample_id=Y)), "bad.npz"),
     r"field 'y_pred' must be present when there are no 'logits' or 'probs'"),
    ("seed_not_integer",
     lambda t: (_read(_npz(t, y_true=Y, y_pred=Y, seed=np.array(1.5))), "bad.npz"),
     r"field 'seed' must be one integer; got 1.5"),
    ("seed_text_pt",
     lambda t: (_read(_pt(t, {"y_true": Y.tolist(), "y_pred": Y.tolist(), "seed": "one"})),
                "bad.pt"),
     r"field 'seed' must be one integer; got 'one'"),
    ("seed_varies_csv",
     lambda t: (_read(_text(t, "bad.csv", "y_true,y_pred,seed\n0,0,1\n1,1,1\n1,1,2\n")),
                "bad.csv"),
     r"field 'seed' must be the same on every row.*got 1 at row 0 and 2 at row 2"),
    ("duplicated_sample_ids",
     lambda t: (_read(_npz(t, y_true=Y, y_pred=Y, sample_id=np.array(["x", "y", "x"]))),
                "bad.npz"),
     r"field 'sample_id' must hold unique ids; got 'x' at rows 0 and 2"),
    ("empty_sample_id_cell_csv",
     lambda t: (_read(_text(t, "bad.csv", "y_true,y_pred,sample_id\n0,0,a\n1,1,\n")),
                "bad.csv"),
     r"field 'sample_id' must have no missing values; got empty cell at row 1"),
    ("unknown_column_csv",
     lambda t: (_read(_text(t, "bad.csv", "y_true,y_pred,y_prob\n0,0,1\n")), "bad.csv"),
     r"unknown column 'y_prob' \(allowed: 'y_true', 'y_pred', 'sample_id', 'seed', "
     r"'prob_<i or class name>', 'logit_<i or class name>'\)"),
    ("unknown_columns_parquet",
     lambda t: (_read(_parquet(t, {"y_true": Y, "y_pred": Y, "Unnamed: 0": Y, "lbl": Y})),
                "bad.parquet"),
     r"unknown columns 'Unnamed: 0', 'lbl' \(allowed: 'y_true'"),
    ("prob_columns_with_gap_csv",
     lambda t: (_read(_text(t, "bad.csv", "y_true,prob_0,prob_2\n0,0.5,0.5\n")), "bad.csv"),
     r"field 'probs' must be given as contiguous columns prob_0..prob_2; got no column "
     r"prob_1"),
    ("unknown_npz_arrays",
     lambda t: (_read(_npz(t, y_true=Y, logit=LOGITS, extra=Y)), "bad.npz"),
     r"unknown arrays 'logit', 'extra' \(allowed: 'y_true', 'y_pred', 'logits', 'probs', "
     r"'sample_id', 'seed', 'classes'\); did you mean 'logits' for 'logit'\?"),
    ("npz_object_array_refused",
     lambda t: (_read(_npz(t, y_true=Y, y_pred=Y, sample_id=np.array([1, "a", None],
                                                                     dtype=object))),
                "bad.npz"),
     r"field 'sample_id' must be a numeric or string array \(object arrays need pickle, "
     r"which is refused\)"),
    ("npy_under_npz_name",
     lambda t: (_read(_npy_as_npz(t)), "bad.npz"),
     r"holds a single \.npy array, not an \.npz archive"),
    ("empty_csv",
     lambda t: (_read(_text(t, "bad.csv", "")), "bad.csv"),
     r"file is empty"),
    ("blank_lines_csv",
     lambda t: (_read(_text(t, "bad.csv", "\n\n")), "bad.csv"),
     r"file is empty \(no header row\)"),
    ("csv_header_only",
     lambda t: (_read(_text(t, "bad.csv", "y_true,y_pred\n")), "bad.csv"),
     r"holds no samples \(field 'y_true' has 0 rows\)"),
    ("zero_row_npz",
     lambda t: (_read(_npz(t, y_true=np.zeros(0, dtype=int), y_pred=np.zeros(0, dtype=int))),
                "bad.npz"),
     r"holds no samples"),
    ("truncated_npz",
     lambda t: (_read(_truncated(t, "bad.npz", 0.6)), "bad.npz"),
     r"cannot be read as \.npz \("),
    ("truncated_pt",
     lambda t: (_read(_truncated(t, "bad.pt", 0.6)), "bad.pt"),
     r"cannot be read as \.pt \("),
    ("garbage_parquet",
     lambda t: (_read(_bytes(t, "bad.parquet", b"\x00\x17garbage, not parquet" * 10)),
                "bad.parquet"),
     r"cannot be read as \.parquet \("),
    ("garbage_npz",
     lambda t: (_read(_bytes(t, "bad.npz", b"PK\x03\x04 but not a zip" * 10)), "bad.npz"),
     r"cannot be read as \.npz \("),
    ("binary_csv",
     lambda t: (_read(_bytes(t, "bad.csv", bytes(range(256)) * 4)), "bad.csv"),
     r"cannot be read as \.csv \(|unknown column"),
    ("unknown_suffix",
     lambda t: (_read(_text(t, "bad.txt", "y_true\n0\n")), "bad.txt"),
     r"unknown prediction-file suffix '\.txt'; use one of \.npz, \.csv, \.parquet, \.pt"),
    ("missing_file",
     lambda t: (_read(t / "bad.npz"), "bad.npz"),
     r"file does not exist"),
    ("pt_non_dict",
     lambda t: (_read(_pt(t, [0, 1, 2])), "bad.pt"),
     r"must hold a dict of named tensors or lists .*; got list"),
    ("pt_unknown_key",
     lambda t: (_read(_pt(t, {"y_true": Y.tolist(), "preds": Y.tolist()})), "bad.pt"),
     r"unknown key 'preds'"),
    ("pt_malicious_pickle",
     lambda t: (_read(_malicious_pt(t)), "evil.pt"),
     r"holds objects other than tensors.*refused by torch\.load\(weights_only=True\)"),
    ("class_names_duplicated",
     lambda t: (lambda: read_class_names(_text(t, "names.txt", "cat\n\ndog\ncat\n")),
                "names.txt"),
     r"field 'classes' must hold unique names; got 'cat' at lines 1 and 4"),
    ("class_names_json_not_strings",
     lambda t: (lambda: read_class_names(_text(t, "names.json", '["cat", 3]')), "names.json"),
     r"field 'classes' must hold non-empty strings; got 3 at position 1"),
    ("class_names_empty_file",
     lambda t: (lambda: read_class_names(_text(t, "names.txt", "\n \n")), "names.txt"),
     r"field 'classes' must hold at least one name"),
    ("classes_vs_score_columns",
     lambda t: (_read(_npz(t, y_true=Y, logits=LOGITS, classes=np.array(["a", "b"]))),
                "bad.npz"),
     r"field 'classes' must hold one name per logits column \(3\); got 2 names"),
    ("given_classes_vs_csv_columns",
     lambda t: (lambda: read_predictions(
         _text(t, "bad.csv", "y_true,logit_0,logit_1\n0,1.0,0.0\n"), classes=["a", "b", "c"]),
                "bad.csv"),
     r"field 'classes' must hold one name per logits column \(2\); got 3 names"),
    ("mismatched_sample_ids_missing",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, y_pred=Y, sample_id=np.array([1, 2, 3])),
                       _npz(t, "b.npz", y_true=Y, y_pred=Y, sample_id=np.array([1, 2, 4]))),
                "b.npz"),
     r"field 'sample_id' must hold the same ids as .*a\.npz; got id 3 missing \(row 2 of "),
    ("mismatched_sample_ids_extra",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y[:2], y_pred=Y[:2], sample_id=np.array([1, 2])),
                       _npz(t, "b.npz", y_true=Y, y_pred=Y, sample_id=np.array([2, 9, 1]))),
                "b.npz"),
     r"field 'sample_id' must hold the same ids as .*a\.npz; got extra id 9 at row 1"),
    ("differing_y_true",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, y_pred=Y),
                       _npz(t, "b.npz", y_true=np.array([0, 2, 2]), y_pred=Y)), "b.npz"),
     r"field 'y_true' must equal the labels in .*a\.npz \(same test set, same order\); "
     r"got 2 at row 1 where .*a\.npz has 1"),
    ("differing_y_true_by_id",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, y_pred=Y, sample_id=np.array([5, 6, 7])),
                       _npz(t, "b.npz", y_true=np.array([2, 0, 0]), y_pred=Y,
                            sample_id=np.array([7, 6, 5]))), "b.npz"),
     r"field 'y_true' must equal the labels in .*a\.npz.*got 0 at id 6 where .*a\.npz has 1"),
    ("different_test_set_sizes",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, y_pred=Y),
                       _npz(t, "b.npz", y_true=Y[:2], y_pred=Y[:2])), "b.npz"),
     r"field 'y_true' must have as many rows as in .*a\.npz \(3; same test set\); got 2"),
    ("classes_named_differently",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, y_pred=Y, classes=np.array(["a", "b", "c"])),
                       _npz(t, "b.npz", y_true=Y, y_pred=Y, classes=np.array(["a", "x", "c"]))),
                "b.npz"),
     r"field 'classes' must match the class names of .*a\.npz; got 'x' at position 1 "
     r"where .*a\.npz has 'b'"),
    ("score_widths_differ",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, logits=LOGITS),
                       _npz(t, "b.npz", y_true=Y, logits=np.zeros((3, 4)))), "b.npz"),
     r"field 'logits' must have as many columns as in .*a\.npz \(3\); got 4"),
    ("unnamed_run_wider_than_names",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, y_pred=Y, classes=np.array(["a", "b", "c"])),
                       _npz(t, "b.npz", y_true=Y, logits=np.zeros((3, 4)))), "b.npz"),
     r"field 'logits' must have one column per class named in .*a\.npz \(3\); got 4"),
    ("unnamed_run_label_beyond_names",
     lambda t: (_align(_npz(t, "a.npz", y_true=Y, y_pred=Y, classes=np.array(["a", "b", "c"])),
                       _npz(t, "b.npz", y_true=Y, y_pred=np.array([0, 5, 1]))), "b.npz"),
     r"field 'y_pred' must hold labels below the 3 classes named in .*a\.npz; got 5 at row 1"),
    ("csv_cannot_store_class_names",
     lambda t: (lambda: write_predictions(t / "out.csv", y_true=Y, y_pred=Y,
                                          classes=["a", "b", "c"]), "out.csv"),
     r"field 'classes' must not be given for a \.csv file"),
    ("write_invalid_probs",
     lambda t: (lambda: write_predictions(t / "out.npz", y_true=Y, probs=_probs_with(0, 0, 2.0)),
                "out.npz"),
     r"field 'probs' must be in \[0, 1\]; got 2.0 at row 0, column 0"),
]


def _pt(tmp: Path, obj: object) -> Path:
    import torch

    path = tmp / "bad.pt"
    torch.save(obj, path)
    return path


def _parquet(tmp: Path, columns: dict) -> Path:
    path = tmp / "bad.parquet"
    pd.DataFrame(columns).to_parquet(path, index=False)
    return path


def _npy_as_npz(tmp: Path) -> Path:
    path = tmp / "bad.npz"
    with open(path, "wb") as handle:
        np.save(handle, Y)
    return path


def test_enough_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(("setup", "pattern"), [(s, p) for _, s, p in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_input_is_one_clear_error(tmp_path: Path, setup, pattern: str) -> None:
    action, file_name = setup(tmp_path)
    with pytest.raises(DataFormatError, match=re.escape(file_name) + ".*" + pattern) as info:
        action()
    error = info.value
    assert type(error) is DataFormatError and isinstance(error, ValueError)
    assert "\n" not in str(error)  # the CLI prints it on one line
    assert not (tmp_path / MARKER).exists()  # nothing in a file ever runs


def test_malicious_pickle_does_not_run(tmp_path: Path) -> None:
    path = _malicious_pt(tmp_path)
    with pytest.raises(DataFormatError, match=r"evil\.pt"):
        read_predictions(path)
    assert not (tmp_path / MARKER).exists()
    # control: the payload is live, so the assertion above means something
    import torch

    torch.load(path, weights_only=False)
    assert (tmp_path / MARKER).exists()


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".parquet", ".pt"])
@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.5, 0.8, 0.95, 0.99])
def test_any_truncation_is_a_data_format_error(tmp_path: Path, suffix: str,
                                               fraction: float) -> None:
    # a cut file either fails cleanly or (csv cut on a row boundary) reads a valid prefix
    path = _truncated(tmp_path, f"cut{suffix}", fraction)
    try:
        pred = read_predictions(path)
    except DataFormatError as exc:
        assert f"cut{suffix}" in str(exc)
    else:
        assert suffix == ".csv" and pred.n_samples <= 3


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = write_predictions(tmp_path / "run.npz", y_true=Y, y_pred=Y)
    before = path.read_bytes()
    with pytest.raises(DataFormatError, match=r"run\.npz"):
        write_predictions(path, y_true=Y, y_pred=np.array([0, 1, 7]), logits=LOGITS)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_write_into_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"out\.npz: cannot be written: directory"):
        write_predictions(tmp_path / "nope" / "out.npz", y_true=Y, y_pred=Y)
