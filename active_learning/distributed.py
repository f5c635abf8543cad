"""The few facts about ``torch.distributed`` the loop needs, usable with or without it.

Under ``torchrun`` every process runs the same script; ``torch.distributed`` is initialised by
the runner (backend ``nccl`` on GPUs, ``gloo`` on CPUs) and these helpers answer "which process
am I, of how many" and "which slice of N items is mine". Without an initialised process group
(one plain process) they answer rank 0 of 1 and the whole range, so code written with them runs
unchanged in both cases.
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DEFAULT_TIMEOUT_MINUTES", "barrier", "broadcast_buffers", "broadcast_object",
           "device_for_collectives", "finish", "gather_objects", "init_from_environment",
           "is_distributed", "is_main_process", "rank", "shard_range", "world_size"]

# How long a process waits in a collective for the others (torch's default: 10 minutes for
# nccl, 30 for gloo). Some steps run on rank 0 alone while the others wait: opening a run of
# millions of images, DAL's discriminator, BADGE over a large candidate set, the pictures.
DEFAULT_TIMEOUT_MINUTES = 180


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


def init_from_environment(device: str, timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES) -> str:
    """Join the process group ``torchrun`` (or SLURM through it) describes, and return the
    device this process uses.

    Outside ``torchrun`` (no ``WORLD_SIZE`` above 1 in the environment), nothing happens and
    ``device`` comes back as it is. Under it: backend ``nccl`` for CUDA, else ``gloo``; a CUDA
    ``device`` becomes ``cuda:<LOCAL_RANK>``, one GPU per process. A collective that waits
    longer than ``timeout_minutes`` for the other processes fails.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    timeout = timedelta(minutes=timeout_minutes)
    if torch.device(device).type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
        dist.init_process_group("nccl", device_id=torch.device(device), timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    return device


def broadcast_buffers(module: torch.nn.Module | None, src: int = 0) -> None:
    """Give every process rank ``src``'s buffers of ``module`` (BatchNorm's running statistics).

    DistributedDataParallel keeps the parameters equal, but each process updates the buffers
    with its own last batch: after training they differ, and so would each process's slice of
    the evaluation and of the scores. Nothing without a process group."""
    if module is None or not is_distributed():
        return
    for buffer in module.buffers():
        comm = device_for_collectives(buffer.device)
        moved = buffer.data.to(comm)
        dist.broadcast(moved, src=src)
        buffer.data.copy_(moved)


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every process (``value`` of the others is ignored)."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(value: Any, dst: int | None = None) -> list[Any] | None:
    """Every process's ``value`` in rank order, on every process, or only on rank ``dst`` (the
    others get None); a list of one without a process group."""
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * world_size()
    if dst is None:
        dist.all_gather_object(gathered, value)
        return gathered
    dist.gather_object(value, gathered if rank() == dst else None, dst=dst)
    return gathered if rank() == dst else None


def barrier() -> None:
    """Wait for every process (nothing without a process group)."""
    if is_distributed():
        dist.barrier()


def finish() -> None:
    """Leave the process group cleanly: wait for every process, then destroy the group (a
    process that exits while gloo's threads still run is aborted). Nothing without one."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
