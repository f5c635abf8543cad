"""The command line of every task: one runner, one flag vocabulary, one error boundary.

A task's ``train.py`` describes itself in a :class:`TaskCommand` (its dataset and model flags,
its reference protocol, presets, the original project's flag spellings, and a ``build``
function that returns its adapter) and calls :func:`run`. Everything else is here, once:

* the shared flags (strategy, cycles, training, model weights, run), documented once in
  ``docs/design.md``: ``--weights FILE`` is a whole model, ``--weights-backbone FILE`` (alias
  ``--pretrained`` where a task offers it) initialises the backbone, ``--resume`` is reserved
  (a run resumes by itself when its command runs again), ``--milestones`` takes epochs
  separated by spaces or commas;
* presets (``--preset NAME`` sets defaults; explicit flags still win), one strategy from
  ``--strategy`` and the original flags, the dropout that MC-dropout strategies need;
* rank mode (``--unlabeled-dir``): one cycle, every labeled item as the initial set, the
  budget in units of the task, ``--budget all`` for a full ranking;
* the run record (``args.json``'s ``task``) derived from the task's own flags;
* the boundary: a :class:`~active_learning.errors.UserError` is one ``error:`` line and exit 2,
  Ctrl-C one line and exit 130, anything else a bug that keeps its traceback (exit 1).
  Messages go through the ``active_learning`` logger, which :func:`run` sends to stdout.

Boolean flags accept ``--flag``, ``--flag=True`` and ``--flag=False`` (the original project's
``type=bool`` turned ``--flag=False`` on).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from active_learning.console import cli_errors, configure_logging
from active_learning.distributed import (
    DEFAULT_TIMEOUT_MINUTES,
    finish,
    init_from_environment,
    is_main_process,
    resolve_device,
)
from active_learning.errors import ConfigError
from active_learning.files.pretrained import PublishedCheckpoint
from active_learning.flags import (
    ALL,
    HelpFormatter,
    RecordingGroup,
    TaskArguments,
    add_with_spellings,
    budget,
    epochs_list,
    flag_name,
    require,
    snake_spellings,
    str2bool,
)
from active_learning.loop.compatibility import strategies_for, strategy_refusal
from active_learning.loop.config import LoopConfig
from active_learning.loop.holdout import hold_out
from active_learning.loop.runner import draw_initial_units
from active_learning.loop.units import SelectionUnits

if TYPE_CHECKING:
    from active_learning.labels.kinds import LabelKind
from active_learning.strategies import MC_PROBS, get_strategy, list_strategies
from active_learning.strategies.mixes import DIVERSITIES, DIVERSITY_FACTOR, mix_label
from active_learning.strategies.options import StrategyOption

logger = logging.getLogger("active_learning")

# Original flag -> the strategy it selects (every task); tasks add their own (e.g. superpixels).
STRATEGY_ALIASES = {
    "use_loss_prediction_al": "loss_prediction",
    "use_active_learning": "loss_prediction",
    "use_discriminative_al": "discriminative",
}

# The Learning Loss protocol (Yoo & Kweon 2019, CIFAR-10); tasks pass their own reference values.
# A strategy's own settings (Learning Loss's lamda, DAL's sub-queries) are its declared options
# (Strategy.options): a task's reference values and presets set their defaults by the same keys.
PROTOCOL_DEFAULTS: dict[str, Any] = dict(
    cycles=10, initial_size=1000, images_per_cycle=1000, subset_factor=10, epochs=200,
    batch_size=128, eval_batch_size=256, lr=0.1, momentum=0.9, weight_decay=5e-4,
    mc_samples=20, reduction="mean")




@dataclass
class BuiltTask:
    """What a task's ``build`` returns: the adapter over its pool and what the runner reports.

    Attributes:
        adapter: the task adapter (``active_learning.adapter.TaskAdapter``).
        dataset: the dataset's name in the run folder's path.
        summary: one line about the data (sizes, classes), logged before the run.
        n_labeled: rank mode: the pool's first ``n_labeled`` items are labeled, the rest are
            the unlabeled images to rank. Ignored in a simulation.
        record: task facts for ``args.json`` beyond its flags (e.g. the class names).
        outputs: lines naming the task's own files, logged after the run; ``{run_dir}`` in a
            line is replaced by the run folder.
        predict: round mode: ``(model, name) -> files.proposals.ImagePrediction | None``, the
            trained model's output on the pool image ``name`` (boxes, mask, keypoints, class),
            in pixels of the image file: the proposals' pre-annotations and what the report
            draws. ``rounds.model_predictions`` gives it the round's model (its checkpoint,
            loaded once, in eval mode on the run's device). None: no pre-annotations.
        keypoint_names: pose: the joints' names, in the model's order (Label Studio's
            KeyPointLabels).
        skeleton: pose: 0-based joint pairs joined by a limb (the report's drawing).
    """

    adapter: Any
    dataset: str
    summary: str
    n_labeled: int = 0
    record: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    predict: Callable[[Any, str], Any] | None = None
    keypoint_names: Sequence[str] = ()
    skeleton: Sequence[tuple[int, int]] = ()


@dataclass(frozen=True)
class TaskCommand:
    """A task's command line: what its ``train.py`` declares; :func:`run` does the rest.

    Attributes:
        name: the task folder; runs go to ``<output-dir>/<name>/<dataset>/<strategy>/seed<k>``.
        description: the first line of ``--help``.
        output_kind: what the adapter's ``probabilities`` returns (``strategies.OUTPUT_KINDS``).
        unit_classes: the unit classes the task can select with (superpixel strategies need
            region units): ``--help`` lists, and the runner accepts, the strategies they serve.
        add_arguments: adds the task's own flags through a :class:`TaskArguments`; each flag
            is part of the run's identity (``args.json``) unless added with ``recorded=False``.
        build: ``args -> BuiltTask``; reads the data (and ``args.unlabeled_dir`` in rank mode).
        reference: the task's reference values of ``PROTOCOL_DEFAULTS`` keys and of its strategies'
            option keys (segmentation's ``lamda=0.01``).
        presets: named protocols (``--preset NAME``), each a dict of flag defaults.
        aliases: original flags -> the strategy each selects (added to ``STRATEGY_ALIASES``).
        dropout: the ``--dropout`` default of strategies without MC dropout.
        mc_dropout: the ``--dropout`` default of MC-dropout strategies.
        backbone_aliases: other spellings of ``--weights-backbone``; None: the task offers no
            backbone initialisation (and no ``--from-scratch``).
        published: the weights files the task's reference projects publish, which
            ``--weights`` and ``--weights-backbone`` accept by file name (from torch.hub's
            cache, downloaded there when missing).
        budget_flag: ``args -> the dest of the flag that counts the budget`` (superpixels in
            segmentation's superpixel mode).
        check: ``args -> None``: the task's own argument checks (ConfigError), before any data.
        loop_fields: ``args -> LoopConfig fields`` of the task's own flags (pose's
            ``unit_reduction``).
        after_labeling: what rank mode tells the user to do with the CSV.
        build_round: ``train.py round``: ``(args, labels, candidates) -> BuiltTask`` whose pool
            is the labeled images (``labels.Labels.targets``, in order) followed by the
            candidate images (``args.round_folder`` is the round's folder, for files the task
            derives from the labels). None: the task has no round mode yet.
        label_kind: what the task's labels are, for ``train.py round``: a built-in kind
            (``class``, ``boxes``, ``mask``, ``keypoints``) or a ``labels.kinds.LabelKind`` of
            the task's own; the export is read, and the proposals' pre-annotations written, as
            this kind (``labels/kinds.py``).
    """

    name: str
    description: str
    output_kind: str
    add_arguments: Callable[[TaskArguments], None]
    build: Callable[[argparse.Namespace], BuiltTask]
    unit_classes: tuple[type[SelectionUnits], ...] = (SelectionUnits,)
    reference: Mapping[str, Any] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    dropout: float = 0.0
    mc_dropout: float = 0.1
    backbone_aliases: tuple[str, ...] | None = None
    published: tuple[PublishedCheckpoint, ...] = ()
    budget_flag: Callable[[argparse.Namespace], str] = lambda args: "images_per_cycle"
    check: Callable[[argparse.Namespace], None] | None = None
    loop_fields: Callable[[argparse.Namespace], dict[str, Any]] = lambda args: {}
    after_labeling: str = "label the selected images, add them to the labeled data, and run again"
    build_round: Callable[[argparse.Namespace, Any, list[str]], BuiltTask] | None = None
    label_kind: str | LabelKind | None = None

    @property
    def strategy_aliases(self) -> dict[str, str]:
        return {**STRATEGY_ALIASES, **self.aliases}

    def strategies(self) -> list[str]:
        """The registered strategies this task runs: they fit its outputs and some unit class."""
        return strategies_for(self.output_kind, *self.unit_classes)

    def refusal(self, strategy: str) -> str | None:
        """Why this task cannot run ``strategy``, or None."""
        return strategy_refusal(get_strategy(strategy), self.output_kind, *self.unit_classes)


# ---- the parser ----------------------------------------------------------------------------


def build_parser(command: TaskCommand, round_mode: bool = False) -> argparse.ArgumentParser:
    """The shared flags, then the task's own (``command.add_arguments``); with ``round_mode``,
    ``train.py round``'s flags too."""
    values = {**PROTOCOL_DEFAULTS, **command.reference}
    parser = argparse.ArgumentParser(description=command.description, formatter_class=HelpFormatter,
                                     allow_abbrev=False)
    if command.presets:
        parser.add_argument("--preset", choices=sorted(command.presets), default=None,
                            help="a named protocol; explicit flags override its values")
    _add_strategy_flags(parser.add_argument_group("strategy"), command, values)
    _add_option_flags(parser, values)
    _add_cycle_flags(parser.add_argument_group("cycles"), values)
    arguments = TaskArguments(parser)
    _add_training_flags(arguments.group("training"), values)
    _add_model_flags(arguments.group("model"), command)
    _add_run_flags(parser.add_argument_group("run"), command.name)
    command.add_arguments(arguments)
    if round_mode:
        from active_learning.rounds import add_round_flags

        add_round_flags(parser)
        parser.prog = f"{parser.prog} round"
    # Reference values without a flag of their own (presets may set them too).
    parser.set_defaults(_recorded=tuple(arguments.recorded), subset_factor=values["subset_factor"])
    return parser


def _add(group: Any, *names: str, **options: Any) -> argparse.Action:
    return add_with_spellings(group, names, options)


def _add_strategy_flags(group: Any, command: TaskCommand, values: Mapping[str, Any]) -> None:
    _add(group, "--strategy", default=None,
         help=f"one of: {', '.join(command.strategies())} (default: random)")
    for flag, target in command.strategy_aliases.items():
        # Both spellings: the original project wrote some flags with _, others with -.
        spellings = list(dict.fromkeys((f"--{flag}", f"--{flag.replace('_', '-')}")))
        group.add_argument(*spellings, dest=flag, type=str2bool, nargs="?", const=True,
                           default=False, metavar="BOOL",
                           help=f"original flag: --strategy {target}")
    _add(group, "--mc-dropout", type=str2bool, nargs="?", const=True, default=False, metavar="BOOL",
         help=f"original flag: an MC-dropout strategy (alone: --strategy "
              f"{default_mc_strategy(command)})")
    _add(group, "--use-variance-as-uncertainty", type=str2bool, nargs="?", const=True,
         default=False, metavar="BOOL",
         help="with --mc-dropout: the variance instead of the entropy (mc_variance)")
    _add(group, "--mc-samples", type=int, default=values["mc_samples"], help="MC-dropout passes T")
    _add(group, "--reduction", choices=("mean", "max"), default=values["reduction"],
         help="dense outputs: how per-pixel (per-box) scores become one score per image")
    _add(group, "--diversity", choices=DIVERSITIES, default=None,
         help="mix: after a score strategy, choose among its best candidates by their "
              "embeddings: knearest (skip the nearest neighbours of each pick) or coreset "
              "(k-center weighted by the score)")
    _add(group, "--diversity-factor", type=int, default=None, metavar="F",
         help="mix: the diversity step sees the F x budget best-scored candidates (default: "
              f"{DIVERSITY_FACTOR})")
    _add(group, "--random-fraction", type=float, default=0.0, metavar="F",
         help="mix: draw this share of each cycle's budget uniformly at random (passive "
              "learning), the strategy chooses the rest")


def declared_options() -> dict[str, tuple[StrategyOption, list[str]]]:
    """``{key: (option, the strategies that declare it)}`` of every registered strategy's
    options (``Strategy.options``), in registration order; one key per flag."""
    declared: dict[str, tuple[StrategyOption, list[str]]] = {}
    for name in list_strategies():
        for option in get_strategy(name).options:
            declared.setdefault(option.key, (option, []))[1].append(name)
    return declared


def option_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{key: default}`` of every declared option: ``values`` (a task's reference values,
    its preset) where they name it, else the strategy's declared default."""
    return {key: values.get(key, option.default)
            for key, (option, _) in declared_options().items()}


def _add_option_flags(parser: argparse.ArgumentParser, values: Mapping[str, Any]) -> None:
    """The strategies' options as flags, one group per strategy (generated from the registry).

    Their argparse default is None, so that a flag given can be told from a default
    (``parse_args`` fills in the defaults); the help states the default of this task."""
    defaults = option_defaults(values)
    groups: dict[str, Any] = {}
    for key, (option, readers) in declared_options().items():
        if not option.spellings:
            continue
        if readers[0] not in groups:
            groups[readers[0]] = parser.add_argument_group(f"options of --strategy {readers[0]}")
        text = option.help.format(**defaults)
        if defaults[key] is not None:
            text += f" (default: {defaults[key]})"
        _add(groups[readers[0]], *option.spellings, dest=key, type=option.type, default=None,
             metavar=option.metavar, help=text.replace("%", "%%"))


def _resolve_options(args: argparse.Namespace, values: Mapping[str, Any]) -> None:
    """Record which option flags were given (``args._given_options``), then give every other
    option its default: the preset's or the task's reference value, else the declared one."""
    defaults = option_defaults(values)
    args._given_options = tuple(key for key in defaults if getattr(args, key, None) is not None)
    for key, value in defaults.items():
        if key not in args._given_options:
            setattr(args, key, value)


def _add_cycle_flags(group: Any, values: Mapping[str, Any]) -> None:
    _add(group, "--cycles", type=int, default=values["cycles"],
         help="labeling cycles to simulate (exactly 1 with --unlabeled-dir)")
    _add(group, "--initial-size", "--initial-labeled", dest="initial_size", type=int,
         default=values["initial_size"],
         help="random initial labeled images (with --unlabeled-dir: every labeled image)")
    _add(group, "--images-per-cycle", "--budget", dest="images_per_cycle", type=budget,
         default=values["images_per_cycle"],
         help="units selected per cycle (with --unlabeled-dir: rows of the CSV; 'all' ranks "
              "every unlabeled image)")
    _add(group, "--subset", type=int, default=None,
         help=f"unlabeled units scored per cycle (default: {values['subset_factor']} x the "
              "budget; 0 = all; 0 with --unlabeled-dir)")


def _add_training_flags(group: RecordingGroup, values: Mapping[str, Any]) -> None:
    group.add_argument("--epochs", type=int, default=values["epochs"], help="epochs per cycle",
                       recorded=False)
    group.add_argument("--batch-size", type=int, default=values["batch_size"],
                       help="training batch size", recorded=False)
    group.add_argument("--eval-batch-size", type=int, default=values["eval_batch_size"],
                       help="batch size of evaluation and scoring", recorded=False)
    group.add_argument("--lr", type=float, default=values["lr"], help="initial learning rate")
    group.add_argument("--momentum", type=float, default=values["momentum"],
                       help="momentum (SGD)")
    group.add_argument("--weight-decay", type=float, default=values["weight_decay"],
                       help="weight decay")


WEIGHTS_FORMS = ("a local file, a torchvision weights name (VGG16_Weights.IMAGENET1K_FEATURES), "
                 "timm:<name> (timm:hrnet_w32.ms_in1k)")


def _add_model_flags(group: RecordingGroup, command: TaskCommand) -> None:
    published = ", ".join(checkpoint.filename for checkpoint in command.published)
    forms = WEIGHTS_FORMS + (f" or a published file ({published})" if published else "")
    group.add_argument("--weights", default=None, metavar="WEIGHTS",
                       help=f"initial weights of the whole model: {forms}")
    if command.backbone_aliases is not None:
        group.add_argument("--weights-backbone", *command.backbone_aliases, dest="weights_backbone",
                           default=None, metavar="WEIGHTS",
                           help=f"initial weights of the backbone (e.g. ImageNet): {forms}")
        group.add_argument("--from-scratch", action="store_true", recorded=False,
                           help="train from random weights: drops the protocol's default "
                                "--weights-backbone (refused with an explicit one)")
    group.add_argument("--dropout", type=float, default=None,
                       help=f"dropout p (default: {command.dropout}; MC-dropout strategies: "
                            f"{command.mc_dropout})")


def _add_run_flags(group: Any, task: str) -> None:
    _add(group, "--seed", type=int, default=0,
         help="seeds the initial set, the model and every choice")
    _add(group, "--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    _add(group, "--workers", "--num-workers", "-j", dest="workers", type=int, default=0,
         help="data loader worker processes")
    _add(group, "--amp", nargs="?", const="bf16", choices=("bf16", "fp16"), default=None,
         help="mixed precision for training, evaluation and scoring: bf16 (the default of a "
              "bare --amp; CPUs and recent GPUs) or fp16 (with loss scaling); scores and "
              "metrics stay fp32")
    _add(group, "--channels-last", type=str2bool, nargs="?", const=True, default=False,
         metavar="BOOL", help="channels-last (NHWC) memory format for the model and its images: "
                              "faster convolutions with --amp on GPUs, and on CPUs for narrow "
                              "models")
    _add(group, "--dist-timeout", type=float, default=DEFAULT_TIMEOUT_MINUTES, metavar="MINUTES",
         help="under torchrun: how long a process waits for the others in a collective (some "
              "steps run on rank 0 alone, e.g. opening a run of millions of images)")
    _add(group, "--threads", type=int, default=0,
         help="torch CPU threads (0 = torch's default); small models on a small or busy CPU run "
              "faster with 1")
    _add(group, "--output-dir", default="runs",
         help=f"runs go to <output-dir>/{task}/<dataset>/<strategy>/seed<k> "
              "(rank mode: .../<dataset>_rank/...)")
    _add(group, "--unlabeled-dir", default=None, metavar="DIR",
         help="rank mode: train once on every labeled image, score every image under DIR (any "
              "depth) and write the --images-per-cycle best to priorities/cycle_00.csv")
    _add(group, "--output_superannotate_csv_file", "--output-superannotate-csv-file",
         dest="superannotate_csv", default=None, metavar="PATH",
         help="also copy the last cycle's priority CSV to PATH (SuperAnnotate's import)")
    _add(group, "--save-checkpoints", type=str2bool, nargs="?", const=True, default=False,
         metavar="BOOL",
         help="save the model of every cycle, and the training state every --checkpoint-every "
              "epochs so an interrupted cycle resumes where it stopped")
    _add(group, "--checkpoint-every", type=int, default=0, metavar="N",
         help="with --save-checkpoints: epochs between in-cycle checkpoints (0 = a tenth of "
              "--epochs)")
    _add(group, "--no-progress", type=str2bool, nargs="?", const=True, default=False,
         metavar="BOOL", help="no progress bars")
    _add(group, "--no-report-map", type=str2bool, nargs="?", const=True, default=False,
         metavar="BOOL",
         help="no t-SNE map or class histogram in the report: skips each cycle's embedding "
              "pass over a sample of about a thousand images (embeddings/cycle_XX.npz)")
    _add(group, "--allow-new-images", type=str2bool, nargs="?", const=True, default=False,
         metavar="BOOL",
         help="resume a run on a dataset that gained images since: they join the pool "
              "unlabeled, the labels stay on the same images (without it a changed dataset is "
              "refused)")
    _add(group, "--resume", default=None, metavar="ARG",
         help="not needed: a run resumes by itself when the same command runs again")


# ---- parsing -------------------------------------------------------------------------------


def parse_args(command: TaskCommand, argv: Sequence[str] | None = None,
               round_mode: bool = False) -> argparse.Namespace:
    """Parse with the preset's (and rank mode's) values as defaults and resolve the derived
    flags: one strategy, its dropout, the scored subset, the task's own (``command.check``).

    A flag argparse cannot read exits 2 with its usage line; an impossible value or combination
    raises ConfigError (``run`` prints it as one ``error:`` line and exits 2)."""
    parser = build_parser(command, round_mode)
    args = parser.parse_args(argv)
    args.round = round_mode
    defaults = dict(command.presets[args.preset]) if getattr(args, "preset", None) else {}
    if round_mode:   # one cycle on every labeled image; the budget is --budget
        defaults.update(cycles=1, subset=0, initial_size=None)
    elif args.unlabeled_dir is not None:
        # Rank mode: one cycle, every unlabeled image scored and ranked (an explicit budget
        # larger than the folder is refused, as in a simulation), every labeled image used.
        defaults.update(cycles=1, subset=0, initial_size=None)
        for dest in ("images_per_cycle", "superpixels_per_cycle"):
            if parser.get_default(dest) is not None and dest not in defaults:
                defaults[dest] = ALL
    # A strategy's options take their defaults after parsing (a preset's value is a default,
    # not a flag given: a preset may set them for every strategy).
    options = declared_options()
    flag_defaults = {key: value for key, value in defaults.items() if key not in options}
    if flag_defaults:
        parser.set_defaults(**flag_defaults)
        args = parser.parse_args(argv)
        args.round = round_mode
    _resolve_options(args, {**command.reference, **defaults})
    args.strategy = resolve_strategy(args, parser, command)
    if getattr(args, "from_scratch", False) or getattr(args, "weights", None):
        _drop_default_backbone(args, command, sys.argv[1:] if argv is None else argv)
    _resolve(args, command)
    return args


def _drop_default_backbone(args: argparse.Namespace, command: TaskCommand,
                           argv: Sequence[str]) -> None:
    """No default backbone weights with ``--from-scratch``, nor under ``--weights`` (the whole
    model replaces them: a missing default backbone file must not stop that run). A backbone
    the user names is kept, and refused next to ``--from-scratch``."""
    names = ["--weights-backbone", *(command.backbone_aliases or ())]
    spellings = {*names, *snake_spellings(names)}
    named = [token.split("=", 1)[0] for token in argv if token.split("=", 1)[0] in spellings]
    if named and getattr(args, "from_scratch", False):
        raise ConfigError(f"--from-scratch trains from random weights: it cannot be combined "
                          f"with {named[0]}")
    if not named:
        args.weights_backbone = None


def _resolve(args: argparse.Namespace, command: TaskCommand) -> None:
    if args.resume is not None:
        raise ConfigError("--resume is not needed: a run resumes by itself when the same command "
                          "runs again (same --output-dir); initial weights are --weights FILE")
    if args.unlabeled_dir is not None and args.cycles != 1:
        raise ConfigError(f"--unlabeled-dir runs exactly one cycle, got --cycles {args.cycles}: "
                          f"{command.after_labeling}")
    if args.unlabeled_dir is not None and args.initial_size is not None:
        raise ConfigError("--initial-size does not apply with --unlabeled-dir: every labeled "
                          "image is used")
    budget_flag = command.budget_flag(args)
    if getattr(args, budget_flag) == ALL and args.unlabeled_dir is None and not args.round:
        raise ConfigError(f"{flag_name(budget_flag)} all ranks a folder: it needs --unlabeled-dir")
    if args.diversity_factor is not None and args.diversity is None:
        raise ConfigError("--diversity-factor sizes the shortlist of --diversity: give both")
    if getattr(args, budget_flag) == ALL and (args.diversity is not None or args.random_fraction):
        raise ConfigError("--diversity and --random-fraction choose a batch; with every image "
                          f"ranked ({flag_name(budget_flag)} all, the rank mode's default) there "
                          "is none: give the batch size")
    if args.dropout is None:
        args.dropout = command.mc_dropout if needs_mc_dropout(args.strategy) else command.dropout
    if hasattr(args, "milestones"):
        args.milestones = epochs_list(args.milestones)
    refusal = command.refusal(args.strategy)
    if refusal is not None:
        raise ConfigError(f"{refusal}; strategies for this task: {', '.join(command.strategies())}")
    if args.subset is None and getattr(args, budget_flag) != ALL:
        # resolved here so that args.json records the value the run used
        args.subset = args.subset_factor * getattr(args, budget_flag)
    check_shared_args(args)
    if command.check is not None:
        command.check(args)


def resolve_strategy(args: argparse.Namespace, parser: argparse.ArgumentParser,
                     command: TaskCommand) -> str:
    """One strategy from ``--strategy`` and the original flags; contradictions are errors.

    ``--mc-dropout`` asks for an MC-dropout strategy: alone it is ``mc_entropy``; with a flag
    that names one (``--entropy-superpixels``, ``--choose-images-with-highest-uncertainty``) it
    agrees; with a strategy that samples no dropout it is a contradiction.
    ``--use-variance-as-uncertainty`` (with ``--mc-dropout``) swaps an entropy for its variance
    twin (``Strategy.variance_twin``).
    """
    requested = {f"--{flag}": target for flag, target in command.strategy_aliases.items()
                 if getattr(args, flag)}
    if args.strategy is not None:
        try:
            get_strategy(args.strategy)
        except ValueError as error:
            parser.error(str(error))
        requested["--strategy"] = args.strategy
    if args.use_variance_as_uncertainty:
        if not args.mc_dropout:
            parser.error("--use-variance-as-uncertainty needs --mc-dropout")
        requested = {flag: get_strategy(target).variance_twin or target
                     for flag, target in requested.items()}
    if args.mc_dropout:
        if not requested:
            requested["--mc-dropout"] = default_mc_strategy(command,
                                                            args.use_variance_as_uncertainty)
        if not all(needs_mc_dropout(target) for target in requested.values()):
            requested["--mc-dropout"] = "an MC-dropout strategy"
    chosen = set(requested.values())
    if len(chosen) > 1:
        parser.error("incompatible flags: " + ", ".join(f"{flag} ({target})"
                                                         for flag, target in requested.items()))
    return chosen.pop() if chosen else "random"


def default_mc_strategy(command: TaskCommand, variance: bool = False) -> str:
    """What ``--mc-dropout`` alone selects: mc_entropy (mc_variance with
    ``--use-variance-as-uncertainty``), or mc_variance where the task runs no entropy (pose)."""
    if variance or command.refusal("mc_entropy") is not None:
        return "mc_variance"
    return "mc_entropy"


def needs_mc_dropout(strategy: str) -> bool:
    return MC_PROBS in get_strategy(strategy).needs


def check_shared_args(args: argparse.Namespace) -> None:
    """The shared flags that LoopConfig does not check (ConfigError)."""
    require([
        (args.lr > 0, f"--lr must be > 0, got {args.lr}"),
        (args.momentum >= 0, f"--momentum must be >= 0, got {args.momentum}"),
        (args.weight_decay >= 0, f"--weight-decay must be >= 0, got {args.weight_decay}"),
        (args.threads >= 0, f"--threads must be >= 0, got {args.threads}"),
        (args.dist_timeout > 0, f"--dist-timeout must be > 0 minutes, got {args.dist_timeout}"),
        (0.0 <= args.dropout < 1.0, f"--dropout must be in [0, 1), got {args.dropout}"),
    ])
    if needs_mc_dropout(args.strategy) and args.dropout <= 0:
        raise ConfigError(f"--strategy {args.strategy} samples MC dropout: give --dropout > 0")


def loop_config(args: argparse.Namespace, device: str, **fields: Any) -> LoopConfig:
    """The LoopConfig of the parsed flags; ``fields`` override (the rank mode's sizes)."""
    values = dict(
        strategy=args.strategy, options=chosen_options(args), cycles=args.cycles,
        initial_size=args.initial_size,
        budget=args.images_per_cycle, subset_size=args.subset,
        epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
        mc_samples=args.mc_samples, reduction=args.reduction,
        seed=args.seed, device=device, num_workers=args.workers,
        save_checkpoints=args.save_checkpoints, checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress, amp=args.amp,
        channels_last=args.channels_last, diversity=args.diversity,
        diversity_factor=(DIVERSITY_FACTOR if args.diversity_factor is None
                          else args.diversity_factor),
        random_fraction=args.random_fraction)
    values.update(fields)
    return LoopConfig(**values)


def chosen_options(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen strategy's options (``Strategy.options``) from the parsed flags.

    An option flag given for a strategy that does not read it is not an error, like
    --mc-samples with entropy (a grid passes one set of flags to every strategy), but a warning;
    nor is it recorded, so that resuming without it is not refused."""
    strategy = get_strategy(args.strategy)
    read = {option.key for option in strategy.options}
    unused = [key for key in getattr(args, "_given_options", ()) if key not in read]
    if unused:
        declared = declared_options()
        flags = [declared[key][0].spellings[0] for key in unused]
        readers = list(dict.fromkeys(name for key in unused for name in declared[key][1]))
        warnings.warn(f"{' and '.join(flags)} only apply to --strategy {' / '.join(readers)}; "
                      f"ignored for {args.strategy}", UserWarning, stacklevel=3)
    return {option.name: getattr(args, option.key, option.default)
            for option in strategy.options}


def _check_before_data(command: TaskCommand, args: argparse.Namespace, device: str) -> None:
    """What can be refused before the data is read (reading it may take minutes): the protocol's
    settings (checked against an unbounded pool; ``prepare`` checks the sizes once the pool is
    known) and whether the weights files are checkpoints at all."""
    from active_learning.files.pretrained import load_named_state

    budget = getattr(args, command.budget_flag(args))
    with warnings.catch_warnings():   # loop_config's own warnings come once, from prepare
        warnings.simplefilter("ignore")
        provisional = loop_config(args, device, initial_size=args.initial_size or 1,
                                  budget=1 if budget == ALL else budget, subset_size=0,
                                  **command.loop_fields(args))
    unbounded = 2 ** 62
    provisional.validate(unbounded, n_items=unbounded)
    for flag, path in (("--weights", args.weights),
                       ("--weights-backbone", getattr(args, "weights_backbone", None))):
        if path:  # a named file is fetched (or found missing) now, before the data is read
            load_named_state(path, flag=flag, published=command.published)


def check_output_dir(folder: Path) -> None:
    """ConfigError, before anything is read or written, when ``folder`` cannot hold runs: a file
    in the way, or a folder this user cannot write in."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--output-dir {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--output-dir {folder}: cannot write in {existing}")


def decode_jobs(args: argparse.Namespace) -> int:
    """Threads that decode the images before a run: ``-j``, or the machine's cores (at most 8)."""
    return args.workers or min(8, os.cpu_count() or 1)


def dataset_cache(data_root: str | os.PathLike, task: str) -> Path:
    """A folder for what a task derives from a dataset and keeps between runs (the images that
    decoded, superpixel maps): ``$XDG_CACHE_HOME/active-learning-cv/<task>/<name>-<hash>``.

    Outside the output folder on purpose: nothing is written there before a run's checks pass.
    The hash of the resolved data path keeps two datasets of the same folder name apart.
    """
    import hashlib

    root = Path(data_root).resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:10]
    return base / "active-learning-cv" / task / f"{root.name or 'data'}-{digest}"


def run_folder(args: argparse.Namespace, task: str, dataset: str) -> Path:
    """``<output-dir>/<task>/<dataset>[_rank]/<strategy>[+<diversity>][+random<f>]/seed<k>``."""
    if args.unlabeled_dir is not None:
        dataset = f"{dataset}_rank"
    label = mix_label(args.strategy, args.diversity, args.random_fraction, args.diversity_factor)
    return Path(args.output_dir) / task / dataset / label / f"seed{args.seed}"


def run_record(args: argparse.Namespace, built: BuiltTask) -> dict[str, Any]:
    """``args.json``'s ``task``: the task's recorded flags, the dataset and the task's facts."""
    record = {dest: getattr(args, dest) for dest in args._recorded}
    record.setdefault("dataset", built.dataset)
    if args.unlabeled_dir is not None:  # rank runs never resume: this only documents the run
        record["unlabeled_dir"] = str(Path(args.unlabeled_dir).resolve())
    record.update(built.record)
    return record


# ---- running -------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A checked run, before anything is written."""

    built: BuiltTask
    config: LoopConfig
    initial: np.ndarray | None
    run_dir: Path
    record: dict[str, Any]


def prepare(command: TaskCommand, args: argparse.Namespace) -> Prepared:
    """Check every flag, read the data, size the run; raises UserError, writes nothing."""
    # Under torchrun: join the process group; each process takes its own GPU. Only rank 0
    # writes the run folder and logs progress (the others log warnings and errors).
    device = init_from_environment(resolve_device(args.device), args.dist_timeout)
    if not is_main_process():
        logging.getLogger("active_learning").setLevel(logging.WARNING)
    check_output_dir(Path(args.output_dir))
    _check_before_data(command, args, device)
    built = command.build(args)
    adapter = built.adapter
    if args.weights or getattr(args, "weights_backbone", None):
        adapter.build_model()  # a missing or mismatched weights file fails now, not after a cycle
    units = adapter.selection_units()
    rank = args.unlabeled_dir is not None
    initial = np.arange(built.n_labeled) if rank else None
    initial_size = built.n_labeled if rank else args.initial_size
    if rank and (initial_size == 0 or initial_size >= units.n_items):
        raise ConfigError(f"rank mode needs labeled images to train on and unlabeled ones to "
                          f"rank; found {initial_size} labeled and "
                          f"{units.n_items - initial_size} unlabeled (with anything to score)")
    if not rank and not 1 <= initial_size < units.n_items:
        raise ConfigError(f"--initial-size {initial_size} leaves nothing to select from a pool of "
                          f"{units.n_items} {units.item_label}" if initial_size >= 1 else
                          f"--initial-size must be >= 1, got {initial_size}")
    config = size_run(command, args, device, units, initial, initial_size,
                      too_large=(f"; {flag_name(command.budget_flag(args))} all ranks every one"
                                 if rank else ""))
    held_out = get_strategy(config.strategy).held_out_fraction
    if held_out:   # active transfer learning: a share of the labeled units never trains
        hold_out(adapter, held_out, config.seed)
    run_dir = run_folder(args, command.name, built.dataset)
    return Prepared(built, config, initial, run_dir, run_record(args, built))


def size_run(command: TaskCommand, args: argparse.Namespace, device: str, units: SelectionUnits,
             initial: np.ndarray | None, initial_size: int, *, too_large: str | None = "",
             **fields: Any) -> LoopConfig:
    """The run's LoopConfig, sized on its pool: the initial set (``initial``: these items, or
    ``initial_size`` drawn by the seed), the budget (the task's budget flag; ``all``: every
    unlabeled unit) and the candidate subset (``--subset``, else ``--subset-factor`` x budget);
    ``fields`` override the config (a round's one cycle) before it is validated.

    A budget larger than the units left unlabeled is a ConfigError (``too_large`` ends its
    message); ``too_large=None`` lowers it to what is left instead (a round proposes what
    remains when fewer remain).
    """
    config = loop_config(args, device, initial_size=initial_size, **command.loop_fields(args))
    pool = int(units.selectable().sum())
    initial_units = len(draw_initial_units(units, config, initial))
    unlabeled = pool - initial_units
    budget_flag = command.budget_flag(args)
    value = getattr(args, budget_flag)
    budget = unlabeled if value == ALL else value
    if budget > unlabeled:
        if too_large is not None:
            raise ConfigError(f"{flag_name(budget_flag)} {budget} is larger than the unlabeled "
                              f"pool ({unlabeled} = {pool} {units.unit_label} - {initial_units} "
                              f"initial){too_large}")
        budget = unlabeled
    subset = args.subset if args.subset is not None else args.subset_factor * budget
    config = dataclasses.replace(config, **{"budget": budget, "subset_size": subset, **fields})
    config.validate(pool, n_items=units.n_items, initial_units=initial_units)
    return config


def run(command: TaskCommand, argv: Sequence[str] | None = None) -> Path:
    """Parse, check, run (or resume) the cycles or the ranking; returns the run folder."""
    from active_learning.loop.runner import run_active_learning

    configure_logging()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["round"]:
        return run_round_command(command, arguments[1:])
    with cli_errors():
        args = parse_args(command, argv)
    set_threads(args)
    with cli_errors():
        prepared = prepare(command, args)
    built, config, run_dir = prepared.built, prepared.config, prepared.run_dir
    rank = args.unlabeled_dir is not None
    logger.info("%s: %s, strategy %s, %d cycle(s) on %s -> %s", built.dataset, built.summary,
                config.strategy_label, config.cycles, config.device, run_dir)
    if rank and (run_dir / "pool.npz").exists():
        # A rank run is one cycle from the labels as they are now: never resume an older one
        # (restart=True below); the old ranking stays until the new one is written.
        logger.info("replacing the previous ranking in %s", run_dir)
    with cli_errors(resumable=run_dir, rank=rank):
        rows = run_active_learning(built.adapter, config, run_dir, extra_args=prepared.record,
                                   initial_labeled=prepared.initial, restart=rank,
                                   allow_new_items=args.allow_new_images,
                                   report_map=report_map_points(args))
    main_process = is_main_process()
    finish()   # every process has its state; only rank 0 has files left to write and report
    if not main_process:
        return run_dir
    with cli_errors():
        copy_last_priorities(run_dir, len(rows), args.superannotate_csv)
    units = built.adapter.selection_units()
    logger.info("metrics:        %s (%s per cycle)", run_dir / "metrics.csv",
                built.adapter.primary_metric)
    if rank:
        logger.info("priority CSV:   %s (name,entropy_value: the unlabeled images to label, "
                    "most useful first)", run_dir / "priorities" / "cycle_00.csv")
    else:
        logger.info("priority CSVs:  %s/cycle_XX.csv (name,entropy_value, best first)",
                    run_dir / "priorities")
    for line in built.outputs:
        logger.info("%s", line.format(run_dir=run_dir))
    if (run_dir / "selections").is_dir():
        logger.info("pictures:       %s/cycle_XX.png", run_dir / "selections")
    logger.info("learning curve: %s (x: %s)", run_dir / "learning_curve.png", units.x_axis)
    from active_learning.reports.run_folder import report_for_run

    logger.info("report:         %s", report_for_run(run_dir))
    if rank:
        logger.info("next:           %s", command.after_labeling)
    return run_dir


def entry_points(command: TaskCommand) -> tuple[Callable[[], argparse.ArgumentParser],
                                                 Callable[..., argparse.Namespace],
                                                 Callable[..., Path]]:
    """A task script's ``get_args_parser()``, ``parse_args(argv=None)`` and ``main(argv=None)``
    (which runs or resumes the simulation, or ranks the unlabeled images, and returns the run
    folder), bound to its command."""

    def get_args_parser() -> argparse.ArgumentParser:
        return build_parser(command)

    def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
        return parse_args(command, argv)

    def main(argv: Sequence[str] | None = None) -> Path:
        if "TORCHELASTIC_ERROR_FILE" in os.environ:
            # Under torchrun, a process that fails leaves its error in the file torchrun names;
            # torchrun stops the other processes and shows it as the root cause.
            from torch.distributed.elastic.multiprocessing.errors import record

            # (record returns None for a SystemExit(0), e.g. --help, which ends the script too)
            return cast(Path, record(run)(command, argv))
        return run(command, argv)

    return get_args_parser, parse, main


def run_round_command(command: TaskCommand, argv: Sequence[str]) -> Path:
    """``train.py round ...``: one round of the labeling loop (``active_learning.rounds``);
    returns the round's folder."""
    from active_learning.loop.runner import run_active_learning
    from active_learning.rounds import run_round

    with cli_errors():
        if command.build_round is None or command.label_kind is None:
            raise ConfigError(f"the {command.name} task has no round mode yet")
        args = parse_args(command, argv, round_mode=True)
    set_threads(args)
    build_round, label_kind = command.build_round, command.label_kind

    def run_cycle(built: BuiltTask, round_: Any, n_labeled: int) -> Path:
        # One cycle on every labeled image; the budget is what is left when fewer remain.
        initial = np.arange(n_labeled)
        config = size_run(command, args, resolve_device(args.device),
                          built.adapter.selection_units(), initial, n_labeled,
                          too_large=None, subset_size=0, cycles=1, save_checkpoints=True)
        run_active_learning(built.adapter, config, round_.run_dir,
                            extra_args=run_record(args, built), initial_labeled=initial,
                            report_map=report_map_points(args))
        return round_.run_dir

    with cli_errors(resumable=Path(args.workspace)):
        round_ = run_round(command.name, label_kind, args, build_round, run_cycle)
    return round_.folder


def report_map_points(args: argparse.Namespace) -> int:
    """Points of each status in the report's maps: 0 with ``--no-report-map``."""
    from active_learning.loop.report_map import MAP_POINTS

    return 0 if args.no_report_map else MAP_POINTS


def copy_last_priorities(run_dir: Path, cycles_done: int, destination: str | None) -> None:
    """``--output_superannotate_csv_file``: copy the last cycle's priority
    CSV to ``destination``."""
    last = Path(run_dir) / "priorities" / f"cycle_{cycles_done - 1:02d}.csv"
    if destination and last.exists():
        from active_learning.files.atomic import atomic_write_text

        try:
            atomic_write_text(destination, last.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"--output_superannotate_csv_file {destination}: "
                              f"{error.strerror or error} (the run itself is finished)") from None
        logger.info("SuperAnnotate CSV: %s", destination)


def set_threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)


