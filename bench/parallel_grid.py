"""Run several grids (task x strategies x seeds) as parallel child processes, seeds first.

    python bench/parallel_grid.py --jobs 12 --log-dir runs/logs \\
        --grid classification runs/fm "random entropy typiclust" "0 1 2 3 4" \\
            "--preset fmnist-cpu" \\
        --grid segmentation runs/seg "random hidden_uncertainty" "0 1 2" "--preset synthetic-cpu"

Each run is one child process ``python -m <task>.train EXTRA --strategy S --seed K --output-dir
OUT --threads T`` with its output in ``<log-dir>/<task>-<strategy>-seed<K>.log``. Runs start in
order of seed, then grid, then strategy, so a grid stopped early holds whole seeds. Since a task's
``main`` resumes the run folder it is given, running the same command again skips finished runs
and continues interrupted ones. ``--stop-starting-after`` stops starting runs after that many
seconds; ``--kill-after`` ends the runs still going (they resume on the next call). The summary
(``<log-dir>/summary.json`` and one line per run) says which runs finished, failed or were
stopped. Compare the finished runs with ``python -m active_learning.reports.compare``.

Exit code: 0 when every run finished, 1 otherwise, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from active_learning.strategies.mixes import mix_label  # noqa: E402


@dataclass
class Job:
    """One (task, strategy, seed) run and what became of it."""

    task: str
    strategy: str
    seed: int
    output_dir: str
    extra: list[str]
    status: str = "waiting"   # waiting, running, done, failed, stopped
    seconds: float = 0.0
    returncode: int | None = None
    log: str = ""
    started: float = field(default=0.0, repr=False)

    @property
    def name(self) -> str:
        """``task-strategy-seedK``, the strategy with its mix (as its run folder names it)."""
        flags = {flag: value for flag, value in zip(self.extra, self.extra[1:], strict=False)
                 if flag in ("--diversity", "--random-fraction", "--diversity-factor")}
        factor = flags.get("--diversity-factor")
        label = mix_label(self.strategy, flags.get("--diversity"),
                          float(flags.get("--random-fraction", 0)),
                          int(factor) if factor is not None else None)
        return f"{self.task}-{label}-seed{self.seed}"

    def command(self, threads: int) -> list[str]:
        return [sys.executable, "-m", f"{self.task}.train", *self.extra, "--strategy",
                self.strategy, "--seed", str(self.seed), "--output-dir", self.output_dir,
                "--threads", str(threads), "--no-progress"]


def plan_jobs(grids: Sequence[Sequence[str]]) -> list[Job]:
    """``[(task, output_dir, "s1 s2", "0 1", "extra args")]`` -> jobs, seed-major, then in
    grid order."""
    per_grid = []
    for task, output_dir, strategies, seeds, extra in grids:
        try:
            seed_list = [int(seed) for seed in seeds.split()]
        except ValueError:
            raise SystemExit(f"--grid {task}: seeds must be integers, got {seeds!r}") from None
        per_grid.append([(seed, Job(task, strategy, seed, output_dir, shlex.split(extra)))
                         for seed in seed_list for strategy in strategies.split()])
    order = sorted(((seed, grid_index, position, job)
                    for grid_index, jobs in enumerate(per_grid)
                    for position, (seed, job) in enumerate(jobs)), key=lambda item: item[:3])
    return [job for *_, job in order]


def run_jobs(jobs: list[Job], workers: int, threads: int, log_dir: Path,
             stop_starting_after: float | None, kill_after: float | None,
             poll_seconds: float = 1.0) -> list[Job]:
    """Run the jobs, at most ``workers`` at a time; returns them with their status set."""
    log_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waiting = list(jobs)
    running: dict[subprocess.Popen, Job] = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), PYTHONUNBUFFERED="1")
    while waiting or running:
        elapsed = time.monotonic() - start
        may_start = stop_starting_after is None or elapsed < stop_starting_after
        while waiting and may_start and len(running) < workers:
            job = waiting.pop(0)
            job.log = str(log_dir / f"{job.name}.log")
            with open(job.log, "a") as log:
                process = subprocess.Popen(job.command(threads), stdout=log,
                                           stderr=subprocess.STDOUT, cwd=ROOT, env=env)
            job.status, job.started = "running", time.monotonic()
            running[process] = job
            print(f"[{elapsed:6.0f}s] start {job.name}", flush=True)
        if not may_start:
            for job in waiting:
                job.status = "stopped"
            waiting = []
        if kill_after is not None and elapsed >= kill_after:
            for process in running:
                process.terminate()
        for process in [p for p in running if p.poll() is not None]:
            job = running.pop(process)
            job.returncode = process.returncode
            job.seconds = time.monotonic() - job.started
            killed = kill_after is not None and elapsed >= kill_after
            job.status = "done" if job.returncode == 0 else ("stopped" if killed else "failed")
            print(f"[{elapsed:6.0f}s] {job.status} {job.name} ({job.seconds:.0f} s)", flush=True)
        time.sleep(poll_seconds)
    return jobs


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python bench/parallel_grid.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", nargs=5, action="append", required=True,
                        metavar=("TASK", "OUTPUT_DIR", "STRATEGIES", "SEEDS", "EXTRA"),
                        help="one grid; STRATEGIES, SEEDS and EXTRA are quoted, space-separated")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="--threads of every run")
    parser.add_argument("--log-dir", default="runs/parallel_grid_logs")
    parser.add_argument("--stop-starting-after", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--kill-after", type=float, default=None, metavar="SECONDS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        raise SystemExit("--jobs and --threads must be at least 1")
    jobs = plan_jobs(args.grid)
    log_dir = Path(args.log_dir)
    run_jobs(jobs, args.jobs, args.threads, log_dir, args.stop_starting_after, args.kill_after)
    summary = [{key: value for key, value in asdict(job).items() if key != "started"}
               for job in jobs]
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    for job in jobs:
        print(f"{job.status:8s} {job.seconds:7.0f} s  {job.name}")
    return 0 if all(job.status == "done" for job in jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
