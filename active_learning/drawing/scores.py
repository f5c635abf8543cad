"""Scores over an image: chosen superpixels filled by their score, or a per-pixel score (such
as the entropy of the model's prediction) as a heat map. Images are uint8 tensors [3, H, W]."""
from __future__ import annotations

import numpy as np
import torch

from active_learning.drawing.predictions import resize_labels

SCORE_COLOURMAP = "magma"
CHOSEN_BORDER = (0.2, 1.0, 0.2)        # a chosen region's outline: green
OTHER_BORDER = (0.85, 0.85, 0.85)      # every other region's border: light grey


def region_boundaries(region_map: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels with a 4-neighbour in another region: both sides of every border
    (skimage's ``find_boundaries(mode="thick")``), so each region's outline lies on its own
    pixels."""
    edge = np.zeros(region_map.shape, dtype=bool)
    horizontal = region_map[:, :-1] != region_map[:, 1:]
    vertical = region_map[:-1, :] != region_map[1:, :]
    edge[:, :-1] |= horizontal
    edge[:, 1:] |= horizontal
    edge[:-1, :] |= vertical
    edge[1:, :] |= vertical
    return edge


def draw_region_scores(image: torch.Tensor, region_map: np.ndarray, regions: np.ndarray,
                       scores: np.ndarray,
                       score_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Chosen superpixels over ``image`` (uint8 [3, H, W]).

    Args:
        region_map: int [H', W'] the image's superpixel ids (any size: scaled to the image).
        regions: int [R] the chosen region ids: filled by their ``scores`` (float [R]) on the
            magma colour map over ``score_range`` (default: their own range), outlined green;
            every other region is dimmed and its border drawn grey.

    Returns:
        uint8 [3, H, W].
    """
    import matplotlib

    height, width = image.shape[-2:]
    pixels = image.permute(1, 2, 0).numpy().astype(np.float64) / 255.0
    ids = resize_labels(region_map, (width, height))
    region_ids = np.asarray(regions, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != region_ids.shape:
        raise ValueError(f"{len(region_ids)} regions but {values.size} region scores")
    chosen = np.isin(ids, region_ids)
    low, high = score_range if score_range is not None else (
        (float(values.min()), float(values.max())) if values.size else (0.0, 1.0))
    lookup = dict(zip(region_ids.tolist(), values.tolist(), strict=True))
    present, inverse = np.unique(ids, return_inverse=True)
    value = np.array([lookup.get(int(region), np.nan) for region in present])
    per_pixel = value[inverse.reshape(ids.shape)]                      # NaN outside the chosen
    shade = matplotlib.colormaps[SCORE_COLOURMAP](
        np.clip((np.nan_to_num(per_pixel) - low) / max(high - low, 1e-12), 0, 1))[..., :3]
    pixels = np.where(chosen[..., None], 0.45 * pixels + 0.55 * shade, 0.7 * pixels)
    pixels[region_boundaries(ids)] = OTHER_BORDER
    pixels[region_boundaries(np.where(chosen, ids, -1)) & chosen] = CHOSEN_BORDER
    return _to_image(pixels)


def draw_pixel_scores(image: torch.Tensor, values: np.ndarray, low: float,
                      high: float) -> torch.Tensor:
    """``image`` (uint8 [3, H, W]) under a heat map of ``values`` (float [H, W]) on the magma
    colour map over ``low .. high`` (60 % map, 40 % image). Returns uint8 [3, H, W]."""
    import matplotlib

    pixels = image.permute(1, 2, 0).numpy().astype(np.float64) / 255.0
    shade = matplotlib.colormaps[SCORE_COLOURMAP](
        np.clip((np.asarray(values, dtype=np.float64) - low) / max(high - low, 1e-12), 0, 1)
    )[..., :3]
    return _to_image(0.4 * pixels + 0.6 * shade)


def _to_image(pixels: np.ndarray) -> torch.Tensor:
    """float [H, W, 3] in 0..1 -> uint8 [3, H, W]."""
    values = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return torch.from_numpy(values).permute(2, 0, 1).contiguous()
