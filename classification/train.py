"""Simulate active learning cycles for image classification.

    cd classification && python train.py --dataset cifar10 --data-dir ../data --strategy loss_prediction
    python -m classification.train --preset fmnist-demo

Every strategy of the registry is available through ``--strategy``; the original project's flags
are kept as aliases (``--use_loss_prediction_al`` / ``--use_active_learning`` -> loss_prediction,
``--use_discriminative_al`` -> discriminative, ``--mc-dropout`` -> mc_entropy, none -> random).
Defaults are the Learning Loss CIFAR-10 protocol (Yoo & Kweon 2019): 10 cycles, 1,000 initial and
1,000 more per cycle, a random subset of 10,000 scored per cycle, 200 epochs of SGD (lr 0.1,
momentum 0.9, weight decay 5e-4, x0.1 at epoch 160), batch 128, lambda 1, margin 1, features
detached from the loss module at epoch 120.

Rank mode (your own images): ``--dataset image_folder --data-dir D --unlabeled-dir U`` trains once
on every labeled image of ``D/train/<class>/``, evaluates on ``D/test/<class>/``, scores every image
under ``U`` and writes the ``--images-per-cycle`` most useful ones, best first, to
``<output-dir>/classification/image_folder_rank/<strategy>/seed<k>/priorities/cycle_00.csv``.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

if __package__ in (None, ""):  # `python train.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "classification"

import torch

from active_learning.loop import LoopConfig, RunMismatchError, run_active_learning
from active_learning.strategies import MC_PROBS, get_strategy, list_strategies

from .data import (DATASETS, ClassificationData, DataError, load_classification_data,
                   load_unlabeled_folder, with_unlabeled)
from .task import ClassificationTask

# Presets set defaults; flags given on the command line still win.
PRESETS: dict[str, dict] = {
    # Learning Loss for Active Learning, CIFAR-10 (the parser's own defaults).
    "cifar10": dict(dataset="cifar10"),
    # The README demo: a narrow ResNet-18 on Fashion-MNIST, a few minutes on 2 CPU cores.
    "fmnist-demo": dict(dataset="fashion_mnist", strategy="loss_prediction", width=8, cycles=10,
                        initial_size=100, images_per_cycle=100, subset=1000, epochs=20, batch_size=32,
                        lr=0.05, milestones=[16], detach_epoch=12, eval_batch_size=1000,
                        weight_decay=5e-4),
    # The same CPU protocol for strategy comparisons (bench/): 100 + 100 per cycle up to 1,100 labels.
    "fmnist-cpu": dict(dataset="fashion_mnist", width=8, cycles=11, initial_size=100,
                       images_per_cycle=100, subset=1000, epochs=20, batch_size=32, lr=0.05,
                       milestones=[16], detach_epoch=12, eval_batch_size=1000, dropout=0.3),
}

# Rank mode (--unlabeled-dir): one cycle, every unlabeled image scored, the labeled set is all of
# train/. Applied as defaults over a preset's, so explicit flags still win (and are checked).
RANK_DEFAULTS = dict(cycles=1, subset=0, initial_size=None)
AFTER_LABELING = "label the selected images, move them into train/<class>/, and run again"

ALIASES = {  # original flag -> strategy it selects
    "use_loss_prediction_al": "loss_prediction",
    "use_active_learning": "loss_prediction",
    "use_discriminative_al": "discriminative",
}


def str2bool(text: str | bool) -> bool:
    """``--flag``, ``--flag=True`` and ``--flag=False`` (the original turned ``=False`` on)."""
    if isinstance(text, bool):
        return text
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {text!r}")


def _bool_flag(parser: argparse.ArgumentParser, *names: str, help: str) -> None:
    parser.add_argument(*names, type=str2bool, nargs="?", const=True, default=False, metavar="BOOL",
                        help=help)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None: those flags explain their default in their help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_HelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="a named protocol; explicit flags override its values")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="cifar10")
    data.add_argument("--data-dir", default="data", help="dataset root (layout: classification/README.md)")
    _bool_flag(data, "--download", help="fetch CIFAR-10 / Fashion-MNIST with torchvision if missing")
    data.add_argument("--image-size", type=int, default=32, help="image_folder: resize to this side")
    data.add_argument("--csv-names", choices=("filename", "relpath"), default="filename",
                      help="names written in the priority CSV (image_folder)")
    data.add_argument("--unlabeled-dir", default=None, metavar="DIR",
                      help="rank mode (needs --dataset image_folder): train once on every labeled "
                           "image in <data-dir>/train, score every image under DIR (any depth) and "
                           "write the --images-per-cycle best to priorities/cycle_00.csv")

    strategy = parser.add_argument_group("strategy")
    strategy.add_argument("--strategy", default=None,
                          help=f"one of: {', '.join(list_strategies())} (default: random)")
    for flag, target in ALIASES.items():
        _bool_flag(strategy, f"--{flag}", help=f"original flag: --strategy {target}")
    _bool_flag(strategy, "--mc-dropout", help="original flag: --strategy mc_entropy")
    _bool_flag(strategy, "--use-variance-as-uncertainty",
               help="with --mc-dropout: --strategy mc_variance")
    strategy.add_argument("--mc-samples", type=int, default=20, help="MC-dropout passes T")
    strategy.add_argument("--dropout", type=float, default=0.0,
                          help="dropout before the classifier (MC-dropout strategies need > 0)")
    strategy.add_argument("--lamda", "--lambda", dest="lamda", type=float, default=1.0,
                          help="weight of the loss-prediction ranking loss")
    strategy.add_argument("--margin", type=float, default=1.0, help="ranking loss margin")
    strategy.add_argument("--detach-epoch", type=int, default=None,
                          help="stop the ranking loss's gradient into the backbone from this epoch "
                               "(default: 60%% of the epochs)")
    strategy.add_argument("--loss-width", type=int, default=128, help="loss module hidden width")
    strategy.add_argument("--dal-max-epochs", type=int, default=None, metavar="N",
                          help="discriminative: train each sub-query's discriminator for at most N "
                               "epochs (default: 500, the paper's; it stops earlier at 98%% accuracy)")
    strategy.add_argument("--dal-sub-queries", type=int, default=None, metavar="K",
                          help="discriminative: spend each cycle's budget in K rounds, each with a "
                               "fresh discriminator (default: 10)")

    cycles = parser.add_argument_group("cycles")
    cycles.add_argument("--cycles", type=int, default=10, help="labeling cycles to simulate (exactly 1 with --unlabeled-dir)")
    cycles.add_argument("--initial-size", "--initial-labeled", dest="initial_size", type=int, default=1000,
                        help="random initial labeled set (with --unlabeled-dir: all of train/, not given)")
    cycles.add_argument("--images-per-cycle", "--budget", dest="images_per_cycle", type=int, default=1000,
                        help="items selected per cycle (with --unlabeled-dir: rows of the CSV)")
    cycles.add_argument("--subset", type=int, default=None,
                        help="unlabeled items scored per cycle (default: 10 x --images-per-cycle, "
                             "10,000 in Learning Loss; 0 = all; 0 with --unlabeled-dir)")

    training = parser.add_argument_group("training")
    training.add_argument("--width", type=int, default=64, help="ResNet-18 width (64 = reference)")
    training.add_argument("--weights", default=None, help="initial weights: a local state_dict file")
    training.add_argument("--epochs", type=int, default=200)
    training.add_argument("--batch-size", type=int, default=128)
    training.add_argument("--eval-batch-size", type=int, default=256)
    training.add_argument("--lr", type=float, default=0.1)
    training.add_argument("--momentum", type=float, default=0.9)
    training.add_argument("--weight-decay", type=float, default=5e-4)
    training.add_argument("--milestones", type=int, nargs="*", default=None,
                          help="epochs at which the learning rate drops x0.1 (default: 80%% of "
                               "--epochs, i.e. 160 of 200 as in Learning Loss)")

    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    run.add_argument("--threads", type=int, default=0,
                     help="torch CPU threads (0 = torch's default); small models on a small or "
                          "busy CPU run faster with 1")
    run.add_argument("--output-dir", default="runs",
                     help="runs go to <output-dir>/classification/<dataset>/<strategy>/seed<k> "
                          "(rank mode: .../<dataset>_rank/...)")
    _bool_flag(run, "--save-checkpoints", help="save the model of every cycle")
    _bool_flag(run, "--no-progress", help="no progress bars")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse with the preset's values as defaults, then resolve the strategy."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    defaults = dict(PRESETS[args.preset]) if args.preset else {}
    if args.unlabeled_dir is not None:
        defaults.update(RANK_DEFAULTS)
    if defaults:
        parser.set_defaults(**defaults)
        args = parser.parse_args(argv)
    args.strategy = resolve_strategy(args, parser)
    if args.unlabeled_dir is not None:
        check_rank_flags(args, parser)
    # Resolved here so that args.json records the values the run used.
    if args.milestones is None:
        args.milestones = [max(1, int(0.8 * args.epochs))]
    if args.subset is None:
        args.subset = 10 * args.images_per_cycle
    return args


def check_rank_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Flags that make no sense when ranking one's own unlabeled images."""
    if args.dataset != "image_folder":
        parser.error(f"--unlabeled-dir needs --dataset image_folder (labeled images in "
                     f"<data-dir>/train/<class>/ and <data-dir>/test/<class>/), got --dataset {args.dataset}")
    if args.cycles != 1:
        parser.error(f"--unlabeled-dir runs exactly one cycle, got --cycles {args.cycles}: "
                     f"{AFTER_LABELING}")
    if args.initial_size is not None:
        parser.error("--initial-size does not apply with --unlabeled-dir: every labeled image in "
                     "<data-dir>/train/ is used")


def resolve_strategy(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """One strategy from ``--strategy`` and the original flags; contradictions are errors."""
    requested = {f"--{flag}": target for flag, target in ALIASES.items() if getattr(args, flag)}
    if args.mc_dropout:
        requested["--mc-dropout"] = "mc_variance" if args.use_variance_as_uncertainty else "mc_entropy"
    elif args.use_variance_as_uncertainty:
        parser.error("--use-variance-as-uncertainty needs --mc-dropout")
    if args.strategy is not None:
        try:
            get_strategy(args.strategy)
        except ValueError as error:
            parser.error(str(error))
        requested["--strategy"] = args.strategy
    chosen = set(requested.values())
    if len(chosen) > 1:
        parser.error("incompatible flags: " + ", ".join(f"{flag} ({target})"
                                                         for flag, target in requested.items()))
    return chosen.pop() if chosen else "random"


def check_args(args: argparse.Namespace, pool_size: int) -> None:
    """Bad combinations end here, with one message, before anything is written."""
    strategy = get_strategy(args.strategy)
    checks = [
        (args.width >= 1, f"--width must be >= 1, got {args.width}"),
        (args.image_size >= 1, f"--image-size must be >= 1, got {args.image_size}"),
        (0.0 <= args.dropout < 1.0, f"--dropout must be in [0, 1), got {args.dropout}"),
        (args.lr > 0, f"--lr must be > 0, got {args.lr}"),
        (args.momentum >= 0, f"--momentum must be >= 0, got {args.momentum}"),
        (args.weight_decay >= 0, f"--weight-decay must be >= 0, got {args.weight_decay}"),
        (all(m >= 1 for m in args.milestones), f"--milestones must be epochs >= 1, got {args.milestones}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    if MC_PROBS in strategy.needs and args.dropout <= 0:
        raise ValueError(f"--strategy {args.strategy} samples MC dropout: give --dropout > 0 "
                         "(e.g. --dropout 0.3)")
    if args.initial_size >= pool_size:
        raise ValueError(f"--initial-size {args.initial_size} leaves nothing to select from a pool "
                         f"of {pool_size} images")
    unlabeled = pool_size - args.initial_size
    if args.images_per_cycle > unlabeled:
        raise ValueError(f"--images-per-cycle {args.images_per_cycle} is larger than the unlabeled "
                         f"pool ({unlabeled} = {pool_size} images - {args.initial_size} initial)")


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return name


def loop_config(args: argparse.Namespace, device: str) -> LoopConfig:
    dal = {name: value for name, value in (("dal_max_epochs", args.dal_max_epochs),
                                           ("dal_sub_queries", args.dal_sub_queries)) if value is not None}
    if dal and args.strategy != "discriminative":
        # Not an error, like --mc-samples with entropy: a grid passes one set of flags to every
        # strategy. Not recorded either, so that resuming without them is not refused.
        flags = " and ".join("--" + name.replace("_", "-") for name in dal)
        warnings.warn(f"{flags} only apply to --strategy discriminative; ignored for {args.strategy}",
                      UserWarning, stacklevel=2)
        dal = {}
    return LoopConfig(
        strategy=args.strategy, cycles=args.cycles, initial_size=args.initial_size,
        budget=args.images_per_cycle, subset_size=args.subset, epochs=args.epochs,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, lamda=args.lamda,
        margin=args.margin, detach_epoch=args.detach_epoch, loss_width=args.loss_width,
        mc_samples=args.mc_samples, seed=args.seed, device=device, num_workers=args.workers,
        save_checkpoints=args.save_checkpoints, progress=not args.no_progress, **dal)


def task_record(args: argparse.Namespace) -> dict:
    """Task arguments that define the run (a resume with other values is refused)."""
    record = {key: getattr(args, key) for key in
              ("dataset", "image_size", "csv_names", "width", "dropout", "weights", "lr", "momentum",
               "weight_decay", "milestones")}
    if args.unlabeled_dir is not None:  # rank runs never resume: these only document the run
        record.update(data_dir=str(Path(args.data_dir).resolve()),
                      unlabeled_dir=str(Path(args.unlabeled_dir).resolve()))
    return record


def add_unlabeled(args: argparse.Namespace, data: ClassificationData) -> tuple[ClassificationData, np.ndarray]:
    """Rank mode: append the unlabeled images to ``data``; returns it and the labeled indices.

    Sets ``args.initial_size`` to the number of labeled images and clips ``args.images_per_cycle``
    (with a warning) to the number of unlabeled ones.
    """
    unlabeled, names = load_unlabeled_folder(args.unlabeled_dir, image_size=args.image_size,
                                             csv_names=args.csv_names)
    n_labeled = len(data.train)
    data = with_unlabeled(data, unlabeled, names)
    args.initial_size = n_labeled
    if args.images_per_cycle > len(unlabeled):
        warnings.warn(f"--images-per-cycle {args.images_per_cycle} is larger than the {len(unlabeled)} "
                      f"unlabeled images; the CSV ranks all {len(unlabeled)}", UserWarning, stacklevel=2)
        args.images_per_cycle = len(unlabeled)
    return data, np.arange(n_labeled)


def run_folder(args: argparse.Namespace) -> Path:
    dataset = f"{args.dataset}_rank" if args.unlabeled_dir is not None else args.dataset
    return Path(args.output_dir) / "classification" / dataset / args.strategy / f"seed{args.seed}"


def main(argv: Sequence[str] | None = None) -> Path:
    """Run (or resume) the simulation, or rank the unlabeled images; returns the run folder."""
    args = parse_args(argv)
    rank = args.unlabeled_dir is not None
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        initial_labeled = None
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            data = load_classification_data(args.dataset, args.data_dir, download=args.download,
                                            csv_names=args.csv_names, image_size=args.image_size)
            if rank:
                data, initial_labeled = add_unlabeled(args, data)
        check_args(args, len(data.train))
        config = loop_config(args, device)
        config.validate(len(data.train))
        task = ClassificationTask(data, width=args.width, dropout=args.dropout, lr=args.lr,
                                  momentum=args.momentum, weight_decay=args.weight_decay,
                                  milestones=args.milestones, weights_path=args.weights)
        if args.weights:
            task.build_model()  # a missing or mismatched weights file fails now, not after a cycle
    except (DataError, ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    run_dir = run_folder(args)
    if rank:
        n_unlabeled = len(data.train) - args.initial_size
        print(f"{args.dataset}: {args.initial_size} labeled training / {len(data.test)} test images, "
              f"{n_unlabeled} unlabeled images to rank, strategy {args.strategy} on {device} -> {run_dir}")
        if (run_dir / "pool.npz").exists():
            # A rank run is one cycle from the labels as they are now: never resume an older one
            # (restart=True below); the old ranking stays until the new one is written.
            print(f"replacing the previous ranking in {run_dir}")
    else:
        print(f"{args.dataset}: {len(data.train)} training / {len(data.test)} test images, "
              f"strategy {args.strategy}, {args.cycles} cycles on {device} -> {run_dir}")
    try:
        run_active_learning(task, config, run_dir, extra_args=task_record(args),
                            initial_labeled=initial_labeled, restart=rank)
    except (RunMismatchError, DataError, ValueError) as error:
        # a run made with other arguments, a damaged run folder, an image unreadable past its header
        sys.exit(f"error: {error}")
    if rank:
        print(f"priority CSV:   {run_dir / 'priorities' / 'cycle_00.csv'} (name,entropy_value: the "
              f"{args.images_per_cycle} of {n_unlabeled} unlabeled images to label first, best first)")
        print(f"next:           {AFTER_LABELING}")
        print(f"metrics:        {run_dir / 'metrics.csv'}")
        return run_dir
    print(f"metrics:        {run_dir / 'metrics.csv'}")
    print(f"priority CSVs:  {run_dir / 'priorities'}/cycle_XX.csv (name,entropy_value)")
    print(f"learning curve: {run_dir / 'learning_curve.png'}")
    return run_dir


if __name__ == "__main__":
    main()
