"""The README demo: loss prediction, random and the benchmark's best strategy, side by side.

    python -m classification.demo                       # Fashion-MNIST, 100 -> 600 labels
    python -m classification.demo --strategies loss_prediction random entropy -- --cycles 10

Each strategy is one run of ``python -m classification.train --preset fmnist-demo --strategy S``
(arguments after ``--`` go to every run), started as a subprocess: as many at a time as there are
CPU cores, with the cores shared out as torch threads. A run folder that already holds a run is
resumed, so running the demo again finishes an interrupted one. When every run has finished,
``active_learning.reports.compare`` draws their learning curves on one plot, writes the table next
to it and prints it: a lone curve cannot say whether active learning helped, random beside it can.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # `python demo.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "classification"

from active_learning.flags import split_extra
from active_learning.reports.compare import compare_runs, load_runs, write_comparison

from . import train

# Loss prediction (what the project is built around), the baseline it must beat, and the
# strategy that led the Fashion-MNIST benchmark (BENCHMARKS.md, 5 seeds).
DEMO_STRATEGIES = ("loss_prediction", "random", "variation_ratio")
_PRINT_LOCK = threading.Lock()


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m classification.demo",
        description="Run several strategies on the Fashion-MNIST demo protocol and compare them on "
                    "one plot. Arguments after `--` go to every classification.train run.")
    parser.add_argument("--strategies", nargs="+", default=list(DEMO_STRATEGIES), metavar="NAME",
                        help=f"strategies to run (default: {' '.join(DEMO_STRATEGIES)})")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run")
    parser.add_argument("--output-dir", default="runs", help="passed to every run")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs at a time (default: the number of CPU cores, at "
                             "most one per strategy)")
    return parser


def train_argv(strategy: str, args: argparse.Namespace, extra: Sequence[str],
               threads: int) -> list[str]:
    """The ``classification.train`` arguments of one strategy's run (later flags win)."""
    return ["--preset", "fmnist-demo", *extra, "--strategy", strategy, "--seed", str(args.seed),
            "--output-dir", args.output_dir, "--threads", str(threads), "--no-progress"]


def _run(strategy: str, argv: list[str]) -> int:
    """Run one strategy in a subprocess, its output prefixed with ``[strategy]``; its exit code."""
    command = [sys.executable, "-m", "classification.train", *argv]
    root = Path(__file__).resolve().parent.parent  # so `-m classification.train` imports from here
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=environment, bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            with _PRINT_LOCK:
                print(f"[{strategy}] {line.rstrip()}", flush=True)
    return process.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Run the strategies, then compare them; 0 when every run finished, 1 or 2 otherwise."""
    own, extra = split_extra(sys.argv[1:] if argv is None else argv)
    parser = get_args_parser()
    args = parser.parse_args(own)
    if len(set(args.strategies)) != len(args.strategies):
        parser.error(f"--strategies names a strategy twice: {' '.join(args.strategies)}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    cores = os.cpu_count() or 1
    jobs = args.jobs or max(1, min(cores, len(args.strategies)))
    threads = max(1, cores // jobs)
    # Bad flags or strategy names end here, with train's own message, before anything runs.
    argvs = {strategy: train_argv(strategy, args, extra, threads) for strategy in args.strategies}
    run_dirs = {strategy: train.run_folder(train.parse_args(argv))
                for strategy, argv in argvs.items()}

    print(f"demo: {', '.join(args.strategies)} on the fmnist-demo protocol, {jobs} at a time "
          f"with {threads} torch thread{'s' if threads > 1 else ''} each", flush=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = dict(zip(argvs, pool.map(_run, argvs, argvs.values()), strict=True))
    failed = [strategy for strategy, code in codes.items() if code != 0]
    if failed:
        print(f"error: the run of {', '.join(failed)} failed (see its [name] lines above); run the "
              "demo again to resume it", file=sys.stderr)
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # protocol notes are in the written report
        comparison = compare_runs(load_runs(list(run_dirs.values())))
    prefix = run_dirs[args.strategies[0]].parent.parent / "demo_comparison"
    paths = write_comparison(comparison, prefix)
    summary = comparison.summary
    metric = comparison.metric
    print(f"\n{'strategy':>18}  AUBC ({metric}, mean over the curve)  {metric} at "
          f"{comparison.counts[-1]} labels")
    for name in comparison.strategies:
        print(f"{name:>18}  {summary.at[name, 'aubc_mean']:.4f}{'':26}"
              f"{summary.at[name, 'final_mean']:.4f}")
    print("\nruns (metrics.csv, priorities/cycle_XX.csv, selections/cycle_XX.png, "
          "learning_curve.png):")
    for run_dir in run_dirs.values():
        print(f"  {run_dir}")
    print(f"comparison: {paths['png']} (plot), {paths['md']}, {paths['csv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
