"""Squared Euclidean min-distances over row chunks: the kernel core-set and BADGE share, on one
process (``diversity.py``) or with the pool split between processes (``distributed_coreset.py``).

Memory is O(N) beyond the inputs: a min-distance vector ``[N]`` is lowered with the distances to
new centers, one chunk of rows at a time; nothing builds an N x N (or N x L) matrix. Squared
distances use the matmul identity ``|x - c|^2 = |x|^2 - 2 x.c + |c|^2``, clamped at 0.
"""
from __future__ import annotations

import numpy as np
import torch

# Largest number of elements of one [pool chunk, labeled chunk] distance block (8 MiB in float32),
# so that chunk_size x chunk_size blocks (1 GiB at the default) never happen.
MAX_BLOCK_ELEMENTS = 1 << 21


def resolve_device(x: object, device: str | torch.device | None) -> torch.device:
    """``device``, or by default where ``x`` lives (the CPU for an ndarray)."""
    if device is not None:
        return torch.device(device)
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def as_matrix(x: object, name: str, device: torch.device) -> torch.Tensor:
    """Return ``x`` as a floating 2-D tensor on ``device`` without copying when possible.

    float32 / float64 are kept (float64 gives exact-enough distances for tests); anything else
    becomes float32.
    """
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, D] array, got shape {tuple(t.shape)}")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t.to(device)  # finiteness is checked on the row norms (no [N, D] bool temporary)


def check_chunk_size(chunk_size: int) -> None:
    """Refuse a chunk of fewer than one row."""
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def labeled_positions(labeled: object, n: int) -> np.ndarray:
    """``labeled`` (bool mask [N] or int positions) -> sorted distinct int64 positions."""
    if labeled is None:
        return np.zeros(0, dtype=np.int64)
    arr = (labeled.detach().cpu().numpy() if isinstance(labeled, torch.Tensor)
           else np.asarray(labeled))
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"labeled as a boolean mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    arr = arr.reshape(-1)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError("labeled must be a boolean mask or integer positions, "
                         f"got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError("labeled positions must lie in "
                         f"[0, {n}), got range [{arr.min()}, {arr.max()}]")
    return np.unique(arr).astype(np.int64)


def row_sq_norms(x: torch.Tensor, chunk_size: int, name: str) -> torch.Tensor:
    """``x: [N, D]`` -> ``[N]`` squared row norms, chunked so no [N, D] temporary is made.

    NaN / inf anywhere in a row (or overflow) makes its norm non-finite, which is reported.
    """
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)  # [N]
    for start in range(0, x.shape[0], chunk_size):
        rows = x[start:start + chunk_size]  # [c, D] view
        out[start:start + chunk_size] = torch.einsum("nd,nd->n", rows, rows)  # [c]
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} contains NaN or infinite values (or values too large to square)")
    return out


def update_min_dist(x: torch.Tensor, sq_norms: torch.Tensor, center: int, min_dist: torch.Tensor,
                     chunk_size: int) -> None:
    """In place: ``min_dist = min(min_dist, |x - x[center]|^2)``.

    x: [N, D], sq_norms: [N], min_dist: [N]. Works on row chunks; temporaries are [chunk].
    """
    update_min_dist_to(x, sq_norms, x[center], sq_norms[center], min_dist, chunk_size)


def update_min_dist_to(x: torch.Tensor, sq_norms: torch.Tensor, c: torch.Tensor,
                        c_sq: torch.Tensor, min_dist: torch.Tensor, chunk_size: int) -> None:
    """In place: ``min_dist = min(min_dist, |x - c|^2)`` for one center ``c: [D]`` of squared
    norm ``c_sq`` (a 0-d tensor); x: [N, D], sq_norms: [N], min_dist: [N]."""
    for start in range(0, x.shape[0], chunk_size):
        stop = start + chunk_size
        d = sq_norms[start:stop] - 2.0 * (x[start:stop] @ c) + c_sq  # [c]
        d.clamp_(min=0.0)  # cancellation can make exact duplicates slightly negative
        torch.minimum(min_dist[start:stop], d, out=min_dist[start:stop])


def min_dist_to_set(x: torch.Tensor, sq_norms: torch.Tensor, centers: np.ndarray,
                     chunk_size: int) -> torch.Tensor:
    """``[N]`` squared distance of every row of ``x: [N, D]`` to its nearest row in ``centers``.

    Chunked over both the pool rows and the center rows: the largest temporary is one
    ``[pool chunk, center chunk]`` block of at most ``MAX_BLOCK_ELEMENTS`` elements.
    """
    min_dist = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)  # [N]
    block_rows = center_rows(chunk_size, len(centers))
    centers_t = torch.as_tensor(centers, device=x.device)
    for c_start in range(0, len(centers), block_rows):
        idx = centers_t[c_start:c_start + block_rows]  # [l]
        # a gathered copy of one chunk of centers only: [l, D] and [l]
        update_min_dist_to_rows(x, sq_norms, x[idx], sq_norms[idx], min_dist, chunk_size)
    return min_dist


def center_rows(chunk_size: int, n_centers: int) -> int:
    """How many center rows one distance block takes."""
    return max(1, min(chunk_size, n_centers))


def update_min_dist_to_rows(x: torch.Tensor, sq_norms: torch.Tensor, cx: torch.Tensor,
                             c_sq: torch.Tensor, min_dist: torch.Tensor, chunk_size: int) -> None:
    """In place: ``min_dist = min(min_dist, min_j |x - cx[j]|^2)`` for centers ``cx: [l, D]``
    of squared norms ``c_sq: [l]``; x: [N, D], sq_norms: [N], min_dist: [N]."""
    pool_rows = max(1, min(chunk_size, MAX_BLOCK_ELEMENTS // max(1, cx.shape[0])))
    for p_start in range(0, x.shape[0], pool_rows):
        p_stop = p_start + pool_rows
        block = x[p_start:p_stop] @ cx.T  # [p, l]
        block.mul_(-2.0).add_(sq_norms[p_start:p_stop, None]).add_(c_sq[None, :])  # [p, l]
        block_min = block.min(dim=1).values.clamp_(min=0.0)  # [p]
        torch.minimum(min_dist[p_start:p_stop], block_min, out=min_dist[p_start:p_stop])
        del block  # free it before the next matmul allocates its successor (else two at once)


def check_budget(budget: int, n_available: int, what: str) -> int:
    """``budget`` as an int; ValueError when it exceeds the ``n_available`` rows (``what``)."""
    budget = int(budget)
    if budget > n_available:
        raise ValueError(f"budget ({budget}) exceeds the number of {what} ({n_available})")
    return budget
