"""Other people's data (issue 20): class-name labels, half-precision probabilities, 1-based labels.

Names are checked in every format and through the Python API against scikit-learn's per-class
recall computed on the names themselves; half-precision rows against real softmax outputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

from classgap.audit import audit, compare_files, compare_predictions
from classgap.audit._labels import InferredClassesWarning
from classgap.audit.io import (
    Predictions,
    _check_scores,
    load_runs,
    prob_tolerance,
    read_predictions,
    write_predictions,
)
from classgap.audit.perclass import EmptyClassWarning
from classgap.errors import DataFormatError, InputError

NAMES = np.array(["six", "five", "seven", "eight, the round one"])  # a comma: CSV quoting
SORTED = tuple(sorted(NAMES.tolist()))
N = 120


def _names(seed: int = 0, acc: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) as class names; wrong answers are a random other name."""
    rng = np.random.default_rng(seed)
    y = NAMES[rng.integers(0, len(NAMES), N)]
    wrong = NAMES[rng.integers(0, len(NAMES), N)]
    return y, np.where(rng.random(N) < acc, y, wrong)


def _write(path: Path, y_true: np.ndarray, y_pred: np.ndarray) -> Path:
    """A prediction file written the way a user would, without classgap."""
    suffix = path.suffix
    if suffix == ".csv":
        pd.DataFrame({"y_true": y_true, "y_pred": y_pred}).to_csv(path, index=False)
    elif suffix == ".parquet":
        pd.DataFrame({"y_true": y_true, "y_pred": y_pred}).to_parquet(path)
    elif suffix == ".npz":
        np.savez(path, y_true=y_true, y_pred=y_pred)  # unicode arrays: no pickle needed
    else:
        torch = pytest.importorskip("torch")
        torch.save({"y_true": y_true.tolist(), "y_pred": y_pred.tolist()}, path)
    return path


def _decoded(pred: Predictions, field: str) -> list[str]:
    return [pred.classes[i] for i in getattr(pred, field)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz", ".pt"])
def test_name_labels_in_every_format(tmp_path: Path, suffix: str) -> None:
    y, p = _names()
    path = _write(tmp_path / f"names{suffix}", y, p)
    with pytest.warns(InferredClassesWarning, match="4 sorted unique names") as record:
        got = read_predictions(path)
    assert len(record) == 1 and str(path) in str(record[0].message)
    assert got.classes == SORTED  # sorted: the one order that does not depend on the file
    assert _decoded(got, "y_true") == y.tolist() and _decoded(got, "y_pred") == p.tolist()


def test_given_classes_fix_the_order_without_a_note(tmp_path: Path) -> None:
    y, p = _names()
    path = _write(tmp_path / "names.csv", y, p)
    order = ["seven", "six", "five", "eight, the round one", "absent"]  # a class never seen
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no inferred-classes note when classes are given
        got = read_predictions(path, classes=order)
    assert got.classes == tuple(order)
    assert _decoded(got, "y_true") == y.tolist() and _decoded(got, "y_pred") == p.tolist()


def test_a_name_not_in_the_classes_is_one_error_naming_file_field_row_value(tmp_path) -> None:
    y, p = _names()
    p = p.copy()
    p[7] = "sixx"
    path = _write(tmp_path / "typo.parquet", y, p)
    with pytest.raises(DataFormatError) as info:
        read_predictions(path, classes=NAMES.tolist())
    message = str(info.value)
    assert message.startswith(f"{path}: field 'y_pred' must hold names listed in")
    assert "got 'sixx' at row 7" in message and "did you mean 'six'?" in message


def test_names_and_indices_do_not_mix(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("y_true,y_pred\ncat,0\ndog,1\n")
    with pytest.raises(DataFormatError, match=r"field 'y_pred' must hold class names as "
                       r"'y_true' does .*got 0 at row 0"):
        read_predictions(path)
    path.write_text("y_true,y_pred\ncat,cat\n,dog\n")
    with pytest.raises(DataFormatError, match=r"field 'y_true' must hold class names on every "
                       r"row .*got empty cell at row 1"):
        read_predictions(path)


@pytest.mark.filterwarnings("ignore:1 class\\(es\\) absent")  # "nine": predicted, never true
def test_files_read_together_share_one_class_list(tmp_path: Path) -> None:
    """Class k must be the same class in both files: the union of both files' names."""
    y, p = _names(1)
    a = _write(tmp_path / "a.csv", y, np.where(p == "five", "six", p))  # never predicts five
    b = _write(tmp_path / "b.npz", y, np.where(p == "six", "nine", p))  # predicts a new name
    with pytest.warns(InferredClassesWarning) as record:
        runs = load_runs([a, b])
    assert len(record) == 1  # one note for the files together
    union = tuple(sorted({*NAMES.tolist(), "nine"}))
    assert [r.classes for r in runs] == [union, union]
    with pytest.warns(InferredClassesWarning):
        result = compare_files([a], [b], random_state=0)
    assert result.classes["class"].tolist() == list(union)
    by_name = result.classes.set_index("class")
    expected = recall_score(y, np.where(p == "five", "six", p), labels=list(union),
                            average=None, zero_division=np.nan)
    np.testing.assert_allclose(by_name.loc[list(union), "acc_baseline"], expected)


def test_scores_with_name_labels_need_the_class_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y, _ = _names()
    probs = rng.dirichlet(np.ones(4), N)
    path = tmp_path / "probs.npz"
    np.savez(path, y_true=y, probs=probs)
    with pytest.raises(DataFormatError, match=r"field 'probs' must come with the class order "
                       r"when the labels are class names.*got 4 columns for labels"):
        read_predictions(path)
    order = NAMES.tolist()  # e.g. scikit-learn's clf.classes_
    got = read_predictions(path, classes=order)
    assert _decoded(got, "y_pred") == NAMES[probs.argmax(axis=1)].tolist()


def test_score_columns_named_by_class_give_the_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    y, _ = _names()
    probs = rng.dirichlet(np.ones(4), N)  # column j is the class NAMES[j]
    frame = pd.DataFrame({"y_true": y, **{f"prob_{c}": probs[:, j] for j, c in enumerate(NAMES)}})
    path = tmp_path / "named.csv"
    frame.to_csv(path, index=False)
    got = read_predictions(path)
    assert got.classes == tuple(NAMES) and _decoded(got, "y_true") == y.tolist()
    assert _decoded(got, "y_pred") == NAMES[probs.argmax(axis=1)].tolist()
    # --classes in another order: the columns follow the names, not their position
    given = read_predictions(path, classes=SORTED)
    assert given.classes == SORTED
    assert _decoded(given, "y_pred") == NAMES[probs.argmax(axis=1)].tolist()
    np.testing.assert_array_equal(given.scores[:, SORTED.index("seven")], probs[:, 2])
    with pytest.raises(DataFormatError, match=r"class 'nine' of the classes given has no "
                       r"column prob_nine; the file's score columns are prob_six, .*: the class "
                       r"names in the classes given must be the names after 'prob_'"):
        read_predictions(path, classes=[*NAMES.tolist()[:3], "nine"])
    frame.rename(columns={"prob_six": "prob_0"}).to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"must be named all by index .* or all by class "
                       r"name"):
        read_predictions(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz", ".pt"])
def test_write_name_labels_round_trip(tmp_path: Path, suffix: str) -> None:
    if suffix == ".pt":
        pytest.importorskip("torch")
    y, p = _names(3)
    probs = np.random.default_rng(3).dirichlet(np.ones(4), N)
    with pytest.warns(InferredClassesWarning):
        written = Predictions.from_arrays(y, p)
    path = write_predictions(tmp_path / f"w{suffix}", y_true=y, y_pred=p,
                             probs=probs, classes=SORTED)
    got = read_predictions(path)
    assert got.classes == SORTED == written.classes
    assert _decoded(got, "y_true") == y.tolist() and _decoded(got, "y_pred") == p.tolist()
    np.testing.assert_array_equal(got.scores, probs)
    if suffix == ".csv":  # a CSV keeps the names as names, and names its score columns
        table = pd.read_csv(path)
        assert table["y_true"].tolist() == y.tolist()
        assert [c for c in table.columns if c.startswith("prob_")] == [
            f"prob_{c}" for c in SORTED]


def test_python_api_takes_names_and_matches_sklearn() -> None:
    y, p = _names(4)
    with pytest.warns(InferredClassesWarning, match="4 sorted unique names") as record:
        result = audit(y, p, n_boot=50)
    assert len(record) == 1
    assert result.by_class.index.tolist() == list(SORTED)
    expected = recall_score(y, p, labels=list(SORTED), average=None)
    np.testing.assert_allclose(result.by_class["accuracy"], expected)
    # a list of names is one run, not N runs of one-letter "labels"
    listed = audit(y.tolist(), p.tolist(), class_names=NAMES.tolist(), n_boot=50)
    np.testing.assert_allclose(listed.by_class.loc[list(SORTED), "accuracy"], expected)
    with pytest.raises(InputError, match=r"'y_true' must hold names listed in 'class_names' "
                       r".*got 'six' at row"):
        audit(y, p, class_names=["five", "seven", "eight, the round one"], n_boot=50)


@pytest.mark.filterwarnings("ignore:1 class\\(es\\) absent")  # "nine": predicted, never true
def test_compare_predictions_takes_names_on_both_sides() -> None:
    y, a = _names(5, acc=0.8)
    _, b = _names(6, acc=0.6)
    b = np.where(b == "six", "nine", b)  # the candidate alone predicts a new name
    with pytest.warns(InferredClassesWarning):
        named = compare_predictions(y, [a], [b], random_state=0)
    union = sorted({*NAMES.tolist(), "nine"})
    codes = {c: i for i, c in enumerate(union)}
    code = np.vectorize(codes.__getitem__)
    indexed = compare_predictions(code(y), [code(a)], [code(b)], len(union),
                                  class_names=union, random_state=0)
    pd.testing.assert_frame_equal(named.classes, indexed.classes)
    np.testing.assert_allclose(named.classes["acc_candidate"],  # "nine": no samples, NaN
                               recall_score(y, b, labels=union, average=None,
                                            zero_division=np.nan))


def _rows_summing_to(total: float, k: int, dtype: type) -> np.ndarray:
    row = np.full(k, total / k)
    return np.tile(row, (3, 1)).astype(dtype)


def test_float16_probabilities_pass_with_a_tolerance_that_follows_the_dtype(tmp_path) -> None:
    y = np.array([0, 1, 2])
    ok = np.array([[0.5, 0.25, 0.24981]] * 3)  # rows sum to 0.99981, as in the issue
    path = tmp_path / "half.npz"
    np.savez(path, y_true=y, probs=ok.astype(np.float16))
    got = read_predictions(path)
    assert got.scores.dtype == np.float64
    np.testing.assert_allclose(got.scores.sum(axis=1), 1.0, atol=1e-12)  # rescaled in float64
    np.testing.assert_array_equal(got.y_pred, ok.argmax(axis=1))
    np.savez(path, y_true=y, probs=ok)  # the same numbers in float64 are 1.9e-4 off: refused
    with pytest.raises(DataFormatError, match=r"rows summing to 1 \(tolerance 0.0001\)"):
        read_predictions(path)
    np.savez(path, y_true=y, probs=_rows_summing_to(0.97, 3, np.float16))
    with pytest.raises(DataFormatError, match=r"rows summing to 1 \(tolerance 0.0025\); got "
                       r"sum 0.96\d* at row 0"):
        read_predictions(path)


def test_bfloat16_probabilities_from_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 3
    probs = torch.softmax(logits, dim=1).to(torch.bfloat16)
    y = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(1))
    path = tmp_path / "bf16.pt"
    torch.save({"y_true": y, "probs": probs}, path)
    got = read_predictions(path)
    np.testing.assert_array_equal(got.y_pred, probs.float().argmax(dim=1).numpy())
    np.testing.assert_allclose(got.scores.sum(axis=1), 1.0, atol=1e-12)
    bad = probs.clone()
    bad[3] = bad[3] * 0.9
    torch.save({"y_true": y, "probs": bad}, path)
    with pytest.raises(DataFormatError, match=r"field 'probs' must have rows summing to 1 "
                       r"\(tolerance 0.034\); got sum 0\.[89]\d* at row 3"):
        read_predictions(path)


@pytest.mark.parametrize("k", [2, 10, 1000])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_softmax_outputs_always_pass(k: int, dtype: str) -> None:
    """Real softmax rows, computed in the half type itself or in float32 and then rounded."""
    torch = pytest.importorskip("torch")
    half = getattr(torch, dtype)
    eps = torch.finfo(half).eps
    z = torch.randn(max(50, 20_000 // k), k, generator=torch.Generator().manual_seed(k)) * 3
    for probs in (torch.softmax(z, 1).to(half), torch.softmax(z.to(half), 1)):
        deviation = (probs.double().sum(1) - 1).abs().max().item()
        assert deviation <= prob_tolerance(k, eps) / 2  # a margin of 2 at least
        scores = probs.float().numpy() if dtype == "bfloat16" else probs.numpy()
        _check_scores(scores, "probs", "f", DataFormatError,
                      eps=eps if dtype == "bfloat16" else None)


def test_float32_and_float64_keep_their_tolerance() -> None:
    assert prob_tolerance(10) == prob_tolerance(10_000) == 1e-4
    assert prob_tolerance(10_000, float(np.finfo(np.float32).eps)) == 1e-4
    assert prob_tolerance(10, 2.0**-10) == pytest.approx(2.0**-10 * (1 + np.log2(10)))


def test_one_based_labels_get_one_warning_and_an_empty_class() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(1, 5, 200)  # labels 1..4
    p = np.where(rng.random(200) < 0.8, y, rng.integers(1, 5, 200))
    with pytest.warns(EmptyClassWarning) as record:
        result = audit(y, p, n_boot=50)
    messages = [str(w.message) for w in record if issubclass(w.category, EmptyClassWarning)]
    assert messages == ["class 0 has no test samples and the labels run 1..4: are the labels "
                        "1-based? If so, subtract 1 from y_true and y_pred; as given, class 0 "
                        "is reported with no samples (accuracy NaN)"]
    assert result.by_class.loc["0", "support"] == 0
    assert np.isnan(result.by_class.loc["0", "accuracy"])
    payload = result.to_dict()
    assert payload["classes_without_samples"] == ["0"]
    assert payload["classes"][0]["accuracy"] is None  # unknown, not 0
    np.testing.assert_allclose(result.by_class["accuracy"].iloc[1:],
                               recall_score(y, p, labels=[1, 2, 3, 4], average=None))
    # the statistics of the present classes do not change: the empty class is left out
    shifted = audit(y - 1, p - 1, n_boot=50)
    assert result.overall["worst_class"] == shifted.overall["worst_class"]


def test_an_absent_class_that_is_not_class_zero_is_named_not_asked_about() -> None:
    y = np.array([0, 0, 2, 2, 3, 3])
    with pytest.warns(EmptyClassWarning, match=r"1 class\(es\) absent from y_true .*: b$"):
        audit(y, y, class_names=["a", "b", "c", "d"], n_boot=20)


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".pt", ".csv"])
def test_float16_probabilities_written_and_read_in_every_format(tmp_path, suffix) -> None:
    if suffix == ".pt":
        pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    z = rng.normal(size=(200, 10)) * 3
    probs = (np.exp(z) / np.exp(z).sum(1, keepdims=True)).astype(np.float16)
    assert np.abs(probs.astype(np.float64).sum(1) - 1).max() > 1e-4  # float64's check refuses
    y = rng.integers(0, 10, 200)
    got = read_predictions(write_predictions(tmp_path / f"h{suffix}", y_true=y, probs=probs))
    np.testing.assert_allclose(got.scores.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(got.y_pred, probs.astype(np.float32).argmax(axis=1))
    np.testing.assert_allclose(audit(got.y_true, got.y_pred, n_boot=20).by_class["accuracy"],
                               recall_score(y, probs.argmax(1), labels=range(10),
                                            average=None, zero_division=np.nan))


def test_a_different_test_set_is_named_by_class_names(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("y_true,y_pred\ncat,cat\ndog,dog\n")
    b.write_text("y_true,y_pred\ncat,cat\ncat,dog\n")
    with pytest.warns(InferredClassesWarning), pytest.raises(
            DataFormatError, match=r"b\.csv: field 'y_true' must equal the labels in .*a\.csv "
            r"\(same test set, same order\); got 'cat' at row 1 where a\.csv has 'dog'"):
        compare_files([a], [b])
