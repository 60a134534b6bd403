"""Prediction files from any framework: read, validate once, write, align runs.

A prediction file holds one run (one model, one seed) on one test set: true labels and either
predicted labels or per-class scores (logits or probabilities), optionally sample ids, the
training seed and the class names. Formats (chosen by the suffix; layouts in
:mod:`classgap.audit._io_formats`): ``.npz``, ``.csv``, ``.parquet``, ``.pt``/``.pth``.

Every check happens here, at the boundary, and each failure is one :class:`DataFormatError`
naming the file, the field and the offending value::

    preds.npz: field 'y_true' must hold integers in [0, 9]; got '12 at row 3'

>>> import numpy as np
>>> p = Predictions.from_arrays(np.array([0, 1, 1]), logits=np.array([[2., 0], [0, 1], [3, 0]]))
>>> p.y_pred.tolist(), p.n_classes_hint, p.topk_correct(1).tolist()
([0, 1, 0], 2, [True, True, False])
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from classgap._validation import check_labels, check_positive_int, fail
from classgap.audit import _io_formats as formats
from classgap.audit._align import align_runs
from classgap.errors import DataFormatError, InputError

__all__ = ["Predictions", "align_runs", "load_runs", "read_class_names", "read_predictions",
           "write_predictions"]

PathLike = str | os.PathLike[str]
IN_MEMORY = "<array>"
PROB_TOL = 1e-4  # slack on probabilities: float32 softmax rows drift by ~1e-6


@dataclass(frozen=True, eq=False)  # eq=False: array fields make == ambiguous
class Predictions:
    """One run's predictions on one test set, validated and normalised.

    Constructing it (directly, via :meth:`from_arrays` or :func:`read_predictions`) checks the
    arrays and stores read-only copies: ``y_true``/``y_pred`` (N,) int64, ``scores`` (N, K)
    float64, ``sample_id`` (N,) int64 or str. ``y_pred`` may be ``None`` when scores are given:
    it becomes their argmax.
    """

    y_true: np.ndarray  # (N,) int64
    y_pred: np.ndarray  # (N,) int64
    scores: np.ndarray | None = None  # (N, K) float64 logits or probabilities
    score_kind: str | None = None  # "logits" | "probs" | None
    sample_id: np.ndarray | None = None  # (N,) int64 or str
    seed: int | None = None
    classes: tuple[str, ...] | None = None
    source: str = IN_MEMORY

    def __post_init__(self) -> None:
        for name, value in _normalise(self).items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_arrays(cls, y_true: Any, y_pred: Any = None, *, logits: Any = None,
                    probs: Any = None, sample_id: Any = None, seed: Any = None,
                    classes: Sequence[str] | None = None,
                    source: str = IN_MEMORY) -> Predictions:
        """Build from the file-level fields (``logits`` or ``probs``, not both)."""
        error = _error_type(source)
        if logits is not None and probs is not None:
            raise fail("probs", "not be given together with 'logits'", "both",
                       source=_subject(source), error=error)
        kind = "logits" if logits is not None else "probs" if probs is not None else None
        return cls(y_true=y_true, y_pred=cast(np.ndarray, y_pred),
                   scores=logits if logits is not None else probs, score_kind=kind,
                   sample_id=sample_id, seed=seed,
                   classes=cast(tuple[str, ...] | None, classes), source=source)

    @property
    def n_samples(self) -> int:
        """Number of test samples N."""
        return len(self.y_true)

    @property
    def n_classes_hint(self) -> int:
        """Number of classes this run alone implies: class names, score columns or max label + 1."""
        if self.classes is not None:
            return len(self.classes)
        if self.scores is not None:
            return int(self.scores.shape[1])
        return int(max(self.y_true.max(), self.y_pred.max())) + 1

    def topk_correct(self, k: int) -> np.ndarray:
        """(N,) bool: the true class is among the ``k`` highest scores.

        Ties are broken like ``np.argmax`` (lower class index first), so ``topk_correct(1)``
        equals ``argmax(scores) == y_true``.
        """
        if self.scores is None:
            raise fail("scores", f"be present (logits or probs) for top-{k} accuracy",
                       "predicted labels only", source=_subject(self.source), error=InputError)
        k = check_positive_int(k, "k")
        n_cols = self.scores.shape[1]
        if k > n_cols:
            raise fail("k", f"be at most the number of score columns ({n_cols})", k)
        rows = np.arange(self.n_samples)
        true_score = self.scores[rows, self.y_true][:, None]  # (N, 1)
        lower_index = np.arange(n_cols)[None, :] < self.y_true[:, None]  # (N, K)
        rank = ((self.scores > true_score) | ((self.scores == true_score) & lower_index)).sum(1)
        return rank < k


def read_predictions(path: PathLike, *, classes: Sequence[str] | None = None) -> Predictions:
    """Read and validate one prediction file; ``classes`` overrides names stored in the file."""
    source = str(path)
    raw = formats.read_raw(Path(path), source)
    file_classes = raw.pop("classes", None)
    return Predictions.from_arrays(
        raw.pop("y_true", None), raw.pop("y_pred", None), **raw,
        classes=classes if classes is not None else file_classes, source=source)


def read_class_names(path: PathLike) -> tuple[str, ...]:
    """Class names from a JSON list or a text file with one name per line (blank lines skipped)."""
    source, file = str(path), Path(path)
    if not file.is_file():
        raise formats.file_error(source, "file does not exist")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise formats.file_error(source, f"cannot be read as text ({exc})") from exc
    if file.suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise formats.file_error(source, f"is not valid JSON ({exc})") from exc
        where = "position"
    else:
        names = [line.strip() for line in text.splitlines()]
        where = "line"
    valid = _check_classes(names, source, where=where)
    if valid is None:  # pragma: no cover - names is never None here
        raise formats.file_error(source, "holds no class names")
    return valid


def write_predictions(path: PathLike, *, y_true: Any, y_pred: Any = None, logits: Any = None,
                      probs: Any = None, sample_id: Any = None, seed: int | None = None,
                      classes: Sequence[str] | None = None) -> Path:
    """Validate and write one run atomically; the suffix picks the format. Returns the path.

    Only the fields given are written (a ``y_pred`` derived from scores is not), so reading the
    file back gives the same :class:`Predictions`. Scores keep their floating-point type in the
    binary formats (float32 logits take 4 bytes a value, not 8); CSV writes float64, whose text
    reads back exactly. CSV has no place for class names.
    """
    source, file = str(path), Path(path)
    suffix = formats.suffix_of(file, source)  # before any work: unknown suffixes fail fast
    pred = Predictions.from_arrays(y_true, y_pred, logits=logits, probs=probs,
                                   sample_id=sample_id, seed=seed, classes=classes,
                                   source=source)
    fields: dict[str, Any] = {"y_true": pred.y_true}
    if y_pred is not None:
        fields["y_pred"] = pred.y_pred
    if pred.scores is not None:
        given = np.asarray(logits if logits is not None else probs)  # validated as pred.scores
        binary = given.dtype.kind == "f" and suffix != ".csv"
        fields[cast(str, pred.score_kind)] = given if binary else pred.scores
    if pred.sample_id is not None:
        fields["sample_id"] = pred.sample_id
    if pred.seed is not None:
        fields["seed"] = np.int64(pred.seed)
    if pred.classes is not None:
        fields["classes"] = np.array(pred.classes, dtype=str)
    formats.write_raw(file, source, fields)
    return file


def load_runs(paths: Sequence[PathLike] | PathLike, *,
              classes: Sequence[str] | None = None) -> list[Predictions]:
    """Read several files: the runs (seeds) of one side of a comparison. One path is accepted."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if len(paths) == 0:
        raise fail("paths", "hold at least one prediction file", list(paths))
    return [read_predictions(p, classes=classes) for p in paths]


# -- validation -------------------------------------------------------------------------------

def _error_type(source: str) -> type[Exception]:
    return InputError if source == IN_MEMORY else DataFormatError


def _subject(source: str) -> str | None:
    return None if source == IN_MEMORY else source


def _normalise(p: Predictions) -> dict[str, Any]:
    """The validated, normalised fields of ``p``; one error per problem, naming the field."""
    src, err = _subject(p.source), _error_type(p.source)
    kind = p.score_kind
    if p.y_true is None:
        raise fail("y_true", "be present", "no 'y_true' field", source=src, error=err)
    if p.scores is None and p.y_pred is None:
        raise fail("y_pred", "be present when there are no 'logits' or 'probs'",
                   "none of them", source=src, error=err)
    scores = None
    if p.scores is not None:
        if kind not in ("logits", "probs"):
            raise fail("score_kind", "be 'logits' or 'probs' when scores are given", kind,
                       source=src, error=err)
        scores = _check_scores(p.scores, kind, src, err)
    elif kind is not None:
        raise fail("score_kind", "be None when no scores are given", kind, source=src, error=err)
    classes = _check_classes(p.classes, src, err=err)
    n_classes = len(classes) if classes is not None else None
    if scores is not None:
        if n_classes is not None and n_classes != scores.shape[1]:
            raise fail("classes", f"hold one name per {kind} column ({scores.shape[1]})",
                       f"{n_classes} names", source=src, error=err)
        n_classes = scores.shape[1]
    y_true = _labels(p.y_true, "y_true", n_classes, src, err)
    if len(y_true) == 0:
        raise err(f"{src or 'predictions'}: holds no samples (field 'y_true' has 0 rows)")
    y_pred = _labels(p.y_pred, "y_pred", n_classes, src, err) if p.y_pred is not None else None
    sample_id = _check_ids(p.sample_id, src, err) if p.sample_id is not None else None
    given = [("y_pred", y_pred), (kind, scores), ("sample_id", sample_id)]
    for name, arr in given:
        if arr is not None and len(arr) != len(y_true):
            raise fail(cast(str, name), f"have the same length as 'y_true' ({len(y_true)})",
                       len(arr), source=src, error=err)
    if y_pred is None:
        y_pred = np.argmax(cast(np.ndarray, scores), axis=1).astype(np.int64)
    if sample_id is not None:
        _check_unique(sample_id, src, err)
    out = {"y_true": y_true, "y_pred": y_pred, "scores": scores, "sample_id": sample_id,
           "seed": _check_seed(p.seed, src, err), "classes": classes}
    for value in out.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False  # frozen means frozen: runs are shared, not copied
    return out


def _labels(y: Any, name: str, n_classes: int | None, src: str | None,
            err: type[Exception]) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype.kind in "OUS":  # text in a label column: name the first bad cell
        bad = [i for i, v in enumerate(arr.ravel()) if not isinstance(v, int | np.integer)]
        if bad:
            raise fail(name, "hold integer class indices", f"{arr.ravel()[bad[0]]!r} at row "
                       f"{bad[0]}", source=src, error=err)
        arr = arr.astype(np.int64)
    if arr.ndim == 1 and arr.dtype.kind == "f":  # CSV labels arrive as floats
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise fail(name, "hold integers", f"{arr[i].item()!r} at row {i}", source=src,
                       error=err)
    try:
        return check_labels(arr, name, n_classes=n_classes, source=src).copy()
    except InputError as exc:
        raise err(str(exc)) from None


def _check_scores(x: Any, kind: str, src: str | None, err: type[Exception]) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise fail(kind, "be a 2-D array (N samples, K classes)", f"shape {arr.shape}",
                   source=src, error=err)
    if arr.dtype.kind not in "iuf":
        raise fail(kind, "hold numbers", f"dtype {arr.dtype}", source=src, error=err)
    arr = arr.astype(np.float64)  # a copy: the stored array is made read-only
    checks = [(~np.isfinite(arr), "be finite")]  # first, so that inf is not "out of [0, 1]"
    if kind == "probs":
        checks.append(((arr < -PROB_TOL) | (arr > 1 + PROB_TOL), "be in [0, 1]"))
    for bad, constraint in checks:
        if bad.any():
            i, j = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
            raise fail(kind, constraint, f"{arr[i, j].item()!r} at row {i}, column {j}",
                       source=src, error=err)
    if kind == "probs":
        sums = arr.sum(axis=1)
        off = np.abs(sums - 1.0) > PROB_TOL
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise fail(kind, f"have rows summing to 1 (tolerance {PROB_TOL:g})",
                       f"sum {sums[row]:.6g} at row {row}", source=src, error=err)
    return arr


def _check_classes(names: Any, src: str | None, *, err: type[Exception] = DataFormatError,
                   where: str = "position") -> tuple[str, ...] | None:
    if names is None:
        return None
    arr = np.asarray(names, dtype=object) if not isinstance(names, str) else np.asarray(names)
    if arr.ndim != 1:
        raise fail("classes", "be a list of class names", f"shape {arr.shape}" if arr.ndim
                   else names, source=src, error=err)
    values = [v.decode() if isinstance(v, bytes) else v for v in arr.tolist()]
    offset = 1 if where == "line" else 0  # text files: report 1-based line numbers
    if where == "line":  # blank lines in a names file are layout, not names
        kept = [(i, v) for i, v in enumerate(values) if v != ""]
    else:
        kept = list(enumerate(values))
    if not kept:
        raise fail("classes", "hold at least one name", "an empty list", source=src, error=err)
    seen: dict[str, int] = {}
    for i, name in kept:
        if not isinstance(name, str | np.str_) or not name:
            raise fail("classes", "hold non-empty strings", f"{name!r} at {where} {i + offset}",
                       source=src, error=err)
        if name in seen:
            raise fail("classes", "hold unique names", f"{name!r} at {where}s "
                       f"{seen[name] + offset} and {i + offset}", source=src, error=err)
        seen[str(name)] = i
    return tuple(str(name) for _, name in kept)


def _check_ids(ids: Any, src: str | None, err: type[Exception]) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise fail("sample_id", "be a 1-D array of ids", f"shape {arr.shape}", source=src,
                   error=err)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise fail("sample_id", "hold integers or strings", f"{arr[i]!r} at row {i}",
                       source=src, error=err)
        return arr.astype(np.int64)
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8").astype(str)
    if arr.dtype.kind == "U":
        return arr.copy()
    values = arr.tolist()
    if arr.dtype.kind == "O" and all(isinstance(v, str) for v in values):
        return np.array(values, dtype=str)
    if arr.dtype.kind == "O" and all(isinstance(v, int) and not isinstance(v, bool)
                                     for v in values):
        return np.array(values, dtype=np.int64)
    raise fail("sample_id", "hold integers or strings", f"dtype {arr.dtype}", source=src,
               error=err)


def _check_unique(ids: np.ndarray, src: str | None, err: type[Exception]) -> None:
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    first_row = first[inverse.ravel()]  # (N,) row where each row's id first appears
    repeats = np.flatnonzero(first_row != np.arange(len(ids)))
    if repeats.size:
        j = int(repeats[0])
        raise fail("sample_id", "hold unique ids", f"{ids[j].item()!r} at rows "
                   f"{first_row[j]} and {j}", source=src, error=err)


def _check_seed(seed: Any, src: str | None, err: type[Exception]) -> int | None:
    if seed is None:
        return None
    arr = np.asarray(seed)
    if arr.size == 1 and arr.ndim <= 1:
        value = arr.reshape(()).item()
        if isinstance(value, float) and np.isfinite(value) and value == round(value):
            value = int(value)  # CSV readers turn integer columns with gaps into floats
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    shown = arr.reshape(()).item() if arr.size == 1 else f"shape {arr.shape}"
    raise fail("seed", "be one integer", shown, source=src, error=err)
