"""Simulate active learning cycles for image classification.

    cd classification && python train.py --dataset cifar10 --data-dir ../data --strategy loss_prediction
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
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "classification"

from active_learning import cli
from active_learning.loop import LoopConfig, RunMismatchError, run_active_learning

from .data import (DATASETS, ClassificationData, DataError, load_classification_data,
                   load_unlabeled_folder, with_unlabeled)
from .task import ClassificationTask

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

AFTER_LABELING = "label the selected images, move them into train/<class>/, and run again"
# Kept importable under their old names (scripts and tests use them).
ALIASES = cli.STRATEGY_ALIASES
str2bool = cli.str2bool
resolve_device = cli.resolve_device


def get_args_parser() -> argparse.ArgumentParser:
    """The shared flags (``active_learning.cli``) plus the classification data and model flags."""
    parser = cli.build_parser(__doc__.split("\n\n")[0], task="classification", presets=PRESETS,
                              after_labeling=AFTER_LABELING)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="cifar10", help="which dataset")
    data.add_argument("--data-dir", default="data", help="dataset root (layout: classification/README.md)")
    cli.add_bool_flag(data, "--download", help="fetch CIFAR-10 / Fashion-MNIST with torchvision if missing")
    data.add_argument("--image-size", type=int, default=32, help="image_folder: resize to this side")
    data.add_argument("--csv-names", choices=("filename", "relpath"), default="filename",
                      help="names written in the priority CSV (image_folder)")

    model = parser.add_argument_group("model")
    model.add_argument("--width", type=int, default=64, help="ResNet-18 width (64 = reference)")
    model.add_argument("--weights", default=None, help="initial weights: a local state_dict file")
    model.add_argument("--dropout", type=float, default=0.0,
                       help="dropout before the classifier (MC-dropout strategies need > 0)")
    model.add_argument("--milestones", type=int, nargs="*", default=None,
                       help="epochs at which the learning rate drops x0.1 (default: 80%% of "
                            "--epochs, i.e. 160 of 200 as in Learning Loss)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse with the preset's values as defaults, then resolve the strategy."""
    parser = get_args_parser()
    args = cli.parse_args(parser, argv)
    if args.unlabeled_dir is not None and args.dataset != "image_folder":
        parser.error(f"--unlabeled-dir needs --dataset image_folder (labeled images in "
                     f"<data-dir>/train/<class>/ and <data-dir>/test/<class>/), got --dataset {args.dataset}")
    # Resolved here so that args.json records the values the run used.
    if args.milestones is None:
        args.milestones = [max(1, int(0.8 * args.epochs))]
    return args


def resolve_strategy(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    return cli.resolve_strategy(args, parser)


def check_args(args: argparse.Namespace, pool_size: int) -> None:
    """Bad combinations end here, with one message, before anything is written."""
    checks = [
        (args.width >= 1, f"--width must be >= 1, got {args.width}"),
        (args.image_size >= 1, f"--image-size must be >= 1, got {args.image_size}"),
        (0.0 <= args.dropout < 1.0, f"--dropout must be in [0, 1), got {args.dropout}"),
        (all(m >= 1 for m in args.milestones), f"--milestones must be epochs >= 1, got {args.milestones}"),
    ]
    cli.require(checks)
    if cli.needs_mc_dropout(args.strategy) and args.dropout <= 0:
        raise ValueError(f"--strategy {args.strategy} samples MC dropout: give --dropout > 0 "
                         "(e.g. --dropout 0.3)")
    cli.check_common_args(args, pool_size, unit="images")


def loop_config(args: argparse.Namespace, device: str) -> LoopConfig:
    return cli.loop_config(args, device)


def task_record(args: argparse.Namespace) -> dict:
    """Task arguments that define the run (a resume with other values is refused)."""
    record = {key: getattr(args, key) for key in
              ("dataset", "image_size", "csv_names", "width", "dropout", "weights", "lr", "momentum",
               "weight_decay", "milestones")}
    if args.unlabeled_dir is not None:  # rank runs never resume: these only document the run
        record.update(data_dir=str(Path(args.data_dir).resolve()),
                      unlabeled_dir=str(Path(args.unlabeled_dir).resolve()))
    return record


def add_unlabeled(args: argparse.Namespace, data: ClassificationData) -> tuple[ClassificationData, np.ndarray]:
    """Rank mode: append the unlabeled images to ``data``; returns it and the labeled indices.

    Sets ``args.initial_size`` to the number of labeled images and clips ``args.images_per_cycle``
    (with a warning) to the number of unlabeled ones.
    """
    unlabeled, names = load_unlabeled_folder(args.unlabeled_dir, image_size=args.image_size,
                                             csv_names=args.csv_names)
    n_labeled = len(data.train)
    data = with_unlabeled(data, unlabeled, names)
    args.initial_size = n_labeled
    if args.images_per_cycle > len(unlabeled):
        warnings.warn(f"--images-per-cycle {args.images_per_cycle} is larger than the {len(unlabeled)} "
                      f"unlabeled images; the CSV ranks all {len(unlabeled)}", UserWarning, stacklevel=2)
        args.images_per_cycle = len(unlabeled)
    return data, np.arange(n_labeled)


def run_folder(args: argparse.Namespace) -> Path:
    return cli.run_folder(args, args.dataset)


def _prepare(args: argparse.Namespace) -> tuple[ClassificationTask, LoopConfig, np.ndarray | None, str]:
    """Load the data, check every flag and build the task; raises the errors cli_errors reports."""
    device = cli.resolve_device(args.device)
    initial_labeled = None
    rank = args.unlabeled_dir is not None
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # In rank mode the labeled images' names never reach the CSV: relative paths keep them
        # unique, so two labeled "img_001.png" in different class folders are fine.
        data = load_classification_data(args.dataset, args.data_dir, download=args.download,
                                        csv_names="relpath" if rank else args.csv_names,
                                        image_size=args.image_size)
        if rank:
            data, initial_labeled = add_unlabeled(args, data)
    check_args(args, len(data.train))
    config = loop_config(args, device)
    config.validate(len(data.train))
    task = ClassificationTask(data, width=args.width, dropout=args.dropout, lr=args.lr,
                              momentum=args.momentum, weight_decay=args.weight_decay,
                              milestones=args.milestones, weights_path=args.weights)
    if args.weights:
        task.build_model()  # a missing or mismatched weights file fails now, not after a cycle
    return task, config, initial_labeled, device


def main(argv: Sequence[str] | None = None) -> Path:
    """Run (or resume) the simulation, or rank the unlabeled images; returns the run folder."""
    args = parse_args(argv)
    rank = args.unlabeled_dir is not None
    cli.set_threads(args)
    with cli.cli_errors(DataError):
        task, config, initial_labeled, device = _prepare(args)
    data = task.data
    run_dir = run_folder(args)
    if rank:
        n_unlabeled = len(data.train) - args.initial_size
        print(f"{args.dataset}: {args.initial_size} labeled training / {len(data.test)} test images, "
              f"{n_unlabeled} unlabeled images to rank, strategy {args.strategy} on {device} -> {run_dir}")
        if (run_dir / "pool.npz").exists():
            # A rank run is one cycle from the labels as they are now: never resume an older one
            # (restart=True below); the old ranking stays until the new one is written.
            print(f"replacing the previous ranking in {run_dir}")
    else:
        print(f"{args.dataset}: {len(data.train)} training / {len(data.test)} test images, "
              f"strategy {args.strategy}, {args.cycles} cycles on {device} -> {run_dir}")
    # a run made with other arguments, a damaged run folder, an image unreadable past its header
    with cli.cli_errors(DataError, RunMismatchError, resumable=run_dir, rank=rank):
        run_active_learning(task, config, run_dir, extra_args=task_record(args),
                            initial_labeled=initial_labeled, restart=rank)
    if rank:
        print(f"priority CSV:   {run_dir / 'priorities' / 'cycle_00.csv'} (name,entropy_value: the "
              f"{args.images_per_cycle} of {n_unlabeled} unlabeled images to label first, best first)")
        print(f"next:           {AFTER_LABELING}")
        print(f"metrics:        {run_dir / 'metrics.csv'}")
        return run_dir
    print(f"metrics:        {run_dir / 'metrics.csv'}")
    print(f"priority CSVs:  {run_dir / 'priorities'}/cycle_XX.csv (name,entropy_value)")
    print(f"learning curve: {run_dir / 'learning_curve.png'}")
    return run_dir


if __name__ == "__main__":
    main()
