"""Label efficiency on Fashion-MNIST with the CPU protocol: every strategy against random.

Protocol: ``classification/train.py --preset fmnist-cpu`` (narrow ResNet-18, width 8, dropout 0.3,
20 epochs per cycle; 100 initial labels + 100 per cycle, 11 cycles -> 100 ... 1,100 labels; 1,000
unlabeled images scored per cycle), every strategy, seeds 0 1 2, run one after the other by
bench/run_grid.py. The goals checked at the end:

1. the best strategy's AUBC (mean accuracy over the cycles, mean over seeds) is at least 2
   accuracy points above random's;
2. that strategy reaches random's final accuracy (at the last label count) with at most 60% of
   the labels random used (mean curves over seeds).

    # the full grid: hours on 2 CPUs
    python bench/bench_label_efficiency.py
    python bench/bench_label_efficiency.py --threads 2 --seeds 0 1 2 \\
        --output-dir runs/label_efficiency
    # a smoke test
    python bench/bench_label_efficiency.py --strategies random entropy --seeds 0 -- --cycles 3

On a shared or busy CPU machine use ``--threads 1``: with 2 torch threads on 2 busy cores a
training cycle was seen to take 60-130 s instead of ~5 s (threads waiting on each other).

Arguments after ``--`` go to train.py (they override the preset). Resumable: rerunning the same
command reuses finished runs and continues interrupted ones (the wall time then covers only what
was left; the compute time summed from metrics.csv covers every run). Exit code 1 when a run
failed; the goals are reported as PASS/FAIL, not through the exit code.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run_grid, next to this file
import run_grid  # noqa: E402
from active_learning.files.export import read_metrics_csv  # noqa: E402
from active_learning.reports.compare import Comparison  # noqa: E402
from active_learning.strategies import BASELINE as RANDOM  # noqa: E402

TASK = "classification"
PROTOCOL = ["--preset", "fmnist-cpu", "--no-progress"]
MIN_AUBC_GAIN = 0.02      # goal 1: 2 accuracy points
MAX_LABEL_FRACTION = 0.6  # goal 2: random's final accuracy with <= 60% of its labels


def check_goals(comparison: Comparison) -> list[tuple[str, bool, str]]:
    """The two goals as (name, passed, figures); empty when there is no random
    or no other strategy."""
    others = [name for name in comparison.strategies if name != RANDOM]  # best AUBC first
    if comparison.random_target is None or not others:
        return []
    summary = comparison.summary
    best = others[0]
    gain = summary.at[best, "aubc_mean"] - summary.at[RANDOM, "aubc_mean"]
    goal_aubc = (f"best strategy's AUBC >= random's + {100 * MIN_AUBC_GAIN:.0f} points",
                 gain >= MIN_AUBC_GAIN,
                 f"{best} {summary.at[best, 'aubc_mean']:.4f} vs random "
                 f"{summary.at[RANDOM, 'aubc_mean']:.4f}: {100 * gain:+.2f} points")
    random_labels = comparison.counts[-1]
    limit = MAX_LABEL_FRACTION * random_labels
    reach = summary.at[best, "labels_to_reach_random"]
    reached = ("never reaches" if reach is None
               else f"{int(reach)} labels ({reach / random_labels:.0%}) to reach")
    goal_labels = (f"random's final accuracy with <= {MAX_LABEL_FRACTION:.0%} of the labels",
                   reach is not None and reach <= limit,
                   f"{best}: {reached} random's final {comparison.random_target:.4f} (at "
                   f"{random_labels} labels); limit {limit:g} labels")
    return [goal_aubc, goal_labels]


def fewest_labels(comparison: Comparison) -> str | None:
    """The non-random strategy that reaches random's final accuracy with the fewest labels."""
    summary = comparison.summary
    reached = [(int(summary.at[name, "labels_to_reach_random"]), name)
               for name in comparison.strategies
               if name != RANDOM and summary.at[name, "labels_to_reach_random"] is not None]
    if not reached:
        return None
    labels, name = min(reached)
    return f"{name} ({labels} labels)"


def compute_seconds(run_dirs: Sequence[Path]) -> float:
    """Training + evaluation + selection seconds recorded in the runs' metrics.csv."""
    return sum(float(row["seconds"]) for run_dir in run_dirs
               for row in read_metrics_csv(run_dir / "metrics.csv"))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/bench_label_efficiency.py",
        description="Fashion-MNIST label efficiency (preset fmnist-cpu) of every strategy against "
                    "random; arguments after '--' go to classification/train.py.")
    parser.add_argument("--strategies", nargs="+", default=["all"], metavar="NAME",
                        help="'all' or strategy names; include random for the goals (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="K")
    parser.add_argument("--output-dir", default="runs/label_efficiency")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    start = time.perf_counter()
    own, extra = run_grid.split_extra(sys.argv[1:] if argv is None else argv)
    parser = get_args_parser()
    args = parser.parse_args(own)
    try:
        strategies = run_grid.resolve_strategies(args.strategies)
        run_grid.check_extra_args(extra)
    except ValueError as error:
        parser.error(str(error))
    seeds = list(dict.fromkeys(args.seeds))
    with run_grid.torch_threads(args.threads):
        machine = run_grid.machine_description()
        results = run_grid.run_grid(TASK, strategies, seeds, args.output_dir, [*PROTOCOL, *extra])
    comparison, code = run_grid.report(results, Path(args.output_dir) / "comparison", "accuracy")
    wall = time.perf_counter() - start

    print("\n## Label efficiency goals (Fashion-MNIST, preset fmnist-cpu"
          + (f", overrides: {' '.join(extra)}" if extra else "") + ")\n")
    goals = check_goals(comparison) if comparison is not None else []
    if not goals:
        print("goals not checked: they need finished runs of random and of at "
              "least one other strategy")
    for name, passed, figures in goals:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {figures}")
    if comparison is not None and comparison.random_target is not None:
        print("fewest labels to reach random's final accuracy: "
              f"{fewest_labels(comparison) or 'none'}")
    done = [result.run_dir for result in results if result.ok]
    print(f"\nmachine: {machine}")
    print(f"wall time: {wall:.0f} s for {len(results)} runs ({len(done)} done); compute recorded "
          f"in their metrics.csv: {compute_seconds(done):.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
