"""Training-time overhead of loss prediction (Learning Loss for Active Learning).

ResNet-18, CIFAR variant (3x3 stride-1 conv1, no max-pool), 3x32x32 inputs, batch 128, SGD.
Times training iterations of
  (a) the bare model with cross-entropy, and
  (b) the model wrapped in ActiveLearning(feature_layers=layer1..4) with
      cross_entropy(reduction="none") + LossPredictionLoss,
alternating one (a) step and one (b) step so that load from other processes hits both alike.
Prints seconds per iteration (median and mean), seconds per CIFAR-10 epoch (391 iterations)
and the overhead in percent (goal: <= 10%).

    python bench/bench_loss_prediction_overhead.py --iters 10 --warmup 2
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from active_learning.strategies.loss_prediction import ActiveLearning, LossPredictionLoss  # noqa: E402

ITERS_PER_EPOCH = 391  # ceil(50_000 / 128)


def cifar_resnet18() -> nn.Module:
    """torchvision ResNet-18 adapted to 32x32 inputs, as in the paper's CIFAR-10 experiments."""
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=10)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def make_bare_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   lr: float) -> Callable[[], None]:
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    return step


def make_lloss_step(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, lamda: float
) -> Callable[[], None]:
    wrapped = ActiveLearning(net,
                             feature_layers=["layer1", "layer2", "layer3", "layer4"]).to(x.device)
    ranking = LossPredictionLoss(margin=1.0)
    # The paper trains the module with the same SGD settings as the backbone.
    opt = torch.optim.SGD(wrapped.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        outputs, loss_pred = wrapped(x)  # [B, 10], [B]
        per_sample = F.cross_entropy(outputs, y, reduction="none")  # [B]
        loss = per_sample.mean() + lamda * ranking(loss_pred, per_sample)
        loss.backward()
        opt.step()

    return step


def timed(step: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """Run one step -> (wall seconds, process CPU seconds over all threads)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, time.process_time() - start_cpu


def count_flops(step: Callable[[], None]) -> int:
    """FLOPs of one training step (forward + backward) as counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def report(label: str, times: dict[str, list[float]]) -> None:
    print(f"[{label}] {'variant':<16} {'median s/it':>12} {'mean s/it':>10} {'min s/it':>9} "
          f"{'s/epoch (391 it)':>17}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"[{label}] {name:<16} {med:12.4f} {statistics.fmean(t):10.4f} {min(t):9.4f} "
              f"{med * ITERS_PER_EPOCH:17.1f}")
    bare, lloss = times["bare"], times["loss prediction"]
    overhead_median = 100.0 * (statistics.median(lloss) / statistics.median(bare) - 1.0)
    overhead_min = 100.0 * (min(lloss) / min(bare) - 1.0)
    # Paired ratios: each (b) step against the (a) step timed next to it.
    paired = statistics.median(100.0 * (b / a - 1.0) for a, b in zip(bare, lloss, strict=True))
    verdict = "meets" if overhead_median <= 10.0 else "MISSES"
    print(f"[{label}] overhead: {overhead_median:+.1f}% (medians), {overhead_min:+.1f}% (minima), "
          f"{paired:+.1f}% (median of paired ratios) -> {verdict} the <= 10% goal")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=10, help="timed iterations per variant")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations per variant first")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--lamda", type=float, default=1.0, help="weight of the loss prediction loss")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 2:
        raise SystemExit("--iters must be >= 1, --warmup >= 0 and --batch-size >= 2")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)

    print(f"platform: {platform.platform()}  python {platform.python_version()}")
    print(f"cpu count: {os.cpu_count()}  torch threads: {torch.get_num_threads()}  "
          f"torch {torch.__version__}")
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}")
    else:
        print(f"device: cpu ({platform.processor() or platform.machine()})")
    print(f"ResNet-18 (CIFAR variant), batch {args.batch_size}x3x32x32, SGD, "
          f"{args.warmup} warm-up + {args.iters} timed iterations per variant, interleaved")

    x = torch.randn(args.batch_size, 3, 32, 32, device=device)  # [B, 3, 32, 32]
    y = torch.randint(0, 10, (args.batch_size,), device=device)  # [B]
    net = cifar_resnet18().to(device).train()
    steps = {
        "bare": make_bare_step(net, x, y, args.lr),
        "loss prediction": make_lloss_step(copy.deepcopy(net), x, y, args.lr, args.lamda),
    }
    # FLOPs scale linearly with the batch, so a 2-sample copy gives the same ratio cheaply.
    x2, y2 = x[:2], y[:2]
    flops = {
        "bare": count_flops(make_bare_step(copy.deepcopy(net), x2, y2, args.lr)),
        "loss prediction": count_flops(make_lloss_step(copy.deepcopy(net), x2, y2, args.lr,
                                                       args.lamda)),
    }
    print(f"FLOPs per training step: bare {flops['bare'] / 2e9 * args.batch_size:.1f} G, with loss "
          f"prediction {flops['loss prediction'] / 2e9 * args.batch_size:.1f} G -> "
          f"{100.0 * (flops['loss prediction'] / flops['bare'] - 1.0):+.3f}% (conv/matmul only, "
          "machine-independent)")
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(args.iters):
        # Alternate which variant goes first so neither always follows the other.
        order = list(steps) if i % 2 == 0 else list(reversed(steps))
        for name in order:
            w, c = timed(steps[name], device)
            wall[name].append(w)
            cpu[name].append(c)
    report("wall", wall)
    if device.type == "cpu":  # CPU time is less sensitive to other processes on a shared machine
        report("cpu ", cpu)

if __name__ == "__main__":
    main()
