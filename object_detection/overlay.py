"""A picture of a cycle's choice: the first chosen images with the current model's detections,
drawn by the core's renderer (``active_learning.drawing.predictions``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from active_learning.drawing.predictions import Style

SHOW_SCORE = 0.3        # detections drawn: score at least this (the 5 best are drawn anyway)
MAX_BOXES = 12
GROUND_TRUTH = Style(colours=["lime"], box_text=False, line_width=2)


def draw_selection(task, units: np.ndarray, scores: np.ndarray, path: Path, *, model=None,
                   max_images: int = 6) -> None:
    """The ``max_images`` best chosen images, each with its score, the model's detections (red,
    class and confidence) and, when annotated, the ground truth (green). Written atomically."""
    from active_learning.drawing.figures import image_grid, save_figure
    from active_learning.drawing.predictions import draw_prediction
    from active_learning.files.predictions import ImagePrediction

    from .data import DetectionSet, read_image

    detections = Style(class_names=list(task.class_names), colours=["red"], line_width=2)
    shown = [int(unit) for unit in np.asarray(units)[:max_images]]
    figure, axes = image_grid(len(shown), cell=(4, 4.3))
    device = next(model.parameters()).device if model is not None else torch.device("cpu")
    for axis, index, score in zip(axes, shown, np.asarray(scores, dtype=np.float64), strict=False):
        sample = task.samples[index]
        picture = read_image(sample.image)                                     # uint8 [3, H, W]
        height, width = picture.shape[-2:]
        if sample.annotation is not None:
            picture = draw_prediction(picture, ImagePrediction(
                width, height, boxes=np.asarray(sample.annotation.boxes, dtype=np.float64)),
                GROUND_TRUTH)
        count = 0
        if model is not None:
            image, _ = DetectionSet(task.samples, [index])[0]
            batch = image[None].to(device)
            if task.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            found = task.detect(model, batch, [(height, width)])[0]
            threshold = min(SHOW_SCORE, np.sort(found["scores"])[-5:].min()
                            if len(found["scores"]) else 1.0)
            keep = np.flatnonzero(found["scores"] >= threshold)[:MAX_BOXES]
            count = len(keep)
            if count:   # the detector's labels count the background as 0
                picture = draw_prediction(picture, ImagePrediction(
                    width, height, boxes=found["boxes"][keep].astype(np.float64),
                    labels=found["labels"][keep].astype(np.int64) - 1,
                    box_scores=found["scores"][keep].astype(np.float64)), detections)
        axis.imshow(picture.permute(1, 2, 0).numpy())
        axis.set_title(f"{task.item_name(index)}  score {score:.4g}\n{count} detections (red), "
                       "ground truth (green)", fontsize=8)
    save_figure(figure, path)
