"""Compare simulated runs of several strategies: learning curves, AUBC, labels saved, wins.

    python -m active_learning.reports.compare runs/classification/fashion_mnist \\
        --output reports/fmnist
    python -m active_learning.reports.compare runs/a/seed0 runs/b/seed0 --output cmp \\
        --metric accuracy
    python -m active_learning.reports.compare runs/segmentation/cityscapes --output seg \\
        --x labeled_pixel_fraction

A RUN_DIR is a run folder (holding ``metrics.csv`` and ``args.json``) or any folder above run
folders; every run found below it is used. Runs are grouped by strategy (``args.json``
``loop.strategy``, with its mix: ``entropy+coreset+random0.2``) and seed, and three files are
written:

    OUT_PREFIX.png   mean +- std learning curve (metric vs labeled items) per strategy
    OUT_PREFIX.md    curves table, summary table, pairwise win/tie/loss matrix, warnings
    OUT_PREFIX.csv   one row per strategy: mean/std at each label count, AUBC, labels to reach
                     random's final metric, wins/ties/losses

The metric is the runs' primary metric, read from their ``args.json`` (accuracy, mAP, OKS AP,
mIoU ...), with its direction (higher or lower is better); ``--metric`` picks another column.
Runs whose primary metrics differ are refused. The x axis of the plot is the unit count
(``n_labeled``) or, with ``--x``, a cost column of ``metrics.csv`` such as
``labeled_pixel_fraction`` or ``n_images``.

Definitions ("better" follows the metric's direction; below for higher = better):

* AUBC (area under the budget curve) of one run = mean of the metric over the compared cycles;
  a strategy's AUBC is the mean over its seeds, +- the population std over seeds (0 for one seed),
  the same std as the plotted bands.
* AUBC against a cost (``--x`` a cost column: ``n_clicks``, ``n_pixels``,
  ``labeled_pixel_fraction`` ...), the one definition for every task: the area under one run's
  metric-against-cost curve over the cost range **every** compared run covers ([the largest of
  the runs' first costs, the smallest of their last costs]), by trapezoids through the run's
  points inside the range with the curve linearly interpolated at the range's ends, divided by
  the range's width. Arms that label different units (random images, superpixels) compare this
  way: their budgets and scored subsets may differ (noted), their label counts need not line up.
* Labels to reach random: the smallest label count at which the strategy's mean curve (over
  seeds) is >= the final point of random's mean curve; "not reached" otherwise. Present only
  when a ``random`` group exists. Against a cost: the cost at which the mean curve (mean cost
  and mean metric per cycle) first reaches it, linearly interpolated between the two cycles
  around the crossing.
* Win/tie/loss: for each pair of strategies and each seed both have, compare the two runs' AUBC;
  a tie when they differ by at most ``tolerance`` (default 0.001).

Runs made with different protocols are refused (:class:`ProtocolMismatchError`, exit code 2 from
the command line): initial labeled set, budget per cycle, scored subset size
(``subset_size`` or ``subset_factor x budget``), epochs, dataset, or label counts that do not line
up cycle by cycle. Other differing training arguments (``batch_size``, the task's width, lr ...)
only give a warning: a strategy may legitimately need them (e.g. dropout for MC dropout).

Runs that finished fewer cycles than others (a run still going, or one made with fewer
``--cycles``) are compared on the label counts all runs share, with a warning saying which runs
were cut short -- refusing would make it impossible to look at a comparison while runs are
still going. Runs with no finished cycle are left out with a warning.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from active_learning.extras import require
from active_learning.files.atomic import atomic_write_text
from active_learning.files.export import read_metrics_csv
from active_learning.strategies import BASELINE
from active_learning.strategies.mixes import mix_label

if TYPE_CHECKING:  # pandas is imported lazily (docs/design.md, "Dependencies")
    import pandas as pd

NOT_REACHED = "not reached"
# Loop fields whose difference makes two runs incomparable, with how a message names them.
PROTOCOL_FIELDS = {"initial_size": "initial labeled set (initial_size)",
                   "budget": "budget per cycle (budget)",
                   "subset": "scored subset size (subset_size / subset_factor x budget)",
                   "epochs": "epochs per cycle (epochs)"}
PROTOCOL_TASK_FIELDS = ("dataset",)
# Arguments that are allowed to differ without comment: identity of the run, bookkeeping,
# and strategy hyperparameters that only the strategy using them reads.
IGNORED_LOOP_FIELDS = {"strategy", "options", "seed", "cycles", "device", "num_workers",
                       "save_checkpoints", "progress", "eval_batch_size", "checkpoint_every",
                       "unit_reduction", "lamda", "margin", "detach_epoch", "loss_pool_size",
                       "loss_width", "mc_samples", "reduction", "initial_size", "budget",
                       "subset_size", "subset_factor", "epochs", "dal_max_epochs",
                       "dal_sub_queries", "probcover_delta", "probcover_clusters", "diversity",
                       "diversity_factor", "random_fraction"}
IGNORED_TASK_FIELDS = {"csv_names", "data_dir", "output_dir", "download", "workers", "device"}
FLOAT_SLACK = 1e-12  # so that e.g. 0.701 - 0.700 counts as within a tolerance of 0.001


class ProtocolMismatchError(ValueError):
    """The runs were made with different protocols and cannot be compared."""


@dataclass
class Run:
    """One run folder: its arguments and its ``metrics.csv`` rows (sorted by cycle)."""

    path: Path
    strategy: str
    seed: int
    loop: dict[str, Any]
    task: dict[str, Any]
    rows: list[dict[str, Any]]
    metric: str | None = None           # the run's primary metric (args.json), None in old runs
    higher_is_better: bool = True

    @property
    def counts(self) -> list[int]:
        return [int(row["n_labeled"]) for row in self.rows]


@dataclass
class Comparison:
    """Everything :func:`write_comparison` writes; strategies ordered by AUBC, best first.

    ``curve_mean`` / ``curve_std``: DataFrames, index ``n_labeled`` (the compared label counts),
    one column per strategy. ``summary``: DataFrame indexed by strategy with columns ``seeds``,
    ``aubc_mean``, ``aubc_std``, ``final_mean``, ``final_std``, ``labels_to_reach_random`` (int or
    None; only with a random group), ``wins``, ``ties``, ``losses``. ``pairwise[(a, b)]`` =
    ``(wins, ties, losses)`` of a against b over their common seeds.
    """

    metric: str
    tolerance: float
    strategies: list[str]
    counts: list[int]
    curve_mean: pd.DataFrame
    curve_std: pd.DataFrame
    summary: pd.DataFrame
    aubc_per_seed: dict[str, dict[int, float]]
    pairwise: dict[tuple[str, str], tuple[int, int, int]]
    random_target: float | None
    runs: dict[str, list[Run]]           # strategy -> its runs (by seed), rows cut to `counts`
    protocol: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    higher_is_better: bool = True
    x: str = "n_labeled"
    cost_mean: pd.DataFrame | None = None   # against a cost: the mean cost per cycle
    cost_range: tuple[float, float] | None = None   # against a cost: the AUBC's common range

    @property
    def against_cost(self) -> bool:
        """Whether AUBC and the reach are measured against a cost column (``--x``)."""
        return self.x != "n_labeled"


# ---------------------------------------------------------------------------------------------
# The math


def aubc(values: Sequence[float] | np.ndarray) -> float:
    """Area under the budget curve of one run: the mean of the metric over its cycles.

    Args:
        values: float [K] the metric at each compared cycle (K >= 1, all finite).
    """
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError("values must hold at least one cycle's metric")
    if not np.isfinite(array).all():
        raise ValueError(f"values must be finite, got {array.tolist()}")
    return float(array.mean())


def _curve_to_search(xs: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                     target: float, dtype: type, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``xs`` (as ``dtype``) and ``values`` as flat arrays of one length, checked, for a search
    of where a curve reaches the finite ``target``."""
    xs = np.asarray(xs, dtype=dtype).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if xs.shape != values.shape:
        raise ValueError(f"{name} ({xs.size}) and values ({values.size}) differ in length")
    if not math.isfinite(target):
        raise ValueError(f"target must be finite, got {target}")
    return xs, values


def labels_to_reach(counts: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray,
                    target: float, higher_is_better: bool = True) -> int | None:
    """Smallest label count whose metric is at least as good as ``target`` (>=, or <= for a
    lower-is-better metric); None when the curve never gets there.

    Args:
        counts: int [K] label counts; values: float [K] the (mean) metric at those counts.
    """
    counts, values = _curve_to_search(counts, values, target, np.int64, "counts")
    reached = counts[values >= target] if higher_is_better else counts[values <= target]
    return int(reached.min()) if reached.size else None


def common_cost_range(costs: Iterable[Sequence[float] | np.ndarray]) -> tuple[float, float]:
    """The cost range every compared curve covers: (the largest of the curves' smallest costs,
    the smallest of their largest costs).

    Raises:
        ValueError: no curve, or curves that share no range (one ends before another starts).
    """
    curves = [np.asarray(cost, dtype=np.float64).reshape(-1) for cost in costs]
    if not curves or any(curve.size == 0 for curve in curves):
        raise ValueError("every curve needs at least one cost")
    low = max(float(curve.min()) for curve in curves)
    high = min(float(curve.max()) for curve in curves)
    if high < low:
        raise ValueError(f"the curves share no cost range: one ends at {high:g}, another starts "
                         f"at {low:g}")
    return low, high


def aubc_over_cost(costs: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                   low: float, high: float) -> float:
    """Area under one run's curve of the metric against a cost over ``[low, high]``, divided by
    ``high - low``: the trapezoid rule through the curve's points inside the range, the
    curve linearly interpolated at the range's ends (the metric at ``low`` when the range is
    one point).

    Args:
        costs: float [K] the cumulative cost at each cycle (non-decreasing, covering the range).
        values: float [K] the metric at those cycles (finite).
    """
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if costs.shape != values.shape or costs.size == 0:
        raise ValueError(f"costs ({costs.size}) and values ({values.size}) must be equally long "
                         "and not empty")
    if not (np.isfinite(costs).all() and np.isfinite(values).all()):
        raise ValueError("costs and values must be finite")
    if (np.diff(costs) < 0).any():
        raise ValueError(f"costs must not decrease, got {costs.tolist()}")
    if low < costs[0] - FLOAT_SLACK or high > costs[-1] + FLOAT_SLACK or high < low:
        raise ValueError(f"[{low:g}, {high:g}] is not inside the curve's costs "
                         f"[{costs[0]:g}, {costs[-1]:g}]")
    if high == low:
        return float(np.interp(low, costs, values))
    inside = (costs > low) & (costs < high)
    xs = np.concatenate([[low], costs[inside], [high]])
    ys = np.concatenate([[np.interp(low, costs, values)], values[inside],
                         [np.interp(high, costs, values)]])
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (high - low)


def cost_to_reach(costs: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                  target: float, higher_is_better: bool = True) -> float | None:
    """The cost at which a curve first reaches ``target`` (>=, or <= for a lower-is-better
    metric), linearly interpolated between the two cycles around the crossing; None when it
    never does.

    Args:
        costs: float [K] the cumulative cost at each cycle; values: float [K] the metric there.
    """
    costs, values = _curve_to_search(costs, values, target, np.float64, "costs")
    sign = 1.0 if higher_is_better else -1.0
    gap = sign * (values - target)                       # >= 0 where the target is reached
    reached = np.flatnonzero(gap >= 0)
    if not reached.size:
        return None
    first = int(reached[0])
    if first == 0:
        return float(costs[0])
    before, after = gap[first - 1], gap[first]          # before < 0 <= after
    share = -before / (after - before)
    return float(costs[first - 1] + share * (costs[first] - costs[first - 1]))


def win_tie_loss(aubc_per_seed: Mapping[str, Mapping[int, float]], tolerance: float = 0.001,
                 higher_is_better: bool = True
                 ) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], tuple[int, int, int]]]:
    """Count, per pair of strategies, the seeds on which one's AUBC beats the other's.

    Args:
        aubc_per_seed: ``{strategy: {seed: aubc}}``; a pair is compared on the seeds both have.
        tolerance: a difference of at most this much (>= 0) is a tie.
        higher_is_better: False for a metric such as an error rate (the lower AUBC wins).

    Returns:
        (totals, pairwise): ``totals[s] = {"wins", "ties", "losses"}`` summed over every other
        strategy; ``pairwise[(a, b)] = (wins, ties, losses)`` of ``a`` against ``b`` (a != b).
    """
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    names = list(aubc_per_seed)
    totals = {name: {"wins": 0, "ties": 0, "losses": 0} for name in names}
    pairwise: dict[tuple[str, str], tuple[int, int, int]] = {}
    for a in names:
        for b in names:
            if a == b:
                continue
            wins = ties = losses = 0
            for seed in sorted(set(aubc_per_seed[a]) & set(aubc_per_seed[b])):
                diff = aubc_per_seed[a][seed] - aubc_per_seed[b][seed]
                diff = diff if higher_is_better else -diff
                if abs(diff) <= tolerance + FLOAT_SLACK:
                    ties += 1
                elif diff > 0:
                    wins += 1
                else:
                    losses += 1
            pairwise[(a, b)] = (wins, ties, losses)
            totals[a]["wins"] += wins
            totals[a]["ties"] += ties
            totals[a]["losses"] += losses
    return totals, pairwise


# ---------------------------------------------------------------------------------------------
# Loading and checking runs


def _is_run_dir(path: Path) -> bool:
    return (path / "metrics.csv").is_file() and (path / "args.json").is_file()


def find_run_dirs(path: str | os.PathLike) -> list[Path]:
    """``path`` itself if it is a run folder, else every run folder below it (sorted)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such run folder: {path}")
    if _is_run_dir(path):
        return [path]
    found = []
    for root, dirs, _files in os.walk(path):
        dirs.sort()
        if _is_run_dir(Path(root)):
            found.append(Path(root))
            dirs.clear()  # a run folder's subfolders (priorities/, checkpoints/) hold no runs
    return found


def load_run(path: str | os.PathLike) -> Run:
    """Read one run folder's ``args.json`` and ``metrics.csv``."""
    path = Path(path)
    try:
        record = json.loads((path / "args.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path / 'args.json'} is not valid JSON: {error}") from None
    loop = record.get("loop") if isinstance(record, dict) else None
    if not isinstance(loop, dict) or "strategy" not in loop:
        raise ValueError(f"{path / 'args.json'} has no loop.strategy: is it a run folder?")
    task = record.get("task") or {}
    rows = sorted(read_metrics_csv(path / "metrics.csv"), key=lambda row: int(row["cycle"]))
    for row in rows:
        if "n_labeled" not in row or not isinstance(row["n_labeled"], int):
            raise ValueError(f"{path / 'metrics.csv'} lacks an integer n_labeled column")
    metric = record.get("metric") or {}
    name = metric.get("name")
    if name is None and rows and "accuracy" in rows[0]:
        name = "accuracy"  # runs recorded before args.json named the metric: classification
    # a mix is its own group: entropy+coreset+random0.2 is not entropy
    label = mix_label(str(loop["strategy"]), loop.get("diversity"),
                      loop.get("random_fraction") or 0.0, loop.get("diversity_factor"))
    return Run(path=path, strategy=label, seed=int(loop.get("seed", 0)),
               loop=dict(loop), task=dict(task), rows=rows, metric=name,
               higher_is_better=bool(metric.get("higher_is_better", True)))


def load_runs(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Run]:
    """Load every run folder given or found below the given folders (each folder once)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    seen: set[Path] = set()
    runs = []
    for path in paths:
        found = find_run_dirs(path)
        if not found:
            raise FileNotFoundError(f"no run folder (metrics.csv + args.json) in or below {path}")
        for run_dir in found:
            if run_dir.resolve() not in seen:
                seen.add(run_dir.resolve())
                runs.append(load_run(run_dir))
    if not runs:
        raise ValueError("no run folders given")
    return runs


def _protocol_values(run: Run) -> dict[str, Any]:
    loop = run.loop
    subset = loop.get("subset_size")
    if subset is None:
        subset = loop.get("subset_factor", 10) * loop.get("budget", 0)
    values = {key: loop.get(key) for key in ("initial_size", "budget", "epochs")}
    values["subset"] = subset
    values.update({f"task.{key}": run.task.get(key) for key in PROTOCOL_TASK_FIELDS})
    return values


def _list_paths(paths: Sequence[Any], limit: int = 4) -> str:
    """``a, b, c, d and 3 more`` -- keeps messages readable with many runs."""
    shown = ", ".join(str(path) for path in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _describe_groups(values_by_run: Mapping[Path, Any]) -> str:
    """``1000 in a, b; 500 in c`` -- which value each run folder has."""
    groups: dict[str, list[Path]] = {}
    for path, value in values_by_run.items():
        groups.setdefault(repr(value), []).append(path)
    return "; ".join(f"{value} in {_list_paths(folders)}" for value, folders in groups.items())


def _differs(values: Iterable[Any]) -> bool:
    # JSON text compares lists / None / numbers the way they were written to args.json.
    return len({json.dumps(value, sort_keys=True, default=str) for value in values}) > 1


# Against a cost, arms that label different units (images, superpixels) compare: their budgets
# and scored subsets count different things.
COST_FREE_FIELDS = ("budget", "subset")


def check_protocols(runs: Sequence[Run], against_cost: bool = False) -> list[str]:
    """Raise ProtocolMismatchError when the runs' protocols differ; return warnings for
    other training arguments that differ. ``against_cost``: the budget and the scored subset
    may differ (noted, not refused)."""
    per_run = {run.path: _protocol_values(run) for run in runs}
    names = {**PROTOCOL_FIELDS,
             **{f"task.{key}": f"dataset (task {key})" for key in PROTOCOL_TASK_FIELDS}}
    problems, notes = [], []
    for key, label in names.items():
        values = {path: values[key] for path, values in per_run.items()}
        if _differs(values.values()):
            if against_cost and key in COST_FREE_FIELDS:
                notes.append(f"{label} differs (compared against a cost): "
                             f"{_describe_groups(values)}")
                continue
            problems.append(f"{label} differs: {_describe_groups(values)}")
    if problems:
        raise ProtocolMismatchError("the runs were made with different protocols and cannot be "
                                    "compared:\n  " + "\n  ".join(problems))
    ignored_task = IGNORED_TASK_FIELDS | set(PROTOCOL_TASK_FIELDS)
    for source, ignored in (("loop", IGNORED_LOOP_FIELDS), ("task", ignored_task)):
        keys = sorted({key for run in runs for key in getattr(run, source)} - ignored)
        for key in keys:
            values = {run.path: getattr(run, source).get(key) for run in runs}
            if _differs(values.values()):
                notes.append(f"{source} argument {key} differs between runs: "
                             f"{_describe_groups(values)}")
    return notes


def _common_cycles(runs: Sequence[Run], check_counts: bool = True) -> tuple[int, list[str]]:
    """Number of leading cycles every run has, after checking that their label counts line up
    (unless ``check_counts`` is False: against a cost, arms label different units)."""
    shortest = min(len(run.rows) for run in runs)
    reference = min(runs, key=lambda run: len(run.rows))
    for run in runs:
        if check_counts and run.counts[:shortest] != reference.counts[:shortest]:
            raise ProtocolMismatchError(
                "the runs' label counts differ cycle by cycle and cannot be compared: "
                f"{reference.counts[:shortest]} in {reference.path}; "
                f"{run.counts[:shortest]} in {run.path}")
    notes = []
    longer = [run for run in runs if len(run.rows) > shortest]
    if longer:
        short = [run.path for run in runs if len(run.rows) == shortest]
        notes.append("runs finished different numbers of cycles; comparing on the first "
                     f"{shortest} cycle(s) (up to {reference.counts[shortest - 1]} labels) that "
                     f"all runs share. Shortest: {_list_paths(short)}")
    return shortest, notes


def _metric_values(run: Run, metric: str) -> np.ndarray:
    values = []
    for row in run.rows:
        value = row.get(metric)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            columns = [key for key in run.rows[0] if key not in ("cycle", "n_labeled")]
            if metric not in run.rows[0]:
                raise ValueError(f"metric {metric!r} is not a column of "
                                 f"{run.path / 'metrics.csv'}; columns: {', '.join(columns)}")
            raise ValueError(f"{run.path / 'metrics.csv'}: {metric} is {value!r} in "
                             f"cycle {row.get('cycle')}")
        values.append(float(value))
    return np.array(values, dtype=np.float64)  # [K]


# ---------------------------------------------------------------------------------------------
# The comparison


def resolve_metric(runs: Sequence[Run], metric: str | None = None) -> tuple[str, bool]:
    """The metric to compare and whether higher is better.

    ``metric=None`` takes the runs' primary metric, which must be the same in every run; a named
    metric takes the runs' direction when it is their primary metric, else higher = better.
    """
    recorded = {run.metric for run in runs if run.metric is not None}
    directions = {run.higher_is_better for run in runs if run.metric == metric or metric is None}
    if metric is None:
        if len(recorded) > 1:
            groups = {run.path: run.metric for run in runs}
            raise ProtocolMismatchError("the runs' primary metrics differ "
                                        f"({_describe_groups(groups)}); pass --metric "
                                        "to compare one column")
        if not recorded:
            raise ValueError("the runs' args.json name no metric: pass --metric COLUMN")
        metric = recorded.pop()
    elif metric not in recorded:
        return metric, True
    if len(directions) > 1:
        raise ProtocolMismatchError(f"the runs disagree on whether a higher {metric} is better")
    return metric, directions.pop() if directions else True


def compare_runs(runs: Sequence[Run], metric: str | None = None, tolerance: float = 0.001,
                 x: str = "n_labeled") -> Comparison:
    """Compare runs grouped by strategy and seed (see the module docstring for the definitions).

    ``metric=None`` compares the runs' primary metric (from ``args.json``); ``x`` is the plot's
    x axis (``n_labeled`` or a cost column of ``metrics.csv``).

    Raises:
        ProtocolMismatchError: the runs' protocols or label counts differ.
        ValueError: no runs, a metric missing, a negative tolerance, or two runs with the same
            strategy and seed.
    """
    pd = require("pandas", "comparing runs")

    if not (isinstance(tolerance, (int, float)) and tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    if not runs:
        raise ValueError("runs is empty: nothing to compare")
    notes = [f"{run.path} has no finished cycle yet; left out" for run in runs if not run.rows]
    runs = [run for run in runs if run.rows]
    if not runs:
        raise ValueError("none of the runs has a finished cycle")
    _check_unique(runs)
    metric, higher_is_better = resolve_metric(runs, metric)
    if x != "n_labeled":
        for run in runs:
            if x not in run.rows[0]:
                raise ValueError(f"--x {x!r} is not a column of {run.path / 'metrics.csv'}; "
                                 f"columns: {', '.join(run.rows[0])}")
    against_cost = x != "n_labeled"
    notes += check_protocols(runs, against_cost)
    n_cycles, cycle_notes = _common_cycles(runs, check_counts=not against_cost)
    notes += cycle_notes
    groups: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda run: (run.strategy, run.seed)):
        cut = Run(run.path, run.strategy, run.seed, run.loop, run.task, run.rows[:n_cycles])
        groups.setdefault(run.strategy, []).append(cut)
    counts = groups[next(iter(groups))][0].counts

    curves = {name: np.stack([_metric_values(run, metric) for run in group])  # [S, K]
              for name, group in groups.items()}
    costs, cost_range = None, None
    if against_cost:   # AUBC over the cost range every run covers (module docstring)
        counts = list(range(n_cycles))
        costs = {name: np.stack([_metric_values(run, x) for run in group])   # [S, K]
                 for name, group in groups.items()}
        cost_range = common_cost_range(row for table in costs.values() for row in table)
        aubc_per_seed = {name: {run.seed: aubc_over_cost(cost, values, *cost_range)
                                for run, cost, values in zip(groups[name], costs[name],
                                                             curves[name], strict=True)}
                         for name in groups}
    else:
        aubc_per_seed = {name: {run.seed: aubc(values)
                                for run, values in zip(groups[name], curves[name], strict=True)}
                         for name in groups}
    totals, pairwise = win_tie_loss(aubc_per_seed, tolerance, higher_is_better)
    means = {name: table.mean(axis=0) for name, table in curves.items()}  # [K]
    random_target = float(means[BASELINE][-1]) if BASELINE in means else None

    records = []
    for name, table in curves.items():
        seed_aubc = np.array(list(aubc_per_seed[name].values()))
        record = {"strategy": name, "seeds": table.shape[0],
                  "aubc_mean": float(seed_aubc.mean()), "aubc_std": float(seed_aubc.std()),
                  "final_mean": float(table[:, -1].mean()), "final_std": float(table[:, -1].std())}
        if random_target is not None and costs is not None:
            record["labels_to_reach_random"] = cost_to_reach(costs[name].mean(axis=0),
                                                             means[name], random_target,
                                                             higher_is_better)
        elif random_target is not None:
            record["labels_to_reach_random"] = labels_to_reach(counts, means[name], random_target,
                                                               higher_is_better)
        record.update(totals[name])
        records.append(record)
    sign = -1.0 if higher_is_better else 1.0
    records.sort(key=lambda record: (sign * record["aubc_mean"], record["strategy"]))
    order = [record["strategy"] for record in records]
    summary = pd.DataFrame.from_records(records).set_index("strategy")
    if random_target is not None:
        # An object column keeps ints as ints and "not reached" as None (not a float NaN).
        summary["labels_to_reach_random"] = pd.Series(
            [record["labels_to_reach_random"] for record in records], index=summary.index,
            dtype=object)
    index = pd.Index(counts, name="cycle" if against_cost else "n_labeled")
    curve_mean = pd.DataFrame({name: means[name] for name in order}, index=index)
    curve_std = pd.DataFrame({name: curves[name].std(axis=0) for name in order}, index=index)
    cost_mean = None if costs is None else pd.DataFrame(
        {name: costs[name].mean(axis=0) for name in order}, index=index)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return Comparison(metric=metric, tolerance=float(tolerance), strategies=order, counts=counts,
                      curve_mean=curve_mean, curve_std=curve_std, summary=summary,
                      aubc_per_seed={name: aubc_per_seed[name] for name in order},
                      pairwise=pairwise, random_target=random_target,
                      runs={name: groups[name] for name in order},
                      protocol=_protocol_values(runs[0]), warnings=notes,
                      higher_is_better=higher_is_better, x=x, cost_mean=cost_mean,
                      cost_range=cost_range)


def _check_unique(runs: Sequence[Run]) -> None:
    seen: dict[tuple[str, int], Path] = {}
    for run in runs:
        key = (run.strategy, run.seed)
        if key in seen:
            raise ValueError(f"two runs of strategy {run.strategy!r} with seed {run.seed}: "
                             f"{seen[key]} and {run.path}; pass only one of them")
        seen[key] = run.path


# ---------------------------------------------------------------------------------------------
# Writing the report


def _output_paths(out_prefix: str | os.PathLike) -> dict[str, Path]:
    prefix = Path(out_prefix)
    if prefix.suffix in (".png", ".md", ".csv"):  # `--output report.md` means the prefix `report`
        prefix = prefix.with_suffix("")
    return {ext: prefix.parent / f"{prefix.name}.{ext}" for ext in ("png", "md", "csv")}


def _pm(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}"


def _reach_text(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_REACHED
    return str(int(value)) if float(value).is_integer() else f"{float(value):.6g}"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_table(comparison: Comparison) -> pd.DataFrame:
    """The CSV table: one row per strategy (best AUBC first) with the curve and the summary."""
    pd = require("pandas", "comparing runs")

    summary = comparison.summary
    rows = []
    for name in comparison.strategies:
        row: dict[str, Any] = {"strategy": name, "seeds": int(summary.at[name, "seeds"])}
        for count in comparison.counts:
            key = f"cycle{count}" if comparison.against_cost else f"{count}"
            row[f"mean@{key}"] = float(comparison.curve_mean.at[count, name])
            row[f"std@{key}"] = float(comparison.curve_std.at[count, name])
            if comparison.cost_mean is not None:
                row[f"{comparison.x}@{key}"] = float(comparison.cost_mean.at[count, name])
        row["aubc_mean"] = float(summary.at[name, "aubc_mean"])
        row["aubc_std"] = float(summary.at[name, "aubc_std"])
        if comparison.random_target is not None:
            reach = "labels" if not comparison.against_cost else comparison.x
            row[f"{reach}_to_reach_random"] = _reach_text(
                summary.at[name, "labels_to_reach_random"])
        for key in ("wins", "ties", "losses"):
            row[key] = int(summary.at[name, key])
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_markdown(comparison: Comparison, png_name: str | None = None) -> str:
    """The Markdown report: protocol, curves, summary, pairwise matrix, warnings."""
    c = comparison
    metric, names, summary = c.metric, c.strategies, c.summary
    protocol = ", ".join(f"{key} {value}" for key, value in c.protocol.items() if value is not None)
    seeds = sorted({seed for per_seed in c.aubc_per_seed.values() for seed in per_seed})
    direction = "higher" if c.higher_is_better else "lower"
    parts = [f"# Strategy comparison: {metric} ({direction} is better)", "",
             f"{sum(len(group) for group in c.runs.values())} runs, {len(names)} strategies, "
             f"seeds {', '.join(map(str, seeds))}; protocol: {protocol}.", ""]
    if png_name:
        parts += [f"![learning curves]({png_name})", ""]
    if c.warnings:
        parts += ["**Warnings**", ""] + [f"- {note}" for note in c.warnings] + [""]
    if c.cost_mean is not None:   # against a cost: each cycle's metric at its mean cost
        curve_rows = [[count] + [f"{_pm(c.curve_mean.at[count, name], c.curve_std.at[count, name])}"
                                 f" @ {c.cost_mean.at[count, name]:.6g}" for name in names]
                      for count in c.counts]
        parts += [f"## {metric} (mean ± std over seeds) @ mean {c.x}, each cycle", "",
                  _markdown_table(["cycle"] + names, curve_rows), ""]
    else:
        curve_rows = [[count] + [_pm(c.curve_mean.at[count, name], c.curve_std.at[count, name])
                                 for name in names] for count in c.counts]
        parts += [f"## {metric} (mean ± std over seeds) at each label count", "",
                  _markdown_table(["labels"] + names, curve_rows), ""]
    header = ["strategy", "seeds", "AUBC", f"final {metric}"]
    reach = c.x if c.against_cost else "labels"
    if c.random_target is not None:
        header.append(f"{reach} to reach random's final {metric} ({c.random_target:.4f})")
    header.append("wins / ties / losses")
    rows = []
    for name in names:
        row = [name, int(summary.at[name, "seeds"]),
               _pm(summary.at[name, "aubc_mean"], summary.at[name, "aubc_std"]),
               _pm(summary.at[name, "final_mean"], summary.at[name, "final_std"])]
        if c.random_target is not None:
            row.append(_reach_text(summary.at[name, "labels_to_reach_random"]))
        row.append(f"{summary.at[name, 'wins']} / {summary.at[name, 'ties']} / "
                   f"{summary.at[name, 'losses']}")
        rows.append(row)
    parts += ["## Summary (best AUBC first)", "", _markdown_table(header, rows), ""]
    if c.random_target is None:
        parts += [f"{reach.capitalize()} to reach random's final metric: omitted (no `random` "
                  "runs).", ""]
    parts += ["## Pairwise wins / ties / losses (row against column, per seed, by AUBC)", "",
              _markdown_table([""] + names,
                              [[a] + ["—" if a == b else "/".join(map(str, c.pairwise[(a, b)]))
                                      for b in names] for a in names]), "",
              (f"AUBC = area under {metric} against {c.x} over [{c.cost_range[0]:.6g}, "
               f"{c.cost_range[1]:.6g}], the range every run covers (trapezoids, linear "
               "interpolation at its ends), divided by its width; then mean ± std (population) "
               f"over seeds. The cost to reach random's final {metric} is interpolated linearly "
               f"on the mean curve. A tie is an AUBC difference of at most {c.tolerance:g}."
               if c.against_cost and c.cost_range is not None else
               f"AUBC = mean of {metric} over the compared cycles of one run, then mean ± std "
               f"(population) over seeds. A tie is an AUBC difference of at most "
               f"{c.tolerance:g}."),
              ""]
    return "\n".join(parts)


def write_comparison(comparison: Comparison, out_prefix: str | os.PathLike) -> dict[str, Path]:
    """Write ``OUT_PREFIX.png``, ``.md`` and ``.csv`` (atomically); returns their paths."""
    from active_learning.drawing.curves import plot_learning_curve

    paths = _output_paths(out_prefix)
    curves = {f"{name} ({len(group)} "
              f"seed{'s' if len(group) > 1 else ''})": [run.rows for run in group]
              for name, group in comparison.runs.items()}
    dataset = comparison.protocol.get("task.dataset")
    title = f"{dataset}: {comparison.metric}" if dataset else comparison.metric
    baseline = next((label for label, name in zip(curves, comparison.runs, strict=True)
                     if name == BASELINE), None)
    plot_learning_curve(curves, paths["png"], metric=comparison.metric, title=title,
                        baseline=baseline, x=comparison.x)
    atomic_write_text(paths["md"], comparison_markdown(comparison, png_name=paths["png"].name))
    atomic_write_text(paths["csv"],
                      comparison_table(comparison).to_csv(index=False, float_format="%.6g",
                                                           lineterminator="\n"))
    return paths


# ---------------------------------------------------------------------------------------------
# Command line


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m active_learning.reports.compare",
        description="Compare active learning strategies from their run folders: learning curves, "
                    "AUBC, labels needed to reach random's final metric, and win/tie/loss counts.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a run folder (metrics.csv + args.json) or a folder above run folders")
    parser.add_argument("--output", "-o", required=True, metavar="OUT_PREFIX",
                        help="writes OUT_PREFIX.png, OUT_PREFIX.md and OUT_PREFIX.csv")
    parser.add_argument("--metric", default=None,
                        help="metrics.csv column to compare (default: the runs' primary metric, "
                             "with its direction, from args.json)")
    parser.add_argument("--x", default="n_labeled", metavar="COLUMN",
                        help="x axis: n_labeled (units) or a cost column such as n_clicks, "
                             "n_pixels, labeled_pixel_fraction or n_images; against a cost, AUBC "
                             "is the area over the cost range every run covers, divided by it, "
                             "and runs of different units (images, superpixels) compare "
                             "(default: n_labeled)")
    parser.add_argument("--tolerance", type=float, default=0.001,
                        help="AUBC differences up to this count as a tie (default: 0.001)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns 0, or 2 with one message on stderr for unusable input."""
    args = get_args_parser().parse_args(argv)
    try:
        runs = load_runs(args.run_dirs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # printed below, once, as plain lines
            comparison = compare_runs(runs, metric=args.metric, tolerance=args.tolerance, x=args.x)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in comparison.warnings:
        print(f"warning: {note}", file=sys.stderr)
    paths = write_comparison(comparison, args.output)
    summary = comparison.summary
    for name in comparison.strategies:
        print(f"{name:>20}: AUBC "
              f"{_pm(summary.at[name, 'aubc_mean'], summary.at[name, 'aubc_std'])}  W/T/L "
              f"{summary.at[name, 'wins']}/{summary.at[name, 'ties']}/{summary.at[name, 'losses']}")
    for path in paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
