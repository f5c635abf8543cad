"""Top-down HRNet on this machine: scoring throughput (person crops/s) per strategy, and the
loss module's training overhead.

Scoring: person crops/s through what the loop runs for a batch of candidates
(``scoring.score_candidates``' per-batch work): one forward + 1 - the mean heatmap peak
(``heatmap_uncertainty``), the loss module's prediction on the five taps (``loss_prediction``),
T MC-dropout passes of the final 1 x 1 convolution with streamed variance (``mc_variance``; the
backbone runs once), the pooled branches (``coreset`` embedding).

Overhead: seconds per training step (random crops and Gaussian targets) of the heatmap loss
alone and of heatmap loss + lambda x ranking loss, alternating one of each so that load from
other processes hits both alike.

    python bench/bench_pose.py --arch hrnet_w32 --image-size 192,256 --batch 8 --threads 2
    python bench/bench_pose.py --arch hrnet_w18_small --image-size 96,128 --batch 32 --threads 1
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # task_timing, next to this file

import torch  # noqa: E402

from active_learning.strategies import get_strategy  # noqa: E402
from active_learning.strategies.loss_prediction import LossPredictionModule  # noqa: E402
from active_learning.strategies.mc_dropout import MCDropoutSampler  # noqa: E402
from active_learning.strategies.mc_statistics import MCAccumulator  # noqa: E402
from human_pose_estimation.coco import PoseData  # noqa: E402
from human_pose_estimation.task import PoseTask  # noqa: E402
from task_timing import print_throughput, training_overhead  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="hrnet_w32")
    parser.add_argument("--image-size", default="192,256", help="W,H")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mc-samples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=4)
    parser.add_argument("--lamda", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    width, height = (int(v) for v in args.image_size.split(","))
    empty = PoseData([], [])
    task = PoseTask(empty, empty, arch=args.arch, input_size=(width, height), dropout=0.1,
                    progress=False)
    model = task.build_model().eval()
    module = LossPredictionModule([info["channels"] for info in task.feature_info]).eval()
    images = torch.randn(args.batch, 3, height, width)
    print(f"{args.arch} at {height}x{width}, batch {args.batch}, {torch.get_num_threads()} "
          f"thread(s), torch {torch.__version__}, {platform.processor() or platform.machine()}")

    uncertainty = get_strategy("heatmap_uncertainty")
    mc_variance = get_strategy("mc_variance")
    sampler = MCDropoutSampler(task.mc_dropout_model(model))

    @torch.inference_mode()
    def score_uncertainty():
        outputs, _ = task.forward_intermediates(model, images)
        uncertainty.score_batch({"probs": task.probabilities(outputs)})

    @torch.inference_mode()
    def score_loss():
        _, features = task.forward_intermediates(model, images)
        module(features)

    @torch.inference_mode()
    def score_mc():
        accumulator = MCAccumulator(mc_variance.mc_statistics)
        for probs in sampler.passes(images, args.mc_samples, output_fn=task.probabilities):
            accumulator.update(probs)
        mc_variance.score_batch({"mc_probs": accumulator.result()})

    @torch.inference_mode()
    def embed():
        outputs, features = task.forward_intermediates(model, images)
        task.embedding(outputs, features)

    print_throughput([("heatmap_uncertainty", score_uncertainty), ("loss_prediction", score_loss),
                      (f"mc_variance (T={args.mc_samples})", score_mc),
                      ("coreset embedding", embed)],
                     args.batch, args.repeats, "person crops")

    targets = torch.rand(args.batch, 17, height // 4, width // 4)
    weight = (torch.rand(args.batch, 17) > 0.3).float()
    batch_targets = {"heatmaps": targets, "weight": weight}
    a, b = training_overhead(task, model, module, images, batch_targets,
                             lambda parameters: torch.optim.Adam(parameters, lr=1e-4),
                             lamda=args.lamda, steps=args.train_steps)
    print(f"\ntraining step: heatmap loss {a:.3f} s ({args.batch / a:.1f} crops/s), + loss module "
          f"{b:.3f} s (median of {args.train_steps}): overhead {100 * (b - a) / a:+.1f}%")


if __name__ == "__main__":
    main()
