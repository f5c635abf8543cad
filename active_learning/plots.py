"""Learning curves: a metric against the number of labeled items."""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from .atomic import atomic_open


def plot_learning_curve(curves: Mapping[str, Sequence[Mapping[str, Any]] | Sequence[Sequence[Mapping[str, Any]]]],
                        path: str | os.PathLike, *, metric: str = "accuracy",
                        title: str | None = None) -> None:
    """Draw one line per strategy; several runs (seeds) of one strategy give mean +- std.

    Args:
        curves: ``{label: rows}`` or ``{label: [rows_seed0, rows_seed1, ...]}``; rows are the
            ``metrics.csv`` dicts with ``n_labeled`` and ``metric``.
        path: PNG written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, runs in curves.items():
        if runs and isinstance(runs[0], Mapping):
            runs = [runs]
        counts, mean, std = mean_std_curve(runs, metric)
        if len(counts) == 0:
            continue
        (line,) = axis.plot(counts, mean, marker="o", markersize=3, label=label)
        if len(runs) > 1:
            axis.fill_between(counts, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    axis.set_xlabel("labeled items")
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title)
    axis.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)


def mean_std_curve(runs: Sequence[Sequence[Mapping[str, Any]]], metric: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std of ``metric`` over runs at each label count present in every run.

    Returns (counts [K], mean [K], std [K]), counts ascending; population std (0 for one run).
    """
    per_run = [{int(row["n_labeled"]): float(row[metric]) for row in rows if metric in row}
               for rows in runs]
    if not per_run:
        return np.array([]), np.array([]), np.array([])
    common = sorted(set.intersection(*(set(values) for values in per_run)))
    table = np.array([[values[count] for count in common] for values in per_run], dtype=np.float64)
    if table.size == 0:
        return np.array([]), np.array([]), np.array([])
    return np.array(common), table.mean(axis=0), table.std(axis=0)
