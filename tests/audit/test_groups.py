"""GroupMap: building, nesting, alignment to the audit's classes; one clear error per bad map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classgap.audit import BUILTIN_GROUPS, GroupMap
from classgap.errors import DataFormatError, InputError

CLASSES = ["Abra alba", "Abra nitida", "Macoma balthica", "Mytilus edulis", "Mytilus trossulus"]
TAXA = {  # deliberately fine to coarse: the map sorts its levels by number of groups
    "genus": ["Abra", "Abra", "Macoma", "Mytilus", "Mytilus"],
    "family": ["Semelidae", "Semelidae", "Tellinidae", "Mytilidae", "Mytilidae"],
    "order": ["Cardiida", "Cardiida", "Cardiida", "Mytilida", "Mytilida"],
}


@pytest.fixture
def taxa() -> GroupMap:
    return GroupMap.from_columns(CLASSES, TAXA)


def test_levels_sorted_coarse_to_fine_groups_sorted_by_name(taxa: GroupMap) -> None:
    assert taxa.levels == ("order", "family", "genus")
    assert taxa.classes == tuple(CLASSES)
    assert taxa.groups("order") == ("Cardiida", "Mytilida")
    assert taxa.groups(-1) == ("Abra", "Macoma", "Mytilus")
    assert taxa.codes.shape == (3, 5) and taxa.codes.dtype == np.int64
    assert taxa.codes[1].tolist() == [1, 1, 2, 0, 0]  # Mytilidae, Semelidae, Tellinidae


def test_members_parents_sizes(taxa: GroupMap) -> None:
    assert taxa.members("genus", "Mytilus").tolist() == [3, 4]
    assert taxa.members(0, "Cardiida").tolist() == [0, 1, 2]
    assert taxa.parents("order").tolist() == [-1, -1]
    # family -> order: Mytilidae in Mytilida (1), Semelidae and Tellinidae in Cardiida (0)
    assert taxa.parents("family").tolist() == [1, 0, 0]
    assert taxa.parents("genus").tolist() == [1, 2, 0]  # Abra<Semelidae, Macoma<Tellinidae...
    assert taxa.sizes("family").tolist() == [2, 2, 1]
    assert taxa.level_index("family") == 1 and taxa.level_index(-1) == 2


def test_other_names_sorted_by_number_of_groups() -> None:
    gm = GroupMap.from_columns(["a", "b", "c"], {"fine": ["x", "y", "z"],
                                                 "coarse": ["p", "p", "q"]})
    assert gm.levels == ("coarse", "fine")


def test_ties_keep_the_given_order() -> None:
    gm = GroupMap.from_columns(["a", "b"], {"fine": ["x", "y"], "also": ["p", "q"]})
    assert gm.levels == ("fine", "also")


def test_align_reorders_and_drops_unused_groups(taxa: GroupMap) -> None:
    aligned = taxa.align(["Mytilus edulis", "Abra nitida", "Abra alba"])
    assert aligned.classes == ("Mytilus edulis", "Abra nitida", "Abra alba")
    assert aligned.groups("family") == ("Mytilidae", "Semelidae")  # Tellinidae left empty
    assert aligned.groups("genus") == ("Abra", "Mytilus")
    assert aligned.codes.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    assert aligned.parents("genus").tolist() == [1, 0]
    assert taxa.align(CLASSES) is taxa  # already in order: no copy
    back = aligned.to_frame()
    assert back.columns.tolist() == ["class", "order", "family", "genus"]
    assert back.iloc[0].tolist() == ["Mytilus edulis", "Mytilida", "Mytilidae", "Mytilus"]


def test_to_frame_round_trips_through_from_columns(taxa: GroupMap) -> None:
    frame = taxa.to_frame()
    again = GroupMap.from_columns(frame["class"], {c: frame[c] for c in frame.columns[1:]})
    assert again == taxa
    assert again != taxa.align(CLASSES[::-1])


def test_to_dict_is_the_json_form(taxa: GroupMap) -> None:
    d = taxa.to_dict()
    assert d["levels"] == ["order", "family", "genus"]
    assert d["classes"]["Macoma balthica"] == {"order": "Cardiida", "family": "Tellinidae",
                                               "genus": "Macoma"}


def test_a_class_repeated_with_the_same_groups_is_kept_once() -> None:
    gm = GroupMap.from_columns(["a", "b", "a"], {"g": ["x", "y", "x"]})
    assert gm.classes == ("a", "b") and gm.sizes("g").tolist() == [1, 1]


def test_fashion_mnist_builtin() -> None:
    gm = BUILTIN_GROUPS["fashion-mnist"]
    assert gm.levels == ("group",) and gm.n_classes == 10
    assert gm.groups("group") == ("bags", "bottoms", "dresses", "footwear", "tops")
    tops = [gm.classes[k] for k in gm.members("group", "tops")]
    assert tops == ["T-shirt/top", "Pullover", "Coat", "Shirt"]
    assert [gm.classes[k] for k in gm.members("group", "footwear")] == \
        ["Sandal", "Sneaker", "Ankle boot"]
    assert gm.sizes("group").tolist() == [1, 1, 1, 3, 4]


# --- one clear error per bad map -------------------------------------------------------------

def test_missing_class_named_with_how_many_more(taxa: GroupMap) -> None:
    with pytest.raises(InputError, match=r"class 'Abra tenuis' of the predictions is not in "
                                         r"the group map \(1 of 3 classes missing\)"):
        taxa.align(["Abra alba", "Abra tenuis", "Mytilus edulis"])
    with pytest.raises(InputError, match=r"class 'x0', 'x1', 'x2' and 2 more of the "
                                         r"predictions are not in the group map \(5 of 6"):
        taxa.align(["Abra alba", *(f"x{i}" for i in range(5))])


def test_missing_class_names_the_file() -> None:
    gm = GroupMap.from_columns(["a", "b"], {"g": ["x", "y"]}, source="groups.csv")
    with pytest.raises(DataFormatError, match=r"^groups.csv: class 'c' of the predictions"):
        gm.align(["a", "c"])


def test_a_group_under_two_parents_names_both() -> None:
    genus = ["Abra", "Abra", "Macoma"]
    family = ["Semelidae", "Tellinidae", "Tellinidae"]
    with pytest.raises(DataFormatError, match=r"^g.csv: levels must nest, but genus 'Abra' is "
                       r"in two family groups: 'Semelidae' \(class 'a'\) and 'Tellinidae' "
                       r"\(class 'b'\)"):
        GroupMap.from_columns(["a", "b", "c"], {"genus": genus, "family": family},
                              source="g.csv")


def test_a_class_twice_with_different_groups() -> None:
    with pytest.raises(InputError, match=r"class 'a' is listed twice with different g groups: "
                                         r"'x' and 'y'"):
        GroupMap.from_columns(["a", "b", "a"], {"g": ["x", "y", "y"]})


def test_a_level_called_class() -> None:
    with pytest.raises(InputError, match=r"a level may not be called 'class'"):
        GroupMap.from_columns(["a"], {"class": ["x"]})


def test_empty_group_name_names_the_class_and_level() -> None:
    with pytest.raises(InputError, match=r"class 'b' has no family \(empty group name\)"):
        GroupMap.from_columns(["a", "b"], {"family": ["x", " "]})
    with pytest.raises(InputError, match=r"class 'a' has no family"):
        GroupMap.from_columns(["a", "b"], {"family": [None, "x"]})


def test_wrong_length_and_no_levels() -> None:
    with pytest.raises(InputError, match=r"level 'g' must hold one group name per class "
                                         r"\(2\); got 3"):
        GroupMap.from_columns(["a", "b"], {"g": ["x", "y", "z"]})
    with pytest.raises(InputError, match="holds no level"):
        GroupMap.from_columns(["a", "b"], {})
    with pytest.raises(InputError, match="holds no class"):
        GroupMap.from_columns([], {"g": []})


def test_unknown_level_and_group_suggest_the_closest(taxa: GroupMap) -> None:
    with pytest.raises(InputError, match=r"no level 'famly' in the group map; its levels are "
                                         r"'order', 'family', 'genus' \(did you mean 'family'"):
        taxa.level_index("famly")
    with pytest.raises(InputError, match=r"level 3 is out of range"):
        taxa.level_index(3)
    with pytest.raises(InputError, match=r"no group 'Mytilis' at level 'genus'.*did you mean "
                                         r"'Mytilus'"):
        taxa.members("genus", "Mytilis")


def test_align_refuses_repeated_or_empty_classes(taxa: GroupMap) -> None:
    with pytest.raises(InputError, match=r"'classes' must hold unique names; got 'Abra alba'"):
        taxa.align(["Abra alba", "Abra alba"])
    with pytest.raises(InputError, match="'classes' is empty"):
        taxa.align([])


def test_direct_construction_is_checked() -> None:
    with pytest.raises(InputError, match=r"level 'g': group 'z' has no class"):
        GroupMap(("a", "b"), ("g",), np.array([[0, 1]]), (("x", "y", "z"),))
    with pytest.raises(InputError, match=r"codes must be in \[0, 1\]; got 2"):
        GroupMap(("a", "b"), ("g",), np.array([[0, 2]]), (("x", "y"),))
    with pytest.raises(InputError, match=r"level 'g' is listed more than once"):
        GroupMap(("a",), ("g", "g"), np.zeros((2, 1), int), (("x",), ("x",)))
    with pytest.raises(InputError, match=r"class 'a' is listed more than once"):
        GroupMap(("a", "a"), ("g",), np.zeros((1, 2), int), (("x",),))


def test_codes_are_read_only(taxa: GroupMap) -> None:
    with pytest.raises(ValueError, match="read-only"):
        taxa.codes[0, 0] = 1


def test_large_map_builds_and_aligns(  # correctness at scale; the timing is in the benchmark
) -> None:
    k = 10_000
    idx = np.arange(k)
    cols = {f"l{lv}": pd.Series(idx // 10 ** (4 - lv)).map("g{}".format).tolist()
            for lv in range(5)}
    classes = [f"c{i}" for i in idx]
    gm = GroupMap.from_columns(classes, cols)
    assert gm.levels == ("l0", "l1", "l2", "l3", "l4")
    assert [len(gm.groups(lv)) for lv in range(5)] == [1, 10, 100, 1000, 10_000]
    rev = gm.align(classes[::-1])
    assert rev.to_frame().iloc[::-1].reset_index(drop=True).equals(gm.to_frame())
