"""The map points file of a cycle: ``embeddings/cycle_XX.npz`` in a run folder.

The loop writes it after each cycle's choice (``loop/report_map.py``); the report reads it to
draw the t-SNE map and the class histogram (``reports/``). It lives here, below both, so that
the loop never imports the report.

One compressed ``.npz`` (no pickles) of:

- ``embeddings`` float32 [N, D]: one row per point;
- ``status`` str [N]: ``"labeled"``, ``"chosen"`` or ``"unlabeled"``;
- optional ``classes`` int64 [N] (-1 unknown), ``predicted`` bool [N] (the class is the
  model's guess), ``units`` int64 [N] (the points' unit ids), ``class_names`` str [C],
  ``total_statuses`` str [S] with ``total_counts`` int64 [S] (how many of each status there
  were before sampling), ``names`` str [N] (the points' item names: the FiftyOne export
  matches them to its samples) and ``note`` (a line for the page, e.g. why there are no
  classes).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from active_learning.files.atomic import atomic_open

__all__ = ["CHOSEN", "LABELED", "STATUSES", "UNLABELED", "EmbeddingMap", "read_embeddings_file",
           "saved_class_names", "write_embeddings_file"]

LABELED, CHOSEN, UNLABELED = "labeled", "chosen", "unlabeled"
STATUSES = (UNLABELED, LABELED, CHOSEN)          # drawing order: the chosen on top
_PER_POINT = ("classes", "predicted", "units", "names")


@dataclass
class EmbeddingMap:
    """The points of the 2-D map.

    Attributes:
        embeddings: float [N, D] one embedding per candidate (and per labeled item).
        status: [N] ``"labeled"``, ``"chosen"`` or ``"unlabeled"`` per point.
        classes: int [N] class index per point (-1 unknown), or ``None``: a second panel
            coloured by class when given.
        predicted: bool [N] True where the class is the model's prediction (not a label), or
            ``None`` (every class is a label).
        units: int [N] the points' unit ids, or ``None``.
        class_names: [C] names of the class indices, or empty.
        totals: ``{status: count}`` of each status before the points were sampled (empty:
            the points are all of them).
        note: a line for the page (e.g. why there are no classes).
        source: the file the points were read from: the map's image is cached against it.
        names: [N] the points' item names, or ``None`` (a file written before they were).
    """

    embeddings: np.ndarray
    status: np.ndarray
    classes: np.ndarray | None = None
    predicted: np.ndarray | None = None
    units: np.ndarray | None = None
    class_names: Sequence[str] = ()
    totals: Mapping[str, int] = field(default_factory=dict)
    note: str = ""
    source: Path | None = None
    names: np.ndarray | None = None


def write_embeddings_file(path: str | os.PathLike, embeddings: np.ndarray, status: np.ndarray,
                          classes: np.ndarray | None = None, *,
                          predicted: np.ndarray | None = None, units: np.ndarray | None = None,
                          class_names: Sequence[str] = (),
                          totals: Mapping[str, int] | None = None, note: str = "",
                          names: Sequence[str] | None = None) -> None:
    """Save a cycle's map points atomically: embeddings float [N, D] (stored as float32),
    status [N], and optionally classes int [N], predicted bool [N], units int [N], the class
    names [C], the totals of each status before sampling, a note and the item names [N] (the
    fields of :class:`EmbeddingMap`).

    Raises:
        ValueError: a per-point field's length is not N.
    """
    arrays: dict[str, np.ndarray] = {
        "embeddings": np.asarray(embeddings, dtype=np.float32),
        "status": np.asarray(status).astype(str)}
    if classes is not None:
        arrays["classes"] = np.asarray(classes, dtype=np.int64)
    if predicted is not None:
        arrays["predicted"] = np.asarray(predicted, dtype=bool)
    if units is not None:
        arrays["units"] = np.asarray(units, dtype=np.int64)
    if names is not None:
        arrays["names"] = np.asarray([str(name) for name in names], dtype=str)
    if len(class_names):
        arrays["class_names"] = np.asarray([str(name) for name in class_names], dtype=str)
    if totals:
        arrays["total_statuses"] = np.asarray(list(totals), dtype=str)
        arrays["total_counts"] = np.asarray(list(totals.values()), dtype=np.int64)
    if note:
        arrays["note"] = np.asarray(note, dtype=str)
    for name, values in arrays.items():
        if name in _PER_POINT and len(values) != len(arrays["status"]):
            raise ValueError(f"{name} has {len(values)} entries for {len(arrays['status'])} "
                             "points")
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]


def read_embeddings_file(path: str | os.PathLike) -> EmbeddingMap:
    """Read what :func:`write_embeddings_file` saved (files without the optional fields too)."""
    with np.load(path, allow_pickle=False) as data:
        totals = ({str(kind): int(count) for kind, count in
                   zip(data["total_statuses"], data["total_counts"], strict=True)}
                  if "total_statuses" in data else {})
        return EmbeddingMap(
            embeddings=data["embeddings"], status=data["status"],
            classes=data["classes"] if "classes" in data else None,
            predicted=data["predicted"] if "predicted" in data else None,
            units=data["units"] if "units" in data else None,
            class_names=[str(name) for name in data["class_names"]]
            if "class_names" in data else [],
            totals=totals, note=str(data["note"]) if "note" in data else "", source=Path(path),
            names=data["names"] if "names" in data else None)


def saved_class_names(path: str | os.PathLike) -> list[str]:
    """The class names a points file holds ([] if none), without reading its embeddings."""
    with np.load(path, allow_pickle=False) as data:
        return [str(name) for name in data["class_names"]] if "class_names" in data else []
