"""The class histogram of a choice against the labeled set: the counts and their picture."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from active_learning.drawing.figures import save_figure
from active_learning.files.embeddings import CHOSEN, LABELED
from active_learning.reports.embedding_map import STATUS_COLOURS


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
