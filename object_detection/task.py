"""The object detection task adapter: SSD300-VGG16 on VOC-format data; unit = image.

What the strategies see:

* ``probabilities`` (``--uncertainty-boxes detections``, the default): the detector's output
  boxes, as the evaluation finds them (score above 0.01, the 200 best per class, NMS at 0.45),
  each with the class posterior of the default box it came from: [B, C, D], D slots per image,
  the empty ones one-hot background (every uncertainty score of them is exactly 0).
  ``entropy`` (and ``least_confidence``, ``margin``, ``ratio``) score each box; the image's
  score is the max, mean or sum over its boxes (``--unit-reduction``, max by default; detection
  AL scores images from their output boxes, e.g. Roy et al. 2018, Haussmann et al. 2020). An
  image without a detection scores 0: the detector reports nothing there to doubt.
  ``--uncertainty-boxes anchors``: every default box, [B, C, 8732], reduced by ``--reduction``
  (the score of earlier versions; its max saturates at ln C for an untrained detector).
* ``mc_entropy`` / ``mc_variance`` / ``bald``: the same boxes' posteriors under dropout on the
  source maps before the head (``--dropout``); which default boxes are the detections is decided
  once per batch by the dropout-free detector, so every pass scores the same boxes; the
  backbone runs once per batch, the head T times.
* ``loss_prediction``: the module reads the six source maps (conv4_3 before its L2 norm).
* ``coreset`` / ``discriminative``: the global-average-pooled fc7 map.
* the per-image loss (``per_sample_loss``) is the SSD loss of the image, not normalised; the
  training loss divides the batch's sum by its positives, as torchvision's (``loss.py``).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from active_learning.adapter import BaseTaskAdapter, PartwiseEvaluation
from active_learning.files.images import check_images, image_size
from active_learning.files.predictions import ImagePrediction
from active_learning.loop.scoring import SlottedProbabilities
from active_learning.loop.units import ScoredBatch, SelectionUnits, scored_batch
from active_learning.strategies import BOX_DISTRIBUTIONS

from .data import DetectionSet, collate
from .loss import batch_loss, ssd_losses
from .model import (
    INPUT_SIZE,
    SCORED_BOXES,
    build_model,
    detection_slots,
    detections,
    feature_info,
    fill_slots,
)
from .voc import DataError, VOCSample

# Pre-annotations per image at most (COCO's evaluation keeps 100 detections per image too).
MAX_PREDICTED_BOXES = 100


class DetectionUnits(SelectionUnits):
    """One unit per image, scored from its detections: the per-box scores a strategy computes
    over the image's D detection slots ([B, D], ``reduction="none"``) pooled over its K real
    detections by the loop's unit reduction (``--unit-reduction``): ``max``, ``mean`` or
    ``sum``. An image without a detection scores 0.

    Each batch of per-box scores carries its images' K (``ScoredBatch.slot_counts``, which the
    scoring pass takes from ``DetectionTask.probabilities_and_slots`` with the probabilities).
    The empty slots of a batch must score exactly 0 (their distribution is one-hot
    background): a batch whose scores and counts disagree is a bug and raises. Strategies that
    score whole images (loss prediction) pass through.
    """

    kind = "detections"
    dense_scores = True

    def pool_scores(self, batches: Iterable[ScoredBatch | tuple[np.ndarray, Any]],
                    reduction: str = "max") -> tuple[np.ndarray, np.ndarray]:
        def pooled() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for batch in map(scored_batch, batches):
                samples, counts = batch.samples, batch.slot_counts
                scores = np.asarray(batch.scores, dtype=np.float64)
                if scores.ndim > 1:
                    if counts is None:   # a bug upstream: the scoring pass sends them
                        raise RuntimeError("per-box scores came without their images' "
                                           "detection counts")
                    scores = pool_box_scores(scores.reshape(len(scores), -1),
                                             np.asarray(counts), reduction)
                yield samples, scores

        return super().pool_scores(pooled(), reduction)


def pool_box_scores(scores: np.ndarray, counts: np.ndarray, reduction: str) -> np.ndarray:
    """Per-slot scores [B, D] of images with ``counts`` [B] detections (the first ``counts``
    slots) -> one score per image [B]: the max, mean or sum over its detections; 0 without."""
    if counts.shape != (len(scores),) or (counts > scores.shape[1]).any():
        raise RuntimeError(f"detection counts {counts.tolist()} do not belong to a batch of "
                           f"{scores.shape[0]} images with {scores.shape[1]} slots")
    filled = np.arange(scores.shape[1])[None] < counts[:, None]              # [B, D]
    if (scores[~filled] != 0).any():
        raise RuntimeError("an empty detection slot scored above 0: the counts are not this "
                           "batch's")
    if reduction == "max":
        return scores.max(axis=1)                 # empty slots score 0, every score is >= 0
    total = scores.sum(axis=1)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / np.maximum(counts, 1)
    raise ValueError(f"unknown reduction {reduction!r}")


class DetectionTask(SlottedProbabilities, PartwiseEvaluation, BaseTaskAdapter):
    """Adapter for object detection (see ``active_learning.adapter.TaskAdapter``).

    Args:
        samples: the pool (annotated training images, plus unlabeled ones in rank mode).
        test_samples: the annotated evaluation images.
        class_names: the K object classes (labels 1..K; 0 is background).
        width: backbone channel multiplier (1 = VGG-16). batch_norm: VGG-16-BN. channels_last:
            NHWC convolutions (faster on CPU for narrow models). anchors: the default boxes,
            "voc" (ssd.pytorch's VOC configuration) or "coco" (torchvision's).
        dropout: p of the dropout before the head (0: none; MC strategies need > 0).
        lr, momentum, weight_decay, milestones, gamma: SGD and its step schedule.
        basenet, weights: local weight files (VGG-16 backbone; a whole detector).
        max_grad_norm: clip the gradients' global norm (None: no clipping, as the original).
        scored_boxes: what uncertainty strategies score: "detections" (the output boxes, pooled
            per image by the unit reduction) or "anchors" (all 8,732 default boxes, reduced by
            the loop's ``reduction``).
    """

    name = "detection"
    primary_metric = "mAP"
    output_kind = BOX_DISTRIBUTIONS    # one class distribution per default box: [B, C, 8732]

    def __init__(self, samples: Sequence[VOCSample], test_samples: Sequence[VOCSample], *,
                 class_names: Sequence[str], width: float = 1.0, dropout: float = 0.0,
                 batch_norm: bool = False, channels_last: bool = False, anchors: str = "voc",
                 lr: float = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 5e-4,
                 milestones: Sequence[int] = (240,), gamma: float = 0.1,
                 scored_boxes: str = "detections", basenet: str | None = None,
                 weights: str | None = None, max_grad_norm: float | None = None,
                 progress: bool = True) -> None:
        self.samples, self.test_samples = list(samples), list(test_samples)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names) + 1
        self.width, self.dropout, self.channels_last = width, dropout, channels_last
        self.batch_norm, self.anchors = batch_norm, anchors
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.milestones, self.gamma = list(milestones), gamma
        self.basenet, self.weights, self.progress = basenet, weights, progress
        self.max_grad_norm = max_grad_norm
        if scored_boxes not in SCORED_BOXES:
            raise ValueError(f"scored_boxes must be one of {SCORED_BOXES}, got {scored_boxes!r}")
        self.scored_boxes = scored_boxes
        self.feature_info = feature_info(width)
        self.train_set = DetectionSet(self.samples, augment=True)
        self.pool_set = DetectionSet(self.samples)
        self.test_set = DetectionSet(self.test_samples)
        self.collate_fn = collate
        self._units = None

    # ---- data --------------------------------------------------------------------------

    def check_files(self, jobs: int = 1, cache: Path | None = None) -> None:
        """Decode every image: a missing, unreadable or truncated image, or one whose size
        differs from its annotation's, stops the run here (DataError naming it), before any
        training (``jobs`` threads decode; ``cache`` remembers the images that decoded)."""
        sizes = ((sample.image, None if sample.annotation is None else
                  (sample.annotation.width, sample.annotation.height))
                 for sample in [*self.samples, *self.test_samples])
        check_images(sizes, DataError, self.progress, jobs=jobs, cache=cache)

    def training_set(self, labeled_units: np.ndarray) -> Dataset:
        unlabeled = [int(i) for i in labeled_units if self.samples[int(i)].annotation is None]
        if unlabeled:
            raise ValueError(f"image {self.samples[unlabeled[0]].name} has no "
                             "annotation to train on")
        return DetectionSet(self.samples, np.asarray(labeled_units, dtype=np.int64).tolist(),
                            augment=True)

    def split_batch(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, list[dict]]:
        images, targets = batch
        images = images.to(device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device),
                    "index": t["index"]}
                   for t in targets]
        return images, targets

    # ---- model -------------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        model = build_model(self.num_classes, width=self.width, dropout=self.dropout,
                            batch_norm=self.batch_norm, anchors=self.anchors,
                            basenet=self.basenet, weights=self.weights)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def build_optimizer(self, parameters, epochs: int):
        """SGD with x ``gamma`` at each milestone epoch (the original: 1e-3, x0.1 at 240 of 300)."""
        optimizer = torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.milestones,
                                                         gamma=self.gamma)
        return optimizer, scheduler

    def forward_intermediates(self, model: nn.Module, inputs: torch.Tensor):
        return model.forward_intermediates(inputs)

    def per_sample_loss(self, outputs: dict[str, torch.Tensor],
                        targets: list[dict]) -> torch.Tensor:
        """The SSD loss of each image, not normalised: [B] (see ``loss.ssd_losses``)."""
        return ssd_losses(outputs, targets)[0]

    def batch_loss(self, outputs: dict[str, torch.Tensor],
                   targets: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """(the SSD training loss: per-image sum / the batch's positives, per-image losses [B])."""
        losses, positives = ssd_losses(outputs, targets)
        return batch_loss(losses, positives), losses

    def selection_units(self) -> SelectionUnits:
        if self.scored_boxes == "anchors":
            return super().selection_units()
        return DetectionUnits(len(self.samples))

    def probabilities(self, outputs: Any) -> torch.Tensor:
        """Class posteriors [B, C, *boxes] of the boxes uncertainty scores
        (:meth:`probabilities_and_slots` without the counts)."""
        return self.probabilities_and_slots(outputs)[0]

    def probabilities_and_slots(self, outputs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Class posteriors [B, C, *boxes] of the boxes uncertainty scores, with the number of
        filled slots of each image (int [B], or None when every box is scored).

        ``scored_boxes="detections"``: the detector's output boxes (``model.detections``: score
        above 0.01, NMS), each with the class posterior of the default box it came from, in D
        slots per image (D = the batch's most detections, at least 1), the empty ones one-hot
        background: [B, C, D], and each image's detection count [B] (``DetectionUnits`` pools
        an image's box scores over them). ``"anchors"``: every default box, [B, C, 8732].

        ``outputs``: the head's dict (``forward_intermediates``), the MC scorer's logits
        [B, A, C] (anchors) or its ``{"detection_logits" [B, D, C], "counts" [B]}``.
        """
        if isinstance(outputs, dict) and "detection_logits" in outputs:   # an MC scorer's pass
            logits, counts = outputs["detection_logits"], outputs["counts"]
        elif self.scored_boxes == "anchors" or not isinstance(outputs, dict):
            logits = outputs["cls_logits"] if isinstance(outputs, dict) else outputs
            return torch.softmax(logits.float(), dim=-1).transpose(1, 2), None
        else:
            found = detections(outputs)
            index, filled, empty, counts = detection_slots(
                [d["anchor"] for d in found], outputs["cls_logits"].shape[-1],
                outputs["cls_logits"].dtype)
            logits = fill_slots(outputs["cls_logits"], index, filled, empty)
        return torch.softmax(logits.float(), dim=-1).transpose(1, 2), counts

    def embedding(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Global-average-pooled fc7: [B, 1024 x width]."""
        return features[1].float().mean(dim=(2, 3))

    def mc_dropout_model(self, model: nn.Module) -> nn.Module:
        return model.scorer_for(self.scored_boxes)

    @torch.inference_mode()
    def detect(self, model: nn.Module, images: torch.Tensor,
               sizes: Sequence[tuple[int, int]]) -> list[dict]:
        """Detections of ``images`` in their original sizes (H, W): boxes [K, 4]
        numpy, scores, labels."""
        model.eval()
        results = []
        for detection, (height, width) in zip(model.detect(images), sizes, strict=True):
            scale = torch.tensor([width / INPUT_SIZE, height / INPUT_SIZE] * 2,
                                 device=detection["boxes"].device)
            results.append({"boxes": (detection["boxes"] * scale).cpu().numpy(),
                            "scores": detection["scores"].cpu().numpy(),
                            "labels": detection["labels"].cpu().numpy()})
        return results

    def evaluation_part(self, model: nn.Module, loader: Iterable,
                        device: torch.device) -> tuple[list, list]:
        """The detections and ground truth of ``loader``'s images (``DetectionEvaluator.part``)."""
        from .metrics import DetectionEvaluator

        evaluator = DetectionEvaluator(self.class_names)
        for batch in loader:
            images, targets = self.split_batch(batch, device)
            notes = [self.test_samples[t["index"]].annotation for t in targets]
            sizes = [(n.height, n.width) for n in notes]
            for detection, note in zip(self.detect(model, images, sizes), notes, strict=True):
                evaluator.add((detection["boxes"], detection["scores"], detection["labels"]),
                              (note.boxes, note.labels, note.difficult))
        return evaluator.part()

    def metrics_from_parts(self, parts: Sequence[tuple[list, list]]) -> dict[str, float]:
        """VOC mAP@0.5 (11-point, and the area metric) and per-class AP on the test set."""
        from .metrics import DetectionEvaluator

        return DetectionEvaluator.merged(self.class_names, parts).compute()

    def item_name(self, index: int) -> str:
        return self.samples[index].name

    def item_file(self, index: int) -> Path | None:
        return self.samples[index].image

    @torch.inference_mode()
    def prediction(self, model: nn.Module, index: int, *, min_score: float = 0.5,
                   max_boxes: int = MAX_PREDICTED_BOXES) -> ImagePrediction:
        """The detections of pool image ``index`` scoring at least ``min_score`` (the
        ``max_boxes`` best), in pixels of its file, for round mode's pre-annotations: boxes
        [B, 4] x1, y1, x2, y2, labels [B] 0-based (``class_names`` index: the detector's
        1..K minus 1), box_scores [B]."""
        sample = self.samples[index]
        width, height = image_size(sample.image, DataError)
        device = next(model.parameters()).device
        image = self.pool_set[index][0][None].to(device)                   # [1, 3, 300, 300]
        found = self.detect(model, image, [(height, width)])[0]   # best first (NMS order)
        keep = np.flatnonzero(found["scores"] >= min_score)[:max_boxes]
        return ImagePrediction(width, height, boxes=found["boxes"][keep].astype(np.float64),
                               labels=found["labels"][keep].astype(np.int64) - 1,
                               box_scores=found["scores"][keep].astype(np.float64))

    def draw_selection(self, units: np.ndarray, scores: np.ndarray, path: Path,
                       model: nn.Module | None = None) -> None:
        from .overlay import draw_selection

        draw_selection(self, units, scores, path, model=model)

