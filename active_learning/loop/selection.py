"""One cycle's selection: score the cycle's candidate units in one pass and choose among them.

The candidates come drawn (``loop/candidates.py``); the pass that scores them is
``loop/scoring.py``; a strategy fitted on the labeled units first is fitted in
``loop/fitting.py``; a mix's passive share and diversity step are ``loop/mixing.py``. Here: the
order of those steps, and the strategy's choice.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from active_learning.adapter import TaskAdapter
from active_learning.distributed import (
    broadcast_object,
    gather_objects,
    is_distributed,
    rank,
    shard_range,
    world_size,
)
from active_learning.loop.candidates import Candidates, draw_candidates
from active_learning.loop.config import STAGE_PASSIVE, STAGE_SELECT, LoopConfig, derive_seed
from active_learning.loop.fitting import fit_on_labeled
from active_learning.loop.mixing import choose_mixed, draw_passive
from active_learning.loop.pool import PoolState
from active_learning.loop.score_store import ScoreStore
from active_learning.loop.scoring import embed, embed_local, score_candidates, score_sharded
from active_learning.loop.units import SelectionUnits
from active_learning.strategies import (
    EMBEDDING,
    MC_PROBS,
    Strategy,
    choose_new_labeled_indices,
    get_strategy,
    rank_scores,
    top_k,
)
from active_learning.strategies.mixes import passive_count
from active_learning.strategies.options import resolve_options
from active_learning.strategies.regions import RegionCandidates, choose_regions


def select_next(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                state: PoolState, cycle: int, config: LoopConfig, device: torch.device, *,
                candidates: Candidates | None = None, store_folder: Path | None = None,
                model_token: str | None = None,
                scored: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Score the cycle's candidates and choose the next units to label.

    ``scored``: filled on rank 0, when the strategy scores each candidate, with every scored
    candidate's ``unit_ids`` int64 [N] and ``scores`` float64 [N] (the ``scores.csv`` of the
    cycle, which looks past the budget); left empty otherwise.

    ``candidates``: the cycle's draw (:func:`~active_learning.loop.candidates.draw_candidates`,
    which the runner makes once and also hands to the report's map); None draws them here.

    With ``store_folder`` and the trained model's ``model_token`` (one process, a score
    strategy), the scores stream to a :class:`ScoreStore` there, and a pass that was interrupted
    with the same model, candidates and strategy resumes where it stopped.

    Returns (unit indices int64 [K] best first, scores float64 [K]).
    """
    strategy = get_strategy(config.strategy)
    units = adapter.selection_units()
    if candidates is None:
        candidates = draw_candidates(units, state, cycle, config)
    pool, budget = candidates
    select_seed = derive_seed(config.seed, cycle, STAGE_SELECT)
    # The passive share of a mix (--random-fraction): the same draw on every process.
    passive = np.zeros(0, dtype=np.int64)
    n_passive = min(passive_count(budget, config.random_fraction), len(pool))
    if n_passive:
        passive = draw_passive(pool, n_passive, derive_seed(config.seed, cycle, STAGE_PASSIVE))
        if n_passive >= budget:   # a small budget: the passive share is all of it
            return passive, rank_scores(len(passive))
        if strategy.is_set_strategy or not strategy.needs:
            # a set strategy chooses the rest of the budget among the other candidates
            rest = dataclasses.replace(config, random_fraction=0.0)
            chosen, _ = _select_among(adapter, model, loss_module, strategy, units, state,
                                      np.setdiff1d(pool, passive), budget - n_passive,
                                      select_seed, rest, device, store_folder, model_token,
                                      scored=scored)
            picks = np.concatenate([chosen, passive]).astype(np.int64)
            return picks, rank_scores(len(picks))
    return _select_among(adapter, model, loss_module, strategy, units, state, pool, budget,
                         select_seed, config, device, store_folder, model_token, passive=passive,
                         scored=scored)


def _select_among(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                  strategy: Strategy, units: SelectionUnits, state: PoolState,
                  candidates: np.ndarray, budget: int, select_seed: int, config: LoopConfig,
                  device: torch.device, store_folder: Path | None, model_token: str | None, *,
                  passive: np.ndarray | None = None,
                  scored: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`select_next`'s choice of ``budget`` among ``candidates`` (unit indices, ascending).

    ``passive`` (score strategies): units of the candidates already drawn at random; they are
    scored with the others, the strategy chooses ``budget - len(passive)`` among the rest, and
    the passive ones follow its picks (``mixing.choose_mixed``).
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
    if (store_folder is not None and model_token is not None and not strategy.is_set_strategy
            and not strategy.region_context):   # a store keeps one score per unit
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
    if scored is not None and computed is not None and "scores" in computed:
        in_play = np.isin(computed["unit_ids"], candidates)   # regions: the image's others out
        scored["unit_ids"] = np.asarray(computed["unit_ids"][in_play], dtype=np.int64)
        scored["scores"] = np.asarray(computed["scores"][in_play], dtype=np.float64)
    if not strategy.is_set_strategy and (config.diversity is not None or len(passive)):
        return choose_mixed(adapter, model, units, state, candidates, computed, passive, budget,
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
        choice = choose(strategy, units, candidates, samples, computed, labeled_embeddings,
                        budget, select_seed, config)
    return broadcast_object(choice)


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
    labeled_rows = embed_local(adapter, model, labeled_samples[l_start:l_stop], config, device)
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
    return chosen.astype(np.int64), rank_scores(len(chosen))


def choose(strategy: Strategy, units: SelectionUnits, candidates: np.ndarray,
           samples: np.ndarray, computed: dict[str, Any], labeled_embeddings: Any, budget: int,
           select_seed: int, config: LoopConfig) -> tuple[np.ndarray, np.ndarray]:
    """The strategy's choice among the scored candidates: (unit indices [K], scores [K]).

    ``computed``: what :func:`~active_learning.loop.scoring.score_sharded` returned on rank 0
    (unit scores, or a set strategy's per-sample inputs)."""
    if "scores" in computed and strategy.region_level:
        resolved = resolve_options(strategy.options, config.options)
        options = {option.name: resolved[option.name] for option in strategy.options}
        return choose_regions(strategy.select_regions,
                              _region_candidates(units, computed, candidates), budget,
                              select_seed, options)
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


def _region_candidates(units: SelectionUnits, computed: dict[str, Any],
                       candidates: np.ndarray) -> RegionCandidates:
    """The scored regions (every region of the scored images; the image's labeled ones only
    as context) with what the pass pooled for them."""
    unit_ids = np.asarray(computed["unit_ids"], dtype=np.int64)
    neighbours = computed.get("neighbours")
    if neighbours is not None:   # unit ids -> positions among the scored regions
        order = np.argsort(unit_ids, kind="stable")
        neighbours = order[np.searchsorted(unit_ids[order], neighbours)]
    return RegionCandidates(unit_ids=unit_ids, images=units.items_of(unit_ids),
                            scores=np.asarray(computed["scores"], dtype=np.float64),
                            candidate=np.isin(unit_ids, candidates),
                            pixels=computed.get("pixels"),
                            class_counts=computed.get("class_counts"), neighbours=neighbours)


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
