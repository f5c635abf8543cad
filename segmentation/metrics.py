"""Segmentation metrics from one confusion matrix: per-class IoU, mIoU, pixel accuracy."""
from __future__ import annotations

from collections.abc import Sequence

import torch

IGNORE = 255


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor,
                     num_classes: int) -> torch.Tensor:
    """int64 [K, K]: entry (t, p) counts pixels of true class t predicted as p; 255 is skipped.

    predictions, targets: int [B, H, W] (or any equal shapes).
    """
    targets = targets.reshape(-1).long()
    predictions = predictions.reshape(-1).long()
    keep = targets != IGNORE
    if (targets[keep] >= num_classes).any() or (targets[keep] < 0).any():
        raise ValueError(f"target class ids outside 0..{num_classes - 1} (and 255)")
    index = targets[keep] * num_classes + predictions[keep]          # one bincount, no loop
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores_from_confusion(confusion: torch.Tensor,
                          class_names: Sequence[str] | None = None) -> dict[str, float]:
    """``mIoU`` (mean over classes present in the ground truth or the predictions),
    ``pixel_accuracy`` and ``iou_<class>`` for every class (NaN for a class absent from both)."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - true_positive
    iou = torch.where(union > 0, true_positive / union.clamp_min(1),
                      torch.full_like(union, float("nan")))
    present = ~torch.isnan(iou)
    total = confusion.sum()
    result = {"mIoU": float(iou[present].mean()) if present.any() else float("nan"),
              "pixel_accuracy": float(true_positive.sum() / total) if total > 0 else float("nan")}
    names = class_names or [str(index) for index in range(len(iou))]
    for name, value in zip(names, iou.tolist(), strict=True):
        result[f"iou_{name.replace(' ', '_')}"] = value
    return result
