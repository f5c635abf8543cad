"""Benchmark: time and peak memory of TypiClust, ProbCover and Cluster-Margin at 100k x 512.

    python bench/bench_batch_strategies.py                        # every case below
    python bench/bench_batch_strategies.py --cases probcover --rows 100000 --dim 512

The embeddings are a seeded mixture of ``--components`` Gaussian clusters (centres N(0, 1) per
dimension, spread ``--spread`` per dimension), float32: clustered like a network's features,
so that k-means, purity and delta-balls have structure to find. Cluster-Margin also gets
Dirichlet(0.3) class probabilities [N, 10]. The first ``--labeled`` rows are the labeled set,
the other rows the candidates.

Each case runs in a fresh subprocess so that its peak memory is its own. Memory method (as
bench_coreset.py): the peak resident set size (``ru_maxrss``) is read after the inputs exist and
a tiny warm-up call has loaded the kernels, and again after the call; the difference is the
extra peak the call needed on top of its inputs. Goal: under 1 GB extra, under 2 minutes.
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

# name: (strategy, labeled, budget, options)
CASES = {
    "typiclust": ("typiclust", 1000, 1000, {}),
    "typiclust_low_budget": ("typiclust", 0, 10, {}),
    "probcover": ("probcover", 1000, 1000, {"purity_clusters": 100}),
    "probcover_given_delta": ("probcover", 1000, 1000, {"delta": 0.6}),
    "cluster_margin": ("cluster_margin", 0, 1000, {}),
}


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024   # ru_maxrss: KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _embeddings(rows: int, dim: int, components: int, spread: float, seed: int):
    import torch

    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(components, dim, generator=gen)
    which = torch.randint(components, (rows,), generator=gen)
    x = torch.randn(rows, dim, generator=gen)          # [N, D] float32, scaled in place
    x.mul_(spread).add_(centres[which])
    return x


def child(case: str, rows: int, dim: int, components: int, spread: float, seed: int) -> dict:
    import numpy as np
    import torch

    from active_learning.strategies.cluster_margin import cluster_margin
    from active_learning.strategies.typicality import probcover, typiclust

    strategy, n_labeled, budget, options = CASES[case]
    x = _embeddings(rows, dim, components, spread, seed)
    labeled, candidates = x[:n_labeled], x[n_labeled:]
    probs = torch.as_tensor(np.random.default_rng(seed).dirichlet(np.full(10, 0.3), size=rows),
                            dtype=torch.float32)                                  # [N, 10]
    small = x[:64]
    if strategy == "typiclust":
        typiclust(small[:8], small[8:], 4)                                        # warm-up
        call = lambda: typiclust(labeled, candidates, budget, seed=seed, **options)  # noqa: E731
    elif strategy == "probcover":
        probcover(small[:8], small[8:], 4, purity_clusters=4)
        call = lambda: probcover(labeled, candidates, budget, seed=seed, **options)  # noqa: E731
    else:
        cluster_margin(probs[:64], small, 4, hac_sample=32)
        call = lambda: cluster_margin(probs, x, budget, seed=seed, **options)  # noqa: E731
    before = _maxrss_bytes()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = call()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    after = _maxrss_bytes()
    picks = result[0]
    assert len(set(picks.tolist())) == budget
    extra = {"delta": result[2]} if strategy == "probcover" else {}
    return {"case": case, "seconds": seconds, "cpu": cpu, "extra_peak": after - before,
            "inputs_bytes": x.numel() * x.element_size(), "labeled": n_labeled, "budget": budget,
            **extra}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        print(json.dumps(child(args.child, args.rows, args.dim, args.components, args.spread,
                               args.seed)))
        return

    import torch

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), python {platform.python_version()}")
    print(f"{args.rows} x {args.dim} float32 embeddings, {args.components} Gaussian components "
          f"(spread {args.spread}); extra peak = peak RSS after the call minus before it")
    print("wall seconds, and CPU seconds of the process (both cores: up to 2 x wall; the steadier "
          "figure on a shared machine)")
    print(f"{'case':<24} {'labeled':>7} {'budget':>6} {'seconds':>8} {'CPU s':>8} "
          f"{'extra peak MB':>14}  notes")
    for case in args.cases:
        command = [sys.executable, os.path.abspath(__file__), "--child", case, "--rows",
                   str(args.rows), "--dim", str(args.dim), "--components", str(args.components),
                   "--spread", str(args.spread), "--seed", str(args.seed)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        notes = f"delta {row['delta']:g}" if "delta" in row else ""
        print(f"{case:<24} {row['labeled']:>7} {row['budget']:>6} {row['seconds']:>8.2f} "
              f"{row['cpu']:>8.1f} {row['extra_peak'] / 1e6:>14.1f}  {notes}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
