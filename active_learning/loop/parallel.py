"""DistributedDataParallel around the model and a strategy's training companion (the loss
module), for training under torchrun.

DDP synchronises gradients only for what runs through its own ``forward``; a task reads its
model's intermediate maps through ``adapter.forward_intermediates(model, inputs)``, which may
call any method of the model (or read forward hooks). So the call DDP wraps is that one:
:class:`ForwardIntermediates` is a module whose ``forward(inputs)`` is the adapter's call, and the
training step calls the wrapped module instead of the adapter.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from active_learning.strategies.options import TrainingCompanion

__all__ = ["ForwardIntermediates", "data_parallel"]


class ForwardIntermediates(nn.Module):
    """``forward(inputs) = adapter.forward_intermediates(model, inputs)``: (outputs, features)."""

    def __init__(self, adapter: Any, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._adapter = adapter     # not a module: its attributes stay out of the state dict

    def forward(self, inputs: Any) -> tuple[Any, list[torch.Tensor]]:
        return self._adapter.forward_intermediates(self.model, inputs)


def data_parallel(adapter: Any, model: nn.Module, companion: TrainingCompanion | None,
                  device: torch.device) -> tuple[nn.Module, TrainingCompanion | None]:
    """(the model's forward wrapped in DDP, the companion computing through its module wrapped
    in DDP, or None).

    Both run with ``find_unused_parameters``: a model may hold layers that the task's loss does
    not reach (HRNet's lower-resolution branches feed only the maps the loss module reads), and
    a batch too small to rank leaves the loss module out of the loss; without the flag DDP
    would wait for their gradients forever. It costs one traversal of the graph per step.
    """
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    forward = DistributedDataParallel(ForwardIntermediates(adapter, model), device_ids=device_ids,
                                      find_unused_parameters=True)
    wrapped = None if companion is None else companion.wrapped(DistributedDataParallel(
        companion.module, device_ids=device_ids, find_unused_parameters=True))
    return forward, wrapped
