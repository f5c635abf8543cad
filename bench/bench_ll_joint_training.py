"""What training the loss module jointly costs the backbone, and whether the module ranks.

Cycle 0 of the Fashion-MNIST CPU protocol (``classification/train.py --preset fmnist-cpu``: 100
random labels, the same for every configuration of a seed) with ``--strategy loss_prediction``
for each ranking-loss weight λ and detach epoch (the epoch from which the module's input features
are detached, as a fraction of the 20 epochs: 0 = the module only ever sees detached features and
cannot shape the backbone; 1 = never detached), and with ``--strategy random`` as the reference.
For each: the test accuracy, and the module's ranking accuracy and Kendall τ of the predicted
against the true test losses (0.5 and 0 for a module that ranks no better than chance).

    python bench/bench_ll_joint_training.py --seeds 0 1 2 --threads 1 --output-dir runs/ll_joint

Resumable: finished runs are read back, not rerun.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from active_learning.files.export import read_metrics_csv  # noqa: E402

EPOCHS = 20
LAMBDAS = (0.0, 0.1, 1.0)
DETACH_FRACTIONS = (0.0, 0.6, 1.0)


def configurations() -> list[tuple[str, list[str]]]:
    """(label, train.py arguments) of every configuration; λ = 0 once (the detach epoch is moot)."""
    found = [("random", ["--strategy", "random"])]
    for lamda in LAMBDAS:
        for fraction in DETACH_FRACTIONS if lamda else (0.6,):
            label = f"loss_prediction λ={lamda:g}" + (f" detach {fraction:.0%}" if lamda else "")
            found.append((label, ["--strategy", "loss_prediction", "--lamda", str(lamda),
                                  "--detach-epoch", str(int(round(fraction * EPOCHS)))]))
    return found


def run(label: str, arguments: list[str], seed: int, output_dir: Path, threads: int) -> dict:
    """Cycle 0 of ``--preset fmnist-cpu`` plus ``arguments``; its metrics row (resumed if done)."""
    from classification.train import main

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_",
                  label.replace("λ=", "lambda").replace("%", "pct")).strip("_")
    folder = output_dir / slug
    argv = ["--preset", "fmnist-cpu", "--cycles", "1", "--epochs", str(EPOCHS), "--seed", str(seed),
            "--threads", str(threads), "--no-progress", "--output-dir", str(folder), *arguments]
    with contextlib.redirect_stdout(io.StringIO()):
        run_dir = main(argv)
    return read_metrics_csv(run_dir / "metrics.csv")[0]


def _cell(values: np.ndarray) -> str:
    return "—" if np.isnan(values).all() else f"{values.mean():.4f} ± {values.std():.4f}"


def print_table(rows: list[tuple[str, list[dict]]], columns: dict[str, str]) -> None:
    """One Markdown row per configuration: mean ± std over seeds of each ``metrics.csv`` column."""
    print("| configuration | " + " | ".join(columns.values()) + " |")
    print("|---|" + "---|" * len(columns))
    for label, results in rows:
        cells = [_cell(np.array([r.get(key, np.nan) for r in results], dtype=float))
                 for key in columns]
        print(f"| {label} | " + " | ".join(cells) + " |")


def run_configurations(configurations: list[tuple[str, list[str]]], columns: dict[str, str], *,
                       description: str, default_output: str, heading: str) -> None:
    """The command line both investigation scripts share: every configuration for every seed
    (``--seeds``, ``--threads``, ``--output-dir``), one line per configuration as it finishes,
    then the table of ``columns`` under ``heading`` (``{seeds}`` is filled in)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", default=default_output)
    args = parser.parse_args()
    rows = []
    for label, arguments in configurations:
        results = [run(label, arguments, seed, Path(args.output_dir), args.threads)
                   for seed in args.seeds]
        rows.append((label, results))
        print(f"{label}: accuracy {[r['accuracy'] for r in results]}", flush=True)
    print("\n" + heading.format(seeds=args.seeds) + "\n")
    print_table(rows, columns)


def main() -> None:
    run_configurations(configurations(),
                       {"accuracy": "test accuracy", "ranking_accuracy": "ranking accuracy",
                        "kendall_tau": "Kendall τ"},
                       description=__doc__.split("\n\n")[0], default_output="runs/ll_joint",
                       heading="cycle 0 (100 labels), seeds {seeds}, mean ± std")


if __name__ == "__main__":
    main()
