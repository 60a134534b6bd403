"""`classgap audit` / `compare` on other people's files (issue 20): class-name labels,
half-precision probabilities and 1-based labels, built here the way users write them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

from classgap.cli import run

NAMES = ["tabby", "[siamese]", "maine coon"]  # brackets: text, never rich markup
N_PER_CLASS = 60


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def err_lines(err: str) -> list[str]:
    assert "Traceback" not in err and "warnings.warn" not in err, err
    return [line for line in err.splitlines() if line.strip()]


def named_predictions(seed: int, acc: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Class-name labels with a chosen accuracy per class; errors go to the next name."""
    rng = np.random.default_rng(seed)
    names = np.array(NAMES)
    y = np.repeat(np.arange(len(NAMES)), N_PER_CLASS)
    hit = rng.random(len(y)) < np.asarray(acc)[y]
    return names[y], names[np.where(hit, y, (y + 1) % len(NAMES))]


@pytest.fixture
def named(tmp_path: Path) -> dict[str, Path]:
    """A baseline as CSV and a candidate as parquet, both with class names as labels."""
    y, a = named_predictions(0, [0.9, 0.9, 0.9])
    _, b = named_predictions(1, [0.4, 0.95, 0.95])  # "tabby" drops
    base, cand = tmp_path / "base.csv", tmp_path / "cand.parquet"
    pd.DataFrame({"y_true": y, "y_pred": a}).to_csv(base, index=False)
    pd.DataFrame({"y_true": y, "y_pred": b}).to_parquet(cand)
    return {"base": base, "cand": cand}


def test_audit_csv_with_class_names(capsys, named) -> None:
    code, out, err = invoke(capsys, "audit", named["base"], "--format", "json")
    assert code == 0, err
    lines = err_lines(err)
    assert len(lines) == 1 and lines[0].startswith("note: ") and "3 sorted unique names" in lines[0]
    classes = json.loads(out)["classes"]
    order = sorted(NAMES)
    assert [c["class"] for c in classes] == order
    table = pd.read_csv(named["base"])
    expected = recall_score(table["y_true"], table["y_pred"], labels=order, average=None)
    np.testing.assert_allclose([c["accuracy"] for c in classes], expected)


def test_audit_names_in_table_and_csv_and_given_order(capsys, named, tmp_path) -> None:
    code, out, _ = invoke(capsys, "audit", named["base"])
    assert code == 0 and all(name in out for name in NAMES)
    names_file = tmp_path / "names.txt"
    names_file.write_text("\n".join(NAMES) + "\n")
    target = tmp_path / "audit.csv"
    code, _, err = invoke(capsys, "audit", named["base"], "--classes", names_file,
                          "--format", "csv", "--out", target)
    assert code == 0 and "note:" not in err  # the order was given: nothing to say
    assert pd.read_csv(target)["class"].tolist() == NAMES


def test_audit_unknown_name_is_one_line(capsys, named, tmp_path) -> None:
    names_file = tmp_path / "names.json"
    names_file.write_text(json.dumps(NAMES[:2]))
    code, _, err = invoke(capsys, "audit", named["base"], "--classes", names_file)
    (line,) = err_lines(err)
    assert code == 1 and line.startswith(f"error: {named['base']}: field 'y_true' must hold "
                                          f"names listed in {names_file} (2 names); got "
                                          "'maine coon' at row 120")


def test_compare_names_across_formats(capsys, named) -> None:
    code, out, err = invoke(capsys, "compare", "-b", named["base"], "-c", named["cand"],
                            "--format", "json")
    assert code == 0, err
    assert sum(line.startswith("note: ") for line in err_lines(err)) == 1
    payload = json.loads(out)
    rows = {c["class"]: c for c in payload["classes"]}
    assert sorted(rows) == sorted(NAMES)
    assert rows["tabby"]["verdict"] == "drop"
    cand = pd.read_parquet(named["cand"])
    expected = recall_score(cand["y_true"], cand["y_pred"], labels=NAMES, average=None)
    np.testing.assert_allclose([rows[n]["acc_candidate"] for n in NAMES], expected)
    code, out, _ = invoke(capsys, "compare", "-b", named["base"], "-c", named["cand"])
    assert code == 0 and "[siamese]" in out and "tabby" in out


def test_compare_maps_both_files_to_one_class_list(capsys, tmp_path) -> None:
    """The candidate predicts a name the baseline never uses: class k is still class k."""
    y, a = named_predictions(2, [0.9, 0.9, 0.9])
    b = np.where(a == "tabby", "tiger", a)  # "tiger" sorts last: indices would shift by file
    base, cand = tmp_path / "a.csv", tmp_path / "b.npz"
    pd.DataFrame({"y_true": y, "y_pred": a}).to_csv(base, index=False)
    np.savez(cand, y_true=y, y_pred=b)
    code, out, err = invoke(capsys, "compare", "-b", base, "-c", cand, "-f", "json")
    assert code == 0, err
    rows = {c["class"]: c for c in json.loads(out)["classes"]}
    assert sorted(rows) == sorted([*NAMES, "tiger"])
    assert rows["tiger"]["support"] == 0 and rows["tiger"]["acc_baseline"] is None
    assert rows["tabby"]["acc_candidate"] == 0.0  # every tabby became a tiger
    assert rows["[siamese]"]["delta"] == 0.0


def test_probabilities_with_names_need_the_order(capsys, tmp_path) -> None:
    rng = np.random.default_rng(3)
    y, _ = named_predictions(3, [1, 1, 1])
    probs = rng.dirichlet(np.ones(3), len(y))
    path = tmp_path / "probs.csv"
    pd.DataFrame({"y_true": y, **{f"prob_{j}": probs[:, j] for j in range(3)}}).to_csv(
        path, index=False)
    code, _, err = invoke(capsys, "audit", path)
    (line,) = err_lines(err)
    assert code == 1 and "field 'probs' must come with the class order" in line
    named_cols = tmp_path / "named.csv"
    pd.DataFrame({"y_true": y, **{f"prob_{n}": probs[:, j] for j, n in enumerate(NAMES)}}
                 ).to_csv(named_cols, index=False)
    code, out, err = invoke(capsys, "audit", named_cols, "-f", "json")
    assert code == 0 and err_lines(err) == []  # the columns gave the order
    classes = json.loads(out)["classes"]
    assert [c["class"] for c in classes] == NAMES
    expected = recall_score(y, np.array(NAMES)[probs.argmax(1)], labels=NAMES, average=None)
    np.testing.assert_allclose([c["accuracy"] for c in classes], expected)


def test_half_precision_probabilities(capsys, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (400,), generator=gen)
    logits = torch.randn(400, 10, generator=gen) * 2 + 4 * torch.nn.functional.one_hot(y, 10)
    fp16, bf16 = tmp_path / "fp16.npz", tmp_path / "bf16.pt"
    half = torch.softmax(logits, 1).half().numpy()
    assert np.abs(half.astype(np.float64).sum(1) - 1).max() > 1e-4  # the float64 check refuses
    np.savez(fp16, y_true=y.numpy(), probs=half)
    torch.save({"y_true": y, "probs": torch.softmax(logits, 1).to(torch.bfloat16)}, bf16)
    for path, pred in ((fp16, half.astype(np.float32).argmax(1)),
                       (bf16, torch.softmax(logits, 1).to(torch.bfloat16).float().argmax(1))):
        code, out, err = invoke(capsys, "audit", path, "-f", "json")
        assert code == 0, err
        expected = recall_score(y.numpy(), np.asarray(pred), average=None)
        np.testing.assert_allclose([c["accuracy"] for c in json.loads(out)["classes"]],
                                   expected)
    code, out, err = invoke(capsys, "compare", "-b", fp16, "-c", bf16, "-f", "json")
    assert code == 0, err
    assert json.loads(out)["overall"]["n_classes"] == 10


def test_one_based_labels(capsys, tmp_path) -> None:
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(1, 5), 50)  # labels 1..4
    p = np.where(rng.random(len(y)) < 0.8, y, 1 + (y % 4))
    path = tmp_path / "one_based.csv"
    pd.DataFrame({"y_true": y, "y_pred": p}).to_csv(path, index=False)
    code, out, err = invoke(capsys, "audit", path)
    (line,) = err_lines(err)  # said once, though several steps see the empty class
    assert code == 0 and line.startswith("warning: class 0 has no test samples and the labels "
                                         "run 1..4: are the labels 1-based?")
    row0 = next(r for r in out.splitlines() if r.startswith("│ 0 "))
    assert "no samples" in row0 and "0.0" not in row0
    code, out, _ = invoke(capsys, "audit", path, "-f", "json")
    payload = json.loads(out)
    assert payload["classes_without_samples"] == ["0"]
    assert payload["classes"][0]["accuracy"] is None and payload["classes"][0]["support"] == 0
    np.testing.assert_allclose([c["accuracy"] for c in payload["classes"][1:]],
                               recall_score(y, p, average=None))
    code, out, err = invoke(capsys, "compare", "-b", path, "-c", path)
    assert code == 0 and len(err_lines(err)) == 1
    row0 = next(r for r in out.splitlines() if r.startswith("│ 0 "))
    assert "no samples" in row0
    code, out, _ = invoke(capsys, "compare", "-b", path, "-c", path, "-f", "json")
    assert json.loads(out)["classes_without_samples"] == ["0"]


def test_classes_given_inline_as_a_json_list(capsys, tmp_path) -> None:
    """``--classes '["cat", "dog"]'`` names the classes without a file; a broken or repeated
    list is one line naming ``classes`` and the value."""
    from classgap.audit.io import write_predictions

    file = write_predictions(tmp_path / "p.npz", y_true=np.array([0, 1, 1, 0]),
                             y_pred=np.array([0, 1, 0, 0]))
    assert run(["audit", str(file), "--classes", '["cat", "dog"]', "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["classes"]
    assert [r["class"] for r in rows] == ["cat", "dog"]
    for bad, needle in (('["cat",', "valid JSON list"), ('["cat", "cat"]', "unique names")):
        assert run(["audit", str(file), "--classes", bad]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "'classes'" in err and needle in err
