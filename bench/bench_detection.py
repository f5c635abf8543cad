"""SSD300 on this machine: scoring throughput per strategy and the loss module's training overhead.

Scoring: images/s at 300x300 through what the loop runs for a batch of candidates
(``scoring.score_candidates``' per-batch work): one forward, the detections (score > 0.01, the
200 best per class, NMS 0.45), the entropy of each and its max per image (``entropy``, the
default ``--uncertainty-boxes detections``) or the entropy of every default box reduced by max
(``entropy (anchors)``); the loss module's prediction (``loss_prediction``); T MC-dropout
passes of the head with streamed statistics (``mc_entropy``; the backbone and the detections
run once, over the detections or every default box); the pooled fc7 embedding (``coreset``).
The model has random weights: an untrained detector has about a thousand detections above 0.01
per image, so the detection rows are a worst case for the NMS's share.

Overhead: seconds per training step (batch of random images with 1-6 random boxes each) of the
SSD loss alone and of SSD loss + lambda x ranking loss with the loss module on the six taps,
alternating one of each so that load from other processes hits both alike.

    python bench/bench_detection.py --width 1.0 --batch 8 --threads 2
    python bench/bench_detection.py --width 0.0625 --batch-norm --channels-last --batch 16 \\
        --threads 1
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # task_timing, next to this file

import numpy as np  # noqa: E402
import torch  # noqa: E402

from active_learning.loop.units import ScoredBatch  # noqa: E402
from active_learning.strategies import get_strategy  # noqa: E402
from active_learning.strategies.loss_prediction import LossPredictionModule  # noqa: E402
from active_learning.strategies.mc_dropout import MCDropoutSampler  # noqa: E402
from active_learning.strategies.mc_statistics import MCAccumulator  # noqa: E402
from object_detection.task import DetectionTask  # noqa: E402
from task_timing import print_throughput, training_overhead  # noqa: E402


def random_targets(batch: int, generator: torch.Generator) -> list[dict]:
    targets = []
    for _ in range(batch):
        count = int(torch.randint(1, 7, (1,), generator=generator))
        corner = torch.rand(count, 2, generator=generator) * 220
        size = 20 + torch.rand(count, 2, generator=generator) * 80
        targets.append({"boxes": torch.cat([corner, corner + size], 1),
                        "labels": torch.randint(1, 21, (count,), generator=generator)})
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--batch-norm", action="store_true")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mc-samples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    options = dict(class_names=[str(k) for k in range(20)], width=args.width, dropout=0.1,
                   batch_norm=args.batch_norm, channels_last=args.channels_last)
    task = DetectionTask([], [], **options)
    anchors_task = DetectionTask([], [], scored_boxes="anchors", **options)
    model = task.build_model().eval()
    module = LossPredictionModule([info["channels"] for info in task.feature_info]).eval()
    images = torch.rand(args.batch, 3, 300, 300)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    print(f"SSD300 width {args.width}{' BN' if args.batch_norm else ''}"
          f"{' channels_last' if args.channels_last else ''}, batch {args.batch}, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")

    entropy = get_strategy("entropy")
    mc_entropy = get_strategy("mc_entropy")
    indices = np.arange(args.batch)

    @torch.inference_mode()
    def score_entropy():
        outputs, _ = task.forward_intermediates(model, images)
        probs, counts = task.probabilities_and_slots(outputs)
        scores = entropy.score_batch({"probs": probs}, reduction="none")
        task.selection_units().pool_scores([ScoredBatch(indices, scores.numpy(), counts.numpy())],
                                           "max")

    @torch.inference_mode()
    def score_entropy_anchors():
        outputs, _ = anchors_task.forward_intermediates(model, images)
        entropy.score_batch({"probs": anchors_task.probabilities(outputs)}, reduction="max")

    @torch.inference_mode()
    def score_loss():
        _, features = task.forward_intermediates(model, images)
        module(features)

    def score_mc(kind):
        sampler = MCDropoutSampler(kind.mc_dropout_model(model))

        @torch.inference_mode()
        def score():
            accumulator = MCAccumulator(mc_entropy.mc_statistics)
            counts = []   # each pass's detection counts (the same boxes in every pass)

            def output_fn(outputs):
                probs, slots = kind.probabilities_and_slots(outputs)
                counts.append(slots)
                return probs

            for probs in sampler.passes(images, args.mc_samples, output_fn=output_fn):
                accumulator.update(probs)
            if kind is task:
                scores = mc_entropy.score_batch({"mc_probs": accumulator.result()},
                                                reduction="none")
                task.selection_units().pool_scores(
                    [ScoredBatch(indices, scores.numpy(), counts[-1].numpy())], "max")
            else:
                mc_entropy.score_batch({"mc_probs": accumulator.result()}, reduction="max")
        return score

    @torch.inference_mode()
    def embed():
        outputs, features = task.forward_intermediates(model, images)
        task.embedding(outputs, features)

    print_throughput([("entropy", score_entropy), ("entropy (anchors)", score_entropy_anchors),
                      ("loss_prediction", score_loss),
                      (f"mc_entropy (T={args.mc_samples})", score_mc(task)),
                      (f"mc_entropy (T={args.mc_samples}, anchors)", score_mc(anchors_task)),
                      ("coreset embedding", embed)],
                     args.batch, args.repeats, "images")

    generator = torch.Generator().manual_seed(0)
    targets = random_targets(args.batch, generator)
    a, b = training_overhead(task, model, module, images, targets,
                             lambda parameters: torch.optim.SGD(parameters, lr=1e-4, momentum=0.9),
                             steps=args.train_steps)
    print(f"\ntraining step: SSD loss {a:.3f} s, + loss module {b:.3f} s (median of "
          f"{args.train_steps}): overhead {100 * (b - a) / a:+.1f}%")


if __name__ == "__main__":
    main()
