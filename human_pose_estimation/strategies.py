"""The pose task's own strategy, and which of the shared ones apply to heatmaps.

``heatmap_uncertainty`` scores a person ``1 - mean_j max(heatmap_j)``: HRNet's heatmaps are
regressed towards a Gaussian of peak 1, so a joint the model finds confidently has a maximum
near 1, and one it cannot place has a low, flat map. It is the joint confidence HRNet itself
uses to rescore detections (``metrics.person_score``), turned into an uncertainty. An image's
score is its persons' pooled by ``--unit-reduction`` (max by default).
"""
from __future__ import annotations

from typing import Mapping

import torch

from active_learning.strategies import PROBS, Strategy, get_strategy, list_strategies, register_strategy

# Strategies that read heatmaps or need no class distribution.
POSE_STRATEGIES = ("random", "loss_prediction", "heatmap_uncertainty", "mc_variance", "coreset",
                   "discriminative")


def heatmap_uncertainty(heatmaps: torch.Tensor) -> torch.Tensor:
    """heatmaps [B, J, H, W] -> [B]: 1 - the mean over joints of each heatmap's maximum (clamped to 0..1)."""
    peaks = heatmaps.float().flatten(2).amax(dim=2).clamp(0.0, 1.0)      # [B, J]
    return 1.0 - peaks.mean(dim=1)


def _score(inputs: Mapping[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    return heatmap_uncertainty(inputs[PROBS])


def register() -> Strategy:
    """Register ``heatmap_uncertainty`` once (importing this module twice is harmless)."""
    if "heatmap_uncertainty" in list_strategies():
        return get_strategy("heatmap_uncertainty")
    return register_strategy(Strategy("heatmap_uncertainty", frozenset({PROBS}),
                                      "pose: 1 - mean of the per-joint heatmap maxima", score_batch=_score))


def check_strategy(name: str) -> None:
    """Refuse, with one message, a strategy that needs class distributions."""
    if name not in POSE_STRATEGIES:
        raise ValueError(f"--strategy {name} needs class probabilities; pose heatmaps are not "
                         f"distributions. Pose strategies: {', '.join(POSE_STRATEGIES)}")


register()   # on import: train.py's parser and PoseTask both import this module
