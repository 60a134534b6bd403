"""Group-map readers, each on a small file in the real layout: CSV, the JSON forms,
iNaturalist-2021 categories, CIFAR-100's coarse labels, the built-in Fashion-MNIST map; and one
clear error per bad file."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classgap.audit import GroupMap, read_group_map
from classgap.data import FASHION_MNIST_CLASSES, load_cifar
from classgap.data.cifar import cifar100_groups
from classgap.data.groups import dataset_groups, load_groups
from classgap.errors import DataFormatError, InputError

SPECIES = ["Abra alba", "Abra nitida", "Macoma balthica", "Mytilus edulis"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- CSV -------------------------------------------------------------------------------------

def test_csv_any_column_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "taxa.csv", (
        "order,class,genus,family\n"
        "Cardiida,Abra alba,Abra,Semelidae\n"
        "Cardiida, Abra nitida ,Abra,Semelidae\n"  # spaces around a cell are not part of it
        "Mytilida,Mytilus edulis,Mytilus,Mytilidae\n"
        "Cardiida,Macoma balthica,Macoma,Tellinidae\n"
        "Cardiida,Abra alba,Abra,Semelidae\n"))  # a repeat that agrees is harmless
    gm = read_group_map(path)
    assert gm.levels == ("order", "family", "genus")
    assert gm.classes == ("Abra alba", "Abra nitida", "Mytilus edulis", "Macoma balthica")
    aligned = load_groups(path, SPECIES)
    assert aligned.classes == tuple(SPECIES)
    assert aligned.to_frame().loc[2].tolist() == ["Macoma balthica", "Cardiida", "Tellinidae",
                                                  "Macoma"]
    assert aligned.source == str(path)


def test_csv_group_names_stay_text(tmp_path: Path) -> None:
    gm = read_group_map(_write(tmp_path / "g.csv", "class,bucket\n0,01\n1,NA\n2,01\n"))
    assert gm.groups("bucket") == ("01", "NA") and gm.classes == ("0", "1", "2")


@pytest.mark.parametrize(("text", "message"), [
    ("", r"g.csv: is empty"),
    ("\n\n", r"g.csv: is empty"),
    ("class,genus\n", r"g.csv: holds no class \(only a header\)"),
    ("species,genus\nAbra alba,Abra\n",
     r"g.csv: has no 'class' column; its columns are 'species', 'genus'"),
    ("class\nAbra alba\n", r"g.csv: has no level column"),
    ("class,genus,\nAbra alba,Abra,x\n", r"g.csv: column 3 of the header has no name"),
    ("class,genus,genus\nAbra alba,Abra,Abra\n", r"g.csv: column 'genus' is listed more than"),
    ("class,genus\nAbra alba,Abra\nAbra nitida,Abra,extra\n",
     r"g.csv: is not a valid CSV \(.*line 3"),
    ("class,genus\nAbra alba,Abra\nAbra alba,Tellina\n",
     r"g.csv: class 'Abra alba' is listed twice with different genus groups: 'Abra' and "
     r"'Tellina'"),
    ("class,genus,family\na,Abra,Semelidae\nb,Abra,Tellinidae\n",
     r"g.csv: levels must nest, but genus 'Abra' is in two family groups: 'Semelidae' "
     r"\(class 'a'\) and 'Tellinidae' \(class 'b'\)"),
    ("class,genus\na,Abra\nb,\n", r"g.csv: class 'b' has no genus"),
])
def test_bad_csv_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "g.csv", text)
    with pytest.raises(DataFormatError, match=f"/{message}") as info:
        read_group_map(path)
    assert "\n" not in str(info.value)


def test_missing_class_names_file_class_and_count(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.csv", "class,genus\nAbra alba,Abra\n")
    with pytest.raises(DataFormatError, match=r"g.csv: class 'Abra nitida', 'Macoma balthica', "
                                              r"'Mytilus edulis' of the predictions are not in "
                                              r"the group map \(3 of 4 classes missing\)"):
        load_groups(path, SPECIES)


def test_not_a_file_or_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"nope.csv: file does not exist"):
        read_group_map(tmp_path / "nope.csv")
    with pytest.raises(DataFormatError, match=r"g.txt: a group map must be a .csv or .json "
                                              r"file; got .txt"):
        load_groups(_write(tmp_path / "g.txt", "class,g\na,x\n"), ["a"])


# --- JSON ------------------------------------------------------------------------------------

def test_json_long_form_and_round_trip(tmp_path: Path) -> None:
    data = {"levels": ["family", "genus"],
            "classes": {"Abra alba": {"family": "Semelidae", "genus": "Abra"},
                        "Macoma balthica": {"genus": "Macoma", "family": "Tellinidae"}}}
    gm = read_group_map(_write(tmp_path / "g.json", json.dumps(data)))
    assert gm.levels == ("family", "genus") and gm.groups("genus") == ("Abra", "Macoma")
    again = read_group_map(_write(tmp_path / "again.json", json.dumps(gm.to_dict())))
    assert again == gm


def test_json_short_form(tmp_path: Path) -> None:
    gm = read_group_map(_write(tmp_path / "g.json", '{"Shirt": "tops", "Bag": "bags", '
                                                     '"Coat": "tops"}'))
    assert gm.levels == ("group",) and gm.members("group", "tops").tolist() == [0, 2]


@pytest.mark.parametrize(("text", "message"), [
    ("{", r"g.json: is not valid JSON \(Expecting property name"),
    ("  ", r"g.json: is empty"),
    ("{}", r"g.json: a JSON group map must be an object .* got an object \(empty\)"),
    ('"tops"', r"g.json: a JSON group map must be an object .* got a string"),
    ('{"levels": ["g"], "classes": {"a": {"g": "x"}}, "colour": 1}',
     r"g.json: unknown key 'colour'; a group map holds \"levels\" and \"classes\""),
    ('{"levels": ["family"], "classes": {"a": {"family": "x", "famly": "y"}}}',
     r"g.json: class 'a' has an unknown level 'famly'; the levels are 'family'"),
    ('{"levels": ["family", "genus"], "classes": {"a": {"family": "x"}}}',
     r"g.json: class 'a' has no genus"),
    ('{"classes": {"a": {"class": "x"}}}', r"g.json: a level may not be called 'class'"),
    ('{"classes": {"a": "x"}}', r"g.json: class 'a' must map to an object \{level: group\}"),
    ('{"classes": []}', r"g.json: \"classes\" must be a non-empty object"),
    ('{"levels": "genus", "classes": {"a": {"genus": "x"}}}',
     r"g.json: \"levels\" must be a list of level names; got 'genus'"),
    ('{"Shirt": "tops", "Bag": ["bags"]}', r"g.json: class 'Bag' must map to a group name"),
    ('[1, 2]', r"g.json: \"categories\" must be a non-empty list of objects"),
])
def test_bad_json_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=f"/{message}") as info:
        read_group_map(_write(tmp_path / "g.json", text))
    assert "\n" not in str(info.value)


# --- iNaturalist 2021 ------------------------------------------------------------------------

_TAXA = [  # kingdom, phylum, class, order, family, genus, specific_epithet, common name
    ("Animalia", "Mollusca", "Bivalvia", "Cardiida", "Semelidae", "Abra", "alba",
     "White Furrow Shell"),
    ("Animalia", "Mollusca", "Bivalvia", "Cardiida", "Tellinidae", "Macoma", "balthica",
     "Baltic Macoma"),
    ("Animalia", "Mollusca", "Bivalvia", "Mytilida", "Mytilidae", "Mytilus", "edulis",
     "Blue Mussel"),
    ("Animalia", "Chordata", "Aves", "Passeriformes", "Prunellidae", "Prunella", "modularis",
     "Dunnock"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Lamiales", "Lamiaceae", "Prunella",
     "vulgaris", "Common Self-heal"),
]


def _inat_categories() -> list[dict[str, Any]]:
    cats = []
    for i, (kingdom, phylum, klass, order, family, genus, epithet, common) in enumerate(_TAXA):
        cats.append({
            "id": i, "name": f"{genus} {epithet}", "common_name": common,
            "supercategory": "Mollusks" if phylum == "Mollusca" else "Birds",
            "kingdom": kingdom, "phylum": phylum, "class": klass, "order": order,
            "family": family, "genus": genus, "specific_epithet": epithet,
            "image_dir_name": f"{i:05d}_{kingdom}_{phylum}_{klass}_{order}_{family}_{genus}_"
                              f"{epithet}"})
    return cats


def _inat_train_json(path: Path) -> Path:
    """A train.json in the iNaturalist-2021 layout (COCO-like: info, images, annotations,
    categories, licenses)."""
    data = {"info": {"year": 2021, "version": "2021.1"},
            "images": [{"id": 0, "width": 500, "height": 375, "license": 0,
                        "file_name": "train/00000_Animalia_Mollusca_Bivalvia_Cardiida_"
                                     "Semelidae_Abra_alba/0a1b.jpg",
                        "date": "2012-07-09 12:50:00+00:00", "latitude": 51.5,
                        "longitude": 3.6, "location_uncertainty": 10}],
            "annotations": [{"id": 0, "image_id": 0, "category_id": 0}],
            "categories": _inat_categories(), "licenses": [{"id": 0, "name": "CC BY"}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_inat_categories_by_name(tmp_path: Path) -> None:
    gm = read_group_map(_inat_train_json(tmp_path / "train.json"))
    assert gm.levels == ("kingdom", "phylum", "tax_class", "order", "family", "genus")
    assert gm.classes[0] == "Abra alba"
    assert gm.groups("phylum") == ("Chordata", "Mollusca", "Tracheophyta")
    # the genus Prunella, a bird and a plant: told apart by family, not a nesting error
    assert gm.groups("genus") == ("Abra", "Macoma", "Mytilus", "Prunella (Lamiaceae)",
                                  "Prunella (Prunellidae)")
    order = gm.groups("order")
    assert [order[p] for p in gm.parents("family")] == [
        "Lamiales", "Mytilida", "Passeriformes", "Cardiida", "Cardiida"]


def test_inat_classes_matched_by_image_dir_name(tmp_path: Path) -> None:
    path = _inat_train_json(tmp_path / "val.json")
    dirs = [c["image_dir_name"] for c in _inat_categories()][::-1][:3]
    gm = load_groups(path, dirs)
    assert gm.classes == tuple(dirs)
    assert gm.to_frame()["genus"].tolist() == ["Prunella (Lamiaceae)", "Prunella (Prunellidae)",
                                               "Mytilus"]
    by_id = load_groups(path, ["2", "0"])  # an ImageFolder of ids names classes by number
    assert by_id.to_frame()["family"].tolist() == ["Mytilidae", "Semelidae"]


def test_inat_categories_list_alone(tmp_path: Path) -> None:
    path = _write(tmp_path / "categories.json", json.dumps(_inat_categories()))
    assert read_group_map(path).n_classes == 5


def test_inat_without_taxonomy(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", json.dumps({"categories": [{"id": 0, "name": "x",
                                                                    "supercategory": "y"}]}))
    with pytest.raises(DataFormatError, match=r"c.json: the categories have no taxonomy "
                                              r"fields \(kingdom ... genus\); their fields are "
                                              r"'id', 'name', 'supercategory'"):
        read_group_map(path)


# --- CIFAR-100 -------------------------------------------------------------------------------

FINE = [f"fine{i:02d}" for i in range(100)]
FINE[:6] = ["apple", "aquarium_fish", "baby", "bear", "beaver", "bed"]
COARSE = [f"coarse{j:02d}" for j in range(20)]
COARSE[:4] = ["aquatic_mammals", "fish", "flowers", "food_containers"]
PARENT = (np.arange(100) * 7) % 20  # each fine label's coarse label: fixed, not contiguous


def _dump(path: Path, obj: Any) -> None:
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=2)  # like the originals: bytes keys, protocol 2


def _fake_cifar100(root: Path, parent: np.ndarray = PARENT, n_test: int = 100) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    _dump(folder / "meta", {b"fine_label_names": [n.encode() for n in FINE],
                            b"coarse_label_names": [n.encode() for n in COARSE]})
    for split, n in (("train", 200), ("test", n_test)):
        fine = np.arange(n) % 100
        _dump(folder / split, {b"filenames": [b"x.png"] * n, b"batch_label": b"fake",
                               b"fine_labels": fine.tolist(),
                               b"coarse_labels": parent[fine].tolist(),
                               b"data": np.zeros((n, 3072), np.uint8)})
    return folder


def test_cifar100_superclasses(tmp_path: Path) -> None:
    folder = _fake_cifar100(tmp_path)
    gm = cifar100_groups(folder)
    assert gm.levels == ("superclass",) and gm.classes == tuple(FINE)
    assert gm.groups("superclass") == tuple(sorted(COARSE))
    assert gm.sizes("superclass").tolist() == [5] * 20
    names = np.asarray(gm.groups(0))[gm.codes[0]]
    assert names.tolist() == [COARSE[p] for p in PARENT]
    for where in (tmp_path, folder / "meta"):  # the folder above, the meta file: the same map
        assert cifar100_groups(where) == gm


def test_cifar100_dataset_carries_its_groups(tmp_path: Path) -> None:
    _fake_cifar100(tmp_path)
    train = load_cifar(tmp_path, num_classes=100, split="train")
    assert train.groups is not None and train.groups.classes == train.classes
    assert train.groups == cifar100_groups(tmp_path)
    assert train.subset([0, 1]).groups is train.groups


def test_load_groups_cifar100_by_folder_and_name(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fake_cifar100(tmp_path)
    some = ["bed", "apple", "beaver"]
    gm = load_groups(folder, some)
    assert gm.to_frame()["superclass"].tolist() == [COARSE[PARENT[i]] for i in (5, 0, 4)]
    assert load_groups("cifar100", some, data_dir=tmp_path) == gm
    monkeypatch.setenv("CLASSGAP_DATA", str(tmp_path))
    assert dataset_groups("cifar100", some) == gm


def test_cifar100_fine_label_under_two_coarse(tmp_path: Path) -> None:
    folder = _fake_cifar100(tmp_path)
    batch = {b"fine_labels": [0, 0], b"coarse_labels": [1, 2],
             b"data": np.zeros((2, 3072), np.uint8)}
    _dump(folder / "test", batch)
    with pytest.raises(DataFormatError, match=r"test: class 'apple' has two coarse labels, "
                                              r"'fish' and 'flowers'"):
        cifar100_groups(folder)
    # loading the images still works: the dataset simply has no group map
    assert load_cifar(tmp_path, num_classes=100, split="test").groups is None


def test_cifar100_class_without_image(tmp_path: Path) -> None:
    _fake_cifar100(tmp_path, n_test=98)
    with pytest.raises(DataFormatError, match=r"test: class 'fine98' \(and 1 more\) has no "
                                              r"image, so its superclass is unknown"):
        cifar100_groups(tmp_path)


def test_cifar100_without_meta_or_batch(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"holds no CIFAR-100 'meta' file"):
        load_groups(tmp_path, ["apple"])
    folder = _fake_cifar100(tmp_path / "d")
    (folder / "test").unlink()
    (folder / "train").unlink()
    with pytest.raises(DataFormatError, match=r"no CIFAR-100 batch \('test' or 'train'\)"):
        cifar100_groups(folder)


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch PWNED",))


def test_cifar100_meta_is_never_unpickled_blindly(tmp_path: Path) -> None:
    folder = _fake_cifar100(tmp_path)
    _dump(folder / "meta", {b"fine_label_names": _Evil()})
    with pytest.raises(DataFormatError, match=r"refusing to unpickle global '(posix|nt).system'"):
        load_groups(folder / "meta", ["apple"])
    assert not (Path.cwd() / "PWNED").exists()


# --- built-in and by name --------------------------------------------------------------------

def test_fashion_mnist_builtin_by_name() -> None:
    gm = load_groups("fashion-mnist", FASHION_MNIST_CLASSES)
    assert gm.classes == FASHION_MNIST_CLASSES
    tops = [gm.classes[k] for k in gm.members("group", "tops")]
    assert tops == ["T-shirt/top", "Pullover", "Coat", "Shirt"]
    assert dataset_groups("fashion-mnist", FASHION_MNIST_CLASSES) == gm
    assert dataset_groups("digits", [str(d) for d in range(10)]) is None
    sub = load_groups("fashion-mnist", ["Shirt", "Bag"])
    assert sub.groups("group") == ("bags", "tops")  # the groups left empty are dropped


def test_unknown_spec_lists_the_names() -> None:
    with pytest.raises(InputError, match=r"'groups' must be a built-in grouping \(fashion-mnist, "
                                         r"cifar100\), a CSV or JSON file, or a CIFAR-100 folder;"
                                         r" got 'fashion-mnst'.*did you mean 'fashion-mnist'"):
        load_groups("fashion-mnst", ["Shirt"])


def test_group_map_is_the_type_everyone_gets(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.csv", "class,g\na,x\n")
    assert isinstance(load_groups(path, ["a"]), GroupMap)


# --- the guide's example ---------------------------------------------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"


def test_the_guide_example_runs_and_prints_what_it_says(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    section = GUIDE.read_text(encoding="utf-8").split("### Groups of classes")[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n### ")[0], flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "guide.md", "exec"), {})  # the guide's own example, as a reader runs it
    out = capsys.readouterr().out.splitlines()
    promised = [line.split("# ")[1].split(":")[0] for line in code.splitlines()
                if line.startswith("print(") and "# " in line]
    assert out[:3] == promised
    assert out[4].split() == ["0", "Mytilus", "edulis", "Mytilida", "Mytilidae", "Mytilus"]
