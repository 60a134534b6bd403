"""Alignment of prediction runs: every run of every side must cover the same test set.

Runs with ``sample_id`` are reordered to the first run's id order; otherwise ``y_true`` must be
identical row by row. Class names and score widths must agree across runs. Re-exported by
:mod:`classgap.audit.io`, where :class:`~classgap.audit.io.Predictions` is defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from classgap._validation import fail
from classgap.errors import DataFormatError

if TYPE_CHECKING:  # io imports this module: the class is needed for annotations only
    from classgap.audit.io import Predictions

__all__ = ["align_runs"]


def align_runs(*sides: Sequence[Predictions]
               ) -> tuple[tuple[list[Predictions], ...], int, tuple[str, ...]]:
    """Check that every run of every side covers the same test set; align them.

    With ``sample_id`` in every run, each run is reordered to the first run's id order;
    otherwise ``y_true`` must be identical row by row. Returns the aligned sides, the number of
    classes and the class names (names given or stored in the files, else ``"0".."K-1"``).
    """
    if not sides:
        raise fail("sides", "hold at least one side", "none")
    for i, side in enumerate(sides):
        if len(side) == 0:
            raise fail(f"sides[{i}]", "hold at least one run", "0 runs")
    runs = [run for side in sides for run in side]
    ref = runs[0]
    by_id = all(run.sample_id is not None for run in runs)
    aligned = tuple([_align_to(ref, run, by_id) for run in side] for side in sides)
    names, n_classes = _common_classes(runs)
    return aligned, n_classes, names


def _align_to(ref: Predictions, run: Predictions, by_id: bool) -> Predictions:
    if run is ref:
        return run
    if by_id:
        ref_ids, ids = _comparable_ids(cast(np.ndarray, ref.sample_id),
                                       cast(np.ndarray, run.sample_id))
        order = pd.Index(ids).get_indexer(ref_ids)  # (N_ref,) row of each ref id in run
        if (order < 0).any():
            i = int(np.flatnonzero(order < 0)[0])
            raise fail("sample_id", f"hold the same ids as {ref.source}", f"id "
                       f"{ref_ids[i].item()!r} missing (row {i} of {_name(ref)})",
                       source=run.source, error=DataFormatError)
        extra = pd.Index(ref_ids).get_indexer(ids) < 0
        if extra.any():
            j = int(np.flatnonzero(extra)[0])
            raise fail("sample_id", f"hold the same ids as {ref.source}", f"extra id "
                       f"{ids[j].item()!r} at row {j}", source=run.source,
                       error=DataFormatError)
        if not np.array_equal(order, np.arange(len(order))):
            run = replace(run, y_true=run.y_true[order], y_pred=run.y_pred[order],
                          scores=None if run.scores is None else run.scores[order],
                          sample_id=cast(np.ndarray, run.sample_id)[order])
    elif len(run.y_true) != len(ref.y_true):
        raise fail("y_true", f"have as many rows as in {ref.source} ({len(ref.y_true)}; "
                   "same test set)", len(run.y_true), source=run.source, error=DataFormatError)
    differ = np.flatnonzero(run.y_true != ref.y_true)
    if differ.size:
        i = int(differ[0])
        at = f"id {run.sample_id[i].item()!r}" if by_id and run.sample_id is not None else \
            f"row {i}"
        raise fail("y_true", f"equal the labels in {ref.source} (same test set, same order)",
                   f"{_label(run, run.y_true[i])} at {at} where {_name(ref)} has "
                   f"{_label(ref, ref.y_true[i])}", source=run.source, error=DataFormatError)
    return run


def _label(run: Predictions, label: int) -> str:
    """A label as the user wrote it: its class name when the file's labels were names."""
    return repr(run.classes[label]) if run.classes is not None else str(label)


def _name(run: Predictions) -> str:
    """The file name alone: values in messages are kept short (the full path is in the text)."""
    return Path(run.source).name


def _comparable_ids(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Int ids in one file and text ids in another compare as text."""
    if (a.dtype.kind == "U") == (b.dtype.kind == "U"):
        return a, b
    return a.astype(str), b.astype(str)


def _common_classes(runs: list[Predictions]) -> tuple[tuple[str, ...], int]:
    named = [run for run in runs if run.classes is not None]
    scored = [run for run in runs if run.scores is not None]
    widths = [(run, cast(np.ndarray, run.scores).shape[1]) for run in scored]
    for run, width in widths[1:]:
        if width != widths[0][1]:
            raise fail(cast(str, run.score_kind), f"have as many columns as in "
                       f"{widths[0][0].source} ({widths[0][1]})", width, source=run.source,
                       error=DataFormatError)
    if not named:
        n_classes = max(run.n_classes_hint for run in runs)
        return tuple(str(i) for i in range(n_classes)), n_classes
    ref = named[0]
    names = cast(tuple[str, ...], ref.classes)
    for run in named[1:]:
        other = cast(tuple[str, ...], run.classes)
        if other != names:
            i = next((i for i, (a, b) in enumerate(zip(names, other, strict=False)) if a != b),
                     None)
            shown = (f"{len(other)} names where {_name(ref)} has {len(names)}" if i is None
                     else f"{other[i]!r} at position {i} where {_name(ref)} has {names[i]!r}")
            raise fail("classes", f"match the class names of {ref.source}", shown,
                       source=run.source, error=DataFormatError)
    for run in runs:  # runs without names must still fit the named classes
        if run.scores is not None and run.scores.shape[1] != len(names):
            raise fail(cast(str, run.score_kind), f"have one column per class named in "
                       f"{ref.source} ({len(names)})", run.scores.shape[1], source=run.source,
                       error=DataFormatError)
        for field in ("y_true", "y_pred"):
            labels = getattr(run, field)
            if labels.max() >= len(names):
                i = int(np.argmax(labels))
                raise fail(field, f"hold labels below the {len(names)} classes named in "
                           f"{ref.source}", f"{labels[i]} at row {i}", source=run.source,
                           error=DataFormatError)
    return names, len(names)
