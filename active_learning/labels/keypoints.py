"""COCO person keypoints: one annotation checked and cleaned, as HRNet reads them.

Used by ``human_pose_estimation/coco.py`` for its splits and by the COCO export reader
(``labels/coco.py``) for a round's labels, so both apply the same rules:

* refused (DataError naming the file and the annotation): no ``keypoints`` (a detection file),
  a keypoint array whose length is not 3 x 17, no ``bbox`` of 4 numbers, an image id the file
  does not list;
* skipped, as HRNet skips them (deep-high-resolution-net.pytorch, lib/dataset/coco.py
  ``_load_coco_keypoint_annotation_kernal``): crowd annotations, persons whose ``area`` is 0,
  boxes that :func:`clean_box` leaves nothing of, and persons with no labeled keypoint.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from active_learning.errors import DataError

NUM_JOINTS = 17
COCO_KEYPOINT_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                       "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                       "left_hip", "right_hip", "left_knee", "right_knee",
                       "left_ankle", "right_ankle")
# Why a person was left out (the keys of the counts a reader warns with); None: silently.
CROWD, ZERO_AREA, OUTSIDE = "crowd", "zero area", "box outside the image"
SKIP_REASONS = (CROWD, ZERO_AREA, OUTSIDE)


@dataclass
class PersonLabel:
    """One labeled person: ``box`` (x, y, w, h) in image pixels, cleaned by :func:`clean_box`;
    ``keypoints`` float32 [17, 3] (x, y, v) in COCO's joint order (v: 0 not labeled, 1 labeled
    but hidden, 2 visible); ``annotation_id`` COCO's."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    annotation_id: int

    def key(self) -> bytes:
        """What makes two labels of one person equal (comparing exports' duplicate entries)."""
        return np.asarray(self.box, dtype=np.float64).tobytes() + self.keypoints.tobytes()


def clean_box(box: Sequence[float], width: float | None,
              height: float | None) -> tuple[float, float, float, float] | None:
    """A person box (x, y, w, h) clipped to a ``width`` x ``height`` image, as HRNet sanitises
    boxes (deep-high-resolution-net.pytorch, lib/dataset/coco.py
    ``_load_coco_keypoint_annotation_kernal``):
    ``x1 = max(0, x)``, ``x2 = min(width - 1, x1 + max(0, w - 1))`` (the same for y), kept as
    ``(x1, y1, x2 - x1, y2 - y1)`` when ``x2 >= x1`` and ``y2 >= y1``; None otherwise (the box lies
    right of or below the image) or when it has neither width nor height left (a crop of size 0).

    As in HRNet, ``x2`` counts from the *clipped* ``x1``: a box reaching left of the image keeps its
    width, moved right. An unknown image size (None) leaves that side unclipped.
    """
    x, y, w, h = (float(v) for v in box)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = x1 + max(0.0, w - 1), y1 + max(0.0, h - 1)
    if width is not None:
        x2 = min(float(width) - 1, x2)
    if height is not None:
        y2 = min(float(height) - 1, y2)
    if x2 < x1 or y2 < y1 or (x2 == x1 and y2 == y1):
        return None
    return x1, y1, x2 - x1, y2 - y1


def person_label(note: Mapping[str, Any], image: Mapping[str, Any] | None,
                 where: str) -> PersonLabel | str | None:
    """Check one COCO person annotation ``note`` of the image entry ``image`` (None: the file
    does not list its image) and clean its box.

    Returns the person, or why it is skipped (one of :data:`SKIP_REASONS`), or None when it has
    no labeled keypoint (skipped silently, as HRNet does). Raises DataError starting with
    ``where`` (the file and the annotation) for a malformed annotation.
    """
    if "keypoints" not in note:
        raise DataError(f"{where} has no 'keypoints': it is not a person keypoints annotation "
                        "(use annotations/person_keypoints_*.json)")
    keypoints = np.asarray(note["keypoints"], dtype=np.float32).reshape(-1)
    if keypoints.size != 3 * NUM_JOINTS:
        raise DataError(f"{where} has {keypoints.size} keypoint values, expected "
                        f"{3 * NUM_JOINTS} (x, y, v for the {NUM_JOINTS} COCO joints)")
    box = note.get("bbox")
    if box is None or len(box) != 4:
        raise DataError(f"{where} has no 'bbox' of 4 numbers")
    if note.get("iscrowd", 0):
        return CROWD
    if float(note.get("area", 1.0)) <= 0:
        return ZERO_AREA
    if image is None or "file_name" not in image:
        raise DataError(f"{where} refers to image {note.get('image_id')}, which the file does "
                        "not list")
    # an unknown size (0, as Datumaro writes it) clips nothing
    cleaned = clean_box(box, image.get("width") or None, image.get("height") or None)
    if cleaned is None:
        return OUTSIDE
    joints = keypoints.reshape(NUM_JOINTS, 3)
    if not (joints[:, 2] > 0).any():
        return None
    return PersonLabel(cleaned, joints, int(note["id"]))
