"""Simulate active learning cycles for semantic segmentation (DRN-D-22, Cityscapes format).

    cd segmentation && python train.py train -d ../data/cityscapes -c 19 -s 896 --arch drn_d_22 \\
        --batch-size 4 --epochs 250 --lr 0.01 --momentum 0.9 --step 100 --mc-dropout=True \\
        --entropy-superpixels=True
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
epochs, x0.1 every 100, lambda 0.01, T = 10 MC-dropout passes, starting from fyu/drn's ImageNet
DRN-D-22 (drn_d_22-4bd2f8ea.pth in torch.hub's cache; --from-scratch trains without it).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "segmentation"

from active_learning import cli, flags
from active_learning.strategies import PIXEL_DISTRIBUTIONS

from .build import budget_flag, build, build_round, check
from .data import FORMATS
from .model import DROPOUT_PLACES, DROPOUT_TYPES
from .pseudo import PSEUDO_MODES
from .task import ImageUnits, SuperpixelUnits
from .weights import DRN_D_22_IMAGENET, PUBLISHED

# The original project's segmentation flags -> the strategy each selects.
ALIASES = {
    "choose_images_with_highest_loss": "loss_prediction",
    "choose_images_with_highest_uncertainty": "mc_entropy",
    "entropy_superpixels": "mc_entropy_superpixels",
    "random_superpixels": "random_superpixels",
}
# The loss module pools each of its ten maps to 6x6, 256 wide (the original's segmentation setting:
# ActiveLearning(global_avg_pool_size=6, fc_width=256)); its features are detached from 60% of the
# epochs on (the original: from epoch 150 of 250), the shared default.
REFERENCE = dict(cycles=10, initial_size=150, images_per_cycle=150, epochs=250, batch_size=4,
                 eval_batch_size=2, lr=0.01, momentum=0.9, weight_decay=1e-4, lamda=0.01,
                 mc_samples=10, loss_width=256, loss_pool_size=6)
PRESETS = {
    # Cityscapes as in the original README (the parser's own defaults): from fyu/drn's ImageNet
    # DRN-D-22, as the original's and fyu/drn's DRNSeg (drn_d_22(pretrained=True)).
    "cityscapes": dict(data_format="cityscapes", weights_backbone=DRN_D_22_IMAGENET.filename),
    # The CPU benchmark on `python -m synthetic --output data/fmnist_cityscapes` scenes (128x256).
    # Classifier-only dropout: MC scoring runs the network once and only the classifier T times.
    # It keeps the dropout the grid of BENCHMARKS.md was first run with (channel dropout, in
    # every strategy, so random and the MC strategies train the same network): the re-run grid
    # differs from the first one only by the reference fixes (dilations, pixel-weighted loss,
    # the loss module's ten taps and warm-up).
    "synthetic-cpu": dict(data_dir="data/fmnist_cityscapes", width=0.25, crop_size=0, cycles=4,
                          initial_size=40, images_per_cycle=40, superpixels_per_cycle=500,
                          epochs=15, batch_size=8, eval_batch_size=16, lr=0.05, step=12,
                          dropout=0.5, dropout_at="classifier", dropout_type="channel",
                          weights_backbone=None),   # from scratch: width 0.25, no such file
    # Issue 32's quiet protocol on 64x128 scenes (`python -m synthetic --format cityscapes --output
    # data/fmnist_cityscapes_64x128 --train 1000 --val 1000 --height 64 --width 128`): every
    # strategy and unit kind trains 400 steps per cycle (10 passes of 40 batches, cosine after a
    # 1-pass warm-up) from the same initial weights; 1,000 evaluation images (BENCHMARKS.md).
    "synthetic-quiet": dict(data_dir="data/fmnist_cityscapes_64x128", width=0.25, crop_size=0,
                            cycles=4, initial_size=40, images_per_cycle=40,
                            superpixels_per_cycle=500, epochs=10, steps_per_cycle=400,
                            same_init=True, batch_size=8, eval_batch_size=32, lr=0.1,
                            lr_mode="cosine", warmup_epochs=1, dropout=0.1,
                            dropout_at="classifier", dropout_type="channel",
                            weights_backbone=None, no_report_map=True),
}


def add_arguments(arguments: flags.TaskArguments) -> None:
    """The segmentation data, model and superpixel flags."""
    arguments.parser.add_argument("cmd", nargs="?", choices=("train",), default="train",
                                  help="the original project's command (only train: "
                                       "simulate the cycles)")
    # The reference protocol starts from fyu/drn's ImageNet DRN-D-22 (--from-scratch: without).
    arguments.parser.set_defaults(weights_backbone=DRN_D_22_IMAGENET.filename)
    data = arguments.group("data")
    data.add_argument("-d", "--data-dir", default="data/cityscapes", recorded=False,
                      help="dataset root")
    data.add_argument("--data-format", choices=FORMATS, default="cityscapes",
                      help="cityscapes (leftImg8bit/ + gtFine/) or folder (images/ + masks/)")
    data.add_argument("-c", "--classes", type=int, default=19, help="number of classes")
    data.add_argument("-s", "--crop-size", type=int, default=896,
                      help="random training crop (0 = whole images)")
    data.add_argument("--random-scale", type=float, default=0.0,
                      help="random rescaling by a factor in [1 - R, 1 + R] "
                           "before the crop (0 = none)")
    model = arguments.group("network")
    model.add_argument("--arch", choices=("drn_d_22",), default="drn_d_22", help="the network")
    model.add_argument("--width", type=float, default=1.0, help="channel multiplier (1 = DRN-D-22)")
    model.add_argument("--dropout-at", choices=DROPOUT_PLACES[:2], default="stages",
                       help="after the residual stages 3-6 (the original) or only "
                            "before the classifier")
    model.add_argument("--dropout-type", choices=tuple(DROPOUT_TYPES), default="element",
                       help="element-wise (the original's F.dropout) or channel (whole feature "
                            "maps, nn.Dropout2d)")
    model.add_argument("--lr-mode", choices=("step", "poly", "cosine"), default="step",
                       help="learning rate schedule (cosine: after --warmup-epochs)")
    model.add_argument("--warmup-epochs", type=int, default=0,
                       help="cosine mode: epochs of linear warm-up")
    model.add_argument("--step", type=int, default=100,
                       help="step mode: x0.1 every this many epochs")
    weak = arguments.group("weak annotator (Belharbi et al. 2020)")
    weak.add_argument("--pseudo-labels", choices=PSEUDO_MODES, default=None,
                      help="knn: before each cycle trains, the unlabeled images among the "
                           "--pseudo-k nearest of each labeled image (the last model's features) "
                           "train on its predicted masks; they stay unlabeled (default: off)")
    weak.add_argument("--pseudo-k", type=int, default=5, help="neighbours per labeled image")
    weak.add_argument("--pseudo-weight", type=float, default=0.1,
                      help="a pseudo-labeled pixel's weight in the loss (a labeled one: 1)")
    regions = arguments.group("superpixels")
    regions.add_argument("--superpixels-per-image", type=int, default=100,
                         help="watershed markers (SLIC segments) per image")
    regions.add_argument("--superpixel-method", choices=("watershed", "slic"), default="watershed",
                         help="how region maps are made")
    regions.add_argument("--superpixels-per-cycle", type=flags.budget, default=4755, recorded=False,
                         help="superpixel strategies: superpixels selected per cycle")
    regions.add_argument("--region-label", choices=("exact", "dominant"), default="exact",
                         help="the simulated annotator of a chosen superpixel: exact (instances "
                              "whole, stuff pixels) or dominant (its majority class, one click)")
    regions.add_argument("--cache-dir", default=None, recorded=False,
                         help="where region maps are kept between runs (default: the user's "
                              "cache, ~/.cache/active-learning-cv/segmentation/<dataset>/"
                              "superpixels; $XDG_CACHE_HOME moves it)")


COMMAND = cli.TaskCommand(
    name="segmentation", description=__doc__.split("\n\n")[0], output_kind=PIXEL_DISTRIBUTIONS,
    unit_classes=(ImageUnits, SuperpixelUnits), add_arguments=add_arguments, build=build,
    # As the original: dropout (p = 0.5) only in the network of MC-dropout strategies (its DRNSeg
    # gets add_dropout=args.mc_dropout); random and loss prediction train DRN-D-22 without.
    check=check, reference=REFERENCE, presets=PRESETS, aliases=ALIASES, dropout=0.0,
    mc_dropout=0.5, backbone_aliases=(), published=PUBLISHED, budget_flag=budget_flag,
    after_labeling="label the selected images (or superpixels: regions/cycle_00.csv), add them to "
                   "the labeled data, and run again",
    build_round=build_round, label_kind="mask")


# get_args_parser() -> ArgumentParser, parse_args(argv) -> Namespace, main(argv) -> run folder
get_args_parser, parse_args, main = cli.entry_points(COMMAND)


if __name__ == "__main__":
    cli.run_script(main)   # under torchrun: ends without the teardown
