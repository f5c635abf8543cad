"""The report's thumbnails: an image at thumbnail size, with the chosen superpixels coloured by
score and the model's prediction drawn over it (``drawing/``: the same renderer as the tasks'
per-cycle pictures)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from active_learning.drawing.predictions import Style, draw_prediction
from active_learning.drawing.scores import draw_region_scores
from active_learning.files.atomic import atomic_open
from active_learning.files.predictions import ImagePrediction

THUMBNAIL_SIDE = 320
JPEG_QUALITY = 88


def render_thumbnail(image: str | os.PathLike | np.ndarray, *,
                     prediction: ImagePrediction | None = None, style: Style | None = None,
                     region_map: np.ndarray | None = None, regions: np.ndarray | None = None,
                     region_scores: np.ndarray | None = None,
                     score_range: tuple[float, float] | None = None,
                     max_side: int = THUMBNAIL_SIDE) -> Any:
    """Draw one image at thumbnail size with what the model or the selection says about it.

    Args:
        image: an image file, or uint8 [H, W, 3] / [H, W].
        prediction: the model's output on it (``drawing.predictions.draw_prediction``), in
            pixels of a ``prediction.width`` x ``prediction.height`` image: scaled to the
            thumbnail.
        style: the task's class names, colours and skeleton (default: :class:`Style`'s).
        region_map: int [H', W'] superpixel ids of the image (any size: scaled to it).
        regions: int [R] chosen region ids, filled by their ``region_scores`` (float [R]) over
            ``score_range`` (``drawing.scores.draw_region_scores``).
        max_side: the thumbnail's longer side in pixels (small images are enlarged to it).

    Returns:
        A ``PIL.Image.Image`` in RGB.
    """
    from PIL import Image

    if isinstance(image, np.ndarray):
        picture = Image.fromarray(np.asarray(image).astype(np.uint8)).convert("RGB")
    else:
        with Image.open(image) as opened:
            opened.draft("RGB", (max_side, max_side))     # JPEG: decode at a reduced size
            picture = opened.convert("RGB")
    scale = max_side / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST
    pixels = torch.from_numpy(np.array(picture.resize(size, resample))).permute(2, 0, 1)
    if region_map is not None:
        chosen = np.asarray(regions if regions is not None else [], dtype=np.int64)
        scores = (np.asarray(region_scores, dtype=np.float64) if region_scores is not None
                  else np.zeros(len(chosen)))
        pixels = draw_region_scores(pixels, region_map, chosen, scores, score_range)
    if prediction is not None:
        pixels = draw_prediction(pixels.contiguous(), prediction, style or Style())
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


def save_thumbnail(picture: Any, path: str | os.PathLike) -> None:
    """Write a thumbnail (``PIL.Image.Image``) as a JPEG, atomically."""
    with atomic_open(Path(path), "wb") as handle:
        picture.save(handle, format="JPEG", quality=JPEG_QUALITY)
