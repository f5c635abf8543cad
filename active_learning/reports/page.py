"""The report page: ``index.html`` with its images and its script, in one folder.

:func:`write_report` builds the page of a round or of a simulated run from plain data
(:class:`Selection`, :class:`ChosenImage`); ``run_folder.py`` builds that data from a run's
files. The HTML comes from the Jinja2 templates in ``assets/`` with automatic escaping: every
name, class and value reaches the page as text. The page holds, for each selection (a round, or
each cycle of a run):

- the chosen images as thumbnails, best first, each with the model's boxes, skeletons or
  mask, or the chosen superpixels coloured by score, and its score; a menu re-sorts them (by
  score, rank or name), and a table lists every chosen item (sortable by any column);
- the class histogram of the choice against the labeled set (fractions, with the counts);
- a 2-D t-SNE map of the candidates' embeddings coloured by labeled / chosen / unlabeled (and by
  class where the classes are known);

and, for a simulated run, the learning curve and the per-cycle table of ``metrics.csv``. It
replaces no file of the run: it links the CSVs where they are. Nothing on the page loads from
the network; the sorting is ``assets/report.js``.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import numpy as np

from active_learning.drawing.predictions import Style
from active_learning.extras import MissingDependency
from active_learning.files.atomic import atomic_open, atomic_write_text
from active_learning.files.embeddings import EmbeddingMap
from active_learning.files.predictions import ImagePrediction
from active_learning.reports import embedding_map as maps  # by module: tests count its t-SNE calls
from active_learning.reports.class_histogram import plot_class_histogram
from active_learning.reports.image_cache import PNG_KEY, content_key, is_cached, map_key
from active_learning.reports.thumbnails import render_thumbnail, save_thumbnail

logger = logging.getLogger("active_learning")

ASSETS = ("report.css", "report.js")      # copied next to the page; the templates are not
MAX_THUMBNAILS = 120
MAX_MAP_POINTS = maps.MAX_MAP_POINTS


@dataclass
class ChosenImage:
    """One chosen image as the report shows it.

    Attributes:
        name: the item's name (as in the priority CSV).
        score: its selection score (higher = label first).
        image: the image file to draw the thumbnail from; ``None``: no thumbnail, a table row.
        prediction: the model's output on it (boxes, keypoints, mask, class), drawn over it.
        region_map: superpixel units: int [H, W] the image's region ids.
        regions: int [R] the chosen region ids in it.
        region_scores: float [R] their scores (the fill colour).
        note: a line under the thumbnail (e.g. "true class: cat").
    """

    name: str
    score: float
    image: str | os.PathLike | None = None
    prediction: ImagePrediction | None = None
    region_map: np.ndarray | None = None
    regions: np.ndarray | None = None
    region_scores: np.ndarray | None = None
    note: str = ""


@dataclass
class Selection:
    """One selection's section of the page: a round, or one cycle of a simulated run.

    Attributes:
        title: the section's heading ("round 3", "cycle 02").
        chosen: the chosen images, best first.
        class_counts: ``{set name: counts [C]}``, e.g. ``{"labeled": ..., "chosen": ...}``
            (say "chosen (predicted)" when the counts are the model's guesses).
        embedding_map: the candidates' embeddings, or ``None``.
        class_note: a line under the class histogram's heading (how its sets were counted, or
            why there is none).
        map_note: a line in place of the map when there is none (why).
        pictures: image files shown as they are (e.g. the run's ``selections/cycle_XX.png``);
            copied into the report.
        links: ``{text: file}`` links (the priority CSV, the region CSV, the proposals).
        open: shown expanded (otherwise folded under its title).
    """

    title: str
    chosen: Sequence[ChosenImage] = ()
    class_counts: Mapping[str, Sequence[float] | np.ndarray] | None = None
    embedding_map: EmbeddingMap | None = None
    class_note: str = ""
    map_note: str = ""
    pictures: Sequence[str | os.PathLike] = ()
    links: Mapping[str, str | os.PathLike] = field(default_factory=dict)
    open: bool = True


# --------------------------------------------------------------------------- what templates get

@dataclass
class Cell:
    """A table cell: its text, its full value for sorting (numbers), a link target."""

    text: str
    sort: str | None = None
    href: str | None = None


@dataclass
class Table:
    """A table for the ``table`` macro: a cell of a ``text_columns`` column is left-aligned."""

    columns: list[str]
    rows: list[list[Cell]]
    text_columns: frozenset[str] = frozenset()
    sortable: bool = True


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value,
                                                                                        bool)


def _cell(value: Any) -> Cell:
    """A number keeps its full value in ``data-value``; anything else is text."""
    if _is_number(value):
        return Cell(_number(value), sort=repr(float(value)))
    return Cell(str(value))


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]],
           text_columns: Sequence[str] = ()) -> Table:
    return Table(list(columns), [[_cell(value) for value in row] for row in rows],
                 frozenset(text_columns))


def _href(target: str | os.PathLike, folder: Path) -> str:
    """A relative link from the report folder to ``target`` (URL-escaped)."""
    relative = os.path.relpath(Path(target).resolve(), folder.resolve())
    return quote(Path(relative).as_posix())


def _links(links: Mapping[str, str | os.PathLike], folder: Path) -> list[Cell]:
    return [Cell(text, href=_href(target, folder)) for text, target in links.items()]


# --------------------------------------------------------------------------- one selection

def _cards(selection: Selection, number: int, folder: Path, style: Style,
           max_thumbnails: int) -> list[dict[str, Any]]:
    """Draw the thumbnails of the first ``max_thumbnails`` chosen items that have an image, in
    rank order; their cards' facts."""
    drawn = [(rank, item) for rank, item in enumerate(selection.chosen, start=1)
             if item.image is not None][:max_thumbnails]
    region_scores = [np.asarray(item.region_scores, dtype=np.float64) for _, item in drawn
                     if item.region_scores is not None and len(item.region_scores)]
    # One colour scale for every thumbnail of the section: scores compare across images.
    score_range = ((float(min(s.min() for s in region_scores)),
                    float(max(s.max() for s in region_scores))) if region_scores else None)
    cards = []
    for rank, item in drawn:
        file_name = f"s{number:02d}_{rank:05d}.jpg"
        assert item.image is not None
        picture = render_thumbnail(item.image, prediction=item.prediction, style=style,
                                   region_map=item.region_map, regions=item.regions,
                                   region_scores=item.region_scores, score_range=score_range)
        save_thumbnail(picture, folder / "img" / file_name)
        lines = []
        if item.prediction is not None and item.prediction.label is not None:
            label = int(item.prediction.label)
            names = style.class_names
            name = names[label] if 0 <= label < len(names) else str(label)
            confidence = ("" if item.prediction.confidence is None
                          else f" ({float(item.prediction.confidence):.2f})")
            lines.append(f"predicted: {name}{confidence}")
        prediction = item.prediction
        if (prediction is not None and prediction.boxes is not None and len(prediction.boxes) == 0
                and prediction.keypoints is None):
            lines.append("no box clears the minimum score")
        if item.regions is not None:
            lines.append(f"{len(item.regions)} superpixel(s) chosen")
        if item.note:
            lines.append(item.note)
        cards.append({"rank": rank, "score": _number(float(item.score)),
                      "score_value": repr(float(item.score)), "name": item.name,
                      "file": file_name, "width": picture.width, "height": picture.height,
                      "lines": lines})
    return cards


def _pictures(selection: Selection, number: int, folder: Path) -> list[dict[str, str]]:
    """Copy the pictures shown as they are; their sources and alt texts."""
    shown = []
    for k, picture_path in enumerate(selection.pictures):
        source = Path(picture_path)
        if not source.is_file():
            continue
        target = folder / "img" / f"s{number:02d}_picture{k}{source.suffix.lower()}"
        with atomic_open(target, "wb") as handle, open(source, "rb") as data:
            shutil.copyfileobj(data, handle)
        shown.append({"src": f"img/{target.name}", "alt": source.name})
    return shown


def _classes(selection: Selection, number: int, folder: Path,
             class_names: Sequence[str]) -> dict[str, Any] | None:
    """Draw the class histogram (unless the kept one shows the same); its image and table."""
    if not selection.class_counts:
        return None
    counts = {name: np.asarray(values, dtype=np.float64)
              for name, values in selection.class_counts.items()}
    names = list(class_names) or [str(i) for i in range(len(next(iter(counts.values()))))]
    for name, values in counts.items():
        if values.shape != (len(names),):
            raise ValueError(f"class counts {name!r} have {values.size} entries for "
                             f"{len(names)} classes")
    image = f"s{number:02d}_classes.png"
    title = "classes of the choice against the labeled set"
    # Drawn again only when what it shows changed: a run's page redraws no old cycle's.
    key = content_key({"counts": {name: values.tolist() for name, values in counts.items()},
                       "names": [str(name) for name in names], "title": title})
    if not is_cached(folder / "img" / image, key):
        plot_class_histogram(counts, names, folder / "img" / image, title=title,
                             metadata={PNG_KEY: key})
    rows = [[name, *[int(values[i]) if float(values[i]).is_integer() else float(values[i])
                     for values in counts.values()]] for i, name in enumerate(names)]
    return {"image": f"img/{image}", "table": _table(["class", *counts], rows, ["class"])}


def _map(points: EmbeddingMap, number: int, folder: Path, *, class_names: Sequence[str],
         max_points: int, seed: int) -> dict[str, Any]:
    """The map's facts. Its t-SNE is the report's slow part (seconds per map): an image drawn
    from a points file is kept, and reused while the file and the settings are the same
    (``image_cache.map_key``), so rewriting a run's page redraws only the maps of new cycles."""
    facts: dict[str, Any] = {"image": None, "caption": "", "note": "", "needs_sklearn": False}
    maps.check_points(points)
    status = np.asarray(points.status).astype(str)
    kept = maps.subsample_points(status, max_points, seed)
    if len(kept) < 4:
        return {**facts, "note": "Too few points for a map."}
    image = f"s{number:02d}_map.png"
    title = (f"t-SNE of {len(kept)} of {len(status)} points" if len(kept) < len(status)
             else f"t-SNE of {len(status)} points")
    key = map_key(points, max_points, seed, class_names)
    if not is_cached(folder / "img" / image, key, points.source):
        try:
            coordinates = maps.tsne_coordinates(np.asarray(points.embeddings)[kept], seed)
        except MissingDependency as missing:   # the page is still written, without its map
            logger.warning("%s; the map is left out", missing)
            return {**facts, "needs_sklearn": True}
        classes = np.asarray(points.classes)[kept] if points.classes is not None else None
        maps.plot_embedding_map(coordinates, status[kept], folder / "img" / image,
                                classes=classes, class_names=class_names, title=title,
                                metadata={PNG_KEY: key} if key is not None else None)
    return {**facts, "image": f"img/{image}",
            "caption": f"{title}: the candidates' embeddings (and the labeled set's), each "
                       f"chosen point red.{maps.sampled_line(points)}"}


def _hex(colour: Sequence[int] | str) -> str:
    """A CSS colour: an RGB triple as ``#rrggbb``; a name or ``#...`` string as it is."""
    if isinstance(colour, str):
        return colour
    return "#" + "".join(f"{int(channel):02x}" for channel in colour[:3])


def _mask_key(items: Sequence[ChosenImage], style: Style) -> list[dict[str, str]]:
    """The colour of each class that the shown masks hold, in class order (the page's key)."""
    present: set[int] = set()
    count = len(style.class_names)
    for item in items:
        if item.prediction is not None and item.prediction.mask is not None:
            values = np.unique(np.asarray(item.prediction.mask))
            present.update(int(v) for v in values if count == 0 or 0 <= v < count)
    present.discard(-1)
    return [{"name": style.class_names[label] if label < count else str(label),
             "colour": _hex(style.class_colour(label))} for label in sorted(present)]


def _notes(chosen: Sequence[ChosenImage], shown: int) -> list[str]:
    """Lines that warn what the thumbnails alone would hide: tied scores, no box shown."""
    notes = []
    scores = {float(item.score) for item in chosen}
    if len(chosen) > 1 and len(scores) == 1:
        notes.append(f"Every chosen item has the same score ({_number(scores.pop())}): the "
                     "model does not tell them apart, so their order is the order the "
                     "candidates were drawn in, not a preference.")
    with_boxes = [item.prediction for item in chosen[:shown]
                  if item.prediction is not None and item.prediction.boxes is not None]
    if with_boxes and all(len(prediction.boxes) == 0 for prediction in with_boxes
                          if prediction.boxes is not None):
        notes.append(f"No box on any of the {len(with_boxes)} images shown clears the minimum "
                     "prediction score: they carry no pre-annotation (a lower minimum shows the "
                     "model's weaker boxes).")
    return notes


def _selection(selection: Selection, number: int, folder: Path, *, style: Style,
               max_thumbnails: int, max_map_points: int, seed: int) -> dict[str, Any]:
    """Everything the ``selection.html`` template shows of one selection (its images drawn)."""
    chosen = list(selection.chosen)
    cards = _cards(selection, number, folder, style, max_thumbnails)
    return {
        "number": number, "title": selection.title, "open": selection.open,
        "links": _links(selection.links, folder),
        "cards": cards,
        "notes": _notes(chosen, len(cards)),
        "mask_key": _mask_key([item for item in chosen if item.image is not None]
                              [:max_thumbnails], style),
        "shown": (f"the first {len(cards)} of {len(chosen)} by rank" if len(cards) < len(chosen)
                  else f"all {len(chosen)}"),
        "pictures": _pictures(selection, number, folder),
        "classes": _classes(selection, number, folder, style.class_names),
        "class_note": selection.class_note,
        "map": (_map(selection.embedding_map, number, folder, class_names=style.class_names,
                     max_points=max_map_points, seed=seed)
                if selection.embedding_map is not None else None),
        "map_note": selection.map_note,
        "every_item": (_table(["rank", "name", "score"],
                         [[rank, item.name, float(item.score)]
                          for rank, item in enumerate(chosen, start=1)], ["name"])
                  if chosen else None),
    }


# --------------------------------------------------------------------------- the page

def _metrics_table(rows: Sequence[Mapping[str, Any]], folder: Path,
                   cycle_links: Mapping[int, Mapping[str, str | os.PathLike]]) -> Table:
    """The per-cycle table: every ``metrics.csv`` column, then a link column per extra file."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    extra = sorted({text for links_of in cycle_links.values() for text in links_of})
    cells = []
    for row in rows:
        files = cycle_links.get(int(row.get("cycle", -1)), {})
        cells.append([_cell(row.get(key, "")) for key in columns]
                     + [Cell(text, href=_href(files[text], folder)) if text in files
                        else Cell("") for text in extra])
    return Table(columns + extra, cells, frozenset(extra))


def _environment() -> jinja2.Environment:
    """The templates of ``assets/``; every value inserted is escaped (``autoescape``), and a
    name a template uses but is not given is an error, not an empty string."""
    return jinja2.Environment(loader=jinja2.PackageLoader("active_learning.reports", "assets"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _asset(name: str) -> str:
    return (resources.files("active_learning.reports") / "assets" / name).read_text(
        encoding="utf-8")


def write_report(folder: str | os.PathLike, *, title: str,
                 selections: Sequence[Selection] = (),
                 summary: Mapping[str, Any] | None = None,
                 links: Mapping[str, str | os.PathLike] | None = None,
                 metrics_rows: Sequence[Mapping[str, Any]] | None = None,
                 metric: str | None = None, x_axis: str = "n_labeled",
                 curve_label: str = "this run",
                 cycle_links: Mapping[int, Mapping[str, str | os.PathLike]] | None = None,
                 class_names: Sequence[str] = (), skeleton: Sequence[tuple[int, int]] = (),
                 max_thumbnails: int = MAX_THUMBNAILS, max_map_points: int = MAX_MAP_POINTS,
                 seed: int = 0) -> Path:
    """Write the report page and its files into ``folder``; returns ``folder/index.html``.

    A round's page: one :class:`Selection`. A simulated run's page: ``metrics_rows`` (the
    learning curve and the per-cycle table) and one selection per cycle.

    Args:
        folder: created if missing; holds ``index.html``, ``assets/`` (CSS, script) and
            ``img/`` (thumbnails and plots). ``index.html`` is written last, atomically.
        title: the page's title.
        selections: the sections, in page order.
        summary: ``{label: value}`` shown at the top (task, strategy, seed, round ...).
        links: ``{text: file}`` links at the top (``metrics.csv``, ``args.json``, ...),
            relative to ``folder``.
        metrics_rows: the ``metrics.csv`` rows of a simulated run (dicts; ``cycle`` and
            ``x_axis`` columns), or ``None``.
        metric: the learning curve's y column (``None``: no curve).
        x_axis: the curve's x column (``n_labeled``, ``labeled_pixel_fraction``).
        curve_label: the curve's legend entry (the strategy).
        cycle_links: ``{cycle: {text: file}}`` extra link cells of the per-cycle table.
        class_names: [C] names of the class indices (boxes, masks, histograms, the map).
        skeleton: pose: pairs of 0-based joint indices joined by a limb.
        max_thumbnails: thumbnails drawn per selection (the best ones); the table lists all.
        max_map_points: points of each t-SNE map (a stratified subsample beyond it).
        seed: the map's subsample and t-SNE seed.
    """
    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        atomic_write_text(folder / "assets" / name, _asset(name))
    curve = False
    if metrics_rows and metric and any(metric in row for row in metrics_rows):
        from active_learning.drawing.curves import plot_learning_curve

        plot_learning_curve({curve_label: list(metrics_rows)},
                            folder / "img" / "learning_curve.png", metric=metric, title=title,
                            x=x_axis)
        curve = True
    style = Style(class_names=list(class_names), skeleton=list(skeleton))
    page = _environment().get_template("report.html").render(
        title=title, summary=dict(summary or {}), links=_links(links or {}, folder),
        curve=curve,
        cycles=_metrics_table(metrics_rows, folder, cycle_links or {}) if metrics_rows else None,
        selections=[_selection(selection, number, folder, style=style,
                               max_thumbnails=max_thumbnails, max_map_points=max_map_points,
                               seed=seed) for number, selection in enumerate(selections)],
        generated=time.strftime("%Y-%m-%d %H:%M:%S"))
    index = folder / "index.html"
    atomic_write_text(index, page)
    return index
