"""A picture of a cycle's choice: the chosen superpixels (coloured by score), or the chosen
images with the model's per-pixel uncertainty over them; the overlays are the core's
(``active_learning.drawing.scores``), as on the report's thumbnails."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import read_image


def draw_selection(task, units: np.ndarray, scores: np.ndarray, path: Path,
                   max_images: int = 4, model=None) -> None:
    """Superpixel mode: the ``max_images`` images with the most chosen superpixels, each chosen
    one filled by its score's colour and outlined (the colour bar: the score). Image mode: the
    first chosen images, each with ``model``'s per-pixel entropy over it (the colour bar: that
    entropy; without a model, the images and their scores alone). Written atomically as PNG."""
    import matplotlib
    import torch

    from active_learning.drawing.figures import image_grid, save_figure
    from active_learning.drawing.scores import (
        SCORE_COLOURMAP,
        draw_pixel_scores,
        draw_region_scores,
    )

    units, scores = np.asarray(units), np.asarray(scores, dtype=np.float64)
    if task.superpixels:
        region_units = task.selection_units()
        images, regions = region_units.image_and_region(units)
        touched, counts = np.unique(images, return_counts=True)
        shown = touched[np.argsort(-counts, kind="stable")][:max_images]
    else:
        images, regions = units, None
        shown = units[:max_images * 2]
    low, high = float(scores.min()), float(scores.max())
    figure, axes = image_grid(len(shown), cell=(5, 2.8), columns=2)
    entropies = {}
    if regions is None and model is not None:
        entropies = {int(index): _pixel_entropy(task, model, int(index)) for index in shown}
        low = 0.0
        high = max([float(np.log(task.num_classes))] + [float(m.max()) for m in entropies.values()])
    for axis, image_index in zip(axes, shown, strict=False):
        picture = torch.from_numpy(read_image(task.samples[int(image_index)].image)).permute(
            2, 0, 1)                                                          # uint8 [3, H, W]
        name = task.item_name(int(image_index))
        if regions is None:
            score = scores[list(units).index(image_index)]
            if int(image_index) in entropies:
                picture = draw_pixel_scores(picture, entropies[int(image_index)], low, high)
            axis.imshow(picture.permute(1, 2, 0).numpy())
            axis.set_title(f"{name}\nscore {score:.4f}", fontsize=7)
            continue
        chosen = images == image_index
        picture = draw_region_scores(picture, task.region_map(int(image_index)),
                                     regions[chosen], scores[chosen], (low, high))
        axis.imshow(picture.permute(1, 2, 0).numpy())
        axis.set_title(f"{name}: {int(chosen.sum())} superpixels chosen", fontsize=7)
    if regions is not None or entropies:
        mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(low, high),
                                                cmap=matplotlib.colormaps[SCORE_COLOURMAP])
        label = "score" if regions is not None else "entropy of the prediction per pixel (nats)"
        figure.colorbar(mappable, ax=list(axes), shrink=0.6, label=label)
    save_figure(figure, path)


def _pixel_entropy(task, model, index: int) -> np.ndarray:
    """float [H, W]: the entropy of ``model``'s class distribution at each pixel of pool image
    ``index`` (the uncertainty the picture shows over the image)."""
    import torch

    from .data import normalize

    parameter = next(model.parameters())
    image = normalize(read_image(task.samples[index].image), task.mean, task.std)[None]
    with torch.inference_mode():
        was_training = model.training
        model.eval()
        probs = torch.softmax(model(image.to(parameter.device)).float(), dim=1)[0]   # [C, H, W]
        model.train(was_training)
    return -(probs * probs.clamp_min(1e-12).log()).sum(0).cpu().numpy()
