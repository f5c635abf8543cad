"""Simulate active learning cycles for human pose estimation (top-down HRNet, COCO keypoints).

    cd human_pose_estimation && python train.py                               # random selection
    cd human_pose_estimation && python train.py --use_active_learning=True    # learning loss
    cd human_pose_estimation && python tools/train.py --cfg experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml
    python -m human_pose_estimation.train --preset synthetic-cpu --strategy heatmap_uncertainty

A training sample is a person (crop from its ground-truth box); the unit the budget counts and
the CSV names is the image. Strategies: random, loss_prediction, heatmap_uncertainty,
mc_variance (with --dropout), coreset, discriminative. Defaults are the original's protocol:
COCO train2017 as the pool, val2017 with ground-truth boxes as the test set; 10 cycles of
5,000 images, 5,000 initial, subsets of 5 x the budget; HRNet-W32 at 256 x 192, Adam lr 1e-3,
batch 32, 210 epochs with x0.1 at 170 and 200; lambda 1e-4, features detached at 75%.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "human_pose_estimation"

import numpy as np

from active_learning import cli
from active_learning.units import UNIT_REDUCTIONS

from .coco import DataError, read_person_boxes, read_split
from .data import Augmentation
from .model import ARCHITECTURES
from .strategies import check_strategy

REFERENCE = dict(cycles=10, initial_size=5000, images_per_cycle=5000, epochs=210, batch_size=32,
                 eval_batch_size=32, lr=1e-3, momentum=0.9, weight_decay=0.0, lamda=1e-4, mc_samples=10)
SUBSET_FACTOR = 5          # the original scored 5 x the budget per cycle
DETACH_FRACTION = 0.75     # the loss module's features are detached from 75% of the epochs on
MC_DEFAULT_DROPOUT = 0.1
PRESETS = {
    # COCO as in the original project (the parser's own defaults).
    "coco": dict(dataset_root="data/coco"),
    # The CPU benchmark on `python -m synthetic --format coco-keypoints --output data/fmnist_coco` scenes.
    "synthetic-cpu": dict(dataset_root="data/fmnist_coco", arch="hrnet_w18_small", image_size="96,128",
                          cycles=4, initial_size=100, images_per_cycle=50, subset=250, epochs=25,
                          milestones="20", batch_size=32, eval_batch_size=64),
}
AFTER_LABELING = ("annotate the persons' keypoints in the listed images (COCO format), add them to the "
                  "annotation file, and run again")


def get_args_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser(__doc__.split("\n\n")[0], task="human_pose_estimation", presets=PRESETS,
                              defaults=REFERENCE, after_labeling=AFTER_LABELING)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset-root", "--dataDir", "--data-dir", dest="dataset_root", default="data/coco",
                      help="the COCO folder: annotations/person_keypoints_<set>.json and images/<set>/")
    data.add_argument("--train-set", default="train2017", help="the pool's image set")
    data.add_argument("--test-set", default="val2017", help="the evaluation image set (ground-truth boxes)")
    data.add_argument("--person-boxes", default=None, metavar="JSON",
                      help="rank mode: person boxes of the --unlabeled-dir images, a COCO detections JSON "
                           "(top-down pose needs them)")
    data.add_argument("--min-box-score", type=float, default=0.0,
                      help="rank mode: person boxes scored below this are ignored")
    model = parser.add_argument_group("model")
    model.add_argument("--arch", choices=ARCHITECTURES, default="hrnet_w32", help="timm HRNet backbone")
    model.add_argument("--image-size", default="192,256", metavar="W,H", help="crop size (heatmaps are 1/4)")
    model.add_argument("--sigma", type=float, default=2.0, help="heatmap Gaussian sigma, in heatmap cells")
    model.add_argument("--pretrained", default=None, metavar="FILE", help="backbone weights (timm HRNet)")
    model.add_argument("--resume", default=None, metavar="FILE", help="initial weights of the whole pose model")
    model.add_argument("--dropout", type=float, default=None,
                       help=f"Dropout2d before the final layer (default: {MC_DEFAULT_DROPOUT} for "
                            "mc_variance, else none)")
    model.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                       help="adam (the reference; --weight-decay 0) or sgd (with --momentum)")
    model.add_argument("--milestones", default="170,200", help="epochs at which the learning rate is multiplied by --gamma")
    model.add_argument("--gamma", type=float, default=0.1, help="learning rate decay factor")
    cli.add_bool_flag(model, "--flip-test", default=True,
                      help="evaluate on the average of the crop's and the flipped crop's heatmaps")
    augment = parser.add_argument_group("augmentation (HRNet's COCO values)")
    augment.add_argument("--scale-factor", type=float, default=0.35, help="crop scale: clip(N(1, f), 1-f, 1+f)")
    augment.add_argument("--rotation-factor", type=float, default=45.0,
                         help="rotation: clip(N(0, f), -2f, 2f) degrees, with probability 0.6")
    augment.add_argument("--half-body-probability", type=float, default=0.3,
                         help="probability of a half-body crop (persons with > 8 labeled joints)")
    cli.add_bool_flag(augment, "--flip", default=True, help="random horizontal flips (left/right joints swapped)")
    units = parser.add_argument_group("units")
    units.add_argument("--unit-reduction", choices=UNIT_REDUCTIONS, default="max",
                       help="an image's score from its persons' scores")
    out = parser.add_argument_group("output")
    out.add_argument("--output_superannotate_csv_file", "--output-superannotate-csv-file",
                     dest="superannotate_csv", default=None, metavar="PATH",
                     help="also copy the last cycle's priority CSV to PATH")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = cli.parse_args(get_args_parser(), argv)
    if not args.subset_given and args.unlabeled_dir is None:
        args.subset = SUBSET_FACTOR * args.images_per_cycle
    if args.detach_epoch is None:
        args.detach_epoch = int(DETACH_FRACTION * args.epochs)
    if args.dropout is None:
        args.dropout = MC_DEFAULT_DROPOUT if cli.needs_mc_dropout(args.strategy) else 0.0
    return args


def integers(text: str, flag: str, count: int | None = None) -> list[int]:
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{flag} takes integers separated by commas, got {text!r}") from None
    if any(value < 1 for value in values) or (count is not None and len(values) != count):
        raise ValueError(f"{flag} takes {count or 'some'} integers >= 1, got {text!r}")
    return values


def check_args(args: argparse.Namespace) -> None:
    check_strategy(args.strategy)
    width, height = integers(args.image_size, "--image-size", 2)
    cli.require([
        (width % 32 == 0 and height % 32 == 0,
         f"--image-size must be multiples of 32 (HRNet's lowest branch has stride 32), got {args.image_size}"),
        (args.sigma > 0, f"--sigma must be > 0, got {args.sigma}"),
        (0.0 <= args.dropout < 1.0, f"--dropout must be in [0, 1), got {args.dropout}"),
        (args.gamma > 0, f"--gamma must be > 0, got {args.gamma}"),
        (0 <= args.scale_factor < 1, f"--scale-factor must be in [0, 1), got {args.scale_factor}"),
        (args.rotation_factor >= 0, f"--rotation-factor must be >= 0, got {args.rotation_factor}"),
        (0 <= args.half_body_probability <= 1,
         f"--half-body-probability must be in [0, 1], got {args.half_body_probability}"),
        (args.unlabeled_dir is None or args.person_boxes is not None,
         "--unlabeled-dir needs --person-boxes: top-down pose estimation scores persons inside their "
         "boxes; give a COCO detections JSON (image_id, bbox, score) of a person detector's boxes"),
        (args.person_boxes is None or args.unlabeled_dir is not None, "--person-boxes needs --unlabeled-dir"),
    ])
    integers(args.milestones, "--milestones")
    if cli.needs_mc_dropout(args.strategy) and args.dropout <= 0:
        raise ValueError(f"--strategy {args.strategy} samples MC dropout: give --dropout > 0")


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.dataset_root).resolve().name or "coco"


def build_task(args: argparse.Namespace):
    """The task over the pool (+ the unlabeled images in rank mode); and how many images are annotated."""
    import warnings

    from .task import PoseTask

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool = read_split(args.dataset_root, args.train_set)
        test = read_split(args.dataset_root, args.test_set)
        n_labeled = len(pool.images)
        if args.unlabeled_dir is not None:
            pool = pool + read_person_boxes(args.unlabeled_dir, args.person_boxes, min_score=args.min_box_score)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    augmentation = Augmentation(scale_factor=args.scale_factor, rotation_factor=args.rotation_factor,
                                flip=args.flip, half_body_probability=args.half_body_probability)
    task = PoseTask(pool, test, arch=args.arch, input_size=integers(args.image_size, "--image-size", 2),
                    sigma=args.sigma, dropout=args.dropout, optimizer=args.optimizer, lr=args.lr,
                    momentum=args.momentum, weight_decay=args.weight_decay,
                    milestones=integers(args.milestones, "--milestones"), gamma=args.gamma,
                    pretrained=args.pretrained, weights=args.resume, augmentation=augmentation,
                    flip_test=args.flip_test, progress=not args.no_progress)
    return task, n_labeled


def _prepare(args: argparse.Namespace):
    device = cli.resolve_device(args.device)
    check_args(args)
    task, n_labeled = build_task(args)
    task.check_files()  # a bad image stops the run here, before anything is trained or written
    rank = args.unlabeled_dir is not None
    n_images = len(task.pool.images)
    initial_size = n_labeled if rank else args.initial_size
    budget = min(args.images_per_cycle, n_images - n_labeled) if rank else args.images_per_cycle
    config = dataclasses.replace(cli.loop_config(args, device, unit_reduction=args.unit_reduction),
                                 initial_size=initial_size, budget=budget)
    counted = argparse.Namespace(**{**vars(args), "initial_size": initial_size, "images_per_cycle": budget})
    cli.check_common_args(counted, n_images, unit="images with persons")
    config.validate(n_images)
    if args.pretrained or args.resume:
        task.build_model()  # a missing or mismatched weights file fails now, not after a cycle
    return task, config, np.arange(n_labeled) if rank else None, device


def task_record(args: argparse.Namespace) -> dict:
    keys = ("train_set", "test_set", "arch", "image_size", "sigma", "dropout", "pretrained", "resume",
            "optimizer", "lr", "momentum", "weight_decay", "milestones", "gamma", "flip_test", "scale_factor",
            "rotation_factor", "half_body_probability", "flip", "unit_reduction")
    record = {key: getattr(args, key) for key in keys}
    record["dataset_root"] = dataset_name(args)
    if args.unlabeled_dir is not None:
        record["unlabeled_dir"] = str(Path(args.unlabeled_dir).resolve())
        record["person_boxes"] = str(Path(args.person_boxes).resolve())
    return record


def main(argv: Sequence[str] | None = None) -> Path:
    """Run (or resume) the simulation, or rank the unlabeled images; returns the run folder."""
    with cli.cli_errors(DataError):
        args = parse_args(argv)
    cli.set_threads(args)
    with cli.cli_errors(DataError):
        task, config, initial, device = _prepare(args)
    run_dir = cli.run_folder(args, dataset_name(args))
    print(f"{dataset_name(args)}: {len(task.pool.images)} pool images ({len(task.pool.persons)} persons) / "
          f"{len(task.test.persons)} test persons, strategy {args.strategy}, {config.cycles} cycle(s) on "
          f"{device} -> {run_dir}")
    return cli.simulate(task, config, args, run_dir, known=(DataError,), record=task_record(args), initial=initial,
                        outputs=[f"metrics:        {run_dir / 'metrics.csv'} (AP = COCO OKS AP, AR; n_persons)",
                                 f"priority CSVs:  {run_dir / 'priorities'}/cycle_XX.csv (image name,entropy_value)",
                                 f"pictures:       {run_dir / 'selections'}/cycle_XX.png"])


if __name__ == "__main__":
    main()
