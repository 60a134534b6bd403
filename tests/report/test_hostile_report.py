"""Hostile names from data through whole studies (issue 22, item 5).

Class names come from someone else's folder tree (a ``folder:`` dataset's class folders), from
a classes file a training command reads, or from prediction files; paths come from the user's
disk. Here two studies run with such names and paths, each beside a twin with plain names:

* a ``folder:`` study with classgap's own trainer (tiny PNGs, one epoch of an mlp), its class
  folders named like HTML, a shell command, a line break, a right-to-left override;
* a ``--train-cmd`` study whose dataset path, classes file and study directory hold ``; touch
  PWNED``, ``$(touch PWNED)`` and backticks, and whose script writes its ``argv`` down.

Each report.html must hold exactly the elements and attributes of its plain twin (names are
text and ``data-class`` values, nothing else), the terminal tables keep their shape with no
escape codes, the CSV/JSON/parquet files give the names back exactly, and no value of the
``--train-cmd`` template ever reaches a shell. (tests/cli/test_cli_hostile_names.py and
tests/report/test_report_hostile_names.py check the CLI tables, the figures and the report
built from a synthetic result.)
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from rich.cells import cell_len

from classgap._format import literal
from classgap.cli import run
from classgap.report.html import _SCRIPT

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "\u202eexe.txt" reads "txt.exe"
ZWJ = "\u200d"  # ZERO WIDTH JOINER: drawn as nothing

# Class folder names: any text but "/" (and NUL).
FOLDER_NAMES = [
    "<img src=x onerror=alert(1)>",
    '"; rm -rf ~ #',
    "a\nb",
    f"{RLO}exe.txt",
    f"ab{ZWJ}cd",
    "it's \"quoted\" & <b>&amp;",
    "<!-- x",
    "$(touch PWNED)",
    "`touch PWNED`",
]
# A classes file holds any text.
CLASS_NAMES = [*FOLDER_NAMES, "</script><script>alert(1)</script>", "x</style><!--<script>",
               "ok\r\nnext\tline"]
# Paths of the --train-cmd study: the dataset folder, the classes file and the study directory.
SHELL = ["; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "' \"; touch PWNED #"]

# 3 epochs of an mlp: the larger learning rate is selected on validation (the report then has
# its per-class table), the same on both twins.
FAST = ["--set", "model.name=mlp", "--set", "train.epochs=3", "--set", "optim.batch_size=8",
        "--set", "train.threads=1", "--set", "train.precision=fp32", "--set",
        "train.progress=false", "--axis", "optim.lr=0.01,0.1", "--seeds", "2", "--workers", "1"]


@dataclass(frozen=True)
class Study:
    """One study run through the CLI: its directory and what ``classgap study`` printed."""

    path: Path
    names: list[str]
    out: str
    err: str


def invoke(*args: object) -> tuple[int, str, str]:
    """``classgap ARGS`` with stdout and stderr captured (module fixtures have no capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _folder_dataset(root: Path, names: list[str]) -> None:
    """10 6x6 PNGs per class; the k-th class in folder order is the k-th brightness, so a
    dataset with other names holds the same arrays in the same order."""
    for k, name in enumerate(sorted(names)):
        (root / name).mkdir(parents=True)
        rng = np.random.default_rng(k)
        for i, img in enumerate((25 * k + rng.integers(0, 30, (10, 6, 6))).astype(np.uint8)):
            Image.fromarray(img, "L").save(root / name / f"{i}.png")


def _folder_study(base: Path, names: list[str], parent: str) -> Study:
    data = base / parent / "data"
    _folder_dataset(data, names)
    code, out, err = invoke("study", "--set", f"data.dataset=folder:{data}", *FAST,
                            "--out", base / parent / "study")
    assert code == 0, err
    return Study(base / parent / "study", sorted(names), out, err)


# A --train-cmd "trainer": writes down its arguments, reads the classes file and writes
# predictions that depend on the class index only (the plain twin gets the same numbers);
# any weight decay > 0 raises every class but class 1, which pays.
ARGV_TRAINER = """
import json, os, sys
import numpy as np
dataset, names_file, l2, seed, out = sys.argv[1:]
with open(os.path.join(out, "argv.json"), "w", encoding="utf-8") as f:
    json.dump(sys.argv[1:], f)
with open(names_file, encoding="utf-8") as f:
    names = json.load(f)
assert os.path.isdir(dataset.removeprefix("folder:")), dataset
k, l2, seed = len(names), float(l2), int(seed)
rng = np.random.default_rng(1000 * seed + int(10 * l2))
for split, n in (("val", 20), ("test", 40)):
    y = np.repeat(np.arange(k), n)
    acc = np.full(k, 0.95 if l2 > 0 else 0.8)
    if l2 > 0:
        acc[1] = 0.3
    pred = np.where(rng.random(y.size) < acc[y], y, (y + 1) % k)
    probs = np.full((y.size, k), 0.1 / (k - 1))
    probs[np.arange(y.size), pred] = 0.9
    np.savez(os.path.join(out, split + ".npz"), y_true=y, probs=probs, classes=np.array(names))
"""


def _cmd_study(base: Path, names: list[str], parts: list[str]) -> Study:
    """A --train-cmd study whose dataset path, classes file and directory hold ``parts``."""
    data = base / f"data{parts[0]}" / f"set{parts[1]}"
    data.mkdir(parents=True)
    names_file = base / f"names{parts[2]}" / f"classes{parts[3]}.json"
    names_file.parent.mkdir()
    names_file.write_text(json.dumps(names), encoding="utf-8")
    script = base / "train.py"
    script.write_text(ARGV_TRAINER, encoding="utf-8")
    cmd = (f"{sys.executable} {script} {{data.dataset}} {{names}} {{optim.weight_decay}} "
           "{seed} {out}")
    study = base / f"study{parts[1]}{parts[0]}"
    code, out, err = invoke("study", "--set", f"data.dataset=folder:{data}", "--set",
                            f"cmd.names={names_file}", "--axis", "optim.weight_decay=0,1",
                            "--seeds", "2", "--workers", "1", "--train-cmd", cmd,
                            "--out", study)
    assert code == 0, err
    return Study(study, names, out, err)


@pytest.fixture(scope="module")
def folder_studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Study]:
    """The plain and the hostile folder study: 4 tiny runs each (about 5 s)."""
    base = tmp_path_factory.mktemp("folder")
    plain = [f"class{k}" for k in range(len(FOLDER_NAMES))]
    return {"plain": _folder_study(base, plain, "plain"),
            "hostile": _folder_study(base, FOLDER_NAMES, '"><svg onload=alert(1)>' + RLO)}


@pytest.fixture(scope="module")
def cmd_studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Study]:
    """The plain and the hostile --train-cmd study, run from a folder of their own: any
    ``touch PWNED`` that reached a shell leaves a file there (or in their paths)."""
    base = tmp_path_factory.mktemp("cmd")
    plain = [f"class{k}" for k in range(len(CLASS_NAMES))]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)
        return {"plain": _cmd_study(base / "plain", plain, ["0", "1", "2", "3"]),
                "hostile": _cmd_study(base / "hostile", CLASS_NAMES, SHELL)}


@pytest.fixture(params=["folder", "cmd"])
def studies(request: pytest.FixtureRequest) -> dict[str, Study]:
    return request.getfixturevalue(f"{request.param}_studies")


# --------------------------------------------------------------------------- report.html


class _Page(HTMLParser):
    """What a page is made of: its start tags with their attribute names, the bodies of its
    scripts and styles, its text and every attribute value."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.markup: Counter[tuple[str, tuple[str, ...]]] = Counter()
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self.text: list[str] = []
        self.values: list[tuple[str, str, str]] = []
        self.comments: list[str] = []
        self._raw: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.markup[tag, tuple(sorted(name for name, _ in attrs))] += 1
        self.values += [(tag, name, value or "") for name, value in attrs]
        if tag in self.raw:
            self._raw = tag
            self.raw[tag].append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            self.raw[self._raw][-1] += data
        else:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_decl(self, decl: str) -> None:
        self.markup[f"!{decl}", ()] += 1

    def unknown_decl(self, data: str) -> None:
        self.markup[f"![{data}", ()] += 1

    def handle_pi(self, data: str) -> None:
        self.markup[f"?{data}", ()] += 1


def _page(study: Study) -> _Page:
    return _Page((study.path / "report.html").read_text(encoding="utf-8"))


def test_report_writes_only_its_own_markup(studies: dict[str, Study]) -> None:
    plain, hostile = _page(studies["plain"]), _page(studies["hostile"])
    # The same elements with the same attributes, as many of each; the same script and
    # style, byte for byte (no data goes into them); no comment a name could open.
    assert hostile.markup == plain.markup
    assert hostile.raw == plain.raw and hostile.raw["script"] == [_SCRIPT]
    assert hostile.comments == plain.comments == []
    assert not [(t, a) for t, a, _ in hostile.values if a.startswith("on")]
    assert all(v.startswith("data:image/png;base64,") for t, a, v in hostile.values
               if a in ("src", "href"))


def test_report_shows_names_as_one_line_of_text(studies: dict[str, Study]) -> None:
    study = studies["hostile"]
    page = _page(study)
    text = "".join(page.text)
    for name in study.names:  # the class-aware table lists every class
        assert literal(name) in text, name
    # No name breaks a line or turns the text around; data-class keeps each name exactly.
    assert RLO not in text and "\r" not in text
    assert "\\u202eexe.txt" in text and "a\\nb" in text
    data_class = [v for _, a, v in page.values if a == "data-class"]
    assert sorted(data_class) == sorted(study.names)  # "\r\n" too, which HTML reads as "\n"


def test_report_provenance_shows_paths_as_literal_text(folder_studies) -> None:
    """The dataset path (in the footer) breaks out of nothing and turns nothing around."""
    page = _page(folder_studies["hostile"])
    footer = [t for t in page.text if "folder:" in t]
    assert len(footer) == 1 and '"><svg onload=alert(1)>\\u202e/data' in footer[0]
    assert ("svg", ("onload",)) not in page.markup


# --------------------------------------------------------------------------- files


def _csv_column(path: Path, column: str) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row[column] for row in csv.DictReader(f)]


def test_files_give_the_names_back_exactly(studies: dict[str, Study]) -> None:
    study = studies["hostile"]
    names, path = study.names, study.path
    summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    assert [c["class"] for c in summary["classes"]] == names
    assert _csv_column(path / "classes.csv", "class") == names
    assert pd.read_csv(path / "classes.csv", keep_default_na=False)["class"].tolist() == names
    assert pd.read_parquet(path / "classes.parquet")["class"].tolist() == names
    per_class = _csv_column(path / "per_class.csv", "class")
    assert per_class == names * (len(per_class) // len(names))
    pairs = (_csv_column(path / "confusion_shifts.csv", "true")
             + _csv_column(path / "confusion_shifts.csv", "predicted"))
    assert pairs and set(pairs) <= set(names)


# --------------------------------------------------------------------------- terminal


def _tables(out: str) -> list[list[str]]:
    """The rich tables of ``out``, each as its lines (from ┏ to └)."""
    tables: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith("┏"):
            tables.append([])
        if tables and (not tables[-1] or not tables[-1][-1].startswith("└")):
            tables[-1].append(line)
    return tables


def _check_tables(out: str) -> list[list[str]]:
    """The tables of ``out``, checked: every line as wide as the frame (no name broke a row or
    widened it), no escape code, no right-to-left override."""
    assert "\x1b" not in out and RLO not in out
    tables = _tables(out)
    for table in tables:
        assert table[-1].startswith("└"), table
        assert {cell_len(line) for line in table} == {cell_len(table[0])}, table
    return tables


def test_terminal_tables_keep_their_shape(studies: dict[str, Study]) -> None:
    study = studies["hostile"]
    assert "\x1b" not in study.err
    code, report_out, err = invoke("report", study.path)
    assert code == 0, err
    code, plan_out, err = invoke("plan-seeds", study.path)
    assert code == 0, err
    for out in (study.out, report_out):
        _check_tables(out)
    (plan,) = _check_tables(plan_out)  # a row per class
    rows = [line for line in plan if line.startswith("│")]
    assert sorted(line.split("│")[1].strip() for line in rows) \
        == sorted(literal(n) for n in study.names)


# --------------------------------------------------------------------------- --train-cmd


def test_train_cmd_values_arrive_as_single_arguments(cmd_studies: dict[str, Study]) -> None:
    study = cmd_studies["hostile"]
    base = study.path.parent
    names_file = base / f"names{SHELL[2]}" / f"classes{SHELL[3]}.json"
    argvs = [json.loads(p.read_text(encoding="utf-8"))
             for p in sorted(study.path.glob("runs/*/argv.json"))]
    assert len(argvs) == 4
    for dataset, names, l2, seed, out in argvs:
        assert dataset == f"folder:{base / f'data{SHELL[0]}' / f'set{SHELL[1]}'}"
        assert names == str(names_file)
        assert (l2, seed) in {("0.0", "0"), ("0.0", "1"), ("1.0", "0"), ("1.0", "1")}
        assert Path(out).is_relative_to((study.path / "runs").resolve())
    # Nothing ran "touch": no PWNED anywhere under the studies, nor where pytest runs.
    assert not list(base.parent.rglob("PWNED")) and not Path("PWNED").exists()


# --------------------------------------------------------------------------- --classes files


@pytest.mark.parametrize("suffix", [".json", ".txt"])
def test_audit_with_a_classes_file(capsys, tmp_path: Path, suffix: str) -> None:
    from classgap.audit.io import write_predictions

    # A text file has one name per line: names with a line break need JSON.
    names = CLASS_NAMES if suffix == ".json" else [
        n for n in CLASS_NAMES if "\n" not in n and "\r" not in n]
    k = len(names)
    y = np.repeat(np.arange(k), 10)
    write_predictions(tmp_path / "run.npz", y_true=y, y_pred=(y + (y % 3 == 0)) % k)
    classes = tmp_path / f"names{SHELL[1]}{suffix}"
    classes.write_text(json.dumps(names) if suffix == ".json" else "\n".join(names) + "\n",
                       encoding="utf-8")
    assert run(["audit", str(tmp_path / "run.npz"), "--classes", str(classes)]) == 0
    out = capsys.readouterr().out
    assert _check_tables(out)
    assert run(["audit", str(tmp_path / "run.npz"), "--classes", str(classes),
                "--format", "json"]) == 0
    assert [c["class"] for c in json.loads(capsys.readouterr().out)["classes"]] == names
    assert run(["audit", str(tmp_path / "run.npz"), "--classes", str(classes),
                "--format", "csv", "--out", str(tmp_path / "audit.csv")]) == 0
    assert _csv_column(tmp_path / "audit.csv", "class") == names


# --------------------------------------------------------------------------- prediction files


MISSING_LIKE = ["None", "NA", "null", "nan", "N/A", "", "cat"]  # pandas reads all but cat as NaN


def test_prediction_csv_keeps_classes_named_like_missing_values(capsys, tmp_path: Path) -> None:
    """A class called "None" or "NA" is a name: a CSV written by classgap reads back the same;
    an empty cell is still a missing label."""
    from classgap.audit.io import read_predictions, write_predictions

    names = [n for n in MISSING_LIKE if n]
    y = np.repeat(np.arange(len(names)), 4)
    labels = np.array(names)[y]
    probs = np.full((y.size, len(names)), 0.5 / (len(names) - 1))
    probs[np.arange(y.size), y] = 0.5
    path = write_predictions(tmp_path / "run.csv", y_true=labels, y_pred=np.roll(labels, 1),
                             probs=probs, classes=names)  # prob_<name> columns give the order
    pred = read_predictions(path)
    assert pred.classes == tuple(names) and np.array_equal(pred.y_true, y)
    assert np.array_equal(pred.y_pred, np.roll(y, 1))
    assert run(["audit", str(path), "--format", "json"]) == 0
    assert [c["class"] for c in json.loads(capsys.readouterr().out)["classes"]] == names
    # An empty label cell is still missing, named as such.
    frame = pd.read_csv(path, keep_default_na=False)
    frame.loc[2, "y_true"] = ""
    frame.to_csv(tmp_path / "gap.csv", index=False)
    assert run(["audit", str(tmp_path / "gap.csv")]) == 1
    err = capsys.readouterr().err
    assert "y_true" in err and len(err.strip().splitlines()) == 1
