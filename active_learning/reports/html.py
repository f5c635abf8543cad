"""A static report a person reads: one folder with ``index.html``, its images and its script.

:func:`write_report` builds the page of a round or of a simulated run from plain data; the
command line builds it for an existing run folder from its files::

    python -m active_learning.reports.html RUN_DIR [--images DIR] [--output DIR]

The page holds, for each selection (a round, or each cycle of a run):

- the chosen images as thumbnails, best first, each with the model's boxes, skeletons or
  mask, or the chosen superpixels coloured by score, and its score; a menu re-sorts them (by
  score, rank or name), and a table lists every chosen item (sortable by any column);
- the class histogram of the choice against the labeled set (fractions, with the counts);
- a 2-D t-SNE map of the candidates' embeddings coloured by labeled / chosen / unlabeled (and by
  class where the classes are known), as the TSNEPlotter of the AL-CV project colours its
  points by "newly sampled / previously sampled / un-sampled" and by class
  (shared/reference/peer-al-for-cv-README.md);

and, for a simulated run, the learning curve and the per-cycle table of ``metrics.csv``. It
replaces no file of the run: it links the CSVs where they are. Nothing on the page loads from
the network; the sorting is ``assets/report.js``.
"""
from __future__ import annotations

import argparse
import html
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from active_learning.errors import ConfigError, UserError
from active_learning.files.atomic import atomic_open, atomic_write_text
from active_learning.files.proposals import ImagePrediction
from active_learning.reports.plots import save_figure

logger = logging.getLogger("active_learning")

LABELED, CHOSEN, UNLABELED = "labeled", "chosen", "unlabeled"
STATUSES = (UNLABELED, LABELED, CHOSEN)          # drawing order: the chosen on top
STATUS_COLOURS = {UNLABELED: "#c4c8cf", LABELED: "#2f6db5", CHOSEN: "#d62728"}
ASSETS = ("report.css", "report.js")
THUMBNAIL_SIDE = 320
MAX_THUMBNAILS = 120
MAX_MAP_POINTS = 3000
TSNE_PCA_DIMS = 50
KEYPOINT_THRESHOLD = 0.2      # joints drawn: confidence above this (as the pose overlay)


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


# --------------------------------------------------------------------------- thumbnails

def palette(count: int) -> list[tuple[int, int, int]]:
    """``count`` RGB colours: tab20's ten strong ones, then its ten light ones, repeated past 20
    (tab20 in its own order pairs each colour with its light twin, hard to tell apart)."""
    import matplotlib

    table = matplotlib.colormaps["tab20"](np.arange(20))          # RGBA [20, 4]
    colours = list(table[0::2]) + list(table[1::2])
    result = []
    for i in range(max(count, 0)):
        red, green, blue = (int(round(255 * channel)) for channel in colours[i % len(colours)][:3])
        result.append((red, green, blue))
    return result


def _region_boundaries(region_map: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels with a 4-neighbour in another region: both sides of every border
    (skimage's ``find_boundaries(mode="thick")``), so each region's outline lies on its own
    pixels."""
    edge = np.zeros(region_map.shape, dtype=bool)
    horizontal = region_map[:, :-1] != region_map[:, 1:]
    vertical = region_map[:-1, :] != region_map[1:, :]
    edge[:, :-1] |= horizontal
    edge[:, 1:] |= horizontal
    edge[:-1, :] |= vertical
    edge[1:, :] |= vertical
    return edge


def _resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an int [H, W] label map to ``size`` = (width, height)."""
    from PIL import Image

    image = Image.fromarray(np.asarray(labels).astype(np.int32), mode="I")
    return np.asarray(image.resize(size, Image.Resampling.NEAREST)).astype(np.int64)


def render_thumbnail(image: str | os.PathLike | np.ndarray, *,
                     prediction: ImagePrediction | None = None,
                     class_names: Sequence[str] = (),
                     skeleton: Sequence[tuple[int, int]] = (),
                     region_map: np.ndarray | None = None, regions: np.ndarray | None = None,
                     region_scores: np.ndarray | None = None,
                     score_range: tuple[float, float] | None = None,
                     max_side: int = THUMBNAIL_SIDE,
                     keypoint_threshold: float = KEYPOINT_THRESHOLD) -> Any:
    """Draw one image at thumbnail size with what the model or the selection says about it.

    Args:
        image: an image file, or uint8 [H, W, 3] / [H, W].
        prediction: boxes (outlined in their class's colour, labelled ``class score``), keypoints
            (the ``skeleton``'s limbs and the joints above ``keypoint_threshold``), a mask (each
            class's colour at 45 %). Its coordinates are in pixels of a
            ``prediction.width`` x ``prediction.height`` image, scaled to the thumbnail.
        class_names: [C] names of the label indices.
        skeleton: pairs of 0-based joint indices joined by a limb.
        region_map: int [H', W'] superpixel ids of the image (any size: scaled to it).
        regions: int [R] chosen region ids, filled by their ``region_scores`` (float [R]) on the
            magma colour map over ``score_range`` (default: their own range), outlined green;
            every other region's border is drawn grey.
        max_side: the thumbnail's longer side in pixels (small images are enlarged to it).

    Returns:
        A ``PIL.Image.Image`` in RGB.
    """
    from PIL import Image, ImageDraw

    if isinstance(image, np.ndarray):
        picture = Image.fromarray(np.asarray(image).astype(np.uint8)).convert("RGB")
    else:
        with Image.open(image) as opened:
            opened.draft("RGB", (max_side, max_side))     # JPEG: decode at a reduced size
            picture = opened.convert("RGB")
    scale = max_side / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST
    picture = picture.resize(size, resample)
    pixels = np.asarray(picture, dtype=np.float64) / 255.0
    colours = palette(max(len(class_names), 1))

    if prediction is not None and prediction.mask is not None:
        mask = _resize_labels(prediction.mask, size)
        valid = (mask >= 0) & (mask < len(class_names))
        table = np.asarray(colours, dtype=np.float64) / 255.0
        shade = table[np.clip(mask, 0, len(colours) - 1)]
        pixels = np.where(valid[..., None], 0.55 * pixels + 0.45 * shade, pixels)
    if region_map is not None:
        import matplotlib

        ids = _resize_labels(region_map, size)
        region_ids = np.asarray(regions if regions is not None else [], dtype=np.int64)
        scores = (np.asarray(region_scores, dtype=np.float64) if region_scores is not None
                  else np.zeros(len(region_ids)))
        if scores.shape != region_ids.shape:
            raise ValueError(f"{len(region_ids)} regions but {scores.size} region scores")
        chosen = np.isin(ids, region_ids)
        low, high = score_range if score_range is not None else (
            (float(scores.min()), float(scores.max())) if scores.size else (0.0, 1.0))
        lookup = dict(zip(region_ids.tolist(), scores.tolist(), strict=True))
        present, inverse = np.unique(ids, return_inverse=True)
        value = np.array([lookup.get(int(region), np.nan) for region in present])
        per_pixel = value[inverse.reshape(ids.shape)]                  # NaN outside the chosen
        shade = matplotlib.colormaps["magma"](
            np.clip((np.nan_to_num(per_pixel) - low) / max(high - low, 1e-12), 0, 1))[..., :3]
        pixels = np.where(chosen[..., None], 0.45 * pixels + 0.55 * shade, 0.7 * pixels)
        pixels[_region_boundaries(ids)] = (0.85, 0.85, 0.85)
        pixels[_region_boundaries(np.where(chosen, ids, -1)) & chosen] = (0.2, 1.0, 0.2)
    picture = Image.fromarray(np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if prediction is None:
        return picture

    draw = ImageDraw.Draw(picture)
    sx, sy = size[0] / prediction.width, size[1] / prediction.height
    line = max(1, round(max_side / 160))
    if prediction.boxes is not None:
        boxes = np.asarray(prediction.boxes, dtype=np.float64)
        labels = (np.asarray(prediction.labels, dtype=np.int64) if prediction.labels is not None
                  else np.zeros(len(boxes), dtype=np.int64))
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            colour = colours[int(labels[k]) % len(colours)]
            box = (x1 * sx, y1 * sy, max(x2 * sx, x1 * sx), max(y2 * sy, y1 * sy))
            draw.rectangle(box, outline=colour, width=line)
            text = class_names[int(labels[k])] if 0 <= labels[k] < len(class_names) else ""
            if prediction.box_scores is not None:
                text = f"{text} {float(prediction.box_scores[k]):.2f}".strip()
            if text and prediction.keypoints is None:
                left, top, right, bottom = draw.textbbox((box[0], box[1]), text)
                # Above the box; inside it when the box touches the image's top.
                lift = bottom - top + 2 if box[1] >= bottom - top + 2 else 0
                draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=colour)
                draw.text((box[0] + 1, box[1] - lift), text, fill=(255, 255, 255))
    if prediction.keypoints is not None:
        points = np.asarray(prediction.keypoints, dtype=np.float64)
        for joints in points:
            seen = joints[:, 2] > keypoint_threshold
            for limb, (a, b) in enumerate(skeleton):
                if a < len(joints) and b < len(joints) and seen[a] and seen[b]:
                    colour = colours[limb % len(colours)]
                    draw.line((joints[a, 0] * sx, joints[a, 1] * sy,
                               joints[b, 0] * sx, joints[b, 1] * sy), fill=colour, width=line + 1)
            radius = line + 1
            for x, y in joints[seen, :2]:
                draw.ellipse((x * sx - radius, y * sy - radius, x * sx + radius, y * sy + radius),
                             fill=(230, 30, 30), outline=(255, 255, 255))
    return picture


# --------------------------------------------------------------------------- the 2-D map

def subsample_points(status: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Which points the map shows: int [M] sorted indices, M <= ``max_points``.

    Every chosen point is kept (a random ``max_points`` of them if there are more); the rest of
    the room goes to the labeled and unlabeled points in proportion to their numbers, each a
    uniform random sample, so the picture's proportions are the data's.
    """
    status = np.asarray(status).astype(str)
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(status == CHOSEN)
    if len(chosen) >= max_points:
        return np.sort(rng.choice(chosen, size=max_points, replace=False))
    others = {kind: np.flatnonzero(status == kind) for kind in (LABELED, UNLABELED)}
    total = sum(len(indices) for indices in others.values())
    room = max_points - len(chosen)
    kept = [chosen]
    if total <= room:
        kept += list(others.values())
    else:
        labeled_share = int(round(room * len(others[LABELED]) / total))
        for kind, count in ((LABELED, labeled_share), (UNLABELED, room - labeled_share)):
            kept.append(rng.choice(others[kind], size=min(count, len(others[kind])),
                                   replace=False))
    return np.sort(np.concatenate(kept).astype(np.int64))


def tsne_coordinates(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """float [N, 2]: t-SNE of ``embeddings`` (float [N, D]) with scikit-learn.

    Reduced to 50 dimensions by PCA first when D > 50, as scikit-learn's TSNE documentation
    recommends for dense data; perplexity 30, or (N - 1) / 3 for small N (it must stay below N).

    Its OpenMP loops run on one thread: on a busy CPU (training beside it, or torch's own
    OpenMP pool in the same process) their threads spin-wait for each other, and 1,100 points
    took 39 s on this project's 2-core machine against 3.5 s on one thread.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    points = np.asarray(embeddings, dtype=np.float64)
    if points.ndim != 2 or len(points) < 4:
        raise ValueError(f"t-SNE needs at least 4 points of shape [N, D]; got {points.shape}")
    with _one_openmp_thread():
        if points.shape[1] > TSNE_PCA_DIMS and len(points) > TSNE_PCA_DIMS:
            points = PCA(n_components=TSNE_PCA_DIMS, random_state=seed).fit_transform(points)
        perplexity = min(30.0, (len(points) - 1) / 3.0)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                    random_state=seed)
        return tsne.fit_transform(points)


def _one_openmp_thread() -> Any:
    """A context that limits the loaded OpenMP pools to one thread (threadpoolctl, which
    scikit-learn requires; no limit without it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="openmp")


def plot_embedding_map(coordinates: np.ndarray, status: np.ndarray, path: str | os.PathLike, *,
                       classes: np.ndarray | None = None, class_names: Sequence[str] = (),
                       title: str = "", metadata: Mapping[str, str] | None = None) -> None:
    """Scatter the 2-D map: points by status (the chosen drawn last, on top) and, with
    ``classes`` (int [M], -1 unknown), a second panel by class. PNG written atomically, with
    ``metadata`` as its text entries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    status = np.asarray(status).astype(str)
    panels = 2 if classes is not None else 1
    figure, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 5.4), dpi=100, squeeze=False)
    axis = axes[0, 0]
    for kind in STATUSES:
        here = status == kind
        if here.any():
            axis.scatter(coordinates[here, 0], coordinates[here, 1], s=26 if kind == CHOSEN else 8,
                         c=STATUS_COLOURS[kind], label=f"{kind} ({int(here.sum())})",
                         edgecolors="black" if kind == CHOSEN else "none", linewidths=0.4)
    axis.legend(loc="best", fontsize="small")
    axis.set_title("labeled / chosen / unlabeled", fontsize=10)
    if classes is not None:
        classes = np.asarray(classes, dtype=np.int64)
        axis = axes[0, 1]
        colours = np.asarray(palette(max(len(class_names), int(classes.max(initial=0)) + 1)),
                             dtype=np.float64) / 255.0
        unknown = classes < 0
        if unknown.any():
            axis.scatter(coordinates[unknown, 0], coordinates[unknown, 1], s=6, c="#dddddd",
                         label="unknown")
        for index in np.unique(classes[~unknown]):
            here = classes == index
            name = class_names[index] if index < len(class_names) else str(index)
            axis.scatter(coordinates[here, 0], coordinates[here, 1], s=8,
                         color=colours[index], label=name)
        if len(np.unique(classes)) <= 20:
            axis.legend(loc="best", fontsize="x-small", markerscale=1.5)
        axis.set_title("by class", fontsize=10)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, metadata=metadata)


# --------------------------------------------------------------------------- class histogram

def class_counts(classes: np.ndarray, status: np.ndarray, n_classes: int,
                 predicted: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``{"labeled": int [C], "chosen": int [C]}``: the class counts of the labeled and chosen
    points (``classes`` int [N], -1 unknown and left out; ``status`` [N]). With ``predicted``
    (bool [N]: the class is the model's guess), a set counted from guesses is named so:
    ``"chosen (predicted)"``."""
    classes = np.asarray(classes, dtype=np.int64)
    status = np.asarray(status).astype(str)
    known = (classes >= 0) & (classes < n_classes)
    guessed = (np.zeros(len(classes), dtype=bool) if predicted is None
               else np.asarray(predicted, dtype=bool))
    counts = {}
    for kind in (LABELED, CHOSEN):
        counted = known & (status == kind)
        name = f"{kind} (predicted)" if guessed[counted].any() else kind
        counts[name] = np.bincount(classes[counted], minlength=n_classes)
    return counts


def plot_class_histogram(counts: Mapping[str, Sequence[float] | np.ndarray],
                         class_names: Sequence[str], path: str | os.PathLike, *,
                         title: str = "", metadata: Mapping[str, str] | None = None) -> None:
    """Horizontal grouped bars: each set's fraction per class (sets of different sizes compare
    by share). PNG written atomically, with ``metadata`` as its text entries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = {name: np.asarray(values, dtype=np.float64) for name, values in counts.items()}
    n_classes = len(class_names)
    height = min(0.28 * n_classes * max(1, len(sets)) / 2 + 1.2, 30.0)
    figure, axis = plt.subplots(figsize=(6.4, max(height, 2.4)), dpi=100)
    positions = np.arange(n_classes)
    width = 0.8 / max(len(sets), 1)
    colours = [STATUS_COLOURS[LABELED], STATUS_COLOURS[CHOSEN], "#7f7f7f", "#2ca02c"]
    for k, (name, values) in enumerate(sets.items()):
        total = values.sum()
        share = values / total if total > 0 else values
        axis.barh(positions + (k - (len(sets) - 1) / 2) * width, share, height=width,
                  color=colours[k % len(colours)], label=f"{name} ({int(total)})")
    axis.set_yticks(positions, [str(name) for name in class_names], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("fraction of the set")
    axis.legend(loc="best", fontsize="small")
    axis.grid(axis="x", alpha=0.3)
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, metadata=metadata)


# --------------------------------------------------------------------------- the page

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def _href(target: str | os.PathLike, folder: Path) -> str:
    """A relative link from the report folder to ``target`` (URL-escaped)."""
    from urllib.parse import quote

    relative = os.path.relpath(Path(target).resolve(), folder.resolve())
    return quote(Path(relative).as_posix())


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, sortable: bool = True,
           text_columns: Sequence[str] = (), html_cells: bool = False) -> str:
    """An HTML table; a numeric cell keeps its full value in ``data-value`` for sorting.
    With ``html_cells``, string cells are inserted as given (already escaped)."""
    head = "".join(f'<th scope="col" class="{"text" if name in text_columns else ""}">'
                   f"{_e(name)}</th>" for name in columns)
    body = []
    for row in rows:
        cells = []
        for name, value in zip(columns, row, strict=True):
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                    value, bool):
                cells.append(f'<td data-value="{_e(repr(float(value)))}">'
                             f"{_e(_number(value))}</td>")
            else:
                shown = str(value) if html_cells else _e(value)
                cells.append(f'<td class="{"text" if name in text_columns else ""}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    kind = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table{kind}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _links(links: Mapping[str, str | os.PathLike], folder: Path) -> str:
    if not links:
        return ""
    items = " ".join(f'<a href="{_href(target, folder)}">{_e(text)}</a>'
                     for text, target in links.items())
    return f'<nav class="links">{items}</nav>'


def _save_thumbnail(picture: Any, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        picture.save(handle, format="JPEG", quality=88)


def _selection_html(selection: Selection, number: int, folder: Path, *,
                    class_names: Sequence[str], skeleton: Sequence[tuple[int, int]],
                    max_thumbnails: int, max_map_points: int, seed: int) -> str:
    parts = [_links(selection.links, folder)]
    chosen = list(selection.chosen)
    # (rank, item) of the first max_thumbnails items that have an image, in rank order.
    drawn = [(rank, item) for rank, item in enumerate(chosen, start=1)
             if item.image is not None][:max_thumbnails]
    region_scores = [np.asarray(item.region_scores, dtype=np.float64) for _, item in drawn
                     if item.region_scores is not None and len(item.region_scores)]
    score_range = ((float(min(s.min() for s in region_scores)),
                    float(max(s.max() for s in region_scores))) if region_scores else None)
    if drawn:
        grid = f"grid-{number}"
        cards = []
        for rank, item in drawn:
            file_name = f"s{number:02d}_{rank:05d}.jpg"
            assert item.image is not None
            picture = render_thumbnail(item.image, prediction=item.prediction,
                                       class_names=class_names, skeleton=skeleton,
                                       region_map=item.region_map, regions=item.regions,
                                       region_scores=item.region_scores, score_range=score_range)
            _save_thumbnail(picture, folder / "img" / file_name)
            caption = [f'<span class="rank">#{rank}</span> <span class="score">'
                       f"{_e(_number(float(item.score)))}</span>",
                       f'<div class="name">{_e(item.name)}</div>']
            if item.prediction is not None and item.prediction.label is not None:
                label = int(item.prediction.label)
                name = class_names[label] if 0 <= label < len(class_names) else str(label)
                confidence = ("" if item.prediction.confidence is None
                              else f" ({float(item.prediction.confidence):.2f})")
                caption.append(f"<div>predicted: {_e(name)}{_e(confidence)}</div>")
            if item.regions is not None:
                caption.append(f"<div>{len(item.regions)} superpixel(s) chosen</div>")
            if item.note:
                caption.append(f"<div>{_e(item.note)}</div>")
            cards.append(f'<figure class="card" data-rank="{rank}" '
                         f'data-score="{_e(repr(float(item.score)))}" data-name="{_e(item.name)}">'
                         f'<img src="img/{file_name}" alt="{_e(item.name)}" '
                         f'width="{picture.width}" height="{picture.height}">'
                         f"<figcaption>{''.join(caption)}</figcaption></figure>")
        shown = (f"the first {len(drawn)} of {len(chosen)} by rank" if len(drawn) < len(chosen)
                 else f"all {len(chosen)}")
        parts.append(f"<h3>Chosen images ({shown})</h3>")
        parts.append(f'<div class="controls"><label>Sort by <select data-grid="{grid}">'
                     # The cards start in rank order: the menu starts there too.
                     '<option value="rank-asc" selected>rank (the order chosen)</option>'
                     '<option value="score-desc">score, highest first</option>'
                     '<option value="score-asc">score, lowest first</option>'
                     '<option value="name-asc">name</option></select></label></div>')
        parts.append(f'<div class="grid" id="{grid}">{"".join(cards)}</div>')
    for k, picture_path in enumerate(selection.pictures):
        source = Path(picture_path)
        if not source.is_file():
            continue
        target = folder / "img" / f"s{number:02d}_picture{k}{source.suffix.lower()}"
        with atomic_open(target, "wb") as handle, open(source, "rb") as data:
            shutil.copyfileobj(data, handle)
        parts.append(f'<p><img class="plot" src="img/{target.name}" '
                     f'alt="{_e(source.name)}"></p>')
    if selection.class_counts:
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
        key = _hash({"counts": {name: values.tolist() for name, values in counts.items()},
                     "names": [str(name) for name in names], "title": title})
        if not _cached_png(folder / "img" / image, key):
            plot_class_histogram(counts, names, folder / "img" / image, title=title,
                                 metadata={PNG_KEY: key})
        parts.append("<h3>Classes</h3>")
        if selection.class_note:
            parts.append(f'<p class="muted">{_e(selection.class_note)}</p>')
        parts.append(f'<p><img class="plot" src="img/{image}" alt="class histogram"></p>')
        rows = [[name, *[int(values[i]) if float(values[i]).is_integer() else float(values[i])
                         for values in counts.values()]] for i, name in enumerate(names)]
        parts.append(_table(["class", *counts], rows, text_columns=["class"]))
    elif selection.class_note:
        parts.append(f'<h3>Classes</h3><p class="muted">{_e(selection.class_note)}</p>')
    if selection.embedding_map is not None:
        parts.append(_map_html(selection.embedding_map, number, folder, class_names=class_names,
                               max_points=max_map_points, seed=seed))
    elif selection.map_note:
        parts.append(f'<h3>Embedding map</h3><p class="muted">{_e(selection.map_note)}</p>')
    if chosen:
        parts.append("<h3>Every chosen item</h3>")
        rows = [[rank, item.name, float(item.score)]
                for rank, item in enumerate(chosen, start=1)]
        parts.append(_table(["rank", "name", "score"], rows, text_columns=["name"]))
    body = "\n".join(part for part in parts if part)
    heading = _e(selection.title)
    if selection.open:
        return (f'<section class="selection" id="selection-{number}"><h2>{heading}</h2>{body}'
                "</section>")
    return (f'<section class="selection" id="selection-{number}"><details><summary>{heading}'
            f"</summary>{body}</details></section>")


PNG_KEY = "al-report-key"      # the PNG text entry naming what a kept image was drawn from


def _hash(facts: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _map_key(points: EmbeddingMap, max_points: int, seed: int,
             class_names: Sequence[str]) -> str | None:
    """What a map image depends on, hashed: its points file (path, size, modification time)
    and the drawing's settings; None for points that come from no file (never kept)."""
    if points.source is None or not Path(points.source).is_file():
        return None
    stat = Path(points.source).stat()
    return _hash({"source": str(Path(points.source).resolve()), "size": stat.st_size,
                  "mtime_ns": stat.st_mtime_ns, "max_points": max_points, "seed": seed,
                  "class_names": [str(name) for name in class_names], "version": 1})


def _cached_png(path: Path, key: str | None, source: Path | None = None) -> bool:
    """True when ``path`` is the image drawn for ``key`` (its PNG text entry), and not older
    than ``source``, the file it was drawn from."""
    if key is None or not path.is_file():
        return False
    if source is not None and path.stat().st_mtime_ns < Path(source).stat().st_mtime_ns:
        return False
    from PIL import Image

    try:
        with Image.open(path) as image:
            return dict(getattr(image, "text", {})).get(PNG_KEY) == key
    except OSError:   # a torn or foreign file: draw it again
        return False


def _map_html(points: EmbeddingMap, number: int, folder: Path, *, class_names: Sequence[str],
              max_points: int, seed: int) -> str:
    """The map's section. Its t-SNE is the report's slow part (seconds per map): an image
    drawn from a points file is kept, and reused while the file and the settings are the same
    (``_map_key``), so rewriting a run's page redraws only the maps of new cycles."""
    embeddings = np.asarray(points.embeddings)
    status = np.asarray(points.status).astype(str)
    if embeddings.ndim != 2 or len(embeddings) != len(status):
        raise ValueError(f"embeddings [N, D] and status [N] differ: {embeddings.shape} vs "
                         f"{status.shape}")
    unknown = sorted(set(status.tolist()) - set(STATUSES))
    if unknown:
        raise ValueError(f"status values must be {', '.join(STATUSES)}; got {unknown}")
    kept = subsample_points(status, max_points, seed)
    if len(kept) < 4:
        return "<h3>Embedding map</h3><p class=\"muted\">Too few points for a map.</p>"
    image = f"s{number:02d}_map.png"
    title = (f"t-SNE of {len(kept)} of {len(status)} points" if len(kept) < len(status)
             else f"t-SNE of {len(status)} points")
    key = _map_key(points, max_points, seed, class_names)
    if not _cached_png(folder / "img" / image, key, points.source):
        try:
            coordinates = tsne_coordinates(embeddings[kept], seed)
        except ImportError:
            logger.warning("the report's embedding map needs scikit-learn (pip install "
                           "scikit-learn); left out")
            return ("<h3>Embedding map</h3><p class=\"muted\">Left out: the t-SNE map needs "
                    "scikit-learn (<code>pip install scikit-learn</code>).</p>")
        classes = np.asarray(points.classes)[kept] if points.classes is not None else None
        plot_embedding_map(coordinates, status[kept], folder / "img" / image, classes=classes,
                           class_names=class_names, title=title,
                           metadata={PNG_KEY: key} if key is not None else None)
    sampled = _sampled_line(points)
    return (f"<h3>Embedding map</h3><p class=\"muted\">{_e(title)}: the candidates' embeddings "
            f"(and the labeled set's), each chosen point red.{_e(sampled)}</p>"
            f'<p><img class="plot" src="img/{image}" alt="embedding map"></p>')


def _sampled_line(points: EmbeddingMap) -> str:
    """" Sampled from ...": how many of each status the run had, where it sampled them."""
    status = np.asarray(points.status).astype(str)
    parts = []
    for kind in (LABELED, CHOSEN, UNLABELED):
        total = points.totals.get(kind)
        have = int((status == kind).sum())
        if total is not None and total > have:
            parts.append(f"{have:,} of {total:,} {kind}")
    return f" Sampled from the run: {', '.join(parts)}." if parts else ""


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
    parts = [f"<header><h1>{_e(title)}</h1>"]
    if summary:
        items = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in summary.items())
        parts.append(f'<dl class="summary">{items}</dl>')
    parts.append(_links(links or {}, folder))
    parts.append("</header>")
    if metrics_rows:
        if metric and any(metric in row for row in metrics_rows):
            from active_learning.reports.plots import plot_learning_curve

            plot_learning_curve({curve_label: list(metrics_rows)},
                                folder / "img" / "learning_curve.png", metric=metric,
                                title=title, x=x_axis)
            parts.append('<section id="curve"><h2>Learning curve</h2><p><img class="plot" '
                         'src="img/learning_curve.png" alt="learning curve"></p></section>')
        columns: list[str] = []
        for row in metrics_rows:
            columns.extend(key for key in row if key not in columns)
        extra = sorted({text for links_of in (cycle_links or {}).values() for text in links_of})
        rows = []
        for row in metrics_rows:
            cells: list[Any] = [_escaped_cell(row.get(key, "")) for key in columns]
            cycle_files = (cycle_links or {}).get(int(row.get("cycle", -1)), {})
            cells += [f'<a href="{_href(cycle_files[text], folder)}">{_e(text)}</a>'
                      if text in cycle_files else "" for text in extra]
            rows.append(cells)
        parts.append('<section id="cycles"><h2>Per cycle</h2>'
                     + _table(columns + extra, rows, text_columns=extra, html_cells=True)
                     + "</section>")
    for number, selection in enumerate(selections):
        parts.append(_selection_html(selection, number, folder, class_names=class_names,
                                     skeleton=skeleton, max_thumbnails=max_thumbnails,
                                     max_map_points=max_map_points, seed=seed))
    page = Template(_asset("report.html")).substitute(
        title=_e(title), body="\n".join(part for part in parts if part),
        generated=_e(time.strftime("%Y-%m-%d %H:%M:%S")))
    index = folder / "index.html"
    atomic_write_text(index, page)
    return index


def _escaped_cell(value: Any) -> Any:
    """A metrics cell for a table with ``html_cells``: numbers as they are, text escaped."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return value
    return _e(value)


def _asset(name: str) -> str:
    return (resources.files("active_learning.reports") / "assets" / name).read_text(
        encoding="utf-8")


# --------------------------------------------------------------------------- a run folder

def write_embeddings_file(path: str | os.PathLike, embeddings: np.ndarray, status: np.ndarray,
                          classes: np.ndarray | None = None, *,
                          predicted: np.ndarray | None = None, units: np.ndarray | None = None,
                          class_names: Sequence[str] = (),
                          totals: Mapping[str, int] | None = None, note: str = "") -> None:
    """Save a cycle's map points for :func:`report_for_run` (``embeddings/cycle_XX.npz`` in a
    run folder), atomically: embeddings float [N, D] (stored as float32), status [N], and
    optionally classes int [N], predicted bool [N], units int [N], the class names [C], the
    totals of each status before sampling and a note (the fields of :class:`EmbeddingMap`)."""
    arrays: dict[str, np.ndarray] = {
        "embeddings": np.asarray(embeddings, dtype=np.float32),
        "status": np.asarray(status).astype(str)}
    if classes is not None:
        arrays["classes"] = np.asarray(classes, dtype=np.int64)
    if predicted is not None:
        arrays["predicted"] = np.asarray(predicted, dtype=bool)
    if units is not None:
        arrays["units"] = np.asarray(units, dtype=np.int64)
    if len(class_names):
        arrays["class_names"] = np.asarray([str(name) for name in class_names], dtype=str)
    if totals:
        arrays["total_statuses"] = np.asarray(list(totals), dtype=str)
        arrays["total_counts"] = np.asarray(list(totals.values()), dtype=np.int64)
    if note:
        arrays["note"] = np.asarray(note, dtype=str)
    for name, values in arrays.items():
        if name in ("classes", "predicted", "units") and len(values) != len(arrays["status"]):
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
            totals=totals, note=str(data["note"]) if "note" in data else "", source=Path(path))


def _saved_class_names(path: Path) -> list[str]:
    """The class names a points file holds ([] if none), without reading its embeddings."""
    with np.load(path, allow_pickle=False) as data:
        return [str(name) for name in data["class_names"]] if "class_names" in data else []


def _cycle_files(folder: Path) -> dict[int, Path]:
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
    fields["class_note"] = line + _sampled_line(points)
    return fields


def _read_region_csv(path: Path) -> list[tuple[str, int, float]]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [(name, int(region), float(score)) for name, region, score in rows[1:]]


def report_for_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, *,
                   images: str | os.PathLike | None = None,
                   class_names: Sequence[str] = (),
                   max_thumbnails: int = 48, max_map_points: int = MAX_MAP_POINTS) -> Path:
    """Build the page of an existing run folder from its files; returns its ``index.html``.

    Reads ``args.json`` (the strategy, the metric), ``metrics.csv`` (the curve and the table),
    ``priorities/cycle_XX.csv`` (each cycle's choice and its CSV values), ``regions/``
    (superpixel runs: the chosen regions and their maps), ``selections/cycle_XX.png`` (shown as
    they are) and, where present, ``embeddings/cycle_XX.npz`` (:func:`write_embeddings_file`:
    the map, and the class histogram when it holds classes). Thumbnails need the images:
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
    from active_learning.files.export import read_entropies_csv, read_metrics_csv
    from active_learning.loop.superpixels import load_region_map
    from active_learning.loop.units import region_map_path

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
            _saved_class_names(path)
            for _, path in sorted(_cycle_files(run_dir / "embeddings").items())) if names), [])
    selections = []
    last = max(priorities, default=-1)
    for cycle in sorted(priorities):
        chosen = []
        per_image: dict[str, tuple[list[int], list[float]]] = {}
        if cycle in regions:
            for name, region, score in _read_region_csv(regions[cycle]):
                per_image.setdefault(name, ([], []))
                per_image[name][0].append(region)
                per_image[name][1].append(score)
        for name, value in read_entropies_csv(priorities[cycle]):
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


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m active_learning.reports.html",
        description="Build the static report page (index.html and its images) of a run folder.")
    parser.add_argument("run_dir", help="the run folder (runs/<task>/<dataset>/<strategy>/seed<k>)")
    parser.add_argument("--output", default=None, help="the report folder (default RUN_DIR/report)")
    parser.add_argument("--images", default=None,
                        help="the folder the item names are relative to, for thumbnails")
    parser.add_argument("--class-names", default=None,
                        help="a text file of class names, one per line (for the embeddings' "
                             "classes)")
    parser.add_argument("--max-thumbnails", type=int, default=48,
                        help="thumbnails per cycle (default 48)")
    parser.add_argument("--max-map-points", type=int, default=MAX_MAP_POINTS,
                        help=f"points per t-SNE map (default {MAX_MAP_POINTS})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the report; returns 0, or 2 with one message on stderr for unusable input."""
    args = get_args_parser().parse_args(argv)
    try:
        names: list[str] = []
        if args.class_names:
            try:
                text = Path(args.class_names).read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigError(f"--class-names {args.class_names}: {error.strerror}") from None
            names = [line.strip() for line in text.splitlines() if line.strip()]
        index = report_for_run(args.run_dir, args.output, images=args.images, class_names=names,
                               max_thumbnails=args.max_thumbnails,
                               max_map_points=args.max_map_points)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
