"""Grids: stable, distinct run ids; product and one-at-a-time counts; errors name the axis."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from classgap.config import Config, load_config
from classgap.errors import ConfigError
from classgap.sweep import Axis, Grid, load_grid_toml, parse_axis, run_id


def base(*more: str) -> Config:
    return load_config(overrides=["data.dataset=digits", "model.name=mlp", *more])


def test_run_id_is_the_hash_of_the_resolved_config_and_stable() -> None:
    grid = Grid(base(), [parse_axis("aug.mixup=0,1,2")], seeds=3)
    first, again = grid.runs(), Grid(base(), [parse_axis("aug.mixup=0,1,2")], seeds=3).runs()
    assert [s.run_id for s in first] == [s.run_id for s in again]
    assert len({s.run_id for s in first}) == 9
    spec = first[4]
    data = spec.config.to_dict()
    data["train"].pop("progress")  # display only: not part of the identity
    data["train"].pop("bn_recompute")  # added later: at its default, old ids stay valid
    for key in ("theta", "reweight", "reweight_clip", "reweight_mix", "reweight_discount",
                "reweight_min_weight", "reweight_alpha"):
        data["loss"].pop(key)  # so were the poly loss's theta and worst-class reweighting
    for key in ("test_fraction", "image_size"):
        data["data"].pop(key)  # and the held-out test split and the resize of user datasets
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert spec.run_id == hashlib.sha256(text.encode()).hexdigest()[:16]
    changed = Config.from_dict({**spec.config.to_dict(), "train": {
        **spec.config.to_dict()["train"], "bn_recompute": True}})
    assert run_id(changed) != spec.run_id  # set to anything else, it is part of the identity
    assert run_id(Config.from_dict(spec.config.to_dict())) == spec.run_id
    # the same config reached from another grid gets the same id
    other = Grid(base(), [parse_axis("aug.mixup=1")], seeds=2).runs()
    assert {s.run_id for s in other} <= {s.run_id for s in first}


def test_points_and_seeds_are_set() -> None:
    runs = Grid(base(), [parse_axis("aug.mixup=0,1")], seeds=2).runs()
    assert [(s.point["aug.mixup"], s.seed) for s in runs] == [(0.0, 0), (1.0, 0), (0.0, 1),
                                                               (1.0, 1)]
    assert all(s.config.train.seed == s.seed for s in runs)
    assert runs[1].config.aug["mixup"] == 1.0 and runs[1].config.data.dataset == "digits"


def test_product_and_one_at_a_time_counts() -> None:
    axes = [parse_axis("aug.mixup=0,1,2"), parse_axis("optim.weight_decay=0,5e-4,5e-3")]
    assert len(Grid(base(), axes, seeds=2).runs()) == 3 * 3 * 2
    oat = Grid(base(), axes, seeds=2, mode="one_at_a_time")
    # base point (mixup off, wd 5e-4) + 3 mixup values + 2 weight decays other than 5e-4
    assert len(oat.points) == 1 + 3 + 2
    assert oat.points[0] == {"aug.mixup": None, "optim.weight_decay": 5e-4}
    assert len(oat.runs()) == 6 * 2
    assert len({s.run_id for s in oat.runs()}) == 12


@pytest.mark.parametrize(("spec", "needles"), [
    ("optim.wd=0,1", ["axis 'optim.wd'", "did you mean 'optim.weight_decay'"]),
    ("optim.lr=0.1,-1", ["axis 'optim.lr'", "'-1'", "must be > 0"]),
    ("aug.nope=1", ["axis 'aug.nope'", "unknown config key"]),
    ("optim.lr", ["SECTION.KEY=V1,V2"]),
    ("optim.lr=0.1,0.1", ["not repeat a value"]),
])
def test_bad_axis_names_the_axis_and_value(spec: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_axis(spec)
    for needle in needles:
        assert needle in str(info.value)


def test_grid_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="'seeds' must be a count S >= 1, a range A-B"):
        Grid(base(), [parse_axis("aug.mixup=0")], seeds=0)
    with pytest.raises(ConfigError, match="'mode' must be one of"):
        Grid(base(), [parse_axis("aug.mixup=0")], mode="zip")
    with pytest.raises(ConfigError, match="distinct keys"):
        Grid(base(), [parse_axis("aug.mixup=0"), Axis("aug.mixup", (1.0,))])


def test_axis_values_parse_like_set() -> None:
    assert parse_axis("aug.rrc=[0.5,1],1").values == ([0.5, 1.0], 1.0)
    assert parse_axis("data.train_subset=none,100").values == (None, 100)
    assert parse_axis("data.dataset=digits,fashion-mnist").values == ("digits", "fashion-mnist")


def test_load_grid_toml(tmp_path: Path) -> None:
    file = tmp_path / "grid.toml"
    file.write_text('[study]\naxes = {"aug.mixup" = [0, 1], optim.weight_decay = [0, 5e-3]}\n'
                    'seeds = 2\nmode = "one_at_a_time"\n\n[base]\n"data.dataset" = "digits"\n'
                    "optim.lr = 0.1\n")
    grid = load_grid_toml(file)
    assert grid.seeds == 2 and grid.mode == "one_at_a_time"
    assert [a.key for a in grid.axes] == ["aug.mixup", "optim.weight_decay"]
    assert grid.base.data.dataset == "digits" and grid.base.optim.lr == 0.1
    assert len(grid.runs()) == (1 + 2 + 2) * 2
    file.write_text("[study]\nseed = 2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'study\.seed'; valid keys: study\.axes"):
        load_grid_toml(file)
    file.write_text('[base]\n"optim.wd" = 0\n')
    with pytest.raises(ConfigError, match=r"optim\.wd"):
        load_grid_toml(file)
    file.write_text('[study]\naxes = {"optim.lr" = [-1]}\n')
    with pytest.raises(ConfigError, match=r"axis 'optim\.lr', value -1"):
        load_grid_toml(file)
