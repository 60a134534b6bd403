"""``audit`` and ``compare`` with ``--groups``: the grouped tables, ``--level``, ``--expand``,
JSON and CSV with every group and level, and one-line errors for bad maps and options."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classgap.audit.io import write_predictions
from classgap.cli import run

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
TOPS = {"T-shirt/top", "Pullover", "Coat", "Shirt"}
PER_CLASS = 200


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_run(path: Path, seed: int, accuracy: dict[str, float]) -> Path:
    """A run over the Fashion-MNIST classes with the given per-class accuracy (0.9 for a class
    not named); wrong answers go to the next class."""
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(len(FASHION)), PER_CLASS)
    acc = np.array([accuracy.get(name, 0.9) for name in FASHION])
    hit = rng.random(y_true.size) < acc[y_true]
    y_pred = np.where(hit, y_true, (y_true + 1) % len(FASHION))
    write_predictions(path, y_true=y_true, y_pred=y_pred, seed=seed, classes=FASHION)
    return path


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, list[Path]]:
    """Baseline: 90% everywhere. Candidate: every top falls to 70% (Shirt to 50%)."""
    drop = {name: 0.7 for name in TOPS} | {"Shirt": 0.5}
    return {"base": [write_run(tmp_path / f"base{s}.npz", s, {}) for s in range(2)],
            "cand": [write_run(tmp_path / f"cand{s}.npz", 10 + s, drop) for s in range(2)]}


@pytest.fixture
def two_levels(tmp_path: Path) -> Path:
    """A CSV map with two nested levels: kind (worn, carried) > group (the built-in one)."""
    group = {"T-shirt/top": "tops", "Trouser": "bottoms", "Pullover": "tops", "Dress": "dresses",
             "Coat": "tops", "Sandal": "footwear", "Shirt": "tops", "Sneaker": "footwear",
             "Bag": "bags", "Ankle boot": "footwear"}
    path = tmp_path / "map.csv"
    pd.DataFrame({"class": FASHION, "group": [group[c] for c in FASHION],
                  "kind": ["carried" if c == "Bag" else "worn" for c in FASHION]}
                 ).to_csv(path, index=False)
    return path


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# -- audit ---------------------------------------------------------------------------------
def test_audit_groups_table_lists_the_worst_group_first(capsys, runs) -> None:
    code, out, err = invoke(capsys, "audit", runs["cand"][0], "--groups", "fashion-mnist")
    assert code == 0, err
    assert "Groups by group" in out and "mean of classes" in out
    table = out[out.index("Groups by group"):out.index("Disparity over the groups")]
    rows = [line for line in table.splitlines() if any(g in line for g in
                                                       ("tops", "bottoms", "footwear", "bags"))]
    assert "tops" in rows[0] and "Shirt" in rows[0]  # the worst group and its worst class
    assert "Overall and disparity" in out  # the audit's own summary is still there
    assert "Per-class accuracy" not in out  # the classes are behind --expand


def test_audit_groups_json_holds_every_group_with_pooled_and_mean_accuracy(capsys,
                                                                           runs) -> None:
    code, out, err = invoke(capsys, "audit", runs["cand"][0], "--groups", "fashion-mnist",
                            "-f", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["group_levels"] == ["group"]
    groups = {g["group"]: g for g in payload["groups"]}
    assert set(groups) == {"tops", "bottoms", "dresses", "footwear", "bags"}
    data = np.load(runs["cand"][0])
    tops = np.isin(data["y_true"], [FASHION.index(c) for c in TOPS])
    pooled = np.mean(data["y_pred"][tops] == data["y_true"][tops])
    assert groups["tops"]["accuracy"] == pytest.approx(pooled)
    assert groups["tops"]["support"] == 4 * PER_CLASS and groups["tops"]["n_classes"] == 4
    classes = {c["class"]: c for c in payload["classes"]}
    assert groups["tops"]["mean_class_accuracy"] == pytest.approx(
        np.mean([classes[c]["accuracy"] for c in TOPS]))
    for g in groups.values():
        assert g["low"] <= g["accuracy"] <= g["high"]
        assert g["mean_low"] <= g["mean_class_accuracy"] <= g["mean_high"]
    assert classes["Shirt"]["group"] == "tops" and classes["Bag"]["group"] == "bags"
    assert [lv["level"] for lv in payload["levels"]] == ["group"]
    assert payload["levels"][0]["worst_group"] == "tops"


def test_audit_groups_keep_the_ungrouped_numbers(capsys, runs) -> None:
    args = ["audit", *runs["cand"], "-f", "json", "--seed", "3"]
    plain = json.loads(invoke(capsys, *args)[1])
    grouped = json.loads(invoke(capsys, *args, "--groups", "fashion-mnist")[1])
    assert grouped["overall"] == plain["overall"]
    assert [{k: v for k, v in c.items() if k != "group"} for c in grouped["classes"]] == \
        plain["classes"]


def test_audit_groups_csv_out_writes_every_table(capsys, runs, two_levels, tmp_path) -> None:
    target = tmp_path / "out" / "audit.csv"
    code, _, err = invoke(capsys, "audit", runs["cand"][0], "--groups", two_levels,
                          "--level", "kind", "-f", "csv", "--out", target)
    assert code == 0, err
    per_class = pd.read_csv(target)
    assert list(per_class.columns[-2:]) == ["kind", "group"]  # coarse to fine
    assert list(per_class["class"]) == FASHION
    groups = pd.read_csv(target.with_name("audit.groups.csv"))
    assert sorted(zip(groups["level"], groups["group"], strict=True)) == sorted(
        [("kind", "carried"), ("kind", "worn")] + [("group", g) for g in
                                                   ("tops", "bottoms", "dresses", "footwear",
                                                    "bags")])  # every level, despite --level
    assert set(groups.loc[groups["level"] == "group", "parent"]) == {"worn", "carried"}
    levels = pd.read_csv(target.with_name("audit.levels.csv"))
    assert list(levels["level"]) == ["kind", "group"]
    assert target.with_name("audit.overall.csv").exists()


def test_audit_csv_to_stdout_says_where_the_groups_go(capsys, runs) -> None:
    code, out, err = invoke(capsys, "audit", runs["cand"][0], "--groups", "fashion-mnist",
                            "-f", "csv")
    assert code == 0
    assert pd.read_csv(io.StringIO(out))["group"].tolist()[6] == "tops"  # Shirt
    assert "FILE.groups.csv" in err and "FILE.levels.csv" in err


def test_level_shows_one_level(capsys, runs, two_levels) -> None:
    code, out, err = invoke(capsys, "audit", runs["cand"][0], "--groups", two_levels)
    assert code == 0, err
    assert "Groups by kind" in out and "Groups by group" in out
    code, out, err = invoke(capsys, "audit", runs["cand"][0], "--groups", two_levels,
                            "--level", "group")
    assert code == 0, err
    assert "Groups by group" in out and "Groups by kind" not in out
    assert "parent" in out  # a finer level names each group's parent


def test_expand_lists_the_classes_inside_a_group(capsys, runs) -> None:
    code, out, err = invoke(capsys, "audit", runs["cand"][0], "--groups", "fashion-mnist",
                            "--expand", "tops", "--expand", "bags")
    assert code == 0, err
    tops = out[out.index("Classes in group tops"):out.index("Classes in group bags")]
    listed = [c for c in FASHION if c in tops]
    assert set(listed) == TOPS
    assert tops.index("Shirt") < min(tops.index(c) for c in TOPS - {"Shirt"})  # worst first
    bags = out[out.index("Classes in group bags"):]
    assert "Bag" in bags and "Sandal" not in bags


def test_table_out_file_holds_the_grouped_tables(capsys, runs, tmp_path) -> None:
    target = tmp_path / "audit.txt"
    code, _, err = invoke(capsys, "audit", runs["cand"][0], "--groups", "fashion-mnist",
                          "--expand", "tops", "--out", target)
    assert code == 0, err
    text = target.read_text()
    assert "Groups by group" in text and "Classes in group tops" in text


def test_audit_says_what_each_level_can_detect(capsys, tmp_path) -> None:
    """10 images a class, 400 classes: almost no class can be tested, a group of 40 can."""
    k, n = 400, 10
    rng = np.random.default_rng(0)
    y_true = np.repeat(np.arange(k), n)
    y_pred = np.where(rng.random(y_true.size) < 0.7, y_true, (y_true + 1) % k)
    names = [f"c{i}" for i in range(k)]
    write_predictions(tmp_path / "run.npz", y_true=y_true, y_pred=y_pred, classes=names)
    pd.DataFrame({"class": names, "genus": [f"g{i // 40}" for i in range(k)]}).to_csv(
        tmp_path / "map.csv", index=False)
    args = ["audit", tmp_path / "run.npz", "--groups", tmp_path / "map.csv"]
    code, out, err = invoke(capsys, *args, "-f", "json")
    assert code == 0, err
    rows = {r["level"]: r for r in json.loads(out)["detectable_drop"]}
    assert list(rows) == ["genus", "class"]
    # only a class that happened to get all 10 right has the accuracy to fall that far
    assert rows["class"]["n_detectable"] < k // 20 and rows["class"]["median_images"] == n
    assert rows["genus"]["n_detectable"] == 10
    assert rows["genus"]["min_detectable_drop"] < 70 < rows["class"]["min_detectable_drop"]
    code, out, _ = invoke(capsys, *args)
    assert "Smallest detectable drop per level" in out and "10 of 10" in out


# -- compare -------------------------------------------------------------------------------
def test_compare_groups_table_names_the_drop_and_the_procedure(capsys, runs) -> None:
    code, out, err = invoke(capsys, "compare", "-b", *runs["base"], "-c", *runs["cand"],
                            "--groups", "fashion-mnist", "--expand", "tops")
    assert code == 0, err
    assert "Groups by group" in out and "Hierarchical test (" in out
    table = out[out.index("Groups by group"):out.index("Hierarchical test (")]
    first = next(line for line in table.splitlines() if "tops" in line or "bags" in line)
    assert "tops" in first and "drop" in first
    assert "Found by the hierarchical test" in out
    expanded = out[out.index("Classes in group tops"):]
    assert "Shirt" in expanded and "Bag" not in expanded.split("Overall accuracy")[0]


def test_compare_groups_json_holds_groups_and_the_tree(capsys, runs) -> None:
    code, out, err = invoke(capsys, "compare", "-b", *runs["base"], "-c", *runs["cand"],
                            "--groups", "fashion-mnist", "-f", "json")
    assert code == 0, err
    payload = json.loads(out)
    groups = {g["group"]: g for g in payload["groups"]}
    assert set(groups) == {"tops", "bottoms", "dresses", "footwear", "bags"}
    tops = groups["tops"]
    assert tops["verdict"] == "drop" and tops["delta"] < 0
    assert tops["delta_low"] <= tops["delta"] <= tops["delta_high"] < 0
    assert 0 <= tops["p_value"] <= tops["q_value"] <= 1
    tree = payload["tree"]
    assert tree["method"] and tree["bound"]
    nodes = {(n["level"], n["node"]): n for n in tree["nodes"]}
    assert nodes[("group", "tops")]["rejected"]
    assert nodes[("class", "Shirt")]["tested"]  # inside a found group: tested
    assert not nodes[("class", "Bag")]["tested"] or not nodes[("group", "bags")]["rejected"]
    assert {c["class"]: c["group"] for c in payload["classes"]}["Shirt"] == "tops"


def test_compare_groups_csv_out(capsys, runs, tmp_path) -> None:
    target = tmp_path / "cmp.csv"
    code, _, err = invoke(capsys, "compare", "-b", runs["base"][0], "-c", runs["cand"][0],
                          "--groups", "fashion-mnist", "-f", "csv", "--out", target)
    assert code == 0, err
    assert "group" in pd.read_csv(target).columns
    groups = pd.read_csv(target.with_name("cmp.groups.csv"))
    assert {"delta", "delta_low", "delta_high", "q_value", "verdict"} <= set(groups.columns)
    assert len(groups) == 5
    tree = pd.read_csv(target.with_name("cmp.tree.csv"))
    assert {"level", "node", "tested", "rejected"} <= set(tree.columns)
    assert target.with_name("cmp.overall.csv").exists()


def test_compare_fail_on_drop_still_gates_classes(capsys, runs) -> None:
    code, out, _ = invoke(capsys, "compare", "-b", *runs["base"], "-c", *runs["cand"],
                          "--groups", "fashion-mnist", "-f", "json", "--fail-on-drop", "5")
    assert code == 3
    payload = json.loads(out)
    assert not payload["fail_on_drop"]["passed"] and payload["groups"]


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--groups", "fashion-mnst"], "fashion-mnist"),       # a typo of a built-in name
        (["--groups", "{missing}"], "missing.csv"),
        (["--groups", "{short}"], "Bag"),                       # a class the map lacks
        (["--groups", "{unnested}"], "nest"),
        (["--groups", "fashion-mnist", "--level", "genus"], "genus"),
        (["--groups", "fashion-mnist", "--expand", "shoes"], "shoes"),
        (["--level", "group"], "--groups"),
        (["--expand", "tops"], "--groups"),
    ],
)
@pytest.mark.parametrize("command", ["audit", "compare"])
def test_bad_groups_are_one_line_and_write_nothing(capsys, runs, tmp_path, extra, needle,
                                                   command) -> None:
    short = tmp_path / "short.csv"
    pd.DataFrame({"class": FASHION[:8], "group": ["a"] * 8}).to_csv(short, index=False)
    unnested = tmp_path / "unnested.csv"
    pd.DataFrame({"class": FASHION, "kind": ["x"] * 5 + ["y"] * 5,
                  "group": ["g"] * 6 + ["h"] * 4}).to_csv(unnested, index=False)
    paths = {"missing": tmp_path / "missing.csv", "short": short, "unnested": unnested}
    target = tmp_path / "out.json"
    sides = ([runs["cand"][0]] if command == "audit"
             else ["-b", runs["base"][0], "-c", runs["cand"][0]])
    code, out, err = invoke(capsys, command, *sides, *(a.format(**paths) for a in extra),
                            "-f", "json", "--out", target)
    assert needle in one_line_error(code, out, err)
    assert not target.exists()


def test_expand_of_an_unknown_group_suggests_the_closest(capsys, runs) -> None:
    code, out, err = invoke(capsys, "audit", runs["cand"][0], "--groups", "fashion-mnist",
                            "--expand", "top")
    line = one_line_error(code, out, err)
    assert "'expand'" in line and "'top'" in line and "'tops'" in line


def test_tree_levels_pick_where_the_hierarchical_test_starts(capsys, runs, two_levels,
                                                             tmp_path) -> None:
    def tree(*extra: object) -> dict[str, set[str]]:
        code, out, err = invoke(capsys, "compare", "-b", *runs["base"], "-c", *runs["cand"],
                                "--groups", two_levels, "-f", "json", *extra)
        assert code == 0, err
        nodes = json.loads(out)["tree"]["nodes"]
        return {lv: {n["node"] for n in nodes if n["level"] == lv and n["rejected"]}
                for lv in ("kind", "group", "class")}

    everything = tree()
    assert everything["kind"] == {"worn"} and "tops" in everything["group"]
    from_groups = tree("--tree-levels", "group")
    assert from_groups["kind"] == set() and "tops" in from_groups["group"]
    assert "Shirt" in from_groups["class"]
    target = tmp_path / "out.json"
    for extra, needle in ((["--tree-levels", "genus"], "genus"),
                          (["--tree-levels", "group,kind"], "coarsest first")):
        code, out, err = invoke(capsys, "compare", "-b", runs["base"][0], "-c",
                                runs["cand"][0], "--groups", two_levels, *extra, "-f", "json",
                                "--out", target)
        assert needle in one_line_error(code, out, err)
        assert not target.exists()
    code, out, err = invoke(capsys, "compare", "-b", runs["base"][0], "-c", runs["cand"][0],
                            "--tree-levels", "group")
    assert "--groups" in one_line_error(code, out, err)


def test_tree_method_picks_the_procedure_and_says_what_it_bounds(capsys, runs) -> None:
    bounds = {}
    for method in ("fdr", "fwer", "yekutieli"):
        code, out, err = invoke(capsys, "compare", "-b", *runs["base"], "-c", *runs["cand"],
                                "--groups", "fashion-mnist", "--tree-method", method, "-f",
                                "json")
        assert code == 0, err
        tree = json.loads(out)["tree"]
        assert tree["method"] == method
        assert {(n["level"], n["node"]) for n in tree["nodes"] if n["rejected"]} >= {
            ("group", "tops")}
        bounds[method] = tree["bound"]
    assert "Meinshausen" in bounds["fwer"] and "none proven" in bounds["yekutieli"]
    assert "false discovery rate over the whole tree" in bounds["fdr"]
    code, out, err = invoke(capsys, "compare", "-b", runs["base"][0], "-c", runs["cand"][0],
                            "--tree-method", "fwer")
    assert "--groups" in one_line_error(code, out, err)
