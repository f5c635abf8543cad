"""Greedy k-center (core-set) over a pool split between processes.

Each process holds one contiguous shard of the pool's embeddings and only that shard's
min-distance vector, so the memory per process is O(N / world size). Per pick:

1. every process takes the largest min-distance of its shard (first maximum: lowest position);
2. two all-reduces find the pool's largest value and, among the processes holding it, the lowest
   global position: the same row the one-process :func:`~active_learning.strategies.diversity.
   k_center_greedy` picks, ties included;
3. the process that holds that row broadcasts it (``[D]`` values and its squared norm), and every
   process lowers its shard's min-distances with it.

The labeled rows start the min-distances the same way: each process in turn broadcasts its
labeled rows in chunks, so no process ever holds the whole labeled set.

Without an initialised process group this is the one-process algorithm on the whole pool.
The distances are computed where the shard lives (a GPU shard on the GPU).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from active_learning.distributed import device_for_collectives, rank, world_size
from active_learning.strategies.min_distance import (
    as_matrix,
    center_rows,
    check_budget,
    check_chunk_size,
    labeled_positions,
    resolve_device,
    row_sq_norms,
    update_min_dist_to,
    update_min_dist_to_rows,
)

__all__ = ["k_center_greedy_sharded"]


@torch.inference_mode()
def k_center_greedy_sharded(features, labeled, budget: int, *, offset: int, total: int,
                            chunk_size: int = 16384, seed: int = 0,
                            device: str | torch.device | None = None) -> np.ndarray:
    """Greedy k-center over the pool ``[total, D]`` of which this process holds rows
    ``offset .. offset + len(features)``; every process calls it with its own shard.

    Args:
        features: this process's shard ``[n, D]`` (float64 kept, other dtypes -> float32); the
            shards of all processes, in rank order, must tile the pool.
        labeled: bool mask ``[n]`` or int positions (within the shard) of labeled rows.
        budget: rows to pick over the whole pool (the same on every process).
        offset: the shard's first global position.
        total: the pool's size N.
        chunk_size, seed, device: as :func:`~active_learning.strategies.diversity.k_center_greedy`.

    Returns:
        int64 ndarray ``[budget]`` of global positions in pick order, the same on every process
        and the same as ``k_center_greedy`` on the whole pool.

    Raises:
        ValueError: the shards do not tile ``range(total)``, or the budget exceeds the
            unlabeled rows of the pool.
    """
    check_chunk_size(chunk_size)
    x = as_matrix(features, "features", resolve_device(features, device))  # [n, D]
    n, dim = x.shape
    comm = device_for_collectives(x.device)
    shards = _gather_ints([offset, n], comm)                                  # [[offset, n]]
    _check_tiling(shards, total)
    labeled_local = labeled_positions(labeled, n)                            # [L_local]
    n_labeled = int(sum(_gather_ints([len(labeled_local)], comm)[:, 0]))
    budget = check_budget(budget, total - n_labeled, "unlabeled rows")
    if budget <= 0:
        return np.zeros(0, dtype=np.int64)

    sq_norms = row_sq_norms(x, chunk_size, "features")                       # [n]
    min_dist = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)  # [n]
    picks: list[int] = []
    if n_labeled:
        _lower_by_labeled_rows(x, sq_norms, labeled_local, min_dist, shards, chunk_size, comm)
        min_dist[torch.as_tensor(labeled_local, device=x.device)] = float("-inf")
    else:
        first = int(np.random.default_rng(seed).integers(total))
        picks.append(first)
        _lower_by_center(x, sq_norms, first, offset, shards, min_dist, chunk_size, comm)
    while len(picks) < budget:
        center = _farthest_row(min_dist, offset, total, comm)
        picks.append(center)
        _lower_by_center(x, sq_norms, center, offset, shards, min_dist, chunk_size, comm)
    return np.asarray(picks, dtype=np.int64)


def _gather_ints(values: list[int], comm: torch.device) -> np.ndarray:
    """``values`` of every process, in rank order: ``[world size, len(values)]``."""
    mine = torch.tensor(values, dtype=torch.int64, device=comm)
    if world_size() == 1:
        return mine[None].cpu().numpy()
    gathered = [torch.empty_like(mine) for _ in range(world_size())]
    dist.all_gather(gathered, mine)
    return torch.stack(gathered).cpu().numpy()


def _check_tiling(shards: np.ndarray, total: int) -> None:
    ends = np.cumsum(shards[:, 1])
    starts = np.concatenate([[0], ends[:-1]])
    if not (np.array_equal(shards[:, 0], starts) and ends[-1] == total):
        raise ValueError(f"the shards (offset, rows) {shards.tolist()} do not tile the pool of "
                         f"{total} rows in rank order")


def _owner(position: int, shards: np.ndarray) -> int:
    return int(np.searchsorted(shards[:, 0] + shards[:, 1], position, side="right"))


def _lower_by_center(x: torch.Tensor, sq_norms: torch.Tensor, center: int, offset: int,
                     shards: np.ndarray, min_dist: torch.Tensor, chunk_size: int,
                     comm: torch.device) -> None:
    """Broadcast the row at global position ``center`` from its owner; lower every shard's
    min-distances with it; the owner takes the row out of the running."""
    owner = _owner(center, shards)
    row = torch.empty(x.shape[1] + 1, dtype=x.dtype, device=comm)             # [D + 1]
    if owner == rank():
        local = center - offset
        row[:-1] = x[local].to(comm)
        row[-1] = sq_norms[local].to(comm)
    if world_size() > 1:
        dist.broadcast(row, src=owner)
    row = row.to(x.device)
    update_min_dist_to(x, sq_norms, row[:-1], row[-1], min_dist, chunk_size)
    if owner == rank():
        # -inf keeps a picked row out of argmax even when float error leaves it above 0.
        min_dist[center - offset] = float("-inf")


def _farthest_row(min_dist: torch.Tensor, offset: int, total: int, comm: torch.device) -> int:
    """The global position of the pool's largest min-distance (lowest position on ties)."""
    if len(min_dist):
        local = int(torch.argmax(min_dist))                 # first maximum of this shard
        best = min_dist[local:local + 1].to(comm).clone()
        position = offset + local
    else:
        best = torch.full((1,), float("-inf"), dtype=min_dist.dtype, device=comm)
        position = total
    if world_size() == 1:
        return position
    value = best.clone()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    candidate = torch.tensor([position if bool(best == value) else total], dtype=torch.int64,
                             device=comm)
    dist.all_reduce(candidate, op=dist.ReduceOp.MIN)
    return int(candidate)


def _lower_by_labeled_rows(x: torch.Tensor, sq_norms: torch.Tensor, labeled_local: np.ndarray,
                           min_dist: torch.Tensor, shards: np.ndarray, chunk_size: int,
                           comm: torch.device) -> None:
    """Lower the min-distances by every labeled row of the pool: each process in turn
    broadcasts its labeled rows, one chunk (``[l, D]`` and ``[l]``) at a time."""
    counts = _gather_ints([len(labeled_local)], comm)[:, 0]
    for source, count in enumerate(counts):
        rows = center_rows(chunk_size, int(count))
        for start in range(0, int(count), rows):
            size = min(rows, int(count) - start)
            block = torch.empty(size, x.shape[1] + 1, dtype=x.dtype, device=comm)  # [l, D + 1]
            if source == rank():
                idx = torch.as_tensor(labeled_local[start:start + size], device=x.device)
                block[:, :-1] = x[idx].to(comm)
                block[:, -1] = sq_norms[idx].to(comm)
            if world_size() > 1:
                dist.broadcast(block, src=source)
            block = block.to(x.device)
            update_min_dist_to_rows(x, sq_norms, block[:, :-1], block[:, -1], min_dist,
                                     chunk_size)
