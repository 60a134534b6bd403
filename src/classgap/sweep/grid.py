"""Grids of runs: axes over any config key × seeds → :class:`RunSpec` with a stable ``run_id``.

An axis is one config key and the values it takes (``"aug.rrc=1.0,0.6,0.35"``); a grid is the
product of its axes (or each axis swept alone around the base recipe), each point trained with
seeds ``0 .. S-1`` (``train.seed``), or an explicit list such as ``8-15`` (:func:`parse_seeds`)
for a replication on a disjoint seed set. The same seeds at every point pair the runs: seed ``s`` at
strength ``a`` and at strength ``b`` share the split, the initialisation and the batch order,
so per-class differences between strengths are not drowned in seed noise.

``run_id`` is the first 16 hex digits of the SHA-256 of the resolved config as canonical JSON,
so the same config always gets the same id, whatever grid produced it: that is what lets a
re-run resume and two grids in one study directory share their common runs.
``train.progress`` (a progress bar, not part of the result) is left out of the hash, and so
is a key added later while it holds its default (:data:`classgap.config.ID_NEW_DEFAULTS`).

>>> from classgap.config import load_config
>>> grid = Grid(load_config(overrides=["data.dataset=digits"]),
...             [parse_axis("aug.mixup=0,1"), parse_axis("optim.weight_decay=0,5e-4")], seeds=2)
>>> len(grid.runs()), grid.runs()[0].point
(8, {'aug.mixup': 0.0, 'optim.weight_decay': 0.0})
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classgap._validation import fail
from classgap.config import (
    Config,
    config_id,
    flatten,
    get_key,
    load_config,
    read_toml,
    with_point,
)
from classgap.errors import ConfigError

__all__ = ["MODES", "Axis", "Grid", "RunSpec", "load_grid_toml", "parse_axis", "parse_seeds",
           "run_id"]

MODES = ("product", "one_at_a_time")
run_id = config_id  # a study's run id is the config's id (one id per config everywhere)


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: its resolved config, grid point (axis key → value) and seed."""

    config: Config
    point: dict[str, Any]
    seed: int
    run_id: str

    @classmethod
    def from_config(cls, config: Config, point: Mapping[str, Any]) -> RunSpec:
        return cls(config, dict(point), config.train.seed, run_id(config))


@dataclass(frozen=True)
class Axis:
    """One config key and the values a grid gives it (typed, as in ``Config.to_dict()``).

    Each value is checked by building a default config with it, so a bad key or value fails
    here, naming the axis and the value, before any run starts.
    """

    key: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or self.key.count(".") != 1:
            raise fail("axis", "be SECTION.KEY=V1,V2,...", self.key, error=ConfigError)
        values = tuple(self.values)
        if not values:
            raise fail(f"axis {self.key}", "have at least one value", "none", error=ConfigError)
        seen: set[str] = set()
        for value in values:
            try:
                with_point(Config(), {self.key: value})
            except ConfigError as exc:
                raise ConfigError(f"axis {self.key!r}, value {value!r}: {exc}") from None
            text = json.dumps(value, sort_keys=True)
            if text in seen:
                raise fail(f"axis {self.key}", "not repeat a value", value, error=ConfigError)
            seen.add(text)
        object.__setattr__(self, "values", values)


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets: ``"[0.5,1],1"`` → ``["[0.5,1]", "1"]``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_axis(spec: str) -> Axis:
    """``"section.key=v1,v2,..."`` → :class:`Axis`; each value read as ``--set`` reads it.

    Examples
    --------
    >>> parse_axis("aug.rrc=1.0,0.35").values
    (1.0, 0.35)
    >>> parse_axis("optim.wd=0")
    Traceback (most recent call last):
    ...
    classgap.errors.ConfigError: axis 'optim.wd', value '0': unknown config key 'optim.wd'; ...
    """
    key, sep, text = str(spec).partition("=")
    key = key.strip()
    if not sep or not text.strip() or key.count(".") != 1:
        raise fail("--axis", "be SECTION.KEY=V1,V2,...", spec, error=ConfigError)
    values = []
    for item in _split_values(text):
        if not item:
            raise fail(f"axis {key}", "not hold an empty value", spec, error=ConfigError)
        try:
            config = load_config(overrides=[f"{key}={item}"])
        except ConfigError as exc:
            raise ConfigError(f"axis {key!r}, value {item!r}: {exc}") from None
        values.append(get_key(config.to_dict(), key))
    return Axis(key, tuple(values))


Seeds = int | tuple[int, ...]


def parse_seeds(value: Any) -> Seeds:
    """Seeds per point: a count ``S`` (seeds 0 .. S-1), a range ``"8-15"`` or a list ``"0,3,5"``.

    >>> parse_seeds("3"), parse_seeds("8-11"), parse_seeds("0,3,5"), parse_seeds([2, 4])
    (3, (8, 9, 10, 11), (0, 3, 5), (2, 4))
    """
    def bad() -> Exception:
        return fail("seeds", "be a count S >= 1, a range A-B (A <= B) or a list A,B,... of "
                    "distinct integers >= 0", value, error=ConfigError)

    if isinstance(value, bool):
        raise bad()
    if isinstance(value, int):
        if value < 1:
            raise bad()
        return value
    if isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_seeds(int(text))
        lo, dash, hi = text.partition("-")
        try:
            if dash and lo.strip().isdigit() and hi.strip().isdigit():
                if int(lo) > int(hi):
                    raise bad()
                return tuple(range(int(lo), int(hi) + 1))
            items = [int(t) for t in text.split(",")]
        except ValueError:
            raise bad() from None
    else:
        raise bad()
    if (not items or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in items)
            or len(set(items)) != len(items)):
        raise bad()
    return tuple(items)


def seed_list(seeds: Seeds) -> list[int]:
    """The seeds a :data:`Seeds` value stands for, in order."""
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


@dataclass(frozen=True)
class Grid:
    """Axes × seeds around a base config.

    Parameters
    ----------
    base : Config
        The recipe; every run is ``base`` with the point's keys and ``train.seed`` set.
    axes : sequence of Axis
        Distinct keys.
    seeds : int or tuple of int
        Seeds ``0 .. seeds-1`` per point, or these seeds (see :func:`parse_seeds`).
    mode : {"product", "one_at_a_time"}
        ``product``: every combination of axis values. ``one_at_a_time``: each axis swept
        alone, the other axes at their base values; the base point is included once.
    """

    base: Config
    axes: tuple[Axis, ...]
    seeds: Seeds = 1
    mode: str = "product"
    _points: tuple[dict[str, Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        axes = tuple(self.axes)
        object.__setattr__(self, "axes", axes)
        if not isinstance(self.base, Config):
            raise fail("base", "be a Config", type(self.base).__name__, error=ConfigError)
        object.__setattr__(self, "seeds", parse_seeds(self.seeds))
        if self.mode not in MODES:
            raise fail("mode", f"be one of {', '.join(map(repr, MODES))}", self.mode,
                       error=ConfigError)
        keys = [a.key for a in axes]
        if dup := sorted({k for k in keys if keys.count(k) > 1}):
            raise fail("axes", "have distinct keys", ", ".join(dup), error=ConfigError)
        object.__setattr__(self, "_points", tuple(self._make_points()))

    def _make_points(self) -> list[dict[str, Any]]:
        if not self.axes:
            return [{}]
        if self.mode == "product":
            return [dict(zip([a.key for a in self.axes], combo, strict=True))
                    for combo in itertools.product(*(a.values for a in self.axes))]
        base_data = self.base.to_dict()
        centre = {a.key: get_key(base_data, a.key) for a in self.axes}
        points = [centre]
        for axis in self.axes:
            points += [{**centre, axis.key: v} for v in axis.values if v != centre[axis.key]]
        return points

    @property
    def points(self) -> list[dict[str, Any]]:
        """The grid points in sweep order (axis key → value)."""
        return [dict(p) for p in self._points]

    def runs(self) -> list[RunSpec]:
        """Every run, seed-major (all points of seed 0 first, so a partial study is usable).

        Runs whose resolved configs coincide (a point equal to the base recipe reached along
        two axes) appear once.
        """
        specs: dict[str, RunSpec] = {}
        for seed in seed_list(self.seeds):
            for point in self._points:
                try:
                    config = with_point(self.base, {**point, "train.seed": seed})
                except ConfigError as exc:
                    raise ConfigError(f"grid point {point}: {exc}") from None
                spec = RunSpec.from_config(config, point)
                specs.setdefault(spec.run_id, spec)
        return list(specs.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready definition (what ``study.json`` records)."""
        return {"base": self.base.to_dict(), "axes": {a.key: list(a.values) for a in self.axes},
                "seeds": self.seeds if isinstance(self.seeds, int) else list(self.seeds),
                "mode": self.mode}


_STUDY_KEYS = ("axes", "seeds", "mode")


def load_grid_toml(path: str | os.PathLike[str]) -> Grid:
    """Read a grid from TOML; unknown tables or keys are rejected by name.

    Layout::

        [study]
        axes = {"aug.rrc" = [1.0, 0.6, 0.35], "optim.weight_decay" = [0, 5e-4]}
        seeds = 3
        mode = "product"          # or "one_at_a_time"

        [base]                    # config overrides: dotted keys or sub-tables
        "data.dataset" = "digits"
        optim.lr = 0.1
    """
    file = Path(path)
    data = read_toml(file, "grid")
    for name in data:
        if name not in ("study", "base"):
            raise ConfigError(f"{file}: unknown table {name!r}; valid tables: study, base")
    study = data.get("study", {})
    for name in study:
        if name not in _STUDY_KEYS:
            raise ConfigError(f"{file}: unknown key 'study.{name}'; valid keys: "
                              + ", ".join(f"study.{k}" for k in _STUDY_KEYS))
    axes_table = study.get("axes", {})
    if not isinstance(axes_table, Mapping):
        raise fail("study.axes", "be a table of key = [values]", axes_table, source=str(file),
                   error=ConfigError)
    base = with_point(Config(), flatten(data.get("base", {})))
    axes = tuple(Axis(key, tuple(v) if isinstance(v, list) else (v,))
                 for key, v in flatten(axes_table).items())
    return Grid(base, axes, seeds=study.get("seeds", 1), mode=study.get("mode", "product"))
