"""The loss module's setup, one item at a time: what it does to the ranking and to the backbone.

Cycle 0 of the larger-budget Fashion-MNIST protocol (``--preset fmnist-cpu --initial-size 1000``:
1,000 random labels, the same for every configuration of a seed, 20 epochs) with
``--strategy loss_prediction`` from the preset's setup (detached features from epoch 0, hidden
width 128, global average pooling, margin 1, a width-8 ResNet-18, batch 32), changing one item
each: the module's width, its pooling, the ranking margin, the backbone's width and the length
of its schedule; ``--strategy random`` is the accuracy reference. For each: the test accuracy,
the module's ranking accuracy and Kendall τ of the predicted against the true test losses, and
the same two for the model's own predictive entropy (the free loss predictor the module has to
beat).

    python bench/bench_ll_setup.py --seeds 0 1 2 --threads 1 --output-dir runs/ll_setup

Resumable: finished runs are read back, not rerun.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ll_joint_training import run_configurations  # noqa: E402

LABELS = 1000
LL = ["--strategy", "loss_prediction", "--initial-size", str(LABELS)]
CONFIGURATIONS: list[tuple[str, list[str]]] = [
    ("random", ["--strategy", "random", "--initial-size", str(LABELS)]),
    ("loss_prediction (preset: width 128, GAP, margin 1)", LL),
    ("module width 32", LL + ["--loss-width", "32"]),
    ("module width 512", LL + ["--loss-width", "512"]),
    ("pooling 2x2 instead of global", LL + ["--loss-pool-size", "2"]),
    ("margin 0.1", LL + ["--margin", "0.1"]),
    ("backbone width 16", LL + ["--width", "16"]),
    ("40 epochs (milestone 32)", LL + ["--epochs", "40", "--milestones", "32"]),
]
COLUMNS = {"accuracy": "test accuracy", "ranking_accuracy": "module ranking acc.",
           "kendall_tau": "module τ", "entropy_ranking_accuracy": "entropy ranking acc.",
           "entropy_kendall_tau": "entropy τ"}


def main() -> None:
    # `run` gives --epochs 20 first: a later --epochs in a configuration's arguments wins
    run_configurations(CONFIGURATIONS, COLUMNS, description=__doc__.split("\n\n")[0],
                       default_output="runs/ll_setup",
                       heading=f"cycle 0 ({LABELS} labels), seeds {{seeds}}, mean ± std")


if __name__ == "__main__":
    main()
