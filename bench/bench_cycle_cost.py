"""Seconds one active learning cycle spends training, evaluating and selecting, per strategy.

The loop records ``train_seconds``, ``eval_seconds``, ``select_seconds`` and ``seconds`` for each
cycle in ``metrics.csv``; this script tabulates their means over cycles (and over seeds) per
strategy, either from fresh short runs with the task's CPU preset or from existing run folders.

    # fresh runs: 2 cycles per strategy with --preset fmnist-cpu, in a temporary folder
    python bench/bench_cycle_cost.py --strategies random entropy loss_prediction coreset bald \\
        --cycles 2
    # keep (and reuse on a rerun) the runs
    python bench/bench_cycle_cost.py --strategies all --output-dir runs/cycle_cost --threads 1
    # finished runs, e.g. the label efficiency grid
    python bench/bench_cycle_cost.py --from-runs runs/label_efficiency

Arguments after ``--`` go to the task's train.py after the preset (e.g. ``-- --subset 2000``).
Timings depend on the threads: on 2 busy cores, 2 torch threads made some training cycles 25x
slower than ``--threads 1``; give ``--threads`` explicitly when comparing machines. Training time
grows with the labeled set, so only compare rows with the same cycles / labels.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run_grid, next to this file
import run_grid  # noqa: E402
from active_learning.reports.compare import Run, load_runs  # noqa: E402

# The CPU protocol of each task; a new task adds its preset here.
TASK_PRESETS: dict[str, list[str]] = {
    "classification": ["--preset", "fmnist-cpu"],
}
TIMES = ("train_seconds", "eval_seconds", "select_seconds", "seconds")


def cost_table(runs: Sequence[Run]) -> str:
    """Markdown table, one row per (dataset, strategy) in order of first appearance.

    The figures are means over every finished cycle of every run of the group (seeds together).
    """
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((str(run.task.get("dataset", "-")), run.strategy), []).append(run)
    lines = ["| dataset | strategy | runs | cycles | labels | train s | eval s | "
             "select s | total s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (dataset, name), group in groups.items():
        rows = [row for run in group for row in run.rows]
        if not rows:
            lines.append(f"| {dataset} | {name} | {len(group)} | 0 | - | - | - | - | - |")
            continue
        missing = [key for key in TIMES if key not in rows[0]]
        if missing:
            raise ValueError(f"{group[0].path / 'metrics.csv'} has no "
                             f"{', '.join(missing)} column(s)")
        means = [sum(float(row[key]) for row in rows) / len(rows) for key in TIMES]
        counts = sorted({int(row["n_labeled"]) for row in rows})
        labels = f"{counts[0]}-{counts[-1]}" if len(counts) > 1 else str(counts[0])
        lines.append(f"| {dataset} | {name} | {len(group)} | {len(rows)} | {labels} | "
                     + " | ".join(f"{value:.2f}" for value in means) + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def scratch_folder(output_dir: str | None) -> Iterator[Path]:
    """``output_dir`` if given (kept, reusable), else a temporary folder removed afterwards."""
    if output_dir is not None:
        yield Path(output_dir)
        return
    with tempfile.TemporaryDirectory(prefix="cycle_cost_") as folder:
        yield Path(folder)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/bench_cycle_cost.py",
        description="Mean seconds per cycle in training, evaluation and selection, per strategy; "
                    "arguments after '--' go to the task's train.py.")
    parser.add_argument("--from-runs", nargs="+", default=None, metavar="DIR",
                        help="tabulate these run folders (or folders above "
                             "runs) instead of running")
    parser.add_argument("--task", choices=sorted(TASK_PRESETS), default="classification")
    parser.add_argument("--strategies", nargs="+", default=["random", "entropy", "loss_prediction",
                                                            "coreset", "bald"], metavar="NAME",
                        help="'all' or strategy names")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="K")
    parser.add_argument("--cycles", type=int, default=2, help="cycles per run")
    parser.add_argument("--output-dir", default=None,
                        help="keep the runs here (default: a temporary folder, removed)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    own, extra = run_grid.split_extra(sys.argv[1:] if argv is None else argv)
    parser = get_args_parser()
    args = parser.parse_args(own)
    if args.from_runs:
        if extra:
            parser.error("arguments after '--' are for fresh runs, not with --from-runs")
        try:
            runs = load_runs(args.from_runs)
            table = cost_table(runs)
        except (ValueError, FileNotFoundError) as error:
            parser.error(str(error))
        print(f"## Seconds per cycle (mean over cycles) of {len(runs)} runs in "
              f"{' '.join(args.from_runs)}\n")
        print(table)
        return 0
    try:
        strategies = run_grid.resolve_strategies(args.strategies)
        run_grid.check_extra_args(extra)
    except ValueError as error:
        parser.error(str(error))
    if args.cycles < 1:
        parser.error(f"--cycles must be >= 1, got {args.cycles}")
    task_args = [*TASK_PRESETS[args.task], "--cycles", str(args.cycles), "--no-progress", *extra]
    start = time.perf_counter()
    with run_grid.torch_threads(args.threads), scratch_folder(args.output_dir) as folder:
        machine = run_grid.machine_description()
        results = run_grid.run_grid(args.task, strategies, list(dict.fromkeys(args.seeds)), folder,
                                    task_args)
        done = [result.run_dir for result in results if result.ok]
        table = cost_table(load_runs(done)) if done else ""
    print(f"\n## Seconds per cycle (mean over cycles), {args.task}: {' '.join(task_args)}\n")
    print(table or "no run finished")
    for result in results:
        if not result.ok:
            print(f"FAILED {result.strategy} seed {result.seed}: {result.error}")
    print(f"\nmachine: {machine}")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    return 0 if len(done) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
