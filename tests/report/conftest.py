"""Synthetic :class:`StudyResult` objects for the report tests (no training, no analysis)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from classgap.analysis.result import StudyResult

HOSTILE = ("<script>alert(1)</script>", "&amp; co", 'quote"s \'n <b>bold</b> $5')


def make_fake_result(
    n_classes: int = 10,
    strengths: Sequence[Any] = (0.0, 1.0, 2.0),
    *,
    selected_index: int = 1,
    n_drops: int = 2,
    n_gains: int = 1,
    with_transfer: bool = False,
    hostile: bool = False,
    notes: Sequence[str] = ("The selection is within seed noise.",),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> StudyResult:
    """A plausible study result: the first ``n_drops`` classes pay at the selected strength.

    Class names are ``class 0``, ``class 1``, ...; with ``hostile=True`` the first few are
    replaced by HTML-hostile strings (``<script>...``, ``&amp;``, quotes) so escaping is
    exercised in every table and figure. ``names`` gives every class name (and the count).
    """
    rng = np.random.default_rng(seed)
    strengths = tuple(strengths)
    names = [f"class {i}" for i in range(n_classes)] if names is None else list(names)
    n_classes = len(names)
    if hostile:
        names[: len(HOSTILE)] = HOSTILE[:n_classes]
    reference, selected = strengths[0], strengths[selected_index]

    base = rng.uniform(0.6, 0.95, n_classes)
    # Per-class slope per strength step: drops for the paying classes, a small gain elsewhere.
    slope = rng.normal(0.01, 0.004, n_classes)
    slope[:n_drops] = -0.03
    rows = []
    for step, s in enumerate(strengths):
        acc = np.clip(base + slope * step, 0, 1)
        half = rng.uniform(0.005, 0.02, n_classes)
        rows += [
            {"strength": s, "class": c, "acc_mean": a, "acc_low": a - h, "acc_high": a + h}
            for c, a, h in zip(names, acc, half, strict=True)
        ]
    per_class = pd.DataFrame(rows)

    ref_acc = base
    sel_acc = np.clip(base + slope * selected_index, 0, 1)
    delta = sel_acc - ref_acc
    half = rng.uniform(0.004, 0.012, n_classes)
    verdict = np.array(["none"] * n_classes, dtype=object)
    verdict[:n_drops] = "drop"
    verdict[n_drops : n_drops + n_gains] = "gain"
    q = np.where(verdict == "none", rng.uniform(0.06, 1.0, n_classes),
                 rng.choice([0.0005, 0.005, 0.03], n_classes))
    classes = pd.DataFrame(
        {
            "class": names,
            "acc_reference": ref_acc,
            "acc_selected": sel_acc,
            "delta": delta,
            "delta_low": delta - half,
            "delta_high": delta + half,
            "p_value": q / 2,
            "q_value": q,
            "verdict": verdict,
            "acc_own_best": np.maximum(ref_acc, sel_acc),
            "own_best": [reference if d < 0 else selected for d in delta],
        }
    )

    val = np.array([0.85 + 0.004 * i * (1 if i <= selected_index else -1)
                    for i in range(len(strengths))])
    val[selected_index] = val.max() + 0.002
    test_mean = per_class.groupby("strength", sort=False)["acc_mean"].mean().to_numpy()
    validation = pd.DataFrame(
        {
            "strength": list(strengths),
            "val_mean": val,
            "val_std": np.full(len(strengths), 0.003),
            "test_mean": test_mean,
            "test_std": np.full(len(strengths), 0.002),
            "n_seeds": 3,
        }
    )
    k = min(12, n_classes * (n_classes - 1))
    shifts = pd.DataFrame(
        {
            "true": [names[i % n_classes] for i in range(k)],
            "predicted": [names[(i + 1) % n_classes] for i in range(k)],
            "rate_reference": rng.uniform(0.0, 0.05, k),
            "rate_selected": rng.uniform(0.0, 0.08, k),
        }
    )
    shifts["change"] = shifts["rate_selected"] - shifts["rate_reference"]
    shifts = shifts.sort_values("change", ascending=False).reset_index(drop=True)
    gain = float(test_mean[selected_index] - test_mean[0])
    downstream = None
    if with_transfer:
        downstream = make_fake_result(
            n_classes=max(3, n_classes // 2), strengths=strengths, selected_index=selected_index,
            n_drops=1, n_gains=0, with_transfer=False, hostile=hostile, notes=(), seed=seed + 1,
        )
        downstream = StudyResult(**{**downstream.__dict__, "meta": {"dataset": "digits"}})
    return StudyResult(
        axis="aug.mixup",
        strengths=strengths,
        reference=reference,
        selected=selected,
        mean_gain={"delta": gain, "low": gain - 0.003, "high": gain + 0.003, "p_value": 0.01},
        validation=validation,
        per_class=per_class,
        classes=classes,
        confusion_shifts=shifts,
        class_aware={
            "max_drop": 1.0,
            "selected": reference,
            "val_mean": float(val[0]),
            "per_class_strengths": dict(zip(names, classes["own_best"], strict=True)),
        },
        transfer=downstream,
        notes=tuple(notes),
        meta={"dataset": "fashion-mnist", "model": "small_cnn", "epochs": 20, "seeds": 3,
              "versions": {"torch": "2.x"}, "git": "<no-git>"},
    )


@pytest.fixture(scope="session")
def fake_result() -> Callable[..., StudyResult]:
    """The :func:`make_fake_result` factory, for tests that want to vary its arguments."""
    return make_fake_result
