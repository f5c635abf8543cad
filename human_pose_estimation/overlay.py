"""A picture of a cycle's choice: the first chosen images with the model's predicted skeletons,
drawn by the core's renderer (``active_learning.drawing.predictions``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from active_learning.drawing.predictions import Style

from .coco import COCO_SKELETON

SHOW_CONFIDENCE = 0.2      # joints drawn: heatmap maximum above this (HRNet's in_vis_thre)
# matplotlib's tab:orange, tab:cyan and yellow
LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = (255, 127, 14), (23, 190, 207), (255, 255, 0)
SKELETON = [(a - 1, b - 1) for a, b in COCO_SKELETON]      # 0-based joint indices


def _limb_colour(a: int, b: int) -> tuple[int, int, int]:
    """COCO's odd 0-based joints are the left ones, its even ones past the nose the right."""
    if a % 2 and b % 2:
        return LEFT_COLOUR
    if a and b and not (a % 2 or b % 2):
        return RIGHT_COLOUR
    return CENTRE_COLOUR


STYLE = Style(colours=["lime"], skeleton=SKELETON,
              limb_colours=[_limb_colour(a, b) for a, b in SKELETON],
              keypoint_threshold=SHOW_CONFIDENCE, box_text=False, line_width=2)


def draw_selection(task, units: np.ndarray, scores: np.ndarray, path: Path, *, model=None,
                   max_images: int = 6) -> None:
    """The ``max_images`` best chosen images, each with its score, its person boxes (green) and
    the model's skeleton of each person (left limbs orange, right cyan). Written atomically."""
    import torch

    from active_learning.drawing.figures import image_grid, save_figure
    from active_learning.drawing.predictions import draw_prediction
    from active_learning.files.predictions import ImagePrediction

    from .data import read_rgb

    shown = [int(unit) for unit in np.asarray(units)[:max_images]]
    figure, axes = image_grid(len(shown), cell=(4.5, 4))
    persons_of = task.selection_units().samples_of
    for axis, image_index, score in zip(axes, shown, np.asarray(scores, dtype=np.float64),
                                        strict=False):
        pixels = read_rgb(task.pool.images[image_index].path)                # uint8 [H, W, 3]
        height, width = pixels.shape[:2]
        persons = persons_of(np.array([image_index]))
        boxes = np.array([task.pool.persons[k].box for k in persons],
                         dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]                                  # x, y, w, h -> x1 .. y2
        predicted = task.predict_persons(model, persons) if model is not None else None
        keypoints = None
        drawn = 0
        if predicted is not None and len(persons):
            joints, maxima = predicted                                  # [P, J, 2], [P, J]
            keypoints = np.concatenate([np.asarray(joints, dtype=np.float64),
                                        np.asarray(maxima, dtype=np.float64)[..., None]], axis=2)
            drawn = int((keypoints[..., 2] > SHOW_CONFIDENCE).sum())
        picture = torch.from_numpy(np.array(pixels)).permute(2, 0, 1)     # a writable copy
        picture = draw_prediction(picture, ImagePrediction(width, height, boxes=boxes,
                                                           keypoints=keypoints), STYLE)
        axis.imshow(picture.permute(1, 2, 0).numpy())
        if predicted is None:
            shows = "boxes (green)"
        elif drawn:
            shows = "boxes (green), predicted skeletons"
        else:   # say so rather than promise skeletons the picture does not have
            shows = f"boxes (green); no predicted joint above confidence {SHOW_CONFIDENCE}"
        axis.set_title(f"{task.item_name(image_index)}  score {score:.4g}\n{len(persons)} "
                       f"person(s): {shows}", fontsize=8)
    save_figure(figure, path)
