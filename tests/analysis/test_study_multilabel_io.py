"""Reading ReaL-style multi-label truth files: clear errors naming file and position."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classgap.analysis import load_multi_label
from classgap.analysis.multilabel import acceptance_matrix, multilabel_view
from classgap.errors import DataFormatError


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "real.json"
    path.write_text(content, encoding="utf-8")
    return path


def test_reads_lists_sorted_and_deduplicated(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps([[2], [1, 0, 1], []]))
    assert load_multi_label(path, 3, 3) == [[2], [0, 1], []]


@pytest.mark.parametrize(("content", "message"), [
    ("[[1], [2", "is not a readable JSON file"),
    ('{"a": 1}', "must be a JSON list"),
    ("[[1], [2]]", r"must hold one entry per test sample \(3\); got 2 entries"),
    ("[[1], 2, [0]]", r"position 1 must be a list of integers in \[0, 2\]; got 2"),
    ("[[1], [0], [3]]", r"position 2 must be a list of integers in \[0, 2\]; got \[3\]"),
    ('[[1], ["a"], [0]]', "position 1 must be a list"),
    ("[[true], [0], [0]]", "position 0 must be a list"),
    ("[[1.5], [0], [0]]", "position 0 must be a list"),
])
def test_malformed_files_name_file_and_position(tmp_path: Path, content: str,
                                                 message: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(DataFormatError, match=message) as info:
        load_multi_label(path, 3, 3)
    assert str(info.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        load_multi_label(tmp_path / "nope.json", 3, 3)


def test_view_matches_multilabel_accuracy() -> None:
    y = np.array([0, 1, 2, 2])
    preds = np.array([[1, 1, 0, 2], [0, 2, 2, 1]])
    accept = acceptance_matrix([[0, 1], [2], [], [2]], 3)  # sample 1: annotators reject 1
    yk, view = multilabel_view(y, preds, accept)
    np.testing.assert_array_equal(yk, [0, 1, 2])  # sample 2 has no acceptable label
    right = view == yk
    np.testing.assert_array_equal(right, [[True, False, True], [True, True, False]])
