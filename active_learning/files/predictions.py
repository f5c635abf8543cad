"""What a model predicts for one image, in pixels of the image file: what the proposals'
pre-annotations write and the one renderer of predictions draws."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Joints shown (pre-annotated, drawn): confidence above this (HRNet's TEST.IN_VIS_THRE).
KEYPOINT_THRESHOLD = 0.2


@dataclass(frozen=True)
class ImagePrediction:
    """What the model predicts for one image, in pixels of the image file.

    Fill what the task has; leave the rest ``None``.

    Attributes:
        width, height: the image file's size in pixels (Label Studio's ``original_width`` /
            ``original_height``; every coordinate is converted to percent of these).
        boxes: float [B, 4] ``x1, y1, x2, y2`` (detections, or the persons' boxes for pose).
        labels: int [B] 0-based index into the class names (the detection task's labels count
            the background as 0: pass ``labels - 1``). Pose boxes need none.
        box_scores: float [B] each box's confidence.
        keypoints: float [P, J, 3] ``x, y, confidence`` per person and joint; person ``p`` is
            ``boxes[p]`` when boxes are given.
        mask: int [H, W] (H, W = height, width) class index per pixel; values outside
            ``0 .. C-1`` (an ignore label such as 255, or -1) are no class.
        label: classification: the predicted class index.
        confidence: classification: its probability.
    """

    width: int
    height: int
    boxes: np.ndarray | None = None
    labels: np.ndarray | None = None
    box_scores: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    mask: np.ndarray | None = None
    label: int | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width} x {self.height}")
        if self.boxes is not None:
            boxes = np.asarray(self.boxes)
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise ValueError(f"boxes must be [B, 4] x1, y1, x2, y2; got shape {boxes.shape}")
            for name in ("labels", "box_scores"):
                value = getattr(self, name)
                if value is not None and np.asarray(value).shape != (len(boxes),):
                    raise ValueError(f"{name} must be [{len(boxes)}] like boxes; got shape "
                                     f"{np.asarray(value).shape}")
        if self.keypoints is not None:
            points = np.asarray(self.keypoints)
            if points.ndim != 3 or points.shape[2] != 3:
                raise ValueError(f"keypoints must be [P, J, 3] x, y, confidence; got shape "
                                 f"{points.shape}")
            if self.boxes is not None and len(np.asarray(self.boxes)) != len(points):
                raise ValueError(f"{len(points)} persons' keypoints but "
                                 f"{len(np.asarray(self.boxes))} boxes")
        if self.mask is not None and np.asarray(self.mask).shape != (self.height, self.width):
            raise ValueError(f"mask must be [height, width] = [{self.height}, {self.width}]; got "
                             f"shape {np.asarray(self.mask).shape}")
