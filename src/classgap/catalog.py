"""What classgap knows by name, as tables: models, augmentation knobs, datasets, presets,
losses, recipes, optimizers and schedules, and the numeric paths measured on this machine
(``classgap list TOPIC``).

Each topic is a :class:`Listing`, plain data built from its registry, so the CLI only renders
it and a notebook can read it.

>>> listing("presets").columns[:2]
('name', 'axis')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from classgap._registry import Registry

__all__ = ["TOPICS", "Listing", "listing"]


@dataclass(frozen=True)
class Listing:
    """A titled table: ``columns``, one tuple of text a row; ``right`` names the numeric
    columns (right-aligned)."""

    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    right: tuple[str, ...] = ()


TOPICS: Registry[Callable[[], Listing]] = Registry("topic", sort=False)


@TOPICS.register("models")
def _models() -> Listing:
    from classgap.models import list_models, model_info

    rows = []
    for name in list_models():
        info = model_info(name)
        rows.append((name, f"{info['params']:,}", f"{info['macs'] / 1e6:.1f} M",
                     "×".join(map(str, info["default_input"])),
                     "×".join(map(str, info["min_image_size"])), info["description"]))
    return Listing("Models (params and multiply-adds per image for 10 classes at the default "
                   "input; a training step costs about 3× the forward)",
                   ("name", "params", "MACs/image", "default input", "min size", "description"),
                   rows, right=("params", "MACs/image"))


@TOPICS.register("augs")
def _augs() -> Listing:
    from classgap.augment import list_augs

    return Listing("Augmentation knobs (--aug NAME=VALUE; \\[v1, ...] per class)",
                   ("name", "unit", "off", "range", "description"),
                   [(r["name"], r["unit"], f"{r['off']:g}", r["range"], r["description"])
                    for r in list_augs()])


@TOPICS.register("datasets")
def _datasets() -> Listing:
    from classgap.data.registry import SOURCES, SPLITS, list_datasets

    return Listing("Datasets (--dataset SPEC)", ("spec", "splits", "reads"),
                   [(spec, ", ".join(SPLITS[name]), SOURCES[name])
                    for spec in list_datasets() for name in [spec.partition(":")[0]]])


@TOPICS.register("presets")
def _presets() -> Listing:
    from classgap.sweep.presets import list_presets

    return Listing("Study presets (classgap study --preset NAME)",
                   ("name", "axis", "seeds", "description"),
                   [(r["name"], r["axis"], r["seeds"], r["description"])
                    for r in list_presets()])


@TOPICS.register("losses")
def _losses() -> Listing:
    from classgap.losses import list_losses, loss_info

    rows = []
    for name in list_losses():
        info = loss_info(name)
        params = ", ".join(f"{k}={v}" if k != "label_smoothing" else f"optim.{k}={v}"
                           for k, v in info["params"].items() if k != "weight")
        needs = ", ".join(n for n, flag in (("class counts", info["needs_counts"]),
                                            ("features", info["needs_features"])) if flag)
        rows.append((name, params or "–", needs or "–", info["description"]))
    return Listing("Losses (--loss NAME; parameters: --set loss.KEY=VALUE)",
                   ("name", "parameters (defaults)", "needs", "description"), rows)


@TOPICS.register("recipes")
def _recipes() -> Listing:
    from classgap.train.recipes import list_recipes

    return Listing("Recipes (--recipe METHOD or METHOD@SETTING; default setting @fmnist-lt)",
                   ("name", "kind", "description"),
                   [(r["name"], r["kind"], r["description"]) for r in list_recipes()])


@TOPICS.register("optimizers")
def _optimizers() -> Listing:
    from classgap.config import OPTIMIZERS

    return Listing("Optimizers (--optim NAME or --set optim.name=NAME)", ("name", "description"),
                   [(name, OPTIMIZERS.get(name)) for name in OPTIMIZERS])


@TOPICS.register("schedules")
def _schedules() -> Listing:
    from classgap.config import SCHEDULES

    return Listing("Learning-rate schedules (--set schedule.name=NAME)", ("name", "description"),
                   [(name, SCHEDULES.get(name)) for name in SCHEDULES])


@TOPICS.register("devices")
def _devices() -> Listing:
    from classgap.train.precision import cache_dir, cached_choices, cpu_info, path_name

    cpu = cpu_info()
    paths = ("fp32", "fp32+cl", "bf16", "bf16+cl")
    rows = []
    for entry in cached_choices():
        _, model, shape, k, batch, threads, _ = entry["key"].split("/")
        timings = entry.get("timings_ms", {})
        rows.append((model, shape, k[1:], batch[1:], threads[1:],
                     *(f"{timings[p]:.2f}" if p in timings else "–" for p in paths),
                     path_name(entry["bf16"], entry["channels_last"]),
                     str(entry.get("measured_at", "–"))[:16].replace("T", " ")))
    if not rows:
        rows.append(("none yet: the first run with train.precision=auto measures its shape",
                     *("",) * 10))
    flags = ", ".join(cpu["flags"]) or "none of avx2, avx512f, avx512_bf16, amx"
    return Listing(f"This machine: {cpu['model']} ({cpu['machine']}; {flags}; native bf16: "
                   f"{'yes' if cpu['native_bf16'] else 'no'}). Numeric paths measured for "
                   f"train.precision=auto, ms a training step (cache: {cache_dir()})",
                   ("model", "input", "classes", "batch", "threads", *paths, "chosen",
                    "measured"), rows, right=paths)


def listing(topic: str) -> Listing:
    """The table of ``topic`` (one of :data:`TOPICS`)."""
    return TOPICS.get(topic)()
