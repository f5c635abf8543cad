"""Simulate active learning cycles for image classification.

    cd classification && python train.py --dataset cifar10 --data-dir ../data \\
        --strategy loss_prediction
    python -m classification.train --preset fmnist-demo

Every strategy of the registry is available through ``--strategy``; the original project's flags
are kept as aliases (``--use_loss_prediction_al`` / ``--use_active_learning`` -> loss_prediction,
``--use_discriminative_al`` -> discriminative, ``--mc-dropout`` -> mc_entropy, none -> random).
Defaults are the Learning Loss CIFAR-10 protocol (Yoo & Kweon 2019): 10 cycles, 1,000 initial and
1,000 more per cycle, a random subset of 10,000 scored per cycle, 200 epochs of SGD (lr 0.1,
momentum 0.9, weight decay 5e-4, x0.1 at epoch 160), batch 128, lambda 1, margin 1, features
detached from the loss module at epoch 120.

Rank mode (your own images): ``--dataset image_folder --data-dir D --unlabeled-dir U`` trains once
on every labeled image of ``D/train/<class>/``, evaluates on ``D/test/<class>/``, scores every image
under ``U`` and writes the ``--images-per-cycle`` most useful ones, best first, to
``<output-dir>/classification/image_folder_rank/<strategy>/seed<k>/priorities/cycle_00.csv``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "classification"

from active_learning import cli, flags, run_setup
from active_learning.strategies import CLASS_DISTRIBUTIONS

from .build import build, build_round, check
from .data import DATASETS

# Presets set defaults; flags given on the command line still win.
PRESETS: dict[str, dict] = {
    # Learning Loss for Active Learning, CIFAR-10 (the parser's own defaults).
    "cifar10": dict(dataset="cifar10"),
    # The CPU protocol for strategy comparisons (bench/): a narrow ResNet-18 on Fashion-MNIST, 100 +
    # 100 per cycle up to 1,100 labels. The loss module reads detached features from epoch 0: on
    # this protocol the ranking loss cost the backbone 2.3 AUBC points when it could shape the
    # features, and ranked no better (BENCHMARKS.md, "Learning loss").
    "fmnist-cpu": dict(dataset="fashion_mnist", width=8, cycles=11, initial_size=100,
                       images_per_cycle=100, subset=1000, epochs=20, batch_size=32, lr=0.05,
                       milestones=[16], detach_epoch=0, eval_batch_size=1000, dropout=0.3),
}
# The README demo (python -m classification.demo runs it for loss prediction, random and
# variation ratio side by side): the CPU protocol up to 600 labels, a few minutes on 2 cores.
PRESETS["fmnist-demo"] = dict(PRESETS["fmnist-cpu"], strategy="loss_prediction", cycles=6)


def add_arguments(arguments: flags.TaskArguments) -> None:
    """The classification data and model flags."""
    data = arguments.group("data")
    data.add_argument("--dataset", choices=DATASETS, default="cifar10", help="which dataset")
    data.add_argument("--data-dir", default="data", recorded=False,
                      help="dataset root (layout: classification/README.md)")
    data.add_bool("--download", recorded=False,
                  help="fetch CIFAR-10 / Fashion-MNIST with torchvision if missing")
    data.add_argument("--image-size", type=int, default=32,
                      help="image_folder: resize to this side")
    data.add_argument("--csv-names", choices=("filename", "relpath"), default="filename",
                      help="names written in the priority CSV (image_folder)")
    model = arguments.group("classifier")
    model.add_argument("--width", type=int, default=64, help="ResNet-18 width (64 = reference)")
    model.add_argument("--milestones", nargs="+", default=None, metavar="EPOCH",
                       help="epochs at which the learning rate drops x0.1 (default: 80%% of "
                            "--epochs, i.e. 160 of 200 as in Learning Loss)")


COMMAND = cli.TaskCommand(
    name="classification", description=__doc__.split("\n\n")[0],
    output_kind=CLASS_DISTRIBUTIONS, add_arguments=add_arguments, build=build, check=check,
    presets=PRESETS, dropout=0.0, mc_dropout=0.3,
    after_labeling="label the selected images, move them into train/<class>/, and run again",
    build_round=build_round, label_kind="class")


# get_args_parser() -> ArgumentParser, parse_args(argv) -> Namespace, main(argv) -> run folder
get_args_parser, parse_args, main = cli.entry_points(COMMAND)


def run_folder(args: argparse.Namespace) -> Path:
    return run_setup.run_folder(args, COMMAND.name, args.dataset)


if __name__ == "__main__":
    cli.run_script(main)   # under torchrun: ends without the teardown
