"""Diversity-based selection: greedy k-center (core-set) and BADGE.

- ``k_center_greedy``: Sener & Savarese, "Active Learning for Convolutional Neural Networks:
  A Core-Set Approach", ICLR 2018 (the greedy 2-approximation of k-center).
- ``gradient_embedding`` / ``badge`` / ``badge_factored``: Ash et al., "Deep Batch Active Learning
  by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020 (k-means++ seeding on the gradient of
  the loss w.r.t. the last linear layer at the predicted label).

Memory is O(N) beyond the inputs: both selectors keep one min-distance vector ``[N]`` and update
it with the distances to the newest center only; nothing builds an N x N (or N x L) matrix.
Squared distances use the matmul identity ``|x - c|^2 = |x|^2 - 2 x.c + |c|^2``, clamped at 0.

All functions return positions (row numbers) into the arrays they are given; the caller maps
them to absolute dataset indices.
"""
from __future__ import annotations

import numpy as np
import torch

from active_learning.strategies.min_distance import (
    as_matrix,
    check_budget,
    check_chunk_size,
    labeled_positions,
    min_dist_to_set,
    resolve_device,
    row_sq_norms,
    update_min_dist,
)


# --------------------------------------------------------------------------------------------
# core-set
# --------------------------------------------------------------------------------------------
@torch.inference_mode()
def k_center_greedy(features, labeled, budget: int, *, chunk_size: int = 16384, seed: int = 0,
                    device: str | torch.device | None = None, weights=None) -> np.ndarray:
    """Greedy k-center (core-set) selection.

    Args:
        features: ``[N, D]`` float tensor or ndarray (float64 kept, other dtypes -> float32).
        labeled: bool mask ``[N]`` or int positions of rows already labeled (may be empty / None).
        budget: number of rows to pick; ``<= 0`` returns an empty array.
        chunk_size: rows per chunk for the distance computations (memory knob).
        seed: seeds the first pick when no row is labeled (without ``weights``).
        device: where to compute; default: the device of ``features`` (CPU for ndarrays).
        weights: optional ``[N]`` non-negative weights: each pick then maximises the distance
            to the nearest labeled-or-picked row times the row's weight (the core-set "weighted
            by the score" of the mixes, ``strategies/mixes.py``). None: every weight 1.

    Returns:
        int64 ndarray ``[budget]`` of distinct row positions, none of them labeled, in pick order:
        each pick is the row whose (weighted) Euclidean distance to its nearest labeled-or-picked
        row is largest (ties: lowest position).

    Raises:
        ValueError: ``budget`` larger than the number of unlabeled rows, bad shapes or positions.
    """
    check_chunk_size(chunk_size)
    x = as_matrix(features, "features", resolve_device(features, device))  # [N, D]
    n = x.shape[0]
    labeled_pos = labeled_positions(labeled, n)  # [L]
    budget = check_budget(budget, n - len(labeled_pos), "unlabeled rows")
    if budget <= 0:
        return np.zeros(0, dtype=np.int64)

    squared_weights = None
    if weights is not None:
        w = torch.as_tensor(weights, dtype=x.dtype, device=x.device).reshape(-1)   # [N]
        if w.shape[0] != n or not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError(f"weights must be {n} finite values >= 0, got {tuple(w.shape)}")
        squared_weights = w * w   # min_dist holds squared distances: (d w)^2 = d^2 w^2
    sq_norms = row_sq_norms(x, chunk_size, "features")  # [N]
    taken = torch.zeros(n, dtype=torch.bool, device=x.device)  # [N] labeled or picked
    picks: list[int] = []
    if len(labeled_pos) > 0:
        min_dist = min_dist_to_set(x, sq_norms, labeled_pos, chunk_size)  # [N]
        taken[torch.as_tensor(labeled_pos, device=x.device)] = True
    else:
        # the seeded first pick; with weights, the heaviest row (the best score)
        first = (int(np.random.default_rng(seed).integers(n)) if squared_weights is None
                 else int(torch.argmax(squared_weights)))
        picks.append(first)
        taken[first] = True
        min_dist = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)  # [N]
        update_min_dist(x, sq_norms, first, min_dist, chunk_size)
    # -inf keeps labeled and picked rows out of argmax even when float error leaves them > 0.
    min_dist[taken] = float("-inf")

    while len(picks) < budget:
        criterion = min_dist
        if squared_weights is not None:   # taken rows stay -inf (-inf x 0 would be NaN)
            criterion = torch.where(torch.isinf(min_dist), min_dist, min_dist * squared_weights)
        center = int(torch.argmax(criterion))  # first maximum -> lowest position on ties
        picks.append(center)
        update_min_dist(x, sq_norms, center, min_dist, chunk_size)
        min_dist[center] = float("-inf")
    return np.asarray(picks, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# BADGE
# --------------------------------------------------------------------------------------------
def _residuals(probs: torch.Tensor) -> torch.Tensor:
    """``probs: [N, C]`` -> ``p - onehot(argmax p)``: ``[N, C]``."""
    res = probs.clone()  # [N, C]
    top = probs.argmax(dim=1)  # [N]
    res[torch.arange(probs.shape[0], device=probs.device), top] -= 1.0
    return res


def _check_probs_embeddings(probs, embeddings) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(probs)
    h = torch.as_tensor(embeddings)
    if p.ndim != 2:
        raise ValueError(f"probs must be [N, C], got shape {tuple(p.shape)}")
    if h.ndim != 2:
        raise ValueError(f"embeddings must be [N, D], got shape {tuple(h.shape)}")
    if p.shape[0] != h.shape[0]:
        raise ValueError(f"probs has {p.shape[0]} rows but embeddings has {h.shape[0]}")
    dtype = torch.promote_types(p.dtype, h.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    return p.to(dtype), h.to(dtype=dtype, device=p.device)


def gradient_embedding(probs, embeddings) -> torch.Tensor:
    """BADGE gradient embedding.

    Args:
        probs: ``[N, C]`` softmax probabilities.
        embeddings: ``[N, D]`` inputs of the last linear layer (penultimate features).

    Returns:
        ``[N, C*D]``: row i is ``(p_i - onehot(argmax p_i)) ⊗ h_i`` flattened class-major, i.e. the
        gradient of ``cross_entropy(W h_i, argmax p_i)`` w.r.t. the weight ``W: [C, D]``.
    """
    p, h = _check_probs_embeddings(probs, embeddings)
    res = _residuals(p)  # [N, C]
    return (res[:, :, None] * h[:, None, :]).reshape(p.shape[0], -1)  # [N, C*D]


def _kmeanspp(n: int, sq_norms: torch.Tensor, update, budget: int, seed: int) -> np.ndarray:
    """k-means++ seeding shared by ``badge`` and ``badge_factored``.

    sq_norms: ``[N]``; ``update(center, min_dist)`` lowers ``min_dist: [N]`` in place to the
    squared distance to ``center`` where that is smaller.
    """
    rng = np.random.default_rng(seed)
    chosen = np.zeros(n, dtype=bool)
    first = int(torch.argmax(sq_norms))
    picks = [first]
    chosen[first] = True
    min_dist = torch.full((n,), float("inf"), dtype=sq_norms.dtype, device=sq_norms.device)  # [N]
    update(first, min_dist)
    while len(picks) < budget:
        weights = min_dist.double().cpu().numpy()  # [N] squared distances
        weights[chosen] = 0.0  # float error must not let a chosen row be drawn again
        total = weights.sum()
        if total > 0.0:
            nxt = int(rng.choice(n, p=weights / total))
        else:  # every remaining row coincides with a chosen one
            nxt = int(rng.choice(np.flatnonzero(~chosen)))
        picks.append(nxt)
        chosen[nxt] = True
        update(nxt, min_dist)
    return np.asarray(picks, dtype=np.int64)


@torch.inference_mode()
def badge(grad_embeddings, budget: int, seed: int = 0, *, chunk_size: int = 16384,
          device: str | torch.device | None = None) -> np.ndarray:
    """BADGE selection: k-means++ seeding on gradient embeddings.

    Args:
        grad_embeddings: ``[N, E]`` (e.g. from ``gradient_embedding``).
        budget: number of rows to pick; ``<= 0`` returns an empty array.
        seed: seeds the numpy Generator that samples every pick after the first.
        chunk_size: rows per chunk for the distance updates.
        device: where to compute; default: the device of ``grad_embeddings``.

    Returns:
        int64 ndarray ``[budget]`` of distinct row positions in pick order. The first pick is the
        row of largest norm; each next one is drawn with probability proportional to its squared
        distance to the nearest chosen row (uniformly among unchosen rows if all those are 0).
    """
    check_chunk_size(chunk_size)
    x = as_matrix(grad_embeddings, "grad_embeddings",
                   resolve_device(grad_embeddings, device))  # [N, E]
    budget = check_budget(budget, x.shape[0], "rows")
    if budget <= 0:
        return np.zeros(0, dtype=np.int64)
    sq_norms = row_sq_norms(x, chunk_size, "grad_embeddings")  # [N]

    def update(center: int, min_dist: torch.Tensor) -> None:
        update_min_dist(x, sq_norms, center, min_dist, chunk_size)

    return _kmeanspp(x.shape[0], sq_norms, update, budget, seed)


@torch.inference_mode()
def badge_factored(residuals, embeddings, budget: int, seed: int = 0, *, chunk_size: int = 16384,
                   device: str | torch.device | None = None) -> np.ndarray:
    """``badge`` on ``residuals ⊗ embeddings`` without materialising the ``[N, C*D]`` matrix.

    Uses ``|a⊗h - b⊗g|^2 = |a|^2 |h|^2 - 2 (a.b)(h.g) + |b|^2 |g|^2``, so memory is O(N (C + D)).

    Args:
        residuals: ``[N, C]``, e.g. ``probs - onehot(argmax probs)``.
        embeddings: ``[N, D]`` penultimate features.
        budget, seed, chunk_size, device: as in ``badge`` (same picks for the same seed, up to
        floating-point rounding of the distances).

    Returns:
        int64 ndarray ``[budget]`` of distinct row positions in pick order.
    """
    check_chunk_size(chunk_size)
    dev = resolve_device(residuals, device)
    a = as_matrix(residuals, "residuals", dev)  # [N, C]
    h = as_matrix(embeddings, "embeddings", dev)  # [N, D]
    if a.shape[0] != h.shape[0]:
        raise ValueError(f"residuals has {a.shape[0]} rows but embeddings has {h.shape[0]}")
    dtype = torch.promote_types(a.dtype, h.dtype)
    a, h = a.to(dtype), h.to(dtype)
    n = a.shape[0]
    budget = check_budget(budget, n, "rows")
    if budget <= 0:
        return np.zeros(0, dtype=np.int64)
    a_sq = row_sq_norms(a, chunk_size, "residuals")  # [N]
    h_sq = row_sq_norms(h, chunk_size, "embeddings")  # [N]
    sq_norms = a_sq * h_sq  # [N] = |a ⊗ h|^2

    def update(center: int, min_dist: torch.Tensor) -> None:
        ac, hc, c_sq = a[center], h[center], sq_norms[center]  # [C], [D], scalar
        for start in range(0, n, chunk_size):
            stop = start + chunk_size
            cross = (a[start:stop] @ ac) * (h[start:stop] @ hc)  # [c] = <a_i⊗h_i, a_c⊗h_c>
            d = (sq_norms[start:stop] - 2.0 * cross + c_sq).clamp_(min=0.0)  # [c]
            torch.minimum(min_dist[start:stop], d, out=min_dist[start:stop])

    return _kmeanspp(n, sq_norms, update, budget, seed)
