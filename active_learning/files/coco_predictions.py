"""The model's predictions on proposed images as a COCO annotations file: pre-annotations for
tools that import COCO (CVAT's "COCO 1.0" / "COCO Keypoints 1.0", Roboflow, FiftyOne).

One file, ``predictions_coco.json``, in the layout CVAT's own COCO export writes and its import
reads back (Datumaro's ``CocoExporter`` / ``CocoImporter``; ``labels/coco.py`` cites them):
``images`` with ids from 1, ``file_name`` the image's path under the images folder (upload
the images with those names), ``width`` and ``height``; ``categories`` from 1 in the class
order, every class listed; ``annotations`` with ids from 1, each with the model's ``score``
(COCO's results field: FiftyOne reads it as the label's ``confidence``; CVAT and Roboflow
ignore it). What an annotation holds follows what the prediction holds (never the task):

* boxes (``ImagePrediction.boxes`` and ``labels``): ``bbox`` [x, y, w, h] in pixels, clipped to
  the image, ``segmentation: []``, ``iscrowd: 0``;
* a class map (``mask``): one annotation per class present, except a class named
  ``background``: its pixels as an uncompressed RLE (``{"size": [h, w], "counts": [...]}``,
  column-major runs starting with 0s, as CVAT writes masks) with ``iscrowd: 1`` and its box;
* persons with keypoints (``keypoints``, ``boxes``): category ``person`` with the joint names
  and skeleton (1-based), ``keypoints`` [x, y, v] per joint (v 2 for a joint above the
  confidence threshold, else 0 0 0), ``num_keypoints``, the person box.

A prediction of one class per image (classification) has no COCO form: nothing is written for
it, and :meth:`CocoPredictions.write` writes no file when no image has a region.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from active_learning.files.atomic import atomic_write_text
from active_learning.files.predictions import KEYPOINT_THRESHOLD, ImagePrediction

__all__ = ["COCO_PREDICTIONS_FILE", "CocoPredictions", "uncompressed_rle"]

COCO_PREDICTIONS_FILE = "predictions_coco.json"
BACKGROUND = "background"
PERSON = "person"


def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE of a binary mask: ``{"size": [h, w], "counts": [...]}``, the
    lengths of alternating runs of 0s and 1s in column-major order, starting with 0s (a first
    count of 0 when the first pixel is set), as pycocotools' ``frPyObjects`` reads it.

    Args:
        mask: bool or int [H, W]; nonzero = inside.
    """
    binary = np.asarray(mask) != 0
    flat = binary.reshape(-1, order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.r_[0, changes, flat.size]
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(binary.shape[0]), int(binary.shape[1])], "counts": counts}


def _clip(box: Sequence[float], width: int, height: int) -> list[float] | None:
    """[x, y, w, h] of the box (x1, y1, x2, y2) clipped to the image; None when nothing of it is
    inside."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        return None
    return [x1, y1, x2 - x1, y2 - y1]


class CocoPredictions:
    """Predictions gathered image by image (:meth:`add`), written as one COCO file
    (:meth:`write`). Only the annotations are kept, never a prediction's arrays.

    Args:
        class_names: [C] the classes (a prediction's label indices; boxes and masks).
        keypoint_names: [J] the joints (persons with keypoints).
        skeleton: pairs of 0-based joint indices (persons with keypoints).
        keypoint_threshold: joints at or below this confidence are written as not labeled.
    """

    def __init__(self, class_names: Sequence[str], keypoint_names: Sequence[str] = (),
                 skeleton: Sequence[tuple[int, int]] = (),
                 keypoint_threshold: float = KEYPOINT_THRESHOLD) -> None:
        self.class_names = [str(name) for name in class_names]
        self.keypoint_names = [str(name) for name in keypoint_names]
        self.skeleton = [(int(a), int(b)) for a, b in skeleton]
        self.keypoint_threshold = keypoint_threshold
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.persons = False

    def _note(self, image_id: int, category_id: int, bbox: list[float], score: float | None,
              **extra: Any) -> None:
        note: dict[str, Any] = {"id": len(self.annotations) + 1, "image_id": image_id,
                                "category_id": category_id, "bbox": bbox,
                                "area": float(bbox[2] * bbox[3]), "iscrowd": 0,
                                "segmentation": [], **extra}
        if score is not None:
            note["score"] = float(score)
        self.annotations.append(note)

    def add(self, name: str, prediction: ImagePrediction | None) -> None:
        """The annotations of image ``name`` (its path under the images folder), or just its
        entry when there is no prediction."""
        if prediction is None:
            return
        image_id = len(self.images) + 1
        width, height = int(prediction.width), int(prediction.height)
        self.images.append({"id": image_id, "file_name": name, "width": width,
                            "height": height})
        boxes = None if prediction.boxes is None else np.asarray(prediction.boxes, dtype=float)
        scores = prediction.box_scores
        if prediction.keypoints is not None:
            self._persons(image_id, prediction, boxes, width, height)
        elif boxes is not None:
            if prediction.labels is None:
                raise ValueError("detection boxes need labels")
            for k, box in enumerate(boxes):
                clipped = _clip(box, width, height)
                if clipped is not None:
                    self._note(image_id, self._category(int(prediction.labels[k])), clipped,
                               None if scores is None else float(scores[k]))
        if prediction.mask is not None:
            self._masks(image_id, np.asarray(prediction.mask))

    def _category(self, index: int) -> int:
        if not 0 <= index < len(self.class_names):
            raise ValueError(f"label {index} is outside the {len(self.class_names)} class names")
        return index + 1

    def _masks(self, image_id: int, mask: np.ndarray) -> None:
        for index in np.unique(mask):
            if not 0 <= index < len(self.class_names) or \
                    self.class_names[int(index)].lower() == BACKGROUND:
                continue
            inside = mask == index
            rows, columns = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
            bbox = [float(columns[0]), float(rows[0]), float(columns[-1] - columns[0] + 1),
                    float(rows[-1] - rows[0] + 1)]
            self._note(image_id, self._category(int(index)), bbox, None, iscrowd=1,
                       segmentation=uncompressed_rle(inside))
            self.annotations[-1]["area"] = float(inside.sum())

    def _persons(self, image_id: int, prediction: ImagePrediction, boxes: np.ndarray | None,
                 width: int, height: int) -> None:
        points = np.asarray(prediction.keypoints, dtype=float)
        if len(self.keypoint_names) != points.shape[1]:
            raise ValueError(f"{points.shape[1]} joints but {len(self.keypoint_names)} keypoint "
                             "names")
        self.persons = True
        for person, joints in enumerate(points):
            kept = (joints[:, 2] > self.keypoint_threshold) & (joints[:, 0] >= 0) & \
                (joints[:, 0] <= width) & (joints[:, 1] >= 0) & (joints[:, 1] <= height)
            flat = np.where(kept[:, None], np.c_[joints[:, :2], np.full(len(joints), 2.0)],
                            0.0).reshape(-1)
            if boxes is not None:
                bbox = _clip(boxes[person], width, height)
            elif kept.any():
                low, high = joints[kept, :2].min(0), joints[kept, :2].max(0)
                bbox = _clip([low[0], low[1], high[0], high[1]], width, height)
            else:
                bbox = None
            if bbox is None:
                continue
            score = None if prediction.box_scores is None else float(prediction.box_scores[person])
            self._note(image_id, 1, bbox, score, keypoints=[float(v) for v in flat],
                       num_keypoints=int(kept.sum()))

    def document(self) -> dict[str, Any]:
        """The COCO file's contents."""
        if self.persons:
            categories = [{"id": 1, "name": PERSON, "supercategory": PERSON,
                           "keypoints": self.keypoint_names,
                           "skeleton": [[a + 1, b + 1] for a, b in self.skeleton]}]
        else:
            categories = [{"id": k + 1, "name": name, "supercategory": ""}
                          for k, name in enumerate(self.class_names)]
        return {"info": {"description": "the model's predictions (pre-annotations); score: its "
                                        "confidence"},
                "images": self.images, "annotations": self.annotations,
                "categories": categories}

    def write(self, path: str | os.PathLike) -> bool:
        """Write the file atomically; False (and nothing written) when no image has a box,
        mask or person (one class per image has no COCO form)."""
        if not self.annotations:
            return False
        atomic_write_text(path, json.dumps(self.document(), allow_nan=False) + "\n")
        return True
