"""The weak annotator of Belharbi et al. 2020 ("Deep Active Learning for Joint Classification &
Segmentation with Weak Annotator"): before a cycle trains, the unlabeled images among the k
nearest neighbours of the labeled images, in the previous cycle's features, get that model's
predicted masks as pseudo-labels, trained on with a small weight.

A pseudo-labeled image stays unlabeled: it is not in the pool's labeled set, not counted in
``n_labeled`` or the cost columns, stays a candidate, and its mask is never written anywhere.
Pseudo-masks travel to the loss inside the targets, offset by ``PSEUDO_OFFSET`` (class ``c``
becomes ``PSEUDO_OFFSET + c``), so a batch mixing labeled and pseudo-labeled images needs no
second tensor; ``IGNORE`` (255) stays below the offset.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .data import IGNORE

PSEUDO_OFFSET = 256      # a target >= this is a pseudo-label: class = target - PSEUDO_OFFSET
PSEUDO_MODES = ("knn",)


def knn_pick(embeddings: np.ndarray, labeled: Sequence[int], candidates: Sequence[int],
             k: int) -> np.ndarray:
    """The candidates among the ``k`` nearest candidates of any labeled item.

    Args:
        embeddings: float [N, D], one row per pool item.
        labeled: item indices whose neighbours are looked for.
        candidates: item indices that may be picked (the unlabeled ones).
        k: neighbours per labeled item (Euclidean distance; ties go to the lower index).

    Returns:
        int64 [P] sorted distinct candidate indices, P <= min(k x len(labeled), len(candidates)).
    """
    labeled = np.asarray(labeled, dtype=np.int64)
    candidates = np.sort(np.asarray(candidates, dtype=np.int64))
    if not len(labeled) or not len(candidates) or k < 1:
        return np.zeros(0, dtype=np.int64)
    rows = torch.from_numpy(np.asarray(embeddings, dtype=np.float64))
    distances = torch.cdist(rows[labeled], rows[candidates]).numpy()          # [L, U]
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]             # [L, min(k, U)]
    return np.unique(candidates[nearest.ravel()])


def pseudo_target(mask: np.ndarray) -> np.ndarray:
    """int64 [H, W] training target of a pseudo-mask of class ids [H, W]."""
    return mask.astype(np.int64) + PSEUDO_OFFSET


def weighted_pixel_losses(outputs: torch.Tensor, targets: torch.Tensor,
                          pseudo_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the weighted sum of its pixels' cross-entropy and the sum of the weights.

    outputs: logits [B, K, H, W]; targets: int64 [B, H, W], labeled classes (weight 1), 255
    (ignored, weight 0) or ``PSEUDO_OFFSET + class`` (weight ``pseudo_weight``). Returns two
    float [B] tensors; their ratio is an image's weighted mean loss.
    """
    pseudo = targets >= PSEUDO_OFFSET
    classes = torch.where(pseudo, targets - PSEUDO_OFFSET, targets)
    pixel = F.cross_entropy(outputs, classes, ignore_index=IGNORE, reduction="none")  # [B, H, W]
    weight = torch.where(pseudo, torch.full_like(pixel, pseudo_weight),
                         (classes != IGNORE).to(pixel.dtype))
    return (pixel * weight).flatten(1).sum(dim=1), weight.flatten(1).sum(dim=1)
