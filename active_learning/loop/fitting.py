"""Strategies fitted on the labeled units before they score (``Strategy.fit_labeled``: hidden
uncertainty's class densities, active transfer learning's error head): the labeled units' hidden
features with their true and predicted classes, computed by every process, fitted by rank 0."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from active_learning.adapter import TaskAdapter
from active_learning.distributed import (
    broadcast_object,
    gather_objects,
    rank,
    shard_range,
    world_size,
)
from active_learning.loop.config import LoopConfig
from active_learning.loop.holdout import held_out_split, held_out_units
from active_learning.loop.inference import forward, make_loader, progress
from active_learning.loop.units import SelectionUnits
from active_learning.precision import full_precision, memory_format
from active_learning.strategies import Strategy
from active_learning.strategies.labeled import (
    ROWS_PER_CLASS,
    ClassSample,
    LabeledFeatures,
    hidden_rows,
)


def fit_on_labeled(adapter: TaskAdapter, model: nn.Module, strategy: Strategy,
                   units: SelectionUnits, labeled: np.ndarray, config: LoopConfig,
                   device: torch.device, seed: int) -> Strategy:
    """``strategy`` fitted on the labeled units' hidden features and classes (on the share the
    adapter holds out of training, for a strategy with a ``held_out_fraction``): rank 0 fits,
    every process gets the fitted state."""
    if strategy.held_out_fraction:
        split = held_out_split(adapter)
        if split is None:   # check_strategy_fits refuses this before any training
            raise RuntimeError(f"strategy {strategy.name!r} runs on an adapter that holds "
                               "nothing out")
        labeled = held_out_units(labeled, split[1], split[0])
    rows = labeled_features(adapter, model, units.samples_of(labeled), config, device, seed)
    assert strategy.fit_labeled is not None
    state = strategy.fit_labeled(rows, seed) if rows is not None else None
    return strategy.with_state(broadcast_object(state))


def labeled_features(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray,
                     config: LoopConfig, device: torch.device, seed: int,
                     per_class: int = ROWS_PER_CLASS) -> LabeledFeatures | None:
    """The hidden features of ``pool_set[samples]`` with their true and predicted classes: a
    uniform sample of at most ``per_class`` rows of each class (``strategies/labeled.py``).

    Under ``torch.distributed`` each process reads its shard of ``samples`` and rank 0 merges
    the samples (the other ranks get None)."""
    start, stop = shard_range(len(samples), rank(), world_size())
    local = _labeled_sample(adapter, model, samples[start:stop], config, device,
                            np.random.SeedSequence([seed, rank()]), per_class)
    parts = gather_objects(local, dst=0)
    if parts is None:
        return None
    parts = [part for part in parts if part is not None]
    if not parts:
        return LabeledFeatures(np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64),
                               np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return parts[0].merge(parts[1:]).result()


@torch.inference_mode()
def _labeled_sample(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray,
                    config: LoopConfig, device: torch.device, seed: np.random.SeedSequence,
                    per_class: int) -> ClassSample | None:
    """This process's :class:`ClassSample` of ``pool_set[samples]``; None without samples."""
    model.eval()
    loader = make_loader(adapter, Subset(adapter.pool_set, samples),  # type: ignore[arg-type]
                         config.eval_batch_size, config)
    sample = None
    for batch in progress(loader, config.progress, desc="labeled features"):
        inputs, targets = adapter.split_batch(batch, device)
        inputs = memory_format(inputs, config.channels_last)
        outputs, features = forward(adapter, model, inputs, device, config.amp)
        with full_precision(device):
            probs = adapter.probabilities(outputs)                            # [B, C, *dense]
        hidden = adapter.hidden_features(outputs, features)                  # [B, D, *dense]
        rows, labels, predicted = hidden_rows(hidden, targets, probs)
        if sample is None:
            sample = ClassSample(probs.shape[1], per_class, seed)
        sample.add(rows.cpu().numpy(), labels.cpu().numpy(), predicted.cpu().numpy())
    return sample
