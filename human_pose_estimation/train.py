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

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "human_pose_estimation"

from active_learning import cli, flags
from active_learning.loop.units import UNIT_REDUCTIONS, GroupedUnits
from active_learning.strategies import HEATMAPS

from .build import build, build_round, check
from .heatmaps import CONVENTIONS
from .model import ARCHITECTURES
from .person_boxes import AUTO_MIN_SCORE, DEFAULT_DETECTOR
from .weights import IMAGENET, PUBLISHED

# The original scored 5 x the budget per cycle. Its lib/core/function.py feeds the loss module
# undetached features for epochs 0-74 and detached ones from epoch 75 of its END_EPOCH 100 on:
# kept here as a fraction, 75% of the epochs (157 of HRNet's 210), so a shorter or longer
# schedule detaches at the same point of training (an absolute 75 would be 36% of 210 epochs).
REFERENCE = dict(cycles=10, initial_size=5000, images_per_cycle=5000, epochs=210, batch_size=32,
                 eval_batch_size=32, lr=1e-3, momentum=0.9, weight_decay=0.0, lamda=1e-4,
                 mc_samples=10, subset_factor=5, detach_fraction=0.75)
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


def add_arguments(arguments: flags.TaskArguments) -> None:
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
    cli.run_script(main)   # under torchrun: ends without the teardown
