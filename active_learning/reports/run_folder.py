"""The report page of a run folder, built from its files (a simulated run, or a round's
``run/``): ``args.json``, ``metrics.csv``, ``priorities/``, ``regions/``, ``selections/`` and
``embeddings/`` (``files/embeddings.py``)."""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import ConfigError
from active_learning.files.embeddings import CHOSEN, read_embeddings_file, saved_class_names
from active_learning.reports.class_histogram import class_counts
from active_learning.reports.embedding_map import MAX_MAP_POINTS, sampled_line
from active_learning.reports.page import ChosenImage, Selection, write_report


def _cycle_files(folder: Path) -> dict[int, Path]:
    """``{cycle: path}`` of the ``cycle_XX.*`` files in ``folder``."""
    found = {}
    for path in folder.glob("cycle_*.*"):
        number = path.stem.removeprefix("cycle_")
        if number.isdigit():
            found[int(number)] = path
    return found


def map_fields(run_dir: str | os.PathLike, cycle: int, *, class_names: Sequence[str] = (),
               record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The :class:`Selection` fields of a run's cycle that come from its map points
    (``embeddings/cycle_XX.npz``): ``embedding_map``, ``class_counts`` (labeled against chosen,
    where the points have classes) and the notes; without the file, why there is no map (from
    ``args.json``'s ``report``: turned off, or the units have no embedding of their own).

    Args:
        run_dir: the run folder (a simulated run, or a round's ``run/``).
        cycle: the cycle.
        class_names: [C] names of the class indices (default: the names saved with the points).
        record: ``args.json`` as read (read from ``run_dir`` when ``None``).
    """
    run_dir = Path(run_dir)
    if record is None:
        path = run_dir / "args.json"
        record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    points_file = run_dir / "embeddings" / f"cycle_{cycle:02d}.npz"
    if not points_file.is_file():
        report = record.get("report", {})
        if report.get("map_left_out"):
            return {"map_note": f"Left out: {report['map_left_out']}."}
        if report.get("map_points") == 0:
            return {"map_note": "Left out: the run was made with --no-report-map."}
        return {}
    points = read_embeddings_file(points_file)
    fields: dict[str, Any] = {"embedding_map": points}
    if points.classes is None:
        if points.note:
            fields["class_note"] = points.note
        return fields
    names = list(class_names) or list(points.class_names)
    n_classes = max(len(names), int(np.max(points.classes, initial=-1)) + 1)
    fields["class_counts"] = class_counts(points.classes, points.status, n_classes,
                                          points.predicted)
    status = np.asarray(points.status).astype(str)
    guessed = (points.predicted is not None
               and np.asarray(points.predicted, dtype=bool)[status == CHOSEN].any())
    line = "Each set's share of every class"
    line += (": the labeled images by their labels, the chosen ones by the model's predicted "
             "class." if guessed else ".")
    fields["class_note"] = line + sampled_line(points)
    return fields


def _read_region_csv(path: Path) -> list[tuple[str, int, float]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [(name, int(region), float(score)) for name, region, score in rows[1:]]


def _chosen(run_dir: Path, priorities: Path, regions: Path | None,
            image_root: Path | None) -> list[ChosenImage]:
    """A cycle's chosen items, best first: their images where ``image_root`` has them, and
    their chosen superpixels (with the region maps) for a superpixel run."""
    from active_learning.files.export import read_entropies_csv
    from active_learning.loop.superpixels import load_region_map
    from active_learning.loop.units import region_map_path

    per_image: dict[str, tuple[list[int], list[float]]] = {}
    if regions is not None:
        for name, region, score in _read_region_csv(regions):
            per_image.setdefault(name, ([], []))
            per_image[name][0].append(region)
            per_image[name][1].append(score)
    chosen = []
    for name, value in read_entropies_csv(priorities):
        file = image_root / name if image_root is not None else None
        item = ChosenImage(name=name, score=value,
                           image=file if file is not None and file.is_file() else None)
        if name in per_image:
            map_file = run_dir / "regions" / "maps" / region_map_path(name)
            if map_file.is_file() and item.image is not None:
                item.region_map = load_region_map(map_file)
            item.regions = np.asarray(per_image[name][0], dtype=np.int64)
            item.region_scores = np.asarray(per_image[name][1], dtype=np.float64)
        chosen.append(item)
    return chosen


def report_for_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, *,
                   images: str | os.PathLike | None = None,
                   class_names: Sequence[str] = (),
                   max_thumbnails: int = 48, max_map_points: int = MAX_MAP_POINTS) -> Path:
    """Build the page of an existing run folder from its files; returns its ``index.html``.

    Reads ``args.json`` (the strategy, the metric), ``metrics.csv`` (the curve and the table),
    ``priorities/cycle_XX.csv`` (each cycle's choice and its CSV values), ``regions/``
    (superpixel runs: the chosen regions and their maps), ``selections/cycle_XX.png`` (shown as
    they are) and, where present, ``embeddings/cycle_XX.npz`` (``files/embeddings.py``: the
    map, and the class histogram when it holds classes). Thumbnails need the images:
    ``images`` is the folder the item names are relative to.

    Args:
        run_dir: the run folder.
        output: the report folder (default ``RUN_DIR/report``).
        images: the images folder, or ``None`` (no thumbnails; the run's pictures instead).
        class_names: names of the class indices in the embeddings files.
        max_thumbnails: thumbnails per cycle.
        max_map_points: points per t-SNE map.

    Raises:
        ConfigError: ``run_dir`` is not a run folder (no ``metrics.csv`` and no priorities).
    """
    from active_learning.files.export import read_metrics_csv

    run_dir = Path(run_dir)
    priorities = _cycle_files(run_dir / "priorities")
    if not (run_dir / "metrics.csv").is_file() and not priorities:
        raise ConfigError(f"{run_dir} is not a run folder: it has no metrics.csv and no "
                          "priorities/cycle_XX.csv")
    output = Path(output) if output is not None else run_dir / "report"
    record: dict[str, Any] = {}
    if (run_dir / "args.json").is_file():
        record = json.loads((run_dir / "args.json").read_text(encoding="utf-8"))
    loop = record.get("loop", {})
    metric = record.get("metric", {}).get("name")
    rows = read_metrics_csv(run_dir / "metrics.csv")
    image_root = Path(images) if images is not None else None
    if image_root is not None and not image_root.is_dir():
        raise ConfigError(f"--images {image_root} is not a folder")
    regions = _cycle_files(run_dir / "regions")
    pictures = _cycle_files(run_dir / "selections")
    if not class_names:   # the names the run saved with its map points
        class_names = next((names for names in (
            saved_class_names(path)
            for _, path in sorted(_cycle_files(run_dir / "embeddings").items())) if names), [])
    selections = []
    last = max(priorities, default=-1)
    for cycle in sorted(priorities):
        chosen = _chosen(run_dir, priorities[cycle], regions.get(cycle), image_root)
        links = {f"priorities/cycle_{cycle:02d}.csv": priorities[cycle]}
        if cycle in regions:
            links[f"regions/cycle_{cycle:02d}.csv"] = regions[cycle]
        drawn = any(item.image is not None for item in chosen)
        selections.append(Selection(
            title=f"cycle {cycle:02d}: {len(chosen)} chosen (labeled from cycle {cycle + 1})",
            chosen=chosen, pictures=[pictures[cycle]] if cycle in pictures and not drawn else [],
            links=links, open=cycle == last,
            **map_fields(run_dir, cycle, class_names=class_names, record=record)))
    summary = {key: value for key, value in (
        ("task", record.get("adapter")), ("dataset", record.get("task", {}).get("dataset")),
        ("strategy", loop.get("strategy")), ("seed", loop.get("seed")),
        ("budget per cycle", loop.get("budget")), ("finished cycles", len(rows)),
        ("metric", metric)) if value is not None}
    top_links = {name: run_dir / name for name in ("metrics.csv", "args.json")
                 if (run_dir / name).is_file()}
    cycle_links = {cycle: {"priorities": path} for cycle, path in priorities.items()}
    title = "/".join(run_dir.resolve().parts[-4:])
    return write_report(output, title=title, selections=selections, summary=summary,
                        links=top_links, metrics_rows=rows, metric=metric,
                        x_axis=_x_axis(record, rows), curve_label=str(loop.get("strategy", "run")),
                        cycle_links=cycle_links, class_names=class_names,
                        max_thumbnails=max_thumbnails, max_map_points=max_map_points,
                        seed=int(loop.get("seed", 0) or 0))


def _x_axis(record: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """The learning curve's x column: the labeled pixel fraction for superpixel runs."""
    if record.get("units", {}).get("kind") == "regions" and any(
            "labeled_pixel_fraction" in row for row in rows):
        return "labeled_pixel_fraction"
    return "n_labeled"
