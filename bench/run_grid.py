"""Run a grid of strategies x seeds of one task, one run after the other, then compare them.

    python bench/run_grid.py --task classification --strategies all --seeds 0 1 2 \\
        --output-dir runs/grid -- --preset fmnist-cpu
    python bench/run_grid.py --task classification --strategies random entropy --seeds 0 \\
        --output-dir runs/grid --compare-output reports/grid -- --preset fmnist-cpu --cycles 3

Each run is ``<task>.train.main(EXTRA + ["--strategy", S, "--seed", K, "--output-dir", OUT])``,
called in this process (EXTRA = the arguments after ``--``). The task's ``main`` resumes a run
folder that already holds a run, so rerunning the same grid skips finished runs and continues
interrupted ones. A run that fails (``SystemExit`` with a message, or an exception) is reported
and the grid goes on. At the end: one line per run (done / failed), then, if at least one run
finished, the comparison of the finished runs (``active_learning.reports.compare``) written to
``PREFIX.md/.csv/.png`` (default ``<output-dir>/comparison``) and its summary table printed.
Exit code: 0 when every run finished and the comparison was written, 1 otherwise, 2 for bad
arguments.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # `python bench/run_grid.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from active_learning.flags import split_extra  # noqa: E402  (bench scripts call run_grid.split_extra)
from active_learning.reports.compare import Comparison, compare_runs, load_runs, write_comparison  # noqa: E402
from active_learning.strategies import CLASS_DISTRIBUTIONS, get_strategy, list_strategies  # noqa: E402

# Arguments the grid sets for every run; giving them after `--` would be silently overridden.
GRID_FLAGS = ("--strategy", "--seed", "--output-dir")


@dataclass
class RunResult:
    """One (strategy, seed) of the grid: ``run_dir`` when it finished, ``error`` when it failed."""

    strategy: str
    seed: int
    seconds: float
    run_dir: Path | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def resolve_strategies(names: Sequence[str], task: ModuleType | None = None) -> list[str]:
    """``["all"]`` -> every image-level strategy the task runs (superpixel ones are named
    explicitly; without a task, those for one class distribution per image); otherwise the
    names, checked, duplicates dropped."""
    known = list_strategies()
    if list(names) == ["all"]:
        runs = task.COMMAND.strategies() if task is not None else [
            name for name in known if get_strategy(name).fits_outputs(CLASS_DISTRIBUTIONS)]
        return [name for name in runs if not get_strategy(name).region_level]
    if "all" in names:
        raise ValueError("--strategies: give either 'all' or strategy names, not both")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"--strategies: unknown {', '.join(unknown)}; known strategies: "
                         f"{', '.join(known)}")
    return list(dict.fromkeys(names))


def check_extra_args(extra: Sequence[str]) -> None:
    """Refuse task arguments that the grid sets itself (they would be overridden per run)."""
    clashes = [arg for arg in extra if arg.split("=", 1)[0] in GRID_FLAGS]
    if clashes:
        raise ValueError(f"the grid sets {', '.join(GRID_FLAGS)} itself; remove "
                         f"{', '.join(clashes)} after '--' (use --strategies, "
                         "--seeds and --output-dir)")


def load_task(task: str) -> ModuleType:
    """Import ``<task>.train`` (it must have ``main(argv) -> Path``)."""
    try:
        module = importlib.import_module(f"{task}.train")
    except ModuleNotFoundError as error:
        raise ValueError(f"--task {task}: cannot import {task}.train ({error})") from None
    if not callable(getattr(module, "main", None)):
        raise ValueError(f"--task {task}: {task}.train has no main(argv)")
    return module


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` torch CPU threads inside the block (None: leave torch's setting alone).

    On a loaded machine fewer threads than cores can be much faster (no oversubscription); the
    previous value is restored so that a caller in the same process (tests) is not affected.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _Tee(io.StringIO):
    """Keeps what is written and passes it on (the user still sees the task's messages)."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text)
        return super().write(text)

    def flush(self) -> None:
        self.stream.flush()


def run_one(train_main: Callable[[list[str]], Path], argv: list[str], strategy: str,
            seed: int) -> RunResult:
    """Call the task's ``main(argv)``; a ``SystemExit`` or exception becomes a failed result."""
    start = time.perf_counter()
    stderr = _Tee(sys.stderr)
    try:
        with contextlib.redirect_stderr(stderr):
            run_dir = train_main(argv)
    except SystemExit as stop:
        code = stop.code
        # The task's error wrapper prints one "error: ..." line on stderr and exits 2.
        errors = [line for line in stderr.getvalue().splitlines()
                  if line.startswith(("error:", "interrupted:"))]
        message = (code if isinstance(code, str)
                   else errors[-1] if errors else f"exited with code {code}")
        return RunResult(strategy, seed, time.perf_counter() - start, error=str(message))
    except Exception as error:  # noqa: BLE001 -- one broken run must not stop the grid
        traceback.print_exc()
        return RunResult(strategy, seed, time.perf_counter() - start,
                         error=f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - start
    if run_dir is None or not (Path(run_dir) / "metrics.csv").is_file():
        return RunResult(strategy, seed, seconds,
                         error=f"main returned {run_dir!r}, not a run folder")
    return RunResult(strategy, seed, seconds, run_dir=Path(run_dir))


def run_grid(task: str, strategies: Sequence[str], seeds: Sequence[int], output_dir: str | Path,
             extra_args: Sequence[str] = (), log: Callable[[str], None] = print) -> list[RunResult]:
    """Run every (strategy, seed) of the grid in turn; returns one result per run.

    Seeds are the outer loop, so that an interrupted grid has every strategy of the first seeds.
    """
    train_main = load_task(task).main
    check_extra_args(extra_args)
    results = []
    total = len(strategies) * len(seeds)
    for seed in seeds:
        for strategy in strategies:
            log(f"\n=== [{len(results) + 1}/{total}] {task}: strategy {strategy}, seed {seed} ===")
            argv = [*extra_args, "--strategy", strategy, "--seed", str(seed), "--output-dir",
                    str(output_dir)]
            result = run_one(train_main, argv, strategy, seed)
            if not result.ok:
                log(f"FAILED {strategy} seed {seed}: {result.error}")
            results.append(result)
    return results


def results_table(results: Sequence[RunResult]) -> str:
    """Markdown table: one row per run with its status, seconds and folder (or error)."""
    lines = ["| strategy | seed | status | seconds | run folder / error |", "|---|---|---|---|---|"]
    for result in results:
        status, where = ("done", result.run_dir) if result.ok else ("FAILED", result.error)
        lines.append(f"| {result.strategy} | {result.seed} | {status} | "
                     f"{result.seconds:.1f} | {where} |")
    return "\n".join(lines)


def compare_grid(run_dirs: Sequence[Path], out_prefix: str | Path, metric: str | None = None
                 ) -> tuple[Comparison, dict[str, Path]]:
    """Compare the finished runs and write ``out_prefix.md/.csv/.png``.

    Raises ValueError (ProtocolMismatchError included) when the runs cannot be compared.
    """
    runs = load_runs(list(run_dirs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kept in comparison.warnings, printed by the caller
        comparison = compare_runs(runs, metric=metric)
    return comparison, write_comparison(comparison, out_prefix)


def summary_table(comparison: Comparison) -> str:
    """Markdown: strategy, seeds, AUBC, final metric, labels to reach random's final, W/T/L."""
    metric, summary = comparison.metric, comparison.summary
    has_random = comparison.random_target is not None
    header = ["strategy", "seeds", "AUBC", f"final {metric}"]
    if has_random:
        header.append(f"labels to reach random's final ({comparison.random_target:.4f})")
    header.append("W/T/L")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in comparison.strategies:
        row = summary.loc[name]
        cells = [name, str(int(row["seeds"])), f"{row['aubc_mean']:.4f} ± {row['aubc_std']:.4f}",
                 f"{row['final_mean']:.4f} ± {row['final_std']:.4f}"]
        if has_random:
            reach = row["labels_to_reach_random"]
            cells.append("not reached" if reach is None else str(int(reach)))
        cells.append(f"{row['wins']}/{row['ties']}/{row['losses']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_description() -> str:
    """One line for benchmark output: platform, CPUs, torch version and threads, GPU if any."""
    import os
    import platform

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, python "
            f"{platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {gpu}")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/run_grid.py",
        description="Run strategies x seeds of a task one after the other (resumable), then "
                    "compare them. Arguments after '--' go to <task>.train unchanged.",
        epilog="example: python bench/run_grid.py --task classification --strategies all --seeds 0 "
               "1 2 --output-dir runs/grid -- --preset fmnist-cpu")
    parser.add_argument("--task", default="classification", help="package holding train.py")
    parser.add_argument("--strategies", nargs="+", default=["all"], metavar="NAME",
                        help="'all' or strategy names (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="K")
    parser.add_argument("--output-dir", default="runs/grid", help="passed to every run")
    parser.add_argument("--compare-output", default=None, metavar="PREFIX",
                        help="comparison files PREFIX.md/.csv/.png (default: "
                             "<output-dir>/comparison)")
    parser.add_argument("--metric", default=None,
                        help="metrics.csv column to compare (default: the runs' primary metric)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Parse ``[grid args] -- [task args]``; bad grid arguments exit with code 2 and one message."""
    parser = get_args_parser()
    grid_argv, extra = split_extra(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(grid_argv)
    try:
        task = load_task(args.task)   # first: a task may register its own strategies
        args.strategies = resolve_strategies(args.strategies, task)
        check_extra_args(extra)
    except ValueError as error:
        parser.error(str(error))
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    args.seeds = list(dict.fromkeys(args.seeds))
    if args.compare_output is None:
        args.compare_output = str(Path(args.output_dir) / "comparison")
    return args, extra


def report(results: Sequence[RunResult], out_prefix: str | Path, metric: str | None
           ) -> tuple[Comparison | None, int]:
    """Print the run summary, write and print the comparison; returns it and the exit code."""
    done = [result for result in results if result.ok]
    failed = len(results) - len(done)
    print(f"\n## Grid: {len(done)} done, {failed} failed\n")
    print(results_table(results))
    if not done:
        print("\nno run finished: no comparison written")
        return None, 1
    try:
        comparison, paths = compare_grid([result.run_dir for result in done], out_prefix, metric)
    except (ValueError, FileNotFoundError) as error:
        print(f"\nerror: the finished runs cannot be compared: {error}", file=sys.stderr)
        return None, 1
    for note in comparison.warnings:
        print(f"warning: {note}", file=sys.stderr)
    print(f"\n## Comparison ({comparison.metric})\n")
    print(summary_table(comparison))
    print()
    for path in paths.values():
        print(f"wrote {path}")
    return comparison, 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the grid, print the summary and write the comparison; returns the exit code."""
    args, extra = parse_args(argv)
    with torch_threads(args.threads):
        results = run_grid(args.task, args.strategies, args.seeds, args.output_dir, extra)
    return report(results, args.compare_output, args.metric)[1]


if __name__ == "__main__":
    sys.exit(main())
