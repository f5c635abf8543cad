"""Cityscapes' ids: its label ids, train ids, class names and file-name suffixes.

Label ids become the 19 train ids (255 = ignored) through :data:`LABEL_TO_TRAIN`, the table of
cityscapesScripts' ``labels.py``. The mask labels (``labels.masks``) decode Cityscapes label
maps with it, and the ``gtFine`` reader (``labels.cityscapes``) names its files by it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from active_learning.errors import DataError

IGNORE = 255
CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_LABEL_SUFFIX = "_gtFine_labelIds.png"
CITYSCAPES_INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
FIRST_INSTANCE_ID = 1000   # instanceIds below it are stuff (a label id), from it on objects

# Cityscapes label id -> train id (cityscapesScripts, labels.py); 255 = not evaluated.
LABEL_TO_TRAIN = np.full(256, -1, dtype=np.int64)   # -1: not a Cityscapes label id
LABEL_TO_TRAIN[:34] = IGNORE
for _label_id, _train_id in {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
                             23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17,
                             33: 18}.items():
    LABEL_TO_TRAIN[_label_id] = _train_id

CITYSCAPES_CLASSES = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                      "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
                      "truck", "bus", "train", "motorcycle", "bicycle"]


def train_ids(raw: np.ndarray, path: Path) -> np.ndarray:
    """Cityscapes label ids [H, W] -> train ids int64 [H, W] (255 = ignored); DataError naming
    ``path`` for ids outside the table."""
    train = LABEL_TO_TRAIN[raw.astype(np.int64).clip(0, 255)]
    if (train < 0).any() or raw.max() > 255:
        bad = np.unique(raw[train < 0])[:5].tolist()
        raise DataError(f"label map {path} holds ids outside the Cityscapes table "
                        f"(0..33): {bad}")
    return train
