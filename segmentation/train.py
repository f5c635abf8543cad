"""Simulate active learning cycles for semantic segmentation (DRN-D-22, Cityscapes format).

    cd segmentation && python train.py train -d ../data/cityscapes -c 19 -s 896 --arch drn_d_22 \\
        --batch-size 4 --epochs 250 --lr 0.01 --momentum 0.9 --step 100 --mc-dropout=True --entropy-superpixels=True
    python -m segmentation.train --preset synthetic-cpu --strategy mc_entropy_superpixels

Image-level strategies (unit = image): random, loss_prediction, entropy, mc_entropy, mc_variance,
bald, coreset ... Superpixel strategies (unit = one superpixel): random_superpixels,
mc_entropy_superpixels, mc_variance_superpixels, bald_superpixels. The original project's flags
select them: --use-loss-prediction-al / --choose_images_with_highest_loss -> loss_prediction;
--mc-dropout --choose-images-with-highest-uncertainty -> mc_entropy (with
--use-variance-as-uncertainty: mc_variance); --mc-dropout --entropy-superpixels ->
mc_entropy_superpixels (mc_variance_superpixels); --random-superpixels -> random_superpixels.
Defaults are the original's Cityscapes protocol: 10 cycles of 150 images (or 4,755 superpixels),
150 initial images, crops of 896, batch 4, SGD lr 0.01 momentum 0.9 weight decay 1e-4, 250
epochs, x0.1 every 100, lambda 0.01, T = 10 MC-dropout passes.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "segmentation"

import numpy as np

from active_learning import cli
from active_learning.loop import LoopConfig
from active_learning.strategies import get_strategy

from .data import (CITYSCAPES_CLASSES, CITYSCAPES_MEAN, CITYSCAPES_STD, FORMATS, DataError,
                   find_samples, find_unlabeled)
from .model import DROPOUT_PLACES
from .task import SegmentationTask

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# The original project's segmentation flags -> the strategy each selects.
ALIASES = {
    "choose_images_with_highest_loss": "loss_prediction",
    "choose_images_with_highest_uncertainty": "mc_entropy",
    "entropy_superpixels": "mc_entropy_superpixels",
    "random_superpixels": "random_superpixels",
}
REFERENCE = dict(cycles=10, initial_size=150, images_per_cycle=150, epochs=250, batch_size=4,
                 eval_batch_size=2, lr=0.01, momentum=0.9, weight_decay=1e-4, lamda=0.01, mc_samples=10,
                 loss_width=256)
PRESETS = {
    # Cityscapes as in the original README (the parser's own defaults).
    "cityscapes": dict(data_format="cityscapes"),
    # The CPU benchmark on `python -m synthetic --output data/fmnist_cityscapes` scenes (128x256).
    # Classifier-only dropout: MC scoring runs the network once and only the classifier T times.
    "synthetic-cpu": dict(data_dir="data/fmnist_cityscapes", width=0.25, crop_size=0, cycles=4,
                          initial_size=40, images_per_cycle=40, superpixels_per_cycle=500,
                          epochs=15, batch_size=8, eval_batch_size=16, lr=0.05, step=12,
                          dropout_at="classifier"),
}
AFTER_LABELING = ("label the selected images (or superpixels: regions/cycle_00.csv), add them to "
                  "the labeled data, and run again")


def get_args_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser(__doc__.split("\n\n")[0], task="segmentation", presets=PRESETS,
                              defaults=REFERENCE, aliases=ALIASES, after_labeling=AFTER_LABELING)
    parser.add_argument("cmd", nargs="?", choices=("train",), default="train",
                        help="the original project's command (only train: simulate the cycles)")
    data = parser.add_argument_group("data")
    data.add_argument("-d", "--data-dir", default="data/cityscapes", help="dataset root")
    data.add_argument("--data-format", choices=FORMATS, default="cityscapes",
                      help="cityscapes (leftImg8bit/ + gtFine/) or folder (images/ + masks/)")
    data.add_argument("-c", "--classes", type=int, default=19, help="number of classes")
    data.add_argument("-s", "--crop-size", type=int, default=896, help="random training crop (0 = whole images)")
    data.add_argument("--random-scale", type=float, default=0.0,
                      help="random rescaling by a factor in [1 - R, 1 + R] before the crop (0 = none)")
    model = parser.add_argument_group("model")
    model.add_argument("--arch", choices=("drn_d_22",), default="drn_d_22", help="the network")
    model.add_argument("--width", type=float, default=1.0, help="channel multiplier (1 = DRN-D-22)")
    model.add_argument("--dropout", type=float, default=0.5, help="dropout p")
    model.add_argument("--dropout-at", choices=DROPOUT_PLACES[:2], default="stages",
                       help="after the residual stages 3-6 (the original) or only before the classifier")
    model.add_argument("--weights", "--pretrained", dest="weights", default=None,
                       help="initial weights: a local state_dict file")
    model.add_argument("--lr-mode", choices=("step", "poly"), default="step", help="learning rate schedule")
    model.add_argument("--step", type=int, default=100, help="step mode: x0.1 every this many epochs")
    regions = parser.add_argument_group("superpixels")
    regions.add_argument("--superpixels-per-image", type=int, default=100,
                         help="watershed markers (SLIC segments) per image")
    regions.add_argument("--superpixel-method", choices=("watershed", "slic"), default="watershed",
                         help="how region maps are made")
    regions.add_argument("--superpixels-per-cycle", type=int, default=4755,
                         help="superpixel strategies: superpixels selected per cycle")
    regions.add_argument("--cache-dir", default=None,
                         help="where region maps are kept (default: <output-dir>/segmentation/<dataset>/superpixels)")
    out = parser.add_argument_group("output")
    out.add_argument("--output_superannotate_csv_file", "--output-superannotate-csv-file",
                     dest="superannotate_csv", default=None, metavar="PATH",
                     help="also copy the last cycle's priority CSV to PATH")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = cli.parse_args(get_args_parser(), argv)
    args.superpixels = get_strategy(args.strategy).region_level
    return args


def check_args(args: argparse.Namespace) -> None:
    checks = [
        (args.width > 0, f"--width must be > 0, got {args.width}"),
        (0.0 <= args.dropout < 1.0, f"--dropout must be in [0, 1), got {args.dropout}"),
        (args.crop_size >= 0, f"--crop-size must be >= 0, got {args.crop_size}"),
        (0.0 <= args.random_scale < 1.0, f"--random-scale must be in [0, 1), got {args.random_scale}"),
        (args.step >= 1, f"--step must be >= 1, got {args.step}"),
        (args.classes >= 2, f"--classes must be >= 2, got {args.classes}"),
        (args.superpixels_per_image >= 2, f"--superpixels-per-image must be >= 2, got {args.superpixels_per_image}"),
        (args.superpixels_per_cycle >= 1, f"--superpixels-per-cycle must be >= 1, got {args.superpixels_per_cycle}"),
    ]
    cli.require(checks)
    if args.data_format == "cityscapes" and args.classes != 19:
        raise ValueError(f"Cityscapes has 19 train classes: -c 19, got -c {args.classes}")
    if cli.needs_mc_dropout(args.strategy) and args.dropout <= 0:
        raise ValueError(f"--strategy {args.strategy} samples MC dropout: give --dropout > 0")


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.data_dir).resolve().name or args.data_format


def build_task(args: argparse.Namespace) -> tuple[SegmentationTask, int]:
    """The task over the training split (+ the unlabeled images in rank mode); and how many of
    the pool's images are labeled."""
    samples = find_samples(args.data_dir, "train", args.data_format, need_instances=args.superpixels)
    test_samples = find_samples(args.data_dir, "val", args.data_format)
    n_labeled = len(samples)
    if args.unlabeled_dir is not None:
        samples = samples + find_unlabeled(args.unlabeled_dir)
    cityscapes = args.data_format == "cityscapes"
    cache = args.cache_dir or Path(args.output_dir) / "segmentation" / dataset_name(args) / "superpixels"
    task = SegmentationTask(
        samples, test_samples, data_format=args.data_format, num_classes=args.classes,
        class_names=CITYSCAPES_CLASSES if cityscapes else [str(c) for c in range(args.classes)],
        mean=CITYSCAPES_MEAN if cityscapes else IMAGENET_MEAN, std=CITYSCAPES_STD if cityscapes else IMAGENET_STD,
        width=args.width, dropout=args.dropout, dropout_at=args.dropout_at, crop_size=args.crop_size,
        random_scale=args.random_scale, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        lr_mode=args.lr_mode, step=args.step, superpixels=args.superpixels,
        superpixel_method=args.superpixel_method, superpixels_per_image=args.superpixels_per_image,
        cache_dir=cache, weights_path=args.weights, progress=not args.no_progress)
    sizes = set(task.image_sizes)
    if len(sizes) > 1 and args.eval_batch_size > 1:
        raise DataError(f"the images have {len(sizes)} different sizes, so they cannot be scored in "
                        "batches: use --eval-batch-size 1")
    if len(set(task.test_sizes)) > 1 and args.eval_batch_size > 1:
        raise DataError("the validation images differ in size: use --eval-batch-size 1")
    if not args.crop_size and len(sizes) > 1:
        raise DataError("the training images differ in size: give a --crop-size")
    return task, n_labeled


def _prepare(args: argparse.Namespace) -> tuple[SegmentationTask, LoopConfig, np.ndarray | None, str]:
    device = cli.resolve_device(args.device)
    check_args(args)
    task, n_labeled = build_task(args)
    task.check_files()  # a bad mask stops the run here, before anything is trained or written
    rank = args.unlabeled_dir is not None
    units = task.selection_units()
    initial = None
    if args.superpixels:
        budget = args.superpixels_per_cycle
        if rank:
            initial = np.concatenate([units.units_of_image(i) for i in range(n_labeled)])
        else:
            if args.initial_size >= len(task.samples):
                raise ValueError(f"--initial-size {args.initial_size} leaves no image to select "
                                 f"superpixels from ({len(task.samples)} images)")
            initial = task.initial_units(args.initial_size, args.seed)
        initial_size = len(initial)
    else:
        budget = args.images_per_cycle
        initial_size = n_labeled if rank else args.initial_size
        initial = np.arange(n_labeled) if rank else None
    if rank:
        budget = min(budget, units.n_units - initial_size)
    subset = args.subset if args.subset_given else 10 * budget
    # The loss module pools each of the eight stage maps to 6x6 by default (the original's
    # segmentation setting).
    pool_size = 6 if args.loss_pool_size is None else args.loss_pool_size
    config = dataclasses.replace(cli.loop_config(args, device), initial_size=initial_size, budget=budget,
                                 subset_size=subset, loss_pool_size=pool_size)
    counted = argparse.Namespace(**{**vars(args), "initial_size": initial_size, "images_per_cycle": budget})
    cli.check_common_args(counted, int(units.selectable().sum()),
                          unit="superpixels" if args.superpixels else "images")
    config.validate(int(units.selectable().sum()))
    if args.weights:
        task.build_model()  # a missing or mismatched weights file fails now, not after a cycle
    return task, config, initial, device


def task_record(args: argparse.Namespace) -> dict:
    keys = ("data_format", "classes", "crop_size", "random_scale", "arch", "width", "dropout", "dropout_at",
            "weights", "lr", "momentum", "weight_decay", "lr_mode", "step", "superpixels_per_image",
            "superpixel_method")
    record = {key: getattr(args, key) for key in keys}
    record["dataset"] = dataset_name(args)
    if args.unlabeled_dir is not None:
        record["unlabeled_dir"] = str(Path(args.unlabeled_dir).resolve())
    return record


def main(argv: Sequence[str] | None = None) -> Path:
    """Run (or resume) the simulation, or rank the unlabeled images; returns the run folder."""
    args = parse_args(argv)
    cli.set_threads(args)
    with cli.cli_errors(DataError):
        task, config, initial, device = _prepare(args)
    run_dir = cli.run_folder(args, dataset_name(args))
    unit = "superpixels" if args.superpixels else "images"
    print(f"{dataset_name(args)}: {len(task.samples)} pool / {len(task.test_samples)} val images, "
          f"{task.selection_units().n_units} {unit}, strategy {args.strategy}, {config.cycles} cycle(s) "
          f"on {device} -> {run_dir}")
    outputs = [f"metrics:        {run_dir / 'metrics.csv'} (mIoU, labeled pixel fraction)",
               f"priority CSVs:  {run_dir / 'priorities'}/cycle_XX.csv (name,entropy_value)"]
    if args.superpixels:
        outputs.append(f"superpixels:    {run_dir / 'regions'}/cycle_XX.csv (name,region_id,score) and regions/maps/")
    outputs.append(f"pictures:       {run_dir / 'selections'}/cycle_XX.png")
    return cli.simulate(task, config, args, run_dir, known=(DataError,), record=task_record(args), initial=initial,
                        outputs=outputs)

if __name__ == "__main__":
    main()
