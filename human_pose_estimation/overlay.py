"""A picture of a cycle's choice: the first chosen images with the model's predicted skeletons."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .coco import COCO_SKELETON

SHOW_CONFIDENCE = 0.2      # joints drawn: heatmap maximum above this (HRNet's in_vis_thre)
LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = "tab:orange", "tab:cyan", "yellow"


def draw_selection(task, units: np.ndarray, scores: np.ndarray, path: Path, *, model=None,
                   max_images: int = 6) -> None:
    """The ``max_images`` best chosen images, each with its score, its person boxes (green) and
    the model's skeleton of each person (left limbs orange, right cyan). Written atomically."""
    import matplotlib.pyplot as plt

    from active_learning.reports.plots import image_grid, save_figure

    from .data import read_rgb

    shown = [int(unit) for unit in np.asarray(units)[:max_images]]
    figure, axes = image_grid(len(shown), cell=(4.5, 4))
    persons_of = task.selection_units().samples_of
    for axis, image_index, score in zip(axes, shown, np.asarray(scores, dtype=np.float64),
                                        strict=False):
        axis.imshow(read_rgb(task.pool.images[image_index].path))
        persons = persons_of(np.array([image_index]))
        predicted = task.predict_persons(model, persons) if model is not None else None
        drawn = 0
        for number, person_index in enumerate(persons):
            x, y, w, h = task.pool.persons[person_index].box
            axis.add_patch(plt.Rectangle((x, y), w, h, fill=False, edgecolor="lime", linewidth=1))
            if predicted is None:
                continue
            joints, maxima = predicted[0][number], predicted[1][number]
            for a, b in COCO_SKELETON:
                a, b = a - 1, b - 1
                if maxima[a] > SHOW_CONFIDENCE and maxima[b] > SHOW_CONFIDENCE:
                    colour = (LEFT_COLOUR if a % 2 and b % 2
                              else RIGHT_COLOUR if a and b and not (a % 2 or b % 2)
                              else CENTRE_COLOUR)
                    axis.plot(joints[[a, b], 0], joints[[a, b], 1], color=colour, linewidth=1.5)
            confident = maxima > SHOW_CONFIDENCE
            drawn += int(confident.sum())
            axis.scatter(joints[confident, 0], joints[confident, 1], s=6, c="red", zorder=3)
        if predicted is None:
            shows = "boxes (green)"
        elif drawn:
            shows = "boxes (green), predicted skeletons"
        else:   # say so rather than promise skeletons the picture does not have
            shows = f"boxes (green); no predicted joint above confidence {SHOW_CONFIDENCE}"
        axis.set_title(f"{task.item_name(image_index)}  score {score:.4g}\n{len(persons)} "
                       f"person(s): {shows}", fontsize=8)
    save_figure(figure, path)
