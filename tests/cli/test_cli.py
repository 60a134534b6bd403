"""The command line: outputs per format, exit codes, and one-line errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

from classgap.audit.io import write_predictions
from classgap.cli import main, run

K = 4
NAMES = ["cat", "dog", "<b>owl</b>", "emu"]


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def synthetic(seed: int, acc: np.ndarray, n_per_class: int = 200) -> tuple[np.ndarray, ...]:
    """Predictions with a chosen per-class accuracy; wrong answers go to the next class."""
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(K), n_per_class)
    hit = rng.random(len(y_true)) < acc[y_true]
    return y_true, np.where(hit, y_true, (y_true + 1) % K)


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, list[Path]]:
    """Baseline: 90% everywhere. Candidate: class 0 falls to 60%, the others rise to 95%."""
    files: dict[str, list[Path]] = {"base": [], "cand": []}
    for seed in range(3):
        for side, acc in (("base", [0.9, 0.9, 0.9, 0.9]), ("cand", [0.6, 0.95, 0.95, 0.95])):
            y_true, y_pred = synthetic(seed + (100 if side == "cand" else 0), np.array(acc))
            path = tmp_path / f"{side}{seed}.npz"
            write_predictions(path, y_true=y_true, y_pred=y_pred, seed=seed, classes=NAMES)
            files[side].append(path)
    return files


def test_audit_json_matches_sklearn(capsys, runs) -> None:
    code, out, err = invoke(capsys, "audit", runs["base"][0], "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    data = np.load(runs["base"][0])
    expected = recall_score(data["y_true"], data["y_pred"], average=None)
    classes = payload["classes"]
    assert [c["class"] for c in classes] == NAMES
    np.testing.assert_allclose([c["accuracy"] for c in classes], expected)
    for c in classes:
        assert 0 <= c["accuracy_low"] <= c["accuracy"] <= c["accuracy_high"] <= 1
        assert c["support"] == 200
    assert {"accuracy", "worst_class", "balanced_accuracy"} <= set(payload["overall"])


def test_audit_table_and_csv(capsys, runs, tmp_path) -> None:
    code, out, _ = invoke(capsys, "audit", *runs["cand"])
    assert code == 0
    assert "emu" in out and "worst_class" in out and "mean of 3 runs" in out
    target = tmp_path / "out" / "audit.csv"
    code, _, _ = invoke(capsys, "audit", runs["cand"][0], "--format", "csv", "--out", target)
    assert code == 0
    table = pd.read_csv(target)
    assert list(table["class"]) == NAMES
    assert {"accuracy", "accuracy_low", "accuracy_high", "support"} <= set(table.columns)


def test_audit_same_seed_same_intervals(capsys, runs) -> None:
    outs = [invoke(capsys, "audit", *runs["base"], "-f", "json", "--seed", "7")[1]
            for _ in range(2)]
    assert outs[0] == outs[1]


def test_compare_flags_the_dropping_class(capsys, runs) -> None:
    code, out, err = invoke(capsys, "compare", "--baseline", *runs["base"][:1],
                            "--candidate", *runs["cand"][:1], "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    by_name = {c["class"]: c for c in payload["classes"]}
    assert by_name["cat"]["verdict"] == "drop"
    assert by_name["cat"]["delta"] < -0.2
    assert by_name["cat"]["delta_low"] <= by_name["cat"]["delta"] <= by_name["cat"]["delta_high"]
    for record in payload["classes"]:
        for key in ("acc_baseline", "acc_candidate"):
            assert 0.0 <= record[key] <= 1.0
        assert 0.0 <= record["p_value"] <= record["q_value"] <= 1.0
        assert record["verdict"] in {"drop", "gain", "none"}
    assert "overall" in payload


def test_compare_seeds_table(capsys, runs) -> None:
    code, out, _ = invoke(capsys, "compare", "-b", *runs["base"], "-c", *runs["cand"])
    assert code == 0
    assert "cat" in out and "drop" in out and "crossed" in out


def test_fail_on_drop_is_a_gate(capsys, runs) -> None:
    args = ["compare", "-b", runs["base"][0], "-c", runs["cand"][0], "-f", "csv"]
    code, _, err = invoke(capsys, *args, "--fail-on-drop", "5")
    assert code == 3
    assert "cat" in err
    code, _, _ = invoke(capsys, *args, "--fail-on-drop", "60")
    assert code == 0


def test_main_exits_with_status(runs) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", str(runs["base"][0]), "-f", "json"])
    assert exc.value.code == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["audit", "missing.npz"], "missing.npz"),
        (["audit", "{base}", "--format", "xml"], "xml"),
        (["audit", "{base}", "--confidence", "1.5"], "1.5"),
        (["audit", "{base}", "--n-boot", "0"], "0"),
        (["audit", "{base}", "--no-such-option"], "no-such-option"),
        (["compare", "--baseline", "{base}"], "candidate"),
        (["compare", "-b", "{base}", "-c", "{nan}"], "logits"),
        (["compare", "-b", "{base}", "-c", "{short}"], "short.npz"),
        (["compare", "-b", "{base}", "-c", "{base}", "--correction", "bonferroni"],
         "bonferroni"),
        (["data", "info", "imagenet"], "imagenet"),
        (["audit", "{base}", "--classes", "{dupnames}"], "dupnames.txt"),
    ],
)
def test_errors_are_one_line_exit_1(capsys, runs, tmp_path, args, needle) -> None:
    nan = tmp_path / "nan.npz"
    logits = np.zeros((800, K))
    logits[5, 2] = np.nan
    np.savez(nan, y_true=np.load(runs["base"][0])["y_true"], logits=logits)
    short = tmp_path / "short.npz"
    np.savez(short, y_true=np.arange(10) % K, y_pred=np.arange(10) % K)
    dupnames = tmp_path / "dupnames.txt"
    dupnames.write_text("cat\ncat\nowl\nemu\n")
    paths = {"base": runs["base"][0], "nan": nan, "short": short, "dupnames": dupnames}
    code, out, err = invoke(capsys, *(a.format(**paths) for a in args))
    assert code == 1, (out, err)
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0]


def test_failed_run_keeps_existing_output(capsys, runs, tmp_path) -> None:
    target = tmp_path / "keep.json"
    target.write_text("precious")
    code, _, _ = invoke(capsys, "audit", tmp_path / "missing.npz", "-f", "json", "-o", target)
    assert code == 1
    assert target.read_text() == "precious"


def test_verbose_shows_the_traceback(runs) -> None:
    from classgap.errors import ClassgapError

    with pytest.raises(ClassgapError):
        run(["--verbose", "audit", "missing.npz"])


def test_data_info_digits(capsys) -> None:
    code, out, _ = invoke(capsys, "data", "info", "digits", "--format", "json")
    assert code == 0
    info = json.loads(out)
    sizes = {split: s["size"] for split, s in info["splits"].items()}
    assert sum(s for split, s in sizes.items() if split != "all") in (1797, sum(sizes.values()))
    first = next(iter(info["splits"].values()))
    assert first["image_shape"] == [1, 8, 8]
    code, out, _ = invoke(capsys, "data", "info", "digits")
    assert code == 0 and "total" in out


def test_help_lists_commands(capsys) -> None:
    code, out, _ = invoke(capsys, "--help")
    assert code == 0
    for command in ("audit", "compare", "data"):
        assert command in out


def test_audit_groups_and_top_k(capsys, tmp_path) -> None:
    rng = np.random.default_rng(3)
    y_true = np.repeat(np.arange(K), 50)
    logits = rng.normal(size=(len(y_true), K))
    logits[np.arange(len(y_true)), y_true] += 1.0
    preds = tmp_path / "p.npz"
    write_predictions(preds, y_true=y_true, logits=logits)
    counts = tmp_path / "counts.txt"
    counts.write_text("500\n50\n50\n5\n")
    code, out, err = invoke(capsys, "audit", preds, "--train-counts", counts, "--reference",
                            preds, "--top-k", "2", "-f", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert {"group:frequency=many", "group:frequency=medium", "group:frequency=few",
            "group:difficulty=hard"} <= set(payload["overall"])
    many = payload["overall"]["group:frequency=many"]["estimate"]
    assert many == pytest.approx(payload["classes"][0]["accuracy"])
    top2 = (np.argsort(-logits, axis=1)[:, :2] == y_true[:, None]).any(axis=1)
    np.testing.assert_allclose([c["top2_accuracy"] for c in payload["classes"]],
                               [top2[y_true == k].mean() for k in range(K)])
    counts.write_text("500\n50\n")
    code, _, err = invoke(capsys, "audit", preds, "--train-counts", counts)
    assert code == 1 and "counts.txt" in err and "got 2 counts" in err
