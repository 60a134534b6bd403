"""Which group pays (issue 23, items 1 and 6): groups in ``classgap study`` and ``report``.

A numpy script trained through ``--train-cmd`` (fast, deterministic) makes a study where the
selected strength lifts footwear and bags and sinks every top: the study records its group
map in study.json, the report leads with the group that pays and opens to its classes, a
moved study reports the same groups, ``report --groups`` overrides the map for one report.
Then hostile group names through the HTML, and the analysis's words for a group within noise.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from classgap.analysis import RunRecord, analyze, summary_dict
from classgap.analysis.groups import Grouping
from classgap.audit import Predictions
from classgap.audit.groups import GroupMap
from classgap.cli import run
from classgap.errors import ClassgapError
from classgap.pipeline import plan_study, study_grouping
from classgap.report import print_summary, write_report
from classgap.report.html import _SCRIPT

CLASSES = ["T-shirt", "Shirt", "Coat", "Sneaker", "Sandal", "Bag"]
GROUP = ["tops", "tops", "tops", "footwear", "footwear", "bags"]
KIND = ["clothing", "clothing", "clothing", "accessories", "accessories", "accessories"]

# argv: strength, seed, out. At strength 1 the tops lose 15 points and the others gain 25:
# validation selects it, and tops pay. 400 images a class per split.
SCRIPT = f'''
import sys
import numpy as np
s, seed, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
classes = np.array({CLASSES!r})
rng = np.random.default_rng([seed, int(10 * s)])
y = np.repeat(np.arange(6), 400)
acc = np.where(y < 3, 0.8 - 0.15 * s, 0.6 + 0.25 * s)
for split in ("val", "test"):
    hit = rng.random(y.size) < acc
    pred = np.where(hit, y, (y + rng.integers(1, 6, y.size)) % 6)
    np.savez(f"{{out}}/{{split}}.npz", y_true=y, y_pred=pred, classes=classes)
'''


def invoke(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), captured.err


def _study_args(tmp_path: Path) -> list[object]:
    (tmp_path / "train.py").write_text(SCRIPT)
    cmd = f"{sys.executable} {tmp_path / 'train.py'} {{s}} {{seed}} {{out}}"
    return ["study", "--axis", "cmd.s=0,1", "--seeds", "2", "--train-cmd", cmd,
            "--workers", "1"]


def _write_map(path: Path, **levels: list[str]) -> Path:
    rows = ["class," + ",".join(levels)]
    rows += [",".join([c, *(v[i] for v in levels.values())]) for i, c in enumerate(CLASSES)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _groups(study: Path) -> dict[str, Any]:
    return json.loads((study / "summary.json").read_text())["groups"]


def _row(groups: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in groups["groups"] if r["group"] == name)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A grouped study through the CLI: its directory and what it printed."""
    tmp = tmp_path_factory.mktemp("grouped")
    groups = _write_map(tmp / "groups.csv", group=GROUP)
    out = io.StringIO()  # a module fixture cannot take capsys
    with contextlib.redirect_stdout(out):
        code = run([str(a) for a in [*_study_args(tmp), "--groups", groups,
                                     "--out", tmp / "study"]])
    assert code == 0, out.getvalue()
    return tmp / "study", " ".join(out.getvalue().split())


def test_the_study_says_which_group_pays(study: tuple[Path, str]) -> None:
    path, out = study
    assert "Group that pays (group, BH over its 3 groups): tops -" in out
    assert "(3 classes); worst class inside:" in out
    groups = _groups(path)
    assert groups["levels"] == ["group"] and groups["source"].endswith("groups.csv")
    tops = _row(groups, "tops")
    assert tops["verdict"] == "drop" and tops["q_value"] < 0.05
    assert tops["delta_low"] <= tops["delta"] < tops["delta_high"] < 0
    assert -0.2 < tops["delta"] < -0.1  # 15 points, pooled over the tops' images
    assert _row(groups, "footwear")["verdict"] == "gain"
    # the tree test finds tops, then the classes inside it
    found = {(n["level"], n["node"]) for n in groups["tree"] if n["rejected"]}
    assert ("group", "tops") in found and ("class", "Shirt") in found
    assert [m["class"] for m in groups["map"]] == CLASSES
    # every group and level in the CSV files
    csv = (path / "groups.csv").read_text()
    assert all(g in csv for g in ("tops", "footwear", "bags"))
    assert (path / "group_tree.csv").is_file() and (path / "group_map.csv").is_file()


def test_the_report_opens_groups_to_their_classes(study: tuple[Path, str]) -> None:
    page = (study[0] / "report.html").read_text()
    section = page.split('id="group-tree"')[1].split("</footer>")[0]
    assert section.index('data-group="tops"') < section.index('data-group="footwear"')
    tops = section.split('data-group="tops"')[1].split("</details>")[0]
    assert all(f'data-class="{c}"' in tops for c in ("T-shirt", "Shirt", "Coat"))
    assert "Sneaker" not in tops
    assert ">pays<" in tops and ">found<" in tops
    assert 'id="fig-groups"' in page and 'id="group-headline"' in page


def test_study_json_keeps_the_map_when_the_study_moves(
        capsys: pytest.CaptureFixture[str], study: tuple[Path, str], tmp_path: Path) -> None:
    path = study[0]
    recorded = json.loads((path / "study.json").read_text())["grids"][-1]["groups"]
    assert recorded["levels"] == ["group"]
    assert recorded["classes"]["Shirt"] == {"group": "tops"}
    moved = tmp_path / "moved"
    shutil.copytree(path, moved)
    (path.parent / "groups.csv").rename(path.parent / "gone.csv")  # the map file is gone
    try:
        code, out, err = invoke(capsys, "report", moved)
    finally:
        (path.parent / "gone.csv").rename(path.parent / "groups.csv")
    assert code == 0, err
    assert "Group that pays (group, BH over its 3 groups): tops" in out
    assert _groups(moved)["groups"] == _groups(path)["groups"]


def test_report_groups_overrides_for_one_report(capsys: pytest.CaptureFixture[str],
                                                study: tuple[Path, str], tmp_path: Path) -> None:
    moved = tmp_path / "study"
    shutil.copytree(study[0], moved)
    recorded = (moved / "study.json").read_text()
    two = _write_map(tmp_path / "two.csv", kind=KIND, group=GROUP)
    code, out, err = invoke(capsys, "report", moved, "--groups", two)
    assert code == 0, err
    groups = _groups(moved)
    assert groups["levels"] == ["kind", "group"]
    assert _row(groups, "clothing")["parent"] in (None, "")
    assert _row(groups, "tops")["parent"] == "clothing"
    assert 'data-level="kind"' in (moved / "report.html").read_text()
    assert (moved / "study.json").read_text() == recorded  # for that report only

    code, out, err = invoke(capsys, "report", moved, "--groups", "none")
    assert code == 0, err
    assert _groups(moved) is None and "Group that pays" not in out
    assert not (moved / "groups.csv").exists()
    assert 'id="group-tree"' not in (moved / "report.html").read_text()

    code, out, err = invoke(capsys, "report", moved)  # the recorded map again
    assert code == 0, err
    assert _groups(moved)["levels"] == ["group"] and "Group that pays" in out


@pytest.mark.parametrize("content, needle", [
    (None, "(no such file)"),
    ("class,group\nT-shirt,tops\n", "'Shirt'"),  # a class the study has, not in the map
    ("class,family,genus\nT-shirt,a,x\nShirt,b,x\nCoat,b,y\nSneaker,b,y\nSandal,b,y\n"
     "Bag,b,y\n", "must nest"),
])
def test_a_bad_map_is_one_line_before_the_report_changes(
        capsys: pytest.CaptureFixture[str], study: tuple[Path, str], tmp_path: Path,
        content: str | None, needle: str) -> None:
    moved = tmp_path / "study"
    shutil.copytree(study[0], moved)
    before = (moved / "report.html").read_bytes()
    spec = tmp_path / "map.csv"
    if content is not None:
        spec.write_text(content)
    code, _, err = invoke(capsys, "report", moved, "--groups", spec)
    assert code == 1 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (moved / "report.html").read_bytes() == before


@pytest.mark.parametrize("spec, needle", [("nope", "'groups' must be a built-in grouping"),
                                          ("missing.csv", "missing.csv")])
def test_a_bad_spec_stops_the_study_before_anything_exists(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, spec: str, needle: str) -> None:
    code, out, err = invoke(capsys, *_study_args(tmp_path), "--groups", tmp_path / spec
                            if spec.endswith(".csv") else spec, "--out", tmp_path / "x")
    assert code == 1 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not out
    assert not (tmp_path / "x").exists()


def _fake_cifar100(root: Path) -> Path:
    """A CIFAR-100 folder in the real layout: meta, and a test batch whose fine labels carry
    their coarse labels (fine k in superclass k % 20)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    fine = np.arange(200) % 100
    for name, obj in (("meta", {b"fine_label_names": [f"f{k}".encode() for k in range(100)],
                                b"coarse_label_names": [f"c{j}".encode() for j in range(20)]}),
                      ("test", {b"fine_labels": fine.tolist(), b"coarse_labels":
                                (fine % 20).tolist(), b"data": np.zeros((200, 3072), np.uint8),
                                b"filenames": [b"x.png"] * 200, b"batch_label": b"fake"})):
        with (folder / name).open("wb") as fh:
            pickle.dump(obj, fh, protocol=2)
    return root


def test_which_grouping_a_study_records(tmp_path: Path) -> None:
    def grouping(dataset: str, spec: str | None = None, **kw: Any) -> Grouping | None:
        where = [f"data.data_dir={tmp_path}"] if dataset == "cifar100" else []
        plan = plan_study(axes=["aug.flip=0,1"], overrides=[f"data.dataset={dataset}", *where])
        return study_grouping(plan, spec, **kw)

    fashion = grouping("fashion-mnist")
    assert fashion is not None and fashion.source == "fashion-mnist (built in)"
    assert fashion.map.members("group", "tops").tolist() == [0, 2, 4, 6]
    _fake_cifar100(tmp_path)
    cifar = grouping("cifar100")
    assert cifar is not None and cifar.map.levels == ("superclass",)
    assert cifar.map.groups("superclass")[:2] == ("c0", "c1") and cifar.map.n_classes == 100
    assert grouping("fashion-mnist", "none") is None
    assert grouping("digits") is None  # a dataset without a grouping of its own
    assert grouping("fashion-mnist", train_cmd="python train.py {seed} {out}") is None
    # Fashion-MNIST's classes are known before training: a class the map lacks fails now
    short = _write_map(tmp_path / "short.csv", group=GROUP)
    with pytest.raises(ClassgapError, match="T-shirt/top"):
        grouping("fashion-mnist", str(short))


# --------------------------------------------------------------------------- the analysis


def _records(drop: float, names: list[str], seeds: int = 2,
             change: list[float] | None = None) -> list[RunRecord]:
    """Two strengths; at 1 the first three classes lose ``drop``, the others gain 20 points
    (or each class changes by its ``change``)."""
    y = np.repeat(np.arange(6), 300)
    change = [-drop] * 3 + [0.2] * 3 if change is None else change
    out = []
    for s in (0.0, 1.0):
        for seed in range(seeds):
            rng = np.random.default_rng([seed, int(s)])
            acc = np.where(y < 3, 0.8, 0.6) + np.asarray(change)[y] * s
            pred = np.where(rng.random(y.size) < acc, y, (y + 1) % 6)
            p = Predictions.from_arrays(y, y_pred=pred, classes=names)
            out.append(RunRecord({"x": s}, s, seed, p, p))
    return out


def _grouping(names: list[str], groups: list[str], source: str = "groups.csv") -> Grouping:
    return Grouping(GroupMap.from_columns(names, {"group": groups}), source)


def test_a_group_within_noise_is_said_so() -> None:
    result = analyze(_records(0.0, CLASSES), axis="x", reference=0.0,
                     groups=_grouping(CLASSES, GROUP))
    assert result.groups is not None and result.groups.paying().empty
    console = Console(record=True, width=200)
    print_summary(result, console)
    text = console.export_text()
    assert "No group drops as a whole (q < 0.05, BH over the groups of each level); the " \
        "worst, tops (group) " in text
    assert "is within seed noise." in text
    json.dumps(summary_dict(result), allow_nan=False)  # strict JSON, every group


def test_a_class_that_pays_inside_a_group_that_gains() -> None:
    """The default study's case: Shirt pays while its tops gain as a whole; the line says
    that the group gains and names the class the tree test finds inside it."""
    result = analyze(_records(0.0, CLASSES, seeds=3, change=[0.15, -0.12, 0.15, 0.1, 0.1, 0.1]),
                     axis="x", reference=0.0, groups=_grouping(CLASSES, GROUP))
    assert result.groups is not None and result.groups.paying().empty
    console = Console(record=True, width=300)
    print_summary(result, console)
    text = " ".join(console.export_text().split())
    assert "No group drops as a whole (q < 0.05, BH over the groups of each level); inside " \
        "tops (+" in text
    assert ": it gains as a whole) the tree test finds Shirt paying: -" in text


def test_no_group_is_compared_when_validation_keeps_the_reference() -> None:
    # strength 1 costs the tops 50 points: validation keeps the reference
    result = analyze(_records(0.5, CLASSES), axis="x", reference=0.0,
                     groups=_grouping(CLASSES, GROUP))
    assert result.selected == result.reference and result.groups is None
    assert any("no group is compared" in n for n in result.notes)


HOSTILE_CLASSES = ["<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>",
                   "a\nb", "it's \"q\" & <b>", "\u202eexe.txt", "<!-- x"]
HOSTILE_GROUPS = ["<script>alert(1)</script>"] * 3 + ['x" onmouseover="alert(1)', "&amp; co",
                                                      "</details><details open>"]


class _Tags(HTMLParser):
    """Every start tag with its attribute names, and the values of some attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.values: dict[str, list[str]] = {"data-group": [], "data-class": []}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        for name, value in attrs:
            if name in self.values:
                self.values[name].append(value or "")


def _page(tmp: Path, names: list[str], groups: list[str], source: str) -> _Tags:
    result = analyze(_records(0.15, names), axis="x", reference=0.0,
                     groups=_grouping(names, groups, source))
    assert result.groups is not None and not result.groups.paying().empty
    write_report(result, tmp)
    parser = _Tags()
    parser.feed((tmp / "report.html").read_text())
    return parser


def test_hostile_group_names_are_text_in_the_report(tmp_path: Path) -> None:
    plain = _page(tmp_path / "plain", [f"c{i}" for i in range(6)],
                  ["g0"] * 3 + ["g1", "g2", "g3"], "groups.csv")
    hostile = _page(tmp_path / "hostile", HOSTILE_CLASSES, HOSTILE_GROUPS,
                    "<script>alert(1)</script>.csv")
    assert hostile.tags == plain.tags  # the same elements and attributes: names are text
    assert set(hostile.values["data-group"]) == set(HOSTILE_GROUPS)
    assert set(HOSTILE_CLASSES) <= set(hostile.values["data-class"])
    page = (tmp_path / "hostile" / "report.html").read_text()
    assert page.count("<script>") == 1 and _SCRIPT in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    csv = (tmp_path / "hostile" / "groups.csv").read_text()
    assert "</details><details open>" in csv
