"""Peak memory and time of streaming vs batch MC-dropout scoring on dense segmentation maps.

    python bench/bench_mc_streaming.py                       # [B=2, C=19, 512x1024], T = 10 and 20
    python bench/bench_mc_streaming.py --height 256 --width 512 --samples 10

Each measurement runs in a fresh process (peak resident memory is a per-process high-water mark).
The passes come from a small dropout head on a stride-8 feature map, upsampled to full size and
soft-maxed, as a DRN segmenter's would: ``batch`` stacks the T passes into [T, B, C, H, W] and
applies the formulas of ``uncertainty``; ``streaming`` folds each pass into the running
statistics of ``mc_statistics`` (what the loop does). Printed: seconds and the peak memory above
the process's baseline after building the model and input.
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

STRATEGIES = ("mc_entropy", "bald", "mc_variance", "variation_ratio")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(mode: str, strategy: str, samples: int, batch: int, classes: int, height: int,
            width: int) -> dict:
    import torch
    from torch import nn

    from active_learning.strategies import get_strategy
    from active_learning.strategies.mc_dropout import MCDropoutSampler
    from active_learning.strategies.mc_statistics import MCAccumulator

    torch.manual_seed(0)
    head = nn.Sequential(nn.Dropout2d(0.5), nn.Conv2d(64, classes, 1),
                         nn.Upsample(scale_factor=8, mode="bilinear", align_corners=False)).eval()
    features = torch.randn(batch, 64, height // 8, width // 8)             # [B, 64, H/8, W/8]
    sampler = MCDropoutSampler(head)
    softmax = lambda logits: logits.softmax(dim=1)                         # noqa: E731
    chosen = get_strategy(strategy)
    baseline = _rss_mb()
    start = time.perf_counter()
    with torch.inference_mode():
        if mode == "batch":
            mc_probs = sampler.sample(features, samples, output_fn=softmax)     # [T, B, C, H, W]
            scores = chosen.score_batch({"mc_probs": mc_probs}, reduction="none")
        else:
            accumulator = MCAccumulator(chosen.mc_statistics)
            for probs in sampler.passes(features, samples, output_fn=softmax):  # [B, C, H, W]
                accumulator.update(probs)
            scores = chosen.score_batch({"mc_probs": accumulator.result()}, reduction="none")
    seconds = time.perf_counter() - start
    assert scores.shape == (batch, height, width)
    return {"mode": mode, "strategy": strategy, "T": samples, "seconds": seconds,
            "peak_mb": _rss_mb() - baseline}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--samples", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "STRATEGY", "T"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        mode, strategy, samples = args.child
        print(json.dumps(measure(mode, strategy, int(samples), args.batch, args.classes,
                                 args.height, args.width)))
        return
    one_pass_mb = args.batch * args.classes * args.height * args.width * 4 / 2**20
    print(f"maps [B={args.batch}, C={args.classes}, {args.height}x{args.width}]: one pass of "
          f"probabilities = {one_pass_mb:.0f} MB (float32); torch {torch.__version__}, "
          f"{args.threads} threads\n")
    print("| strategy | T | batch: s | batch: peak MB | streaming: s | streaming: peak MB |")
    print("|---|---|---|---|---|---|")
    common = ["--batch", str(args.batch), "--classes", str(args.classes), "--height",
              str(args.height), "--width", str(args.width), "--threads", str(args.threads)]
    for strategy in args.strategies:
        for samples in args.samples:
            cells = []
            for mode in ("batch", "streaming"):
                output = subprocess.run([sys.executable, __file__, *common, "--child", mode,
                                         strategy, str(samples)],
                                        capture_output=True, text=True, check=True)
                result = json.loads(output.stdout.strip().splitlines()[-1])
                cells += [f"{result['seconds']:.2f}", f"{result['peak_mb']:.0f}"]
            print(f"| {strategy} | {samples} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
