"""One cycle's selection: draw candidate units, score their samples in one pass, choose units.

Scores are computed at the level the adapter works at (per sample, or per pixel for region
units) and pooled to units (``SelectionUnits.unit_scores``). MC-dropout strategies that declare
their ``mc_statistics`` are streamed: each batch folds its T passes into running sums, so peak
memory does not grow with T.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from active_learning.adapter import TaskAdapter
from active_learning.distributed import (
    broadcast_object,
    gather_objects,
    is_distributed,
    rank,
    shard_range,
    world_size,
)
from active_learning.errors import ConfigError
from active_learning.loop.config import (
    STAGE_PASSIVE,
    STAGE_SELECT,
    STAGE_SUBSET,
    LoopConfig,
    derive_seed,
)
from active_learning.loop.holdout import held_out_split, held_out_units
from active_learning.loop.pool import UNLABELED, PoolState
from active_learning.loop.score_store import ScoreStore
from active_learning.loop.units import SelectionUnits
from active_learning.precision import autocast, full_precision, memory_format, to_float
from active_learning.strategies import (
    DISTRIBUTIONS,
    EMBEDDING,
    GRAD_EMBEDDING,
    HIDDEN,
    LOSS_PRED,
    MC_PROBS,
    PROBS,
    Strategy,
    _rank_scores,  # the ordered-pick scores every set strategy writes
    choose_new_labeled_indices,
    clip_budget,
    get_strategy,
    list_strategies,
    top_k,
)
from active_learning.strategies.labeled import (
    ROWS_PER_CLASS,
    ClassSample,
    LabeledFeatures,
    hidden_rows,
)
from active_learning.strategies.mc_statistics import MCAccumulator
from active_learning.strategies.mixes import diversify, passive_count


def progress(iterable: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    """``iterable`` behind a tqdm bar (when ``enabled``); a bar still has ``len``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=False, dynamic_ncols=True, **kwargs)


def make_loader(adapter: TaskAdapter, dataset: Dataset, batch_size: int, config: LoopConfig, *,
                shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                sampler: Sampler | None = None) -> DataLoader:
    """The loop's data loader; ``sampler`` (a DistributedSampler) replaces ``shuffle``."""
    generator = torch.Generator().manual_seed(seed)
    # On a GPU the batches go to page-locked memory, from which split_batch's non-blocking
    # copies overlap with compute. Workers are not kept between epochs: a new iterator draws
    # their seeds from the generator, which an in-cycle checkpoint saves, so a resumed epoch
    # augments exactly as the uninterrupted one would (persistent workers would not).
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, generator=generator, drop_last=drop_last,
                      num_workers=config.num_workers, collate_fn=adapter.collate_fn,
                      pin_memory=torch.device(config.device).type == "cuda")


def check_strategy_fits(strategy: Strategy, adapter: TaskAdapter, units: SelectionUnits) -> None:
    """Refuse, before any training, a strategy the task's units or outputs cannot serve.

    Raises ConfigError naming the strategies that would fit: a superpixel strategy for image
    units, an image-level score for superpixels, entropy on pose heatmaps, BADGE on one
    distribution per default box, a strategy that needs held-out labeled units on an adapter
    that trains on all of them.
    """
    refusal = strategy_refusal(strategy, adapter.output_kind, type(units))
    if refusal is not None:
        fitting = strategies_for(adapter.output_kind, type(units))
        raise ConfigError(f"{refusal}; strategies for it: {', '.join(fitting)}")
    for module, requirement in strategy.requires:
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"strategy {strategy.name!r} needs {requirement}: pip install "
                              f"'{requirement}' (or the package's [strategies] extra)")
    if strategy.held_out_fraction:   # active transfer learning: see loop/holdout.py
        split = held_out_split(adapter)
        if split is None or split[0] != strategy.held_out_fraction:
            raise ConfigError(f"strategy {strategy.name!r} learns from labeled units the model "
                              "is not trained on: call active_learning.loop.holdout.hold_out("
                              f"adapter, {strategy.held_out_fraction}, seed) before running it "
                              "(the command line does)")


def strategy_refusal(strategy: Strategy, output_kind: str,
                     *unit_classes: type[SelectionUnits]) -> str | None:
    """Why ``strategy`` cannot run on outputs of ``output_kind`` with any of ``unit_classes``
    (the rule every check and every ``--help`` list uses), or None when it can."""
    refusal = strategy.output_refusal(output_kind)
    if refusal is not None:
        return refusal
    refusals = [units.refusal(strategy) for units in unit_classes]
    return refusals[0] if all(refusals) else None


def strategies_for(output_kind: str, *unit_classes: type[SelectionUnits]) -> list[str]:
    """The registered strategies that can run on outputs of ``output_kind`` with one of
    ``unit_classes``, in registration order."""
    return [name for name in list_strategies()
            if strategy_refusal(get_strategy(name), output_kind, *unit_classes) is None]


def _forward(adapter: TaskAdapter, model: nn.Module, inputs: Any, device: torch.device,
             amp: str | None) -> tuple[Any, Any]:
    """``adapter.forward_intermediates`` under autocast (with ``amp``), its outputs and features
    returned in fp32 for what is computed from them."""
    with autocast(device, amp):
        outputs, features = adapter.forward_intermediates(model, inputs)
    return to_float(outputs), to_float(features)


def _mc_inputs(sampler: Any, strategy: Strategy, inputs: Any, adapter: TaskAdapter,
               config: LoopConfig) -> Any:
    """MCStatistics of the batch (streamed), or the [T, B, C, *dense] samples.

    With ``config.amp`` only the network's passes run under autocast: the probabilities and
    their running statistics are fp32."""
    def output_fn(outputs: Any) -> torch.Tensor:
        with full_precision(config.device):
            return adapter.probabilities(to_float(outputs))

    if not strategy.mc_statistics:
        with autocast(config.device, config.amp):
            return sampler.sample(inputs, config.mc_samples, output_fn=output_fn)
    accumulator = MCAccumulator(strategy.mc_statistics)
    passes = iter(sampler.passes(inputs, config.mc_samples, output_fn=output_fn))
    while True:
        with autocast(config.device, config.amp):   # autocast is on while the pass runs
            probs = next(passes, None)
        if probs is None:
            return accumulator.result()
        accumulator.update(probs)                                         # [B, C, *dense]


@torch.inference_mode()
def score_candidates(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                     strategy: Strategy, samples: np.ndarray, config: LoopConfig,
                     device: torch.device, *, units: SelectionUnits | None = None,
                     description: str = "scoring",
                     store: Callable[[int], ScoreStore] | None = None) -> dict[str, Any]:
    """One batched pass over ``pool_set[samples]`` computing what ``strategy`` needs.

    Returns, for score strategies, ``{"unit_ids": int64 [V], "scores": float64 [V]}``: the units
    the samples belong to and their pooled scores. For set strategies, the needed inputs per
    *sample* as CPU tensors: ``embedding [S, D]``, and for gradient embeddings their factors
    ``probs [S, C]`` and ``embedding [S, D]`` (BADGE never materialises ``[S, C*D]``); MC
    samples sample-major, ``mc_probs [S, T, C]``, so that every need's rows are its first
    dimension (shards concatenate on it; :func:`_choose` turns them back to ``[T, S, C]``).

    ``store(slots)`` (score strategies) opens the pass's :class:`ScoreStore`: the scores go to
    disk batch by batch, and a pass interrupted before is resumed at its first unscored sample.
    """
    units = units or adapter.selection_units()
    needs = set(strategy.needs)
    if LOSS_PRED in needs and loss_module is None:
        raise ValueError(f"strategy {strategy.name!r} scores with the loss prediction module: "
                         "pass loss_module")
    model.eval()
    if loss_module is not None:
        loss_module.eval()
    sampler = None
    if MC_PROBS in needs:
        from active_learning.strategies.mc_dropout import MCDropoutSampler

        sampler = MCDropoutSampler(adapter.mc_dropout_model(model))
    reduction = "none" if units.dense_scores else config.reduction
    collected: dict[str, list[torch.Tensor]] = {EMBEDDING: [], PROBS: [], MC_PROBS: []}

    def batches(start: int = 0) -> Iterator[tuple[np.ndarray, Any]]:
        """(sample indices [B], what the strategy needs of them) for each batch, in order,
        from ``samples[start]`` on."""
        # The indices stay one int64 array (a list of 10 M Python ints would take ~400 MB).
        loader = make_loader(adapter, Subset(adapter.pool_set, samples[start:]),  # type: ignore[arg-type]
                             config.eval_batch_size, config)
        for batch in progress(loader, config.progress, desc=description,
                              initial=start // config.eval_batch_size,
                              total=-(-len(samples) // config.eval_batch_size)):
            inputs, _ = adapter.split_batch(batch, device)
            inputs = memory_format(inputs, config.channels_last)
            batch_inputs: dict[str, Any] = {}
            if sampler is not None:
                batch_inputs[MC_PROBS] = _mc_inputs(sampler, strategy, inputs, adapter, config)
            if needs - {MC_PROBS}:
                outputs, features = _forward(adapter, model, inputs, device, config.amp)
                if PROBS in needs or GRAD_EMBEDDING in needs:
                    batch_inputs[PROBS] = adapter.probabilities(outputs)       # [B, C, *dense]
                if LOSS_PRED in needs and loss_module is not None:
                    batch_inputs[LOSS_PRED] = loss_module(features)                  # [B]
                if EMBEDDING in needs or GRAD_EMBEDDING in needs:
                    batch_inputs[EMBEDDING] = adapter.embedding(outputs, features).float()  # [B, D]
                if HIDDEN in needs:     # [B, D] or [B, D, h, w]
                    batch_inputs[HIDDEN] = adapter.hidden_features(outputs, features).float()
                del outputs, features   # not held while the next batch is computed
            # The loader reads the candidates in order, eval_batch_size at a time.
            size = min(config.eval_batch_size, len(samples) - start)
            yield samples[start:start + size], batch_inputs
            del inputs, batch_inputs
            start += size

    if strategy.is_set_strategy:
        for _, batch_inputs in batches():
            for need in collected:
                if need in batch_inputs:
                    part = batch_inputs[need]
                    if need == MC_PROBS:   # [T, B, C] -> [B, T, C]: a sample per row
                        part = part.transpose(0, 1)
                    collected[need].append(part.cpu())
        return {need: torch.cat(parts) for need, parts in collected.items() if parts}

    def scored(start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return ((batch_samples, strategy.score(batch_inputs, reduction=reduction)
                 .float().cpu().double().numpy())
                for batch_samples, batch_inputs in batches(start))

    if store is None:
        # Each batch's scores ([B], or B maps [H, W] for region units) go to the units as they
        # come: region units pool a batch of maps into region means before the next batch.
        unit_ids, unit_scores = units.pool_scores(scored(), reduction=config.unit_reduction)
        return {"unit_ids": unit_ids, "scores": unit_scores}
    return _score_into_store(units, samples, scored, store, config.unit_reduction)


def _score_into_store(units: SelectionUnits, samples: np.ndarray,
                      scored: Callable[[int], Iterator[tuple[np.ndarray, np.ndarray]]],
                      store: Callable[[int], ScoreStore], unit_reduction: str) -> dict[str, Any]:
    """``score_candidates``' scores through a :class:`ScoreStore`: one slot per sample (pooled
    into units at the end, as ``pool_scores`` pools them), or per region unit (each batch's maps
    pooled into region means as they come)."""
    dense = units.dense_scores
    opened = store(units.n_units if dense else units.n_samples)
    for batch_samples, batch_scores in scored(opened.done):
        if dense:
            opened.write(*units.pool_scores([(batch_samples, batch_scores)]))
        else:
            opened.write(batch_samples, batch_scores)
        opened.advance(len(batch_samples))
    opened.advance(0, final=True)
    if dense:   # each candidate image's regions, in the order pool_scores gives them
        slots = units.units_of_items(samples)
        return {"unit_ids": slots, "scores": opened.read(slots)}
    unit_ids, unit_scores = units.unit_scores(samples, opened.read(samples),
                                              reduction=unit_reduction)
    return {"unit_ids": unit_ids, "scores": unit_scores}


def embed(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray, config: LoopConfig,
          device: torch.device) -> torch.Tensor | None:
    """Embeddings ``[len(samples), D]`` of ``pool_set[samples]`` (e.g. the labeled set).

    Under ``torch.distributed`` each process embeds its shard of ``samples`` and rank 0 gets
    them all, in order (the other ranks get None)."""
    if not is_distributed():
        return _embed(adapter, model, samples, config, device)
    start, stop = shard_range(len(samples), rank(), world_size())
    parts = gather_objects(_embed(adapter, model, samples[start:stop], config, device), dst=0)
    return None if parts is None else torch.cat(parts)


@torch.inference_mode()
def _embed(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray, config: LoopConfig,
           device: torch.device) -> torch.Tensor:
    model.eval()
    loader = make_loader(adapter, Subset(adapter.pool_set, samples),  # type: ignore[arg-type]
                         config.eval_batch_size, config)
    parts = []
    for batch in progress(loader, config.progress, desc="embedding labeled"):
        inputs = memory_format(adapter.split_batch(batch, device)[0], config.channels_last)
        outputs, features = _forward(adapter, model, inputs, device, config.amp)
        parts.append(adapter.embedding(outputs, features).float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def draw_candidates(units: SelectionUnits, state: PoolState, cycle: int,
                    config: LoopConfig) -> tuple[np.ndarray, int]:
    """The cycle's random candidate subset of the unlabeled selectable units, and the budget.

    Returns (int64 [U] unit indices ascending, budget clipped to what is left).
    """
    unlabeled = np.flatnonzero((state.labeled_at == UNLABELED) & units.selectable())
    budget = clip_budget(config.budget, len(unlabeled))
    subset_size = config.resolved_subset_size()
    if not subset_size or subset_size >= len(unlabeled):
        return unlabeled, budget
    rng = np.random.default_rng(derive_seed(config.seed, cycle, STAGE_SUBSET))
    return units.draw_candidates(unlabeled, subset_size, rng), budget


def select_next(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                state: PoolState, cycle: int, config: LoopConfig, device: torch.device, *,
                store_folder: Path | None = None, model_token: str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Score a random subset of the unlabeled units and choose the next ones to label.

    With ``store_folder`` and the trained model's ``model_token`` (one process, a score
    strategy), the scores stream to a :class:`ScoreStore` there, and a pass that was interrupted
    with the same model, candidates and strategy resumes where it stopped.

    Returns (unit indices int64 [K] best first, scores float64 [K]).
    """
    strategy = get_strategy(config.strategy)
    units = adapter.selection_units()
    candidates, budget = draw_candidates(units, state, cycle, config)
    select_seed = derive_seed(config.seed, cycle, STAGE_SELECT)
    # The passive share of a mix (--random-fraction): the same draw on every process.
    passive = np.zeros(0, dtype=np.int64)
    n_passive = min(passive_count(budget, config.random_fraction), len(candidates))
    if n_passive:
        passive = draw_passive(candidates, n_passive,
                               derive_seed(config.seed, cycle, STAGE_PASSIVE))
        if n_passive >= budget:   # a small budget: the passive share is all of it
            return passive, _rank_scores(len(passive))
        if strategy.is_set_strategy or not strategy.needs:
            # a set strategy chooses the rest of the budget among the other candidates
            rest = dataclasses.replace(config, random_fraction=0.0)
            chosen, _ = _select_among(adapter, model, loss_module, strategy, units, state,
                                      np.setdiff1d(candidates, passive), budget - n_passive,
                                      select_seed, rest, device, store_folder, model_token)
            picks = np.concatenate([chosen, passive]).astype(np.int64)
            return picks, _rank_scores(len(picks))
    return _select_among(adapter, model, loss_module, strategy, units, state, candidates, budget,
                         select_seed, config, device, store_folder, model_token, passive=passive)


def draw_passive(candidates: np.ndarray, count: int, seed: int) -> np.ndarray:
    """The passive share of a mix: ``count`` of the candidate units, uniformly at random
    (int64 [count], in draw order)."""
    return choose_new_labeled_indices("random", candidates, count, seed=seed)[0]


def _select_among(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                  strategy: Strategy, units: SelectionUnits, state: PoolState,
                  candidates: np.ndarray, budget: int, select_seed: int, config: LoopConfig,
                  device: torch.device, store_folder: Path | None, model_token: str | None, *,
                  passive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`select_next`'s choice of ``budget`` among ``candidates`` (unit indices, ascending).

    ``passive`` (score strategies): units of the candidates already drawn at random; they are
    scored with the others, the strategy chooses ``budget - len(passive)`` among the rest, and
    the passive ones follow its picks (:func:`_choose_mixed`).
    """
    passive = np.zeros(0, dtype=np.int64) if passive is None else passive
    if not strategy.needs:
        return choose_new_labeled_indices(strategy, candidates, budget, seed=select_seed)
    if strategy.presample is not None:      # e.g. outliers among the least confident
        candidates = presample(adapter, model, strategy, units, candidates, budget, config,
                               device)
    if strategy.fit_labeled is not None:    # e.g. class densities of the labeled features
        strategy = fit_on_labeled(adapter, model, strategy, units, state.labeled_indices,
                                  config, device, select_seed)
    samples = units.samples_of(candidates)
    if is_distributed() and strategy.select_sharded is not None and units.one_sample_per_unit:
        return _select_sharded(adapter, model, strategy, samples,
                               units.samples_of(state.labeled_indices), budget, select_seed,
                               config, device)
    store = None
    if store_folder is not None and model_token is not None and not strategy.is_set_strategy:
        key = {"model": model_token, "strategy": strategy.name, "protocol": config.protocol(),
               "amp": config.amp, "channels_last": config.channels_last,
               "device": torch.device(device).type, "processes": world_size(),
               "samples": hashlib.sha256(samples.tobytes()).hexdigest()}
        # each process keeps the scores of its own shard (its own folder, on its own disk)
        folder = store_folder / f"process_{rank()}_of_{world_size()}" if is_distributed() \
            else store_folder

        def store(slots: int) -> ScoreStore:
            return ScoreStore(folder, slots, key)

    computed = score_sharded(adapter, model, loss_module, strategy, samples, config, device,
                             units, store=store)
    if not strategy.is_set_strategy and (config.diversity is not None or len(passive)):
        return _choose_mixed(adapter, model, units, state, candidates, computed, passive, budget,
                             select_seed, config, device)
    labeled_embeddings = None
    if strategy.needs_labeled_embeddings:   # every process embeds its shard of them
        labeled_samples = units.samples_of(state.labeled_indices)
        labeled_rows = embed(adapter, model, labeled_samples, config, device)
        if labeled_rows is not None:
            labeled_embeddings = torch.as_tensor(
                units.unit_rows(labeled_samples, labeled_rows.numpy())[1], dtype=torch.float32)
    # The choice is made once, by rank 0, and every process takes it.
    choice = None
    if computed is not None:
        choice = _choose(strategy, units, candidates, samples, computed, labeled_embeddings,
                         budget, select_seed, config)
    return broadcast_object(choice)


def _choose_mixed(adapter: TaskAdapter, model: nn.Module, units: SelectionUnits,
                  state: PoolState, candidates: np.ndarray, computed: dict[str, Any] | None,
                  passive: np.ndarray, budget: int, seed: int, config: LoopConfig,
                  device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """A score strategy's choice through a mix (``strategies/mixes.py``).

    Rank 0 holds ``computed`` (the scored candidates). The passive units are left out of the
    scored choice; of the others, the ``diversity_factor x (budget - passive)`` best form the
    shortlist, the diversity step (embeddings computed by every process) orders it, and the
    passive units follow. Returns (unit indices int64 [budget] in pick order, rank scores
    float64 [budget]: 1 down to 1/budget, so that the priority CSV keeps the pick order).
    """
    rest_budget = budget - len(passive)
    plan = None
    if computed is not None:
        in_play = np.isin(computed["unit_ids"], candidates)  # regions: the image's others out
        unit_ids, scores = computed["unit_ids"][in_play], computed["scores"][in_play]
        finite = bool(np.isfinite(scores).all())
        is_passive = np.isin(unit_ids, passive)
        scored_ids, scored = unit_ids[~is_passive], scores[~is_passive]
        keep = rest_budget if config.diversity is None else min(
            len(scored_ids), config.diversity_factor * rest_budget)
        best = top_k(scored, keep) if finite else np.zeros(0, dtype=np.int64)
        score_range = (float(scores.min()), float(scores.max())) if finite else (0.0, 0.0)
        plan = (finite, scored_ids[best], scored[best], score_range)
    # every process learns of non-finite scores, so that none waits for the others
    finite, shortlist, short_scores, score_range = broadcast_object(plan)
    if not finite:
        raise ValueError(f"strategy {config.strategy!r} gave NaN or infinite scores")
    if config.diversity is not None:
        samples = units.samples_of(shortlist)
        computed_rows = score_sharded(adapter, model, None, get_strategy("coreset"), samples,
                                      config, device, units)
        labeled_rows = None
        if config.diversity == "coreset":
            labeled_samples = units.samples_of(state.labeled_indices)
            embedded = embed(adapter, model, labeled_samples, config, device)
            if embedded is not None:
                labeled_rows = units.unit_rows(labeled_samples, embedded.numpy())[1]
        choice = None
        if computed_rows is not None:
            row_ids, rows = units.unit_rows(samples, computed_rows[EMBEDDING].numpy())
            order = np.argsort(row_ids)
            rows = np.asarray(rows)[order[np.searchsorted(row_ids[order], shortlist)]]
            positions = diversify(config.diversity, short_scores, rows, labeled_rows,
                                  rest_budget, seed=seed, score_range=score_range)
            choice = shortlist[positions]
        shortlist = broadcast_object(choice)
    picks = np.concatenate([shortlist, passive]).astype(np.int64)
    return picks, _rank_scores(len(picks))


def presample(adapter: TaskAdapter, model: nn.Module, strategy: Strategy,
              units: SelectionUnits, candidates: np.ndarray, budget: int, config: LoopConfig,
              device: torch.device) -> np.ndarray:
    """The ``factor x budget`` candidates (int64, ascending) that ``strategy.presample``'s score
    strategy ranks highest, among which ``strategy`` then chooses; all of them when there are
    no more. Every process gets rank 0's choice."""
    assert strategy.presample is not None
    name, factor = strategy.presample
    keep = factor * budget
    if keep >= len(candidates):
        return candidates
    first = get_strategy(name)
    computed = score_sharded(adapter, model, None, first, units.samples_of(candidates), config,
                             device, units)
    kept = None
    if computed is not None:
        kept = np.sort(computed["unit_ids"][top_k(computed["scores"], keep)]).astype(np.int64)
    return broadcast_object(kept)


def fit_on_labeled(adapter: TaskAdapter, model: nn.Module, strategy: Strategy,
                   units: SelectionUnits, labeled: np.ndarray, config: LoopConfig,
                   device: torch.device, seed: int) -> Strategy:
    """``strategy`` fitted on the labeled units' hidden features and classes (on the share the
    adapter holds out of training, for a strategy with a ``held_out_fraction``): rank 0 fits,
    every process gets the fitted state."""
    if strategy.held_out_fraction:
        split = held_out_split(adapter)
        if split is None:   # check_strategy_fits refuses this before any training
            raise RuntimeError(f"strategy {strategy.name!r} runs on an adapter that holds "
                               "nothing out")
        labeled = held_out_units(labeled, split[1], split[0])
    rows = labeled_features(adapter, model, units.samples_of(labeled), config, device, seed)
    assert strategy.fit_labeled is not None
    state = strategy.fit_labeled(rows, seed) if rows is not None else None
    return strategy.with_state(broadcast_object(state))


def labeled_features(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray,
                     config: LoopConfig, device: torch.device, seed: int,
                     per_class: int = ROWS_PER_CLASS) -> LabeledFeatures | None:
    """The hidden features of ``pool_set[samples]`` with their true and predicted classes: a
    uniform sample of at most ``per_class`` rows of each class (``strategies/labeled.py``).

    Under ``torch.distributed`` each process reads its shard of ``samples`` and rank 0 merges
    the samples (the other ranks get None)."""
    start, stop = shard_range(len(samples), rank(), world_size())
    local = _labeled_sample(adapter, model, samples[start:stop], config, device,
                            np.random.SeedSequence([seed, rank()]), per_class)
    parts = gather_objects(local, dst=0)
    if parts is None:
        return None
    parts = [part for part in parts if part is not None]
    if not parts:
        return LabeledFeatures(np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64),
                               np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return parts[0].merge(parts[1:]).result()


@torch.inference_mode()
def _labeled_sample(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray,
                    config: LoopConfig, device: torch.device, seed: np.random.SeedSequence,
                    per_class: int) -> ClassSample | None:
    """This process's :class:`ClassSample` of ``pool_set[samples]``; None without samples."""
    model.eval()
    loader = make_loader(adapter, Subset(adapter.pool_set, samples),  # type: ignore[arg-type]
                         config.eval_batch_size, config)
    sample = None
    for batch in progress(loader, config.progress, desc="labeled features"):
        inputs, targets = adapter.split_batch(batch, device)
        inputs = memory_format(inputs, config.channels_last)
        outputs, features = _forward(adapter, model, inputs, device, config.amp)
        with full_precision(device):
            probs = adapter.probabilities(outputs)                            # [B, C, *dense]
        hidden = adapter.hidden_features(outputs, features)                  # [B, D, *dense]
        rows, labels, predicted = hidden_rows(hidden, targets, probs)
        if sample is None:
            sample = ClassSample(probs.shape[1], per_class, seed)
        sample.add(rows.cpu().numpy(), labels.cpu().numpy(), predicted.cpu().numpy())
    return sample


def _select_sharded(adapter: TaskAdapter, model: nn.Module, strategy: Strategy,
                    samples: np.ndarray, labeled_samples: np.ndarray, budget: int, seed: int,
                    config: LoopConfig, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """``strategy.select_sharded`` (core-set) with each process embedding, and holding, only
    its shard of the labeled samples and of the candidates (one sample per unit).

    The pool the processes tile is, in rank order, each one's labeled rows then its candidate
    rows; the picks (global positions there, the same on every process) are mapped back to the
    candidates. Returns (unit indices int64 [K] in pick order, scores float64 [K]).
    """
    assert strategy.select_sharded is not None
    shards = world_size()
    c_start, c_stop = shard_range(len(samples), rank(), shards)
    l_start, l_stop = shard_range(len(labeled_samples), rank(), shards)
    candidate_rows = score_candidates(adapter, model, None, strategy, samples[c_start:c_stop],
                                      config, device).get(EMBEDDING, torch.zeros(0, 0))  # [c, D]
    labeled_rows = _embed(adapter, model, labeled_samples[l_start:l_stop], config, device)
    sizes = gather_objects((l_stop - l_start, c_stop - c_start, candidate_rows.shape[1]
                            if len(candidate_rows) else labeled_rows.shape[1]))
    assert sizes is not None
    dim = max(size[2] for size in sizes)
    # the distances are computed where the model runs (a GPU shard on its GPU)
    features = torch.cat([labeled_rows.reshape(-1, dim),
                          candidate_rows.reshape(-1, dim)]).to(device)
    rows = np.array([size[0] + size[1] for size in sizes])
    offsets = np.concatenate([[0], np.cumsum(rows)])                                 # [P + 1]
    picks = strategy.select_sharded(features, l_stop - l_start, budget,
                                    offset=int(offsets[rank()]), total=int(offsets[-1]), seed=seed)
    owner = np.searchsorted(offsets, picks, side="right") - 1                        # [K]
    within = picks - offsets[owner] - np.array([size[0] for size in sizes])[owner]
    if (within < 0).any():   # a bug: a labeled row cannot be picked
        raise RuntimeError("the sharded choice picked a labeled row")
    candidate_starts = np.array([shard_range(len(samples), shard, shards)[0]
                                 for shard in range(shards)])
    chosen = samples[candidate_starts[owner] + within]
    return chosen.astype(np.int64), _rank_scores(len(chosen))


def _choose(strategy: Strategy, units: SelectionUnits, candidates: np.ndarray,
            samples: np.ndarray, computed: dict[str, Any], labeled_embeddings: Any, budget: int,
            select_seed: int, config: LoopConfig) -> tuple[np.ndarray, np.ndarray]:
    """The strategy's choice among the scored candidates: (unit indices [K], scores [K])."""
    if "scores" in computed:
        keep = np.isin(computed["unit_ids"], candidates)   # regions: the image's other regions out
        return choose_new_labeled_indices(strategy, computed["unit_ids"][keep], budget,
                                          scores=computed["scores"][keep], seed=select_seed)
    inputs: dict[str, Any] = dict(computed)
    unit_ids = samples
    if MC_PROBS in computed:   # gathered sample-major ([S, T, C]); strategies read [T, S, C]
        inputs[MC_PROBS] = computed[MC_PROBS].transpose(0, 1)
    if EMBEDDING in computed:  # one embedding per unit: the mean of its samples'
        unit_ids, pooled = units.unit_rows(samples, computed[EMBEDDING].numpy())
        inputs[EMBEDDING] = torch.as_tensor(pooled, dtype=torch.float32)
    return choose_new_labeled_indices(strategy, unit_ids, budget, inputs=inputs,
                                      labeled_embeddings=labeled_embeddings, seed=select_seed,
                                      options=config.strategy_options())


def score_sharded(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                  strategy: Strategy, samples: np.ndarray, config: LoopConfig,
                  device: torch.device, units: SelectionUnits,
                  store: Callable[[int], ScoreStore] | None = None) -> dict[str, Any] | None:
    """:func:`score_candidates`, each process scoring its contiguous shard of ``samples``.

    Rank 0 gets what one process scoring every sample would return (the other ranks get None):
    the shards' results in rank order, which is sample order. Units whose score pools several
    samples (an image's persons) are pooled after the gather, so a unit split between two
    shards gets the score of all its samples; region scores are pooled per image, so each
    process pools its own images. Without a process group this is ``score_candidates``.
    ``store`` (score strategies): each process streams its shard's scores to its own
    :class:`ScoreStore`, and resumes there.
    """
    if not is_distributed():
        return score_candidates(adapter, model, loss_module, strategy, samples, config, device,
                                units=units, store=store)
    start, stop = shard_range(len(samples), rank(), world_size())
    shard = samples[start:stop]
    per_sample = not strategy.is_set_strategy and not units.dense_scores
    local = score_candidates(adapter, model, loss_module, strategy, shard, config, device,
                             units=SelectionUnits(units.n_samples) if per_sample else units,
                             store=store)
    parts = gather_objects(local, dst=0)
    if parts is None:
        return None
    if strategy.is_set_strategy:
        return {need: torch.cat([part[need] for part in parts if need in part])
                for need in {need for part in parts for need in part}}
    unit_ids = np.concatenate([part["unit_ids"] for part in parts])
    scores = np.concatenate([part["scores"] for part in parts])
    if per_sample:
        unit_ids, scores = units.unit_scores(unit_ids, scores, reduction=config.unit_reduction)
    return {"unit_ids": unit_ids, "scores": scores}


@torch.inference_mode()
def predicted_and_true_losses(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module,
                              loader: Iterable, device: torch.device,
                              reduction: str = "mean", amp: str | None = None,
                              channels_last: bool = False
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The loss module's prediction, the true per-sample loss and the model's own entropy.

    Returns ``predicted [N]``, ``true [N]`` and ``entropy [N]`` of every test sample. The entropy
    of the predicted distribution (reduced over dense outputs with ``reduction``) is the free loss
    predictor the module has to beat: a module that ranks the true losses no better than the
    model's own uncertainty adds nothing to it. ``None`` when the adapter's outputs are not
    class distributions (pose heatmaps).
    """
    model.eval()
    loss_module.eval()
    with_entropy = adapter.output_kind in DISTRIBUTIONS
    entropy_score = get_strategy("entropy").score
    predicted, true, entropy = [], [], []
    for batch in loader:
        inputs, targets = adapter.split_batch(batch, device)
        outputs, features = _forward(adapter, model, memory_format(inputs, channels_last), device,
                                     amp)
        predicted.append(loss_module(features).float().cpu().reshape(-1))       # [B]
        true.append(adapter.batch_loss(outputs, targets)[1].float().cpu().reshape(-1))   # [B]
        if with_entropy:
            probs = adapter.probabilities(outputs)                                # [B, C, *dense]
            entropy.append(entropy_score({PROBS: probs},
                                         reduction=reduction).float().cpu().reshape(-1))
    def joined(values: list[torch.Tensor]) -> np.ndarray:   # a process's slice may be empty
        return torch.cat(values).numpy() if values else np.zeros(0, dtype=np.float32)

    return joined(predicted), joined(true), joined(entropy) if with_entropy else None



def tie_warning(scores: np.ndarray, share: float = 0.1) -> str | None:
    """A warning when more than ``share`` of the chosen units tie on their score, else None.

    ``scores`` float [K] of the chosen units. Tied units are ordered (and cut at the budget) by
    their place in the pool, not by the model: a model that gives every image the same score
    (an untrained detector's ln 21, a segmentation model's zero MC variance) chooses by pool
    order, and the user should know.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    if len(scores) < 2:
        return None
    # Equal up to float noise (a variance of 1e-12 is as much a tie as 0): runs of neighbours.
    close = np.isclose(scores[1:], scores[:-1], rtol=1e-6, atol=1e-9)
    in_tie = np.zeros(len(scores), dtype=bool)
    in_tie[1:] |= close
    in_tie[:-1] |= close
    tied = int(in_tie.sum())
    if tied <= share * len(scores):
        return None
    run_starts = np.flatnonzero(np.concatenate([[True], ~close]))
    lengths = np.diff(np.concatenate([run_starts, [len(scores)]]))
    common = float(scores[run_starts[np.argmax(lengths)]])
    return (f"{tied} of the {len(scores)} chosen units tie on their score (most often "
            f"{common:.6g}); the order among tied units is the pool's, not the model's")
