"""The presets' warm-up: on for the ``cnn_small`` presets, off for the default study's MLP."""

from __future__ import annotations

import pytest

from classgap.config import config_id, load_config
from classgap.sweep.presets import MLP_5K, PRESETS, QUICK_OVERRIDES, SMALL_DATA, get_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_warm_up_of_every_preset(name: str) -> None:
    preset = get_preset(name)
    warmup = load_config(overrides=list(preset.overrides)).schedule.warmup_epochs
    if load_config(overrides=list(preset.overrides)).model.name == "mlp":
        # the default study's regime keeps its measured numbers (and run ids): no warm-up
        assert warmup == 0.0
    else:
        assert warmup is None  # the default half-epoch warm-up (bench/stability.py)


def test_the_default_study_runs_are_those_without_a_warm_up() -> None:
    for base in (MLP_5K, (*MLP_5K, *QUICK_OVERRIDES)):
        pinned = load_config(overrides=list(base))
        assert pinned.schedule.warmup_epochs == 0.0
    warm = load_config(overrides=[*SMALL_DATA])
    assert config_id(warm) != config_id(load_config(overrides=[*SMALL_DATA,
                                                               "schedule.warmup_epochs=0"]))
