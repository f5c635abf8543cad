"""MC-dropout scoring of DRN-D-22: throughput with and without the cached prefix, peak memory.

    python bench/bench_segmentation_mc.py   # 256x512 throughput, 1024x2048 memory
    python bench/bench_segmentation_mc.py --width 0.25 --height 128 --image-width 256

Throughput: images per second of ``mc_entropy`` scoring at T passes (what the loop runs:
``MCDropoutSampler.passes`` folded into ``MCAccumulator``), with dropout after the residual
stages 3-6 (the original placement: only stages 0-2 are cached, the rest runs T times) and with
dropout only before the classifier (the whole network is cached, only the 1x1 classifier and the
upsampling run T times), next to one plain forward pass.

Memory: peak resident memory above the baseline while scoring one full Cityscapes image
(1024x2048) at T passes, streamed, in a fresh process per placement.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _score(model, images, samples: int):
    import torch

    from active_learning.strategies.mc_dropout import MCDropoutSampler
    from active_learning.strategies.mc_statistics import MCAccumulator
    from active_learning.strategies.uncertainty import mc_entropy

    sampler = MCDropoutSampler(model)
    accumulator = MCAccumulator({"mean"})
    with torch.inference_mode():
        for probs in sampler.passes(images, samples, output_fn=lambda logits: logits.softmax(1)):
            accumulator.update(probs)
        return mc_entropy(accumulator.result(), reduction="none"), sampler.uses_cached_prefix


def throughput(width: float, height: int, image_width: int, batch: int, samples: int,
               repeat: int) -> list[dict]:
    import torch

    from segmentation.model import DRNSegmentation

    rows = []
    images = torch.randn(batch, 3, height, image_width)
    for place in ("stages", "classifier"):
        torch.manual_seed(0)
        model = DRNSegmentation(19, width=width, dropout=0.5, dropout_at=place).eval()
        _score(model, images, 1)  # warm-up (and the fx trace)
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            _, cached = _score(model, images, samples)
            best = min(best, time.perf_counter() - start)
        with torch.inference_mode():
            start = time.perf_counter()
            model(images)
            forward = time.perf_counter() - start
        rows.append({"dropout": place, "cached_prefix": cached, "seconds": best,
                     "images_per_s": batch / best, "forward_s": forward})
    return rows


def peak_memory(place: str, width: float, samples: int) -> dict:
    import torch

    from segmentation.model import DRNSegmentation

    torch.manual_seed(0)
    model = DRNSegmentation(19, width=width, dropout=0.5, dropout_at=place).eval()
    image = torch.randn(1, 3, 1024, 2048)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    scores, _ = _score(model, image, samples)
    seconds = time.perf_counter() - start
    assert scores.shape == (1, 1024, 2048)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    return {"dropout": place, "peak_mb": peak, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=1.0,
                        help="DRN channel multiplier (1 = DRN-D-22)")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--image-width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10, help="MC passes T")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.child_memory:
        print(json.dumps(peak_memory(args.child_memory, args.width, args.samples)))
        return
    print(f"DRN-D-22 width {args.width}, T = {args.samples}, torch {torch.__version__}, "
          f"{args.threads} threads\n")
    print(f"Throughput, batches of {args.batch} images of {args.height}x{args.image_width}:\n")
    print("| dropout | cached prefix | s per batch | images/s | one plain forward, s |")
    print("|---|---|---|---|---|")
    rows = throughput(args.width, args.height, args.image_width, args.batch, args.samples,
                      args.repeat)
    for row in rows:
        print(f"| {row['dropout']} | {row['cached_prefix']} | {row['seconds']:.2f} | "
              f"{row['images_per_s']:.2f} | {row['forward_s']:.2f} |")
    print("\nclassifier-only dropout scores "
          f"{rows[1]['images_per_s'] / rows[0]['images_per_s']:.1f}x faster")
    if args.skip_memory:
        return
    print("\nPeak memory of streaming scoring, one 1024x2048 image:\n")
    print("| dropout | peak MB above baseline | seconds |")
    print("|---|---|---|")
    for place in ("stages", "classifier"):
        output = subprocess.run([sys.executable, __file__, "--width", str(args.width), "--samples",
                                 str(args.samples), "--threads", str(args.threads),
                                 "--child-memory", place],
                                capture_output=True, text=True, check=True)
        row = json.loads(output.stdout.strip().splitlines()[-1])
        print(f"| {row['dropout']} | {row['peak_mb']:.0f} | {row['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
