"""A picture of a cycle's choice: the first chosen images with the current model's detections."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SHOW_SCORE = 0.3        # detections drawn: score at least this (the 5 best are drawn anyway)
MAX_BOXES = 12


def draw_selection(task, units: np.ndarray, scores: np.ndarray, path: Path, *, model=None,
                   max_images: int = 6) -> None:
    """The ``max_images`` best chosen images, each with its score, the model's detections (red,
    class and confidence) and, when annotated, the ground truth (green). Written atomically."""
    from torchvision.utils import draw_bounding_boxes

    from active_learning.reports.plots import image_grid, save_figure

    from .data import DetectionSet, read_image

    shown = [int(unit) for unit in np.asarray(units)[:max_images]]
    figure, axes = image_grid(len(shown), cell=(4, 4.3))
    device = next(model.parameters()).device if model is not None else torch.device("cpu")
    for axis, index, score in zip(axes, shown, np.asarray(scores, dtype=np.float64), strict=False):
        sample = task.samples[index]
        picture = read_image(sample.image)
        if sample.annotation is not None:
            note = sample.annotation
            picture = draw_bounding_boxes(picture, torch.from_numpy(note.boxes), colors="lime",
                                          width=2)
        count = 0
        if model is not None:
            image, _ = DetectionSet(task.samples, [index])[0]
            batch = image[None].to(device)
            if task.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            found = task.detect(model, batch, [tuple(picture.shape[-2:])])[0]
            threshold = min(SHOW_SCORE, np.sort(found["scores"])[-5:].min()
                            if len(found["scores"]) else 1.0)
            keep = np.flatnonzero(found["scores"] >= threshold)[:MAX_BOXES]
            count = len(keep)
            if count:
                labels = [f"{task.class_names[found['labels'][k] - 1]} {found['scores'][k]:.2f}"
                          for k in keep]
                picture = draw_bounding_boxes(picture, torch.from_numpy(found["boxes"][keep]),
                                              labels=labels, colors="red", width=2)
        axis.imshow(picture.permute(1, 2, 0).numpy())
        axis.set_title(f"{task.item_name(index)}  score {score:.4g}\n{count} detections (red), "
                       "ground truth (green)", fontsize=8)
    save_figure(figure, path)
