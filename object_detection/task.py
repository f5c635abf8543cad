"""The object detection task adapter: SSD300-VGG16 on VOC-format data; unit = image.

What the strategies see:

* ``probabilities``: the class posterior of every default box, [B, C, A] (C includes background).
  ``entropy`` (and ``least_confidence``, ``margin``, ``ratio``) score each default box and reduce
  over the 8,732 boxes with ``--reduction``; this task defaults to ``max``: an image is as
  uncertain as its most uncertain default box (Roy et al. 2018 found max aggregation of per-box
  entropy a strong detector uncertainty). Every image gets a score, with or without a detection.
* ``mc_entropy`` / ``mc_variance`` / ``bald``: the same per-box posteriors under dropout on the
  source maps before the head (``--dropout``); the backbone runs once per batch, the head T times.
* ``loss_prediction``: the module reads the six source maps (conv4_3 before its L2 norm).
* ``coreset`` / ``discriminative``: the global-average-pooled fc7 map.
* the per-image loss (``per_sample_loss``) is the SSD loss of the image, not normalised; the
  training loss divides the batch's sum by its positives, as torchvision's (``loss.py``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from active_learning.adapter import BaseTaskAdapter
from active_learning.files.images import check_images
from active_learning.strategies import BOX_DISTRIBUTIONS

from .data import DetectionSet, collate
from .loss import batch_loss, ssd_losses
from .model import INPUT_SIZE, build_model, feature_info
from .voc import DataError, VOCSample


class DetectionTask(BaseTaskAdapter):
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
    """

    name = "detection"
    primary_metric = "mAP"
    output_kind = BOX_DISTRIBUTIONS    # one class distribution per default box: [B, C, 8732]

    def __init__(self, samples: Sequence[VOCSample], test_samples: Sequence[VOCSample], *,
                 class_names: Sequence[str], width: float = 1.0, dropout: float = 0.0,
                 batch_norm: bool = False, channels_last: bool = False, anchors: str = "voc",
                 lr: float = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 5e-4,
                 milestones: Sequence[int] = (240,), gamma: float = 0.1, basenet: str | None = None,
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

    def probabilities(self, outputs: Any) -> torch.Tensor:
        """Class posteriors of every default box: logits [B, A, C] (or the
        head's dict) -> [B, C, A]."""
        logits = outputs["cls_logits"] if isinstance(outputs, dict) else outputs
        return torch.softmax(logits.float(), dim=-1).transpose(1, 2)

    def embedding(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Global-average-pooled fc7: [B, 1024 x width]."""
        return features[1].float().mean(dim=(2, 3))

    def mc_dropout_model(self, model: nn.Module) -> nn.Module:
        return model.scorer

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

    def evaluate(self, model: nn.Module, loader: Iterable,
                 device: torch.device) -> dict[str, float]:
        """VOC mAP@0.5 (11-point, and the area metric) and per-class AP on the test set."""
        from .metrics import DetectionEvaluator

        evaluator = DetectionEvaluator(self.class_names)
        for batch in loader:
            images, targets = self.split_batch(batch, device)
            notes = [self.test_samples[t["index"]].annotation for t in targets]
            sizes = [(n.height, n.width) for n in notes]
            for detection, note in zip(self.detect(model, images, sizes), notes, strict=True):
                evaluator.add((detection["boxes"], detection["scores"], detection["labels"]),
                              (note.boxes, note.labels, note.difficult))
        return evaluator.compute()

    def item_name(self, index: int) -> str:
        return self.samples[index].name

    def draw_selection(self, units: np.ndarray, scores: np.ndarray, path: Path,
                       model: nn.Module | None = None) -> None:
        from .overlay import draw_selection

        draw_selection(self, units, scores, path, model=model)

