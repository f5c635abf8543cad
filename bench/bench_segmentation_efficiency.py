"""Label efficiency of segmentation strategies against the labeled pixel fraction.

    # the grid (resumable; 2 processes on 2 cores, each --threads 1):
    python bench/run_grid.py --task segmentation --strategies random mc_entropy loss_prediction \\
        random_superpixels mc_entropy_superpixels --seeds 0 1 2 --threads 1 \\
        --output-dir runs/seg_grid -- --preset synthetic-cpu --no-progress
    # the full-data reference (every training image labeled, the same training):
    python -m segmentation.train --preset synthetic-cpu --strategy random --cycles 1 \\
        --initial-size 999 --images-per-cycle 1 --threads 1 --output-dir runs/seg_full
    # the figures:
    python bench/bench_segmentation_efficiency.py runs/seg_grid --full-data runs/seg_full

Prints, per strategy, the mean (over seeds) labeled pixel fraction and mIoU of every cycle, and
the two goals of the segmentation issue: the pixel fraction at which superpixel MC entropy first
reaches random images' final mIoU (goal: at most half of random's final fraction), and the pixel
fraction at which each strategy first reaches 95% of the full-data mIoU. Also writes the
comparison (``python -m active_learning.reports.compare --x labeled_pixel_fraction``) next to
the runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from active_learning.files.export import read_metrics_csv  # noqa: E402
from active_learning.reports.compare import load_runs  # noqa: E402


def curves(runs) -> dict[str, dict[str, np.ndarray]]:
    """strategy -> mean and std over seeds of fraction and mIoU at each cycle all seeds share."""
    grouped: dict[str, list] = {}
    for run in runs:
        grouped.setdefault(run.strategy, []).append(run)
    result = {}
    for strategy, group in grouped.items():
        cycles = min(len(run.rows) for run in group)
        fraction = np.array([[row["labeled_pixel_fraction"] for row in run.rows[:cycles]]
                             for run in group])
        miou = np.array([[row["mIoU"] for row in run.rows[:cycles]] for run in group])
        result[strategy] = {"seeds": len(group), "fraction": fraction.mean(0), "miou": miou.mean(0),
                            "miou_std": miou.std(0)}
    return result


def first_reaching(curve: dict[str, np.ndarray], target: float) -> float | None:
    reached = np.flatnonzero(curve["miou"] >= target)
    return float(curve["fraction"][reached[0]]) if len(reached) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", help="folder holding the grid's run folders")
    parser.add_argument("--full-data", default=None,
                        help="run folder (or a folder above it) of the full-data run")
    parser.add_argument("--output", default=None,
                        help="plot path (default: <grid>/segmentation_pixels.png)")
    args = parser.parse_args(argv)
    runs = [run for run in load_runs(args.grid) if run.rows]
    # A run still going (or stopped) has fewer cycles; averaging over the cycles every seed has
    # would cut the finished ones short, so only runs with the most cycles count.
    longest = max((len(run.rows) for run in runs), default=0)
    unfinished = [run for run in runs if len(run.rows) < longest]
    if unfinished:
        print("left out (fewer cycles than the others, unfinished?): "
              + ", ".join(f"{run.strategy} seed {run.seed} ({len(run.rows)} cycles)"
                          for run in unfinished) + "\n")
    runs = [run for run in runs if len(run.rows) == longest]
    table = curves(runs)
    print("| strategy | seeds | " + " | ".join(f"cycle {c}: pixels, mIoU" for c in range(
        max(len(c["miou"]) for c in table.values()))) + " |")
    print("|---|---|" + "---|" * max(len(c["miou"]) for c in table.values()))
    for strategy, curve in sorted(table.items(), key=lambda item: -item[1]["miou"].mean()):
        cells = [f"{f:.3f}, {m:.4f} ± {s:.4f}"
                 for f, m, s in zip(curve["fraction"], curve["miou"], curve["miou_std"],
                                    strict=True)]
        print(f"| {strategy} | {curve['seeds']} | " + " | ".join(cells) + " |")
    if "random" in table and "mc_entropy_superpixels" in table:
        random_curve = table["random"]
        target, budget = float(random_curve["miou"][-1]), float(random_curve["fraction"][-1])
        reached = first_reaching(table["mc_entropy_superpixels"], target)
        verdict = ("not reached" if reached is None else
                   f"{reached:.3f} ({reached / budget:.0%} of random's {budget:.3f}); goal <= 50%: "
                   + ("met" if reached <= budget / 2 else "not met"))
        print(f"\nrandom images' final mIoU {target:.4f} at pixel fraction {budget:.3f}; "
              f"mc_entropy_superpixels reaches it at {verdict}")
    if args.full_data:
        full_runs = load_runs(args.full_data)
        full = float(read_metrics_csv(full_runs[0].path / "metrics.csv")[-1]["mIoU"])
        print(f"\nfull-data mIoU {full:.4f} (every training image labeled); "
              f"95% = {0.95 * full:.4f}")
        for strategy, curve in sorted(table.items()):
            reached = first_reaching(curve, 0.95 * full)
            print(f"  {strategy}: "
                  + ("not reached" if reached is None
                     else f"reached at pixel fraction {reached:.3f}"))
    # Image and superpixel runs count different units, so compare.py (which lines runs up by unit
    # count) does not take them together; the plot matches them cycle by cycle on the pixel axis.
    from active_learning.drawing.curves import plot_learning_curve

    grouped: dict[str, list] = {}
    for run in runs:
        grouped.setdefault(f"{run.strategy} "
                           f"({len([r for r in runs if r.strategy == run.strategy])} seeds)",
                           []).append(run.rows)
    path = Path(args.output or Path(args.grid) / "segmentation_pixels.png")
    baseline = next((label for label in grouped if label.startswith("random (")), None)
    plot_learning_curve(grouped, path, metric="mIoU", title="synthetic Cityscapes scenes: mIoU",
                        baseline=baseline, x="labeled_pixel_fraction")
    print(f"\nwrote {path}")

if __name__ == "__main__":
    main()
