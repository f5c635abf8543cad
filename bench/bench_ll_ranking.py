"""Does the loss module rank? Per cycle, against chance and against the model's own entropy.

Reads loss-prediction run folders (any folder above them works) and prints, per label count,
mean ± std over seeds of how well the loss module's predictions rank the true test losses
(ranking accuracy: 0.5 for random scores; Kendall τ: 0), next to the same two numbers for the
predictive entropy of the same network on the same test images: the free loss predictor the
module has to beat (columns written by ``active_learning.loop.runner`` since issue 13; runs made
before show "—" there).

    python bench/bench_ll_ranking.py runs/advice/classification/fashion_mnist/loss_prediction
    python bench/bench_ll_ranking.py runs/ll_digits/classification/digits/loss_prediction
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from active_learning.reports.compare import load_runs  # noqa: E402

COLUMNS = {"ranking_accuracy": "module ranking acc.", "kendall_tau": "module τ",
           "entropy_ranking_accuracy": "entropy ranking acc.", "entropy_kendall_tau": "entropy τ"}


def ranking_table(run_dirs: list[str]) -> str:
    """The Markdown table: one row per label count shared by every run."""
    runs = [run for run in load_runs(run_dirs) if run.rows]
    strategies = {run.strategy for run in runs}
    if strategies != {"loss_prediction"}:
        raise SystemExit("error: expected loss_prediction runs only, got "
                         f"{', '.join(sorted(strategies))}")
    cycles = min(len(run.rows) for run in runs)
    if any(len(run.rows) != cycles for run in runs):
        warnings.warn(f"runs differ in finished cycles; the first {cycles} are shown", stacklevel=2)
    lines = [f"{len(runs)} runs (seeds "
             f"{', '.join(str(run.seed) for run in sorted(runs, key=lambda r: r.seed))}), "
             "mean ± std over seeds", "",
             "| labels | " + " | ".join(COLUMNS.values()) + " |", "|---|" + "---|" * len(COLUMNS)]
    for cycle in range(cycles):
        cells = []
        for key in COLUMNS:
            values = np.array([run.rows[cycle].get(key, np.nan) for run in runs], dtype=float)
            values = values[~np.isnan(values)]
            cells.append("—" if not len(values) else
                         f"{values.mean():.3f} ± {values.std():.3f}"
                         + (f" ({len(values)})" if len(values) < len(runs) else ""))
        lines.append(f"| {runs[0].rows[cycle]['n_labeled']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+",
                        help="loss_prediction run folders, or folders above them")
    print(ranking_table(parser.parse_args().run_dirs))


if __name__ == "__main__":
    main()
