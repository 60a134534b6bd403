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
from classgap.audit._labels import encode_labels, infer_classes, is_text, text_values, warn_inferred
from classgap.errors import DataFormatError, InputError

__all__ = ["Predictions", "align_runs", "load_groups", "load_runs", "read_class_names",
           "read_predictions", "write_predictions"]

PathLike = str | os.PathLike[str]
IN_MEMORY = "<array>"
PROB_TOL = 1e-4  # slack on float64/float32 probabilities: float32 softmax rows drift by ~1e-6
BF16_EPS = 2.0**-7  # bfloat16's machine epsilon (8 significant bits); numpy has no bfloat16


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
    """Read and validate one prediction file; ``classes`` overrides names stored in the file.

    Labels stored as class names are mapped through ``classes`` (or the file's own), else
    through their sorted unique names (one :class:`~classgap.audit._labels.InferredClassesWarning`).
    """
    return load_groups([[path]], classes=classes)[0][0]


def load_groups(groups: Sequence[Sequence[PathLike]], *, classes: Sequence[str] | None = None,
                classes_from: str | None = None) -> list[list[Predictions]]:
    """Read the files of several groups (the sides of a comparison, a reference) at once.

    Labels stored as class names map through ``classes`` when given, else through a file's
    own class names, else through the sorted unique names of the labels of **every** file
    read here, so that class k is the same class in all of them (one warning says so).
    ``classes_from`` names where ``classes`` came from in messages (``"names.txt"``); with it,
    a list of names that does not fit a file's numeric labels or score columns is one
    :class:`InputError` about the names.
    """
    raws = [[(str(p), formats.read_raw(Path(p), str(p))) for p in group] for group in groups]
    union: tuple[str, ...] | None = None
    if classes is None:  # names without a class list: one list for every file read here
        unnamed = [(src, raw) for group in raws for src, raw in group
                   if _text_labels(raw) and raw.get("classes") is None]
        stored = next((raw["classes"] for group in raws for _, raw in group
                       if raw.get("classes") is not None and _text_labels(raw)), None)
        if unnamed and stored is not None:
            union = _check_classes(stored, unnamed[0][0])
        elif unnamed and not any(_scores_of(raw) is not None for _, raw in unnamed):
            for src, raw in unnamed:
                _same_kind([(f, raw[f]) for f in ("y_true", "y_pred") if raw.get(f) is not None],
                           src, DataFormatError)
            union = infer_classes([text_values(raw[f], f, source=src, error=DataFormatError)
                                   for src, raw in unnamed for f in ("y_true", "y_pred")
                                   if raw.get(f) is not None])
            files = ", ".join(src for src, _ in unnamed[:3]) + (
                f" and {len(unnamed) - 3} more" if len(unnamed) > 3 else "")
            warn_inferred(union, files, stacklevel=2)
    return [[_build(src, raw, classes, classes_from, union) for src, raw in group]
            for group in raws]


def _text_labels(raw: dict[str, Any]) -> bool:
    return is_text(raw.get("y_true")) or is_text(raw.get("y_pred"))


def _scores_of(raw: dict[str, Any]) -> Any:
    return raw.get("probs", raw.get("logits"))


def _build(src: str, raw: dict[str, Any], classes: Sequence[str] | None,
           classes_from: str | None, union: tuple[str, ...] | None) -> Predictions:
    """One file's :class:`Predictions` from its raw fields (see :func:`load_groups`)."""
    raw = dict(raw)
    file_classes = raw.pop("classes", None)
    named_columns = raw.pop(formats.NAMED_COLUMNS, False)
    for field in raw.pop(formats.BFLOAT16, ()):  # bfloat16 has no numpy dtype: check it here
        if field == "probs":
            raw[field] = _check_scores(raw[field], field, src, DataFormatError, eps=BF16_EPS)
    where = classes_from or "the classes given"
    if classes is not None and named_columns:
        raw = _reorder_named_columns(raw, tuple(file_classes), tuple(classes), src, where)
    names = classes if classes is not None else file_classes
    if _text_labels(raw):
        names = names if names is not None else union
        scores = _scores_of(raw)
        if names is None and scores is not None:
            raise _no_class_order(raw, scores, src, DataFormatError)
        fields = [(f, raw[f]) for f in ("y_true", "y_pred") if raw.get(f) is not None]
        _same_kind(fields, src, DataFormatError)
        checked = _check_classes(names, src)
        from_where = (classes_from if classes is not None and classes_from else
                      "the classes given" if classes is not None else
                      f"the file's {formats.SCORE_PREFIX[_score_field(raw)]}_<name> columns"
                      if named_columns else
                      "the file's classes" if file_classes is not None else
                      "the classes of the files read together")
        codes, _ = encode_labels(fields, checked, source=src, error=DataFormatError,
                                 classes_from=from_where)
        raw.update(zip((f for f, _ in fields), codes, strict=True))
    elif classes is not None and classes_from is not None:
        _check_fits(raw, tuple(classes), src, where)
    return Predictions.from_arrays(raw.pop("y_true", None), raw.pop("y_pred", None), **raw,
                                   classes=names, source=src)


def _check_fits(raw: dict[str, Any], names: tuple[str, ...], src: str, where: str) -> None:
    """A class list that does not fit a file's labels or score columns: an error about it."""
    scores = _scores_of(raw)
    columns = None if scores is None or np.ndim(scores) != 2 else int(np.shape(scores)[1])
    labels = [np.asarray(raw[f]) for f in ("y_true", "y_pred") if raw.get(f) is not None]
    top = max((int(np.nanmax(y)) for y in labels if y.size and y.dtype.kind in "iuf"),
              default=-1)
    needed = columns if columns is not None else top + 1
    if (columns is not None and len(names) != columns) or len(names) < needed:
        what = f"{columns} score columns" if columns is not None else f"labels up to {top}"
        raise InputError(f"{where}: holds {len(names)} class names, but {src} has {needed} "
                         f"classes ({what}); give one name per class")


def _score_field(raw: dict[str, Any]) -> str:
    return "probs" if "probs" in raw else "logits"


def _reorder_named_columns(raw: dict[str, Any], columns: tuple[str, ...],
                           names: tuple[str, ...], src: str, where: str) -> dict[str, Any]:
    """Score columns named by class (``prob_cat``) put in the order of the given classes."""
    field = _score_field(raw)
    prefix = formats.SCORE_PREFIX[field]
    missing = [c for c in names if c not in columns]
    extra = [c for c in columns if c not in names]
    if missing or extra:  # the columns and the class list disagree: say both sides
        has = ", ".join(f"{prefix}_{c}" for c in columns[:6]) + (", ..." if len(columns) > 6
                                                                 else "")
        if missing:
            problem = (f"class {missing[0]!r} of {where} has no column "
                       f"{prefix}_{missing[0]}")
        else:
            problem = f"column {prefix}_{extra[0]} names a class that {where} does not list"
        raise formats.file_error(src, f"{problem}; the file's score columns are {has}: the "
                                 f"class names in {where} must be the names after "
                                 f"'{prefix}_' (or rename the columns to match)")
    order = [columns.index(c) for c in names]
    return {**raw, field: np.asarray(raw[field])[:, order]}


def _same_kind(fields: list[tuple[str, Any]], src: str | None, err: type[Exception]) -> None:
    """Names in one label field and numbers in the other: refused (is 3 a name or an index?)."""
    for (name, y), (other, _) in zip(fields, fields[::-1], strict=True):
        if not is_text(y):
            arr = np.asarray(y).ravel()
            shown = f"{arr[0].item()!r} at row 0" if arr.size else "no rows"
            raise fail(name, f"hold class names as '{other}' does (names and class indices "
                       "do not mix)", shown, source=src, error=err)


def _no_class_order(raw: dict[str, Any], scores: Any, src: str | None,
                    err: type[Exception]) -> Exception:
    kind = "probs" if "probs" in raw else "logits"
    seen = infer_classes([text_values(raw[f], f, source=src, error=err)
                          for f in ("y_true", "y_pred") if raw.get(f) is not None])
    shown = ", ".join(repr(c) for c in seen[:3]) + (", ..." if len(seen) > 3 else "")
    width = np.shape(scores)[1] if np.ndim(scores) == 2 else "?"
    return fail(kind, "come with the class order when the labels are class names: give the "
                "class names in column order (--classes, classes=, a 'classes' field; for "
                "scikit-learn, clf.classes_) or name the CSV/parquet columns "
                f"{formats.SCORE_PREFIX[kind]}_<name>", f"{width} columns for labels {shown}",
                source=src, error=err)


def read_class_names(path: PathLike) -> tuple[str, ...]:
    """Class names from a ``.json`` file holding a list, a text file with one name per line
    (blank lines skipped), or a JSON list written inline (``'["cat", "dog"]'``, where no file
    of that name exists)."""
    source, file = str(path), Path(path)
    if not file.is_file() and source.lstrip().startswith("["):
        try:
            inline = json.loads(source)
        except json.JSONDecodeError as exc:
            raise fail("classes", f"be a file or a valid JSON list of names ({exc})",
                       source, error=DataFormatError) from None
        valid = _check_classes(inline, None, where="position")
        if valid is None:  # pragma: no cover - inline is never None here
            raise fail("classes", "hold at least one name", source, error=DataFormatError)
        return valid
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
    reads back exactly. CSV has no place for the class names of numeric labels; labels given
    as names are written as names there, with score columns named by class (``prob_cat``).
    """
    source, file = str(path), Path(path)
    suffix = formats.suffix_of(file, source)  # before any work: unknown suffixes fail fast
    pred = Predictions.from_arrays(y_true, y_pred, logits=logits, probs=probs,
                                   sample_id=sample_id, seed=seed, classes=classes,
                                   source=source)
    fields: dict[str, Any] = {"y_true": pred.y_true}
    if y_pred is not None:
        fields["y_pred"] = pred.y_pred
    if suffix == ".csv" and (is_text(y_true) or is_text(y_pred)):
        names = np.array(pred.classes, dtype=str)  # a CSV keeps name labels as names
        fields = {f: names[v] for f, v in fields.items()}
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
    """Read several files: the runs (seeds) of one side of a comparison. One path is accepted.

    Class-name labels without a class list map through the names of all the files together.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if len(paths) == 0:
        raise fail("paths", "hold at least one prediction file", list(paths))
    return load_groups([paths], classes=classes)[0]


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
    raw_true: Any = p.y_true
    raw_pred: Any = p.y_pred
    if is_text(raw_true) or is_text(raw_pred):  # names in memory (files are mapped on reading)
        fields = [(f, y) for f, y in (("y_true", raw_true), ("y_pred", raw_pred))
                  if y is not None]
        _same_kind(fields, src, err)
        if classes is None and scores is not None:
            raise _no_class_order({cast(str, kind): scores, **dict(fields)}, scores, src, err)
        codes, names = encode_labels(fields, classes, source=src, error=err)
        if classes is None:
            warn_inferred(names, src or "'y_true'/'y_pred'", stacklevel=5)
            classes, n_classes = names, len(names)
        raw_true, raw_pred = codes[0], codes[1] if len(codes) > 1 else None
    y_true = _labels(raw_true, "y_true", n_classes, src, err)
    if len(y_true) == 0:
        raise err(f"{src or 'predictions'}: holds no samples (field 'y_true' has 0 rows)")
    y_pred = _labels(raw_pred, "y_pred", n_classes, src, err) if raw_pred is not None else None
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


def _check_scores(x: Any, kind: str, src: str | None, err: type[Exception], *,
                  eps: float | None = None) -> np.ndarray:
    """Scores as a float64 (N, K) array; probabilities in [0, 1] with rows summing to 1.

    The tolerance of both checks follows the precision the scores were stored in
    (:func:`prob_tolerance`): ``eps`` for types numpy lacks (bfloat16), else the array's own
    float type. Half-precision probability rows are rescaled to sum to 1 in float64 after the
    check (a change within that tolerance that keeps every row's ranking), so that the stored
    scores pass the float64 check again when a run is copied with ``dataclasses.replace``.
    """
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise fail(kind, "be a 2-D array (N samples, K classes)", f"shape {arr.shape}",
                   source=src, error=err)
    if arr.dtype.kind not in "iuf":
        raise fail(kind, "hold numbers", f"dtype {arr.dtype}", source=src, error=err)
    if eps is None and arr.dtype.kind == "f" and arr.dtype.itemsize <= 2:
        eps = float(np.finfo(arr.dtype).eps)
    tol = prob_tolerance(arr.shape[1], eps)
    arr = arr.astype(np.float64)  # a copy: the stored array is made read-only
    checks = [(~np.isfinite(arr), "be finite")]  # first, so that inf is not "out of [0, 1]"
    if kind == "probs":
        checks.append(((arr < -tol) | (arr > 1 + tol), "be in [0, 1]"))
    for bad, constraint in checks:
        if bad.any():
            i, j = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
            raise fail(kind, constraint, f"{arr[i, j].item()!r} at row {i}, column {j}",
                       source=src, error=err)
    if kind == "probs":
        sums = arr.sum(axis=1)
        off = np.abs(sums - 1.0) > tol
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise fail(kind, f"have rows summing to 1 (tolerance {tol:.2g})",
                       f"sum {sums[row]:.6g} at row {row}", source=src, error=err)
        if tol > PROB_TOL:
            arr = np.clip(arr, 0.0, None) / np.clip(arr, 0.0, None).sum(axis=1, keepdims=True)
    return arr


def prob_tolerance(n_classes: int, eps: float | None = None) -> float:
    """Slack of the probability checks for K classes stored with machine epsilon ``eps``.

    ``max(1e-4, eps * (1 + log2 K))``: rounding K probabilities that sum to 1 to a float type
    with unit roundoff u = eps / 2 moves their sum by at most u, and a softmax normalised in
    that type adds the error of a pairwise sum of K terms, at most ceil(log2 K) · u; ``eps``
    doubles both for a margin. Measured (bench/RESULTS.md, "Half-precision probabilities"):
    rows of float16 and bfloat16 softmax outputs, K = 2 to 100,000, deviate from 1 by at most
    0.74 eps, against a tolerance of at least 2 eps. float32 and float64 keep 1e-4.

    >>> prob_tolerance(10), round(prob_tolerance(10, 2.0**-10), 5)
    (0.0001, 0.00422)
    """
    if eps is None:
        return PROB_TOL
    return max(PROB_TOL, eps * (1.0 + float(np.log2(max(n_classes, 1)))))


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
