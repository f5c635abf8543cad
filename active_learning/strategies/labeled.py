"""The labeled items' hidden features and classes, for strategies fitted on the labeled set.

Hidden uncertainty fits one density per class to the labeled items' hidden features; active
transfer learning trains a head on held-out labeled items to predict where the model is wrong.
Both need, for each labeled item (image, or position of a per-pixel hidden map), its hidden
feature vector, its true class and the model's class. The loop computes them batch by batch
(``loop/fitting.py``, ``labeled_features``) through :func:`hidden_rows` and keeps a uniform
sample of at most ``per_class`` rows of each class (:class:`ClassSample`), so a segmentation
labeled set of millions of pixels is held as a few thousand rows per class.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

# Rows kept per class. A full-covariance Gaussian of the 19-dimensional per-pixel logits (or of
# a 512-dimensional image embedding) is estimated from 10,000 rows to well under a percent; an
# image-level labeled set reaches it only above 10,000 labeled images of one class.
ROWS_PER_CLASS = 10_000


@dataclass(frozen=True)
class LabeledFeatures:
    """Hidden features of labeled items with their classes.

    Attributes:
        features: float32 [N, D] hidden features (``TaskAdapter.hidden_features``), one row per
            labeled image, or per sampled position of the hidden map for per-pixel outputs.
        labels: int64 [N] the true class of each row.
        predicted: int64 [N] the model's class of each row (argmax of its probabilities).
        class_counts: int64 [C] the rows of each class before sampling: the class frequencies of
            everything the rows were drawn from (hidden uncertainty's class priors).
    """

    features: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    class_counts: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.class_counts)

    def __len__(self) -> int:
        return len(self.labels)


def cell_centers(size: int, cells: int, device: torch.device) -> torch.Tensor:
    """Index of the pixel at the center of each of ``cells`` equal cells of ``size`` pixels."""
    return ((torch.arange(cells, device=device, dtype=torch.float64) + 0.5) * size
            / cells).long().clamp_(max=size - 1)


def hidden_rows(hidden: torch.Tensor, targets: torch.Tensor, probs: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch's rows: (features [N, D], true classes [N], the model's classes [N]).

    ``hidden`` is ``[B, D]`` (one vector per image, ``targets`` ``[B]`` class indices, ``probs``
    ``[B, C]``) or ``[B, D, h, w]`` (a per-pixel map, ``targets`` ``[B, H, W]`` and ``probs``
    ``[B, C, H, W]`` at the image's resolution). A hidden map coarser than the image (a stride-8
    classifier) takes the label and the prediction of the pixel at the center of each of its
    cells. Positions whose label is no class (an ignore label such as 255) are dropped.
    """
    if hidden.ndim == 2:
        if targets.ndim != 1 or probs.ndim != 2:
            raise ValueError(f"image-level hidden features [B, D] need class indices [B] and "
                             f"probabilities [B, C], got targets {tuple(targets.shape)} and "
                             f"probabilities {tuple(probs.shape)}")
        rows, labels, predicted = hidden, targets, probs.argmax(dim=1)
    elif hidden.ndim == 4:
        if targets.ndim != 3 or probs.ndim != 4:
            raise ValueError(f"per-pixel hidden features [B, D, h, w] need label maps [B, H, W] "
                             f"and probabilities [B, C, H, W], got targets "
                             f"{tuple(targets.shape)} and probabilities {tuple(probs.shape)}")
        height, width = hidden.shape[-2:]
        ys = cell_centers(targets.shape[-2], height, targets.device)
        xs = cell_centers(targets.shape[-1], width, targets.device)
        labels = targets[:, ys][:, :, xs].reshape(-1)                              # [B*h*w]
        best = probs.argmax(dim=1)                                                  # [B, H, W]
        predicted = best[:, ys.to(best.device)][:, :, xs.to(best.device)].reshape(-1)
        rows = hidden.permute(0, 2, 3, 1).reshape(-1, hidden.shape[1])              # [B*h*w, D]
    else:
        raise ValueError(f"hidden features must be [B, D] or [B, D, h, w], got "
                         f"{tuple(hidden.shape)}")
    labels = labels.to(rows.device).long()
    valid = (labels >= 0) & (labels < probs.shape[1])
    return rows[valid].float(), labels[valid], predicted.to(rows.device)[valid].long()


class ClassSample:
    """A uniform sample, without replacement, of at most ``per_class`` rows of each class.

    Every row gets an independent uniform key and each class keeps its ``per_class`` smallest
    keys: rows can come in any number of batches (or from several processes, :meth:`merge`)
    and the kept rows are a uniform sample of each class, in O(per_class x classes) memory.
    """

    def __init__(self, num_classes: int, per_class: int = ROWS_PER_CLASS,
                 seed: int | np.random.SeedSequence = 0) -> None:
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        self.num_classes = num_classes
        self.per_class = per_class
        self._rng = np.random.default_rng(seed)
        self.features = np.zeros((0, 0), dtype=np.float32)
        self.labels = np.zeros(0, dtype=np.int64)
        self.predicted = np.zeros(0, dtype=np.int64)
        self.keys = np.zeros(0)
        self.counts = np.zeros(num_classes, dtype=np.int64)

    def add(self, features: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> None:
        """Offer rows ``features [n, D]`` of classes ``labels [n]`` (the model's ``predicted``)."""
        features = np.asarray(features, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        self.counts += np.bincount(labels, minlength=self.num_classes)[:self.num_classes]
        self._keep(features, labels, np.asarray(predicted, dtype=np.int64),
                   self._rng.random(len(labels)))

    def merge(self, others: Sequence[ClassSample]) -> ClassSample:
        """This sample and ``others`` (drawn from disjoint rows) as one sample of their union."""
        for other in others:
            self.counts += other.counts
            self._keep(other.features, other.labels, other.predicted, other.keys)
        return self

    def _keep(self, features: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
              keys: np.ndarray) -> None:
        if not len(labels):
            return
        if self.features.size == 0:
            self.features = np.zeros((0, features.shape[1]), dtype=np.float32)
        features = np.concatenate([self.features, features])
        labels = np.concatenate([self.labels, labels])
        predicted = np.concatenate([self.predicted, predicted])
        keys = np.concatenate([self.keys, keys])
        order = np.lexsort((keys, labels))                 # by class, then by key
        first = np.searchsorted(labels[order], np.arange(self.num_classes))
        place = np.arange(len(order)) - first[labels[order]]          # rank within its class
        kept = np.sort(order[place < self.per_class])     # back in arrival order
        self.features, self.labels = features[kept], labels[kept]
        self.predicted, self.keys = predicted[kept], keys[kept]

    def result(self) -> LabeledFeatures:
        return LabeledFeatures(self.features, self.labels, self.predicted, self.counts.copy())
