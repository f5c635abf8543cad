"""The few facts about ``torch.distributed`` the loop needs, usable with or without it.

Under ``torchrun`` every process runs the same script; ``torch.distributed`` is initialised by
the runner (backend ``nccl`` on GPUs, ``gloo`` on CPUs) and these helpers answer "which process
am I, of how many" and "which slice of N items is mine". Without an initialised process group
(one plain process) they answer rank 0 of 1 and the whole range, so code written with them runs
unchanged in both cases.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "is_main_process", "rank", "shard_range", "world_size"]


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0: the only process that writes files."""
    return rank() == 0


def shard_range(n: int, shard: int, shards: int) -> tuple[int, int]:
    """``[start, stop)`` of shard ``shard`` of ``shards`` contiguous, near-equal slices of
    ``range(n)``: the first ``n % shards`` slices hold one item more. Every item is in exactly
    one slice and the slices are in order, so concatenating them gives ``range(n)`` back."""
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards} does not exist")
    if n < 0:
        raise ValueError(f"cannot split {n} items")
    base, extra = divmod(n, shards)
    start = shard * base + min(shard, extra)
    return start, start + base + (1 if shard < extra else 0)


def device_for_collectives(tensor_device: torch.device) -> torch.device:
    """Where a tensor must be for a collective: the GPU under ``nccl``, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return tensor_device if tensor_device.type == "cuda" else \
            torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
