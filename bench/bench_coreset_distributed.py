"""Benchmark: sharded k-center greedy (core-set) with 1 and 2 processes, time and memory per rank.

    python bench/bench_coreset_distributed.py --rows 1000000 --dim 512 --labeled 1000 --budget 100

Each world size runs in fresh processes of one gloo group (``torch.multiprocessing.spawn``, one
torch thread each). Every rank creates only its shard of the ``[rows, dim]`` float32 pool
(``torch.randn``, seeded by its offset, so the pool is the same whatever the world size) and
marks ``--labeled`` rows of the pool labeled, split between the shards. Measured per rank: the
shard's size, the peak resident set size (``ru_maxrss``) after the shard and a warm-up call and
again after the selection (the difference is the selection's extra peak), the wall time and the
process CPU time of the selection. Rank 0 checks that every rank picked the same rows and, for
world size 1 and 2, that the picks are equal.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin"
                                                                   else 1024)


def _rank_main(rank: int, world: int, folder: str, args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    from active_learning.distributed import shard_range
    from active_learning.strategies.distributed_coreset import k_center_greedy_sharded

    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world)
    start, stop = shard_range(args.rows, rank, world)
    # The pool is made of blocks of 1,000 rows each seeded by its index, so each rank creates
    # its own rows only and the pool does not depend on the world size.
    block = 1000
    shard = torch.empty(stop - start, args.dim)                               # [n, D]
    for first in range(start - start % block, stop, block):
        rows = torch.randn(block, args.dim, generator=torch.Generator().manual_seed(first))
        lo, hi = max(first, start), min(first + block, stop)
        shard[lo - start:hi - start] = rows[lo - first:hi - first]
    labeled = np.random.default_rng(0).choice(args.rows, size=args.labeled, replace=False)
    mine = labeled[(labeled >= start) & (labeled < stop)] - start
    # warm-up on 4 rows per rank: kernel and collective set-up are not the selection's
    k_center_greedy_sharded(shard[:4], [], 2, offset=4 * rank, total=4 * world)
    dist.barrier()
    before = _maxrss_bytes()
    wall, cpu = time.perf_counter(), time.process_time()
    picks = k_center_greedy_sharded(shard, mine, args.budget, offset=start, total=args.rows,
                                    chunk_size=args.chunk_size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = _maxrss_bytes()
    np.save(Path(folder) / f"picks-{rank}.npy", picks)
    np.save(Path(folder) / f"figures-{rank}.npy",
            np.array([shard.numel() * 4, before, after, wall, cpu], dtype=np.float64))
    dist.destroy_process_group()


def run(world: int, args: argparse.Namespace):
    import numpy as np
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(_rank_main, args=(world, folder, args), nprocs=world, join=True)
        picks = [np.load(Path(folder) / f"picks-{r}.npy") for r in range(world)]
        figures = [np.load(Path(folder) / f"figures-{r}.npy") for r in range(world)]
    assert all(np.array_equal(picks[0], p) for p in picks), "the ranks picked different rows"
    return picks[0], figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--labeled", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs; pool {args.rows:,} x {args.dim} float32, "
          f"{args.labeled} labeled, budget {args.budget}, {args.threads} thread(s) per rank")
    print("| ranks | rank | shard (GiB) | peak RSS after the shard (GiB) | extra peak of the "
          "selection (MiB) | wall (s) | CPU (s) | wall / budget (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    for world in args.worlds:
        picks, figures = run(world, args)
        results[world] = picks
        for r, (shard, before, after, wall, cpu) in enumerate(figures):
            print(f"| {world} | {r} | {shard / 2**30:.2f} | {before / 2**30:.2f} | "
                  f"{(after - before) / 2**20:.0f} | {wall:.1f} | {cpu:.1f} | "
                  f"{1000 * wall / args.budget:.0f} |", flush=True)
    if len(results) > 1:
        import numpy as np

        same = all(np.array_equal(p, next(iter(results.values()))) for p in results.values())
        print(f"picks equal across world sizes: {same}")


if __name__ == "__main__":
    main()
