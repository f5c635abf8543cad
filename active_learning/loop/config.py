"""The protocol of a simulated run (``LoopConfig``) and the per-stage seeds derived from it."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from active_learning.errors import ConfigError
from active_learning.loop.units import UNIT_REDUCTIONS
from active_learning.strategies import Strategy, get_strategy, list_strategies
from active_learning.strategies.mixes import DIVERSITIES, DIVERSITY_FACTOR, mix_label
from active_learning.strategies.options import resolve_options


@dataclass
class LoopConfig:
    """Protocol of a simulated active learning run. Defaults follow Learning Loss (Yoo & Kweon)."""

    strategy: str = "random"
    cycles: int = 10
    initial_size: int = 1000
    budget: int = 1000                 # items added per cycle
    subset_size: int | None = None     # candidates scored per cycle; None = subset_factor *
                                       # budget, 0 = all
    subset_factor: int = 10
    epochs: int = 200
    # A fixed training length instead of epochs over the labeled set, whose size differs between
    # strategies (and unit kinds): each cycle trains exactly this many batches, in `epochs` equal
    # passes (what the schedule, the checkpoints and the loss module's warm-up count); None:
    # `epochs` full passes over the labeled samples. Under torchrun each process draws its own
    # steps_per_cycle batches from the whole labeled set (its own random permutations, not a
    # shard): a step's global batch is world size x batch_size samples, and the processes may
    # draw the same sample in the same step.
    steps_per_cycle: int | None = None
    # Every cycle starts from the same initial weights (those of cycle 0) instead of weights
    # seeded per cycle, so that one cycle differs from the last only by its labels.
    same_init: bool = False
    batch_size: int = 128
    eval_batch_size: int = 256
    # The strategy's own settings (Strategy.options: Learning Loss's lamda, DAL's
    # max_epochs, ...), name -> value; the declared defaults fill in what is not given.
    options: dict[str, Any] = field(default_factory=dict)
    # Shared by every MC-dropout strategy (and BatchBALD), on every task: passes T.
    mc_samples: int = 20
    # Shared by every score strategy on a dense task: per-pixel/per-box scores -> one per image.
    reduction: str = "mean"
    # Mixes (strategies/mixes.py): a diversity step after a score strategy, on the
    # diversity_factor x budget best; a share of each budget drawn at random.
    diversity: str | None = None
    diversity_factor: int = DIVERSITY_FACTOR
    random_fraction: float = 0.0
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    unit_reduction: str = "max"        # grouped units (pose): an image's score from its samples'
    save_checkpoints: bool = False
    checkpoint_every: int = 0          # with save_checkpoints: epochs between in-cycle
                                       # checkpoints (0 = 10% of the epochs)
    progress: bool = True
    amp: str | None = None             # mixed precision: "bf16", "fp16" or None (fp32)
    channels_last: bool = False        # NHWC memory format for the model and its image batches

    # Fields that may change between a run and its resumption (how it runs, not what it does).
    RESUMABLE_CHANGES = ("cycles", "device", "num_workers", "save_checkpoints", "progress",
                         "eval_batch_size", "checkpoint_every", "amp", "channels_last")

    def __post_init__(self) -> None:
        """Fill in the strategy's declared defaults (an unknown strategy is ``validate``'s
        error; options it does not declare stay, for ``validate`` to name)."""
        strategy = _registered(self.strategy)
        if strategy is not None:
            self.options = resolve_options(strategy.options, self.options)

    @property
    def steps_per_epoch(self) -> int | None:
        """Batches per pass with ``steps_per_cycle`` (None: one pass over the labeled set)."""
        return None if self.steps_per_cycle is None else self.steps_per_cycle // self.epochs

    def resolved_subset_size(self) -> int:
        """0 means every unlabeled item."""
        return self.subset_factor * self.budget if self.subset_size is None else self.subset_size

    @property
    def resolved_checkpoint_every(self) -> int:
        return self.checkpoint_every or max(1, self.epochs // 10)

    def validate(self, pool_size: int, *, n_items: int | None = None,
                 initial_units: int | None = None) -> None:
        """Raise ConfigError with one clear message for an impossible protocol.

        ``pool_size`` counts the selectable units (images, persons' images, superpixels) and
        ``n_items`` the items ``initial_size`` draws from (images; default: ``pool_size``).
        ``initial_units`` is how many units the initial set holds (default: ``initial_size``;
        every superpixel of ``initial_size`` images for region units).
        """
        strategy = get_strategy(self.strategy)
        n_items = pool_size if n_items is None else n_items
        initial_units = self.initial_size if initial_units is None else initial_units
        if pool_size <= 0:
            raise ConfigError("the training pool is empty")
        checks = [
            (self.cycles >= 1, f"cycles must be >= 1, got {self.cycles}"),
            (self.initial_size >= 1,
             f"the initial labeled set must hold >= 1 item, got {self.initial_size}"),
            (self.initial_size <= n_items,
             f"the initial labeled set ({self.initial_size}) is larger than the pool ({n_items})"),
            (self.budget >= 1, f"the budget per cycle must be >= 1, got {self.budget}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.steps_per_cycle is None or (self.steps_per_cycle >= self.epochs
                                              and self.steps_per_cycle % self.epochs == 0),
             f"--steps-per-cycle must be a multiple of --epochs ({self.epochs}), got "
             f"{self.steps_per_cycle}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1,
             f"evaluation batch size must be >= 1, got {self.eval_batch_size}"),
            (self.num_workers >= 0, f"data loader workers must be >= 0, got {self.num_workers}"),
            (self.subset_factor >= 1, f"subset factor must be >= 1, got {self.subset_factor}"),
            (self.resolved_subset_size() >= 0, f"subset size must be >= 0, got {self.subset_size}"),
            (self.mc_samples >= 1, f"MC samples must be >= 1, got {self.mc_samples}"),
            (self.reduction in ("mean", "max"),
             f"reduction must be mean or max, got {self.reduction!r}"),
            (self.unit_reduction in UNIT_REDUCTIONS,
             f"unit reduction must be one of {', '.join(UNIT_REDUCTIONS)}, got "
             f"{self.unit_reduction!r}"),
            (self.checkpoint_every >= 0,
             f"checkpoint interval must be >= 0 epochs, got {self.checkpoint_every}"),
            (self.amp in (None, "bf16", "fp16"),
             f"amp must be bf16, fp16 or None, got {self.amp!r}"),
        ]
        checks += [
            (0.0 <= self.random_fraction < 1.0,
             f"--random-fraction must be in [0, 1), got {self.random_fraction}"),
            (self.diversity is None or self.diversity in DIVERSITIES,
             f"--diversity must be one of {', '.join(DIVERSITIES)}, got {self.diversity!r}"),
            (self.diversity_factor >= 1,
             f"--diversity-factor must be >= 1, got {self.diversity_factor}"),
        ]
        if self.diversity is not None:
            refusal = diversity_refusal(self.strategy)
            if refusal is not None:
                raise ConfigError(refusal)
        checks += [(False, message) for message in strategy.option_errors(self.options)]
        if strategy.check_config is not None:
            refusal = strategy.check_config(self)
            checks.append((refusal is None, refusal or ""))
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        subset = self.resolved_subset_size()
        if subset and subset < self.budget:
            raise ConfigError(f"the scored subset ({subset}) is smaller than the "
                              f"budget ({self.budget})")
        useful = self.useful_cycles(pool_size, initial_units)
        if self.cycles > useful:
            raise ConfigError(
                f"{self.cycles} cycles exhaust the pool: {initial_units} initial + {self.budget} "
                f"per cycle labels all {pool_size} units by cycle {useful - 1}, so later cycles "
                f"would retrain on the same set; use at most {useful} cycles, or a smaller budget")

    def useful_cycles(self, pool_size: int, initial_units: int | None = None) -> int:
        """Cycles until every unit is labeled (the last one trains on the whole pool)."""
        initial_units = self.initial_size if initial_units is None else initial_units
        remaining = max(0, pool_size - initial_units)
        return 1 + -(-remaining // self.budget) if self.budget >= 1 else 1

    def protocol(self) -> dict[str, Any]:
        """The fields that define the run (all but those allowed to change on resume), with the
        strategy's options as it compares them (``protocol_options``; none for a strategy
        without options: only the chosen strategy's settings make a run another run)."""
        values = dataclasses.asdict(self)
        unused = set(self.RESUMABLE_CHANGES) | {"options"}
        # A run without a mix keeps the protocol it had before mixes existed (and resumes).
        if self.diversity is None:
            unused |= {"diversity", "diversity_factor"}
        if not self.random_fraction:
            unused.add("random_fraction")
        # Likewise a run trained by epochs from per-cycle weights (every run made before them).
        if self.steps_per_cycle is None:
            unused.add("steps_per_cycle")
        if not self.same_init:
            unused.add("same_init")
        protocol = {key: value for key, value in values.items() if key not in unused}
        options = protocol_options(get_strategy(self.strategy), self.options, self.epochs)
        if options:
            protocol["options"] = options
        return protocol

    @property
    def strategy_label(self) -> str:
        """The strategy with its mix, as run folders and comparisons name it
        (``entropy+coreset+random0.2``; ``entropy`` without a mix)."""
        return mix_label(self.strategy, self.diversity, self.random_fraction,
                         self.diversity_factor)

    def strategy_options(self) -> dict[str, Any]:
        """Keyword options of the strategy's ``select_set``: a set strategy's declared options
        (``Strategy.options``); none for a score strategy (its options configure its training
        companion)."""
        strategy = get_strategy(self.strategy)
        if not strategy.is_set_strategy:
            return {}
        return {option.name: self.options[option.name] for option in strategy.options}


def diversity_refusal(strategy_name: str) -> str | None:
    """Why ``--diversity`` cannot follow this strategy, or None: the diversity step reorders
    the candidates a score strategy ranks, by their embeddings, one per unit."""
    strategy = get_strategy(strategy_name)
    if not strategy.needs:
        return (f"--diversity follows a score strategy; {strategy_name!r} scores nothing (use "
                "--strategy coreset for diversity alone)")
    if strategy.is_set_strategy:
        return (f"--diversity follows a score strategy; {strategy_name!r} chooses a set of its "
                "own")
    if strategy.region_level:
        return (f"--diversity compares units by their embeddings, and the superpixels of "
                f"{strategy_name!r} have none of their own")
    return None


def _registered(name: str) -> Strategy | None:
    return get_strategy(name) if name in list_strategies() else None


def protocol_options(strategy: Strategy, options: Mapping[str, Any],
                     epochs: int) -> dict[str, Any]:
    """The strategy's options as runs compare them: those in its protocol, each as its
    ``protocol_value`` (Learning Loss's detach epoch, given or derived from a share of the
    epochs); the declared default where ``options`` lacks one."""
    resolved = resolve_options(strategy.options, options)
    return {option.name: (option.protocol_value(resolved, epochs) if option.protocol_value
                          else resolved[option.name])
            for option in strategy.options if option.in_protocol}


def recorded_options(strategy: Strategy, loop: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy's options of an ``args.json``'s ``loop`` record: its ``options``, or, in a
    run recorded before strategies declared their options, the flat fields that held them
    (``StrategyOption.legacy_field``: DAL's ``max_epochs`` was ``dal_max_epochs``)."""
    if isinstance(loop.get("options"), Mapping):
        return dict(loop["options"])
    return {option.name: loop[option.legacy_field] for option in strategy.options
            if option.legacy_field is not None and option.legacy_field in loop}


def derive_seed(seed: int, cycle: int, stage: int) -> int:
    """A 31-bit seed for one stage of one cycle, independent of every other stage and cycle."""
    return int(np.random.SeedSequence([seed, cycle, stage]).generate_state(1)[0] & 0x7FFFFFFF)


(STAGE_MODEL, STAGE_DATA, STAGE_SUBSET, STAGE_SELECT, STAGE_INITIAL, STAGE_HOLDOUT,
 STAGE_PASSIVE) = range(7)
