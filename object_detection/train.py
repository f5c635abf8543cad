"""Simulate active learning cycles for object detection (SSD300-VGG16, Pascal VOC format).

    cd object_detection && python train.py                             # random selection
    cd object_detection && python train.py --use_active_learning=True   # learning loss
    python -m object_detection.train --preset synthetic-cpu --strategy entropy

Strategies (unit = image): random, loss_prediction, entropy / least_confidence / margin / ratio
(per default box, reduced over the 8,732 boxes by --reduction, max here), mc_entropy /
mc_variance / bald (with --dropout before the head), coreset, discriminative (pooled fc7).
Defaults are the original's VOC protocol: the pool is VOC2007 + VOC2012 trainval, the test set
VOC2007 test; 10 cycles of 1,000 images, 1,000 initial, subsets of 10,000; batch 32, SGD lr 1e-3
momentum 0.9 weight decay 5e-4, 300 epochs with x0.1 at 240; lambda 1.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "object_detection"

import numpy as np

from active_learning import cli
from active_learning.loop import LoopConfig

from .task import DetectionTask
from .voc import VOC_CLASSES, DataError, find_unlabeled, parse_image_sets, read_class_names, read_split

REFERENCE = dict(cycles=10, initial_size=1000, images_per_cycle=1000, epochs=300, batch_size=32,
                 eval_batch_size=32, lr=1e-3, momentum=0.9, weight_decay=5e-4, lamda=1.0, mc_samples=10)
DEFAULT_TRAIN_SETS = "2007:trainval,2012:trainval"
MC_DEFAULT_DROPOUT = 0.1
PRESETS = {
    # Pascal VOC as in the original project (the parser's own defaults).
    "voc": dict(dataset_root="data/VOCdevkit"),
    # The CPU benchmark on `python -m synthetic --format voc --output data/fmnist_voc` scenes.
    "synthetic-cpu": dict(dataset_root="data/fmnist_voc", train_sets="2007:trainval", width=0.0625,
                          batch_norm=True, channels_last=True, cycles=2, initial_size=300,
                          images_per_cycle=100, subset=500, epochs=20, milestones="16", batch_size=16,
                          eval_batch_size=32, lr=0.003, clip_grad_norm=10.0),
}
AFTER_LABELING = "annotate the listed images (VOC XML), add them to the image set, and run again"


def get_args_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser(__doc__.split("\n\n")[0], task="object_detection", presets=PRESETS,
                              defaults=REFERENCE, after_labeling=AFTER_LABELING)
    parser.set_defaults(reduction="max")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=("VOC",), default="VOC", help="dataset format (Pascal VOC)")
    data.add_argument("--dataset_root", "--dataset-root", dest="dataset_root", default="data/VOCdevkit",
                      help="the folder holding VOC2007/ (and VOC2012/)")
    data.add_argument("--train-sets", default=DEFAULT_TRAIN_SETS,
                      help="the pool: YEAR:SET image sets (a missing VOC2012 of the default is skipped "
                           "with a warning)")
    data.add_argument("--test-set", default="2007:test", help="the evaluation image set(s)")
    data.add_argument("--classes", default=None, metavar="FILE",
                      help="class names, one per line (default: <dataset_root>/classes.txt if it "
                           "exists, else the 20 VOC classes)")
    model = parser.add_argument_group("model")
    model.add_argument("--basenet", default=None, metavar="FILE",
                       help="VGG-16 backbone weights: ssd.pytorch's vgg16_reducedfc.pth or torchvision's vgg16")
    model.add_argument("--resume", default=None, metavar="FILE",
                       help="initial weights of the whole detector (ours or torchvision's SSD300)")
    model.add_argument("--width", type=float, default=1.0, help="backbone channel multiplier (1 = VGG-16)")
    cli.add_bool_flag(model, "--batch-norm", help="VGG-16-BN: BatchNorm after every VGG convolution")
    cli.add_bool_flag(model, "--channels-last", help="NHWC convolutions (much faster on CPU for narrow models)")
    model.add_argument("--dropout", type=float, default=None,
                       help=f"dropout before the head (default: {MC_DEFAULT_DROPOUT} for MC-dropout "
                            "strategies, else none)")
    model.add_argument("--milestones", default="240", help="epochs at which the learning rate is multiplied by --gamma")
    model.add_argument("--gamma", type=float, default=0.1, help="learning rate decay factor")
    model.add_argument("--clip-grad-norm", type=float, default=None, metavar="NORM",
                       help="clip the gradients' global norm to NORM (default: no clipping, as the original)")
    cli.add_bool_flag(model, "--cuda", default=None,
                      help="original flag: --cuda=True runs on the GPU, --cuda=False on the CPU (default: --device)")
    out = parser.add_argument_group("output")
    out.add_argument("--save_folder", "--save-folder", dest="output_dir", default=argparse.SUPPRESS,
                     help="original flag: the same as --output-dir")
    out.add_argument("--output_superannotate_csv_file", "--output-superannotate-csv-file",
                     dest="superannotate_csv", default=None, metavar="PATH",
                     help="also copy the last cycle's priority CSV to PATH")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = cli.parse_args(get_args_parser(), argv)
    if args.cuda is not None:
        args.device = "cuda" if args.cuda else "cpu"
    mc = cli.needs_mc_dropout(args.strategy)
    if args.dropout is None:
        args.dropout = MC_DEFAULT_DROPOUT if mc else 0.0
    return args


def milestones(text: str) -> list[int]:
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--milestones takes epochs separated by commas, got {text!r}") from None
    if any(value < 1 for value in values):
        raise ValueError(f"--milestones must be >= 1, got {text!r}")
    return values


def check_args(args: argparse.Namespace) -> None:
    cli.require([
        (0 < args.width <= 1, f"--width must be in (0, 1], got {args.width}"),
        (0.0 <= args.dropout < 1.0, f"--dropout must be in [0, 1), got {args.dropout}"),
        (args.gamma > 0, f"--gamma must be > 0, got {args.gamma}"),
        (args.clip_grad_norm is None or args.clip_grad_norm > 0,
         f"--clip-grad-norm must be > 0, got {args.clip_grad_norm}"),
        (args.batch_size >= 2 or args.strategy != "loss_prediction",
         "--batch-size must be >= 2 for loss prediction (its ranking loss compares pairs)"),
    ])
    milestones(args.milestones)
    if args.strategy == "badge":
        raise ValueError("badge needs one class distribution per image; a detector has one per default "
                         "box (8,732): use coreset, entropy or an MC-dropout strategy")
    if cli.needs_mc_dropout(args.strategy) and args.dropout <= 0:
        raise ValueError(f"--strategy {args.strategy} samples MC dropout: give --dropout > 0")


def class_names(args: argparse.Namespace) -> tuple[str, ...]:
    if args.classes:
        return read_class_names(args.classes)
    default = Path(args.dataset_root) / "classes.txt"
    return read_class_names(default) if default.is_file() else VOC_CLASSES


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.dataset_root).resolve().name or "VOC"


def build_task(args: argparse.Namespace) -> tuple[DetectionTask, int]:
    """The task over the pool (+ the unlabeled images in rank mode); and how many are annotated."""
    import warnings

    names = class_names(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = read_split(args.dataset_root, parse_image_sets(args.train_sets), names,
                             optional_years=args.train_sets == DEFAULT_TRAIN_SETS)
        test_samples = read_split(args.dataset_root, parse_image_sets(args.test_set), names)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    n_labeled = len(samples)
    if args.unlabeled_dir is not None:
        samples = samples + find_unlabeled(args.unlabeled_dir)
    task = DetectionTask(samples, test_samples, class_names=names, width=args.width, dropout=args.dropout,
                         batch_norm=args.batch_norm, channels_last=args.channels_last, lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay, milestones=milestones(args.milestones),
                         gamma=args.gamma, basenet=args.basenet, weights=args.resume,
                         max_grad_norm=args.clip_grad_norm,
                         progress=not args.no_progress)
    return task, n_labeled


def _prepare(args: argparse.Namespace) -> tuple[DetectionTask, LoopConfig, np.ndarray | None, str]:
    device = cli.resolve_device(args.device)
    check_args(args)
    task, n_labeled = build_task(args)
    task.check_files()  # a bad image stops the run here, before anything is trained or written
    rank = args.unlabeled_dir is not None
    initial_size = n_labeled if rank else args.initial_size
    budget = min(args.images_per_cycle, len(task.samples) - n_labeled) if rank else args.images_per_cycle
    config = dataclasses.replace(cli.loop_config(args, device), initial_size=initial_size, budget=budget)
    counted = argparse.Namespace(**{**vars(args), "initial_size": initial_size, "images_per_cycle": budget})
    cli.check_common_args(counted, len(task.samples))
    config.validate(len(task.samples))
    if args.basenet or args.resume:
        task.build_model()  # a missing or mismatched weights file fails now, not after a cycle
    return task, config, np.arange(n_labeled) if rank else None, device


def task_record(args: argparse.Namespace) -> dict:
    keys = ("dataset", "train_sets", "test_set", "width", "batch_norm", "channels_last", "dropout", "basenet", "resume",
            "lr", "momentum", "weight_decay", "milestones", "gamma", "clip_grad_norm")
    record = {key: getattr(args, key) for key in keys}
    record["dataset_root"] = dataset_name(args)
    record["classes"] = list(class_names(args))
    if args.unlabeled_dir is not None:
        record["unlabeled_dir"] = str(Path(args.unlabeled_dir).resolve())
    return record


def main(argv: Sequence[str] | None = None) -> Path:
    """Run (or resume) the simulation, or rank the unlabeled images; returns the run folder."""
    with cli.cli_errors(DataError):
        args = parse_args(argv)
    cli.set_threads(args)
    with cli.cli_errors(DataError):
        task, config, initial, device = _prepare(args)
    run_dir = cli.run_folder(args, dataset_name(args))
    print(f"{dataset_name(args)}: {len(task.samples)} pool / {len(task.test_samples)} test images, "
          f"{len(task.class_names)} classes, strategy {args.strategy}, {config.cycles} cycle(s) on {device} "
          f"-> {run_dir}")
    return cli.simulate(task, config, args, run_dir, known=(DataError,), record=task_record(args), initial=initial,
                        outputs=[f"metrics:        {run_dir / 'metrics.csv'} (mAP = VOC2007 11-point, mAP_area, AP per class)",
                                 f"priority CSVs:  {run_dir / 'priorities'}/cycle_XX.csv (name,entropy_value)",
                                 f"pictures:       {run_dir / 'selections'}/cycle_XX.png"])

if __name__ == "__main__":
    main()
