"""How well the loss prediction module ranks the test set's true losses, beside the model's own
entropy (the free loss predictor it has to beat); ``strategies/loss_prediction.py`` turns the
columns into the ``metrics.csv`` diagnostics."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from active_learning.adapter import TaskAdapter
from active_learning.loop.inference import forward
from active_learning.precision import memory_format
from active_learning.strategies import DISTRIBUTIONS
from active_learning.strategies.uncertainty import entropy


@torch.inference_mode()
def predicted_and_true_losses(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module,
                              loader: Iterable, device: torch.device,
                              reduction: str = "mean", amp: str | None = None,
                              channels_last: bool = False
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The loss module's prediction, the true per-sample loss and the model's own entropy.

    Returns ``predicted [N]``, ``true [N]`` and ``entropy [N]`` of every test sample. The entropy
    of the predicted distribution (reduced over dense outputs with ``reduction``) is the free loss
    predictor the module has to beat: a module that ranks the true losses no better than the
    model's own uncertainty adds nothing to it. ``None`` when the adapter's outputs are not
    class distributions (pose heatmaps).
    """
    model.eval()
    loss_module.eval()
    with_entropy = adapter.output_kind in DISTRIBUTIONS
    predicted, true, entropies = [], [], []
    for batch in loader:
        inputs, targets = adapter.split_batch(batch, device)
        outputs, features = forward(adapter, model, memory_format(inputs, channels_last), device,
                                    amp)
        predicted.append(loss_module(features).float().cpu().reshape(-1))       # [B]
        true.append(adapter.batch_loss(outputs, targets)[1].float().cpu().reshape(-1))   # [B]
        if with_entropy:
            probs = adapter.probabilities(outputs)                                # [B, C, *dense]
            entropies.append(entropy(probs, reduction=reduction).float().cpu().reshape(-1))

    def joined(values: list[torch.Tensor]) -> np.ndarray:   # a process's slice may be empty
        return torch.cat(values).numpy() if values else np.zeros(0, dtype=np.float32)

    return joined(predicted), joined(true), joined(entropies) if with_entropy else None
