"""Functions run in each process of a small ``torch.distributed`` group (gloo, CPU) by the tests.

``spawn(worker, world, folder, *args)`` starts ``world`` processes that join one group through a
rendezvous file in ``folder`` and call ``worker(rank, folder, *args)``; a worker writes what it
found to ``folder`` for the test to compare.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _join(rank: int, world: int, folder: str, worker, args) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world)
    try:
        worker(rank, folder, *args)
    finally:
        dist.destroy_process_group()


def spawn(worker, world: int, folder: Path, *args) -> None:
    """Run ``worker(rank, folder, *args)`` in ``world`` processes of one gloo group."""
    mp.spawn(_join, args=(world, str(folder), worker, args), nprocs=world, join=True)


def sharded_k_center(rank: int, folder: str, cases: list) -> None:
    """For each case ``(features, labeled, budget, cuts)``, rank r holds rows cuts[r]:cuts[r+1]
    of ``features``; writes its picks of case k to picks-<k>-<r>.npy."""
    from active_learning.strategies.distributed_coreset import k_center_greedy_sharded

    for case, (features, labeled, budget, cuts) in enumerate(cases):
        start, stop = cuts[rank], cuts[rank + 1]
        mine = labeled[(labeled >= start) & (labeled < stop)] - start
        picks = k_center_greedy_sharded(features[start:stop], mine, budget, offset=start,
                                        total=len(features), seed=3, chunk_size=16)
        np.save(Path(folder) / f"picks-{case}-{rank}.npy", picks)
