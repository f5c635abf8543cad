"""The map points file (``files/embeddings.py``): what the loop writes, the report reads."""
from __future__ import annotations

import numpy as np
import pytest

from active_learning.files.embeddings import (
    read_embeddings_file,
    saved_class_names,
    write_embeddings_file,
)


def test_the_points_file_keeps_every_field(tmp_path):
    path = tmp_path / "cycle_00.npz"
    write_embeddings_file(path, np.ones((3, 2)), ["labeled", "chosen", "unlabeled"], [0, 2, -1],
                          predicted=[False, True, True], units=[5, 1, 9], class_names=["a", "b", "c"],
                          totals={"labeled": 10, "chosen": 1, "unlabeled": 40}, note="why")
    points = read_embeddings_file(path)
    assert points.embeddings.dtype == np.float32 and points.classes.tolist() == [0, 2, -1]
    assert points.predicted.tolist() == [False, True, True] and points.units.tolist() == [5, 1, 9]
    assert points.class_names == ["a", "b", "c"] and points.note == "why"
    assert points.totals == {"labeled": 10, "chosen": 1, "unlabeled": 40} and points.source == path
    with pytest.raises(ValueError, match="units has 2 entries for 3 points"):
        write_embeddings_file(path, np.ones((3, 2)), ["labeled"] * 3, units=[1, 2])


def test_a_file_without_the_optional_fields_reads_as_none(tmp_path):
    path = tmp_path / "cycle_01.npz"
    write_embeddings_file(path, np.zeros((2, 3)), ["chosen", "unlabeled"])
    points = read_embeddings_file(path)
    assert points.classes is None and points.predicted is None and points.units is None
    assert points.class_names == [] and points.totals == {} and points.note == ""
    assert saved_class_names(path) == []
    write_embeddings_file(path, np.zeros((2, 3)), ["chosen", "unlabeled"], class_names=["a"])
    assert saved_class_names(path) == ["a"]
