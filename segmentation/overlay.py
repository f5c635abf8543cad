"""A picture of a cycle's choice: the chosen superpixels (coloured by score), or the chosen
images with the model's per-pixel uncertainty over them."""
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

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    from active_learning.files.atomic import atomic_open

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
    colormap = matplotlib.colormaps["magma"]
    columns = 2
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(10, 2.8 * rows), squeeze=False, dpi=100)
    for axis in axes.ravel():
        axis.axis("off")
    entropies = {}
    if regions is None and model is not None:
        entropies = {int(index): _pixel_entropy(task, model, int(index)) for index in shown}
        low = 0.0
        high = max([float(np.log(task.num_classes))] + [float(m.max()) for m in entropies.values()])
    for axis, image_index in zip(axes.ravel(), shown, strict=False):
        picture = read_image(task.samples[int(image_index)].image).astype(np.float64) / 255.0
        name = task.item_name(int(image_index))
        if regions is None:
            score = scores[list(units).index(image_index)]
            if int(image_index) in entropies:
                shade = colormap(entropies[int(image_index)] / max(high, 1e-12))[..., :3]
                picture = 0.4 * picture + 0.6 * shade
            axis.imshow(picture)
            axis.set_title(f"{name}\nscore {score:.4f}", fontsize=7)
            continue
        region_map = task.region_map(int(image_index))
        chosen = images == image_index
        value = np.full(int(region_map.max()) + 1, np.nan)
        value[regions[chosen]] = scores[chosen]
        per_pixel = value[region_map]                                     # NaN outside the chosen
        picked = ~np.isnan(per_pixel)
        shade = colormap((np.nan_to_num(per_pixel) - low) / max(high - low, 1e-12))[..., :3]
        blended = np.where(picked[..., None], 0.45 * picture + 0.55 * shade, 0.6 * picture)
        blended[find_boundaries(region_map, mode="inner")] = (0.85, 0.85, 0.85)
        blended[find_boundaries(np.where(picked, region_map, -1),
                                mode="inner") & picked] = (0.2, 1.0, 0.2)
        axis.imshow(blended)
        axis.set_title(f"{name}: {int(chosen.sum())} superpixels chosen", fontsize=7)
    if regions is not None or entropies:
        mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(low, high),
                                                cmap=colormap)
        label = "score" if regions is not None else "entropy of the prediction per pixel (nats)"
        figure.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.6, label=label)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)


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
