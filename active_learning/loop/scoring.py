"""The scoring pass: one batched pass over candidate samples computing what a strategy needs.

:class:`ScoringPass` runs the model over ``pool_set[samples]`` in order, ``eval_batch_size`` at
a time, and yields one :class:`ScoringBatch` per batch: the sample indices, the strategy's inputs
(probabilities, MC samples, embeddings, ...) and what the units need to pool the batch's scores,
computed with them (``slot_counts``: the filled slots of each image, for an adapter whose
probabilities have a varying number of slots per image, :class:`SlottedProbabilities`). Nothing
a unit needs is left on the adapter: a batch's scores can be pooled whenever, in any order.

Scores are computed at the level the adapter works at (per sample, or per pixel for region
units) and pooled to units (``SelectionUnits.pool_scores``). MC-dropout strategies that declare
their ``mc_statistics`` are streamed: each batch folds its T passes into running sums, so peak
memory does not grow with T.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from active_learning.adapter import TaskAdapter
from active_learning.distributed import (
    gather_objects,
    is_distributed,
    rank,
    shard_range,
    world_size,
)
from active_learning.loop.config import LoopConfig
from active_learning.loop.inference import forward, make_loader, progress
from active_learning.loop.score_store import ScoreStore
from active_learning.loop.units import ScoredBatch, SelectionUnits
from active_learning.precision import autocast, full_precision, memory_format, to_float
from active_learning.strategies import (
    EMBEDDING,
    GRAD_EMBEDDING,
    HIDDEN,
    LOSS_PRED,
    MC_PROBS,
    PROBS,
    Strategy,
)
from active_learning.strategies.mc_statistics import MCAccumulator


class SlottedProbabilities:
    """An adapter whose probabilities hold a varying number of filled slots per image.

    Detection's ``probabilities`` are ``[B, C, D]``: D slots per image, the first ``K_i`` of
    image ``i`` its detections, the rest one-hot background. The units pool an image's slot
    scores over its ``K_i`` detections, so the scoring pass asks for the probabilities and the
    counts at once (:meth:`probabilities_and_slots`) and the counts travel with their batch.
    """

    def probabilities_and_slots(self, outputs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(``probabilities(outputs)`` [B, C, D], the filled slots of each image int [B], or
        None when every slot is filled)."""
        raise NotImplementedError


def probabilities_and_slots(adapter: TaskAdapter, outputs: Any
                            ) -> tuple[torch.Tensor, np.ndarray | None]:
    """``adapter.probabilities(outputs)`` [B, C, *dense] and, for a
    :class:`SlottedProbabilities` adapter, its filled slots per image (int64 [B], else None)."""
    if not isinstance(adapter, SlottedProbabilities):
        return adapter.probabilities(outputs), None
    probs, counts = adapter.probabilities_and_slots(outputs)
    return probs, None if counts is None else counts.cpu().numpy().astype(np.int64)


@dataclass
class ScoringBatch:
    """One batch of a scoring pass.

    Attributes:
        samples: int64 [B] the batch's sample indices into ``pool_set``.
        inputs: what the strategy needs of them: ``probs [B, C, *dense]``, ``mc_probs``
            (``[T, B, C, *dense]`` or streamed ``MCStatistics``), ``loss_pred [B]``,
            ``embedding [B, D]``, ``hidden [B, D, *dense]``.
        slot_counts: int64 [B] the filled slots of each sample's probabilities
            (:class:`SlottedProbabilities`), or None.
    """

    samples: np.ndarray
    inputs: dict[str, Any] = field(default_factory=dict)
    slot_counts: np.ndarray | None = None


class ScoringPass:
    """A pass of ``model`` (and ``loss_module``) over candidate samples computing what
    ``strategy`` needs, batch by batch (:meth:`batches`), scored (:meth:`scored`) or gathered
    whole for a set strategy (:meth:`gathered`).

    Puts the model (and the loss module) in eval mode; MC strategies get an MC-dropout sampler
    of the adapter's ``mc_dropout_model``.
    """

    def __init__(self, adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                 strategy: Strategy, config: LoopConfig, device: torch.device, *,
                 description: str = "scoring") -> None:
        self.adapter, self.model, self.loss_module = adapter, model, loss_module
        self.strategy, self.config, self.device = strategy, config, device
        self.description = description
        self.needs = set(strategy.needs)
        if LOSS_PRED in self.needs and loss_module is None:
            raise ValueError(f"strategy {strategy.name!r} scores with the loss prediction "
                             "module: pass loss_module")
        model.eval()
        if loss_module is not None:
            loss_module.eval()
        self.sampler = None
        if MC_PROBS in self.needs:
            from active_learning.strategies.mc_dropout import MCDropoutSampler

            self.sampler = MCDropoutSampler(adapter.mc_dropout_model(model))

    def batches(self, samples: np.ndarray, start: int = 0) -> Iterator[ScoringBatch]:
        """One :class:`ScoringBatch` per batch of ``pool_set[samples[start:]]``, in order."""
        config, needs = self.config, self.needs
        # The indices stay one int64 array (a list of 10 M Python ints would take ~400 MB).
        loader = make_loader(self.adapter,
                             Subset(self.adapter.pool_set, samples[start:]),  # type: ignore[arg-type]
                             config.eval_batch_size, config)
        for batch in progress(loader, config.progress, desc=self.description,
                              initial=start // config.eval_batch_size,
                              total=-(-len(samples) // config.eval_batch_size)):
            inputs, _ = self.adapter.split_batch(batch, self.device)
            inputs = memory_format(inputs, config.channels_last)
            # The loader reads the candidates in order, eval_batch_size at a time.
            size = min(config.eval_batch_size, len(samples) - start)
            scoring = ScoringBatch(samples[start:start + size])
            if self.sampler is not None:
                scoring.inputs[MC_PROBS] = self._mc_inputs(inputs, scoring)
            if needs - {MC_PROBS}:
                outputs, features = forward(self.adapter, self.model, inputs, self.device,
                                            config.amp)
                if PROBS in needs or GRAD_EMBEDDING in needs:                # [B, C, *dense]
                    scoring.inputs[PROBS], scoring.slot_counts = probabilities_and_slots(
                        self.adapter, outputs)
                if LOSS_PRED in needs and self.loss_module is not None:
                    scoring.inputs[LOSS_PRED] = self.loss_module(features)              # [B]
                if EMBEDDING in needs or GRAD_EMBEDDING in needs:                       # [B, D]
                    scoring.inputs[EMBEDDING] = self.adapter.embedding(outputs, features).float()
                if HIDDEN in needs:     # [B, D] or [B, D, h, w]
                    scoring.inputs[HIDDEN] = self.adapter.hidden_features(outputs,
                                                                          features).float()
                del outputs, features   # not held while the next batch is computed
            yield scoring
            del inputs, scoring
            start += size

    def _mc_inputs(self, inputs: Any, scoring: ScoringBatch) -> Any:
        """MCStatistics of the batch (streamed), or the [T, B, C, *dense] samples; the passes'
        slot counts (decided once per batch, the same in every pass) go to ``scoring``.

        With ``config.amp`` only the network's passes run under autocast: the probabilities and
        their running statistics are fp32."""
        config, strategy, adapter = self.config, self.strategy, self.adapter
        assert self.sampler is not None

        def output_fn(outputs: Any) -> torch.Tensor:
            with full_precision(config.device):
                probs, scoring.slot_counts = probabilities_and_slots(adapter, to_float(outputs))
            return probs

        if not strategy.mc_statistics:
            with autocast(config.device, config.amp):
                return self.sampler.sample(inputs, config.mc_samples, output_fn=output_fn)
        accumulator = MCAccumulator(strategy.mc_statistics)
        passes = iter(self.sampler.passes(inputs, config.mc_samples, output_fn=output_fn))
        while True:
            with autocast(config.device, config.amp):   # autocast is on while the pass runs
                probs = next(passes, None)
            if probs is None:
                return accumulator.result()
            accumulator.update(probs)                                     # [B, C, *dense]

    def scored(self, samples: np.ndarray, reduction: str,
               start: int = 0) -> Iterator[ScoredBatch]:
        """A score strategy's scores, batch by batch: ``[B]``, or ``[B, *dense]`` with
        ``reduction="none"`` (float64 numpy), each with the batch's slot counts."""
        for scoring in self.batches(samples, start):
            scores = self.strategy.score(scoring.inputs, reduction=reduction)
            classes, n_classes = None, 0
            if self.strategy.region_context:   # the regions' predicted classes: [B, *dense]
                probs = scoring.inputs[PROBS]
                classes, n_classes = probs.argmax(dim=1).cpu().numpy(), int(probs.shape[1])
            yield ScoredBatch(scoring.samples, scores.float().cpu().double().numpy(),
                              scoring.slot_counts, classes, n_classes)

    def gathered(self, samples: np.ndarray) -> dict[str, torch.Tensor]:
        """A set strategy's inputs for every sample, as CPU tensors with a sample per row:
        ``embedding [S, D]``, ``probs [S, C]``, ``mc_probs [S, T, C]`` (sample-major, so that
        shards concatenate on the first dimension)."""
        collected: dict[str, list[torch.Tensor]] = {EMBEDDING: [], PROBS: [], MC_PROBS: []}
        for scoring in self.batches(samples):
            for need in collected:
                if need in scoring.inputs:
                    part = scoring.inputs[need]
                    if need == MC_PROBS:   # [T, B, C] -> [B, T, C]: a sample per row
                        part = part.transpose(0, 1)
                    collected[need].append(part.cpu())
        return {need: torch.cat(parts) for need, parts in collected.items() if parts}


@torch.inference_mode()
def score_candidates(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                     strategy: Strategy, samples: np.ndarray, config: LoopConfig,
                     device: torch.device, *, units: SelectionUnits | None = None,
                     description: str = "scoring",
                     store: Callable[[int], ScoreStore] | None = None) -> dict[str, Any]:
    """One batched pass over ``pool_set[samples]`` computing what ``strategy`` needs.

    Returns, for score strategies, ``{"unit_ids": int64 [V], "scores": float64 [V]}``: the units
    the samples belong to and their pooled scores. For set strategies, the needed inputs per
    *sample* as CPU tensors: ``embedding [S, D]``, and for gradient embeddings their factors
    ``probs [S, C]`` and ``embedding [S, D]`` (BADGE never materialises ``[S, C*D]``); MC
    samples sample-major, ``mc_probs [S, T, C]``, so that every need's rows are its first
    dimension (shards concatenate on it; the choice turns them back to ``[T, S, C]``).

    ``store(slots)`` (score strategies) opens the pass's :class:`ScoreStore`: the scores go to
    disk batch by batch, and a pass interrupted before is resumed at its first unscored sample.
    """
    units = units or adapter.selection_units()
    scoring = ScoringPass(adapter, model, loss_module, strategy, config, device,
                          description=description)
    if strategy.is_set_strategy:
        return scoring.gathered(samples)
    reduction = "none" if units.dense_scores else config.reduction

    def scored(start: int = 0) -> Iterator[ScoredBatch]:
        return scoring.scored(samples, reduction, start)

    if strategy.region_context:   # per-region statistics, pooled batch by batch
        return units.pool_regions(scored())
    if store is None:
        # Each batch's scores ([B], or B maps [H, W] for region units) go to the units as they
        # come: region units pool a batch of maps into region means before the next batch.
        unit_ids, unit_scores = units.pool_scores(scored(), reduction=config.unit_reduction)
        return {"unit_ids": unit_ids, "scores": unit_scores}
    return _score_into_store(units, samples, scored, store, config.unit_reduction)


def _score_into_store(units: SelectionUnits, samples: np.ndarray,
                      scored: Callable[[int], Iterator[ScoredBatch]],
                      store: Callable[[int], ScoreStore], unit_reduction: str) -> dict[str, Any]:
    """``score_candidates``' scores through a :class:`ScoreStore`: one slot per sample (pooled
    into units at the end, as ``pool_scores`` pools them), or per unit for units that pool
    dense scores (each batch pooled as it comes)."""
    dense = units.dense_scores
    opened = store(units.n_units if dense else units.n_samples)
    for batch in scored(opened.done):
        if dense:
            opened.write(*units.pool_scores([batch]))
        else:
            opened.write(batch.samples, batch.scores)
        opened.advance(len(batch.samples))
    opened.advance(0, final=True)
    if dense:   # each candidate image's units, in the order pool_scores gives them
        slots = units.units_of_items(samples)
        return {"unit_ids": slots, "scores": opened.read(slots)}
    unit_ids, unit_scores = units.unit_scores(samples, opened.read(samples),
                                              reduction=unit_reduction)
    return {"unit_ids": unit_ids, "scores": unit_scores}


def score_sharded(adapter: TaskAdapter, model: nn.Module, loss_module: nn.Module | None,
                  strategy: Strategy, samples: np.ndarray, config: LoopConfig,
                  device: torch.device, units: SelectionUnits,
                  store: Callable[[int], ScoreStore] | None = None) -> dict[str, Any] | None:
    """:func:`score_candidates`, each process scoring its contiguous shard of ``samples``.

    Rank 0 gets what one process scoring every sample would return (the other ranks get None):
    the shards' results in rank order, which is sample order. Units whose score pools several
    samples (an image's persons) are pooled after the gather, so a unit split between two
    shards gets the score of all its samples; region scores are pooled per image, so each
    process pools its own images. Without a process group this is ``score_candidates``.
    ``store`` (score strategies): each process streams its shard's scores to its own
    :class:`ScoreStore`, and resumes there.
    """
    if not is_distributed():
        return score_candidates(adapter, model, loss_module, strategy, samples, config, device,
                                units=units, store=store)
    start, stop = shard_range(len(samples), rank(), world_size())
    shard = samples[start:stop]
    per_sample = not strategy.is_set_strategy and not units.dense_scores
    local = score_candidates(adapter, model, loss_module, strategy, shard, config, device,
                             units=SelectionUnits(units.n_samples) if per_sample else units,
                             store=store)
    parts = gather_objects(local, dst=0)
    if parts is None:
        return None
    if strategy.is_set_strategy:
        return {need: torch.cat([part[need] for part in parts if need in part])
                for need in {need for part in parts for need in part}}
    if strategy.region_context:   # each process pooled its own images' regions
        return join_region_parts(parts)
    unit_ids = np.concatenate([part["unit_ids"] for part in parts])
    scores = np.concatenate([part["scores"] for part in parts])
    if per_sample:
        unit_ids, scores = units.unit_scores(unit_ids, scores, reduction=config.unit_reduction)
    return {"unit_ids": unit_ids, "scores": scores}


def join_region_parts(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The processes' ``RegionUnits.pool_regions`` results, in rank order, as one.

    A process with no image to score sent ``class_counts`` of shape [0, 0] (it never saw the
    number of classes), which cannot join the others' [V, C]: parts without regions are left
    out (the first part stands for them all when every part is empty).
    """
    filled = [part for part in parts if len(part["unit_ids"])] or parts[:1]
    return {key: np.concatenate([part[key] for part in filled]) for key in filled[0]}


def embed(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray, config: LoopConfig,
          device: torch.device, description: str = "embedding labeled") -> torch.Tensor | None:
    """Embeddings ``[len(samples), D]`` of ``pool_set[samples]`` (``adapter.embedding``, as
    core-set reads them), e.g. of the labeled set or of a mix's shortlist.

    Under ``torch.distributed`` each process embeds its shard of ``samples`` and rank 0 gets
    them all, in order (the other ranks get None)."""
    if not is_distributed():
        return embed_local(adapter, model, samples, config, device, description)
    start, stop = shard_range(len(samples), rank(), world_size())
    parts = gather_objects(embed_local(adapter, model, samples[start:stop], config, device,
                                  description), dst=0)
    if parts is None:
        return None
    # a process with an empty shard sent zeros(0, 0), which has no width to join the others'
    filled = [part for part in parts if len(part)]
    return torch.cat(filled) if filled else parts[0]


@torch.inference_mode()
def embed_local(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray, config: LoopConfig,
                device: torch.device, description: str = "embedding labeled") -> torch.Tensor:
    """This process's embeddings ``[S, D]`` of ``pool_set[samples]`` (CPU, float32), gathered
    by no other process; ``[0, 0]`` without samples."""
    model.eval()
    loader = make_loader(adapter, Subset(adapter.pool_set, samples),  # type: ignore[arg-type]
                         config.eval_batch_size, config)
    parts = []
    for batch in progress(loader, config.progress, desc=description):
        inputs = memory_format(adapter.split_batch(batch, device)[0], config.channels_last)
        outputs, features = forward(adapter, model, inputs, device, config.amp)
        parts.append(adapter.embedding(outputs, features).float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, 0)
