"""Learning curves: a metric against the number of labeled items."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from active_learning.files.atomic import atomic_open

Rows = Sequence[Mapping[str, Any]]   # the metrics.csv rows of one run


def plot_learning_curve(curves: Mapping[str, Rows | Sequence[Rows]],
                        path: str | os.PathLike, *, metric: str = "accuracy",
                        title: str | None = None, baseline: str | None = None,
                        x: str = "n_labeled") -> None:
    """Draw one line per strategy; several runs (seeds) of one strategy give mean +- std.

    Args:
        curves: ``{label: rows}`` or ``{label: [rows_seed0, rows_seed1, ...]}``; rows are the
            ``metrics.csv`` dicts with ``n_labeled`` and ``metric``.
        path: PNG written atomically.
        metric: the column to plot.
        x: the column of the x axis: ``n_labeled`` (units) or a cost column such as
            ``labeled_pixel_fraction`` (then the runs of a label are matched by cycle).
        title: the figure's title.
        baseline: a label of ``curves`` (e.g. random's) drawn as a black dashed line; a second
            panel then shows every mean curve minus the baseline's, which is where strategies
            that all climb the same curve differ.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = {}
    for label, rows_or_runs in curves.items():
        runs = _as_runs(rows_or_runs)
        counts, mean, std = mean_std_curve(runs, metric, x=x)
        if len(counts):
            summaries[label] = (counts, mean, std, len(runs))
    if baseline not in summaries:
        baseline = None
    many = len(summaries) > 5
    figure, axes = plt.subplots(2 if baseline else 1, 1, sharex=True, squeeze=False, dpi=120,
                                figsize=(7.6 if many else 6.4, 6.6 if baseline else 4.2),
                                gridspec_kw={"height_ratios": [3, 2]} if baseline else None)
    axis = axes[0, 0]
    styles = _line_styles(len(summaries))
    for (label, (counts, mean, std, n_runs)), style in zip(summaries.items(), styles, strict=True):
        if label == baseline:
            style = dict(color="black", linestyle="--", linewidth=2.0, zorder=3)
        axis.plot(counts, mean, marker="o", markersize=3, label=label, **style)
        if n_runs > 1:  # faint bands when many curves overlap
            axis.fill_between(counts, mean - std, mean + std, color=style["color"],
                              alpha=0.08 if many else 0.2)
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title)
    if baseline:
        base_counts, base_mean = summaries[baseline][:2]
        gain_axis = axes[1, 0]
        gain_axis.axhline(0.0, color="black", linestyle="--", linewidth=2.0)
        for (label, (counts, mean, _, _)), style in zip(summaries.items(), styles, strict=True):
            if label == baseline:
                continue
            # The baseline's mean read at this curve's x, linearly between its points: on a cost
            # axis (clicks, pixels) the arms' x values differ; where they match, it is exact.
            order = np.argsort(base_counts, kind="stable")
            inside = (counts >= base_counts.min()) & (counts <= base_counts.max())
            baseline_there = np.interp(counts[inside], base_counts[order], base_mean[order])
            gain_axis.plot(counts[inside], mean[inside] - baseline_there, marker="o",
                           markersize=3, **style)
        gain_axis.set_ylabel(f"{metric} - {baseline.split(' (')[0]}")
        gain_axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(X_LABELS.get(x, x.replace("_", " ")))
    if many:  # outside the axes: a dozen entries would hide the curves
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    else:
        axis.legend(loc="best", fontsize="small")   # where it covers the fewest points
    figure.tight_layout()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)


def _line_styles(n: int) -> list[dict[str, Any]]:
    """``n`` distinguishable (color, linestyle) pairs: tab10 colors, then
    again with other dashes."""
    from matplotlib.colors import TABLEAU_COLORS

    colors = list(TABLEAU_COLORS.values())  # tab10's ten colors, as hex strings
    dashes = ["-", "-.", ":"]
    return [dict(color=colors[i % len(colors)], linestyle=dashes[(i // len(colors)) % len(dashes)])
            for i in range(n)]


def _as_runs(rows_or_runs: Rows | Sequence[Rows]) -> Sequence[Rows]:
    """The rows of one run, or of several (seeds) -> the rows of each run."""
    if rows_or_runs and isinstance(rows_or_runs[0], Mapping):
        return [cast(Rows, rows_or_runs)]
    return cast(Sequence[Rows], rows_or_runs)


def mean_std_curve(runs: Sequence[Rows], metric: str, x: str = "n_labeled"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std of ``metric`` over runs at each point present in every run.

    With ``x="n_labeled"`` the points are the label counts; with another column (a cost such as
    the labeled pixel fraction, which differs between seeds) they are the cycles, placed at the
    mean of ``x`` over the runs.

    Returns (x [K], mean [K], std [K]), x ascending; population std (0 for one run).
    """
    empty = np.array([]), np.array([]), np.array([])
    per_run: list[dict[int, float | tuple[float, float]]]  # cycle or count -> value(s)
    if x == "n_labeled":
        per_run = [{int(row["n_labeled"]): float(row[metric]) for row in rows if metric in row}
                   for rows in runs]
    else:
        per_run = [{int(row["cycle"]): (float(row[x]), float(row[metric])) for row in rows
                    if metric in row and x in row} for rows in runs]
    if not per_run:
        return empty
    common = sorted(set.intersection(*(set(values) for values in per_run)))
    if not common:
        return empty
    if x == "n_labeled":
        table = np.array([[values[key] for key in common] for values in per_run], dtype=np.float64)
        positions = np.array(common, dtype=np.float64)
    else:
        pairs = np.array([[values[key] for key in common] for values in per_run], dtype=np.float64)
        positions, table = pairs[..., 0].mean(axis=0), pairs[..., 1]        # [K], [S, K]
    return positions, table.mean(axis=0), table.std(axis=0)


X_LABELS = {"n_labeled": "labeled units", "labeled_pixel_fraction": "labeled pixel fraction",
            "n_images": "labeled images"}
