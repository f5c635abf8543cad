"""What ``train.py``'s command builds from its flags: the checked flags (``check``), the adapter
over the VOC data (``build``), and a labeling round's pool (``build_round``)."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from active_learning import cli, console, flags, run_setup
from active_learning.labels.exported import Labels

from .model import refuse_normalised_vgg
from .task import DetectionTask
from .voc import (
    DEFAULT_TRAIN_SETS,
    VOC_CLASSES,
    VOCSample,
    find_unlabeled,
    parse_image_sets,
    read_class_names,
    read_split,
    samples_from_labels,
)


def check(args: argparse.Namespace) -> None:
    if args.cuda is not None:
        args.device = "cuda" if args.cuda else "cpu"
    flags.require([
        (0 < args.width <= 1, f"--width must be in (0, 1], got {args.width}"),
        (args.gamma > 0, f"--gamma must be > 0, got {args.gamma}"),
        (args.clip_grad_norm is None or args.clip_grad_norm > 0,
         f"--clip-grad-norm must be > 0, got {args.clip_grad_norm}"),
        (0 <= args.min_prediction_score <= 1,
         f"--min-prediction-score must be in [0, 1], got {args.min_prediction_score}"),
    ])
    parse_image_sets(args.train_sets)
    parse_image_sets(args.test_set)
    if args.weights_backbone:   # refused before the runner fetches (and downloads) the file
        refuse_normalised_vgg(args.weights_backbone, "--weights-backbone")


def class_names(args: argparse.Namespace) -> tuple[str, ...]:
    if args.classes:
        return read_class_names(args.classes)
    default = Path(args.dataset_root) / "classes.txt"
    return read_class_names(default) if default.is_file() else VOC_CLASSES


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.dataset_root).resolve().name or "VOC"


def build(args: argparse.Namespace) -> cli.BuiltTask:
    """The task over the pool (+ the unlabeled images in rank mode)."""
    names = class_names(args)
    with console.warnings_as_lines():
        samples = read_split(args.dataset_root, parse_image_sets(args.train_sets), names,
                             optional_years=args.train_sets == DEFAULT_TRAIN_SETS)
        # every test image, as voc_eval: false positives on images without objects count
        test_samples = read_split(args.dataset_root, parse_image_sets(args.test_set), names,
                                  keep_empty=True)
    n_labeled = len(samples)
    if args.unlabeled_dir is not None:
        samples = samples + find_unlabeled(args.unlabeled_dir)
    task = detection_task(args, samples, test_samples, names, args.dataset_root)
    return cli.BuiltTask(task, dataset=dataset_name(args), n_labeled=n_labeled,
                         record={"dataset_root": dataset_name(args), "classes": list(names)},
                         summary=f"{len(task.samples)} pool / {len(task.test_samples)} test "
                                 f"images, {len(task.class_names)} classes")


def detection_task(args: argparse.Namespace, samples: list[VOCSample],
                   test_samples: list[VOCSample], names: Sequence[str],
                   data_root: str) -> DetectionTask:
    """The adapter of the flags over ``samples``, its images checked (a bad image stops the
    run here, before anything is trained or written; ``data_root`` keys the check's cache)."""
    task = DetectionTask(samples, test_samples, class_names=names, width=args.width,
                         dropout=args.dropout, batch_norm=args.batch_norm,
                         channels_last=args.channels_last, anchors=args.anchors, lr=args.lr,
                         momentum=args.momentum,
                         weight_decay=args.weight_decay, milestones=args.milestones,
                         gamma=args.gamma, scored_boxes=args.uncertainty_boxes,
                         basenet=args.weights_backbone, weights=args.weights,
                         max_grad_norm=args.clip_grad_norm, progress=not args.no_progress)
    run_setup.check_task_files(task, args, data_root, "object_detection")
    return task


def build_round(args: argparse.Namespace, labels: Labels, candidates: list[str]
                ) -> cli.BuiltTask:
    """``train.py round``: the export's labeled images (boxes, labels 1..K of
    ``labels.categories``), then the candidate images to rank; no test set."""
    images = Path(args.images)
    samples = samples_from_labels(labels) + [VOCSample(image=images / name, name=name)
                                             for name in candidates]
    task = detection_task(args, samples, [], labels.categories, args.images)
    position = {sample.name: index for index, sample in enumerate(samples)}

    def predict(model: Any, name: str) -> Any:
        return task.prediction(model, position[name], min_score=args.min_prediction_score)

    return cli.BuiltTask(task, dataset="round", n_labeled=len(labels.targets),
                         record={"classes": list(labels.categories)}, predict=predict,
                         summary=f"{len(labels.targets)} labeled images in "
                                 f"{len(labels.categories)} classes, {len(candidates)} to rank")
