"""A picture of a cycle's choice: the chosen superpixels (coloured by score) or images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import read_image


def draw_selection(task, units: np.ndarray, scores: np.ndarray, path: Path,
                   max_images: int = 4) -> None:
    """Superpixel mode: the ``max_images`` images with the most chosen superpixels, each chosen
    one filled by its score's colour and outlined; image mode: the first chosen images with their
    scores. Written atomically as PNG."""
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
    for axis, image_index in zip(axes.ravel(), shown, strict=False):
        picture = read_image(task.samples[int(image_index)].image).astype(np.float64) / 255.0
        name = task.item_name(int(image_index))
        if regions is None:
            score = scores[list(units).index(image_index)]
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
    mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(low, high),
                                            cmap=colormap)
    figure.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.6, label="score")
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
