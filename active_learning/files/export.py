"""Files a run hands to people and tools: the priority CSV and ``metrics.csv``.

The priority CSV is what annotation platforms (e.g. SuperAnnotate) import to order the work:
header ``name,entropy_value``, one row per selected item, highest value first. Values are made
finite, non-negative and at most 1e6 (platform limits) by an order-preserving affine map, and
written with 5 decimals.
"""
from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from active_learning.files.atomic import atomic_write_text

CSV_HEADER = ("name", "entropy_value")
MAX_CSV_VALUE = 1e6


def _name_lookup(dataset_or_names: Any) -> Callable[[int], str]:
    """Turn a dataset / adapter / sequence of names into ``index -> name``."""
    if hasattr(dataset_or_names, "item_name"):
        return lambda index: str(dataset_or_names.item_name(index))
    if callable(dataset_or_names):
        return lambda index: str(dataset_or_names(index))
    if hasattr(dataset_or_names, "names"):
        names = dataset_or_names.names
        return lambda index: str(names[index])
    if (isinstance(dataset_or_names, (Sequence, np.ndarray))
            and not isinstance(dataset_or_names, str)):
        return lambda index: str(dataset_or_names[index])
    raise TypeError("dataset_or_names must be a sequence of names, a callable index -> name, "
                    "or an object with item_name(index) or a .names sequence")


def csv_values(scores: np.ndarray) -> np.ndarray:
    """Map scores to CSV values: finite, >= 0, <= 1e6, same order.

    Negative scores (a predicted loss can be negative) are shifted so the smallest becomes 0;
    a range wider than 1e6 is scaled down. Both maps are increasing, so the ranking is kept.
    """
    values = np.asarray(scores, dtype=np.float64).copy()
    if values.size and not np.isfinite(values).all():
        raise ValueError("scores contain NaN or infinite values")
    if values.size and values.min() < 0:
        low = values.min()
        with np.errstate(over="ignore"):
            shifted = values - low
        # A range wider than the float64 maximum overflows to inf: halve first (exact), then shift.
        values = shifted if np.isfinite(shifted).all() else values / 2 - low / 2
    if values.size and values.max() > MAX_CSV_VALUE:
        values *= MAX_CSV_VALUE / values.max()
    # -0.0 (a score of negative zero is not below 0, so it is not shifted) would print "-0.00000".
    return values + 0.0


def write_entropies_csv(dataset_or_names: Any, indices: Sequence[int] | np.ndarray,
                        scores: Sequence[float] | np.ndarray, path: str | os.PathLike) -> None:
    """Write the priority CSV for the selected items.

    Args:
        dataset_or_names: maps an absolute dataset index to the item's name: a sequence of names,
            a callable, or an object with ``item_name(index)`` (a task adapter) or ``.names``.
        indices: int [K] absolute dataset indices of the selected items.
        scores: float [K] their scores, higher = label first.
        path: destination; written atomically.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if indices.shape != scores.shape:
        raise ValueError(f"indices ({indices.shape[0]}) and scores "
                         f"({scores.shape[0]}) differ in length")
    name_of = _name_lookup(dataset_or_names)
    names = [name_of(int(index)) for index in indices]
    if len(set(names)) != len(names):
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        raise ValueError(f"item names must be unique in the CSV; repeated: {repeated[:5]} "
                         "(use relative paths as names)")
    for name in names:
        if not name or "\n" in name or "\r" in name:
            raise ValueError(f"invalid item name {name!r}")
    values = csv_values(scores)
    order = np.argsort(-scores, kind="stable")  # highest first; ties keep selection order
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for position in order:
        writer.writerow((names[position], f"{values[position]:.5f}"))
    atomic_write_text(path, buffer.getvalue())


SCORES_CSV_HEADER = ("name", "score", "rank", "chosen")


def scores_table(chosen: Sequence[int] | np.ndarray, chosen_scores: Sequence[float] | np.ndarray,
                 scored: Sequence[int] | np.ndarray | None = None,
                 scored_scores: Sequence[float] | np.ndarray | None = None
                 ) -> list[tuple[int, float, int, bool]]:
    """Every scored candidate with its score and rank: ``(index, score, rank, chosen)`` rows,
    by rank.

    Ranks 1..K are the chosen items in the priority CSV's order (:func:`write_entropies_csv`:
    highest selection score first, ties in selection order); the other scored items follow,
    highest score first (ties by index). The score is the strategy's score where the item was
    scored, else its selection score (a set strategy's choice, which scores no candidate).

    Args:
        chosen: int [K] the chosen items, in selection order.
        chosen_scores: float [K] their selection scores (the priority CSV's, before
            :func:`csv_values`).
        scored: int [N] every item the strategy scored (the chosen among them or not); None:
            none was.
        scored_scores: float [N] their scores, higher = label first.
    """
    chosen = np.asarray(chosen, dtype=np.int64).reshape(-1)
    chosen_scores = np.asarray(chosen_scores, dtype=np.float64).reshape(-1)
    scored = np.zeros(0, dtype=np.int64) if scored is None else \
        np.asarray(scored, dtype=np.int64).reshape(-1)
    scored_scores = np.zeros(0) if scored_scores is None else \
        np.asarray(scored_scores, dtype=np.float64).reshape(-1)
    if chosen.shape != chosen_scores.shape or scored.shape != scored_scores.shape:
        raise ValueError("each index needs one score")
    score_of = dict(zip(scored.tolist(), scored_scores.tolist(), strict=True))
    rows = []
    for rank, position in enumerate(np.argsort(-chosen_scores, kind="stable"), start=1):
        index = int(chosen[position])
        rows.append((index, score_of.get(index, float(chosen_scores[position])), rank, True))
    rest = ~np.isin(scored, chosen)
    others, other_scores = scored[rest], scored_scores[rest]
    order = np.lexsort((others, -other_scores))       # highest score first, then by index
    for rank, position in enumerate(order, start=len(rows) + 1):
        rows.append((int(others[position]), float(other_scores[position]), rank, False))
    return rows


def write_scores_csv(dataset_or_names: Any, chosen: Sequence[int] | np.ndarray,
                     chosen_scores: Sequence[float] | np.ndarray,
                     scored: Sequence[int] | np.ndarray | None,
                     scored_scores: Sequence[float] | np.ndarray | None,
                     path: str | os.PathLike) -> None:
    """Write ``name,score,rank,chosen`` for every scored candidate, by rank
    (:func:`scores_table`), so that a person can look past the budget: the chosen rows (``1``)
    list the priority CSV's names in its order; the score is written with 9 significant
    digits, unmapped (a predicted loss stays negative). Written atomically.

    Args:
        dataset_or_names: index -> name, as in :func:`write_entropies_csv`.
        chosen, chosen_scores, scored, scored_scores: as in :func:`scores_table`.
        path: destination.
    """
    name_of = _name_lookup(dataset_or_names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SCORES_CSV_HEADER)
    for index, score, rank, is_chosen in scores_table(chosen, chosen_scores, scored,
                                                      scored_scores):
        if not math.isfinite(score):
            raise ValueError("scores contain NaN or infinite values")
        writer.writerow((name_of(index), f"{score:.9g}", rank, int(is_chosen)))
    atomic_write_text(path, buffer.getvalue())


def read_scores_csv(path: str | os.PathLike) -> list[tuple[str, float, int, bool]]:
    """Read a scores CSV back as ``[(name, score, rank, chosen), ...]`` (checks the header)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(rows[0]) != SCORES_CSV_HEADER:
        raise ValueError(f"{path}: header must be {','.join(SCORES_CSV_HEADER)}")
    return [(name, float(score), int(rank), chosen == "1") for name, score, rank, chosen
            in rows[1:]]


REGION_CSV_HEADER = ("name", "region_id", "score")


def write_region_csv(names: Sequence[str], region_ids: Sequence[int] | np.ndarray,
                     scores: Sequence[float] | np.ndarray, path: str | os.PathLike) -> None:
    """Write the chosen superpixels, one ``name,region_id,score`` row each, in the given order.

    ``region_id`` is the id in ``regions/maps/<name>.png``; ``scores`` are CSV values already
    (see :func:`csv_values`). Written atomically with the ``csv`` module, so a name holding a
    comma or a quote is quoted as CSV readers expect.
    """
    if not len(names) == len(region_ids) == len(scores):
        raise ValueError(f"names ({len(names)}), region ids ({len(region_ids)}) and scores "
                         f"({len(scores)}) differ in length")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REGION_CSV_HEADER)
    for name, region, score in zip(names, region_ids, scores, strict=True):
        writer.writerow((name, int(region), f"{float(score):.5f}"))
    atomic_write_text(path, buffer.getvalue())


def read_entropies_csv(path: str | os.PathLike) -> list[tuple[str, float]]:
    """Read a priority CSV back as ``[(name, value), ...]`` (checks the header)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(rows[0]) != CSV_HEADER:
        raise ValueError(f"{path}: header must be {','.join(CSV_HEADER)}")
    return [(name, float(value)) for name, value in rows[1:]]


def write_metrics_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write one row per finished cycle; columns in first-seen order; written atomically."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _format_cell(value) for key, value in row.items()})
    atomic_write_text(path, buffer.getvalue())


def read_metrics_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read ``metrics.csv``; numeric cells become int/float."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: _parse_cell(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _parse_cell(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text
