"""Labeled units held out of training, for strategies that learn from the model's errors.

Active transfer learning needs labeled items the model was not trained on: on those, whether
the model is right says something about unseen data. A strategy asks for them with
``Strategy.held_out_fraction``; :func:`hold_out` makes the adapter's ``training_set`` leave them
out, and the selection takes the same units (:func:`held_out_units`) to learn from.

The split is a function of the labeled set and the seed alone: every unit gets one uniform draw
from the run's seed (``STAGE_HOLDOUT``), the same in every cycle and on every resume, and the
``round(fraction x L)`` labeled units with the smallest draws (at least one once two units are
labeled) are held out. A unit held out stays held out while no unit with a smaller draw is
labeled; since every cycle trains a new model from scratch, a unit that moves from the held-out
share into training in a later cycle was never trained on while it was held out. Held-out units
count as labeled (the budget paid for them) and are never selected again.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from active_learning.loop.config import STAGE_HOLDOUT, derive_seed

# The attribute hold_out sets on an adapter: the share it holds out (and the seed).
HELD_OUT_ATTRIBUTE = "held_out_split"


def unit_draws(units: np.ndarray, seed: int) -> np.ndarray:
    """Each unit's uniform draw in [0, 1): float64 [len(units)]. The draws are the first
    ``max(units) + 1`` of one seeded stream, indexed by unit: a generator's first n draws do
    not depend on how many follow, so a unit's draw stays the same when the pool grows."""
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    if not len(units):
        return np.zeros(0)
    stream = np.random.default_rng(derive_seed(seed, 0, STAGE_HOLDOUT))
    return stream.random(int(units.max()) + 1)[units]


def held_out_units(labeled: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """The held-out share of the labeled units ``labeled`` (int [L]): int64 [K] unit indices,
    in the order of ``labeled``."""
    labeled = np.asarray(labeled, dtype=np.int64).reshape(-1)
    if fraction <= 0 or len(labeled) < 2:
        return np.zeros(0, dtype=np.int64)
    draws = unit_draws(labeled, seed)
    count = min(len(labeled) - 1, max(1, int(round(fraction * len(labeled)))))
    held = np.sort(np.argsort(draws, kind="stable")[:count])
    return labeled[held]


def training_units(labeled: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """The labeled units that train: ``labeled`` without :func:`held_out_units`, in order."""
    labeled = np.asarray(labeled, dtype=np.int64).reshape(-1)
    return labeled[~np.isin(labeled, held_out_units(labeled, seed, fraction))]


def hold_out(adapter: Any, fraction: float, seed: int) -> Any:
    """Make ``adapter`` train without the held-out share of its labeled units; returns it.

    ``adapter.training_set(labeled_units)`` then builds the training set of
    :func:`training_units` only. The command line does this for a strategy with a
    ``held_out_fraction``; a library user running such a strategy calls it before
    ``run_active_learning`` (which refuses the strategy otherwise).
    """
    current = getattr(adapter, HELD_OUT_ATTRIBUTE, None)
    if current is not None:
        if current != (fraction, seed):
            raise ValueError(f"the adapter holds out {current[0]:g} of its labeled units with "
                             f"seed {current[1]} already")
        return adapter
    train_on = adapter.training_set

    def training_set(labeled_units: np.ndarray) -> Any:
        return train_on(training_units(labeled_units, seed, fraction))

    training_set.__doc__ = train_on.__doc__
    # An instance attribute: the loop calls adapter.training_set, and this adapter's class
    # (its isinstance checks, e.g. PartwiseEvaluation) stays what it is.
    adapter.training_set = training_set
    setattr(adapter, HELD_OUT_ATTRIBUTE, (fraction, seed))
    return adapter


def held_out_split(adapter: Any) -> tuple[float, int] | None:
    """The ``(fraction, seed)`` :func:`hold_out` gave ``adapter``, or None: the selection takes
    its held-out units from these, so they are the units the training left out."""
    return getattr(adapter, HELD_OUT_ATTRIBUTE, None)
