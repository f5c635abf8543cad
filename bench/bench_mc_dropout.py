"""MC-dropout throughput: MCDropoutSampler (prefix once, dropout+head T times) vs naive T passes.

Model: CIFAR-style ResNet-18 (3x3 stride-1 stem, no max-pool) whose classifier is
nn.Sequential(nn.Dropout(0.5), nn.Linear(8*width, 10)). width=64 is torchvision's resnet18;
a smaller --width builds the same network from torchvision's BasicBlock with fewer channels,
for CPU runs that finish in minutes.

The naive method is what baal / DeepAL / modAL do: T full forward passes per batch with
dropout active. Both methods run under torch.inference_mode() on the same pool.

    python bench/bench_mc_dropout.py                       # full width (slow on CPU)
    python bench/bench_mc_dropout.py --width 16 --pool 512 # CPU-friendly
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from active_learning.strategies.mc_dropout import MCDropoutSampler, mc_dropout_mode  # noqa: E402


def cifar_resnet18(width: int = 64, n_classes: int = 10) -> nn.Module:
    """ResNet-18 for 32x32 inputs with dropout before the classifier; stage widths w, 2w, 4w, 8w."""
    from torchvision.models import resnet18
    from torchvision.models.resnet import BasicBlock

    if width == 64:
        model = resnet18(weights=None, num_classes=n_classes)
        model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
        model.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(512, n_classes))
        return model

    def stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or c_in != c_out:
            down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                 nn.BatchNorm2d(c_out))
        return nn.Sequential(BasicBlock(c_in, c_out, stride, down), BasicBlock(c_out, c_out))

    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(w),
        nn.ReLU(inplace=True),
        stage(w, w, 1),
        stage(w, 2 * w, 2),
        stage(2 * w, 4 * w, 2),
        stage(4 * w, 8 * w, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Sequential(nn.Dropout(0.5), nn.Linear(8 * w, n_classes)),
    )


def naive_mc(model: nn.Module, x: torch.Tensor, n_samples: int) -> torch.Tensor:
    """T full forward passes with dropout active -> [T, B, C] probabilities."""
    with torch.inference_mode(), mc_dropout_mode(model):
        return torch.stack([model(x).softmax(1) for _ in range(n_samples)])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(fn, pool: torch.Tensor, batch: int, device: torch.device) -> tuple[float, float]:
    """(images per wall-clock second, images per process-CPU second) of fn over the pool.

    CPU time (all threads of this process) is reported too because on a shared machine other
    jobs stretch the wall clock of long runs (the naive method) more than of short ones.
    """
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(pool), batch):
        fn(pool[i : i + batch])
    sync(device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(pool) / wall, len(pool) / max(cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=64,
                        help="channels of the first stage (64 = ResNet-18)")
    parser.add_argument("--pool", type=int, default=512, help="number of 3x32x32 images scored")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--samples", type=int, default=20, help="T, MC passes per image")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repetitions (interleaved), best is kept")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = cifar_resnet18(args.width).to(device)
    pool = torch.randn(args.pool, 3, 32, 32, device=device)  # [N, 3, 32, 32]
    sampler = MCDropoutSampler(model)
    softmax = lambda out: out.softmax(1)  # noqa: E731

    print(f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
          f"cpus={os.cpu_count()} torch_threads={torch.get_num_threads()} | "
          f"torch {torch.__version__}"
          + (f" | {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    print(f"model: CIFAR ResNet-18 width={args.width} | pool={args.pool} batch={args.batch} "
          f"T={args.samples} device={device} | cached prefix: {sampler.uses_cached_prefix}")

    # Same draws as the naive method (same seed, same dropout call order): a sanity check.
    x = pool[: min(8, args.pool)]
    torch.manual_seed(1)
    ref = naive_mc(model, x, 3)
    torch.manual_seed(1)
    got = sampler.sample(x, 3, output_fn=softmax)
    print(f"max |sampler - naive| on 3 samples of 8 images: {(ref - got).abs().max().item():.2e}")

    runs = {
        "naive (T full passes)": lambda b: naive_mc(model, b, args.samples),
        "MCDropoutSampler": lambda b: sampler.sample(b, args.samples, output_fn=softmax),
        "MCDropoutSampler batch_samples": lambda b: sampler.sample(
            b, args.samples, output_fn=softmax, batch_samples=True
        ),
    }
    for fn in runs.values():  # warm-up: allocator, cuDNN / oneDNN algorithm choice
        fn(pool[: args.batch])
    # Interleaved repeats: on a shared machine a burst of load then hits every method alike.
    wall = {name: 0.0 for name in runs}
    cpu = {name: 0.0 for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            w, c = throughput(fn, pool, args.batch, device)
            wall[name], cpu[name] = max(wall[name], w), max(cpu[name], c)
    base = "naive (T full passes)"
    print(f"{'method':32s} {'images/s (wall)':>16s} {'ratio':>8s} "
          f"{'images/CPU-s':>14s} {'ratio':>8s}")
    for name in runs:
        print(f"{name:32s} {wall[name]:16.1f} {wall[name] / wall[base]:7.1f}x "
              f"{cpu[name]:14.1f} {cpu[name] / cpu[base]:7.1f}x")

if __name__ == "__main__":
    main()
