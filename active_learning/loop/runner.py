"""The cycle runner shared by every task: train -> evaluate -> score -> select -> repeat.

The loop knows nothing about images, boxes or keypoints: a task plugs in through a *task adapter*
(:class:`~active_learning.adapter.TaskAdapter` documents the contract; ``BaseTaskAdapter`` gives
the defaults). The budget, ``pool.npz`` and the candidate subset count *units*
(``active_learning.loop.units``): images, images grouping persons, or superpixels of images.

A run lives in one folder (``runs/<task>/<dataset>/<strategy>/seed<k>/``)::

    args.json                 resolved arguments, metric and units of the files beside it
    pool.npz                  labeled_at int16 [units] and finished_cycles: the commit point
    metrics.csv               one row per finished cycle
    priorities/cycle_XX.csv   images selected after training in cycle XX (labeled from XX+1)
    scores/cycle_XX.csv       name,score,rank,chosen of every candidate the strategy scored
                              (the chosen first, as in the priority CSV; not for regions)
    regions/cycle_XX.csv      region units: name,region_id,score of the chosen superpixels
    regions/maps/<name>.png   region units: the 16-bit region map of each image named there
    selections/cycle_XX.png   a picture of what was chosen (tasks that draw one)
    embeddings/cycle_XX.npz   the report's map points: a sample of the labeled, chosen and
                              unlabeled units' embeddings (loop/report_map.py)
    learning_curve.png
    checkpoints/cycle_XX.pt   with save_checkpoints; and checkpoints/in_progress.pt mid-cycle
    checkpoints/scoring/      with save_checkpoints, a scoring pass's scores as it goes

Every file is replaced atomically. A cycle's selection files are written under ``.pending/``
and moved into place when it commits: ``metrics.csv``, ``args.json``, the moves, then
``pool.npz`` (the commit point). A crash at any point leaves a consistent run, with no file of a
cycle that did not commit; running again resumes at the first unfinished
cycle (inside it, from the last in-cycle checkpoint with ``save_checkpoints``). Every random
choice of a cycle is seeded from ``(seed, cycle)``, so the labeled set ends up the same as in an
uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import random
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler, Subset

from active_learning.adapter import PartwiseEvaluation, TaskAdapter, dataset_len
from active_learning.distributed import (
    broadcast_buffers,
    broadcast_object,
    gather_objects,
    is_distributed,
    is_main_process,
    rank,
    shard_range,
    world_size,
)
from active_learning.errors import ConfigError, RunMismatchError, UserError
from active_learning.files.atomic import atomic_torch_save, atomic_write_text
from active_learning.files.export import read_metrics_csv, write_metrics_csv
from active_learning.loop.candidates import Candidates, draw_candidates
from active_learning.loop.compatibility import check_strategy_fits
from active_learning.loop.config import (
    STAGE_DATA,
    STAGE_INITIAL,
    STAGE_MODEL,
    LoopConfig,
    derive_seed,
    protocol_options,
    recorded_options,
)
from active_learning.loop.identity import check_pool, item_contents, item_names
from active_learning.loop.inference import make_loader, progress
from active_learning.loop.loss_ranking import predicted_and_true_losses
from active_learning.loop.parallel import data_parallel
from active_learning.loop.pool import UNLABELED, PoolState
from active_learning.loop.report_map import (
    adapter_class_names,
    map_points,
    map_refusal,
    write_map_file,
)
from active_learning.loop.selection import select_next, tie_warning
from active_learning.loop.units import SelectionUnits
from active_learning.precision import autocast, grad_scaler
from active_learning.strategies import Strategy, get_strategy
from active_learning.strategies.loss_prediction import ranking_diagnostics
from active_learning.strategies.options import TrainingCompanion

IN_PROGRESS = "in_progress.pt"
PENDING = ".pending"   # a cycle's selection files, until the cycle commits
SCORING = Path("checkpoints") / "scoring"   # the scores of an unfinished scoring pass
logger = logging.getLogger("active_learning")


@dataclass
class _Run:
    """Everything one run's cycles share."""

    adapter: TaskAdapter
    config: LoopConfig
    run_dir: Path
    units: SelectionUnits
    strategy: Strategy
    device: torch.device
    state: PoolState
    record: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    # Which trained model this cycle scores with: set when its end-of-training checkpoint is
    # saved or resumed (save_checkpoints), so that its scoring pass can resume too.
    model_token: str | None = None
    # Points of each status in the report's map of a cycle (0: no map; run_active_learning's
    # report_map, 0 too for units without one embedding each).
    map_points: int = 0
    # The model the last cycle trained, kept for the next one's before_training when the
    # adapter uses it (TaskAdapter.uses_previous_model).
    previous_model: nn.Module | None = None

    @property
    def pool_path(self) -> Path:
        return self.run_dir / "pool.npz"


def run_active_learning(adapter: TaskAdapter, config: LoopConfig, run_dir: str | Path, *,
                        extra_args: Mapping[str, Any] | None = None,
                        initial_labeled: np.ndarray | None = None,
                        restart: bool = False,
                        allow_new_items: bool = False,
                        report_map: int = 0) -> list[dict[str, Any]]:
    """Simulate ``config.cycles`` labeling cycles, resuming from ``run_dir`` if it holds a run.

    Each cycle: re-initialise and train the model on the labeled units, evaluate it, then
    select ``budget`` new units (also after the last cycle: that CSV is what to label next, and
    it lets a rerun with more cycles continue). Returns the metrics rows of every finished cycle.

    ``initial_labeled`` (int [L] item indices, L == ``config.initial_size``) are the items
    (images) labeled in cycle 0 of a new run, instead of the seeded random choice: e.g. the
    images a user has labeled already, followed in the dataset by the unlabeled ones to rank.
    Every unit of these items is labeled (every superpixel of an image). A resumed run must have
    started from the same set. Messages go to the ``active_learning`` logger.

    ``restart=True`` starts a new run even where ``run_dir`` holds one (e.g. a new ranking after
    the user labeled more images). The old run's files stay until the new run replaces each of
    them, and its ``pool.npz`` until the new first cycle commits: an interrupted restart loses
    nothing.

    A run records its items' names (``PoolState.item_names``): resuming on a dataset whose items
    changed is refused, naming them (``loop.identity``); ``allow_new_items=True`` accepts a
    dataset that only gained items, which join the pool unlabeled.

    ``report_map``: after each cycle's choice, the embeddings of a seeded sample of the chosen
    units and of up to ``report_map`` labeled and unlabeled ones go to
    ``embeddings/cycle_XX.npz``, the report's t-SNE map and class histogram
    (``loop/report_map.py``; one extra pass over about a thousand images per cycle); 0 (the
    default for a library caller, who writes no report page): none. The command line passes
    ``MAP_POINTS`` unless ``--no-report-map``. Not part of the protocol: it may change when a
    run resumes.
    """
    run = _open_run_everywhere(adapter, config, Path(run_dir), extra_args, initial_labeled,
                               restart, allow_new_items)
    _set_report_map(run, report_map)
    if run.rows and run.state.finished_cycles >= config.cycles:
        logger.info("%s has finished all %d cycle(s) already", run.run_dir, config.cycles)
        if is_main_process():
            _plot(run)
    for cycle in range(run.state.finished_cycles, config.cycles):
        _run_cycle(run, cycle)
    return run.rows


# ---- start or resume ---------------------------------------------------------------------


def _set_report_map(run: _Run, points: int) -> None:
    """The report map's size, and ``args.json``'s ``report`` entry that says why a cycle has
    no map (turned off, or units without an embedding of their own: superpixels)."""
    if points < 0:
        raise ConfigError(f"report_map must be >= 0 points, got {points}")
    refusal = map_refusal(run.units) if points else None
    run.map_points = 0 if refusal else points
    run.record["report"] = {"map_points": run.map_points}
    if refusal:
        run.record["report"]["map_left_out"] = refusal


def _open_run_everywhere(adapter: TaskAdapter, config: LoopConfig, run_dir: Path,
                         extra_args: Mapping[str, Any] | None,
                         initial_labeled: np.ndarray | None, restart: bool,
                         allow_new_items: bool) -> _Run:
    """``_open_run`` on rank 0, the only process that reads and writes the run folder; the
    others take its state (so a run started with N processes resumes with any number, and the
    folder need not be shared). A UserError of rank 0 is raised on every process."""
    if not is_distributed():
        return _open_run(adapter, config, run_dir, extra_args, initial_labeled, restart,
                         allow_new_items)
    run, failure = None, None
    if is_main_process():
        try:
            run = _open_run(adapter, config, run_dir, extra_args, initial_labeled, restart,
                            allow_new_items)
        except UserError as error:
            failure = error
    # Only rank 0's is sent; without the pool's names, which only rank 0 reads or writes.
    mine = failure if run is None else (
        dataclasses.replace(run.state, item_names=None, item_units=None, item_contents=None),
        run.rows)
    shared = broadcast_object(mine)
    if isinstance(shared, UserError):
        raise shared
    if run is None:
        units = adapter.selection_units()
        run = _Run(adapter, config, run_dir, units, get_strategy(config.strategy),
                   torch.device(config.device), shared[0],
                   _run_record(adapter, config, extra_args, units), shared[1])
    return run


def _open_run(adapter: TaskAdapter, config: LoopConfig, run_dir: Path,
              extra_args: Mapping[str, Any] | None,
              initial_labeled: np.ndarray | None, restart: bool,
              allow_new_items: bool = False) -> _Run:
    """Validate everything, then load the run's state or draw the initial labeled set."""
    units = adapter.selection_units()
    pool_size = int(units.selectable().sum())
    config.validate(pool_size, n_items=units.n_items)
    strategy = get_strategy(config.strategy)
    check_strategy_fits(strategy, adapter, units)
    initial_units = draw_initial_units(units, config, initial_labeled)
    config.validate(pool_size, n_items=units.n_items, initial_units=len(initial_units))
    record = _run_record(adapter, config, extra_args, units)
    pool_path = run_dir / "pool.npz"
    resuming = pool_path.exists() and not restart
    names, counts = item_names(units, adapter.item_name), units.units_per_item()
    contents = item_contents(adapter, units.item_count)
    if resuming:
        state = PoolState.load(pool_path)
        _check_args(run_dir, config, record, initial_units=len(state.labeled_up_to(0)))
        state = check_pool(state, names, counts, str(pool_path), allow_new_items=allow_new_items,
                           contents=contents)
        if initial_labeled is not None and not np.array_equal(state.labeled_up_to(0),
                                                              np.sort(initial_units)):
            raise RunMismatchError(f"{pool_path} started from another initial labeled set than "
                                   "initial_labeled; use another output folder")
        logger.info("resuming %s after %d finished cycle(s)", run_dir, state.finished_cycles)
    else:
        state = PoolState.empty(units.n_units)
        state.mark_labeled(initial_units, cycle=0)
        state.item_names, state.item_units, state.item_contents = names, counts, contents
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:   # a file in the way, no permission, a read-only disk
        reason = error.strerror or error
        raise ConfigError(f"cannot create the run folder {run_dir}: {reason}") from None
    shutil.rmtree(run_dir / PENDING, ignore_errors=True)   # files of a cycle that did not commit
    if resuming:   # a crash between moving a cycle's files and pool.npz left them: not committed
        _remove_uncommitted(run_dir, state.finished_cycles)
    run = _Run(adapter, config, run_dir, units, strategy, torch.device(config.device), state,
               record)
    # Rows of cycles that did not reach the commit point (pool.npz) are dropped and redone.
    try:
        run.rows = [row for row in read_metrics_csv(run_dir / "metrics.csv")
                    if resuming and int(row["cycle"]) < state.finished_cycles]
    except (ValueError, KeyError, TypeError) as error:
        raise RunMismatchError(f"cannot read {run_dir / 'metrics.csv'}: {error}") from None
    return run


def _run_record(adapter: TaskAdapter, config: LoopConfig, extra_args: Mapping[str, Any] | None,
                units: SelectionUnits) -> dict[str, Any]:
    """What ``args.json`` holds: the protocol, the task's arguments, the metric and the units."""
    return {"loop": dataclasses.asdict(config), "task": dict(extra_args or {}),
            "adapter": adapter.name,
            "metric": {"name": adapter.primary_metric,
                       "higher_is_better": bool(adapter.metric_higher_is_better)},
            "units": units.describe()}


# Keys of args.json's task record renamed when the tasks' flags became one vocabulary: a run
# recorded under the old name is compared under the new one.
RENAMED_RECORD_KEYS = {"basenet": "weights_backbone", "pretrained": "weights_backbone",
                       "resume": "weights"}


def _same_value(old: Any, new: Any) -> bool:
    """Equal, or the same epochs written as a comma string before and a list now."""
    if old == new:
        return True
    if isinstance(old, str) and isinstance(new, list):
        try:
            return [int(part) for part in old.split(",") if part.strip()] == new
        except ValueError:
            return False
    return False


def _check_args(run_dir: Path, config: LoopConfig, record: Mapping[str, Any],
                initial_units: int | None = None) -> None:
    """Refuse to resume a run made with another protocol.

    Runs recorded by earlier versions resume: a field or task key added since counts as the
    value the run used, renamed keys are compared under their new name, and an
    ``initial_size`` that counted the initial units (superpixel runs did) matches
    ``initial_units``, the size of the run's own initial set.
    """
    path = run_dir / "args.json"
    if not path.exists():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunMismatchError(f"cannot read {path}: {error}") from error
    # A field added after the run was made counts as its default (the value the run used).
    old_protocol: dict[str, Any] = {item.name: item.default
                                    for item in dataclasses.fields(LoopConfig)}
    old_loop = previous.get("loop", {})
    old_protocol.update(old_loop)
    if initial_units is not None and old_protocol.get("initial_size") == initial_units:
        old_protocol["initial_size"] = config.initial_size
    # The strategy's options as the run recorded them (flat fields before strategies declared
    # them), compared as the protocol compares them (another strategy differs by name).
    strategy = get_strategy(config.strategy)
    old_options = protocol_options(strategy, recorded_options(strategy, old_loop),
                                   int(old_protocol["epochs"]))
    protocol = config.protocol()
    options = protocol.pop("options", {})
    differences = [f"{key}: {old_protocol.get(key)!r} -> {value!r}"
                   for key, value in protocol.items()
                   if not _same_value(old_protocol.get(key), value)]
    differences += [f"{config.strategy} option {key}: {old_options.get(key)!r} -> {value!r}"
                    for key, value in options.items()
                    if not _same_value(old_options.get(key), value)]
    old_task = {RENAMED_RECORD_KEYS.get(key, key): value
                for key, value in previous.get("task", {}).items()}
    differences += [f"{key}: {old_task.get(key)!r} -> {value!r}"
                    for key, value in record["task"].items()
                    if key in old_task and not _same_value(old_task[key], value)]
    differences += [f"{key}: {old_task[key]!r} -> (not given)" for key in old_task
                    if key not in record["task"] and key in RENAMED_RECORD_KEYS.values()
                    and old_task[key] not in (None, False)]
    if differences:
        raise RunMismatchError(
            f"{run_dir} holds a run made with other arguments ({'; '.join(differences)}); "
            "use another output folder, or the same arguments to resume it")


def draw_initial_units(units: SelectionUnits, config: LoopConfig,
                       initial_labeled: np.ndarray | None = None) -> np.ndarray:
    """The units labeled in cycle 0: every unit of ``initial_labeled`` items, or of
    ``config.initial_size`` items drawn with the run's initial seed (int64 [L] unit ids).

    The one place the initial set is drawn, for every unit kind (``SelectionUnits.draw_initial``).
    """
    if initial_labeled is None:
        rng = np.random.default_rng(derive_seed(config.seed, 0, STAGE_INITIAL))
        return units.draw_initial(config.initial_size, rng)
    return units.units_of_items(_check_initial_labeled(initial_labeled, config, units.item_count))


def _check_initial_labeled(initial_labeled: Any, config: LoopConfig, pool_size: int) -> np.ndarray:
    """``initial_labeled`` as int64 [L] distinct items in the pool, L == ``config.initial_size``."""
    values = np.asarray(initial_labeled)
    if values.ndim != 1 or not (values.size == 0 or np.issubdtype(values.dtype, np.integer)):
        raise ConfigError(f"initial_labeled must be a 1-D array of integer dataset indices, got "
                         f"{values.dtype} with shape {values.shape}")
    values = values.astype(np.int64)
    if len(values) != config.initial_size:
        raise ConfigError(f"initial_labeled holds {len(values)} indices but config.initial_size is "
                         f"{config.initial_size}; they must agree")
    if len(values) and (values.min() < 0 or values.max() >= pool_size):
        raise ConfigError(f"initial_labeled has indices outside the pool of {pool_size} items")
    if len(np.unique(values)) != len(values):
        raise ConfigError("initial_labeled contains repeated indices")
    return values


# ---- one cycle ---------------------------------------------------------------------------


def _run_cycle(run: _Run, cycle: int) -> None:
    """Train, evaluate, select and commit one cycle."""
    labeled = run.state.labeled_up_to(cycle)
    carried = dict(run.adapter.before_training(_previous_model(run, cycle), labeled, cycle,
                                               run.device))
    run.previous_model = None
    model, companion, train_stats, train_seconds = _train(run, cycle, labeled)
    # The companion's module gives the loss_pred need and its test-loss ranking.
    loss_module = None if companion is None else companion.module

    start = time.perf_counter()
    metrics = _evaluate(run, model, loss_module, cycle)
    eval_seconds = time.perf_counter() - start

    start = time.perf_counter()
    candidates = _draw_candidates(run, cycle)   # once: the selection's and the map's
    chosen = _select(run, model, loss_module, cycle, candidates)
    select_seconds = time.perf_counter() - start
    map_seconds = None
    if run.map_points and candidates is not None and len(chosen):
        start = time.perf_counter()
        _write_map(run, model, cycle, labeled, candidates.units, chosen)
        map_seconds = time.perf_counter() - start

    # An adapter that reads the previous cycle's model gets it back from here on resume.
    if (run.config.save_checkpoints or run.adapter.uses_previous_model) and is_main_process():
        checkpoint = {"model": model.state_dict(), "cycle": cycle,
                      "companion": None if loss_module is None else loss_module.state_dict()}
        atomic_torch_save(checkpoint, run.run_dir / "checkpoints" / f"cycle_{cycle:02d}.pt")
    # the cost by when each unit was labeled: what an annotator paid, cycle after cycle
    cost = run.units.cost(labeled, run.state.labeled_at[labeled])
    row = {"cycle": cycle, "n_labeled": len(labeled), **cost, **metrics, **carried,
           "train_loss": train_stats.get("task_loss", float("nan")), "n_selected": len(chosen),
           "train_seconds": train_seconds, "eval_seconds": eval_seconds,
           "select_seconds": select_seconds,
           "seconds": train_seconds + eval_seconds + select_seconds}
    if map_seconds is not None:   # the report's, apart from the protocol's seconds
        row["map_seconds"] = map_seconds
    _commit(run, cycle, row)
    if run.adapter.uses_previous_model:
        run.previous_model = model
    # The primary metric first; a long tail (per-class IoUs) stays in metrics.csv.
    shown = [run.adapter.primary_metric] + [key for key in metrics
                                            if key != run.adapter.primary_metric]
    summary = ", ".join(f"{key} {metrics[key]:.4f}" for key in shown[:6] if key in metrics)
    if len(shown) > 6:
        summary += f" (+{len(shown) - 6} more in metrics.csv)"
    # (a labeling round has no test set: nothing measured, no metrics to list)
    logger.info("cycle %d: %d labeled%s, %.1f s", cycle, len(labeled),
                f", {summary}" if summary else "", row["seconds"])


def _previous_model(run: _Run, cycle: int) -> nn.Module | None:
    """The model cycle ``cycle - 1`` trained, for an adapter that uses it (None otherwise and
    in cycle 0): kept in memory, or, in a resumed run, read from that cycle's checkpoint
    (``checkpoints/cycle_XX.pt``, which such a run always writes) by rank 0 and sent to all."""
    if not run.adapter.uses_previous_model or cycle == 0:
        return None
    if run.previous_model is not None:
        return run.previous_model
    path = run.run_dir / "checkpoints" / f"cycle_{cycle - 1:02d}.pt"
    state: Any = None
    if is_main_process():
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=False)["model"]
        else:   # sent to the other processes too, which would otherwise wait for the model
            state = RunMismatchError(f"{run.run_dir} resumes at cycle {cycle}, whose training "
                                     f"needs the model of cycle {cycle - 1}, but {path} is "
                                     "missing; use another output folder")
    if is_distributed():
        state = broadcast_object(state)
    if isinstance(state, RunMismatchError):
        raise state
    assert state is not None   # rank 0 read it (or failed), the others received it
    model = run.adapter.build_model()
    model.load_state_dict(state)
    return model.to(run.device)


def _build(run: _Run, cycle: int) -> tuple[nn.Module, TrainingCompanion | None, Any, Any]:
    """A freshly initialised model (and the strategy's training companion, built right after it
    from the same seed) with its optimizer, seeded per cycle."""
    # same_init: every cycle's model (and companion) from cycle 0's seed, the same weights.
    torch.manual_seed(derive_seed(run.config.seed, 0 if run.config.same_init else cycle,
                                  STAGE_MODEL))
    model = run.adapter.build_model().to(run.device)
    if run.config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    companion = None
    parameters = list(model.parameters())
    if run.strategy.companion is not None:
        companion = run.strategy.companion(run.adapter, run.config)
        parameters += list(companion.module.parameters())
    optimizer, scheduler = run.adapter.build_optimizer(parameters, run.config.epochs)
    return model, companion, optimizer, scheduler


def _train(run: _Run, cycle: int, labeled: np.ndarray
           ) -> tuple[nn.Module, TrainingCompanion | None, dict[str, float], float]:
    """Train from scratch on the labeled units (or go on from an in-cycle checkpoint)."""
    config = run.config
    model, companion, optimizer, scheduler = _build(run, cycle)
    training = run.adapter.training_set(labeled)
    size = dataset_len(training)
    if size == 0:
        raise ValueError(f"cycle {cycle}: the {len(labeled)} labeled units hold no training sample")
    data_seed = derive_seed(config.seed, cycle, STAGE_DATA)
    loader_seed = data_seed
    sampler: DistributedSampler | None = None
    steps = config.steps_per_epoch
    if is_distributed() and steps is None:   # each process trains on its share of the samples
        sampler = DistributedSampler(training, shuffle=True, seed=data_seed)
        size = len(sampler)
    if is_distributed():
        # The model was built from the same seed everywhere; from here each process draws its
        # own dropout masks, augmentations and MC-dropout masks (the same ones would correlate
        # the processes' batches, and repeat the masks of rank 0's candidates on the others').
        torch.manual_seed(derive_seed(config.seed, cycle, STAGE_DATA) + 1 + rank())
        loader_seed = data_seed + 1 + rank()
    # A last batch of one sample breaks BatchNorm on 1x1 maps and cannot form a ranking pair.
    lone_last = size % config.batch_size == 1 and size > 1 and steps is None
    # steps_per_cycle: each pass draws steps x batch samples (under torchrun each process its
    # own, from its own seed: the same number of steps on any labeled set and process count).
    loader = make_loader(run.adapter, training, config.batch_size, config, shuffle=True,
                         seed=loader_seed, drop_last=lone_last, sampler=sampler,
                         samples_per_epoch=None if steps is None else steps * config.batch_size)
    scaler = grad_scaler(run.device, config.amp)   # its loss scale carries over between epochs
    parts = (model, companion, optimizer, scheduler, loader, scaler)
    first_epoch, train_stats, seconds = _resume_in_cycle(run, cycle, parts)
    start = time.perf_counter()
    every = config.resolved_checkpoint_every
    epochs = progress(range(first_epoch, config.epochs), config.progress,
                      desc=f"cycle {cycle} training", initial=first_epoch, total=config.epochs)
    # Only fp16 has a scaler to carry over: adapters written before mixed precision, whose
    # train_one_epoch takes no scaler, still run in fp32 and bf16.
    options: dict[str, Any] = {"scaler": scaler} if scaler.is_enabled() else {}
    training_companion = companion
    if is_distributed():
        _check_takes_forward(run.adapter)
        forward, training_companion = data_parallel(run.adapter, model, companion, run.device)
        options["forward"] = forward
    for epoch in epochs:
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_stats = run.adapter.train_one_epoch(model, training_companion, loader, optimizer,
                                                  epoch=epoch, config=config, device=run.device,
                                                  **options)
        if scheduler is not None:
            scheduler.step()
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{train_stats['loss']:.3f}")
        done = epoch + 1
        # The trained model is saved too: a crash in evaluation or scoring resumes without
        # training again, and the scoring pass resumes with the same model (its token).
        if config.save_checkpoints and (done % every == 0 or done == config.epochs):
            # every process's loader generator (its own permutations with steps_per_cycle, its
            # workers' seeds): rank 0 saves them all
            loaders = gather_objects(loader.generator.get_state(), dst=0) \
                if is_distributed() else None
            if is_main_process():
                run.model_token = uuid.uuid4().hex if done == config.epochs else None
                _save_in_cycle(run, cycle, done, parts, train_stats,
                               seconds + time.perf_counter() - start, loaders)
    broadcast_buffers(model)        # every process evaluates and scores rank 0's model
    broadcast_buffers(None if companion is None else companion.module)
    if is_distributed():            # the token of rank 0's saved model names every shard's scores
        run.model_token = broadcast_object(run.model_token)
    return model, companion, train_stats, seconds + time.perf_counter() - start


def _check_takes_forward(adapter: TaskAdapter) -> None:
    """Refuse, with one message, an adapter whose ``train_one_epoch`` cannot take the DDP
    ``forward``: it would train each process's model apart, unsynchronised."""
    parameters = inspect.signature(adapter.train_one_epoch).parameters
    if "forward" not in parameters and not any(
            parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        raise ConfigError(f"{type(adapter).__name__}.train_one_epoch takes no forward= argument, "
                          "so it cannot train under torchrun; run it in one process")


def _rng_state(loader: Any) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate(), "loader": loader.generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], loader: Any) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    loader.generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _protocol_key(run: _Run) -> str:
    """What an in-cycle checkpoint must agree with to be resumed."""
    return json.dumps({"loop": run.config.protocol(), "task": run.record["task"]},
                      sort_keys=True, default=str)


def _save_in_cycle(run: _Run, cycle: int, next_epoch: int, parts: tuple, train_stats: dict,
                   seconds: float, loaders: list[torch.Tensor] | None = None) -> None:
    """``checkpoints/in_progress.pt``; ``loaders``: under torchrun, every process's loader
    generator state in rank order (``rng["loaders"]``)."""
    model, companion, optimizer, scheduler, loader, scaler = parts
    rng = _rng_state(loader)
    if loaders is not None:
        rng["loaders"] = loaders
    atomic_torch_save({
        "cycle": cycle, "next_epoch": next_epoch, "protocol": _protocol_key(run),
        "labeled_at": run.state.labeled_at.copy(), "model": model.state_dict(),
        "companion": None if companion is None else companion.module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng, "train_stats": train_stats, "train_seconds": seconds,
        "scaler": scaler.state_dict(), "model_token": run.model_token,
    }, run.run_dir / "checkpoints" / IN_PROGRESS)


def _read_in_cycle(run: _Run, cycle: int) -> dict[str, Any] | None:
    """``checkpoints/in_progress.pt`` (on the CPU) if it belongs to this cycle of this run."""
    path = run.run_dir / "checkpoints" / IN_PROGRESS
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a torn or foreign file: train the cycle from the start
        logger.warning("ignoring %s: %s", path, error)
        return None
    if (saved.get("cycle") != cycle or saved.get("protocol") != _protocol_key(run)
            or not np.array_equal(saved.get("labeled_at"), run.state.labeled_at)):
        logger.warning("ignoring %s: it belongs to another cycle or protocol", path)
        return None
    return saved


def _resume_in_cycle(run: _Run, cycle: int, parts: tuple) -> tuple[int, dict[str, float], float]:
    """Load ``checkpoints/in_progress.pt`` if it belongs to this cycle of this run.

    Returns (first epoch to train, last training stats, training seconds so far).
    """
    if not run.config.save_checkpoints:
        return 0, {}, 0.0
    # Rank 0 reads the checkpoint (the run folder is its own) and sends it to the others, so
    # every process resumes at the same epoch with the same state.
    saved = _read_in_cycle(run, cycle) if is_main_process() else None
    if is_distributed():
        saved = broadcast_object(saved)
    if saved is None:
        return 0, {}, 0.0
    model, companion, optimizer, scheduler, loader, scaler = parts
    model.load_state_dict(saved["model"])
    if companion is not None:
        companion.module.load_state_dict(saved["companion"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler"])
    _set_rng_state(saved["rng"], loader)
    if saved.get("scaler"):   # absent from checkpoints of earlier versions; empty when disabled
        scaler.load_state_dict(saved["scaler"])
    run.model_token = saved.get("model_token")
    if is_distributed():   # rank 0's random state was saved: each process draws its own
        reseed = (derive_seed(run.config.seed, cycle, STAGE_DATA) + 1 + rank()
                  + world_size() * int(saved["next_epoch"]))
        torch.manual_seed(reseed)
        # The loader's generator (with steps_per_cycle it draws the batches): this process's
        # own saved state, so its batches are those of the uninterrupted run; from a checkpoint
        # of another process count, or of an earlier version (rank 0's only), its own seed.
        loaders = saved["rng"].get("loaders")
        if loaders is not None and len(loaders) == world_size():
            loader.generator.set_state(loaders[rank()])
        else:
            loader.generator.manual_seed(reseed)
    logger.info("cycle %d: resuming training at epoch %d from %s", cycle, saved["next_epoch"],
                run.run_dir / "checkpoints" / IN_PROGRESS)
    return int(saved["next_epoch"]), dict(saved["train_stats"]), float(saved["train_seconds"])


def _evaluate(run: _Run, model: nn.Module, loss_module: nn.Module | None,
              cycle: int) -> dict[str, float]:
    """The adapter's metrics; with a loss module, how well it and the entropy rank the test
    losses. The same dict on every process.

    Under ``torchrun`` each process evaluates its slice of the test set and rank 0 combines the
    slices' parts (``PartwiseEvaluation``) into the metrics of the whole set, then sends them to
    the others. An adapter that only has ``evaluate`` is evaluated by rank 0 alone.
    """
    config = run.config
    test_set = run.adapter.test_set
    if dataset_len(test_set) == 0:   # a labeling round without test labels: nothing to measure
        return {}
    partwise = run.adapter if isinstance(run.adapter, PartwiseEvaluation) else None
    sharded = is_distributed() and partwise is not None
    if sharded:
        test_set = Subset(test_set, range(*shard_range(dataset_len(test_set), rank(),
                                                       world_size())))
    elif not is_main_process():
        return broadcast_object(None)
    loader = make_loader(run.adapter, test_set, config.eval_batch_size, config)
    batches = progress(loader, config.progress, desc=f"cycle {cycle} evaluation")
    with autocast(run.device, config.amp):
        if sharded:
            assert partwise is not None
            parts = gather_objects(partwise.evaluation_part(model, batches, run.device), dst=0)
            metrics = partwise.metrics_from_parts(parts) if parts is not None else {}
        else:
            metrics = dict(run.adapter.evaluate(model, batches, run.device))
    if loss_module is not None:
        losses = predicted_and_true_losses(
            run.adapter, model, loss_module,
            progress(loader, config.progress, desc=f"cycle {cycle} loss ranking"), run.device,
            reduction=config.reduction, amp=config.amp, channels_last=config.channels_last)
        gathered = gather_objects(losses, dst=0) if sharded else [losses]
        if gathered is not None:   # rank 0: the slices in order are the whole test set
            predicted, true, entropy = (None if column[0] is None else np.concatenate(column)
                                        for column in zip(*gathered, strict=True))
            metrics.update(ranking_diagnostics(predicted, true))
            if entropy is not None:  # the reference: how well the model's own entropy ranks them
                metrics.update({f"entropy_{key}": value
                                for key, value in ranking_diagnostics(entropy, true).items()})
    return broadcast_object(metrics)


def _draw_candidates(run: _Run, cycle: int) -> Candidates | None:
    """The cycle's candidates (``loop/candidates.py``), drawn once and handed to the selection
    and to the report's map; None when no unit is left to select."""
    left = (run.state.labeled_at == UNLABELED) & run.units.selectable()
    if not left.any():
        return None
    return draw_candidates(run.units, run.state, cycle, run.config)


def _select(run: _Run, model: nn.Module, loss_module: nn.Module | None, cycle: int,
            candidates: Candidates | None) -> np.ndarray:
    """Choose the next units among ``candidates``, write what the annotator needs, mark them
    labeled in ``cycle + 1``; returns them (int64 [K] unit ids, best first; empty when none
    are left)."""
    if candidates is None:
        logger.info("cycle %d: the unlabeled pool is exhausted; nothing left to select", cycle)
        return np.zeros(0, dtype=np.int64)
    scored: dict[str, np.ndarray] = {}
    indices, scores = select_next(run.adapter, model, loss_module, run.state, cycle, run.config,
                                  run.device, candidates=candidates,
                                  store_folder=run.run_dir / SCORING,
                                  model_token=run.model_token, scored=scored)
    ties = tie_warning(scores) if run.strategy.needs else None   # random has no scores to tie
    if ties is not None and is_main_process():
        logger.warning("cycle %d: %s", cycle, ties)
    if is_main_process():
        # Written aside, moved into place when the cycle commits: an interrupted cycle leaves
        # no priority CSV beside the pool.npz that does not include it.
        pending = run.run_dir / PENDING
        run.units.write_selection(pending, cycle, indices, scores, run.adapter.item_name)
        run.units.write_scores(pending, cycle, indices, scores, scored, run.adapter.item_name)
        run.adapter.draw_selection(indices, scores,
                                   pending / "selections" / f"cycle_{cycle:02d}.png", model=model)
    run.state.mark_labeled(indices, cycle + 1)
    return np.asarray(indices, dtype=np.int64)


def _write_map(run: _Run, model: nn.Module, cycle: int, labeled: np.ndarray,
               candidates: np.ndarray, chosen: np.ndarray) -> None:
    """The report's map points of the cycle (``loop/report_map.py``), written under
    ``.pending/`` like the cycle's other selection files. Every process embeds its shard;
    rank 0 writes."""
    points = map_points(run.adapter, model, run.units, labeled, candidates, chosen, run.config,
                        run.device, cycle, per_status=run.map_points)
    if points is not None and is_main_process():
        write_map_file(points, run.run_dir / PENDING / "embeddings" / f"cycle_{cycle:02d}.npz",
                       class_names=adapter_class_names(run.adapter),
                       item_name=run.adapter.item_name)


def _commit(run: _Run, cycle: int, row: dict[str, Any]) -> None:
    """Record the cycle: metrics, then args.json, then pool.npz (the commit point)."""
    run.rows.append(row)
    if not is_main_process():   # rank 0 writes; the others only keep the state
        run.state.finished_cycles = cycle + 1
        shutil.rmtree(run.run_dir / SCORING / f"process_{rank()}_of_{world_size()}",
                      ignore_errors=True)   # its shard's scores, on a disk of its own
        run.model_token = None
        return
    write_metrics_csv(run.rows, run.run_dir / "metrics.csv")
    # Written here rather than at the start, so that a rerun that fails before its first commit
    # leaves the args.json that describes the files beside it.
    atomic_write_text(run.run_dir / "args.json",
                      json.dumps(run.record, indent=2, sort_keys=True, default=str) + "\n")
    _move_pending(run.run_dir)
    run.state.finished_cycles = cycle + 1
    run.state.save(run.pool_path)
    (run.run_dir / "checkpoints" / IN_PROGRESS).unlink(missing_ok=True)
    shutil.rmtree(run.run_dir / SCORING, ignore_errors=True)
    run.model_token = None
    _plot(run)


def _remove_uncommitted(run_dir: Path, finished_cycles: int) -> None:
    """Delete the selection files of cycles ``finished_cycles`` and later (none committed)."""
    for folder in ("priorities", "scores", "regions", "selections", "embeddings"):
        for path in (run_dir / folder).glob("cycle_*.*"):
            number = path.stem.removeprefix("cycle_")
            if number.isdigit() and int(number) >= finished_cycles:
                path.unlink()


def _move_pending(run_dir: Path) -> None:
    """Move the cycle's selection files from ``.pending/`` to their places in the run folder.

    Each move is an atomic rename on the same file system; the cycle commits with ``pool.npz``
    right after, and a rerun deletes a ``.pending/`` left by a crash between the two.
    """
    pending = run_dir / PENDING
    if not pending.is_dir():
        return
    for source in sorted(path for path in pending.rglob("*") if path.is_file()):
        target = run_dir / source.relative_to(pending)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    shutil.rmtree(pending, ignore_errors=True)


def _plot(run: _Run) -> None:
    from active_learning.drawing.curves import plot_learning_curve

    if not any(run.adapter.primary_metric in row for row in run.rows):
        return   # nothing was measured (a labeling round without test labels)

    # The run folder's tail (<task>/<dataset>/<strategy>/seed<k>) says what the curve is.
    title = "/".join(run.run_dir.resolve().parts[-4:])
    plot_learning_curve({run.strategy.name: run.rows}, run.run_dir / "learning_curve.png",
                        metric=run.adapter.primary_metric, title=title, x=run.units.x_axis)
