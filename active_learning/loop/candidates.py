"""A cycle's candidates: the seeded random subset of the unlabeled units that the cycle scores.

They are drawn once per cycle (:func:`draw_candidates`, by the runner) and handed on to the
selection and to the report's map, so that both see the same units without redrawing them.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from active_learning.loop.config import STAGE_SUBSET, LoopConfig, derive_seed
from active_learning.loop.pool import UNLABELED, PoolState
from active_learning.loop.units import SelectionUnits
from active_learning.strategies import clip_budget


class Candidates(NamedTuple):
    """The cycle's candidates: ``units`` int64 [U] unit ids, ascending, and the ``budget`` to
    choose among them (clipped to what is left)."""

    units: np.ndarray
    budget: int


def draw_candidates(units: SelectionUnits, state: PoolState, cycle: int,
                    config: LoopConfig) -> Candidates:
    """The cycle's random candidate subset of the unlabeled selectable units, and the budget.

    Every unlabeled unit when the subset would hold them all; else ``units.draw_candidates``
    with the seed of ``(config.seed, cycle, STAGE_SUBSET)``. Warns when the budget is larger
    than what is left (``clip_budget``).
    """
    unlabeled = np.flatnonzero((state.labeled_at == UNLABELED) & units.selectable())
    budget = clip_budget(config.budget, len(unlabeled))
    subset_size = config.resolved_subset_size()
    if not subset_size or subset_size >= len(unlabeled):
        return Candidates(unlabeled, budget)
    rng = np.random.default_rng(derive_seed(config.seed, cycle, STAGE_SUBSET))
    return Candidates(units.draw_candidates(unlabeled, subset_size, rng), budget)
