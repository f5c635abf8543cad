"""Which strategies apply to pose, checked when the flags are parsed (before any data is read).

Pose heatmaps are not class distributions: ``heatmap_uncertainty`` (1 - the mean over joints
of each heatmap's peak; ``active_learning.uncertainty.heatmap_uncertainty``) and ``mc_variance``
read them, ``entropy``, ``margin``, ``bald``, ``badge`` and the other distribution scores do not
apply. ``heatmap_uncertainty`` is the joint confidence HRNet itself uses to rescore persons
(``metrics.person_score``), turned into an uncertainty: heatmaps are regressed towards a
Gaussian of peak 1, so a confidently placed joint peaks near 1 and an unplaceable one is low
and flat. An image's score pools its persons' by ``--unit-reduction`` (max by default).
"""
from __future__ import annotations

from types import SimpleNamespace

from active_learning.selection import check_strategy_fits_outputs
from active_learning.strategies import HEATMAPS, get_strategy


def check_strategy(name: str) -> None:
    """ValueError, naming the strategies that fit, for one that needs class distributions."""
    strategy = get_strategy(name)
    if strategy.region_level:
        raise ValueError(f"--strategy {name} selects superpixels; pose selects whole images")
    check_strategy_fits_outputs(strategy, SimpleNamespace(probabilities_kind=HEATMAPS))
