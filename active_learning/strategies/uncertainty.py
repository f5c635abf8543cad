"""Uncertainty scores computed from class probabilities or MC-dropout samples.

Every score follows the same convention: higher = more useful to label. Inputs may be torch
tensors or numpy arrays; outputs are float32 torch tensors on the input's device.

Shapes:
    probs:    [N, C, *dense]     one probability vector per sample (and per pixel / location)
    mc_probs: [T, N, C, *dense]  T stochastic passes (e.g. MC dropout) of the same, or the
              MCStatistics of those passes (streamed: memory independent of T)

Scoring is separate from reduction: each score is first computed per dense location
([N, *dense]) and then collapsed by `reduce_dense` ("mean", "max" or "none").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from active_learning.strategies.mc_statistics import MCStatistics

__all__ = [
    "check_probabilities",
    "reduce_dense",
    "least_confidence",
    "margin",
    "ratio",
    "entropy",
    "mc_entropy",
    "bald",
    "variation_ratio",
    "predictive_variance",
]

_REDUCTIONS = ("mean", "max", "none")


def _as_float_tensor(x: Any, name: str) -> Tensor:
    """Tensor / ndarray / nested list -> floating tensor (float64 kept, everything else float32)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            kind = type(x).__name__
            raise ValueError(f"{name} must be a tensor or an array, got {kind}") from exc
    if not x.is_floating_point():
        x = x.float()
    elif x.dtype in (torch.float16, torch.bfloat16):
        # Half precision sums drift more than atol over many classes: score in float32.
        x = x.float()
    return x


def check_probabilities(
    probs: Any, name: str = "probs", class_dim: int = 1, atol: float = 1e-3
) -> Tensor:
    """Validate a probability tensor and return it as a floating torch tensor.

    probs: [..., C (at class_dim), ...], e.g. [N, C, *dense] (class_dim=1) or
    [T, N, C, *dense] (class_dim=2). Raises ValueError naming `name` if the tensor has too few
    dimensions, contains NaN/inf or negative values, or does not sum to 1 along class_dim
    (within atol).
    """
    p = _as_float_tensor(probs, name)
    if p.ndim < class_dim + 1:
        raise ValueError(
            f"{name} must have at least {class_dim + 1} dimensions with classes on dim "
            f"{class_dim}, got shape {tuple(p.shape)}"
        )
    if p.numel() == 0:
        return p
    if not torch.isfinite(p).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (p < 0).any():
        raise ValueError(f"{name} contains negative values; expected probabilities")
    sums = p.sum(dim=class_dim)  # [..., *dense] without the class dim
    worst = (sums - 1).abs().max().item()
    if worst > atol:
        raise ValueError(
            f"{name} does not sum to 1 along dim {class_dim} (largest deviation {worst:.3g}); "
            "pass probabilities (e.g. softmax outputs), not logits"
        )
    return p


def reduce_dense(scores: Tensor, reduction: str = "mean") -> Tensor:
    """Collapse the dense axes of per-location scores.

    scores: [N, *dense] -> [N] for "mean" / "max"; returned unchanged for "none".
    A [N] input passes through whatever the reduction.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "none" or scores.ndim <= 1:
        return scores
    flat = scores.flatten(1)  # [N, prod(dense)]
    return flat.mean(dim=1) if reduction == "mean" else flat.amax(dim=1)  # [N]


def _finish(scores: Tensor, reduction: str) -> Tensor:
    """Per-location scores [N, *dense] -> reduced float32 scores."""
    return reduce_dense(scores, reduction).to(torch.float32)


def _check_reduction(reduction: str) -> None:
    # Checked before validating the input so a typo fails fast and cheaply.
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _top2(p: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """p: [N, C, *dense] -> (top1, top2), each [N, *dense]."""
    if p.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 classes on dim 1, got shape {tuple(p.shape)}")
    top = p.topk(2, dim=1).values  # [N, 2, *dense]
    return top[:, 0], top[:, 1]


def _entropy(p: Tensor, class_dim: int) -> Tensor:
    """Shannon entropy (natural log) along class_dim; 0 log 0 = 0 via xlogy."""
    return -torch.special.xlogy(p, p).sum(dim=class_dim)


def _check_mc(mc_probs: Any) -> Tensor:
    p = check_probabilities(mc_probs, name="mc_probs", class_dim=2)
    if p.shape[0] < 1:
        raise ValueError("mc_probs must hold at least one MC sample on dim 0 (T >= 1)")
    return p


def least_confidence(probs: Any, reduction: str = "mean") -> Tensor:
    """1 - max_c p.  probs: [N, C, *dense] -> [N] (or [N, *dense] with reduction="none")."""
    _check_reduction(reduction)
    p = check_probabilities(probs)
    return _finish(1.0 - p.amax(dim=1), reduction)  # [N, *dense] before reduction


def margin(probs: Any, reduction: str = "mean") -> Tensor:
    """1 - (p_top1 - p_top2): a small gap between the two best classes scores high.

    probs: [N, C, *dense] with C >= 2 -> [N] (or [N, *dense] with reduction="none").
    """
    _check_reduction(reduction)
    p = check_probabilities(probs)
    top1, top2 = _top2(p, "probs")  # [N, *dense] each
    return _finish(1.0 - (top1 - top2), reduction)


def ratio(probs: Any, reduction: str = "mean") -> Tensor:
    """p_top2 / p_top1 (in [0, 1]; p_top1 >= 1/C > 0 so the division is safe).

    probs: [N, C, *dense] with C >= 2 -> [N] (or [N, *dense] with reduction="none").
    """
    _check_reduction(reduction)
    p = check_probabilities(probs)
    top1, top2 = _top2(p, "probs")  # [N, *dense] each
    return _finish(top2 / top1, reduction)


def entropy(probs: Any, reduction: str = "mean") -> Tensor:
    """-sum_c p log p (natural log).  probs: [N, C, *dense] -> [N] (or [N, *dense])."""
    _check_reduction(reduction)
    p = check_probabilities(probs)
    return _finish(_entropy(p, class_dim=1), reduction)


def mc_entropy(mc_probs: Any, reduction: str = "mean") -> Tensor:
    """Entropy of the mean prediction over the T samples.

    mc_probs: [T, N, C, *dense] -> [N] (or [N, *dense] with reduction="none").
    """
    _check_reduction(reduction)
    if isinstance(mc_probs, MCStatistics):
        (mean,) = mc_probs.require("mean")
        return _finish(_entropy(mean, class_dim=1), reduction)
    p = _check_mc(mc_probs)
    mean = p.mean(dim=0)  # [N, C, *dense]
    return _finish(_entropy(mean, class_dim=1), reduction)


def bald(mc_probs: Any, reduction: str = "mean") -> Tensor:
    """Mutual information H(mean_t p_t) - mean_t H(p_t), clamped at 0.

    High when the samples are individually confident but disagree with one another.
    mc_probs: [T, N, C, *dense] -> [N] (or [N, *dense] with reduction="none").
    """
    _check_reduction(reduction)
    if isinstance(mc_probs, MCStatistics):
        mean, expected = mc_probs.require("mean", "mean_entropy")  # [N, C, *dense], [N, *dense]
        total = _entropy(mean, class_dim=1)  # [N, *dense]
    else:
        p = _check_mc(mc_probs)
        total = _entropy(p.mean(dim=0), class_dim=1)  # [N, *dense]
        expected = _entropy(p, class_dim=2).mean(dim=0)  # [N, *dense]
    # Rounding can make the difference slightly negative when all samples agree.
    return _finish((total - expected).clamp_min(0.0), reduction)


def variation_ratio(mc_probs: Any, reduction: str = "mean") -> Tensor:
    """1 - (number of samples voting for the modal class) / T.

    mc_probs: [T, N, C, *dense] -> [N] (or [N, *dense] with reduction="none").
    """
    _check_reduction(reduction)
    if isinstance(mc_probs, MCStatistics):
        (votes,) = mc_probs.require("votes")
        modal = votes.amax(dim=1).float()  # [N, *dense] votes of the modal class
        return _finish(1.0 - modal / mc_probs.n_samples, reduction)
    p = _check_mc(mc_probs)
    n_samples = p.shape[0]
    votes = p.argmax(dim=2)  # [T, N, *dense]
    mode = votes.mode(dim=0).values  # [N, *dense]; ties do not matter, only the count is used
    count = (votes == mode.unsqueeze(0)).sum(dim=0)  # [N, *dense]
    return _finish(1.0 - count.to(p.dtype) / n_samples, reduction)


def predictive_variance(mc_probs: Any, reduction: str = "mean") -> Tensor:
    """Population variance over the T samples, averaged over classes.

    mc_probs: [T, N, C, *dense] -> [N] (or [N, *dense] with reduction="none").
    """
    _check_reduction(reduction)
    if isinstance(mc_probs, MCStatistics):
        (m2,) = mc_probs.require("m2")
        var = m2.clamp_min(0.0) / mc_probs.n_samples  # [N, C, *dense]
        return _finish(var.mean(dim=1), reduction)
    p = _check_mc(mc_probs)
    var = p.var(dim=0, unbiased=False)  # [N, C, *dense]
    return _finish(var.mean(dim=1), reduction)  # [N, *dense] before reduction


def expected_gradient_length(probs: Any, embedding: Any, reduction: str = "mean") -> Tensor:
    """Expected gradient length of the last layer (Settles, Craven & Ray 2008), in closed form.

    For a linear last layer ``softmax(W h + b)`` trained with cross-entropy, the gradient for
    label ``y`` is ``(p - e_y) h^T`` for ``W`` and ``p - e_y`` for ``b``, of squared norm
    ``|p - e_y|^2 (|h|^2 + 1)`` with ``|p - e_y|^2 = |p|^2 - 2 p_y + 1``. Its expectation
    under the model's own prediction is
    ``EGL = sum_y p_y sqrt(|p|^2 - 2 p_y + 1) sqrt(|h|^2 + 1)``, computed here without a
    backward pass (the gradient BADGE embeds, for every label instead of the predicted one).

    probs: [N, C] one distribution per image; embedding: [N, D] the last layer's input
    -> [N]. ``reduction`` is accepted for the registry's signature. The closed form holds
    when ``embedding`` is the input of a linear last layer with a bias (classification's
    ResNet); for another head it is a proxy. Computed in float64 as
    ``sum_{c != y} p_c^2 + (1 - p_y)^2``: in float32, ``|p|^2 - 2 p_y + 1`` loses the
    confident predictions' small values (44% off at p_y = 0.99995).
    """
    _check_reduction(reduction)
    p = check_probabilities(probs).double()
    if p.dim() != 2:
        raise ValueError(f"expected gradient length needs one distribution per image, [N, C]; "
                         f"got {tuple(p.shape)}")
    h = _as_float_tensor(embedding, "embedding").reshape(p.shape[0], -1).double()     # [N, D]
    others = ((p * p).sum(dim=1, keepdim=True) - p * p).clamp_min(0.0)            # [N, C]
    residual = others + (1.0 - p) ** 2                           # |p - e_y|^2 for each y, [N, C]
    expected = (p * residual.sqrt()).sum(dim=1)                                        # [N]
    return (expected * ((h * h).sum(dim=1) + 1.0).sqrt()).to(torch.float32)


def heatmap_uncertainty(heatmaps: Tensor, reduction: str = "mean") -> Tensor:
    """1 - the mean over joints of each heatmap's maximum (clamped to 0..1).

    heatmaps: [N, J, H, W] regressed joint maps (HRNet's, which peak at 1 on a joint) -> [N].
    A joint the model places confidently has a peak near 1; one it cannot place, a low flat
    map. ``reduction`` is accepted for the registry's signature: the score is one per person.
    """
    peaks = heatmaps.float().flatten(2).amax(dim=2).clamp(0.0, 1.0)      # [N, J]
    return 1.0 - peaks.mean(dim=1)
