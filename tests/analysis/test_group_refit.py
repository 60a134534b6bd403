"""The group-aware refit's vector (issue 21, part 3) and the confusion-cell tests it reads:
paying classes and their groups come from validation predictions only, and a member's
strength only ever moves toward the knob's off value."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from classgap.analysis.confusion import confusion_group
from classgap.analysis.refit import group_refit_vector
from classgap.audit.paired import crossed_test
from classgap.errors import ConfigError, InputError

K, PER, SEEDS = 4, 400, 6
NAMES = ["zero", "one", "two", "three"]
AXIS = "optim.label_smoothing"


def _runs(y: np.ndarray, extra_to_two: float, rng: np.random.Generator) -> np.ndarray:
    """Class 0 goes to class 1 at 12% in every run (a boundary the reference already has), and
    to class 2 at ``extra_to_two`` (the shift the selected strength adds); the same 3% of
    every other class's samples go to the next class in every run set, so no other class
    pays."""
    preds = np.repeat(y[None], SEEDS, axis=0)
    u = rng.random(preds.shape)
    zero = y == 0
    preds[:, zero] = np.where(u[:, zero] < 0.12, 1,
                              np.where(u[:, zero] < 0.12 + extra_to_two, 2, 0))
    rest = ~zero
    same = np.random.default_rng(1).random(preds.shape)
    preds[:, rest] = np.where(same[:, rest] < 0.03, (y[rest] + 1) % K, y[rest])
    return preds


@pytest.fixture(scope="module")
def val() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(K), PER)
    return y, _runs(y, 0.0, rng), _runs(y, 0.10, rng)


def test_confusion_group_is_the_crossed_test_of_each_cell(val) -> None:
    y, ref, sel = val
    g = confusion_group(y, ref, sel, K, 0)
    cells = list(zip(g["true_index"], g["predicted_index"], strict=True))
    assert cells == sorted(cells) and all(0 in c for c in cells)
    assert set(g["direction"]) <= {"in", "out"}
    mine = y == 0
    out2 = crossed_test(y[mine], ref[:, mine] == 2, sel[:, mine] == 2, K)
    row = g[(g["true_index"] == 0) & (g["predicted_index"] == 2)].iloc[0]
    assert row["direction"] == "out" and row["partner"] == 2
    assert row["change"] == pytest.approx(out2["delta"][0])
    assert row["p_value"] == pytest.approx(out2["p_value"][0])
    assert row["change"] == pytest.approx((sel[:, mine] == 2).mean()
                                          - (ref[:, mine] == 2).mean())
    into = crossed_test(y, ref == 0, sel == 0, K)  # (3, 0): class 3's share predicted as 0
    row = g[(g["true_index"] == 3) & (g["predicted_index"] == 0)].iloc[0]
    assert row["direction"] == "in" and row["p_value"] == pytest.approx(into["p_value"][3])
    np.testing.assert_allclose(g["q_value"], multipletests(g["p_value"], method="fdr_bh")[1])
    assert g.loc[g["significant"], "partner"].tolist() == [2]  # only the added shift


def test_the_paying_class_gives_its_strength_to_its_group(val) -> None:
    y, ref, sel = val
    vector, groups = group_refit_vector(AXIS, [0.0, 0.3, 0.3, 0.1], y, ref, sel, NAMES)
    assert vector == (0.0, 0.0, 0.0, 0.1)
    assert [g["class"] for g in groups] == ["zero"]
    group = groups[0]
    assert group["strength"] == 0.0 and group["drop"] == pytest.approx(
        100 * ((sel[:, y == 0] == 0).mean() - (ref[:, y == 0] == 0).mean()), abs=1e-3)
    members = {m["class"]: m for m in group["members"]}
    assert set(members) == {"one", "two"}
    assert members["one"]["why"] == ["reference confusion"]  # 12% in both run sets
    assert members["one"]["reference_rate"] == pytest.approx(
        (ref[:, y == 0] == 1).mean(), abs=1e-4)
    assert "confusion shift" in members["two"]["why"] and members["two"]["shift_q"] < 0.05


def test_members_are_never_made_stronger(val) -> None:
    y, ref, sel = val
    vector, _ = group_refit_vector(AXIS, [0.2, 0.1, 0.3, 0.3], y, ref, sel, NAMES)
    assert vector == (0.2, 0.1, 0.2, 0.3)  # one keeps its weaker 0.1; three is no member


def test_no_class_pays_no_group(val) -> None:
    y, ref, _ = val
    vector, groups = group_refit_vector(AXIS, [0.0, 0.3, 0.3, 0.1], y, ref, ref, NAMES)
    assert groups == [] and vector == (0.0, 0.3, 0.3, 0.1)


def test_bad_input(val) -> None:
    y, ref, sel = val
    with pytest.raises(InputError, match="'class_names' must hold one name per class"):
        group_refit_vector(AXIS, [0.0] * 4, y, ref, sel, NAMES[:3])
    with pytest.raises(InputError, match=r"'selected_val' must be \(runs, 1600\)"):
        group_refit_vector(AXIS, [0.0] * 4, y, ref, sel[:, :10], NAMES)
    with pytest.raises(ConfigError, match=r"'aug\.mixup'"):
        group_refit_vector("aug.mixup", [0.0] * 4, y, ref, sel, NAMES)
