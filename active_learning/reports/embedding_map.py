"""The report's 2-D map of the candidates' embeddings: which points it shows, their t-SNE, and
the scatter coloured by labeled / chosen / unlabeled (and by class where the classes are
known), as the TSNEPlotter of the AL-CV project colours its points by "newly sampled /
previously sampled / un-sampled" and by class (shared/reference/peer-al-for-cv-README.md)."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from active_learning.drawing.figures import save_figure
from active_learning.drawing.palette import palette
from active_learning.extras import MissingDependency, require
from active_learning.files.embeddings import CHOSEN, LABELED, STATUSES, UNLABELED, EmbeddingMap

STATUS_COLOURS = {UNLABELED: "#c4c8cf", LABELED: "#2f6db5", CHOSEN: "#d62728"}
MAX_MAP_POINTS = 3000
TSNE_PCA_DIMS = 50


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

    Raises:
        MissingDependency: scikit-learn is not installed (the ``report`` extra).
    """
    PCA = require("sklearn.decomposition", "the report's map").PCA
    TSNE = require("sklearn.manifold", "the report's map").TSNE

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
        threadpool_limits = require("threadpoolctl", "the report's map").threadpool_limits
    except MissingDependency:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="openmp")


def plot_embedding_map(coordinates: np.ndarray, status: np.ndarray, path: str | os.PathLike, *,
                       classes: np.ndarray | None = None, class_names: Sequence[str] = (),
                       title: str = "", metadata: Mapping[str, str] | None = None) -> None:
    """Scatter the 2-D map (``coordinates`` float [M, 2]): points by status (the chosen drawn
    last, on top) and, with ``classes`` (int [M], -1 unknown), a second panel by class. PNG
    written atomically, with ``metadata`` as its text entries."""
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


def check_points(points: EmbeddingMap) -> None:
    """Raise ValueError unless embeddings are [N, D] and every status is a known one."""
    embeddings = np.asarray(points.embeddings)
    status = np.asarray(points.status).astype(str)
    if embeddings.ndim != 2 or len(embeddings) != len(status):
        raise ValueError(f"embeddings [N, D] and status [N] differ: {embeddings.shape} vs "
                         f"{status.shape}")
    unknown = sorted(set(status.tolist()) - set(STATUSES))
    if unknown:
        raise ValueError(f"status values must be {', '.join(STATUSES)}; got {unknown}")


def sampled_line(points: EmbeddingMap) -> str:
    """" Sampled from ...": how many of each status the run had, where it sampled them."""
    status = np.asarray(points.status).astype(str)
    parts = []
    for kind in (LABELED, CHOSEN, UNLABELED):
        total = points.totals.get(kind)
        have = int((status == kind).sum())
        if total is not None and total > have:
            parts.append(f"{have:,} of {total:,} {kind}")
    return f" Sampled from the run: {', '.join(parts)}." if parts else ""
