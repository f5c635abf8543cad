"""Time and peak memory of the outlier strategies' selections at pool scale.

    python bench/bench_outlier_scale.py                 # every case below, one process each
    python bench/bench_outlier_scale.py glosh 10000     # one case

Cases (D = 512, float32 embeddings of Gaussian blobs):
- ``outliers N``: ``mb_outliers_mean`` of N candidates against 10,000 labeled items (the
  candidates ranked 4,096 at a time: memory O(labeled x D + chunk x D));
- ``glosh N``: scikit-learn's HDBSCAN (min_cluster_size 100, min_samples 1) on N candidates,
  the condensed tree and the GLOSH scores (``mb_outliers_glosh``, ``mb_clustering``);
- ``density N``: hidden uncertainty's -log p(x) of N rows against ten fitted classes.

Each case runs in a fresh process; the peak is the process's peak resident set size during the
selection (reset when it starts, Linux only) minus what it held then (the inputs), in MiB.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 512
CASES = [("outliers", 10_000), ("outliers", 100_000), ("glosh", 1_000), ("glosh", 5_000),
         ("glosh", 10_000), ("density", 100_000)]


def _blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, DIM)).astype(np.float32) * 3
    return centers[rng.integers(0, 10, n)] + rng.normal(size=(n, DIM)).astype(np.float32)


def _reset_peak() -> float:
    """Reset the process's peak resident set size to its current size (Linux: writing 5 to
    /proc/self/clear_refs), and return that size in MiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_mib() -> float:
    return _status("VmHWM")


def run_case(kind: str, n: int) -> tuple[float, float]:
    """(seconds, extra peak MiB) of one case, in this process."""
    import torch

    torch.set_num_threads(1)
    candidates = _blobs(n, 0)
    if kind == "outliers":
        from active_learning.strategies.outliers import model_outlier_scores

        labeled = _blobs(10_000, 1)
        before, start = _reset_peak(), time.perf_counter()
        model_outlier_scores(candidates, labeled, "mean")
    elif kind == "glosh":
        from active_learning.strategies.outliers import hdbscan_glosh

        before, start = _reset_peak(), time.perf_counter()
        hdbscan_glosh(candidates)
    elif kind == "density":
        from active_learning.strategies.hidden_uncertainty import (
            fit_class_conditional,
            hidden_uncertainty_scores,
        )
        from active_learning.strategies.labeled import LabeledFeatures

        rng = np.random.default_rng(2)
        labels = rng.integers(0, 10, 5_000)
        rows = _blobs(5_000, 3)
        density = fit_class_conditional(LabeledFeatures(rows, labels, labels,
                                                        np.bincount(labels, minlength=10)))
        before, start = _reset_peak(), time.perf_counter()
        for begin in range(0, n, 256):   # the loop's batches of eval_batch_size 256
            hidden_uncertainty_scores({"hidden": torch.from_numpy(candidates[begin:begin + 256])},
                                      density=density)
    else:
        raise ValueError(f"unknown case {kind!r}")
    return time.perf_counter() - start, _peak_mib() - before


def main(argv: list[str]) -> None:
    if argv:
        seconds, peak = run_case(argv[0], int(argv[1]))
        print(f"| {argv[0]} | {int(argv[1]):,} | {seconds:.1f} | {peak:.0f} |", flush=True)
        return
    print("| case | N | seconds | extra peak MiB |\n|---|---|---|---|", flush=True)
    for kind, n in CASES:
        subprocess.run([sys.executable, __file__, kind, str(n)], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
