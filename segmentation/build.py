"""What ``train.py``'s command builds from its flags: the checked flags (``check``), the adapter
over the Cityscapes or folder data (``build``), and a labeling round's pool (``build_round``)."""
from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from active_learning import cli, flags, run_setup
from active_learning.errors import ConfigError
from active_learning.labels.cityscapes_ids import CITYSCAPES_CLASSES
from active_learning.labels.exported import Labels
from active_learning.strategies import get_strategy

from .data import (
    CITYSCAPES_MEAN,
    CITYSCAPES_STD,
    DataError,
    SegmentationSample,
    find_samples,
    find_unlabeled,
    samples_from_labels,
)
from .task import SegmentationTask

logger = logging.getLogger("active_learning")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def selects_superpixels(args: argparse.Namespace) -> bool:
    return get_strategy(args.strategy).region_level


def budget_flag(args: argparse.Namespace) -> str:
    return "superpixels_per_cycle" if selects_superpixels(args) else "images_per_cycle"


def check(args: argparse.Namespace) -> None:
    args.superpixels = selects_superpixels(args)
    if args.weights:
        # --weights sets every layer, the backbone too: the default ImageNet start (or another
        # --weights-backbone) would be overwritten, so it is neither needed nor read.
        args.weights_backbone = None
    flags.require([
        (args.width > 0, f"--width must be > 0, got {args.width}"),
        (args.crop_size >= 0, f"--crop-size must be >= 0, got {args.crop_size}"),
        (0.0 <= args.random_scale < 1.0,
         f"--random-scale must be in [0, 1), got {args.random_scale}"),
        (args.step >= 1, f"--step must be >= 1, got {args.step}"),
        (args.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got {args.warmup_epochs}"),
        (args.pseudo_k >= 1, f"--pseudo-k must be >= 1, got {args.pseudo_k}"),
        (args.pseudo_weight > 0, f"--pseudo-weight must be > 0, got {args.pseudo_weight}"),
        (args.classes >= 2, f"--classes must be >= 2, got {args.classes}"),
        (args.superpixels_per_image >= 2,
         f"--superpixels-per-image must be >= 2, got {args.superpixels_per_image}"),
        (args.superpixels_per_cycle == flags.ALL or args.superpixels_per_cycle >= 1,
         f"--superpixels-per-cycle must be >= 1, got {args.superpixels_per_cycle}"),
    ])
    if args.data_format == "cityscapes" and args.classes != 19:
        raise ConfigError(f"Cityscapes has 19 train classes: -c 19, got -c {args.classes}")


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.data_dir).resolve().name or args.data_format


def build(args: argparse.Namespace) -> cli.BuiltTask:
    """The task over the training split (+ the unlabeled images in rank mode)."""
    samples = find_samples(args.data_dir, "train", args.data_format,
                           need_instances=args.superpixels)
    test_samples = find_samples(args.data_dir, "val", args.data_format)
    n_labeled = len(samples)
    if args.unlabeled_dir is not None:
        samples = samples + find_unlabeled(args.unlabeled_dir)
    cityscapes = args.data_format == "cityscapes"
    task = segmentation_task(
        args, samples, test_samples, n_labeled, data_root=args.data_dir,
        data_format=args.data_format,
        class_names=CITYSCAPES_CLASSES if cityscapes else [str(c) for c in range(args.classes)],
        mean=CITYSCAPES_MEAN if cityscapes else IMAGENET_MEAN,
        std=CITYSCAPES_STD if cityscapes else IMAGENET_STD)
    units = task.selection_units()
    return cli.BuiltTask(task, dataset=dataset_name(args), n_labeled=n_labeled,
                         outputs=superpixel_outputs(args),
                         summary=f"{len(task.samples)} pool / {len(task.test_samples)} val images, "
                                 f"{units.n_units} {units.unit_label}")


def superpixel_outputs(args: argparse.Namespace) -> list[str]:
    if not args.superpixels:
        return []
    return ["superpixels:    {run_dir}/regions/cycle_XX.csv (name,region_id,score) "
            "and {run_dir}/regions/maps/"]


def segmentation_task(args: argparse.Namespace, samples: list[SegmentationSample],
                      test_samples: list[SegmentationSample], n_labeled: int, *,
                      data_root: str | Path, data_format: str, class_names: Sequence[str],
                      mean: Sequence[float], std: Sequence[float]) -> SegmentationTask:
    """The adapter of the flags over ``samples`` (the first ``n_labeled`` labeled), its files
    checked: a bad image or mask stops the run here, before anything is trained or written.
    ``data_root`` keys the user's caches (superpixel maps, checked images)."""
    cache = args.cache_dir or run_setup.dataset_cache(data_root, "segmentation") / "superpixels"
    task = SegmentationTask(
        samples, test_samples, data_format=data_format, num_classes=len(class_names),
        class_names=class_names, mean=mean, std=std, width=args.width, dropout=args.dropout,
        dropout_at=args.dropout_at, dropout_type=args.dropout_type, crop_size=args.crop_size,
        random_scale=args.random_scale,
        lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, lr_mode=args.lr_mode,
        step=args.step, warmup_epochs=args.warmup_epochs, superpixels=args.superpixels,
        superpixel_method=args.superpixel_method,
        superpixels_per_image=args.superpixels_per_image,
        region_label=args.region_label, cache_dir=cache,
        weights_path=args.weights, weights_backbone=args.weights_backbone,
        progress=not args.no_progress, pseudo_labels=args.pseudo_labels,
        pseudo_k=args.pseudo_k, pseudo_weight=args.pseudo_weight)
    sizes = set(task.image_sizes) | set(task.test_sizes)
    if len(sizes) > 1 and args.eval_batch_size > 1:
        # Images of different sizes cannot share a batch: score and evaluate one at a time.
        logger.info("the images have %d different sizes: scoring and evaluating them one at a "
                    "time (--eval-batch-size 1)", len(sizes))
        args.eval_batch_size = 1
    trained = {}   # size -> an image of that size, among those a cycle may train on
    for sample, size in zip(task.samples[:n_labeled], task.image_sizes[:n_labeled], strict=True):
        trained.setdefault(size, sample.image)
    if not args.crop_size and len(trained) > 1:
        (first, a), (second, b) = list(trained.items())[:2]
        raise DataError(f"the training images differ in size ({a}: {first[1]}x{first[0]}, {b}: "
                        f"{second[1]}x{second[0]}), so they cannot share a batch: give a "
                        "--crop-size")
    run_setup.check_task_files(task, args, data_root, "segmentation")
    return task


def build_round(args: argparse.Namespace, labels: Labels, candidates: list[str]
                ) -> cli.BuiltTask:
    """``train.py round``: the export's labeled images, their label maps written as class-id
    PNGs in the round's folder (``label_maps/``; never beside the user's images), then the
    candidate images to rank (their superpixels with a superpixel strategy); no test set."""
    images = Path(args.images)
    samples = samples_from_labels(labels, Path(args.round_folder) / "label_maps")
    samples += [SegmentationSample(images / name, None, None, name) for name in candidates]
    task = segmentation_task(args, samples, [], len(labels.targets), data_root=images,
                             data_format="folder", class_names=labels.categories,
                             mean=IMAGENET_MEAN, std=IMAGENET_STD)
    units = task.selection_units()
    position = {sample.name: index for index, sample in enumerate(samples)}

    def predict(model: Any, name: str) -> Any:
        return task.prediction(model, position[name])

    return cli.BuiltTask(task, dataset="round", n_labeled=len(labels.targets),
                         outputs=superpixel_outputs(args), predict=predict,
                         record={"class_names": list(labels.categories)},
                         summary=f"{len(labels.targets)} labeled images in "
                                 f"{len(labels.categories)} classes, {len(candidates)} to rank "
                                 f"({units.n_units} {units.unit_label} in all)")
