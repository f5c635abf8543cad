"""The task adapter contract: what a task gives the loop, and the defaults most tasks share.

The loop (``loop/runner.py``, ``loop/selection.py``) calls exactly the members of
:class:`TaskAdapter`.
:class:`BaseTaskAdapter` implements the ones with a natural default, so a classification-like
task writes ``build_model``, ``build_optimizer``, ``forward_intermediates``, ``per_sample_loss``,
``evaluate`` and ``item_name`` (see ``docs/adapter_contract.md``). The loss has one entry point,
``batch_loss``: the training loss and the per-sample losses a strategy's training companion
(Learning Loss's loss module) learns from. The base class derives it from ``per_sample_loss``
(their mean); a task whose training loss is not that mean (SSD) overrides ``batch_loss`` instead.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence, Sized
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from active_learning.loop.config import LoopConfig
from active_learning.loop.units import SelectionUnits
from active_learning.precision import autocast, grad_scaler, memory_format, to_float
from active_learning.strategies import CLASS_DISTRIBUTIONS, PIXEL_DISTRIBUTIONS
from active_learning.strategies.options import TrainingCompanion


class TaskAdapter(Protocol):
    """What a task provides to the loop (``docs/design.md``, "The adapter contract").

    Datasets: ``pool_set`` holds the N samples without augmentation (scored), ``test_set`` is
    evaluated; ``training_set(labeled_units)`` is what the model trains on. Batches of their
    loaders (built with ``collate_fn``) go through ``split_batch`` to become ``(inputs, targets)``.
    Units (``selection_units``) are what the budget counts and ``pool.npz`` records.
    """

    name: str
    primary_metric: str                 # metric of the learning curve, e.g. "accuracy", "mIoU"
    metric_higher_is_better: bool       # False for a loss or an error rate
    feature_info: list[dict]            # [{"name", "channels", "stride"}] maps feeding a
                                        # training companion (the loss module)
    output_kind: str                    # what ``probabilities`` returns: one of
                                        # strategies.OUTPUT_KINDS
    class_names: Sequence[str]          # [C] names of the class indices (the report's class
                                        # histogram and map), or empty
    pool_set: Dataset
    test_set: Dataset
    collate_fn: Callable | None
    uses_previous_model: bool           # before_training reads the previous cycle's model (the
                                        # loop keeps it, and saves it so that a run resumes)

    def selection_units(self) -> SelectionUnits: ...
    def before_training(self, previous_model: nn.Module | None, labeled_units: np.ndarray,
                        cycle: int, device: torch.device) -> dict[str, float]: ...
    def training_set(self, labeled_units: np.ndarray) -> Dataset: ...
    def build_model(self) -> nn.Module: ...
    def build_optimizer(self, parameters: Iterable[nn.Parameter],
                        epochs: int) -> tuple[Any, Any]: ...
    def split_batch(self, batch: Any, device: torch.device) -> tuple[Any, Any]: ...
    def forward_intermediates(self, model: nn.Module,
                              inputs: Any) -> tuple[Any, list[torch.Tensor]]: ...
    def batch_loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]: ...
    def probabilities(self, outputs: Any) -> torch.Tensor: ...
    def embedding(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor: ...
    def hidden_features(self, outputs: Any,
                        features: Sequence[torch.Tensor]) -> torch.Tensor: ...
    def mc_dropout_model(self, model: nn.Module) -> nn.Module: ...
    def train_one_epoch(self, model: nn.Module, companion: TrainingCompanion | None,
                        loader: Iterable, optimizer: torch.optim.Optimizer, *, epoch: int,
                        config: LoopConfig, device: torch.device,
                        scaler: torch.amp.GradScaler | None = None,
                        forward: Callable[[Any], Any] | None = None) -> dict[str, float]: ...
    def evaluate(self, model: nn.Module, loader: Iterable,
                 device: torch.device) -> dict[str, float]: ...
    def item_name(self, index: int) -> str: ...
    def item_file(self, index: int) -> Path | None: ...
    def draw_selection(self, units: np.ndarray, scores: np.ndarray, path: Path,
                       model: nn.Module | None = None) -> None: ...


class TrainingStep(Protocol):
    """The part of a task adapter that :func:`train_one_epoch` uses."""

    def split_batch(self, batch: Any, device: torch.device) -> tuple[Any, Any]: ...
    def forward_intermediates(self, model: nn.Module,
                              inputs: Any) -> tuple[Any, list[torch.Tensor]]: ...
    def batch_loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]: ...


def dataset_len(dataset: Dataset) -> int:
    """``len(dataset)``: the loop's datasets are map-style and sized, which
    ``torch.utils.data.Dataset`` leaves to its subclasses (it declares no ``__len__``)."""
    return len(cast(Sized, dataset))


class PartwiseEvaluation:
    """``evaluate`` in two steps, so that processes can each evaluate a slice of the test set.

    ``evaluation_part`` reduces the batches of one slice to what the metrics need (counts, a
    confusion matrix, the detections or keypoints with their ground truth): a picklable value
    that holds no model output larger than the metric needs. ``metrics_from_parts`` combines the
    parts of every slice, in slice order, into exactly the metrics one pass over the whole test
    set gives: counts and matrices are summed, detections and keypoints concatenated before AP
    is computed. The runner gathers the parts on rank 0 under ``torchrun``; one process has one
    part.
    """

    def evaluation_part(self, model: nn.Module, loader: Iterable, device: torch.device) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement evaluation_part")

    def metrics_from_parts(self, parts: Sequence[Any]) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} must implement metrics_from_parts")

    def evaluate(self, model: nn.Module, loader: Iterable,
                 device: torch.device) -> dict[str, float]:
        """The metrics of one pass over ``loader``: one part, combined."""
        return self.metrics_from_parts([self.evaluation_part(model, loader, device)])


class BaseTaskAdapter:
    """Defaults for the parts of :class:`TaskAdapter` most tasks share.

    ``train_set`` (the augmented view of ``pool_set``'s samples) feeds the default
    ``training_set``; one unit per sample unless ``selection_units`` says otherwise.
    """

    name = "task"
    primary_metric = "accuracy"
    metric_higher_is_better = True
    feature_info: list[dict] = []
    output_kind = CLASS_DISTRIBUTIONS     # one class distribution per image: [B, C]
    class_names: Sequence[str] = ()       # [C] names of the class indices; none by default
    collate_fn: Callable | None = None
    max_grad_norm: float | None = None   # clip the gradients' global norm to this
                                         # (None: no clipping)
    train_set: Dataset
    pool_set: Dataset
    uses_previous_model = False   # True: before_training gets the previous cycle's model

    def before_training(self, previous_model: nn.Module | None, labeled_units: np.ndarray,
                        cycle: int, device: torch.device) -> dict[str, float]:
        """Called before cycle ``cycle`` trains on ``labeled_units`` (int64 [L]), with the model
        the previous cycle trained when ``uses_previous_model`` (None in cycle 0 and otherwise):
        what the next training needs from it (e.g. a task's pseudo-labels). Returns columns for
        the cycle's ``metrics.csv`` row; nothing by default."""
        return {}

    def selection_units(self) -> SelectionUnits:
        """One unit per sample of ``pool_set``; built once and cached."""
        if getattr(self, "_units", None) is None:
            self._units = SelectionUnits(dataset_len(self.pool_set))
        return self._units

    def training_set(self, labeled_units: np.ndarray) -> Dataset:
        """The samples of the labeled units, from ``train_set`` (int64 [L] unit indices)."""
        if dataset_len(self.train_set) != dataset_len(self.pool_set):
            raise ValueError(f"train_set ({dataset_len(self.train_set)}) and pool_set "
                             f"({dataset_len(self.pool_set)}) must hold the same items")
        samples = self.selection_units().samples_of(labeled_units)
        return Subset(self.train_set, samples.tolist())

    def split_batch(self, batch: Any, device: torch.device) -> tuple[Any, Any]:
        inputs, targets = batch
        return inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)

    def batch_loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(the training loss: the mean of the per-sample losses, per-sample losses [B]).

        A task whose loss is not a mean over samples overrides it (SSD divides the batch's sum
        by its positive default boxes); the per-sample losses stay what the loss module ranks.
        """
        losses = self.per_sample_loss(outputs, targets)
        return losses.mean(), losses

    def forward_intermediates(self, model: nn.Module,
                              inputs: Any) -> tuple[Any, list[torch.Tensor]]:
        """``(outputs, feature maps)`` of one forward pass: what a training companion (the loss
        module) and the embeddings read."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_intermediates")

    def per_sample_loss(self, outputs: Any, targets: Any) -> torch.Tensor:
        """One loss per sample, ``[B]`` (never a batch mean): what ``batch_loss`` averages."""
        raise NotImplementedError(f"{type(self).__name__} must implement per_sample_loss "
                                  "(or override batch_loss)")

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Softmax over the class axis: logits [B, C, *dense] -> probs [B, C, *dense]."""
        return torch.softmax(outputs.float(), dim=1)

    def embedding(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Global-average-pooled deepest feature map: [B, C, H, W] -> [B, C]."""
        return features[-1].float().mean(dim=(2, 3))

    def hidden_features(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """What strategies fitted on the labeled items' features read (hidden uncertainty's
        densities, active transfer learning's head): ``[B, D]`` per image, or ``[B, D, h, w]``
        per position for per-pixel outputs (a map coarser than the image is fine).

        By default the embedding for one distribution per image, and the per-pixel logits
        ``[B, C, H, W]`` for per-pixel outputs (segmentation reads its classifier's stride-8
        logits instead, the same values before upsampling)."""
        if self.output_kind == PIXEL_DISTRIBUTIONS:
            return outputs.float()
        return self.embedding(outputs, features)

    def mc_dropout_model(self, model: nn.Module) -> nn.Module:
        """The module whose forward outputs feed ``probabilities`` under MC dropout."""
        return model

    def item_name(self, index: int) -> str:
        return f"{index:06d}"

    def item_file(self, index: int) -> Path | None:
        """The file item ``index`` is read from, or None (items held in memory).

        A resumed run compares a fingerprint of each file's content with the one it recorded
        (``loop/identity.py``), so an image replaced under the same name is noticed."""
        return None

    def draw_selection(self, units: np.ndarray, scores: np.ndarray, path: Path,
                       model: nn.Module | None = None) -> None:
        """Write a picture of the chosen units (best first, int64 [K]) to ``path``; none by default.

        ``model`` is the model of the cycle that chose them (e.g. to draw its predictions)."""

    def train_one_epoch(self, model: nn.Module, companion: TrainingCompanion | None,
                        loader: Iterable, optimizer: torch.optim.Optimizer, *, epoch: int,
                        config: LoopConfig, device: torch.device,
                        scaler: torch.amp.GradScaler | None = None,
                        forward: Callable[[Any], Any] | None = None) -> dict[str, float]:
        return train_one_epoch(self, model, companion, loader, optimizer, epoch=epoch,
                               config=config, device=device, max_grad_norm=self.max_grad_norm,
                               scaler=scaler, forward=forward)


def train_one_epoch(adapter: TrainingStep, model: nn.Module, companion: TrainingCompanion | None,
                    loader: Iterable, optimizer: torch.optim.Optimizer, *, epoch: int,
                    config: LoopConfig, device: torch.device,
                    max_grad_norm: float | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    forward: Callable[[Any], Any] | None = None) -> dict[str, float]:
    """One epoch of task loss (+ the companion's term when a strategy trains one).

    The task loss is ``adapter.batch_loss`` (the mean of ``per_sample_loss`` by default). A
    training companion (``strategies.options.TrainingCompanion``; Learning Loss's loss module)
    reads each batch's feature maps and adds its term, computed from the per-sample losses
    (lamda x the ranking loss); its second value is reported as ``companion.stat``.

    With ``config.amp`` the forward pass runs under autocast and the losses are computed from
    fp32 outputs; ``scaler`` (one per cycle, so its scale carries over between epochs) scales
    an fp16 loss, and the gradients are unscaled before clipping.

    ``forward(inputs) -> (outputs, features)`` replaces ``adapter.forward_intermediates(model,
    inputs)``: under torchrun it is the DDP-wrapped call (``loop.parallel``), and
    ``companion`` computes through its DDP-wrapped module.
    """
    model.train()
    if companion is not None:
        companion.train()
    totals = {"loss": 0.0, "task_loss": 0.0}
    if companion is not None:
        totals[companion.stat] = 0.0
    seen = 0
    scaler = scaler if scaler is not None else grad_scaler(device, config.amp)
    for batch in loader:
        inputs, targets = adapter.split_batch(batch, device)
        inputs = memory_format(inputs, config.channels_last)
        with autocast(device, config.amp):
            outputs, features = forward(inputs) if forward is not None \
                else adapter.forward_intermediates(model, inputs)
            if companion is not None:
                output = companion.forward(features, epoch)              # e.g. [B] predictions
        task_loss, sample_losses = adapter.batch_loss(to_float(outputs), targets)   # [], [B]
        loss = task_loss
        if companion is not None:
            term, extra = companion.loss(output, sample_losses)
            if term is not None:
                loss = task_loss + term
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()} in epoch {epoch}; "
                                     "lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if max_grad_norm:
            scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
            # over every parameter the optimizer updates (the loss module's included)
            torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups
                                            for p in group["params"]],
                                           max_grad_norm)
        scaler.step(optimizer)           # skips the step when fp16 gradients overflowed
        scaler.update()
        batch_size = sample_losses.shape[0]
        seen += batch_size
        totals["loss"] += loss.item() * batch_size
        totals["task_loss"] += task_loss.item() * batch_size
        if companion is not None:
            totals[companion.stat] += extra.item() * batch_size
    return {key: value / max(seen, 1) for key, value in totals.items()}
