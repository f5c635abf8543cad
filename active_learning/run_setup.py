"""From parsed arguments to a checked run, before anything is written: the protocol
(``LoopConfig``) with the chosen strategy's options, the run's sizes on its pool, its folder and
its record, and the checks that can refuse it before the data is read."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from active_learning.arguments import declared_options
from active_learning.distributed import init_from_environment, is_main_process, resolve_device
from active_learning.errors import ConfigError
from active_learning.files.images import CHECKED_IMAGES
from active_learning.flags import ALL, flag_name
from active_learning.loop.config import LoopConfig
from active_learning.loop.holdout import hold_out
from active_learning.loop.runner import draw_initial_units
from active_learning.loop.units import SelectionUnits
from active_learning.strategies import get_strategy
from active_learning.strategies.mixes import DIVERSITY_FACTOR, mix_label

if TYPE_CHECKING:
    from active_learning.cli import BuiltTask, TaskCommand

logger = logging.getLogger("active_learning")


def loop_config(args: argparse.Namespace, device: str, **fields: Any) -> LoopConfig:
    """The LoopConfig of the parsed flags; ``fields`` override (the rank mode's sizes)."""
    values = dict(
        strategy=args.strategy, options=chosen_options(args), cycles=args.cycles,
        initial_size=args.initial_size,
        budget=args.images_per_cycle, subset_size=args.subset,
        epochs=args.epochs, steps_per_cycle=args.steps_per_cycle, same_init=args.same_init,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
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


def check_task_files(task: Any, args: argparse.Namespace, data_root: str | os.PathLike,
                     name: str) -> None:
    """Decode every image ``task`` (an adapter with ``check_files``) will read, once, before
    anything is trained or written; the images that decoded are kept in the user's cache of
    ``data_root`` for task ``name``, so a rerun only decodes what changed."""
    task.check_files(jobs=decode_jobs(args),
                     cache=dataset_cache(data_root, name) / CHECKED_IMAGES)


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
