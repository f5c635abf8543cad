"""Benchmark: scoring throughput of each full-size reference model, in fp32, bf16 and bf16 with
channels-last, and MC-dropout scoring of DRN-D-22 at Cityscapes' full 1024x2048.

    python bench/bench_gpu_scoring.py                       # CUDA: the figures of BENCHMARKS.md
    python bench/bench_gpu_scoring.py --device cpu --small  # a dry run of every case on the CPU

What a scoring pass costs per batch, without the data loader: the model's forward pass on a
batch of random images at the reference input size, under the loop's own ``autocast`` and
``memory_format`` (``active_learning.precision``), then the score in fp32 (entropy of the
softmax; detection: the detector's boxes after NMS; pose: the heatmap peaks). Reference models
and sizes: CIFAR ResNet-18 (width 64) at 32x32, DRN-D-22 at 1024x2048 (19 classes), SSD300 with
VGG-16 at 300x300 (21 classes), HRNet-W32 at 256x192 (17 joints). Printed per case: images/s
over ``--batches`` timed batches after ``--warmup`` and the peak GPU memory
(``torch.cuda.max_memory_allocated``). ``--small`` shrinks widths and sizes so that every case
runs in seconds on a CPU (to check the script, not to measure).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from active_learning.precision import autocast, memory_format  # noqa: E402
from active_learning.strategies import uncertainty  # noqa: E402

Score = Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]


def _models(small: bool) -> dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, int], int,
                                            Score]]:
    """name -> (build, input (H, W), batch size, score(model, images) -> [B])."""
    from classification.model import build_model as classifier
    from human_pose_estimation.model import build_model as pose
    from object_detection.model import build_model as detector
    from segmentation.model import build_model as drn

    def entropy(model, images):
        return uncertainty.entropy(model(images).float().softmax(1))

    def detections(model, images):
        return torch.stack([found["scores"].float().max() if len(found["scores"])
                            else torch.zeros((), device=images.device)
                            for found in model.postprocess(model(images))])

    def heatmap_peaks(model, images):
        return 1 - model(images).float().flatten(2).amax(dim=2).mean(dim=1)

    return {
        "ResNet-18 (CIFAR)": (lambda: classifier(10, 3, width=8 if small else 64), (32, 32),
                              256, entropy),
        "DRN-D-22": (lambda: drn(19, width=0.125 if small else 1.0, dropout=0.0),
                     (64, 128) if small else (1024, 2048), 2, entropy),
        "SSD300 VGG-16": (lambda: detector(21, width=0.125 if small else 1.0),
                          (300, 300), 32, detections),
        "HRNet-W32": (lambda: pose("hrnet_w18_small" if small else "hrnet_w32"),
                      (64, 64) if small else (256, 192), 64, heatmap_peaks),
    }


def _time(step: Callable[[], object], warmup: int, batches: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@torch.inference_mode()
def _case(build, size, batch: int, score, device: torch.device, amp: str | None,
          channels_last: bool, warmup: int, batches: int) -> tuple[float, float]:
    """(images/s, peak GiB) of one model in one precision and layout."""
    torch.manual_seed(0)
    model = build().to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    images = memory_format(torch.randn(batch, 3, *size, device=device), channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step():
        with autocast(device, amp):
            return score(model, images)

    seconds = _time(step, warmup, batches, device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return batch * batches / seconds, peak


@torch.inference_mode()
def _mc_drn(device: torch.device, small: bool, samples: int, amp: str | None,
            warmup: int, batches: int) -> tuple[float, float]:
    """(images/s, peak GiB) of MC-dropout entropy (streamed mean) of DRN-D-22, one image."""
    from active_learning.strategies.mc_dropout import MCDropoutSampler
    from active_learning.strategies.mc_statistics import MCAccumulator
    from segmentation.model import build_model as drn

    torch.manual_seed(0)
    model = drn(19, width=0.125 if small else 1.0, dropout=0.5).to(device).eval()
    sampler = MCDropoutSampler(model)
    size = (64, 128) if small else (1024, 2048)
    images = torch.randn(1, 3, *size, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step():
        accumulator = MCAccumulator({"mean"})
        for probs in sampler.passes(images, samples,
                                    output_fn=lambda logits: logits.float().softmax(1)):
            accumulator.update(probs)
        return uncertainty.entropy(accumulator.result().mean)

    with autocast(device, amp):
        seconds = _time(step, warmup, batches, device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return batches / seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--mc-samples", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}")
    variants = [("fp32", None, False), ("bf16", "bf16", False),
                ("bf16 + channels-last", "bf16", True)]
    print("| model | input | batch | precision | images/s | peak GiB |")
    print("|---|---|---|---|---|---|")
    for model_name, (build, size, batch, score) in _models(args.small).items():
        batch = min(batch, 4) if args.small else batch
        for label, amp, channels_last in variants:
            rate, peak = _case(build, size, batch, score, device, amp, channels_last,
                               args.warmup, args.batches)
            print(f"| {model_name} | {size[0]}x{size[1]} | {batch} | {label} | {rate:.1f} | "
                  f"{peak:.2f} |", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    for label, amp in (("fp32", None), ("bf16", "bf16")):
        rate, peak = _mc_drn(device, args.small, args.mc_samples, amp, 1, max(args.batches // 2, 1))
        print(f"| DRN-D-22 MC dropout, T={args.mc_samples} | full image | 1 | {label} | "
              f"{rate:.2f} | {peak:.2f} |", flush=True)


if __name__ == "__main__":
    main()
