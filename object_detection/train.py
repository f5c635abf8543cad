"""Simulate active learning cycles for object detection (SSD300-VGG16, Pascal VOC format).

    cd object_detection && python train.py                             # random selection
    cd object_detection && python train.py --use_active_learning=True   # learning loss
    python -m object_detection.train --preset synthetic-cpu --strategy entropy

Strategies (unit = image): random, loss_prediction, entropy / least_confidence / margin / ratio
(per output box, pooled per image by --unit-reduction, max by default; --uncertainty-boxes
anchors: per default box, reduced over the 8,732 boxes by --reduction), mc_entropy /
mc_variance / bald (with --dropout before the head), coreset, discriminative (pooled fc7).
Defaults are the original's VOC protocol: the pool is VOC2007 + VOC2012 trainval, the test set
VOC2007 test; 10 cycles of 1,000 images, 1,000 initial, subsets of 10,000; batch 32, SGD lr 1e-3
momentum 0.9 weight decay 5e-4, 300 epochs with x0.1 at 240; lambda 1, the loss module's
features never detached; the backbone from ssd.pytorch's vgg16_reducedfc.pth (--basenet; a
missing file stops the run, --from-scratch trains from random weights).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "object_detection"

from active_learning import cli, flags
from active_learning.loop.units import UNIT_REDUCTIONS, SelectionUnits
from active_learning.strategies import BOX_DISTRIBUTIONS

from .build import build, build_round, check
from .model import PUBLISHED, VGG16_REDUCEDFC
from .task import DetectionUnits
from .voc import DEFAULT_TRAIN_SETS

# detach_fraction 1: the original's train.py never detaches the loss module's input features
# (its ranking loss shapes the backbone through all 300 epochs), so neither does the reference.
REFERENCE = dict(cycles=10, initial_size=1000, images_per_cycle=1000, epochs=300, batch_size=32,
                 eval_batch_size=32, lr=1e-3, momentum=0.9, weight_decay=5e-4, lamda=1.0,
                 mc_samples=10, reduction="max", detach_fraction=1.0)
# The original's `--basenet` default (ssd.pytorch's reduced-fc VGG-16, from torch.hub's cache;
# downloaded there when missing and downloads are allowed).
REFERENCE_BASENET = VGG16_REDUCEDFC.filename
PRESETS = {
    # Pascal VOC as in the original project (the parser's own defaults).
    "voc": dict(dataset_root="data/VOCdevkit", weights_backbone=REFERENCE_BASENET),
    # The CPU benchmark on `python -m synthetic --format voc --output data/fmnist_voc` scenes.
    "synthetic-cpu": dict(dataset_root="data/fmnist_voc", train_sets="2007:trainval", width=0.0625,
                          batch_norm=True, channels_last=True, cycles=2, initial_size=300,
                          images_per_cycle=100, subset=500, epochs=20, milestones=[16],
                          batch_size=16, eval_batch_size=32, lr=0.003, clip_grad_norm=10.0,
                          weights_backbone=None,   # from scratch: 1/16 width takes no VGG
                          # detached from 60% (epoch 12) as in the CPU benchmark's measured runs
                          # (BENCHMARKS.md), which stay comparable with new ones
                          detach_fraction=0.6),
}


def add_arguments(arguments: flags.TaskArguments) -> None:
    """The VOC data and SSD300 flags (ssd.pytorch's spellings kept)."""
    data = arguments.group("data")
    data.add_argument("--dataset", choices=("VOC",), default="VOC",
                      help="dataset format (Pascal VOC)")
    data.add_argument("--dataset_root", "--dataset-root", dest="dataset_root",
                      default="data/VOCdevkit", recorded=False,
                      help="the folder holding VOC2007/ (and VOC2012/)")
    data.add_argument("--train-sets", default=DEFAULT_TRAIN_SETS,
                      help="the pool: YEAR:SET image sets (a missing VOC2012 of the default is "
                           "skipped with a warning)")
    data.add_argument("--test-set", default="2007:test", help="the evaluation image set(s)")
    data.add_argument("--classes", default=None, metavar="FILE", recorded=False,
                      help="class names, one per line (default: <dataset_root>/classes.txt if it "
                           "exists, else the 20 VOC classes)")
    model = arguments.group("detector")
    model.add_argument("--width", type=float, default=1.0,
                       help="backbone channel multiplier (1 = VGG-16)")
    model.add_bool("--batch-norm", help="VGG-16-BN: BatchNorm after every VGG convolution")
    model.add_argument("--anchors", choices=("voc", "coco"), default="voc",
                       help="default boxes: 'voc' is ssd.pytorch's VOC configuration (min sizes "
                            "30 ... 264, max 60 ... 315 pixels); 'coco' is torchvision's "
                            "ssd300_vgg16 (scales 0.07 ... 1.05), what SSD300_VGG16_Weights."
                            "COCO_V1 was trained with")
    model.add_argument("--milestones", nargs="+", default=[240], metavar="EPOCH",
                       help="epochs at which the learning rate is multiplied by --gamma")
    model.add_argument("--gamma", type=float, default=0.1, help="learning rate decay factor")
    model.add_argument("--clip-grad-norm", type=float, default=None, metavar="NORM",
                       help="clip the gradients' global norm to NORM (default: no "
                            "clipping, as the original)")
    model.add_bool("--cuda", default=None, recorded=False,
                   help="original flag: --cuda=True runs on the GPU, --cuda=False on the CPU "
                        "(default: --device)")
    scoring = arguments.group("uncertainty")
    scoring.add_argument("--uncertainty-boxes", choices=("detections", "anchors"),
                         default="detections",
                         help="what entropy, margin, MC-dropout ... score: 'detections', the "
                              "detector's output boxes (score > 0.01, NMS 0.45, as the "
                              "evaluation), pooled per image by --unit-reduction (an image "
                              "without a detection scores 0); 'anchors', all 8,732 default "
                              "boxes, reduced by --reduction")
    scoring.add_argument("--unit-reduction", choices=UNIT_REDUCTIONS, default="max",
                         help="an image's score from its detections' scores (with "
                              "--uncertainty-boxes detections)")
    scoring.add_argument("--min-prediction-score", type=float, default=0.5, recorded=False,
                         help="round mode: the trained detector's boxes scoring at least this "
                              "are the proposals' pre-annotations (Label Studio, the report)")
    # The reference protocol starts from ssd.pytorch's VGG-16, as the original's `--basenet`.
    arguments.parser.set_defaults(weights_backbone=REFERENCE_BASENET)
    out = arguments.group("output")
    out.add_argument("--save_folder", "--save-folder", dest="output_dir", default=argparse.SUPPRESS,
                     recorded=False, help="original flag: the same as --output-dir")


COMMAND = cli.TaskCommand(
    name="object_detection", description=__doc__.split("\n\n")[0], output_kind=BOX_DISTRIBUTIONS,
    add_arguments=add_arguments, build=build, check=check, reference=REFERENCE, presets=PRESETS,
    unit_classes=(SelectionUnits, DetectionUnits), dropout=0.0, mc_dropout=0.1,
    backbone_aliases=("--basenet",), published=PUBLISHED,
    loop_fields=lambda args: {"unit_reduction": args.unit_reduction},
    after_labeling="annotate the listed images (VOC XML), add them to the image set, and run again",
    build_round=build_round, label_kind="boxes")


# get_args_parser() -> ArgumentParser, parse_args(argv) -> Namespace, main(argv) -> run folder
get_args_parser, parse_args, main = cli.entry_points(COMMAND)


if __name__ == "__main__":
    cli.run_script(main)   # under torchrun: ends without the teardown
