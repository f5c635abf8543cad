"""Every task's arguments: the shared flags (strategy, cycles, training, model weights, run), the
strategies' options generated from the registry, the task's own flags; parsing them with a
preset's values as defaults, and resolving what follows from them (one strategy from
``--strategy`` and the original flags, the dropout MC-dropout strategies need, the scored
subset, the task's own checks).

Boolean flags accept ``--flag``, ``--flag=True`` and ``--flag=False`` (the original project's
``type=bool`` turned ``--flag=False`` on).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from active_learning.distributed import DEFAULT_TIMEOUT_MINUTES
from active_learning.errors import ConfigError
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
from active_learning.strategies import (
    BASELINE,
    DEFAULT_MC_STRATEGY,
    MC_PROBS,
    get_strategy,
    list_strategies,
)
from active_learning.strategies.mixes import DIVERSITIES, DIVERSITY_FACTOR
from active_learning.strategies.options import StrategyOption

if TYPE_CHECKING:
    from active_learning.cli import TaskCommand


# The Learning Loss protocol (Yoo & Kweon 2019, CIFAR-10); tasks pass their own reference values.
# A strategy's own settings (Learning Loss's lamda, DAL's sub-queries) are its declared options
# (Strategy.options): a task's reference values and presets set their defaults by the same keys.
PROTOCOL_DEFAULTS: dict[str, Any] = dict(
    cycles=10, initial_size=1000, images_per_cycle=1000, subset_factor=10, epochs=200,
    batch_size=128, eval_batch_size=256, lr=0.1, momentum=0.9, weight_decay=5e-4,
    mc_samples=20, reduction="mean")


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
        from active_learning.rounds.flags import add_round_flags

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
    group.add_argument("--steps-per-cycle", type=int, default=values.get("steps_per_cycle"),
                       metavar="N", recorded=False,
                       help="train exactly N batches per cycle, in --epochs equal passes "
                            "(default: --epochs passes over the labeled set, whose size differs "
                            "between strategies); a multiple of --epochs")
    group.add_argument("--same-init", type=str2bool, nargs="?", const=True,
                       default=values.get("same_init", False), metavar="BOOL", recorded=False,
                       help="every cycle starts from the same initial weights (cycle 0's) "
                            "instead of weights seeded per cycle")
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
    return chosen.pop() if chosen else BASELINE


def default_mc_strategy(command: TaskCommand, variance: bool = False) -> str:
    """What ``--mc-dropout`` alone selects: mc_entropy (mc_variance with
    ``--use-variance-as-uncertainty``), or mc_variance where the task runs no entropy (pose)."""
    if variance or command.refusal(DEFAULT_MC_STRATEGY) is not None:
        return get_strategy(DEFAULT_MC_STRATEGY).variance_twin or DEFAULT_MC_STRATEGY
    return DEFAULT_MC_STRATEGY


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
