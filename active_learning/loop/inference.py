"""The loop's data loaders and the model's forward pass, for everything computed from a trained
model's outputs: scoring, embeddings, the labeled features, the loss ranking, the report's map."""
from __future__ import annotations

from collections.abc import Iterable, Sized
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from active_learning.adapter import TaskAdapter
from active_learning.loop.config import LoopConfig
from active_learning.precision import autocast, to_float


def progress(iterable: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    """``iterable`` behind a tqdm bar (when ``enabled``); a bar still has ``len``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=False, dynamic_ncols=True, **kwargs)


def make_loader(adapter: TaskAdapter, dataset: Dataset, batch_size: int, config: LoopConfig, *,
                shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                sampler: Sampler | None = None, samples_per_epoch: int | None = None) -> DataLoader:
    """The loop's data loader; ``sampler`` (a DistributedSampler) replaces ``shuffle``.

    ``samples_per_epoch`` (training for a fixed number of steps): each pass over the loader
    draws exactly this many samples, from consecutive random permutations of ``dataset`` (so
    every sample is drawn equally often, give or take one, whatever the set's size), with the
    loader's own generator (which an in-cycle checkpoint saves).
    """
    generator = torch.Generator().manual_seed(seed)
    if samples_per_epoch is not None:
        sampler = RandomSampler(cast(Sized, dataset), replacement=False,
                                num_samples=samples_per_epoch,
                                generator=generator)
    # On a GPU the batches go to page-locked memory, from which split_batch's non-blocking
    # copies overlap with compute. Workers are not kept between epochs: a new iterator draws
    # their seeds from the generator, which an in-cycle checkpoint saves, so a resumed epoch
    # augments exactly as the uninterrupted one would (persistent workers would not).
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, generator=generator, drop_last=drop_last,
                      num_workers=config.num_workers, collate_fn=adapter.collate_fn,
                      pin_memory=torch.device(config.device).type == "cuda")


def forward(adapter: TaskAdapter, model: nn.Module, inputs: Any, device: torch.device,
            amp: str | None) -> tuple[Any, Any]:
    """``adapter.forward_intermediates`` under autocast (with ``amp``): (outputs, features), both
    returned in fp32 for what is computed from them (probabilities, embeddings, losses)."""
    with autocast(device, amp):
        outputs, features = adapter.forward_intermediates(model, inputs)
    return to_float(outputs), to_float(features)
