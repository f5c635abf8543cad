"""Simulate active learning cycles for human pose estimation (top-down HRNet, COCO keypoints).

    cd human_pose_estimation && python train.py                               # random selection
    cd human_pose_estimation && python train.py --use_active_learning=True    # learning loss
    cd human_pose_estimation && \\
        python tools/train.py --cfg experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml
    python -m human_pose_estimation.train --preset synthetic-cpu --strategy heatmap_uncertainty

A training sample is a person (crop from its ground-truth box); the unit the budget counts and
the CSV names is the image. Strategies: random, loss_prediction, heatmap_uncertainty,
mc_variance (with --dropout), coreset, discriminative. Defaults are the original's protocol:
COCO train2017 as the pool, val2017 with ground-truth boxes as the test set; 10 cycles of
5,000 images, 5,000 initial, subsets of 5 x the budget; HRNet-W32 at 256 x 192, Adam lr 1e-3,
batch 32, 210 epochs with x0.1 at 170 and 200; lambda 1e-4, features detached at 75%; the
backbone starts from ImageNet HRNet-W32 (hrnet_w32-36af842e.pth, HRNet's MODEL.PRETRAINED;
--from-scratch trains from random weights).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "human_pose_estimation"

from active_learning import cli
from active_learning.errors import ConfigError, DataError, WeightsError
from active_learning.files.images import find_images
from active_learning.files.pretrained import PublishedCheckpoint, hub_checkpoint_path
from active_learning.labels import Labels
from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES
from active_learning.loop.units import UNIT_REDUCTIONS, GroupedUnits
from active_learning.strategies import HEATMAPS

from .coco import COCO_SKELETON, PoseData, pose_data_from_labels, read_split
from .data import Augmentation
from .heatmaps import CONVENTIONS
from .model import ARCHITECTURES
from .person_boxes import (
    AUTO,
    AUTO_MIN_SCORE,
    DEFAULT_DETECTOR,
    detect_persons,
    detector_builder,
    persons_of_boxes,
    read_detections,
    warn_without_boxes,
)

# The original scored 5 x the budget per cycle. Its lib/core/function.py feeds the loss module
# undetached features for epochs 0-74 and detached ones from epoch 75 of its END_EPOCH 100 on:
# kept here as a fraction, 75% of the epochs (157 of HRNet's 210), so a shorter or longer
# schedule detaches at the same point of training (an absolute 75 would be 36% of 210 epochs).
REFERENCE = dict(cycles=10, initial_size=5000, images_per_cycle=5000, epochs=210, batch_size=32,
                 eval_batch_size=32, lr=1e-3, momentum=0.9, weight_decay=0.0, lamda=1e-4,
                 mc_samples=10, subset_factor=5, detach_fraction=0.75)
# The weights the references publish. HRNet's MODEL.PRETRAINED is HRNet-Image-Classification's
# ImageNet HRNet-W32, which deep-high-resolution-net.pytorch's README links on Google Drive /
# OneDrive; OpenMMLab mirrors the same file under the same name as a direct download (mmpose's
# HRNet configs start from it). The COCO pose model is on the model zoo's Drive folder only.
MODEL_ZOO_PAGE = "https://drive.google.com/drive/folders/1hOTihvbyIxsm5ygDpbUuJ7O_tzv4oXjC"
IMAGENET_HRNET_W32 = "hrnet_w32-36af842e.pth"
IMAGENET_HRNET_W48 = "hrnet_w48-8ef0771d.pth"      # the MODEL.PRETRAINED of HRNet's W48 configs
COCO_POSE_HRNET_W32 = "pose_hrnet_w32_256x192.pth"
PUBLISHED = (
    PublishedCheckpoint(
        IMAGENET_HRNET_W32,
        "https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w32-36af842e.pth",
        "ImageNet HRNet-W32: deep-high-resolution-net.pytorch's MODEL.PRETRAINED, mirrored by "
        "OpenMMLab"),
    PublishedCheckpoint(
        IMAGENET_HRNET_W48,
        "https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w48-8ef0771d.pth",
        "ImageNet HRNet-W48: deep-high-resolution-net.pytorch's MODEL.PRETRAINED for W48, "
        "mirrored by OpenMMLab"),
    PublishedCheckpoint(COCO_POSE_HRNET_W32, MODEL_ZOO_PAGE,
                            "deep-high-resolution-net.pytorch's COCO model zoo"),
)
# Published on a page, not as a file a program can download: never fetched, only found cached.
PAGE_ONLY = {COCO_POSE_HRNET_W32}
# --weights-backbone's default: the ImageNet weights of --arch (see imagenet_backbone).
IMAGENET = "imagenet"


def imagenet_backbone(arch: str) -> str:
    """The ImageNet start of ``arch``: the file HRNet's configurations name for W32 and W48
    (MODEL.PRETRAINED), timm's pretrained model of that name for the other widths."""
    return {"hrnet_w32": IMAGENET_HRNET_W32, "hrnet_w48": IMAGENET_HRNET_W48}.get(
        arch, f"timm:{arch}")

PRESETS = {
    # COCO as in the original project (the parser's own defaults), from ImageNet HRNet-W32.
    "coco": dict(dataset_root="data/coco", weights_backbone=IMAGENET),
    # The CPU benchmark on the scenes of
    # `python -m synthetic --format coco-keypoints --output data/fmnist_coco`, from scratch.
    "synthetic-cpu": dict(dataset_root="data/fmnist_coco", arch="hrnet_w18_small",
                          weights_backbone=None,
                          image_size="96,128", cycles=4, initial_size=100, images_per_cycle=50,
                          subset=250, epochs=25, milestones=[20], batch_size=32,
                          eval_batch_size=64),
}


def add_arguments(arguments: cli.TaskArguments) -> None:
    """The COCO keypoints data and HRNet flags."""
    data = arguments.group("data")
    data.add_argument("--dataset-root", "--data-dir", dest="dataset_root", default="data/coco",
                      recorded=False,
                      help="the COCO folder: annotations/person_keypoints_<set>.json and "
                           "images/<set>/")
    data.add_argument("--train-set", default="train2017", help="the pool's image set")
    data.add_argument("--test-set", default="val2017",
                      help="the evaluation image set (ground-truth boxes)")
    data.add_argument("--person-boxes", default=None, metavar="JSON|auto", recorded=False,
                      help="rank and round mode: the person boxes of the images to rank (top-"
                           "down pose needs them): a COCO detections JSON (image_id or "
                           "file_name, bbox, score, category_id 1), or 'auto': detect them with "
                           "--person-detector (kept in the workspace, or the user's cache in "
                           "rank mode)")
    data.add_argument("--person-detector", default=DEFAULT_DETECTOR, metavar="WEIGHTS",
                      recorded=False,
                      help="with --person-boxes auto: a COCO-trained torchvision detector by "
                           "its weights name (SSDLite320_MobileNet_V3_Large_Weights.COCO_V1 "
                           "for speed); this project's own detector: write its boxes with "
                           "python -m object_detection.detect and give that file")
    data.add_argument("--min-box-score", type=float, default=None, recorded=False,
                      help="person boxes scored below this are ignored (default: 0 for a file, "
                           f"{AUTO_MIN_SCORE} with auto)")
    data.add_argument("--max-persons", type=int, default=0, metavar="N", recorded=False,
                      help="score at most the N best-scored person boxes of an image to rank "
                           "(0: all; bounds the scoring of crowded detections)")
    model = arguments.group("pose model")
    model.add_argument("--arch", choices=ARCHITECTURES, default="hrnet_w32",
                       help="timm HRNet backbone")
    model.add_argument("--image-size", default="192,256", metavar="W,H",
                       help="crop size (heatmaps are 1/4)")
    model.add_argument("--sigma", type=float, default=2.0,
                       help="heatmap Gaussian sigma, in heatmap cells")
    model.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                       help="adam (the reference; --weight-decay 0) or sgd (with --momentum)")
    model.add_argument("--milestones", nargs="+", default=[170, 200], metavar="EPOCH",
                       help="epochs at which the learning rate is multiplied by --gamma")
    model.add_argument("--gamma", type=float, default=0.1, help="learning rate decay factor")
    model.add_bool("--flip-test", default=True,
                   help="evaluate on the average of the crop's and the flipped crop's heatmaps")
    model.add_argument("--heatmap-convention", choices=CONVENTIONS, default="hrnet",
                       help="how heatmap cells sit on the crop: hrnet (the reference: a cell "
                            "stands for crop pixel 4j, targets on the nearest cell cut to 3 sigma, "
                            "flip test shifted one cell) or aligned (a cell at the centre of the "
                            "pixels it covers, sub-cell targets, a flip test without shift)")
    model.add_argument("--oks-threshold", type=float, default=0.9,
                       help="evaluation: OKS non-maximum suppression within an image drops a "
                            "person whose OKS with a better-scored one is above this (HRNet's "
                            "TEST.OKS_THRE); 1 keeps every person")
    model.add_argument("--in-vis-threshold", type=float, default=0.2,
                       help="evaluation: a person's score is the mean heatmap maximum of its "
                            "joints above this (HRNet's TEST.IN_VIS_THRE)")
    augment = arguments.group("augmentation (HRNet's COCO values)")
    augment.add_argument("--scale-factor", type=float, default=0.35,
                         help="crop scale: clip(N(1, f), 1-f, 1+f)")
    augment.add_argument("--rotation-factor", type=float, default=45.0,
                         help="rotation: clip(N(0, f), -2f, 2f) degrees, with probability 0.6")
    augment.add_argument("--half-body-probability", type=float, default=0.3,
                         help="probability of a half-body crop (persons with > 8 labeled joints)")
    augment.add_bool("--flip", default=True,
                     help="random horizontal flips (left/right joints swapped)")
    # The reference starts from ImageNet HRNet-W32 (MODEL.PRETRAINED), with or without --cfg;
    # "imagenet" becomes the ImageNet weights of --arch in check()
    arguments.parser.set_defaults(weights_backbone=IMAGENET)
    units = arguments.group("units")
    units.add_argument("--unit-reduction", choices=UNIT_REDUCTIONS, default="max",
                       help="an image's score from its persons' scores")


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
    cli.require([
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


def check_page_only_weights(args: argparse.Namespace) -> None:
    """A file published on a web page only (the COCO pose model) is used from torch.hub's cache
    and never downloaded (the download would fetch the page): WeightsError when it is not
    there, saying where to get it and where to put it."""
    for flag, spec in (("--weights", args.weights),
                       ("--weights-backbone", getattr(args, "weights_backbone", None))):
        if spec in PAGE_ONLY and not Path(spec).exists() \
                and not hub_checkpoint_path(spec).is_file():
            source = next(c for c in PUBLISHED if c.filename == spec)
            raise WeightsError(
                f"{flag} {spec} ({source.source}): not in torch.hub's cache "
                f"({hub_checkpoint_path(spec)}); it is published on a page, not as a direct "
                f"download: save it from {source.url} to that path, or give its local path")


def dataset_name(args: argparse.Namespace) -> str:
    return Path(args.dataset_root).resolve().name or "coco"


def build(args: argparse.Namespace) -> cli.BuiltTask:
    """The task over the pool (+ the unlabeled images in rank mode)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool = read_split(args.dataset_root, args.train_set)
        test = read_split(args.dataset_root, args.test_set)
        n_labeled = len(pool.images)
        if args.unlabeled_dir is not None:
            folder = Path(args.unlabeled_dir)
            names = [path.relative_to(folder).as_posix()
                     for path in find_images(folder, DataError)]
            pool = pool + persons_to_rank(
                args, folder, names, names,
                cache=cli.dataset_cache(folder, "human_pose_estimation"))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
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
                               cli.resolve_device(args.device), cache,
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
    task.check_files(jobs=cli.decode_jobs(args),
                     cache=cli.dataset_cache(data_root, "human_pose_estimation")
                     / "checked_images.json")
    return task


def build_round(args: argparse.Namespace, labels: Labels, candidates: list[str]
                ) -> cli.BuiltTask:
    """``train.py round``: the export's labeled images and persons, then the candidate images
    that have a person box (``--person-boxes``), each person to score; no test set."""
    from active_learning.rounds import find_images as round_images

    images = Path(args.images)
    labeled = pose_data_from_labels(labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        known = candidates if args.person_boxes == AUTO else round_images(images)
        unlabeled = persons_to_rank(args, images, candidates, known, cache=args.workspace)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
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


COMMAND = cli.TaskCommand(
    name="human_pose_estimation", description=__doc__.split("\n\n")[0], output_kind=HEATMAPS,
    unit_classes=(GroupedUnits,), add_arguments=add_arguments, build=build, check=check,
    reference=REFERENCE, presets=PRESETS, dropout=0.0, mc_dropout=0.1,
    backbone_aliases=("--pretrained",), published=PUBLISHED,
    loop_fields=lambda args: {"unit_reduction": args.unit_reduction},
    after_labeling="annotate the persons' keypoints in the listed images (COCO format), add them "
                   "to the annotation file, and run again",
    build_round=build_round, label_kind="keypoints")


# get_args_parser() -> ArgumentParser, parse_args(argv) -> Namespace, main(argv) -> run folder
get_args_parser, parse_args, main = cli.entry_points(COMMAND)


if __name__ == "__main__":
    main()
