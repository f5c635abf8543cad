"""The command line every task's ``train.py`` shares.

A task's script builds its parser with :func:`build_parser` (the strategy, cycle, training and
run flags, the original project's aliases, presets) and adds only its dataset and model flags;
:func:`parse_args` applies a preset's values as defaults (explicit flags still win) and resolves
one strategy; :func:`cli_errors` turns known errors into one ``error:`` line and exit status 2,
and Ctrl-C into one line that says how to resume (exit 130).

Boolean flags accept ``--flag``, ``--flag=True`` and ``--flag=False`` (the original project's
``type=bool`` turned ``--flag=False`` on).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .config import LoopConfig
from .strategies import MC_PROBS, get_strategy, list_strategies

# Original flag -> the strategy it selects (every task); tasks add their own (e.g. superpixels).
STRATEGY_ALIASES = {
    "use_loss_prediction_al": "loss_prediction",
    "use_active_learning": "loss_prediction",
    "use_discriminative_al": "discriminative",
}

# --use-variance-as-uncertainty turns an entropy strategy into its variance twin.
VARIANCE_OF = {"mc_entropy": "mc_variance", "mc_entropy_superpixels": "mc_variance_superpixels"}

# Rank mode (--unlabeled-dir): one cycle, every unlabeled image scored, the labeled set is all
# the labeled data. Applied as defaults over a preset's, so explicit flags still win (and are checked).
RANK_DEFAULTS = dict(cycles=1, subset=0, initial_size=None)

# The Learning Loss protocol (Yoo & Kweon 2019, CIFAR-10); tasks pass their own reference values.
PROTOCOL_DEFAULTS = dict(cycles=10, initial_size=1000, images_per_cycle=1000, epochs=200,
                         batch_size=128, eval_batch_size=256, lr=0.1, momentum=0.9,
                         weight_decay=5e-4, lamda=1.0, mc_samples=20)


def split_extra(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``[own args] -- [task args]`` -> (own args, task args); no ``--`` means no task args.

    For wrappers (``bench/run_grid.py``, ``classification/demo.py``) that pass the arguments after
    ``--`` on to every run of a task's ``train.py``.
    """
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def str2bool(text: str | bool) -> bool:
    """``--flag``, ``--flag=True`` and ``--flag=False``."""
    if isinstance(text, bool):
        return text
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {text!r}")


def add_bool_flag(parser: argparse.ArgumentParser | Any, *names: str, help: str,
                  default: bool = False) -> None:
    parser.add_argument(*names, type=str2bool, nargs="?", const=True, default=default,
                        metavar="BOOL", help=help)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, except None: those flags explain their default in their help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def build_parser(description: str, *, task: str, presets: Mapping[str, Mapping[str, Any]] | None = None,
                 defaults: Mapping[str, Any] | None = None,
                 aliases: Mapping[str, str] | None = None,
                 after_labeling: str = "label the selected images, add them to the labeled data, "
                                       "and run again") -> argparse.ArgumentParser:
    """A parser with the flags every task shares; the task adds its data and model flags.

    Args:
        description: first line of ``--help``.
        task: the task folder name, used in the run folder's path.
        presets: named protocols (``--preset NAME``), each a dict of flag defaults.
        defaults: the task's reference values for ``PROTOCOL_DEFAULTS`` keys.
        aliases: extra original flags -> strategy (added to ``STRATEGY_ALIASES``).
        after_labeling: what rank mode tells the user to do with the CSV.
    """
    values = {**PROTOCOL_DEFAULTS, **(defaults or {})}
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    parser.set_defaults(_task=task, _presets=dict(presets or {}),
                        _aliases={**STRATEGY_ALIASES, **(aliases or {})}, _after_labeling=after_labeling)
    if presets:
        parser.add_argument("--preset", choices=sorted(presets), default=None,
                            help="a named protocol; explicit flags override its values")
    _add_strategy_flags(parser.add_argument_group("strategy"), values, aliases or {})
    _add_cycle_flags(parser.add_argument_group("cycles"), values)
    _add_training_flags(parser.add_argument_group("training"), values)
    _add_run_flags(parser.add_argument_group("run"), task)
    _accept_underscore_spellings(parser)
    return parser


def _accept_underscore_spellings(parser: argparse.ArgumentParser) -> None:
    """``--batch_size`` for ``--batch-size`` etc.: the original scripts spelled flags both ways.

    The extra spellings are accepted but not listed in ``--help``. A task's own flags name
    their spellings themselves.
    """
    for action in list(parser._actions):
        for option in list(action.option_strings):
            spelling = option.replace("-", "_").replace("__", "--", 1)
            if option.startswith("--") and spelling not in parser._option_string_actions:
                parser._option_string_actions[spelling] = action


def _add_strategy_flags(strategy: Any, values: Mapping[str, Any], aliases: Mapping[str, str]) -> None:
    strategy.add_argument("--strategy", default=None,
                          help=f"one of: {', '.join(list_strategies())} (default: random)")
    for flag, target in {**STRATEGY_ALIASES, **aliases}.items():
        # Both spellings: the original project wrote some flags with _, others with -.
        spellings = dict.fromkeys((f"--{flag}", f"--{flag.replace('_', '-')}"))
        add_bool_flag(strategy, *spellings, help=f"original flag: --strategy {target}")
    add_bool_flag(strategy, "--mc-dropout",
                  help="original flag: an MC-dropout strategy (alone: --strategy mc_entropy)")
    add_bool_flag(strategy, "--use-variance-as-uncertainty",
                  help="with --mc-dropout: the variance instead of the entropy (mc_variance)")
    strategy.add_argument("--mc-samples", type=int, default=values["mc_samples"], help="MC-dropout passes T")
    strategy.add_argument("--lamda", "--lambda", dest="lamda", type=float, default=values["lamda"],
                          help="weight of the loss-prediction ranking loss")
    strategy.add_argument("--margin", type=float, default=1.0, help="ranking loss margin")
    strategy.add_argument("--detach-epoch", type=int, default=None,
                          help="stop the ranking loss's gradient into the backbone from this epoch; "
                               "0 = the loss module only reads detached features (default: 60%% of "
                               "the epochs, as in Learning Loss; classification's CPU presets: 0)")
    strategy.add_argument("--loss-width", type=int, default=values.get("loss_width", 128),
                          help="loss module hidden width")
    strategy.add_argument("--loss-pool-size", type=int, default=None, metavar="N",
                          help="loss module: average-pool each feature map to N x N before its FC "
                               "layer (default: 1, global average pooling as in Learning Loss; "
                               "segmentation: 6)")
    strategy.add_argument("--reduction", choices=("mean", "max"), default="mean",
                          help="dense outputs: how per-pixel scores become one score per image")
    strategy.add_argument("--dal-max-epochs", type=int, default=None, metavar="N",
                          help="discriminative: train each sub-query's discriminator for at most N "
                               "epochs (default: 500, the paper's; it stops earlier at 98%% accuracy)")
    strategy.add_argument("--dal-sub-queries", type=int, default=None, metavar="K",
                          help="discriminative: spend each cycle's budget in K rounds, each with a "
                               "fresh discriminator (default: 10)")


def _add_cycle_flags(cycles: Any, values: Mapping[str, Any]) -> None:
    cycles.add_argument("--cycles", type=int, default=values["cycles"],
                        help="labeling cycles to simulate (exactly 1 with --unlabeled-dir)")
    cycles.add_argument("--initial-size", "--initial-labeled", dest="initial_size", type=int,
                        default=values["initial_size"],
                        help="random initial labeled set (with --unlabeled-dir: every labeled image)")
    cycles.add_argument("--images-per-cycle", "--budget", dest="images_per_cycle", type=int,
                        default=values["images_per_cycle"],
                        help="units selected per cycle (with --unlabeled-dir: rows of the CSV)")
    cycles.add_argument("--subset", type=int, default=None,
                        help="unlabeled units scored per cycle (default: 10 x --images-per-cycle, "
                             "10,000 in Learning Loss; 0 = all; 0 with --unlabeled-dir)")


def _add_training_flags(training: Any, values: Mapping[str, Any]) -> None:
    training.add_argument("--epochs", type=int, default=values["epochs"], help="epochs per cycle")
    training.add_argument("--batch-size", type=int, default=values["batch_size"], help="training batch size")
    training.add_argument("--eval-batch-size", type=int, default=values["eval_batch_size"],
                          help="batch size of evaluation and scoring")
    training.add_argument("--lr", type=float, default=values["lr"], help="initial learning rate (SGD)")
    training.add_argument("--momentum", type=float, default=values["momentum"], help="SGD momentum")
    training.add_argument("--weight-decay", type=float, default=values["weight_decay"], help="SGD weight decay")


def _add_run_flags(run: Any, task: str) -> None:
    run.add_argument("--seed", type=int, default=0, help="seeds the initial set, the model and every choice")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--workers", "--num-workers", "-j", dest="workers", type=int, default=0,
                     help="data loader worker processes")
    run.add_argument("--threads", type=int, default=0,
                     help="torch CPU threads (0 = torch's default); small models on a small or "
                          "busy CPU run faster with 1")
    run.add_argument("--output-dir", default="runs",
                     help=f"runs go to <output-dir>/{task}/<dataset>/<strategy>/seed<k> "
                          "(rank mode: .../<dataset>_rank/...)")
    run.add_argument("--unlabeled-dir", default=None, metavar="DIR",
                     help="rank mode: train once on every labeled image, score every image under "
                          "DIR (any depth) and write the --images-per-cycle best to "
                          "priorities/cycle_00.csv")
    add_bool_flag(run, "--save-checkpoints",
                  help="save the model of every cycle, and the training state every "
                       "--checkpoint-every epochs so an interrupted cycle resumes where it stopped")
    run.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                     help="with --save-checkpoints: epochs between in-cycle checkpoints "
                          "(0 = a tenth of --epochs)")
    add_bool_flag(run, "--no-progress", help="no progress bars")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse with the preset's (and rank mode's) values as defaults, then resolve the strategy."""
    args = parser.parse_args(argv)
    presets = args._presets
    defaults = dict(presets[args.preset]) if getattr(args, "preset", None) else {}
    if args.unlabeled_dir is not None:
        defaults.update(RANK_DEFAULTS)
    if defaults:
        parser.set_defaults(**defaults)
        args = parser.parse_args(argv)
    args.strategy = resolve_strategy(args, parser)
    if args.unlabeled_dir is not None and args.cycles != 1:
        parser.error(f"--unlabeled-dir runs exactly one cycle, got --cycles {args.cycles}: "
                     f"{args._after_labeling}")
    if args.unlabeled_dir is not None and args.initial_size is not None:
        parser.error("--initial-size does not apply with --unlabeled-dir: every labeled image is used")
    args.subset_given = args.subset is not None  # a task whose units differ resolves it itself
    if args.subset is None:  # resolved here so that args.json records the value the run used
        args.subset = 10 * args.images_per_cycle
    return args


def resolve_strategy(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """One strategy from ``--strategy`` and the original flags; contradictions are errors.

    ``--mc-dropout`` asks for an MC-dropout strategy: alone it is ``mc_entropy``; with a flag
    that names one (``--entropy-superpixels``, ``--choose-images-with-highest-uncertainty``) it
    agrees; with a strategy that samples no dropout it is a contradiction.
    ``--use-variance-as-uncertainty`` (with ``--mc-dropout``) swaps entropy for variance.
    """
    requested = {f"--{flag}": target for flag, target in args._aliases.items() if getattr(args, flag)}
    if args.strategy is not None:
        try:
            get_strategy(args.strategy)
        except ValueError as error:
            parser.error(str(error))
        requested["--strategy"] = args.strategy
    if args.use_variance_as_uncertainty:
        if not args.mc_dropout:
            parser.error("--use-variance-as-uncertainty needs --mc-dropout")
        requested = {flag: VARIANCE_OF.get(target, target) for flag, target in requested.items()}
    if args.mc_dropout:
        if not requested:
            requested["--mc-dropout"] = "mc_variance" if args.use_variance_as_uncertainty else "mc_entropy"
        for flag, target in list(requested.items()):
            if not needs_mc_dropout(target):
                requested["--mc-dropout"] = "an MC-dropout strategy"
    chosen = set(requested.values())
    if len(chosen) > 1:
        parser.error("incompatible flags: " + ", ".join(f"{flag} ({target})"
                                                         for flag, target in requested.items()))
    return chosen.pop() if chosen else "random"


def require(checks: Sequence[tuple[bool, str]]) -> None:
    """Raise ValueError with the message of the first check that failed."""
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def check_common_args(args: argparse.Namespace, n_units: int, unit: str = "images") -> None:
    """Numeric flags and the pool size, checked before anything is written (ValueError)."""
    checks = [
        (args.lr > 0, f"--lr must be > 0, got {args.lr}"),
        (args.momentum >= 0, f"--momentum must be >= 0, got {args.momentum}"),
        (args.weight_decay >= 0, f"--weight-decay must be >= 0, got {args.weight_decay}"),
        (args.threads >= 0, f"--threads must be >= 0, got {args.threads}"),
    ]
    require(checks)
    if args.initial_size >= n_units:
        raise ValueError(f"--initial-size {args.initial_size} leaves nothing to select from a pool "
                         f"of {n_units} {unit}")
    unlabeled = n_units - args.initial_size
    if args.images_per_cycle > unlabeled:
        raise ValueError(f"--images-per-cycle {args.images_per_cycle} is larger than the unlabeled "
                         f"pool ({unlabeled} = {n_units} {unit} - {args.initial_size} initial)")


def needs_mc_dropout(strategy: str) -> bool:
    return MC_PROBS in get_strategy(strategy).needs


def resolve_device(name: str) -> str:
    """``auto`` -> cuda when available, else cpu; anything torch cannot use is a ValueError."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: use auto, cpu, cuda or cuda:N")
    return name


def loop_config(args: argparse.Namespace, device: str, **task_fields: Any) -> LoopConfig:
    """The LoopConfig of the parsed flags (``task_fields`` set task-only fields)."""
    dal = {name: value for name, value in (("dal_max_epochs", args.dal_max_epochs),
                                           ("dal_sub_queries", args.dal_sub_queries)) if value is not None}
    if dal and args.strategy != "discriminative":
        # Not an error, like --mc-samples with entropy: a grid passes one set of flags to every
        # strategy. Not recorded either, so that resuming without them is not refused.
        flags = " and ".join("--" + name.replace("_", "-") for name in dal)
        warnings.warn(f"{flags} only apply to --strategy discriminative; ignored for {args.strategy}",
                      UserWarning, stacklevel=2)
        dal = {}
    if getattr(args, "loss_pool_size", None) is not None and "loss_pool_size" not in task_fields:
        task_fields = dict(task_fields, loss_pool_size=args.loss_pool_size)
    return LoopConfig(
        strategy=args.strategy, cycles=args.cycles, initial_size=args.initial_size,
        budget=args.images_per_cycle, subset_size=args.subset, epochs=args.epochs,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, lamda=args.lamda,
        margin=args.margin, detach_epoch=args.detach_epoch, loss_width=args.loss_width,
        mc_samples=args.mc_samples, reduction=args.reduction, seed=args.seed, device=device,
        num_workers=args.workers, save_checkpoints=args.save_checkpoints,
        checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
        **dal, **task_fields)


def run_folder(args: argparse.Namespace, dataset: str) -> Path:
    """``<output-dir>/<task>/<dataset>[_rank]/<strategy>/seed<k>``."""
    if args.unlabeled_dir is not None:
        dataset = f"{dataset}_rank"
    return Path(args.output_dir) / args._task / dataset / args.strategy / f"seed{args.seed}"


def simulate(task: Any, config: LoopConfig, args: argparse.Namespace, run_dir: Path, *,
             known: Sequence[type[BaseException]] = (), record: Mapping[str, Any] | None = None,
             initial: Any = None, outputs: Sequence[str] = ()) -> Path:
    """Run (or resume) the cycles, or the ranking, of a task's ``train.py``, then tell the user
    where everything is: ``outputs`` (the task's own files), and in rank mode what to do next.

    Errors of the types ``known`` (and a mismatched run folder) are one ``error:`` line; Ctrl-C
    says how to resume. ``--output_superannotate_csv_file`` gets the last priority CSV.
    """
    from .loop import RunMismatchError, run_active_learning

    rank = args.unlabeled_dir is not None
    with cli_errors(*known, RunMismatchError, resumable=run_dir, rank=rank):
        rows = run_active_learning(task, config, run_dir, extra_args=dict(record or {}),
                                   initial_labeled=initial, restart=rank)
    copy_last_priorities(run_dir, len(rows), getattr(args, "superannotate_csv", None))
    for line in outputs:
        print(line)
    if rank:
        print(f"next:           {args._after_labeling}")
    return run_dir


def copy_last_priorities(run_dir: Path, cycles_done: int, destination: str | None) -> None:
    """``--output_superannotate_csv_file``: copy the last cycle's priority CSV to ``destination``."""
    last = Path(run_dir) / "priorities" / f"cycle_{cycles_done - 1:02d}.csv"
    if destination and last.exists():
        from .atomic import atomic_write_text

        atomic_write_text(destination, last.read_text(encoding="utf-8"))
        print(f"SuperAnnotate CSV: {destination}")


def set_threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)


@contextmanager
def cli_errors(*known: type[BaseException], resumable: Path | None = None,
               rank: bool = False) -> Iterator[None]:
    """Known errors -> one ``error:`` line on stderr and exit 2; Ctrl-C -> one line, exit 130.

    ``known`` adds task error types to ValueError and FileNotFoundError. ``resumable`` is the run
    folder an interrupted simulation resumes from; ``rank`` says it was a ranking instead.
    """
    try:
        yield
    except KeyboardInterrupt:
        if rank:
            message = "the previous ranking, if any, is kept; run the same command again"
        elif resumable is not None:
            message = (f"the finished cycles in {resumable} are kept; run the same command again "
                       "to resume")
        else:
            message = "nothing was written"
        print(f"\ninterrupted: {message}", file=sys.stderr)
        raise SystemExit(130) from None
    except (ValueError, FileNotFoundError, *known) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
