"""Named studies: a recipe (config overrides), one axis and a number of seeds.

The recipes come from the pilot measurements in the study spec ("Quick defaults"): on the full
Fashion-MNIST training set no regularizer raises the mean, so validation picks "off" and no
class can pay; in the **small-data regime** (a 10k-image stratified training subset, 20 epochs,
the small CNN, batch 128, lr 0.05 cosine, no flip) the unregularized model overfits, and a mixup
axis α ∈ {0, 1, 2} shows the seed paper's effect (validation picks α = 1, the mean rises about
0.8 points, Ankle boot falls about 1.4 points, significantly). ``default`` is that study, cut
to 12 epochs so that its 9 runs fit in 10 minutes on 2 CPU cores (see :data:`SMALL_DATA`); the
other presets run the other axes on the same recipe.

>>> get_preset("crop").axis
'aug.crop=0,2,4'
>>> get_preset("dropx")
Traceback (most recent call last):
...
classgap.errors.ConfigError: unknown preset 'dropx'; valid presets: ...; did you mean 'dropout'?
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from classgap.errors import ConfigError

__all__ = ["PRESETS", "QUICK_OVERRIDES", "QUICK_SEEDS", "SMALL_DATA", "STUDY_BASE", "TINY_DATA",
           "Preset", "get_preset", "list_presets"]

#: The study base recipe: every regularizer that is not on the swept axis is off, so the
#: reference is the regularizer truly off (no weight decay, plain momentum, no label smoothing,
#: no augmentation: flip is off by default), on ``cnn_small``, the two-conv net of the spec's
#: pilots (about 5× cheaper than ``cnn``), validated after the last epoch only.
STUDY_BASE = (
    "data.dataset=fashion-mnist",
    "model.name=cnn_small",
    "optim.weight_decay=0",
    "optim.nesterov=false",
    "optim.label_smoothing=0",
    "optim.batch_size=128",
    "optim.lr=0.05",
    "schedule.name=cosine",
)

#: The small-data regime of the spec's pilot: 10k stratified training images, 20 epochs.
SMALL_DATA = (*STUDY_BASE, "data.train_subset=10000", "data.val_size=5000",
              "train.epochs=20", "train.eval_every=20")

#: The default study's regime: 3k stratified training images, 40 epochs (bench/regimes.py).
TINY_DATA = (*STUDY_BASE, "data.train_subset=3000", "data.val_size=5000",
             "train.epochs=40", "train.eval_every=40")

#: What ``--quick`` changes on top of any preset: a first look in about a minute on 2 cores.
#: Fewer images and epochs (not fewer strengths); 2 seeds keep a seed-level interval.
QUICK_OVERRIDES = (
    "data.train_subset=3000",
    "data.val_size=2000",
    "train.epochs=4",
    "train.eval_every=4",
)
QUICK_SEEDS = 2
DEFAULT_SEEDS = 8


@dataclass(frozen=True)
class Preset:
    """A named study: ``overrides`` on the default config, one ``axis`` and ``seeds``."""

    name: str
    description: str
    axis: str
    overrides: tuple[str, ...] = SMALL_DATA
    seeds: int = 6
    refit: bool = False  # also train the class-aware refit (augmentation axes only)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("default", "Fashion-MNIST 3k images, 40 epochs, cnn_small; pad-crop 0, 2, 4 px; "
                      f"{DEFAULT_SEEDS} seeds (bench/regimes.py: what it shows)",
           "aug.crop=0,2,4", TINY_DATA, DEFAULT_SEEDS, refit=True),
    Preset("quick", "the default shrunk for a first look: 3k images, 4 epochs, 2 seeds",
           "aug.crop=0,2,4", TINY_DATA + QUICK_OVERRIDES, QUICK_SEEDS),
    Preset("mixup", "mixup alpha 0, 1, 2 on the 10k-image, 20-epoch regime "
                    "(a pilot saw Ankle boot pay)", "aug.mixup=0,1,2"),
    Preset("crop", "pad-and-crop translation 0, 2, 4 px on the 10k-image, 20-epoch regime "
                   "(a pilot saw Shirt pay)", "aug.crop=0,2,4"),
    Preset("rrc", "random-resized-crop scale 1.0 (off), 0.6, 0.35, 0.08 on the 10k-image "
                  "regime", "aug.rrc=1.0,0.6,0.35,0.08"),
    Preset("dropout", "dropout 0, 0.5 before the last layer on the 10k-image regime "
                      "(a pilot saw it strongly class-dependent)", "model.dropout=0,0.5"),
    Preset("weight_decay", "weight decay 0, 1e-4, 5e-4, 2e-3, 5e-3 on the 10k-image regime",
           "optim.weight_decay=0,1e-4,5e-4,2e-3,5e-3"),
    Preset("label_smoothing", "label smoothing 0, 0.1, 0.3 on the 10k-image regime",
           "optim.label_smoothing=0,0.1,0.3"),
)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; :class:`ConfigError` with the closest name otherwise."""
    key = str(name).strip().lower().replace("-", "_")
    if key in PRESETS:
        return PRESETS[key]
    close = difflib.get_close_matches(key, list(PRESETS), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}{hint}")


def list_presets() -> list[dict[str, str]]:
    """One row per preset: ``name``, ``axis``, ``seeds`` and a one-line ``description``."""
    return [{"name": p.name, "axis": p.axis, "seeds": str(p.seeds),
             "description": p.description} for p in PRESETS.values()]
