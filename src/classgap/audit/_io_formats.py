"""Readers and writers of the prediction-file formats: ``.npz``, ``.csv``, ``.parquet``, ``.pt``.

Each reader returns the raw fields of one file as ``{name: numpy array}`` with names from
:data:`FIELDS` only; every value check (labels, lengths, finiteness, ...) happens once, in
:mod:`classgap.audit.io`. What is checked here is what only the format knows: the file exists,
is not empty, parses, and holds no unknown arrays / columns / keys.

Column layout of ``.csv`` / ``.parquet`` (one row per sample)::

    y_true, [y_pred], [sample_id], [seed], [prob_0 .. prob_{K-1} | logit_0 .. logit_{K-1}]

Labels may be class names (text columns); score columns may then be named by class
(``prob_cat, prob_dog, ...``), which gives the class order. Class *names* of numeric labels do
not fit in a CSV table: pass them with ``classes=`` when reading. ``.parquet`` files written by
:func:`classgap.audit.io.write_predictions` keep them in the schema metadata (key
``classgap.classes``, a JSON list).
"""

from __future__ import annotations

import difflib
import io
import json
import pickle
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classgap._files import atomic_target, atomic_write
from classgap._validation import fail
from classgap.errors import DataFormatError

FIELDS = ("y_true", "y_pred", "logits", "probs", "sample_id", "seed", "classes")
SUFFIXES = (".npz", ".csv", ".parquet", ".pt", ".pth")
CLASSES_META_KEY = b"classgap.classes"
_TABLE_FIELDS = ("y_true", "y_pred", "sample_id", "seed")
SCORE_PREFIX = {"probs": "prob", "logits": "logit"}  # field -> column prefix
_SCORE_COLUMN = re.compile(r"(prob|logit)_(.+)", re.DOTALL)  # prob_<index> or prob_<name>
_INDEX = re.compile(r"0|[1-9][0-9]*")  # canonical indices: no "prob_01"
NAMED_COLUMNS = "_named_columns"  # raw key: the score columns were named by class
BFLOAT16 = "_bfloat16"  # raw key: fields read from bfloat16 tensors (now float32)
_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")  # fits in int64


def file_error(source: str, problem: str) -> DataFormatError:
    """``DataFormatError("<file>: <problem>")`` for failures of the file as a whole."""
    return DataFormatError(f"{source}: {problem}")


def _unreadable(source: str, fmt: str, exc: BaseException) -> DataFormatError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return file_error(source, f"cannot be read as {fmt} ({type(exc).__name__}: {detail})")


def suffix_of(path: Path, source: str) -> str:
    """The lower-cased suffix of ``path``, or raise listing the supported ones."""
    suffix = path.suffix.lower()
    if path.is_dir():
        raise file_error(source, "is a directory, not a prediction file; give the files, e.g. "
                         f"'{path / '*.npz'}' (the shell expands the glob)")
    if suffix not in SUFFIXES:
        if _is_pipe(path):  # `classgap audit <(cmd)`: /dev/fd/63, no name, read once
            raise file_error(source, "is a pipe (process substitution or a FIFO), which has no "
                             "suffix to tell its format and can be read only once; write the "
                             "predictions to a file with a suffix first, e.g. 'cmd > preds.csv' "
                             f"({', '.join(SUFFIXES)})")
        rename = f"; rename it to {path.name}.csv (or the suffix of its format)" if (
            not suffix and path.is_file()) else ""
        raise file_error(source, f"unknown prediction-file suffix {suffix or '(none)'!r}; "
                                 f"use one of {', '.join(SUFFIXES)}{rename}")
    return suffix


def _is_pipe(path: Path) -> bool:
    """Whether ``path`` is a pipe: a FIFO, or /dev/fd/N of one (process substitution)."""
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:  # /dev/fd/N of a pipe already closed: the name says what it was
        return str(path).startswith(("/dev/fd/", "/proc/self/fd/"))


def check_names(names: Iterable[str], kind: str, source: str, allowed: Iterable[str]) -> None:
    """Raise naming every unknown array / column / key, listing the allowed ones."""
    allowed = list(allowed)
    unknown = [str(n) for n in names if n not in allowed]
    if not unknown:
        return
    close = {u: c[0] for u in unknown if (c := difflib.get_close_matches(u, allowed, n=1))}
    if len(unknown) == 1:
        hint = f"; did you mean {close[unknown[0]]!r}?" if close else ""
    else:  # several: say which suggestion is for which name
        hint = ("; did you mean " + ", ".join(f"{c!r} for {u!r}" for u, c in close.items())
                + "?") if close else ""
    plural = "s" if len(unknown) > 1 else ""
    raise file_error(source, f"unknown {kind}{plural} {', '.join(map(repr, unknown))} "
                             f"(allowed: {', '.join(map(repr, allowed))}){hint}")


def read_raw(path: Path, source: str) -> dict[str, Any]:
    """Read the raw fields of one prediction file (format chosen by the suffix)."""
    suffix = suffix_of(path, source)
    if not path.exists():
        raise file_error(source, "file does not exist")
    if not path.is_file():
        raise file_error(source, "is not a regular file")
    if path.stat().st_size == 0:
        raise file_error(source, "file is empty")
    if suffix == ".npz":
        return _read_npz(path, source)
    if suffix == ".csv":
        return _read_csv(path, source)
    if suffix == ".parquet":
        return _read_parquet(path, source)
    return _read_pt(path, source)


def _read_npz(path: Path, source: str) -> dict[str, Any]:
    try:
        archive = np.load(path, allow_pickle=False)  # never unpickle: a file is not code
    except Exception as exc:  # corrupt bytes surface as OSError, ValueError, BadZipFile, ...
        raise _unreadable(source, ".npz", exc) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise file_error(source, "holds a single .npy array, not an .npz archive of named "
                                 "arrays (save with np.savez(path, y_true=..., ...))")
    out: dict[str, Any] = {}
    with archive:
        check_names(archive.files, "array", source, FIELDS)
        for name in archive.files:
            try:
                out[name] = archive[name]
            except ValueError as exc:
                if "allow_pickle" not in str(exc):
                    raise _unreadable(source, ".npz", exc) from exc
                raise fail(name, "be a numeric or string array (object arrays need pickle, "
                           "which is refused)", "an object array", source=source,
                           error=DataFormatError) from None
            except Exception as exc:  # BadZipFile, zlib.error, EOFError on truncated members
                raise _unreadable(source, ".npz", exc) from exc
    return out


def _read_csv(path: Path, source: str) -> dict[str, Any]:
    try:
        # ids stay text so that "007" is not read as 7 (pandas >= 3 parses floats exactly)
        frame = pd.read_csv(path, dtype={"sample_id": "string"})
    except pd.errors.EmptyDataError:
        raise file_error(source, "file is empty (no header row)") from None
    except Exception as exc:  # ParserError, UnicodeDecodeError on binary garbage, ...
        raise _unreadable(source, ".csv", exc) from exc
    return _frame_fields(_names_kept(frame, path), source, ids_from_text=True)


def _names_kept(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``frame`` with its label columns as written where pandas read a class name as missing.

    pandas reads ``None``, ``NA``, ``null``, ``nan``, ``N/A`` (and more) as NaN; in a label
    column they are class names. Only an empty cell is a missing label. The columns are read
    again as text only when they hold a missing cell, which is rare.
    """
    labels = [c for c in ("y_true", "y_pred") if c in frame and frame[c].isna().any()]
    if not labels:
        return frame
    text = pd.read_csv(path, usecols=labels, dtype=str, keep_default_na=False, na_values=[""])
    if text[labels].isna().equals(frame[labels].isna()):  # only empty cells: as read
        return frame
    return frame.assign(**{c: text[c] for c in labels})


def _read_parquet(path: Path, source: str) -> dict[str, Any]:
    import pyarrow.parquet as pq  # lazy: only parquet users pay the import

    try:
        table = pq.read_table(path)
        frame = table.to_pandas()
    except Exception as exc:  # ArrowInvalid on garbage bytes, OSError, ...
        raise _unreadable(source, ".parquet", exc) from exc
    fields = _frame_fields(frame, source, ids_from_text=False)
    meta = table.schema.metadata or {}
    if CLASSES_META_KEY in meta and not fields.get(NAMED_COLUMNS):
        try:
            fields["classes"] = np.asarray(json.loads(meta[CLASSES_META_KEY]))
        except (ValueError, TypeError) as exc:
            raise fail("classes", "be a JSON list of names in the parquet metadata",
                       meta[CLASSES_META_KEY], source=source, error=DataFormatError) from exc
    return fields


def _numeric(series: pd.Series, name: str, source: str) -> np.ndarray:
    """A column as a numeric array (int kept int; missing cells -> NaN), naming bad cells."""
    if series.dtype.kind in "iuf":  # plain numpy dtype: nothing to parse (fast path)
        return series.to_numpy()
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise fail(name, "hold numbers", f"{series.iloc[i]!r} at row {i}", source=source,
                   error=DataFormatError)
    if values.isna().any():
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return values.to_numpy()


def _label_column(series: pd.Series, name: str, source: str) -> np.ndarray:
    """A label column: numbers as numbers, class names (any cell not a number) as objects."""
    if series.dtype.kind in "iuf":
        return series.to_numpy()
    first = series.dropna().iloc[:1]
    if len(first) and pd.isna(pd.to_numeric(first, errors="coerce")).all():
        values = None  # the first cell is a name: no need to parse a column of names
    else:
        values = pd.to_numeric(series, errors="coerce")
    if values is None or (values.isna() & series.notna()).any():  # names: all of it is names
        text = series.to_numpy(dtype=object, na_value=None)
        return np.array([v if isinstance(v, str) or v is None else str(v) for v in text],
                        dtype=object)
    return _numeric(series, name, source)


def _ids(series: pd.Series, source: str, *, from_text: bool) -> np.ndarray:
    missing = series.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise fail("sample_id", "have no missing values", f"empty cell at row {i}",
                   source=source, error=DataFormatError)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype):
        return series.to_numpy()
    values = series.to_numpy(dtype=object)
    text = [str(v) for v in values]
    # CSV loses types: ids that are all canonical integers were integers when written
    if from_text and all(_CANONICAL_INT.fullmatch(t) for t in text):
        return np.array([int(t) for t in text], dtype=np.int64)
    if all(isinstance(v, str) for v in values):
        return np.array(text, dtype=str)
    return values


def _frame_fields(frame: pd.DataFrame, source: str, *, ids_from_text: bool) -> dict[str, Any]:
    scores: dict[str, dict[str, str]] = {}
    unknown = []
    for column in frame.columns:
        match = _SCORE_COLUMN.fullmatch(str(column))
        if match:
            field = "probs" if match[1] == "prob" else "logits"
            scores.setdefault(field, {})[match[2]] = column
        elif column not in _TABLE_FIELDS:
            unknown.append(column)
    _check_score_like(unknown, frame, source)
    check_names(unknown, "column", source,
                [*_TABLE_FIELDS, "prob_<i or class name>", "logit_<i or class name>"])

    fields: dict[str, Any] = {}
    for name in ("y_true", "y_pred"):
        if name in frame.columns:
            fields[name] = _label_column(frame[name], name, source)
    if "sample_id" in frame.columns:
        fields["sample_id"] = _ids(frame["sample_id"], source, from_text=ids_from_text)
    if "seed" in frame.columns:
        fields["seed"] = _constant(_numeric(frame["seed"], "seed", source), source)
    for field, by_key in scores.items():
        prefix = SCORE_PREFIX[field]
        indexed = {k: c for k, c in by_key.items() if _INDEX.fullmatch(k)}
        if indexed and len(indexed) < len(by_key):  # prob_0 beside prob_cat: which is which?
            odd = next(c for k, c in by_key.items() if k not in indexed)
            first = indexed[min(indexed, key=int)]
            raise fail(field, f"be named all by index ({prefix}_0, {prefix}_1, ...) or all by "
                       f"class name ({prefix}_cat, ...)", f"columns {first!r} and {odd!r}",
                       source=source, error=DataFormatError)
        if indexed:
            by_index = {int(k): c for k, c in indexed.items()}
            gaps = sorted(set(range(max(by_index) + 1)) - set(by_index))
            if gaps == [0]:  # prob_1..prob_K: numbered from 1
                top = max(by_index)
                raise file_error(source, f"score columns are numbered from 0 ({prefix}_0 is "
                                 f"class 0); got {prefix}_1..{prefix}_{top}: rename them "
                                 f"{prefix}_0..{prefix}_{top - 1} (and subtract 1 from "
                                 "1-based labels)")
            if gaps:
                raise fail(field, f"be given as contiguous columns {prefix}_0..{prefix}_"
                           f"{max(by_index)}", f"no column {prefix}_{gaps[0]}", source=source,
                           error=DataFormatError)
            columns = [by_index[j] for j in range(len(by_index))]
        else:  # named by class, in column order: they give the class order
            columns = list(by_key.values())
            fields["classes"] = np.array(list(by_key), dtype=object)
            fields[NAMED_COLUMNS] = True
        stacked = np.column_stack([_numeric(frame[c], c, source) for c in columns])  # (N, K)
        # float16 columns (parquet) stay float16: their tolerance is float16's (io.py)
        fields[field] = stacked if stacked.dtype.kind == "f" else stacked.astype(np.float64)
    return fields


#: Score columns under another prefix (probs_0, proba_cat, logits_1, ...): the usual spellings.
_SCORE_LIKE = re.compile(r"(probs|proba|probas|probability|score|scores|logits)[_.\- ](.+)",
                         re.IGNORECASE | re.DOTALL)


def _check_score_like(unknown: list[Any], frame: pd.DataFrame, source: str) -> None:
    """Unknown columns that are class scores under another name: one error with the rename."""
    like = [m for c in unknown if (m := _SCORE_LIKE.fullmatch(str(c)))]
    if like and len(like) == len(unknown):
        prefix = "logit" if like[0][1].lower().startswith("logit") else "prob"
        shown = ", ".join(f"{m[0]} → {prefix}_{m[2]}" for m in like[:3])
        more = ", ..." if len(like) > 3 else ""
        raise file_error(source, f"score columns are named {prefix}_<class index or name>; "
                         f"rename {shown}{more}")
    numeric = [c for c in unknown if pd.api.types.is_float_dtype(frame[c])]
    if len(numeric) >= 2 and len(numeric) == len(unknown):  # cat, dog, owl: scores, unnamed
        shown = ", ".join(f"{c} → prob_{c}" for c in numeric[:3])
        more = ", ..." if len(numeric) > 3 else ""
        raise file_error(source, f"columns {', '.join(map(repr, numeric[:5]))} look like class "
                         f"scores; name them prob_<class> (probabilities) or logit_<class> "
                         f"(logits): {shown}{more}")


def _constant(seed: np.ndarray, source: str) -> np.ndarray:
    """The seed column as one 0-d value (a table repeats it on every row)."""
    if seed.size == 0:
        return seed
    differ = np.flatnonzero(seed != seed[0])
    if differ.size:
        j = int(differ[0])
        raise fail("seed", "be the same on every row (one file = one run)",
                   f"{seed[0].item()!r} at row 0 and {seed[j].item()!r} at row {j}", source=source,
                   error=DataFormatError)
    return np.asarray(seed[0])


def _read_pt(path: Path, source: str) -> dict[str, Any]:
    import torch  # lazy: the audit must import without torch

    try:
        # weights_only: tensors, numbers, strings and containers only; no code runs on load
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise file_error(source, "holds objects other than tensors, numbers, strings, lists "
                                 "and dicts; refused by torch.load(weights_only=True) ("
                                 f"{str(exc).strip().splitlines()[0]})") from exc
    except Exception as exc:  # truncated zip, garbage bytes: RuntimeError, EOFError, ...
        raise _unreadable(source, ".pt", exc) from exc
    if not isinstance(obj, Mapping):
        raise file_error(source, f"must hold a dict of named tensors or lists ({', '.join(FIELDS)})"
                                 f"; got {type(obj).__name__}")
    check_names(obj.keys(), "key", source, FIELDS)
    out: dict[str, Any] = {}
    for name, value in obj.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:  # no numpy dtype: float32 holds it exactly
                value = value.to(torch.float32)
                out.setdefault(BFLOAT16, []).append(name)  # its tolerance is bfloat16's
            elif value.is_floating_point() and value.dtype not in (
                    torch.float16, torch.float32, torch.float64):
                value = value.to(torch.float64)
            out[name] = value.numpy()
            continue
        try:
            out[name] = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise fail(name, "be a rectangular array", type(value).__name__, source=source,
                       error=DataFormatError) from exc
    return out


# -- writing ----------------------------------------------------------------------------------

#: Prediction files up to this size are built in memory before they are written.
NPZ_IN_MEMORY_BYTES = 64 * 2**20


def write_raw(path: Path, source: str, fields: Mapping[str, Any]) -> None:
    """Write validated ``fields`` (numpy arrays; ``seed`` an int) atomically to ``path``."""
    suffix = suffix_of(path, source)
    named = fields.get("classes") is not None and np.asarray(fields["y_true"]).dtype.kind == "U"
    if suffix == ".csv" and fields.get("classes") is not None and not named:
        raise fail("classes", "not be given for a .csv file (a CSV table has no place for "
                   "class names; pass them with classes= when reading, give the labels as "
                   "names, or write .npz, .parquet or .pt)", list(fields["classes"]),
                   source=source, error=DataFormatError)
    if suffix == ".csv" and named and any(f in fields for f in SCORE_PREFIX):
        number = next((c for c in fields["classes"] if _INDEX.fullmatch(str(c))), None)
        if number is not None:  # prob_3 would read back as the column of class index 3
            raise fail("classes", "not be whole numbers when a .csv file names its score "
                       "columns by class (write .npz, .parquet or .pt)", str(number),
                       source=source, error=DataFormatError)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise file_error(source, f"cannot be written: directory {str(parent)!r} does not exist")
    if suffix == ".npz":
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in fields.items()}
        if sum(a.nbytes for a in arrays.values()) <= NPZ_IN_MEMORY_BYTES:
            # A small archive is built in memory and written at once: zipfile's many small
            # writes to a real file cost more than the archive itself (bench/RESULTS.md).
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            atomic_write(path, buffer.getvalue())
        else:
            atomic_write(path, lambda handle: np.savez(handle, **arrays))
    elif suffix in (".pt", ".pth"):
        atomic_write(path, lambda handle: _save_pt(handle, fields))
    else:
        with atomic_target(path) as tmp:
            _save_table(tmp, suffix, fields)


def _save_pt(handle: Any, fields: Mapping[str, Any]) -> None:
    import torch

    obj: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "seed":
            obj[name] = int(value)
        elif name == "classes" or (name == "sample_id" and value.dtype.kind in "US"):
            obj[name] = [str(v) for v in value]
        else:
            obj[name] = torch.from_numpy(np.array(value))  # copy: inputs may be read-only
    torch.save(obj, handle)


def _save_table(path: Path, suffix: str, fields: Mapping[str, Any]) -> None:
    n = len(fields["y_true"])
    columns: dict[str, Any] = {}
    for name in _TABLE_FIELDS:
        if name in fields:
            columns[name] = np.full(n, int(fields[name])) if name == "seed" else fields[name]
    # CSV with name labels: the score columns carry the class names (prob_cat), which is
    # where a CSV keeps the class order; otherwise they are numbered.
    named = suffix == ".csv" and fields.get("classes") is not None
    for field, prefix in SCORE_PREFIX.items():
        if field in fields:
            for j in range(fields[field].shape[1]):
                key = fields["classes"][j] if named else j
                columns[f"{prefix}_{key}"] = fields[field][:, j]
    frame = pd.DataFrame(columns)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fields.get("classes") is not None:
        meta = dict(table.schema.metadata or {})
        meta[CLASSES_META_KEY] = json.dumps([str(c) for c in fields["classes"]]).encode()
        table = table.replace_schema_metadata(meta)
    pq.write_table(table, path)
