"""Layered config: defaults, TOML, overrides, strict keys, typed values, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classgap.config import Config, config_keys, load_config
from classgap.errors import ConfigError


def test_defaults() -> None:
    cfg = load_config()
    assert cfg == Config()
    assert (cfg.data.dataset, cfg.data.val_size, cfg.model.name) == ("fashion-mnist", 5000, "cnn")
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.batch_size) == ("sgd", 0.03, 128)
    assert cfg.optim.nesterov and cfg.optim.wd_exempt_norm_bias
    assert (cfg.schedule.name, cfg.train.epochs, cfg.train.precision) == ("cosine", 5, "auto")
    assert dict(cfg.aug) == {}


def test_toml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[optim]\nlr = 0.1\nname = "adamw"\n[aug]\nrrc = 0.5\n'
                    '[schedule]\nname = "step"\nmilestones = [2, 4]\n')
    cfg = load_config(path, ["optim.lr=0.2", "train.epochs=7", "aug.flip=1"])
    assert cfg.optim.lr == 0.2  # override beats the file
    assert cfg.optim.name == "adamw"  # the file beats the defaults
    assert cfg.schedule.milestones == (2.0, 4.0)
    assert dict(cfg.aug) == {"rrc": 0.5, "flip": 1.0}
    assert cfg.train.epochs == 7 and cfg.optim.momentum == 0.9


def test_unknown_key_is_named_with_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=["optim.wd=1"])
    msg = str(info.value)
    assert "'optim.wd'" in msg and "optim.lr" in msg and "did you mean 'optim.weight_decay'" in msg
    with pytest.raises(ConfigError, match=r"unknown config section 'optm'.*'optim'"):
        load_config(overrides=["optm.lr=1"])
    with pytest.raises(ConfigError, match=r"'aug.rr'.*did you mean 'aug.rrc'"):
        load_config(overrides=["aug.rr=1"])


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match=r"'train.epoch'.*did you mean 'train.epochs'"):
        load_config(path)


@pytest.mark.parametrize("item, match", [
    ("optim.lr=abc", "'optim.lr' must be a number; got 'abc'"),
    ("train.epochs=1.5", "'train.epochs' must be an integer; got 1.5"),
    ("optim.nesterov=maybe", "'optim.nesterov' must be true or false"),
    ("optim.lr=-1", "'optim.lr' must be > 0; got -1.0"),
    ("optim.name=sdg", "did you mean 'sgd'"),
    ("data.val_size=1.5", "'data.val_size' must be an integer >= 0 or a fraction"),
    ("aug.rrc=2", "'aug.rrc' must be in \\(0, 1\\]; got 2.0"),
    ("optim.lr", "'--set' must be SECTION.KEY=VALUE"),
])
def test_bad_values(item: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=[item])


def test_value_parsing_by_field_type() -> None:
    cfg = load_config(overrides=["data.dataset=npz:a b.npz", "data.data_dir=none",
                                 "data.val_size=0.1", "train.channels_last=false",
                                 "train.threads=2", "data.imbalance=10"])
    assert cfg.data.dataset == "npz:a b.npz" and cfg.data.data_dir is None
    assert cfg.data.val_size == 0.1 and cfg.train.channels_last is False
    assert cfg.train.threads == 2 and cfg.data.imbalance == 10.0


def test_per_class_aug_lists(tmp_path: Path) -> None:
    per_class = [0.08] * 5 + [1.0] * 5
    for item in ("aug.rrc=[0.08,0.08,0.08,0.08,0.08,1,1,1,1,1]",
                 "aug.rrc=0.08,0.08,0.08,0.08,0.08,1,1,1,1,1"):
        assert load_config(overrides=[item]).aug["rrc"] == tuple(per_class)
    path = tmp_path / "c.toml"
    path.write_text(f"[aug]\nrrc = {per_class}\n")
    assert load_config(path).aug["rrc"] == tuple(per_class)
    with pytest.raises(ConfigError, match=r"'aug.rrc\[1\]'"):
        load_config(overrides=["aug.rrc=[0.5,2]"])


def test_round_trip_through_json() -> None:
    cfg = load_config(overrides=["aug.rrc=[0.5,1]", "schedule.milestones=[1.5]",
                                 "train.channels_last=true", "data.train_subset=100"])
    again = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.aug["rrc"] == (0.5, 1.0)


def test_frozen_and_keys() -> None:
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.optim.lr = 1.0  # type: ignore[misc]
    keys = config_keys()
    assert "optim.weight_decay" in keys and "aug.mixup" in keys and len(keys) == len(set(keys))


def test_warm_up_defaults_to_none_and_is_checked() -> None:
    assert load_config().schedule.warmup_epochs is None  # the schedule's default warm-up
    assert load_config(overrides=["schedule.warmup_epochs=0"]).schedule.warmup_epochs == 0.0
    cfg = load_config(overrides=["schedule.warmup_epochs=0.5", "schedule.warmup_epochs=none"])
    assert cfg.schedule.warmup_epochs is None
    with pytest.raises(ConfigError, match=r"'schedule.warmup_epochs' must be in \[0, "
                                          r"train.epochs=2\) or none; got 2"):
        load_config(overrides=["train.epochs=2", "schedule.warmup_epochs=2"])


def test_cmd_section_holds_a_training_commands_own_parameters(tmp_path: Path) -> None:
    from classgap.config import check_no_cmd, config_id

    cfg = load_config(overrides=["cmd.C=0.001", "cmd.solver=saga", "cmd.layers=[64,32]"])
    assert dict(cfg.cmd) == {"C": 0.001, "solver": "saga", "layers": (64, 32)}
    assert cfg.to_dict()["cmd"] == {"C": 0.001, "layers": [64, 32], "solver": "saga"}
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # a config without cmd keys keeps the dict, and so the run id, it had before the section
    assert "cmd" not in Config().to_dict()
    assert config_id(load_config(overrides=["cmd.C=1"])) != config_id(Config())
    path = tmp_path / "c.toml"
    path.write_text('[cmd]\nC = 0.5\n')
    assert load_config(path).cmd["C"] == 0.5
    with pytest.raises(ConfigError, match=r"'cmd.seed' is not a parameter: \{seed\} is the "
                                          r"run's own placeholder"):
        load_config(overrides=["cmd.seed=1"])
    with pytest.raises(ConfigError, match="letters, digits"):
        load_config(overrides=["cmd.a b=1"])
    with pytest.raises(ConfigError, match=r"'cmd.C' is a parameter of a --train-cmd template "
                                          r"\(\{C\}\) and classgap train has no use for it"):
        check_no_cmd([cfg.__class__(), load_config(overrides=["cmd.C=1"])], "classgap train")
