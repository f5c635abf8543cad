"""A comparison's summary with each strategy's win/tie/loss against named baselines.

    python bench/compare_against.py runs/gpu_grid/fmnist --against random entropy variation_ratio \\
        --output docs/fmnist_related_strategies --exclude batchbald

Loads every finished run under the folders (``active_learning.reports.compare``), writes the
usual comparison (``PREFIX.md/.csv/.png``) with ``--output``, and prints one Markdown row per
strategy: seeds, AUBC, final metric, labels to reach random's final, and per baseline the
(wins/ties/losses) over the seeds both have. Runs with fewer cycles than the most common
count (an unfinished run) are left out and listed.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from active_learning.reports.compare import (  # noqa: E402
    Comparison,
    compare_runs,
    load_runs,
    write_comparison,
)


def against_table(comparison: Comparison, baselines: Sequence[str]) -> str:
    """Markdown: one row per strategy (best AUBC first) with W/T/L against each baseline."""
    metric = comparison.metric
    target = comparison.random_target
    header = ["strategy", "seeds", "AUBC", f"final {metric}"]
    if target is not None:
        header.append(f"labels to reach random's final ({target:.4f})")
    header += [f"vs {name}" for name in baselines]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in comparison.strategies:
        row = comparison.summary.loc[name]
        cells = [name, str(int(row["seeds"])), f"{row['aubc_mean']:.4f} ± {row['aubc_std']:.4f}",
                 f"{row['final_mean']:.4f} ± {row['final_std']:.4f}"]
        if target is not None:
            reach = row["labels_to_reach_random"]
            cells.append("not reached" if reach is None or reach != reach else str(int(reach)))
        for base in baselines:
            pair = comparison.pairwise.get((name, base))
            cells.append("—" if pair is None else "/".join(map(str, pair)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/compare_against.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="run folders or folders above them")
    parser.add_argument("--against", nargs="+", default=["random"], metavar="STRATEGY")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="STRATEGY")
    parser.add_argument("--output", default=None, metavar="PREFIX")
    args = parser.parse_args(argv)
    runs = [run for run in load_runs(args.folders)
            if run.strategy not in args.exclude]
    if not runs:
        raise SystemExit("no finished runs found")
    common = Counter(len(run.rows) for run in runs).most_common(1)[0][0]
    for run in runs:
        if len(run.rows) != common:
            print(f"left out (unfinished: {len(run.rows)} of {common} cycles): {run.path}")
    comparison = compare_runs([run for run in runs if len(run.rows) == common])
    unknown = [name for name in args.against if name not in comparison.strategies]
    if unknown:
        raise SystemExit(f"--against: no runs of {', '.join(unknown)}")
    if args.output:
        write_comparison(comparison, args.output)
    print(against_table(comparison, args.against))
    return 0


if __name__ == "__main__":
    sys.exit(main())
