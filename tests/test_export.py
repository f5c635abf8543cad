"""The priority CSV (`name,entropy_value`) and metrics.csv, checked byte for byte."""
from __future__ import annotations

import math

import numpy as np
import pytest

from active_learning import write_entropies_csv
from active_learning.files.export import read_entropies_csv, read_metrics_csv, write_metrics_csv

NAMES = [f"img_{i:03d}.png" for i in range(10)]


def _lines(path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text
    return text.splitlines()


def test_format_header_order_and_five_decimals(tmp_path):
    path = tmp_path / "priorities.csv"
    # Selection order is not value order: the file must sort, highest first.
    write_entropies_csv(NAMES, [7, 2, 5], [0.25, 0.9, 1 / 3], path)
    assert _lines(path) == [
        "name,entropy_value",
        "img_002.png,0.90000",
        "img_005.png,0.33333",
        "img_007.png,0.25000",
    ]


def test_ties_keep_selection_order(tmp_path):
    path = tmp_path / "p.csv"
    write_entropies_csv(NAMES, [4, 1, 9], [0.5, 0.5, 0.7], path)
    assert [name for name, _ in read_entropies_csv(path)] == ["img_009.png", "img_004.png", "img_001.png"]


class _Adapter:
    def item_name(self, index: int) -> str:
        return f"adapter/{index}.jpg"


class _Dataset:
    names = ("a.png", "b.png", "c.png")


@pytest.mark.parametrize("source, expected", [
    (["a.png", "b.png", "c.png"], ["c.png", "a.png"]),
    (np.array(["a.png", "b.png", "c.png"]), ["c.png", "a.png"]),
    (lambda index: f"call_{index}", ["call_2", "call_0"]),
    (_Adapter(), ["adapter/2.jpg", "adapter/0.jpg"]),
    (_Dataset(), ["c.png", "a.png"]),
])
def test_names_from_list_callable_adapter_or_names_attribute(tmp_path, source, expected):
    path = tmp_path / "p.csv"
    write_entropies_csv(source, [0, 2], [0.1, 0.2], path)
    assert [name for name, _ in read_entropies_csv(path)] == expected


def test_unusable_name_source_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="dataset_or_names"):
        write_entropies_csv(42, [0], [0.1], tmp_path / "p.csv")


def test_negative_scores_are_shifted_to_start_at_zero(tmp_path):
    path = tmp_path / "p.csv"
    # Predicted losses can be negative: min -> 0, differences kept (shift, not rescale).
    write_entropies_csv(NAMES, [0, 1, 2], [-2.0, 0.5, -0.75], path)
    assert _lines(path)[1:] == ["img_001.png,2.50000", "img_002.png,1.25000", "img_000.png,0.00000"]


def test_values_above_1e6_are_scaled_keeping_order(tmp_path):
    path = tmp_path / "p.csv"
    scores = [4e6, 1e7, 2.5e6, 1.0]
    write_entropies_csv(NAMES, [0, 1, 2, 3], scores, path)
    rows = read_entropies_csv(path)
    assert [name for name, _ in rows] == ["img_001.png", "img_000.png", "img_002.png", "img_003.png"]
    # The map is x * 1e6 / max: the maximum becomes exactly 1e6 and ratios are kept.
    assert _lines(path)[1:] == ["img_001.png,1000000.00000", "img_000.png,400000.00000",
                                "img_002.png,250000.00000", "img_003.png,0.10000"]
    assert all(0 <= value <= 1e6 for _, value in rows)


def test_negative_and_huge_scores_together(tmp_path):
    path = tmp_path / "p.csv"
    write_entropies_csv(NAMES, [0, 1, 2], [-1e6, 3e6, 1e6], path)
    # shift by +1e6 -> [0, 4e6, 2e6]; scale by 1e6 / 4e6 -> [0, 1e6, 5e5]
    assert _lines(path)[1:] == ["img_001.png,1000000.00000", "img_002.png,500000.00000",
                                "img_000.png,0.00000"]


def test_a_range_wider_than_float64_stays_finite_and_ordered(tmp_path):
    path = tmp_path / "p.csv"
    # max - min = 2e308 overflows float64; the written values must still be finite and ordered.
    write_entropies_csv(NAMES, [0, 1, 2], [-1e308, 1e308, 0.0], path)
    assert _lines(path)[1:] == ["img_001.png,1000000.00000", "img_002.png,500000.00000",
                                "img_000.png,0.00000"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_are_rejected(tmp_path, bad):
    path = tmp_path / "p.csv"
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_entropies_csv(NAMES, [0, 1], [0.3, bad], path)
    assert not path.exists()


def test_duplicate_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unique.*same.png"):
        write_entropies_csv(["same.png", "other.png", "same.png"], [0, 1, 2], [0.1, 0.2, 0.3],
                            tmp_path / "p.csv")


def test_length_mismatch_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        write_entropies_csv(NAMES, [0, 1, 2], [0.1, 0.2], tmp_path / "p.csv")


@pytest.mark.parametrize("bad_name", ["", "two\nlines"])
def test_invalid_names_are_rejected(tmp_path, bad_name):
    with pytest.raises(ValueError, match="invalid item name"):
        write_entropies_csv([bad_name, "ok.png"], [0, 1], [0.1, 0.2], tmp_path / "p.csv")


def test_names_with_commas_survive_the_round_trip(tmp_path):
    path = tmp_path / "p.csv"
    write_entropies_csv(["dir/a,b.png", 'say "hi".png'], [0, 1], [0.5, 0.25], path)
    assert read_entropies_csv(path) == [("dir/a,b.png", 0.5), ('say "hi".png', 0.25)]


def test_empty_selection_writes_only_the_header(tmp_path):
    path = tmp_path / "p.csv"
    write_entropies_csv(NAMES, [], [], path)
    assert _lines(path) == ["name,entropy_value"]
    assert read_entropies_csv(path) == []


def test_read_entropies_round_trip(tmp_path):
    path = tmp_path / "sub" / "p.csv"
    rng = np.random.default_rng(0)
    indices = rng.permutation(10)[:6]
    scores = rng.random(6)
    write_entropies_csv(NAMES, indices, scores, path)
    rows = read_entropies_csv(path)
    order = np.argsort(-scores)
    assert [name for name, _ in rows] == [NAMES[indices[k]] for k in order]
    np.testing.assert_allclose([value for _, value in rows], scores[order], atol=5e-6)


def test_read_entropies_checks_the_header(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("name,score\na.png,0.1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        read_entropies_csv(path)


def test_metrics_round_trip(tmp_path):
    path = tmp_path / "metrics.csv"
    rows = [
        {"cycle": 0, "n_labeled": 20, "accuracy": 0.5, "seconds": 1.25},
        {"cycle": 1, "n_labeled": 30, "accuracy": 0.625, "seconds": 2.0, "strategy": "entropy"},
    ]
    write_metrics_csv(rows, path)
    # Columns in first-seen order; a column missing from a row is an empty cell.
    assert _lines(path) == [
        "cycle,n_labeled,accuracy,seconds,strategy",
        "0,20,0.5,1.25,",
        "1,30,0.625,2,entropy",
    ]
    back = read_metrics_csv(path)
    assert back == [
        {"cycle": 0, "n_labeled": 20, "accuracy": 0.5, "seconds": 1.25, "strategy": ""},
        {"cycle": 1, "n_labeled": 30, "accuracy": 0.625, "seconds": 2, "strategy": "entropy"},
    ]
    assert isinstance(back[0]["cycle"], int) and isinstance(back[0]["accuracy"], float)


def test_metrics_nan_becomes_an_empty_cell_and_missing_file_is_empty(tmp_path):
    path = tmp_path / "metrics.csv"
    write_metrics_csv([{"cycle": 0, "loss": math.nan}], path)
    assert _lines(path) == ["cycle,loss", "0,"]
    assert read_metrics_csv(tmp_path / "absent.csv") == []


def test_written_files_get_the_usual_permissions(tmp_path):
    # Atomic writes go through mkstemp (0600); the final file must be readable like any other.
    import os
    import stat

    old_mask = os.umask(0o022)
    try:
        write_entropies_csv(["a.png"], [0], [1.0], tmp_path / "p.csv")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE((tmp_path / "p.csv").stat().st_mode) == 0o644


def test_negative_zero_is_written_as_zero(tmp_path):
    path = tmp_path / "p.csv"
    write_entropies_csv(["a", "b"], [0, 1], [0.5, -0.0], path)
    assert path.read_text().splitlines()[1:] == ["a,0.50000", "b,0.00000"]
