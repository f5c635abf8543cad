"""The command line of every task: what a task declares, and the modes a run dispatches to.

A task's ``train.py`` describes itself in a :class:`TaskCommand` (its flags, output and label
kinds, unit classes, reference protocol, presets, the original project's flag spellings, and
the ``build`` function that returns its adapter) and calls :func:`entry_points`. ``main`` then
parses (``arguments.py``: the shared flags, the strategies' options, the task's own), checks and
sizes the run before anything is written (``run_setup.py``), and runs one of three modes: a
simulation of the labeling cycles, rank mode (``--unlabeled-dir``: one cycle over every labeled
image, the unlabeled ones ranked) or ``train.py round`` (``active_learning.rounds``). Messages
go through the ``active_learning`` logger, which :func:`run` sends to stdout; a user's error is
one ``error:`` line and exit 2, Ctrl-C one line and exit 130, anything else a bug that keeps its
traceback (``console.py``). The flag vocabulary is documented in ``docs/design.md``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from active_learning.arguments import build_parser, parse_args
from active_learning.console import cli_errors, configure_logging
from active_learning.distributed import finish, is_main_process, resolve_device
from active_learning.errors import ConfigError
from active_learning.files.pretrained import PublishedCheckpoint
from active_learning.flags import TaskArguments
from active_learning.loop.compatibility import strategies_for, strategy_refusal
from active_learning.loop.units import SelectionUnits
from active_learning.run_setup import (
    copy_last_priorities,
    prepare,
    report_map_points,
    run_record,
    set_threads,
    size_run,
)
from active_learning.strategies import get_strategy

if TYPE_CHECKING:
    from active_learning.labels.kinds import LabelKind

logger = logging.getLogger("active_learning")

# Original flag -> the strategy it selects (every task); tasks add their own (e.g. superpixels).
STRATEGY_ALIASES = {
    "use_loss_prediction_al": "loss_prediction",
    "use_active_learning": "loss_prediction",
    "use_discriminative_al": "discriminative",
}


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
        predict: round mode: ``(model, name) -> files.predictions.ImagePrediction | None``, the
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


# ---- running -------------------------------------------------------------------------------


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

    with cli_errors(resumable=run_dir):   # the run is finished: only its page is at stake
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


def run_script(main: Callable[[], Path]) -> None:
    """A task script's ``if __name__ == "__main__":`` block: ``main()``, then, under torchrun,
    the end of the process without the interpreter's teardown (:func:`exit_without_teardown`).
    A program that calls ``main()`` itself gets the run folder back, as always."""
    main()
    if "TORCHELASTIC_ERROR_FILE" in os.environ:
        exit_without_teardown()


def exit_without_teardown() -> None:
    """End a finished torchrun process with exit code 0, skipping the interpreter's teardown.

    After DistributedDataParallel over gloo, that teardown aborts the process now and then
    (SIGABRT, "terminate called without an active exception": a thread of the C++ side still
    running), although every file is written and the process group destroyed: torchrun then
    reports the run as failed. Measured with a two-process DDP script on a busy 2-core machine:
    8 aborts in 50 ends; none in 20 that ended like this (as multiprocessing ends its children).
    Every file of the run is closed by now; the logs are flushed here.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_round_command(command: TaskCommand, argv: Sequence[str]) -> Path:
    """``train.py round ...``: one round of the labeling loop (``active_learning.rounds``);
    returns the round's folder."""
    from active_learning.loop.runner import run_active_learning
    from active_learning.rounds.run import run_round

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


