"""Timing helpers shared by the per-task benchmarks (bench_detection.py, bench_pose.py)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from active_learning.strategies.loss_prediction import LossPredictionLoss


def timed(function: Callable[[], Any], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def print_throughput(functions: Sequence[tuple[str, Callable[[], Any]]], batch: int, repeats: int,
                     unit: str) -> None:
    """A markdown table of seconds per batch (median, after one warm-up call) and ``unit``/s."""
    print(f"\n| strategy | s per batch (median) | {unit}/s |\n|---|---|---|")
    for name, function in functions:
        function()  # warm-up (and the MC trace)
        seconds = statistics.median(timed(function, repeats))
        print(f"| {name} | {seconds:.3f} | {batch / seconds:.1f} |")


def training_overhead(task: Any, model: torch.nn.Module, module: torch.nn.Module, inputs: Any,
                      targets: Any, make_optimizer: Callable[[list], torch.optim.Optimizer], *,
                      lamda: float = 1.0, steps: int = 4) -> tuple[float, float]:
    """Median seconds of a training step on ``task.batch_loss`` alone and with ``lamda`` x the
    ranking loss of ``module``, alternating one of each so that outside load hits both alike."""
    model.train()
    module.train()
    ranking = LossPredictionLoss()
    plain_optimizer = make_optimizer(list(model.parameters()))
    both_optimizer = make_optimizer([*model.parameters(), *module.parameters()])

    def plain_step():
        outputs, _ = task.forward_intermediates(model, inputs)
        loss, _ = task.batch_loss(outputs, targets)
        plain_optimizer.zero_grad()
        loss.backward()
        plain_optimizer.step()

    def module_step():
        outputs, features = task.forward_intermediates(model, inputs)
        loss, losses = task.batch_loss(outputs, targets)
        loss = loss + lamda * ranking(module(features), losses)
        both_optimizer.zero_grad()
        loss.backward()
        both_optimizer.step()

    plain_step(), module_step()
    plain, with_module = [], []
    for _ in range(steps):
        plain += timed(plain_step, 1)
        with_module += timed(module_step, 1)
    return statistics.median(plain), statistics.median(with_module)
