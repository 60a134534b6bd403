"""Class names are text everywhere (issue 20, item 9): names that look like rich markup, HTML,
mathtext, a hidden matplotlib label, a line break, a colour code or a paragraph go through
every table, every file and every message of the CLI as they are named.

Terminal tables show :func:`classgap._format.literal` of a name (a newline as ``\\n``, ESC as
``\\x1b``); JSON and CSV hold the name exactly.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classgap._format import literal
from classgap.audit.io import write_predictions
from classgap.cli import run

HOSTILE = [
    "[background]",                          # rich: a style tag, printed as nothing
    "b [x]",                                 # printed as "b"
    "[/]",                                   # rich.errors.MarkupError
    "c[/b]",                                 # MarkupError too
    "_background",                           # matplotlib hides a legend label starting with _
    "$x$",                                   # matplotlib mathtext
    "a\nb",                                  # a line break inside a table row
    "<img src=x onerror=alert(1)>",          # HTML
    "</script><script>alert(1)</script>",    # HTML inside a script block
    "\x1b[31mred\x1b[0m",                    # a terminal colour code
    "L" * 40 + "R" * 40,                     # 80 characters
]
K = len(HOSTILE)
DROPPING = 1  # "b [x]" is the class that pays


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def first_column(out: str, title: str) -> list[str]:
    """The first column of the rich table whose title starts with ``title``, one entry per
    row: a cell folded onto several lines is joined back (its other cells are blank)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    body = next(i for i in range(start, len(lines)) if lines[i].startswith("┡")) + 1
    cells: list[str] = []
    for line in lines[body:]:
        if not line.startswith("│"):
            break
        parts = line.split("│")[1:-1]
        if all(not p.strip() for p in parts[1:]) and cells:
            cells[-1] += parts[0].strip()  # the fold of a long name
        else:
            cells.append(parts[0].strip())
    return cells


def predictions(path: Path, seed: int, acc: np.ndarray, n: int = 40) -> Path:
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(K), n)
    hit = rng.random(y_true.size) < acc[y_true]
    write_predictions(path, y_true=y_true, y_pred=np.where(hit, y_true, (y_true + 1) % K),
                      classes=HOSTILE)
    return path


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    base = np.full(K, 0.9)
    cand = base.copy()
    cand[DROPPING] = 0.2
    return (predictions(tmp_path / "base.npz", 0, base),
            predictions(tmp_path / "cand.npz", 1, cand))


def test_names_survive_the_helpers() -> None:
    assert literal("a\nb") == "a\\nb" and literal("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert literal("[/] $x$ <b>") == "[/] $x$ <b>"  # markup is the renderer's to escape


def test_audit_table_shows_every_name(capsys, runs) -> None:
    code, out, err = invoke(capsys, "audit", runs[0])
    assert code == 0, err
    assert first_column(out, "Per-class accuracy") == [literal(n) for n in HOSTILE]
    assert "\x1b" not in out  # a name cannot colour the terminal


def test_compare_table_names_the_class_that_dropped(capsys, runs) -> None:
    code, out, err = invoke(capsys, "compare", "-b", runs[0], "-c", runs[1],
                            "--fail-on-drop", "5")
    assert code == 3, err
    names = first_column(out, "Per-class change")
    assert sorted(names) == sorted(literal(n) for n in HOSTILE)
    assert names[0] == "b [x]"  # sorted worst drop first; it used to print as "b"
    row = next(line for line in out.splitlines() if line.startswith("│ b [x] "))
    assert row.rstrip().endswith("drop    │")
    assert "b [x] (" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["audit", "compare"])
def test_json_and_csv_hold_the_names_exactly(capsys, runs, tmp_path, command) -> None:
    files = [runs[0]] if command == "audit" else ["-b", runs[0], "-c", runs[1]]
    code, out, err = invoke(capsys, command, *files, "--format", "json")
    assert code == 0, err
    assert [c["class"] for c in json.loads(out)["classes"]] == HOSTILE
    target = tmp_path / f"{command}.csv"
    code, _, err = invoke(capsys, command, *files, "--format", "csv", "--out", target)
    assert code == 0, err
    table = pd.read_csv(target, keep_default_na=False)
    assert sorted(table["class"]) == sorted(HOSTILE)


def test_table_written_to_a_file(capsys, runs, tmp_path) -> None:
    target = tmp_path / "[out]" / "audit.txt"  # the path is quoted in "wrote ..."
    code, out, err = invoke(capsys, "audit", runs[0], "--out", target)
    assert code == 0, err
    assert first_column(target.read_text(), "Per-class accuracy") == [literal(n) for n in HOSTILE]
    assert "wrote" in out and "[out]/audit.txt" in out  # rich would print "wrote /…/audit.txt"


def test_errors_quoting_input_stay_one_plain_line(capsys, runs, tmp_path) -> None:
    # A usage error quotes the bad value: it used to be parsed as markup (MarkupError).
    code, _, err = invoke(capsys, "audit", runs[0], "--format", "c[/b]")
    assert code == 1 and "'c[/b]' is not one of" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # A missing file whose name holds a bracket, a colour code and a newline.
    code, _, err = invoke(capsys, "audit", tmp_path / "no[/]such\x1b[31mfile\n.npz")
    assert code == 1 and "no[/]such" in err and "file does not exist" in err
    assert "\x1b" not in err and len(err.strip().splitlines()) == 1


def test_data_info_of_a_folder_with_hostile_class_folders(capsys, tmp_path) -> None:
    """A folder: dataset's class names are its folder names: text too ("/" cannot occur)."""
    from PIL import Image

    names = sorted(n for n in HOSTILE if "/" not in n)
    rng = np.random.default_rng(0)
    for name in names:
        (tmp_path / "[data]" / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (6, 6), dtype=np.uint8)).save(
                tmp_path / "[data]" / name / f"{i}.png")
    code, out, err = invoke(capsys, "data", "info", f"folder:{tmp_path / '[data]'}")
    assert code == 0, err
    assert first_column(out, "Per-class counts")[:-1] == [literal(n) for n in names]
    assert "[data]" in out and "\x1b" not in out
    code, out, err = invoke(capsys, "data", "info", f"folder:{tmp_path / '[data]'}", "-f", "json")
    assert code == 0, err
    assert next(iter(json.loads(out)["splits"].values()))["classes"] == names


# A trainer for `classgap study --train-cmd`: the regularizer (any l2 > 0) raises every class
# to 95% but class 1 ("b [x]") falls to 30%, so validation selects it and "b [x]" pays.
TRAINER = """
import json, sys
import numpy as np
names = json.loads(open(sys.argv[1]).read())
l2, seed, out = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
k = len(names)
rng = np.random.default_rng(1000 * seed + int(10 * l2))
for split, n in (("val", 20), ("test", 40)):
    y = np.repeat(np.arange(k), n)
    acc = np.full(k, 0.95 if l2 > 0 else 0.8)
    if l2 > 0:
        acc[1] = 0.3
    hit = rng.random(y.size) < acc[y]
    pred = np.where(hit, y, (y + 1) % k)
    probs = np.full((y.size, k), 0.1 / (k - 1))
    probs[np.arange(y.size), pred] = 0.9
    np.savez(f"{out}/{split}.npz", y_true=y, probs=probs, classes=np.array(names))
"""

# The same trainer failing as a torch error looks in a colouring terminal.
FAILING = """
import sys
sys.stderr.write("Traceback (most recent call last):\\n  ...\\n"
                 "\\x1b[1;31mRuntimeError\\x1b[0m: CUDA out of memory [/] c[/b]\\n")
sys.exit(1)
"""


def _study_args(tmp_path: Path, script: str, out: str) -> list[object]:
    (tmp_path / "train.py").write_text(script)
    (tmp_path / "names.json").write_text(json.dumps(HOSTILE))
    cmd = (f"{sys.executable} {tmp_path / 'train.py'} {tmp_path / 'names.json'} "
           "{optim.weight_decay} {seed} {out}")
    return ["study", "--set", "data.dataset=digits", "--axis", "optim.weight_decay=0,1",
            "--seeds", "2", "--workers", "1", "--train-cmd", cmd, "--out", tmp_path / out]


def test_study_report_and_plan_seeds(capsys, tmp_path) -> None:
    """The terminal summary, summary.json, the CSV files, report.html and plan-seeds of a study
    whose classes have hostile names (4 tiny runs of a numpy 'trainer')."""
    code, out, err = invoke(capsys, *_study_args(tmp_path, TRAINER, "study"))
    assert code == 0, err
    assert first_column(out, "Classes that pay") == ["b [x]"]
    study = tmp_path / "study"
    summary = json.loads((study / "summary.json").read_text())
    assert [c["class"] for c in summary["classes"]] == HOSTILE
    for name in ("classes", "per_class"):
        table = pd.read_csv(study / f"{name}.csv", keep_default_na=False)
        assert set(table["class"]) == set(HOSTILE)
    assert pd.read_parquet(study / "classes.parquet")["class"].tolist() == HOSTILE
    page = (study / "report.html").read_text()
    assert page.count("<script") == 1 and "onerror=alert" not in page.replace(
        "onerror=alert(1)&gt;", "")
    data_class = re.findall(r' data-class="([^"]*)"', page)
    assert sorted(html.unescape(v) for v in data_class) == sorted(HOSTILE)

    code, out2, err = invoke(capsys, "report", study)
    assert code == 0, err
    assert first_column(out2, "Classes that pay") == ["b [x]"]

    code, out3, err = invoke(capsys, "plan-seeds", study)
    assert code == 0, err
    assert first_column(out3, "Seed plan") == [literal(n) for n in HOSTILE]
    assert "\x1b" not in out + out2 + out3
    code, out4, err = invoke(capsys, "plan-seeds", study, "--format", "json")
    assert code == 0, err
    assert [c["class"] for c in json.loads(out4)["classes"]] == HOSTILE


def test_a_quoted_worker_error_loses_its_colour_codes(capsys, tmp_path) -> None:
    code, _, err = invoke(capsys, *_study_args(tmp_path, FAILING, "failing"))
    assert code == 1
    assert "RuntimeError: CUDA out of memory [/] c[/b]" in err
    assert "\x1b" not in err and "[1;31m" not in err
    assert len(err.strip().splitlines()) == 1
    # The store records the error without the codes too (notes and reports quote it).
    from classgap.sweep.store import Store

    with Store(tmp_path / "failing") as store:
        errors = store.status()["error"].tolist()
    assert len(errors) == 4 and all("RuntimeError: CUDA out of memory" in e for e in errors)
    assert not any("\x1b" in e for e in errors)
