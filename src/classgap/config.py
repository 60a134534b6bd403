"""Typed, frozen, layered training configuration: defaults ← TOML file ← ``--set key=value``.

Every value has one home, ``section.key``, and one type, read from the dataclass field; a key
that does not exist is rejected by name with the valid keys and the closest one::

    unknown config key 'optim.wd'; valid keys: optim.name, optim.lr, ...; did you mean
    'optim.weight_decay'?

The resolved :class:`Config` is what a run stores (``config.json``), and
``Config.from_dict(cfg.to_dict()) == cfg``.

One section is free-form: ``cmd`` holds the parameters of a ``--train-cmd`` template
(``--axis cmd.C=0.01,1`` fills ``{C}``); classgap's own trainer reads none of them, so a run
that sets one without a training command is an error (:func:`check_no_cmd`).

>>> cfg = load_config(overrides=["optim.lr=0.1", "aug.rrc=0.5", "train.epochs=2"])
>>> cfg.optim.lr, dict(cfg.aug), cfg.train.epochs
(0.1, {'rrc': 0.5}, 2)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

from classgap._registry import Registry
from classgap._validation import fail, fmt_value
from classgap.errors import ClassgapError, ConfigError

__all__ = ["AUG_KNOBS", "CMD_RESERVED", "DEFAULT_WARMUP_EPOCHS", "OPTIMIZERS", "SCHEDULES",
           "Config", "DataConfig", "LossConfig", "ModelConfig", "OptimConfig", "ScheduleConfig",
           "TrainConfig", "check_no_cmd", "config_id", "config_keys", "flatten", "get_key",
           "load_config", "with_point"]

#: Optimizers by name (``optim.name``) → what they are; built by
#: :func:`classgap.train.optim.build_optimizer`, which has one builder per name.
OPTIMIZERS: Registry[str] = Registry("optimizer", error=ConfigError, sort=False)
OPTIMIZERS.add("sgd", "SGD with momentum (optim.nesterov), weight decay off norms and biases")
OPTIMIZERS.add("adamw", "AdamW (decoupled weight decay), betas (optim.momentum, 0.999)")
OPTIMIZERS.add("sam", "SAM around the same SGD (optim.rho, optim.adaptive for ASAM)")
#: Learning-rate schedules by name (``schedule.name``) → what they are; computed by
#: :func:`classgap.train.optim.lr_factor`.
SCHEDULES: Registry[str] = Registry("schedule", error=ConfigError, sort=False)
SCHEDULES.add("cosine", "linear warm-up, then cosine to ~0 at the last step")
SCHEDULES.add("step", "warm-up, then times schedule.gamma at each of schedule.milestones")
SCHEDULES.add("onecycle", "torch's OneCycleLR: cosine rise to the peak, cosine fall")
SCHEDULES.add("constant", "warm-up, then the peak learning rate")

#: Augmentation knobs, used when :mod:`classgap.augment` cannot be imported.
AUG_KNOBS = ("rrc", "crop", "flip", "jitter", "cutout", "mixup", "cutmix")
AugValue = float | tuple[float, ...]  # one strength, or one per class (class-conditional)
#: A ``cmd.*`` value: whatever a command line can take (a list travels as a tuple).
CmdValue = str | int | float | bool | None | tuple[Any, ...]
#: Placeholders of a ``--train-cmd`` template that classgap fills itself, never from ``cmd.*``.
CMD_RESERVED = ("seed", "out", "run_id")
_CMD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "fashion-mnist"  # a spec of classgap.data.load_dataset
    data_dir: str | None = None  # where to look first for files
    train_subset: int | None = None  # stratified training subset size (after the val split)
    val_size: int | float = 5000  # validation count, or fraction in (0, 1); 0 = none
    split_seed: int = 0  # val split / subset / long-tail seed: fixed across run seeds
    #: Test share of a folder: or npz: dataset that holds one split (stratified, fixed seed
    #: TEST_SPLIT_SEED, so every run of a study is tested on the same images).
    test_fraction: float = 0.2
    image_size: tuple[int, ...] | None = None  # (H, W) or (S,) for S x S: resize (bilinear)
    imbalance: float | None = None  # long-tail ratio rho = n_max / n_min of the train side
    profile: str = "exp"  # long-tail profile: exp | step


@dataclass(frozen=True)
class ModelConfig:
    name: str = "cnn"  # classgap.models.list_models()
    head: str = "linear"  # linear | cosine
    dropout: float = 0.0  # before the head


@dataclass(frozen=True)
class OptimConfig:
    name: str = "sgd"  # sgd | adamw | sam (SAM around this SGD)
    # Peak learning rate (per batch of batch_size). 0.03, not 0.05: with Nesterov at 0.05 a
    # cnn_small run under augmentation could still end with most units of its fully
    # connected layer dead after the warm-up (2 of 180 runs); at 0.03, none of 180
    # (bench/stability.py --set optim.lr=0.03, bench/RESULTS.md). The study presets pin 0.05.
    lr: float = 0.03
    momentum: float = 0.9  # SGD momentum (AdamW: beta1)
    nesterov: bool = True
    weight_decay: float = 5e-4
    wd_exempt_norm_bias: bool = True  # no decay on 1-D params (norm weights, biases)
    batch_size: int = 128
    label_smoothing: float | tuple[float, ...] = 0.0  # one epsilon, or one per class
    rho: float = 0.05  # sam: radius of the ascent step
    adaptive: bool = False  # sam: ASAM (scale-invariant radius)
    rho_schedule: str = "constant"  # sam: constant | step | linear (per epoch)
    rho_milestones: tuple[float, ...] = ()  # sam, step: 0-based epochs where rho changes
    rho_values: tuple[float, ...] = ()  # sam, step: rho from each milestone on
    rho_end: float | None = None  # sam, linear: rho at the last epoch
    drw_rho: float | None = None  # sam: rho once loss.drw_epoch is reached


@dataclass(frozen=True)
class LossConfig:
    """The training loss (:mod:`classgap.losses`); ``None`` keeps a loss's own default."""

    name: str = "ce"  # classgap.losses.list_losses()
    gamma: float | None = None  # focal (1) / vs (0.3) / poly (2)
    theta: float | None = None  # poly (0.8)
    beta: float | None = None  # class_balanced effective-number beta (0.9999)
    max_m: float | None = None  # ldam largest margin (0.5)
    s: float | None = None  # ldam logit scale (30)
    tau: float | None = None  # vs / logit_adjusted prior exponent (1)
    c_bar: float | None = None  # mr2 mean margin (1)
    lam: float | None = None  # mr2 representation-term weight (0.1)
    ema: float | None = None  # mr2 statistics decay (0.9)
    p: float | None = None  # mr2 norm of the statistics (2)
    temperature: float | None = None  # mr2 representation temperature (10·D)
    reset_every_epoch: bool | None = None  # mr2: forget the statistics each epoch (False)
    drw_epoch: int | None = None  # deferred re-weighting: class-balanced weights from this epoch
    drw_beta: float = 0.9999  # beta of the DRW weights
    #: Worst-class reweighting: class weights updated each epoch from training statistics
    #: (clam | tilted | ggf | apstar; classgap.losses.worst_class), None: off.
    reweight: str | None = None
    reweight_clip: tuple[float, ...] | None = None  # clam / apstar weight bounds (0.5, 2)
    reweight_mix: float | None = None  # tilted: share of the new softmax weights (0.5)
    reweight_discount: float | None = None  # ggf discount per rank (0.95)
    reweight_min_weight: float | None = None  # ggf weight floor (0.1)
    reweight_alpha: float | None = None  # apstar memory of the old weights (0.5)

    def reweight_params(self) -> dict[str, Any]:
        """The worst-class reweighting parameters set here, by the rule's own names."""
        return {k.removeprefix("reweight_"): (tuple(v) if k == "reweight_clip" else v)
                for k in ("reweight_clip", "reweight_mix", "reweight_discount",
                          "reweight_min_weight", "reweight_alpha")
                if (v := getattr(self, k)) is not None}

    #: The fields that are parameters of the loss itself (the rest configure DRW).
    PARAMS: ClassVar[tuple[str, ...]] = ("gamma", "theta", "beta", "max_m", "s", "tau", "c_bar",
                                         "lam", "ema", "p", "temperature", "reset_every_epoch")

    def params(self) -> dict[str, Any]:
        """The loss parameters set here (``None`` = the loss's default), for ``create_loss``."""
        return {k: v for k in self.PARAMS if (v := getattr(self, k)) is not None}


#: The linear warm-up (epochs) of ``schedule.warmup_epochs = None`` for cosine, step and
#: constant: without one, ``cnn_small`` under augmentation sometimes collapsed, the full lr of
#: the first steps killing the ReLU units of its fully connected layer (seed 0 of the issue's
#: 1-epoch run: 27.5% training accuracy, 31 of 32 units dead); bench/stability.py measures it.
DEFAULT_WARMUP_EPOCHS = 0.5


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "cosine"  # cosine | step | onecycle | constant
    # linear warm-up; None: DEFAULT_WARMUP_EPOCHS (onecycle: its rise; None or 0 = 30% of training)
    warmup_epochs: float | None = None
    milestones: tuple[float, ...] = ()  # step: epochs at which lr *= gamma
    gamma: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto (bf16 autocast) | fp32 | bf16
    channels_last: bool | str = "auto"  # auto = with bf16
    threads: int | None = None  # torch.set_num_threads; None keeps torch's default
    eval_every: int = 1  # validate every n epochs (and always after the last)
    checkpoint: bool = False  # save model.pt
    progress: bool = True  # progress bar (only on a terminal)
    track_test: bool = False  # test accuracy in history every epoch (curves; never to select)
    bn_recompute: bool | str = "auto"  # BatchNorm statistics from training batches before
    # each evaluation; auto = runs of fewer than 300 optimizer steps


def _empty_aug() -> Mapping[str, AugValue]:
    return types.MappingProxyType({})


def _empty_cmd() -> Mapping[str, CmdValue]:
    return types.MappingProxyType({})


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one training run (see the section dataclasses)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    aug: Mapping[str, AugValue] = field(default_factory=_empty_aug)  # knob → strength; {} off
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    #: Parameters of a ``--train-cmd`` template (name → value), free-form; {} without one.
    cmd: Mapping[str, CmdValue] = field(default_factory=_empty_cmd)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, dict[str, Any]]]]:
        # `aug` is a read-only mappingproxy, which does not pickle; travel as a plain dict
        # (worker processes, Ray tasks) and rebuild, validating on the way in.
        return (Config.from_dict, (self.to_dict(),))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain JSON/TOML-ready nested dict (tuples become lists; ``None`` kept).

        ``cmd`` appears only when set, so a config without one keeps the dict (and the run id)
        it had before the section existed.
        """
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            if name == "cmd":
                if self.cmd:
                    out[name] = {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in sorted(self.cmd.items())}
                continue
            if name == "aug":
                out[name] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in sorted(self.aug.items())}
                continue
            section = getattr(self, name)
            out[name] = {f.name: (list(v) if isinstance(v := getattr(section, f.name), tuple)
                                  else v) for f in dataclasses.fields(section)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Build from a (partial) nested dict; missing keys keep their defaults."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"config must be a mapping of sections; got {fmt_value(data)}")
        kwargs: dict[str, Any] = {}
        for name, values in data.items():
            if name not in SECTIONS:
                raise _unknown("section", name, list(SECTIONS))
            if not isinstance(values, Mapping):
                raise fail(name, "be a table of keys", values, error=ConfigError)
            if name == "aug":
                kwargs[name] = types.MappingProxyType(
                    {k: _aug_value(k, v) for k, v in sorted(values.items()) if _aug_key(k)})
                continue
            if name == "cmd":
                kwargs[name] = types.MappingProxyType(
                    {k: _cmd_value(k, v) for k, v in sorted(values.items())})
                continue
            cls_ = SECTIONS[name]
            hints = typing.get_type_hints(cls_)
            known = [f.name for f in dataclasses.fields(cls_)]
            parsed = {}
            for key, value in values.items():
                if key not in known:
                    raise _unknown("key", f"{name}.{key}", [f"{name}.{k}" for k in known])
                parsed[key] = _coerce(value, hints[key], f"{name}.{key}")
            kwargs[name] = cls_(**parsed)
        config = cls(**kwargs)
        _check(config)
        return config


SECTIONS: dict[str, Any] = {"data": DataConfig, "model": ModelConfig, "aug": None,
                            "optim": OptimConfig, "schedule": ScheduleConfig,
                            "train": TrainConfig, "loss": LossConfig, "cmd": None}


# ------------------------------------------------------------------ config keys: one API
#
# A key is ``section.name`` (``optim.lr``, ``aug.rrc``); a *point* maps keys to values. The grid,
# the pipeline, the refit, the ensemble trainer and the CLI read and set keys through these
# four functions, and every run directory and study run is named by :func:`config_id`.

#: Keys left out of :func:`config_id`: display only (the same run with or without a bar).
ID_IGNORED = (("train", "progress"),)
#: Keys added after studies existed, left out of :func:`config_id` while at their default, so a
#: study directory written before them keeps its run ids (and resumes, and re-reports).
ID_NEW_DEFAULTS = {("train", "bn_recompute"): "auto", ("data", "test_fraction"): 0.2,
                   ("data", "image_size"): None, ("loss", "theta"): None,
                   ("loss", "reweight"): None, ("loss", "reweight_clip"): None,
                   ("loss", "reweight_mix"): None, ("loss", "reweight_discount"): None,
                   ("loss", "reweight_min_weight"): None, ("loss", "reweight_alpha"): None}


def get_key(config: Config | Mapping[str, Any], key: str) -> Any:
    """The value of ``section.name`` in a config or its ``to_dict()`` (None when unset).

    >>> get_key(load_config(overrides=["optim.lr=0.2"]), "optim.lr")
    0.2
    """
    data = config.to_dict() if isinstance(config, Config) else config
    section, _, name = key.partition(".")
    return data.get(section, {}).get(name)


def with_point(config: Config, point: Mapping[str, Any]) -> Config:
    """``config`` with each ``section.name`` of ``point`` set, validated again.

    ``None`` on an ``aug`` knob switches the knob off (removes it).

    >>> with_point(Config(), {"optim.lr": 0.3, "aug.flip": 0.5}).optim.lr
    0.3
    """
    data = copy.deepcopy(config.to_dict())
    for key, value in point.items():
        section, _, name = key.partition(".")
        if section == "aug" and value is None:
            data["aug"].pop(name, None)
        else:
            data.setdefault(section, {})[name] = value
    return Config.from_dict(data)


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Section tables as a point: ``{"optim": {"lr": 0.1}}`` → ``{"optim.lr": 0.1}``.

    Only sections are tables (a TOML ``[base.optim]`` or ``optim = {...}``); a key is never
    deeper than ``section.name``, so a table inside a section stays the key's value.

    >>> flatten({"optim": {"lr": 0.1}, "aug": {"rrc": 0.5}})
    {'optim.lr': 0.1, 'aug.rrc': 0.5}
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and "." not in name:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_id(config: Config) -> str:
    """The id of a config: 16 hex digits of SHA-256 of its canonical JSON.

    Canonical: ``to_dict()`` with sorted keys, without :data:`ID_IGNORED` keys and without
    :data:`ID_NEW_DEFAULTS` keys at their default. A study's run id and a run directory's name
    (``classgap train``) are this id, so one config has one id everywhere.
    """
    data = config.to_dict()
    for section, key in ID_IGNORED:
        data[section].pop(key, None)
    for (section, key), default in ID_NEW_DEFAULTS.items():
        if data[section].get(key) == default:
            data[section].pop(key)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def aug_knobs() -> list[str]:
    """Augmentation knob names (from :mod:`classgap.augment` when it is installed)."""
    try:
        from classgap.augment import list_augs
    except ImportError:  # augment is optional at import time of the config
        return list(AUG_KNOBS)
    return [str(a["name"]) for a in list_augs()]


def config_keys() -> list[str]:
    """Every valid ``section.key`` in section order (aug: one key per knob; ``cmd.*`` is
    free-form, so none of its keys)."""
    keys = []
    for name, cls_ in SECTIONS.items():
        if name == "cmd":
            continue
        if cls_ is None:
            keys += [f"aug.{k}" for k in aug_knobs()]
        else:
            keys += [f"{name}.{f.name}" for f in dataclasses.fields(cls_)]
    return keys


def read_toml(path: str | os.PathLike[str], kind: str = "config") -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is one ConfigError naming it."""
    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: {kind} file does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: cannot be read as TOML ({exc})") from None


def load_config(path: str | os.PathLike[str] | None = None,
                overrides: Sequence[str] = ()) -> Config:
    """Defaults, updated by a TOML file, updated by ``key=value`` overrides, validated.

    Parameters
    ----------
    path : path, optional
        TOML file with ``[section]`` tables (or dotted keys ``optim.lr = 0.1``).
    overrides : sequence of str
        ``"section.key=value"``; the value is read as a TOML literal (``0.1``, ``true``,
        ``[2, 4]``), and as plain text where the field is a string; ``none`` clears an
        optional field. A per-class augmentation is a list ``aug.rrc=[0.5, 1, ...]`` or
        ``aug.rrc=0.5,1,...``.

    Returns
    -------
    Config
    """
    layered: dict[str, dict[str, Any]] = {}
    if path is not None:
        data = read_toml(path, "config")
        for name, values in data.items():
            if name not in SECTIONS:
                raise _unknown("section", name, list(SECTIONS))
            if not isinstance(values, dict):
                raise fail(name, "be a table of keys", values, error=ConfigError)
            layered.setdefault(name, {}).update(values)
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise fail("--set", "be SECTION.KEY=VALUE", item, error=ConfigError)
        section, _, name = key.partition(".")
        if section not in SECTIONS:
            raise _unknown("section", section, list(SECTIONS))
        layered.setdefault(section, {})[name] = _Text(text.strip())
    return Config.from_dict(layered)


# -- values -----------------------------------------------------------------------------------

class _Text(str):
    """A value typed on the command line: parsed by the field's type, not by TOML alone."""


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               type(None): "none"}


def _literal(text: str) -> Any:
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):  # True/FALSE too, not only TOML's lowercase
        return text.lower() == "true"
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if "," in text:  # 0.5,1,1 without brackets
            return [_literal(t.strip()) for t in text.split(",")]
        return text


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` as type ``tp`` (int, float, bool, str, tuple[float, ...] and unions)."""
    options = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    if isinstance(value, _Text):
        if str in options and not (bool in options and value.lower() in ("true", "false")):
            return None if type(None) in options and value.lower() in ("none", "null") \
                else str(value)
        value = _literal(str(value))
    for option in options:
        if option is type(None) and value is None:
            return None
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if typing.get_origin(option) is tuple:
            items = value if isinstance(value, list | tuple) else [value]
            if typing.get_args(option)[0] is int:  # sizes: whole numbers only, kept as int
                if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
                    return tuple(items)
            elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
                return tuple(float(v) for v in items)
    names = [("a list of integers" if typing.get_args(o)[0] is int else "a list of numbers")
             if typing.get_origin(o) is tuple else _TYPE_NAMES[o] for o in options]
    raise fail(key, f"be {' or '.join(names)}", value, error=ConfigError)


def _aug_key(name: str) -> bool:
    knobs = aug_knobs()
    if name not in knobs:
        raise _unknown("key", f"aug.{name}", [f"aug.{k}" for k in knobs])
    return True


def _aug_value(name: str, value: Any) -> AugValue:
    v = _coerce(value, float | tuple[float, ...], f"aug.{name}")
    if isinstance(v, tuple) and len(v) == 1:
        v = v[0]
    try:
        from classgap.augment import parse_aug
    except ImportError:  # pragma: no cover - augment ships with classgap
        return v
    text = json.dumps(list(v)) if isinstance(v, tuple) else repr(v)
    try:
        parse_aug(f"{name}={text}")  # the augment package owns each knob's valid range
    except ValueError as exc:  # InputError: same template, reported as a config error
        raise ConfigError(str(exc)) from None
    return v


def _cmd_value(name: str, value: Any) -> CmdValue:
    """A ``cmd.<name>`` value, as ``--set`` types it (``0.1`` a number, ``saga`` text)."""
    key = f"cmd.{name}"
    if not isinstance(name, str) or not _CMD_NAME.fullmatch(name):
        raise fail("cmd key", "be a name of letters, digits, '_' or '-' (it is the "
                   "placeholder {NAME} of --train-cmd)", key, error=ConfigError)
    if isinstance(value, _Text):
        value = _literal(str(value))
    if name in CMD_RESERVED:
        raise ConfigError(f"'{key}' is not a parameter: {{{name}}} is the run's own placeholder, "
                          f"filled by classgap; got {key}={fmt_value(value)}")
    items = value if isinstance(value, list | tuple) else [value]
    if not all(v is None or isinstance(v, str | int | float | bool) for v in items):
        raise fail(key, "be a string, a number, true/false or a list of them", value,
                   error=ConfigError)
    return tuple(value) if isinstance(value, list | tuple) else value


def check_no_cmd(configs: Iterable[Config], why: str) -> None:
    """Raise :class:`ConfigError` when a config sets ``cmd.*``: only a ``--train-cmd``
    template reads those keys, and ``why`` is the trainer that would ignore them."""
    for config in configs:
        if config.cmd:
            name, value = next(iter(config.to_dict()["cmd"].items()))
            raise ConfigError(f"'cmd.{name}' is a parameter of a --train-cmd template "
                              f"({{{name}}}) and {why} has no use for it: drop the key, or "
                              f"train with classgap study --train-cmd; got "
                              f"cmd.{name}={fmt_value(value)}")


def _suggest(name: str, options: Sequence[str]) -> str | None:
    """Closest option: an initialism (``wd`` → ``weight_decay``), a prefix, else difflib."""
    section, _, short = name.rpartition(".")
    same = [o for o in options if o.rpartition(".")[0] == section] or list(options)
    for o in same:
        tail = o.rpartition(".")[2]
        if short and ("".join(p[:1] for p in tail.split("_")) == short
                      or tail.startswith(short) or short.startswith(tail)):
            return o
    close = difflib.get_close_matches(name, same, n=1, cutoff=0.5)
    return close[0] if close else None


def _unknown(kind: str, name: str, options: Sequence[str]) -> ConfigError:
    hint = _suggest(name, options)
    plural = "sections" if kind == "section" else "keys"
    return ConfigError(f"unknown config {kind} {name!r}; valid {plural}: {', '.join(options)}"
                       + (f"; did you mean {hint!r}?" if hint else ""))


def _choice(key: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        hint = difflib.get_close_matches(value, choices, n=1)
        raise ConfigError(f"'{key}' must be one of {', '.join(map(repr, choices))}; got "
                          f"{fmt_value(value)}" + (f" (did you mean {hint[0]!r}?)" if hint
                                                   else ""))


def _check(c: Config) -> None:
    """Ranges and choices, one ConfigError naming ``section.key`` and the value."""
    def need(ok: bool, key: str, constraint: str, value: Any) -> None:
        if not ok:
            raise fail(key, constraint, value, error=ConfigError)

    d, o, s, t = c.data, c.optim, c.schedule, c.train
    need(d.train_subset is None or d.train_subset >= 1, "data.train_subset", "be >= 1",
         d.train_subset)
    need((isinstance(d.val_size, int) and d.val_size >= 0) or 0 < d.val_size < 1,
         "data.val_size", "be an integer >= 0 or a fraction in (0, 1)", d.val_size)
    need(d.imbalance is None or d.imbalance > 1, "data.imbalance", "be > 1", d.imbalance)
    need(0 < d.test_fraction < 1, "data.test_fraction", "be in (0, 1)", d.test_fraction)
    need(d.image_size is None or (len(d.image_size) in (1, 2) and min(d.image_size) >= 1),
         "data.image_size", "be H,W (or one S for S x S), positive integers",
         None if d.image_size is None else list(d.image_size))
    _choice("data.profile", d.profile, ("exp", "step"))
    need(0 <= c.model.dropout < 1, "model.dropout", "be in [0, 1)", c.model.dropout)
    _choice("optim.name", o.name, OPTIMIZERS.list())
    if o.name == "sam":
        _check_rho(c)
    need(o.lr > 0, "optim.lr", "be > 0", o.lr)
    need(0 <= o.momentum < 1, "optim.momentum", "be in [0, 1)", o.momentum)
    need(o.weight_decay >= 0, "optim.weight_decay", "be >= 0", o.weight_decay)
    need(o.batch_size >= 1, "optim.batch_size", "be >= 1", o.batch_size)
    smoothing = o.label_smoothing if isinstance(o.label_smoothing, tuple) else (o.label_smoothing,)
    need(all(0 <= e < 1 for e in smoothing), "optim.label_smoothing",
         "be in [0, 1) (one value, or one per class)", o.label_smoothing)
    need(not isinstance(o.label_smoothing, tuple) or c.loss.name == "ce",
         "optim.label_smoothing", f"be one value with loss.name={c.loss.name!r} (a per-class "
         "value is for plain cross-entropy)", o.label_smoothing)
    _choice("schedule.name", s.name, SCHEDULES.list())
    need(t.epochs >= 1, "train.epochs", "be >= 1", t.epochs)
    need(t.bn_recompute in (True, False, "auto"), "train.bn_recompute",
         "be true, false or 'auto'", t.bn_recompute)
    need(s.warmup_epochs is None or 0 <= s.warmup_epochs < t.epochs,
         "schedule.warmup_epochs", f"be in [0, train.epochs={t.epochs}) or none",
         s.warmup_epochs)
    need(list(s.milestones) == sorted(s.milestones) and all(m > 0 for m in s.milestones),
         "schedule.milestones", "be increasing epochs > 0", list(s.milestones))
    need(s.gamma > 0, "schedule.gamma", "be > 0", s.gamma)
    need(t.seed >= 0, "train.seed", "be >= 0", t.seed)
    need(t.device in ("auto", "cpu", "cuda", "mps") or t.device.startswith("cuda:"),
         "train.device", "be auto, cpu, cuda, cuda:N or mps", t.device)
    _choice("train.precision", t.precision, ("auto", "fp32", "bf16"))
    need(isinstance(t.channels_last, bool) or t.channels_last == "auto",
         "train.channels_last", "be auto, true or false", t.channels_last)
    need(t.threads is None or t.threads >= 1, "train.threads", "be >= 1", t.threads)
    need(t.eval_every >= 1, "train.eval_every", "be >= 1", t.eval_every)
    for name, v in c.aug.items():
        values = v if isinstance(v, tuple) else (v,)
        need(all(x >= 0 for x in values), f"aug.{name}", "be >= 0", v)
    _check_loss(c)


def _check_rho(c: Config) -> None:
    o = c.optim
    _choice("optim.rho_schedule", o.rho_schedule, ("constant", "step", "linear"))
    if o.drw_rho is not None and c.loss.drw_epoch is None:
        raise ConfigError(f"'optim.drw_rho' needs loss.drw_epoch (the epoch DRW starts); got "
                          f"optim.drw_rho={o.drw_rho} without it")
    try:
        from classgap.optim import make_rho_schedule
    except ImportError:  # pragma: no cover - optim ships with classgap
        return
    try:
        make_rho_schedule(o.rho_schedule, o.rho, milestones=o.rho_milestones,
                          values=o.rho_values, rho_end=o.rho_end, epochs=c.train.epochs,
                          drw_epoch=c.loss.drw_epoch if o.drw_rho is not None else None,
                          drw_rho=o.drw_rho)
    except ConfigError as err:
        raise ConfigError(f"optim (sam): {err}") from None


def _check_loss(c: Config) -> None:
    """The loss exists, takes the parameters set, and fits the augmentation and DRW epoch."""
    lc = c.loss
    if lc.drw_epoch is not None and not 0 <= lc.drw_epoch < c.train.epochs:
        raise fail("loss.drw_epoch", f"be in [0, train.epochs={c.train.epochs})", lc.drw_epoch,
                   error=ConfigError)
    if not 0 <= lc.drw_beta < 1:
        raise fail("loss.drw_beta", "be in [0, 1)", lc.drw_beta, error=ConfigError)
    try:
        from classgap.losses import create_loss, list_losses, loss_info
    except ImportError:  # pragma: no cover - losses ship with classgap
        return
    _choice("loss.name", lc.name, list_losses())
    if lc.reweight is None and lc.reweight_params():
        key = next(iter(lc.reweight_params()))
        raise ConfigError(f"'loss.reweight_{key}' needs loss.reweight (clam, tilted, ggf or "
                          "apstar) to be set; got loss.reweight=None")
    if lc.reweight is not None:
        from classgap.losses import REWEIGHT_METHODS

        _choice("loss.reweight", lc.reweight, REWEIGHT_METHODS)
        from classgap.losses import REWEIGHT_DEFAULTS, class_weights_update

        params = lc.reweight_params()
        takes = ", ".join(f"loss.reweight_{k}" for k in REWEIGHT_DEFAULTS[lc.reweight])
        for key in params:
            if key not in REWEIGHT_DEFAULTS[lc.reweight]:
                raise ConfigError(f"'loss.reweight_{key}' is not a parameter of "
                                  f"{lc.reweight!r} (it takes {takes}); got "
                                  f"{fmt_value(getattr(lc, 'reweight_' + key))}")
        dummy: dict[str, Any] = {"train_acc" if lc.reweight == "clam" else "train_loss":
                                 [0.5, 0.5]}
        try:  # ranges, checked once here on two dummy classes
            class_weights_update(lc.reweight, [1.0, 1.0], **dummy, **params)
        except ClassgapError as err:
            raise ConfigError(f"loss.reweight={lc.reweight!r}: {err}") from None
        if lc.drw_epoch is not None:
            raise ConfigError(f"'loss.reweight' and 'loss.drw_epoch' both set the class "
                              f"weights: use one; got loss.reweight={lc.reweight!r} and "
                              f"loss.drw_epoch={lc.drw_epoch}")
    takes = loss_info(lc.name)["params"]
    params = lc.params()
    for key in params:
        if key not in takes:
            raise ConfigError(f"'loss.{key}' is not a parameter of loss {lc.name!r} (it takes "
                              f"{', '.join(k for k in takes if k != 'weight') or 'none'}); "
                              f"got {fmt_value(getattr(lc, key))}")
    try:  # ranges, checked once here (on two dummy classes) rather than at the first step
        create_loss(lc.name, class_counts=[2, 1], **params)
    except ConfigError as err:
        raise ConfigError(f"loss {lc.name!r}: {err}") from None
    mixing = [f"aug.{k}" for k in ("mixup", "cutmix") if _active(c.aug.get(k))]
    if mixing and (lc.name != "ce" or lc.drw_epoch is not None or lc.reweight is not None):
        raise ConfigError(f"{mixing[0]} mixes labels, which only plain cross-entropy takes; "
                          f"got loss.name={lc.name!r}"
                          + (f" with loss.drw_epoch={lc.drw_epoch}" if lc.drw_epoch is not None
                             else f" with loss.reweight={lc.reweight!r}"
                             if lc.reweight is not None else ""))


def _active(v: AugValue | None) -> bool:
    return v is not None and any(x > 0 for x in (v if isinstance(v, tuple) else (v,)))
