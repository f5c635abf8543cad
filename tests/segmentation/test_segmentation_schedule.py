"""The quiet protocol's learning-rate schedule: a linear warm-up, then a cosine (issue 32)."""
from __future__ import annotations

import math

import pytest
import torch

from segmentation.task import cosine_factor


def test_cosine_factor_against_hand_values():
    # 5 epochs, 1 of warm-up: 1/2, then (1 + cos(pi * t)) / 2 at t = 0, 1/4, 1/2, 3/4
    factors = [cosine_factor(epoch, 5, 1) for epoch in range(5)]
    expected = [0.5, 1.0, (1 + math.sqrt(0.5)) / 2, 0.5, (1 - math.sqrt(0.5)) / 2]
    assert factors == pytest.approx(expected)
    assert [cosine_factor(epoch, 2, 0) for epoch in range(2)] == pytest.approx([1.0, 0.5])


def test_the_task_steps_the_cosine_per_epoch():
    from segmentation.task import SegmentationTask

    task = SegmentationTask.__new__(SegmentationTask)   # only the optimiser's settings
    task.lr, task.momentum, task.weight_decay = 0.1, 0.9, 0.0
    task.lr_mode, task.step, task.warmup_epochs = "cosine", 100, 2
    optimizer, scheduler = task.build_optimizer([torch.nn.Parameter(torch.zeros(1))], 6)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # warm-up 1/3, 2/3, then cos over the 4 last epochs: 1, (1 + cos(pi/4))/2, 1/2, (1 - ..)/2
    assert rates == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.1 * (1 + math.sqrt(0.5)) / 2, 0.05,
                                   0.1 * (1 - math.sqrt(0.5)) / 2])
