"""The SSD loss, one value per image.

torchvision's ``SSD.compute_loss`` returns the batch's loss: smooth-L1 over the positive default
boxes plus cross-entropy over the positives and the hardest negatives (3 per positive, chosen per
image), both summed over the batch and divided by the batch's number of positives. Learning Loss
needs one target per image, so :func:`ssd_losses` keeps the per-image sums; the training loss is
``per_image.sum() / max(1, positives.sum())``, which equals torchvision's (tested).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
from torch.nn import functional as F


@lru_cache(maxsize=1)
def ssd_coder_and_matcher() -> tuple[Any, Any]:
    """torchvision SSD300's box coder (weights 10, 10, 5, 5) and matcher (IoU 0.5)."""
    from torchvision.models.detection import _utils as det_utils

    return det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)), det_utils.SSDMatcher(0.5)


def match_anchors(matcher, targets: Sequence[dict[str, torch.Tensor]],
                  anchors: torch.Tensor) -> list[torch.Tensor]:
    """For each image, the target index of every default box (-1: background): [B] x [A].

    torchvision's SSD matching: IoU >= 0.5, and every target keeps its best default box.
    """
    from torchvision.ops import box_iou

    matched = []
    for target in targets:
        if target["boxes"].numel() == 0:
            matched.append(torch.full((anchors.shape[0],), -1, dtype=torch.int64,
                                      device=anchors.device))
            continue
        matched.append(matcher(box_iou(target["boxes"], anchors)))
    return matched


def ssd_losses(outputs: dict[str, torch.Tensor], targets: Sequence[dict[str, torch.Tensor]], *,
               box_coder: Any = None, matcher: Any = None,
               neg_to_pos_ratio: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SSD loss and positives.

    Args:
        outputs: ``cls_logits`` [B, A, C], ``bbox_regression`` [B, A, 4], ``anchors`` [A, 4].
        targets: per image ``boxes`` [M, 4] (input pixels) and ``labels`` [M] in 1..C-1.
        box_coder, matcher: default to torchvision SSD300's (:func:`ssd_coder_and_matcher`).

    Returns:
        (losses [B]: smooth-L1 over the image's positives + cross-entropy over its positives and
        its ``neg_to_pos_ratio`` x positives hardest negatives, not normalised; positives [B]).
        An image without targets has no positive and no negative: loss 0.
    """
    cls_logits, regression = outputs["cls_logits"], outputs["bbox_regression"]
    anchors = outputs["anchors"]
    default_coder, default_matcher = ssd_coder_and_matcher()
    box_coder, matcher = box_coder or default_coder, matcher or default_matcher
    matched = match_anchors(matcher, targets, anchors)
    class_targets = torch.zeros(cls_logits.shape[:2], dtype=torch.int64,
                                device=cls_logits.device)                   # [B, A]
    box_losses = []
    for image, (target, matches) in enumerate(zip(targets, matched, strict=True)):
        positive = torch.where(matches >= 0)[0]
        gt_boxes = target["boxes"][matches[positive]]
        encoded = box_coder.encode_single(gt_boxes, anchors[positive])
        box_losses.append(F.smooth_l1_loss(regression[image, positive], encoded, reduction="sum"))
        class_targets[image, positive] = target["labels"][matches[positive]]
    box_loss = torch.stack(box_losses)                                      # [B]
    ce = F.cross_entropy(cls_logits.flatten(0, 1), class_targets.flatten(),
                         reduction="none").view_as(class_targets)
    positive = class_targets > 0                                            # [B, A]
    positives = positive.sum(dim=1)                                         # [B]
    # Hard negatives, per image: the background boxes with the highest loss, ratio x positives.
    negative_loss = ce.detach().masked_fill(positive, -float("inf"))
    rank = negative_loss.argsort(dim=1, descending=True).argsort(dim=1)     # [B, A]
    negative = rank < neg_to_pos_ratio * positives.unsqueeze(1)
    class_loss = (ce * (positive | negative)).sum(dim=1)
    return box_loss + class_loss, positives


def batch_loss(per_image: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """The training loss: the per-image losses summed over the batch / the batch's positives."""
    return per_image.sum() / positives.sum().clamp_min(1)
