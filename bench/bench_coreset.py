"""Benchmark: time and peak memory of k_center_greedy (core-set) at scale.

    python bench/bench_coreset.py                       # N = 10k, 50k, 100k
    python bench/bench_coreset.py --sizes 10000 100000 --dim 512 --labeled 1000 --budget 1000

Each N runs in a fresh subprocess so that its peak memory is its own. Memory method: the
process's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is read after
the feature matrix exists and a tiny warm-up call has loaded torch's kernels, and again after
``k_center_greedy``; the difference is the extra peak the call needed on top of its inputs.
(tracemalloc does not see torch's allocations, hence RSS.) Goal: extra peak < the feature matrix.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

# Run as a script from anywhere: make the repository root importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _maxrss_bytes() -> int:
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child(n: int, dim: int, n_labeled: int, budget: int, chunk_size: int, seed: int) -> dict:
    import numpy as np
    import torch

    from active_learning.strategies.diversity import k_center_greedy

    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n, dim, generator=gen)  # [N, D] float32, created in place (no temporary)
    labeled = np.random.default_rng(seed).choice(n, size=n_labeled, replace=False)
    k_center_greedy(features[:64], [0], 4)  # warm-up: kernel / thread-pool set-up is not the call's
    before = _maxrss_bytes()
    start = time.perf_counter()
    picks = k_center_greedy(features, labeled, budget, chunk_size=chunk_size)
    seconds = time.perf_counter() - start
    after = _maxrss_bytes()
    assert len(set(picks.tolist())) == budget and not set(picks.tolist()) & set(labeled.tolist())
    return {"n": n, "seconds": seconds, "extra_peak": after - before, "baseline_peak": before,
            "features_bytes": features.numel() * features.element_size()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--labeled", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=16384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        print(json.dumps(child(args.child, args.dim, args.labeled, args.budget, args.chunk_size,
                               args.seed)))
        return

    import torch

    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"python {platform.python_version()}")
    print(f"k_center_greedy: D={args.dim} float32, {args.labeled} labeled, budget {args.budget}, "
          f"chunk_size {args.chunk_size}, device cpu")
    print("memory: peak RSS (ru_maxrss) of a fresh subprocess per N, after the call minus before "
          "it (features already built, kernels warmed up) = extra peak memory of the call")
    header = (f"{'N':>8} {'seconds':>8} {'extra peak MB':>14} {'features MB':>12} "
              f"{'NxN float32':>12}  goal")
    print(header)
    for n in args.sizes:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n), "--dim", str(args.dim),
               "--labeled", str(args.labeled), "--budget", str(args.budget),
               "--chunk-size", str(args.chunk_size), "--seed", str(args.seed)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        nxn = 4 * n * n
        ok = "ok" if r["extra_peak"] < r["features_bytes"] else "ABOVE"
        print(f"{n:>8} {r['seconds']:>8.2f} {r['extra_peak'] / 1e6:>14.1f} "
              f"{r['features_bytes'] / 1e6:>12.1f} {nxn / 1e9:>10.1f}GB  {ok}", flush=True)


if __name__ == "__main__":
    main()
