"""BALD scoring speed with MC dropout: this project vs baal (https://baal.readthedocs.io),
one process.

Both sides score the same pool with the same model (same weights), the same T, batch size and
device, under no-grad / inference mode, reading batches from the same DataLoader (num_workers=0),
and end with a ranking of the whole pool:

    baal:  MCDropoutModule(model) (dropout always on) -> ModelWrapper(..., TrainingArgs(...))
           .predict_on_dataset(pool, iterations=T) -> logits [N, C, T] (numpy)
           -> BALD().get_ranks(logits) (softmax inside, numpy) -> ranking, scores
    ours:  MCDropoutSampler(model).sample(x, T, output_fn=softmax) per batch -> [T, B, C]
           (the layers before the dropout run once per batch, only dropout + fc run T times)
           -> active_learning.strategies.uncertainty.bald -> active_learning.strategies.top_k

baal is timed in both of its modes: replicate_in_memory=True (its default: the batch is tiled T
times and run as one [T*B] forward) and False (T forward passes per batch).

Model: classification.model.build_model(num_classes=10, in_channels=3, width=W, dropout=0.5), the
CIFAR ResNet-18 with dropout before fc. W=64 is the real ResNet-18; the default --width 16 keeps
a CPU run (with --pool 256) under ~3 minutes on 2 shared cores: baal's side is the slow one.
The pool is random 3x32x32 images.

Agreement checks (different dropout masks give different scores, so rankings are not compared):
  * matched seeds: baal with replicate_in_memory=False draws its masks in the same order as the
    sampler, so with the same seed the probabilities should agree to float rounding;
  * independent masks: Spearman correlation of the two BALD score vectors on --check-pool images
    with T = --check-T (default 200), where the Monte-Carlo noise of each estimate is small.

baal is not a dependency of the project: `bash bench/setup_baal.sh` installs it into bench/.deps,
which this script appends to the END of sys.path (so .venv's torch / numpy are the ones used).

    bash bench/setup_baal.sh
    .venv/bin/python bench/bench_scoring_vs_baal.py                  # width 16, pool 256, CPU
    .venv/bin/python bench/bench_scoring_vs_baal.py --width 64 --device cuda --pool 4096
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

HERE = os.path.dirname(os.path.abspath(__file__))
DEPS = os.path.join(HERE, ".deps")
sys.path.insert(0, os.path.join(HERE, ".."))  # the repository, also without `pip install -e .`

from active_learning.strategies import top_k  # noqa: E402
from active_learning.strategies.mc_dropout import MCDropoutSampler  # noqa: E402
from active_learning.strategies.uncertainty import bald  # noqa: E402
from classification.model import build_model  # noqa: E402

# ---- baal -------------------------------------------------------------------------------


def import_baal() -> tuple[Any, str]:
    """(the baal namespace we use, its version), or (None, why it could not be imported)."""
    if DEPS not in sys.path:
        sys.path.append(DEPS)  # last: .venv's torch / numpy / scipy win over anything in .deps
    try:
        import baal
        from baal.active.heuristics import BALD
        from baal.bayesian.dropout import MCDropoutModule
        from baal.modelwrapper import ModelWrapper
    except Exception as exc:  # ImportError, or an incompatible dependency failing at import
        return None, f"{type(exc).__name__}: {exc}"
    try:
        from importlib.metadata import version

        baal_version = version("baal")
    except Exception:
        baal_version = getattr(baal, "__version__", "unknown")
    _quiet_structlog()
    api = argparse.Namespace(BALD=BALD, MCDropoutModule=MCDropoutModule, ModelWrapper=ModelWrapper)
    try:
        from baal.modelwrapper import TrainingArgs  # baal 2.x

        api.TrainingArgs = TrainingArgs
    except ImportError:
        api.TrainingArgs = None  # baal 1.x: ModelWrapper(model, criterion, replicate_in_memory)
    return api, baal_version


def _quiet_structlog() -> None:
    """baal logs "Start Predict" to stdout on every predict_on_dataset call; keep warnings only."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def make_baal_wrapper(api: Any, model: nn.Module, batch_size: int, device: torch.device,
                      replicate: bool) -> Any:
    """baal's documented MC-dropout setup on a copy of `model` (patching replaces its Dropout)."""
    mc_model = api.MCDropoutModule(copy.deepcopy(model))  # dropout stays on in eval mode
    criterion = nn.CrossEntropyLoss()
    if api.TrainingArgs is None:
        return api.ModelWrapper(mc_model, criterion, replicate_in_memory=replicate)
    args = api.TrainingArgs(
        criterion=criterion,
        batch_size=batch_size,
        use_cuda=device.type == "cuda",
        workers=0,  # same input pipeline as ours; worker processes' CPU time would go uncounted
        replicate_in_memory=replicate,
    )
    return api.ModelWrapper(mc_model, args)


def baal_predict(api: Any, wrapper: Any, dataset: TensorDataset, n_samples: int,
                 batch_size: int) -> np.ndarray:
    """Logits [N, C, T] (numpy) from baal's predict_on_dataset."""
    if api.TrainingArgs is None:  # 1.x took batch_size here
        return wrapper.predict_on_dataset(dataset, batch_size, n_samples, use_cuda=False,
                                          verbose=False)
    return wrapper.predict_on_dataset(dataset, iterations=n_samples, verbose=False)


def baal_score(api: Any, wrapper: Any, dataset: TensorDataset, n_samples: int,
               batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """baal end to end: (ranking best first [N], BALD scores [N])."""
    logits = baal_predict(api, wrapper, dataset, n_samples, batch_size)  # [N, C, T]
    ranks, scores = api.BALD().get_ranks(logits)  # softmax happens inside (to_prob)
    return np.asarray(ranks), np.asarray(scores)


# ---- ours -------------------------------------------------------------------------------


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return logits.softmax(1)  # [B, C]


def ours_score(sampler: MCDropoutSampler, loader: DataLoader, n_samples: int, device: torch.device,
               batch_samples: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """This project end to end: (ranking best first [N], BALD scores [N])."""
    scores = []
    for (x,) in loader:
        x = x.to(device, non_blocking=True)  # [B, 3, 32, 32]
        mc_probs = sampler.sample(x, n_samples, output_fn=_softmax,
                                  batch_samples=batch_samples)  # [T, B, C]
        scores.append(bald(mc_probs))  # [B], stays on the device
    all_scores = torch.cat(scores).cpu().numpy()  # [N]
    return top_k(all_scores, len(all_scores)), all_scores


# ---- timing and checks ------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds, all threads) of one call."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def machine_line(device: torch.device, baal_version: str) -> str:
    gpu = f" | {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
            f"cpus={os.cpu_count()} torch_threads={torch.get_num_threads()} | "
            f"python {platform.python_version()} | torch {torch.__version__} | "
            f"numpy {np.__version__} | baal {baal_version}{gpu}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16,
                        help="channels of the first ResNet stage "
                             "(64 = ResNet-18; 16 = CPU default)")
    parser.add_argument("--pool", type=int, default=256, help="number of random 3x32x32 images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples", "-T", type=int, default=20, help="MC-dropout passes per image")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repeats (interleaved), median kept")
    parser.add_argument("--check-T", type=int, default=100,
                        help="T for the Spearman check of the two score vectors (0 skips it)")
    parser.add_argument("--check-pool", type=int, default=64, help="images in the Spearman check")
    parser.add_argument("--no-batch-samples", action="store_true",
                        help="do not time ours with batch_samples=True (T passes as one batch)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0 = torch's default). On a shared CPU, 1 "
                             "avoids threads spinning at barriers while another job holds a core, "
                             "which inflates the many-small-ops runs far more than "
                             "baal's one big batch")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    for name in ("width", "pool", "batch_size", "samples", "repeats", "check_pool"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.check_T < 0:
        parser.error("--check-T must be >= 0")
    return args


def check_agreement(api: Any, model: nn.Module, sampler: MCDropoutSampler, pool: torch.Tensor,
                    args: argparse.Namespace, device: torch.device) -> None:
    """Matched-seed equality on one small batch, then Spearman of scores with independent masks."""
    x = pool[: min(16, len(pool))]
    seq = make_baal_wrapper(api, model, args.batch_size, device, replicate=False)
    torch.manual_seed(123)
    ref = torch.as_tensor(seq.predict_on_batch(x.to(device), iterations=5)).softmax(1)  # [B, C, T]
    torch.manual_seed(123)
    got = sampler.sample(x.to(device), 5, output_fn=_softmax).permute(1, 2, 0)  # [B, C, T]
    print(f"matched seeds, baal replicate_in_memory=False vs ours, 5 samples of {len(x)} images: "
          f"max |p_baal - p_ours| = {(ref.cpu() - got.cpu()).abs().max().item():.2e}")

    if args.check_T == 0:
        return
    # Random images through a random network all get nearly the same BALD, so on them the Monte
    # Carlo noise would swamp any real disagreement. A log-uniform per-image contrast in
    # [0.03, 3] spreads the true scores out; then a high correlation means both compute the same.
    k = min(args.check_pool, len(pool))
    gen = torch.Generator().manual_seed(args.seed + 1)
    contrast = torch.exp(torch.empty(k).uniform_(np.log(0.03), np.log(3.0), generator=gen))  # [k]
    subset = TensorDataset(pool[:k] * contrast[:, None, None, None])  # [k, 3, 32, 32]
    loader = DataLoader(subset, batch_size=args.batch_size, shuffle=False, num_workers=0)
    # Independent masks (different seeds); replicate_in_memory=False keeps memory at one batch.
    torch.manual_seed(1)
    _, s_baal = baal_score(api, seq, subset, args.check_T, args.batch_size)
    torch.manual_seed(2)
    _, s_ours = ours_score(sampler, loader, args.check_T, device)
    torch.manual_seed(3)
    _, s_ours2 = ours_score(sampler, loader, args.check_T, device)
    top = max(1, len(s_ours) // 10)
    overlap = len(set(np.argsort(-s_baal)[:top]) & set(np.argsort(-s_ours)[:top])) / top
    print(f"independent masks, T={args.check_T}, {k} images with contrast 0.03..3: "
          f"Spearman(baal, ours) = {spearman(s_baal, s_ours):.4f}, "
          f"Spearman(ours, ours with another seed) = {spearman(s_ours, s_ours2):.4f} (noise "
          f"ceiling), top-{top} overlap(baal, ours) = {overlap:.2f}, mean BALD baal "
          f"{s_baal.mean():.4f} / ours {s_ours.mean():.4f} (scores range "
          f"{s_ours.min():.3f}..{s_ours.max():.3f})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    if device.type == "cuda":
        torch.cuda.set_device(device)  # baal moves batches with .cuda(), i.e. to the current device
    api, baal_info = import_baal()
    baal_version = baal_info if api is not None else "not importable"

    torch.manual_seed(args.seed)
    model = build_model(num_classes=10, in_channels=3, width=args.width, dropout=0.5).to(device)
    model.eval()
    pool = torch.randn(args.pool, 3, 32, 32)  # [N, 3, 32, 32], on the CPU like a real dataset
    dataset = TensorDataset(pool)
    sampler = MCDropoutSampler(model)

    print(machine_line(device, baal_version))
    print(f"model: classification.model.build_model(width={args.width}, dropout=0.5) "
          f"(CIFAR ResNet-18{'' if args.width == 64 else '; width 64 is the reference'}) | "
          f"pool={args.pool} batch={args.batch_size} T={args.samples} device={device} | "
          f"ours uses cached prefix: {sampler.uses_cached_prefix}")

    # Every run maps (dataset, T) -> (ranking, scores), so the warm-up can use a small pool.
    runs: dict[str, Callable[[TensorDataset, int], Any]] = {}
    if api is None:
        print(f"baal could not be imported from {DEPS} ({baal_info}).\n"
              f"Install it there with `bash bench/setup_baal.sh`; timing this project only.")
    else:
        for replicate in (True, False):
            wrapper = make_baal_wrapper(api, model, args.batch_size, device, replicate)
            name = f"baal replicate_in_memory={replicate}" + (" (default)" if replicate else "")
            runs[name] = lambda ds, t, w=wrapper: baal_score(api, w, ds, t, args.batch_size)

    def loader_of(ds: TensorDataset) -> DataLoader:
        return DataLoader(ds, batch_size=args.batch_size, shuffle=False, num_workers=0)

    runs["ours MCDropoutSampler"] = lambda ds, t: ours_score(sampler, loader_of(ds), t, device)
    if not args.no_batch_samples:
        runs["ours batch_samples=True"] = lambda ds, t: ours_score(
            sampler, loader_of(ds), t, device, batch_samples=True)

    if api is not None:
        check_agreement(api, model, sampler, pool, args, device)

    warm = TensorDataset(pool[: args.batch_size])
    for fn in runs.values():  # warm-up: allocator, oneDNN / cuDNN algorithm choice
        fn(warm, 2)

    # Interleaved repeats: a burst of load from other jobs on this shared machine hits all alike.
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            w, c = timed(functools.partial(fn, dataset, args.samples), device)
            wall[name].append(w)
            cpu[name].append(c)

    n = args.pool
    rate = {name: n / statistics.median(wall[name]) for name in runs}
    cpu_rate = {name: n / max(statistics.median(cpu[name]), 1e-9) for name in runs}
    print(f"\nscoring + ranking {n} images, median of {args.repeats} interleaved repeats:")
    print(f"{'method':40s} {'images/s (wall)':>16s} {'images/CPU-s':>14s} "
          f"{'wall s (all repeats)':>24s}")
    for name in runs:
        reps = " ".join(f"{w:.2f}" for w in wall[name])
        print(f"{name:40s} {rate[name]:16.1f} {cpu_rate[name]:14.1f} {reps:>24s}")
    if api is None:
        print("ratio: n/a (baal not importable)")
        return 0
    baal_names = [name for name in runs if name.startswith("baal")]
    best_baal = max(baal_names, key=lambda k: rate[k])
    best_baal_cpu = max(baal_names, key=lambda k: cpu_rate[k])
    for ours in (name for name in runs if name.startswith("ours")):
        print(f"ratio {ours} / fastest baal ({best_baal}): "
              f"{rate[ours] / rate[best_baal]:.1f}x wall, "
              f"{cpu_rate[ours] / cpu_rate[best_baal_cpu]:.1f}x CPU time  (goal >= 10x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
