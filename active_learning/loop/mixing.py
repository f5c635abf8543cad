"""A score strategy's choice through a mix (``strategies/mixes.py``): a passive share drawn at
random, and a diversity step over the shortlist of the best scores."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from active_learning.adapter import TaskAdapter
from active_learning.distributed import broadcast_object
from active_learning.loop.config import LoopConfig
from active_learning.loop.pool import PoolState
from active_learning.loop.scoring import embed
from active_learning.loop.units import SelectionUnits
from active_learning.strategies import rank_scores, top_k
from active_learning.strategies.mixes import LABELED_CENTERS, diversify


def draw_passive(candidates: np.ndarray, count: int, seed: int) -> np.ndarray:
    """The passive share of a mix: ``count`` (at most ``len(candidates)``) of the candidate
    units, uniformly at random (int64 [count], in draw order)."""
    candidates = np.asarray(candidates, dtype=np.int64).reshape(-1)
    rng = np.random.default_rng(seed)   # the stream the registry's random choice draws from
    return candidates[rng.choice(len(candidates), size=count, replace=False)]


def choose_mixed(adapter: TaskAdapter, model: nn.Module, units: SelectionUnits,
                 state: PoolState, candidates: np.ndarray, computed: dict[str, Any] | None,
                 passive: np.ndarray, budget: int, seed: int, config: LoopConfig,
                 device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """A score strategy's choice through a mix.

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
        shortlist = _diversified(adapter, model, units, state, shortlist, short_scores,
                                 score_range, rest_budget, seed, config, device)
    picks = np.concatenate([shortlist, passive]).astype(np.int64)
    return picks, rank_scores(len(picks))


def _diversified(adapter: TaskAdapter, model: nn.Module, units: SelectionUnits,
                 state: PoolState, shortlist: np.ndarray, short_scores: np.ndarray,
                 score_range: tuple[float, float], budget: int, seed: int, config: LoopConfig,
                 device: torch.device) -> np.ndarray:
    """``budget`` of the ``shortlist`` (int64 unit ids, best score first) in the diversity
    step's pick order; every process embeds its shard, rank 0 chooses, every process gets it."""
    assert config.diversity is not None
    samples = units.samples_of(shortlist)
    shortlist_rows = embed(adapter, model, samples, config, device, description="scoring")
    labeled_rows = None
    if config.diversity in LABELED_CENTERS:
        labeled_samples = units.samples_of(state.labeled_indices)
        embedded = embed(adapter, model, labeled_samples, config, device)
        if embedded is not None:
            labeled_rows = units.unit_rows(labeled_samples, embedded.numpy())[1]
    choice = None
    if shortlist_rows is not None:
        row_ids, rows = units.unit_rows(samples, shortlist_rows.numpy())
        order = np.argsort(row_ids)
        rows = np.asarray(rows)[order[np.searchsorted(row_ids[order], shortlist)]]
        positions = diversify(config.diversity, short_scores, rows, labeled_rows, budget,
                              seed=seed, score_range=score_range)
        choice = shortlist[positions]
    return broadcast_object(choice)
