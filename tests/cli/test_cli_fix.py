"""`classgap fix fit/apply` and `audit/compare --rule` on files from outside classgap (issue
21): a scikit-learn model's probabilities in CSV and parquet, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split

from classgap.cli import run
from classgap.fix import load_rule


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def frame(y: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """The layout a scikit-learn user writes: labels and one prob_<k> column per class."""
    return pd.DataFrame({"y_true": y, **{f"prob_{k}": probs[:, k] for k in range(10)}})


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two recipes of a LogisticRegression on load_digits (C = 0.003: the reference; C = 0.01:
    the candidate, +1.3 points of validation accuracy but digits 3 and 6 lose 2-3 points),
    validation and test probabilities as CSV (reference) and parquet (candidate)."""
    root = tmp_path_factory.mktemp("digits")
    x, y = load_digits(return_X_y=True)
    x_tr, x_rest, y_tr, y_rest = train_test_split(x / 16.0, y, train_size=0.5, random_state=0,
                                                  stratify=y)
    x_val, x_te, y_val, y_te = train_test_split(x_rest, y_rest, train_size=0.5,
                                                random_state=0, stratify=y_rest)
    files: dict[str, Path] = {}
    for name, c in (("ref", 3e-3), ("cand", 1e-2)):
        model = LogisticRegression(C=c, max_iter=300).fit(x_tr, y_tr)
        for split, xs, ys in (("val", x_val, y_val), ("test", x_te, y_te)):
            path = root / f"{name}_{split}.{'csv' if name == 'ref' else 'parquet'}"
            table = frame(ys, model.predict_proba(xs))
            table.to_csv(path, index=False) if path.suffix == ".csv" else table.to_parquet(path)
            files[f"{name}_{split}"] = path
    return files


def test_fit_apply_and_audit_round_trip(capsys, digits, tmp_path: Path) -> None:
    rule_path = tmp_path / "rule.json"
    code, out, err = invoke(capsys, "fix", "fit", "--reference", digits["ref_val"],
                            "--candidate", digits["cand_val"], "--tolerance", "2", "--z", "0",
                            "--out", rule_path)
    assert code == 0, err
    assert "wrote" in out and "accuracy" in out
    rule = json.loads(rule_path.read_text())
    assert rule["classes"] == [str(k) for k in range(10)] and rule["objective"] == "mean"
    assert rule["tolerance_points"] == 2.0
    import hashlib

    assert rule["fit_on"]["candidate"][0]["sha256"] == hashlib.sha256(
        digits["cand_val"].read_bytes()).hexdigest()
    per_class = rule["validation"]["per_class"]
    # on validation every class keeps the reference's accuracy minus 2 points
    assert min(a - r for a, r in zip(per_class["after"], per_class["reference"],
                                     strict=True)) >= -2.0 - 1e-9
    val = pd.read_parquet(digits["cand_val"])
    probs = val[[f"prob_{k}" for k in range(10)]].to_numpy()
    pred = np.argmax(probs * np.array(rule["weights"]), axis=1)
    np.testing.assert_allclose(100 * recall_score(val["y_true"], pred, average=None),
                               per_class["after"], atol=1e-3)

    out_dir = tmp_path / "adjusted"
    code, _, err = invoke(capsys, "fix", "apply", rule_path, digits["cand_test"],
                          digits["ref_test"], "--out", out_dir)
    assert code == 0, err
    test = pd.read_parquet(digits["cand_test"])
    expected = np.argmax(test[[f"prob_{k}" for k in range(10)]].to_numpy()
                         * np.array(rule["weights"]), axis=1)
    adjusted = pd.read_parquet(out_dir / "cand_test.parquet")
    np.testing.assert_array_equal(adjusted["y_pred"], expected)
    np.testing.assert_allclose(adjusted[[f"prob_{k}" for k in range(10)]].sum(axis=1), 1.0)
    assert (out_dir / "ref_test.csv").exists()  # the same format family as the input

    # audit --rule: the adjusted predictions' per-class accuracy, as scikit-learn computes it
    code, out, err = invoke(capsys, "audit", digits["cand_test"], "--rule", rule_path,
                            "--format", "json")
    assert code == 0, err
    assert "post-hoc rule" in err
    audited = [c["accuracy"] for c in json.loads(out)["classes"]]
    np.testing.assert_allclose(audited, recall_score(test["y_true"], expected, average=None))
    # the adjusted file audits the same as --rule on the original
    code, out2, _ = invoke(capsys, "audit", out_dir / "cand_test.parquet", "--format", "json")
    assert [c["accuracy"] for c in json.loads(out2)["classes"]] == audited

    code, out, err = invoke(capsys, "compare", "-b", digits["ref_test"], "-c",
                            digits["cand_test"], "--rule", rule_path, "--format", "json")
    assert code == 0, err
    overall = json.loads(out)["overall"]
    ref = pd.read_csv(digits["ref_test"])
    ref_acc = np.mean(ref[[f"prob_{k}" for k in range(10)]].to_numpy().argmax(1)
                      == ref["y_true"])
    assert overall["acc_candidate"] == pytest.approx(np.mean(expected == test["y_true"]))
    assert overall["acc_baseline"] == pytest.approx(ref_acc)
    assert load_rule(rule_path).classes == tuple(str(k) for k in range(10))


def test_refusals(capsys, digits, tmp_path: Path) -> None:
    rule_path = tmp_path / "rule.json"
    assert invoke(capsys, "fix", "fit", "-r", digits["ref_val"], "-c", digits["cand_val"],
                  "--tolerance", "3", "--out", rule_path)[0] == 0
    val = pd.read_parquet(digits["cand_val"])
    # labels-only candidate
    labels_only = tmp_path / "labels.csv"
    pd.DataFrame({"y_true": val["y_true"], "y_pred": val["y_true"]}).to_csv(labels_only,
                                                                          index=False)
    code, _, err = invoke(capsys, "fix", "fit", "-r", digits["ref_val"], "-c", labels_only,
                          "--out", tmp_path / "r2.json")
    assert code == 1 and "field 'scores' must be present" in one_error(err)
    # NaN in the scores
    nan = tmp_path / "nan.csv"
    broken = val.copy()
    broken.loc[3, "prob_2"] = np.nan
    broken.to_csv(nan, index=False)
    code, _, err = invoke(capsys, "fix", "fit", "-r", digits["ref_val"], "-c", nan,
                          "--out", tmp_path / "r3.json")
    assert code == 1 and "must be finite" in one_error(err) and "row 3" in err
    # an infeasible tolerance: a perfect reference
    perfect = tmp_path / "perfect.csv"
    pd.DataFrame({"y_true": val["y_true"], "y_pred": val["y_true"]}).to_csv(perfect,
                                                                          index=False)
    code, _, err = invoke(capsys, "fix", "fit", "-r", perfect, "-c", digits["cand_val"],
                          "--out", tmp_path / "r4.json")
    assert code == 1 and "raise the tolerance" in one_error(err)
    assert not (tmp_path / "r4.json").exists()
    # mismatched classes: a file with 3 score columns, and a file with other class names
    three = tmp_path / "three.csv"
    p3 = np.full((len(val), 3), 1 / 3)
    pd.DataFrame({"y_true": val["y_true"] % 3, **{f"prob_{k}": p3[:, k] for k in range(3)}}
                 ).to_csv(three, index=False)
    code, _, err = invoke(capsys, "fix", "apply", rule_path, three, "--out", tmp_path / "o")
    assert code == 1 and "a rule applies only to the classes it was fit on" in one_error(err)
    code, _, err = invoke(capsys, "compare", "-b", digits["ref_test"], "-c", three, "--rule",
                          rule_path)
    assert code == 1 and "classes it was fit on" in one_error(err)
    named = tmp_path / "named.npz"
    probs = val[[f"prob_{k}" for k in range(10)]].to_numpy()
    np.savez(named, y_true=val["y_true"].to_numpy(), probs=probs,
             classes=np.array([f"digit {k}" for k in range(10)]))
    code, _, err = invoke(capsys, "audit", named, "--rule", rule_path)
    assert code == 1 and "are not the classes of" in one_error(err)
    # labels-only files under --rule, and a file that is not a rule
    code, _, err = invoke(capsys, "audit", labels_only, "--rule", rule_path)
    assert code == 1 and "to apply a rule" in one_error(err)
    not_rule = tmp_path / "not_rule.json"
    not_rule.write_text('{"weights": [1, 2]}')
    code, _, err = invoke(capsys, "audit", digits["cand_test"], "--rule", not_rule)
    assert code == 1 and "'format' must be" in one_error(err)
    # mismatched validation sets between the sides
    short = tmp_path / "short.csv"
    pd.read_csv(digits["ref_val"]).iloc[:-5].to_csv(short, index=False)
    code, _, err = invoke(capsys, "fix", "fit", "-r", short, "-c", digits["cand_val"],
                          "--out", tmp_path / "r5.json")
    assert code == 1
    one_error(err)


def test_classes_option_names_the_rule(capsys, digits, tmp_path: Path) -> None:
    """`--classes` names the classes of numeric-label files; the rule keeps those names and
    applies to files carrying them."""
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"digit {k}" for k in range(10)) + "\n")
    rule_path = tmp_path / "rule.json"
    code, _, err = invoke(capsys, "fix", "fit", "-r", digits["ref_val"], "-c",
                          digits["cand_val"], "--tolerance", "1", "--classes", names,
                          "--out", rule_path)
    assert code == 0, err
    assert load_rule(rule_path).classes == tuple(f"digit {k}" for k in range(10))
    code, _, err = invoke(capsys, "fix", "apply", rule_path, digits["cand_test"], "--classes",
                          names, "--out", tmp_path / "adjusted")
    assert code == 0, err
    from classgap.audit import read_predictions

    back = read_predictions(tmp_path / "adjusted" / "cand_test.parquet")
    assert back.classes == tuple(f"digit {k}" for k in range(10))
    # a file without class names and with one score column per class is taken in the
    # rule's order (as `audit` takes it in --classes order); names that differ are refused
    code, _, err = invoke(capsys, "audit", digits["cand_test"], "--rule", rule_path)
    assert code == 0, err
    code, _, err = invoke(capsys, "audit", tmp_path / "adjusted" / "cand_test.parquet",
                          "--rule", tmp_path / "rule_unnamed.json")
    assert code == 1 and "rule file does not exist" in one_error(err)
