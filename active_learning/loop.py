"""The cycle runner shared by every task: train -> evaluate -> score -> select -> repeat.

The loop knows nothing about images, boxes or keypoints: a task plugs in through a *task adapter*
(:class:`TaskAdapter` documents the contract; :class:`BaseTaskAdapter` gives the defaults).

A run lives in one folder (``runs/<task>/<dataset>/<strategy>/seed<k>/``)::

    args.json                 resolved arguments (a rerun with other protocol arguments is refused)
    pool.npz                  labeled_at int16 [N] and finished_cycles: the commit point of a cycle
    metrics.csv               one row per finished cycle
    priorities/cycle_XX.csv   items selected after training in cycle XX (labeled from cycle XX+1)
    learning_curve.png
    checkpoints/cycle_XX.pt   with save_checkpoints

Every file is replaced atomically. ``pool.npz`` is written last in a cycle, so a crash at any
point leaves a consistent run; running again resumes at the first unfinished cycle, and because
every random choice of a cycle is seeded from ``(seed, cycle)`` the labeled set ends up the same
as in an uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .atomic import atomic_torch_save, atomic_write_text
from .export import read_metrics_csv, write_entropies_csv, write_metrics_csv
from .loss_prediction import LossPredictionLoss, LossPredictionModule
from .pool import PoolState
from .strategies import (EMBEDDING, GRAD_EMBEDDING, LOSS_PRED, MC_PROBS, PROBS, Strategy,
                         choose_new_labeled_indices, clip_budget, get_strategy)


class TaskAdapter(Protocol):
    """What a task provides to the loop (see DESIGN.md, "The task adapter contract").

    Datasets: ``train_set`` (augmented view used for training), ``pool_set`` (the same N items
    without augmentation, used for scoring) and ``test_set``. Batches from their loaders (with the
    adapter's ``collate_fn``) go through ``split_batch`` to become ``(inputs, targets)``.
    """

    name: str
    primary_metric: str                 # metric drawn on the learning curve, e.g. "accuracy"
    feature_info: list[dict]            # [{"name", "channels", "stride"}] maps feeding the loss module
    train_set: Dataset
    pool_set: Dataset
    test_set: Dataset
    collate_fn: Callable | None

    def build_model(self) -> nn.Module: ...
    def build_optimizer(self, parameters: Iterable[nn.Parameter], epochs: int) -> tuple[Any, Any]: ...
    def split_batch(self, batch: Any, device: torch.device) -> tuple[Any, Any]: ...
    def forward_intermediates(self, model: nn.Module, inputs: Any) -> tuple[Any, list[torch.Tensor]]: ...
    def per_sample_loss(self, outputs: Any, targets: Any) -> torch.Tensor: ...
    def probabilities(self, outputs: Any) -> torch.Tensor: ...
    def embedding(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor: ...
    def train_one_epoch(self, model: nn.Module, loss_module: nn.Module | None, loader: DataLoader,
                        optimizer: torch.optim.Optimizer, *, epoch: int, config: "LoopConfig",
                        device: torch.device) -> dict[str, float]: ...
    def evaluate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]: ...
    def item_name(self, index: int) -> str: ...


@dataclass
class LoopConfig:
    """Protocol of a simulated active learning run. Defaults follow Learning Loss (Yoo & Kweon)."""

    strategy: str = "random"
    cycles: int = 10
    initial_size: int = 1000
    budget: int = 1000                 # items added per cycle
    subset_size: int | None = None     # candidates scored per cycle; None = subset_factor * budget, 0 = all
    subset_factor: int = 10
    epochs: int = 200
    batch_size: int = 128
    eval_batch_size: int = 256
    lamda: float = 1.0                 # weight of the loss-prediction ranking loss
    margin: float = 1.0
    detach_epoch: int | None = None    # None = 60% of the epochs
    loss_pool_size: int = 1
    loss_width: int = 128
    mc_samples: int = 20
    reduction: str = "mean"
    dal_max_epochs: int = 500          # discriminative: epochs per sub-query at most (paper: 500)
    dal_sub_queries: int = 10          # discriminative: the budget is spent in this many rounds
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    save_checkpoints: bool = False
    progress: bool = True

    # Fields that may change between a run and its resumption.
    RESUMABLE_CHANGES = ("cycles", "device", "num_workers", "save_checkpoints", "progress",
                         "eval_batch_size")

    @property
    def resolved_detach_epoch(self) -> int:
        return int(0.6 * self.epochs) if self.detach_epoch is None else self.detach_epoch

    def resolved_subset_size(self) -> int:
        """0 means every unlabeled item."""
        return self.subset_factor * self.budget if self.subset_size is None else self.subset_size

    def validate(self, pool_size: int) -> None:
        """Raise ValueError with one clear message for an impossible protocol."""
        strategy = get_strategy(self.strategy)
        if pool_size <= 0:
            raise ValueError("the training pool is empty")
        checks = [
            (self.cycles >= 1, f"cycles must be >= 1, got {self.cycles}"),
            (self.initial_size >= 1, f"the initial labeled set must hold >= 1 item, got {self.initial_size}"),
            (self.initial_size <= pool_size,
             f"the initial labeled set ({self.initial_size}) is larger than the pool ({pool_size})"),
            (self.budget >= 1, f"the budget per cycle must be >= 1, got {self.budget}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"evaluation batch size must be >= 1, got {self.eval_batch_size}"),
            (self.num_workers >= 0, f"data loader workers must be >= 0, got {self.num_workers}"),
            (self.subset_factor >= 1, f"subset factor must be >= 1, got {self.subset_factor}"),
            (self.resolved_subset_size() >= 0, f"subset size must be >= 0, got {self.subset_size}"),
            (self.mc_samples >= 1, f"MC samples must be >= 1, got {self.mc_samples}"),
            (self.reduction in ("mean", "max"), f"reduction must be mean or max, got {self.reduction!r}"),
            (self.dal_max_epochs >= 1, f"DAL max epochs must be >= 1, got {self.dal_max_epochs}"),
            (self.dal_sub_queries >= 1, f"DAL sub-queries must be >= 1, got {self.dal_sub_queries}"),
        ]
        if strategy.trains_loss_module:
            checks += [
                (self.batch_size % 2 == 0 and self.batch_size >= 2,
                 f"loss prediction pairs the samples of a batch: the batch size must be even, got "
                 f"{self.batch_size}"),
                (self.margin >= 0, f"the ranking loss margin must be >= 0, got {self.margin}"),
                (self.lamda >= 0, f"the ranking loss weight (lamda) must be >= 0, got {self.lamda}"),
                (self.loss_width >= 1, f"the loss module width must be >= 1, got {self.loss_width}"),
                (self.loss_pool_size >= 1, f"the loss module pool size must be >= 1, got {self.loss_pool_size}"),
                (self.detach_epoch is None or self.detach_epoch >= 0,
                 f"detach epoch must be >= 0, got {self.detach_epoch}"),
            ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        subset = self.resolved_subset_size()
        if subset and subset < self.budget:
            raise ValueError(f"the scored subset ({subset}) is smaller than the budget ({self.budget})")

    def protocol(self) -> dict[str, Any]:
        """The fields that define the run (all but those allowed to change on resume)."""
        values = dataclasses.asdict(self)
        return {key: value for key, value in values.items() if key not in self.RESUMABLE_CHANGES}

    def strategy_options(self) -> dict[str, Any]:
        """Keyword options of the strategy's ``select_set`` (see ``Strategy.options``)."""
        if self.strategy == "discriminative":
            return {"max_epochs": self.dal_max_epochs, "n_sub_queries": self.dal_sub_queries}
        return {}


class RunMismatchError(ValueError):
    """The run folder holds a run made with other protocol arguments."""


def derive_seed(seed: int, cycle: int, stage: int) -> int:
    """A 31-bit seed for one stage of one cycle, independent of every other stage and cycle."""
    return int(np.random.SeedSequence([seed, cycle, stage]).generate_state(1)[0] & 0x7FFFFFFF)


STAGE_MODEL, STAGE_DATA, STAGE_SUBSET, STAGE_SELECT, STAGE_INITIAL = range(5)


class BaseTaskAdapter:
    """Defaults for the parts of :class:`TaskAdapter` most tasks share."""

    name = "task"
    primary_metric = "accuracy"
    feature_info: list[dict] = []
    collate_fn: Callable | None = None

    def split_batch(self, batch: Any, device: torch.device) -> tuple[Any, Any]:
        inputs, targets = batch
        return inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Softmax over the class axis: logits [B, C, *dense] -> probs [B, C, *dense]."""
        return torch.softmax(outputs.float(), dim=1)

    def embedding(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Global-average-pooled deepest feature map: [B, C, H, W] -> [B, C]."""
        return features[-1].float().mean(dim=(2, 3))

    def mc_dropout_model(self, model: nn.Module) -> nn.Module:
        """The module whose forward outputs feed ``probabilities`` under MC dropout."""
        return model

    def item_name(self, index: int) -> str:
        return f"{index:06d}"

    def train_one_epoch(self, model: nn.Module, loss_module: nn.Module | None, loader: DataLoader,
                        optimizer: torch.optim.Optimizer, *, epoch: int, config: LoopConfig,
                        device: torch.device) -> dict[str, float]:
        return train_one_epoch(self, model, loss_module, loader, optimizer, epoch=epoch,
                               config=config, device=device)


def train_one_epoch(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                    loader: DataLoader, optimizer: torch.optim.Optimizer, *, epoch: int,
                    config: LoopConfig, device: torch.device) -> dict[str, float]:
    """One epoch of task loss (+ lamda x ranking loss when a loss module is attached).

    The task loss is the mean of ``per_sample_loss``; the loss module learns to rank those
    per-sample losses. From ``detach_epoch`` on, its input features are detached so the ranking
    loss stops shaping the backbone (Yoo & Kweon, Sec. 4.1).
    """
    model.train()
    if loss_module is not None:
        loss_module.train()
    ranking_loss = LossPredictionLoss(margin=config.margin)
    detach = epoch >= config.resolved_detach_epoch
    totals = {"loss": 0.0, "task_loss": 0.0, "ranking_loss": 0.0}
    seen = 0
    for batch in loader:
        inputs, targets = adapter.split_batch(batch, device)
        outputs, features = adapter.forward_intermediates(model, inputs)
        sample_losses = adapter.per_sample_loss(outputs, targets)          # [B]
        task_loss = sample_losses.mean()
        loss = task_loss
        rank = torch.zeros((), device=task_loss.device)
        if loss_module is not None and sample_losses.shape[0] >= 2:
            taps = [feature.detach() for feature in features] if detach else list(features)
            predicted = loss_module(taps)                                     # [B]
            rank = ranking_loss(predicted, sample_losses)
            loss = task_loss + config.lamda * rank
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()} in epoch {epoch}; "
                                     "lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        batch_size = sample_losses.shape[0]
        seen += batch_size
        totals["loss"] += loss.item() * batch_size
        totals["task_loss"] += task_loss.item() * batch_size
        totals["ranking_loss"] += rank.item() * batch_size
    return {key: value / max(seen, 1) for key, value in totals.items()}


def _progress(iterable: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=False, dynamic_ncols=True, **kwargs)


def _loader(adapter: TaskAdapter, dataset: Dataset, batch_size: int, config: LoopConfig, *,
            shuffle: bool = False, seed: int = 0, drop_last: bool = False) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      drop_last=drop_last,
                      num_workers=config.num_workers, collate_fn=getattr(adapter, "collate_fn", None),
                      pin_memory=torch.device(config.device).type == "cuda")


@torch.inference_mode()
def score_candidates(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                     strategy: Strategy, indices: np.ndarray, config: LoopConfig,
                     device: torch.device, *, description: str = "scoring") -> dict[str, Any]:
    """One batched pass over ``pool_set[indices]`` computing what ``strategy`` needs.

    Returns ``{"scores": ndarray [U]}`` for score strategies; for set strategies the needed
    inputs as CPU tensors: ``embedding [U, D]``, and for gradient embeddings their factors
    ``probs [U, C]`` and ``embedding [U, D]`` (BADGE never materialises ``[U, C*D]``).
    """
    needs = set(strategy.needs)
    model.eval()
    if loss_module is not None:
        loss_module.eval()
    sampler = None
    if MC_PROBS in needs:
        from .mc_dropout import MCDropoutSampler

        sampler = MCDropoutSampler(adapter.mc_dropout_model(model))
    loader = _loader(adapter, Subset(adapter.pool_set, indices.tolist()), config.eval_batch_size, config)
    scores: list[torch.Tensor] = []
    collected: dict[str, list[torch.Tensor]] = {EMBEDDING: [], PROBS: []}
    for batch in _progress(loader, config.progress, desc=description):
        inputs, _ = adapter.split_batch(batch, device)
        batch_inputs: dict[str, torch.Tensor] = {}
        if sampler is not None:
            batch_inputs[MC_PROBS] = sampler.sample(inputs, config.mc_samples,
                                                    output_fn=adapter.probabilities)  # [T, B, C, *dense]
        if needs - {MC_PROBS}:
            outputs, features = adapter.forward_intermediates(model, inputs)
            if PROBS in needs or GRAD_EMBEDDING in needs:
                batch_inputs[PROBS] = adapter.probabilities(outputs)                   # [B, C, *dense]
            if LOSS_PRED in needs:
                batch_inputs[LOSS_PRED] = loss_module(features)                        # [B]
            if EMBEDDING in needs or GRAD_EMBEDDING in needs:
                batch_inputs[EMBEDDING] = adapter.embedding(outputs, features).float()  # [B, D]
        if strategy.is_set_strategy:
            for need in collected:
                if need in batch_inputs:
                    collected[need].append(batch_inputs[need].cpu())
        else:
            scores.append(strategy.score_batch(batch_inputs, reduction=config.reduction).float().cpu())
    if strategy.is_set_strategy:
        return {need: torch.cat(parts) for need, parts in collected.items() if parts}
    return {"scores": torch.cat(scores).double().numpy()}


@torch.inference_mode()
def embed(adapter: TaskAdapter, model: nn.Module, indices: np.ndarray, config: LoopConfig,
          device: torch.device) -> torch.Tensor:
    """Embeddings ``[len(indices), D]`` of ``pool_set[indices]`` (e.g. the labeled set)."""
    model.eval()
    loader = _loader(adapter, Subset(adapter.pool_set, indices.tolist()), config.eval_batch_size, config)
    parts = []
    for batch in _progress(loader, config.progress, desc="embedding labeled"):
        inputs, _ = adapter.split_batch(batch, device)
        outputs, features = adapter.forward_intermediates(model, inputs)
        parts.append(adapter.embedding(outputs, features).float().cpu())
    return torch.cat(parts)


def _check_or_write_args(run_dir: Path, config: LoopConfig, extra_args: Mapping[str, Any] | None,
                         resuming: bool) -> None:
    """Record the arguments; refuse to resume a run made with another protocol."""
    path = run_dir / "args.json"
    record = {"loop": dataclasses.asdict(config), "task": dict(extra_args or {})}
    if resuming and path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        # A field added after the run was made counts as its default (the value the run used).
        old_protocol = {field.name: field.default for field in dataclasses.fields(LoopConfig)}
        old_protocol.update(previous.get("loop", {}))
        differences = [f"{key}: {old_protocol.get(key)!r} -> {value!r}"
                       for key, value in config.protocol().items() if old_protocol.get(key) != value]
        old_task = previous.get("task", {})
        differences += [f"{key}: {old_task.get(key)!r} -> {value!r}"
                        for key, value in record["task"].items() if old_task.get(key) != value]
        if differences:
            raise RunMismatchError(
                f"{run_dir} holds a run made with other arguments ({'; '.join(differences)}); "
                "use another output folder, or the same arguments to resume it")
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def _initial_state(adapter: TaskAdapter, config: LoopConfig, pool_size: int,
                   initial_labeled: np.ndarray | None = None) -> PoolState:
    state = PoolState.empty(pool_size)
    if initial_labeled is None:
        rng = np.random.default_rng(derive_seed(config.seed, 0, STAGE_INITIAL))
        initial_labeled = rng.choice(pool_size, size=config.initial_size, replace=False)
    state.mark_labeled(initial_labeled, cycle=0)
    return state


def _check_initial_labeled(initial_labeled: Any, config: LoopConfig, pool_size: int) -> np.ndarray:
    """``initial_labeled`` as int64 [L] distinct indices in the pool, L == ``config.initial_size``."""
    values = np.asarray(initial_labeled)
    if values.ndim != 1 or not (values.size == 0 or np.issubdtype(values.dtype, np.integer)):
        raise ValueError(f"initial_labeled must be a 1-D array of integer dataset indices, got "
                         f"{values.dtype} with shape {values.shape}")
    values = values.astype(np.int64)
    if len(values) != config.initial_size:
        raise ValueError(f"initial_labeled holds {len(values)} indices but config.initial_size is "
                         f"{config.initial_size}; they must agree")
    if len(values) and (values.min() < 0 or values.max() >= pool_size):
        raise ValueError(f"initial_labeled has indices outside the pool of {pool_size} items")
    if len(np.unique(values)) != len(values):
        raise ValueError("initial_labeled contains repeated indices")
    return values


def select_next(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                state: PoolState, cycle: int, config: LoopConfig,
                device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Score a random subset of the unlabeled pool and choose the next items to label.

    Returns (indices int64 [K] absolute dataset indices best first, scores float64 [K]).
    """
    strategy = get_strategy(config.strategy)
    unlabeled = state.unlabeled_indices
    budget = clip_budget(config.budget, len(unlabeled))
    subset_size = config.resolved_subset_size()
    rng = np.random.default_rng(derive_seed(config.seed, cycle, STAGE_SUBSET))
    if subset_size and subset_size < len(unlabeled):
        candidates = np.sort(rng.choice(unlabeled, size=subset_size, replace=False))
    else:
        candidates = unlabeled
    select_seed = derive_seed(config.seed, cycle, STAGE_SELECT)
    if not strategy.needs:
        return choose_new_labeled_indices(strategy, candidates, budget, seed=select_seed)
    computed = score_candidates(adapter, model, loss_module, strategy, candidates, config, device)
    labeled_embeddings = None
    if strategy.needs_labeled_embeddings:
        labeled_embeddings = embed(adapter, model, state.labeled_indices, config, device)
    if "scores" in computed:
        return choose_new_labeled_indices(strategy, candidates, budget, scores=computed["scores"],
                                          seed=select_seed)
    return choose_new_labeled_indices(strategy, candidates, budget, inputs=computed,
                                      labeled_embeddings=labeled_embeddings, seed=select_seed,
                                      options=config.strategy_options())


def run_active_learning(adapter: TaskAdapter, config: LoopConfig, run_dir: str | Path, *,
                        extra_args: Mapping[str, Any] | None = None,
                        log: Callable[[str], None] = print,
                        initial_labeled: np.ndarray | None = None,
                        restart: bool = False) -> list[dict[str, Any]]:
    """Simulate ``config.cycles`` labeling cycles, resuming from ``run_dir`` if it holds a run.

    Each cycle: re-initialise and train the model on the items labeled so far, evaluate it, then
    select ``budget`` new items (also after the last cycle: that CSV is what to label next, and
    it lets a rerun with more cycles continue). Returns the metrics rows of every finished cycle.

    ``initial_labeled`` (int [L] absolute dataset indices, L == ``config.initial_size``) is the
    cycle-0 labeled set of a new run, instead of the seeded random choice: e.g. the images a user
    has labeled already, followed in the dataset by the unlabeled ones to rank. A resumed run must
    have started from the same set.

    ``restart=True`` starts a new run even where ``run_dir`` holds one (e.g. a new ranking after
    the user labeled more images). The old run's files stay until the new run replaces each of
    them, and its ``pool.npz`` until the new first cycle commits: an interrupted restart loses
    nothing.
    """
    run_dir = Path(run_dir)
    pool_size = len(adapter.pool_set)
    config.validate(pool_size)
    if initial_labeled is not None:
        initial_labeled = _check_initial_labeled(initial_labeled, config, pool_size)
    if len(adapter.train_set) != pool_size:
        raise ValueError(f"train_set ({len(adapter.train_set)}) and pool_set ({pool_size}) "
                         "must hold the same items")
    strategy = get_strategy(config.strategy)
    device = torch.device(config.device)
    pool_path = run_dir / "pool.npz"
    resuming = pool_path.exists() and not restart
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_or_write_args(run_dir, config, extra_args, resuming)
    if resuming:
        state = PoolState.load(pool_path)
        if len(state) != pool_size:
            raise RunMismatchError(f"{pool_path} describes a pool of {len(state)} items, "
                                   f"but the dataset has {pool_size}")
        if initial_labeled is not None and not np.array_equal(state.labeled_up_to(0),
                                                              np.sort(initial_labeled)):
            raise RunMismatchError(f"{pool_path} started from another initial labeled set than "
                                   "initial_labeled; use another output folder")
        log(f"resuming {run_dir} after {state.finished_cycles} finished cycle(s)")
    else:
        state = _initial_state(adapter, config, pool_size, initial_labeled)
    # Rows of cycles that did not reach the commit point (pool.npz) are dropped and redone.
    rows = [row for row in read_metrics_csv(run_dir / "metrics.csv")
            if int(row["cycle"]) < state.finished_cycles]
    test_loader = _loader(adapter, adapter.test_set, config.eval_batch_size, config)
    if rows and state.finished_cycles >= config.cycles:
        log(f"{run_dir} has finished all {config.cycles} cycle(s) already")
        _plot(rows, run_dir, adapter.primary_metric, strategy.name)

    for cycle in range(state.finished_cycles, config.cycles):
        labeled = state.labeled_up_to(cycle)
        if len(labeled) == 0:
            raise ValueError(f"cycle {cycle} has no labeled items")
        start = time.perf_counter()
        torch.manual_seed(derive_seed(config.seed, cycle, STAGE_MODEL))
        model = adapter.build_model().to(device)
        loss_module = None
        parameters = list(model.parameters())
        if strategy.trains_loss_module:
            loss_module = LossPredictionModule([info["channels"] for info in adapter.feature_info],
                                               pool_size=config.loss_pool_size,
                                               width=config.loss_width).to(device)
            parameters += list(loss_module.parameters())
        optimizer, scheduler = adapter.build_optimizer(parameters, config.epochs)
        # A last batch of one image breaks BatchNorm on 1x1 maps and cannot form a ranking pair.
        lone_last = len(labeled) % config.batch_size == 1 and len(labeled) > 1
        train_loader = _loader(adapter, Subset(adapter.train_set, labeled.tolist()), config.batch_size,
                               config, shuffle=True, seed=derive_seed(config.seed, cycle, STAGE_DATA),
                               drop_last=lone_last)
        epochs = _progress(range(config.epochs), config.progress, desc=f"cycle {cycle} training")
        train_stats: dict[str, float] = {}
        for epoch in epochs:
            train_stats = adapter.train_one_epoch(model, loss_module, train_loader, optimizer,
                                                  epoch=epoch, config=config, device=device)
            if scheduler is not None:
                scheduler.step()
            if hasattr(epochs, "set_postfix"):
                epochs.set_postfix(loss=f"{train_stats['loss']:.3f}")
        train_seconds = time.perf_counter() - start

        start = time.perf_counter()
        metrics = adapter.evaluate(model, test_loader, device)
        eval_seconds = time.perf_counter() - start

        start = time.perf_counter()
        n_selected = 0
        if len(state.unlabeled_indices):
            indices, scores = select_next(adapter, model, loss_module, state, cycle, config, device)
            write_entropies_csv(adapter, indices, scores, run_dir / "priorities" / f"cycle_{cycle:02d}.csv")
            state.mark_labeled(indices, cycle + 1)
            n_selected = len(indices)
        else:
            log(f"cycle {cycle}: the unlabeled pool is exhausted; nothing left to select")
        select_seconds = time.perf_counter() - start

        if config.save_checkpoints:
            checkpoint = {"model": model.state_dict(), "cycle": cycle,
                          "loss_module": None if loss_module is None else loss_module.state_dict()}
            atomic_torch_save(checkpoint, run_dir / "checkpoints" / f"cycle_{cycle:02d}.pt")
        row = {"cycle": cycle, "n_labeled": len(labeled), **metrics,
               "train_loss": train_stats.get("task_loss", float("nan")), "n_selected": n_selected,
               "train_seconds": train_seconds, "eval_seconds": eval_seconds,
               "select_seconds": select_seconds,
               "seconds": train_seconds + eval_seconds + select_seconds}
        rows.append(row)
        write_metrics_csv(rows, run_dir / "metrics.csv")
        state.finished_cycles = cycle + 1
        state.save(pool_path)  # commit point of the cycle
        summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
        log(f"cycle {cycle}: {len(labeled)} labeled, {summary}, {row['seconds']:.1f} s")
        _plot(rows, run_dir, adapter.primary_metric, strategy.name)
    return rows


def _plot(rows: list[dict[str, Any]], run_dir: Path, metric: str, label: str) -> None:
    from .plots import plot_learning_curve

    # The run folder's tail (<task>/<dataset>/<strategy>/seed<k>) says what the curve is.
    title = "/".join(run_dir.resolve().parts[-4:])
    plot_learning_curve({label: rows}, run_dir / "learning_curve.png", metric=metric, title=title)
