"""What ``train.py``'s command builds from its flags: the checked flags (``check``), the adapter
over the COCO data (``build``), the ranked images' person boxes, and a labeling round's pool
(``build_round``)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from active_learning import cli, console, distributed, flags, run_setup
from active_learning.errors import ConfigError, DataError
from active_learning.files.images import find_images
from active_learning.labels.exported import Labels
from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES

from .coco import COCO_SKELETON, PoseData, pose_data_from_labels, read_split
from .data import Augmentation
from .person_boxes import (
    AUTO,
    AUTO_MIN_SCORE,
    detect_persons,
    detector_builder,
    persons_of_boxes,
    read_detections,
    warn_without_boxes,
)
from .weights import IMAGENET, PUBLISHED, check_page_only_weights, imagenet_backbone


def integers(text: str, flag: str, count: int) -> list[int]:
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes integers separated by commas, got {text!r}") from None
    if any(value < 1 for value in values) or len(values) != count:
        raise ConfigError(f"{flag} takes {count} integers >= 1, got {text!r}")
    return values


def check(args: argparse.Namespace) -> None:
    """The flags' values; also resolves the default ``--weights-backbone imagenet`` to the
    ImageNet weights of ``--arch`` (so the run records the file it starts from)."""
    if args.weights_backbone == IMAGENET:
        args.weights_backbone = imagenet_backbone(args.arch)
    width, height = integers(args.image_size, "--image-size", 2)
    flags.require([
        (width % 32 == 0 and height % 32 == 0,
         "--image-size must be multiples of 32 (HRNet's lowest branch has stride 32), "
         f"got {args.image_size}"),
        (args.sigma > 0, f"--sigma must be > 0, got {args.sigma}"),
        (0 <= args.oks_threshold <= 1,
         f"--oks-threshold must be in [0, 1], got {args.oks_threshold}"),
        (args.gamma > 0, f"--gamma must be > 0, got {args.gamma}"),
        (0 <= args.scale_factor < 1, f"--scale-factor must be in [0, 1), got {args.scale_factor}"),
        (args.rotation_factor >= 0, f"--rotation-factor must be >= 0, got {args.rotation_factor}"),
        (0 <= args.half_body_probability <= 1,
         f"--half-body-probability must be in [0, 1], got {args.half_body_probability}"),
        (args.unlabeled_dir is None or args.person_boxes is not None,
         "--unlabeled-dir needs --person-boxes: top-down pose estimation scores persons inside "
         "their boxes; give a COCO detections JSON (image_id, bbox, score) of a "
         "person detector's boxes, or auto (run --person-detector)"),
        (not args.round or args.person_boxes is not None,
         "train.py round needs --person-boxes: top-down pose estimation scores persons inside "
         "their boxes; give a COCO detections JSON (image_id or file_name, bbox, score) of the "
         "images' person boxes, or auto (run --person-detector)"),
        (args.person_boxes is None or args.unlabeled_dir is not None or args.round,
         "--person-boxes needs --unlabeled-dir (or train.py round)"),
        (args.min_box_score is None or 0 <= args.min_box_score <= 1,
         f"--min-box-score must be in [0, 1], got {args.min_box_score}"),
        (args.max_persons >= 0, f"--max-persons must be >= 0, got {args.max_persons}"),
    ])
    if args.min_box_score is None:
        args.min_box_score = AUTO_MIN_SCORE if args.person_boxes == AUTO else 0.0
    if args.person_boxes == AUTO:
        detector_builder(args.person_detector)   # a wrong name stops here, before any data
    check_page_only_weights(args)


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.dataset_root).resolve().name or "coco"


def build(args: argparse.Namespace) -> cli.BuiltTask:
    """The task over the pool (+ the unlabeled images in rank mode)."""
    with console.warnings_as_lines():
        pool = read_split(args.dataset_root, args.train_set)
        test = read_split(args.dataset_root, args.test_set)
        n_labeled = len(pool.images)
        if args.unlabeled_dir is not None:
            folder = Path(args.unlabeled_dir)
            names = [path.relative_to(folder).as_posix()
                     for path in find_images(folder, DataError)]
            pool = pool + persons_to_rank(
                args, folder, names, names,
                cache=run_setup.dataset_cache(folder, "human_pose_estimation"))
    task = pose_task(args, pool, test, args.dataset_root)
    record: dict[str, Any] = {"dataset_root": dataset_name(args)}
    if args.unlabeled_dir is not None:
        record["person_boxes"] = person_boxes_record(args)
    return cli.BuiltTask(task, dataset=dataset_name(args), n_labeled=n_labeled, record=record,
                         summary=f"{len(task.pool.images)} pool images ({len(task.pool.persons)} "
                                 f"persons) / {len(task.test.persons)} test persons")


def person_boxes_record(args: argparse.Namespace) -> str:
    if args.person_boxes == AUTO:
        return f"{AUTO}: {args.person_detector}"
    return str(Path(args.person_boxes).resolve())


def persons_to_rank(args: argparse.Namespace, folder: Path, names: list[str],
                    known: list[str], cache: str | Path) -> PoseData:
    """The images ``names`` (under ``folder``, in that order) that have a person box, with
    their persons to score: from the ``--person-boxes`` file (whose entries may name any image
    of ``known``), or detected by ``--person-detector`` (``auto``; the boxes kept in ``cache``),
    above ``--min-box-score``, the ``--max-persons`` best of an image."""
    image_ids: dict[str, int] = {}
    if args.person_boxes == AUTO:
        boxes = detect_persons(folder, names, args.person_detector,
                               distributed.resolve_device(args.device), cache,
                               progress=not args.no_progress)
        source = f"by {args.person_detector}"
    else:
        boxes, image_ids = read_detections(args.person_boxes, folder, known)
        source = f"in {Path(args.person_boxes).name}"
    data = persons_of_boxes(folder, names, boxes, min_score=args.min_box_score,
                            max_persons=args.max_persons, image_ids=image_ids)
    warn_without_boxes(len(names) - len(data.images), len(names), source)
    if not data.persons:
        raise DataError(f"no person box {source} (above --min-box-score {args.min_box_score}) "
                        f"for any of the {len(names)} images to rank under {folder}")
    return data


def pose_task(args: argparse.Namespace, pool: PoseData, test: PoseData,
              data_root: str | Path) -> Any:
    """The adapter of the flags over ``pool`` and ``test``, its images checked (a bad image
    stops the run here, before anything is trained or written; ``data_root`` keys the check's
    cache)."""
    from .task import PoseTask

    augmentation = Augmentation(scale_factor=args.scale_factor,
                                rotation_factor=args.rotation_factor,
                                flip=args.flip, half_body_probability=args.half_body_probability)
    task = PoseTask(pool, test, arch=args.arch,
                    input_size=integers(args.image_size, "--image-size", 2),
                    sigma=args.sigma, dropout=args.dropout, optimizer=args.optimizer, lr=args.lr,
                    momentum=args.momentum, weight_decay=args.weight_decay,
                    milestones=args.milestones, gamma=args.gamma,
                    pretrained=args.weights_backbone, weights=args.weights,
                    augmentation=augmentation,
                    flip_test=args.flip_test, oks_threshold=args.oks_threshold,
                    in_vis_threshold=args.in_vis_threshold,
                    heatmap_convention=args.heatmap_convention, published=PUBLISHED,
                    progress=not args.no_progress)
    run_setup.check_task_files(task, args, data_root, "human_pose_estimation")
    return task


def build_round(args: argparse.Namespace, labels: Labels, candidates: list[str]
                ) -> cli.BuiltTask:
    """``train.py round``: the export's labeled images and persons, then the candidate images
    that have a person box (``--person-boxes``), each person to score; no test set."""
    from active_learning.files.images import image_names as round_images

    images = Path(args.images)
    labeled = pose_data_from_labels(labels)
    with console.warnings_as_lines():
        known = candidates if args.person_boxes == AUTO else round_images(images)
        unlabeled = persons_to_rank(args, images, candidates, known, cache=args.workspace)
    task = pose_task(args, labeled + unlabeled, PoseData([], []), images)

    def predict(model: Any, name: str) -> Any:
        return task.prediction(model, position[name])

    position = {image.name: index for index, image in enumerate(task.pool.images)}
    return cli.BuiltTask(
        task, dataset="round", n_labeled=len(labeled.images), predict=predict,
        record={"person_boxes": person_boxes_record(args)},
        keypoint_names=COCO_KEYPOINT_NAMES,
        skeleton=tuple((a - 1, b - 1) for a, b in COCO_SKELETON),
        summary=f"{len(labeled.images)} labeled images ({len(labeled.persons)} persons), "
                f"{len(unlabeled.images)} of the {len(candidates)} candidates to rank "
                f"({len(unlabeled.persons)} person boxes)")
