"""Superpixel region maps and per-region aggregation of per-pixel scores.

Region maps are int32 ``[H, W]`` arrays of region ids ``0..R-1``. scikit-image computes them
(imported inside the functions, so the core still imports with torch and numpy only):

* :func:`watershed_superpixels`: watershed on the Sobel gradient of the grey image, seeded with
  about ``n_markers`` markers (the original project's choice: 100), slightly compact.
* :func:`slic_superpixels`: SLIC (k-means in colour + position space), more regular regions.

:func:`region_means` pools a score map per region with one ``bincount``, so scoring every
superpixel of an image costs O(H * W), not O(R * H * W) as a loop over regions would.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from active_learning.extras import require


def region_means(scores: np.ndarray, region_map: np.ndarray, n_regions: int | None = None,
                 counts: np.ndarray | None = None) -> np.ndarray:
    """Mean of ``scores`` over the pixels of each region.

    Args:
        scores: float [H, W] per-pixel scores.
        region_map: int [H, W] region ids 0..R-1, the same size (``np.intp`` saves a cast).
        n_regions: R (default: max id + 1). A region with no pixel gets 0.
        counts: int [R] pixels per region, when known (the map's own ``bincount``): saves
            the second pass over the map.

    Returns:
        float64 [R] mean score of each region.
    """
    scores = np.asarray(scores)
    region_map = np.asarray(region_map)
    if scores.shape != region_map.shape:
        raise ValueError(f"score map {scores.shape} and region map "
                         f"{region_map.shape} differ in size")
    labels = region_map.ravel()
    n_regions = int(labels.max()) + 1 if n_regions is None else int(n_regions)
    sums = np.bincount(labels, weights=scores.ravel(), minlength=n_regions)[:n_regions]   # [R]
    if counts is None:
        counts = np.bincount(labels, minlength=n_regions)[:n_regions]                      # [R]
    return np.divide(sums, counts, out=np.zeros(n_regions), where=np.asarray(counts) > 0)


def region_adjacency(region_map: np.ndarray) -> np.ndarray:
    """Pairs of regions that touch (4-adjacent pixels): int64 [E, 2], each pair once, the
    smaller id first, sorted. Only boundary pixels are gathered (a few % of the image)."""
    region_map = np.asarray(region_map)
    count = int(region_map.max()) + 1 if region_map.size else 0
    keys = []
    for a, b in ((region_map[:, :-1], region_map[:, 1:]), (region_map[:-1, :], region_map[1:, :])):
        differ = a != b
        first, second = a[differ].astype(np.int64), b[differ].astype(np.int64)
        keys.append(np.minimum(first, second) * count + np.maximum(first, second))
    unique = np.unique(np.concatenate(keys))
    return np.stack([unique // max(count, 1), unique % max(count, 1)], axis=1).astype(np.int64)


def _grey(image: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] (uint8 images are divided by 255)."""
    image = np.asarray(image)
    image = image / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2) if image.shape[2] <= 4 else image.mean(axis=0)
    return image


def relabel_consecutive(region_map: np.ndarray) -> np.ndarray:
    """Map the ids of a region map onto 0..R-1 (order kept), int32."""
    _, consecutive = np.unique(np.asarray(region_map), return_inverse=True)
    return consecutive.reshape(np.shape(region_map)).astype(np.int32)


def watershed_superpixels(image: np.ndarray, n_markers: int = 100,
                          compactness: float = 0.001) -> np.ndarray:
    """Watershed superpixels on the Sobel gradient: image [H, W] or [H, W, 3] -> int32 [H, W].

    The markers sit on a grid. With ``compactness=0`` (the plain watershed of the original
    project) textured images leave many 1-pixel regions behind (a marker inside a texture's
    basin); a small compactness (0.001 on [0, 1] grey levels) keeps the regions whole while
    still following edges.
    """
    filters = require("skimage.filters", "watershed superpixels")
    segmentation = require("skimage.segmentation", "watershed superpixels")

    gradient = filters.sobel(_grey(image))
    return relabel_consecutive(segmentation.watershed(gradient, markers=n_markers,
                                                      compactness=compactness))


def slic_superpixels(image: np.ndarray, n_segments: int = 100,
                     compactness: float = 10.0) -> np.ndarray:
    """SLIC superpixels: image [H, W] or [H, W, 3] -> int32 [H, W] ids 0..R-1."""
    slic = require("skimage.segmentation", "SLIC superpixels").slic

    image = np.asarray(image)
    channel_axis = -1 if image.ndim == 3 else None
    if channel_axis is None:
        image = image.astype(np.float64)
    labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0,
                  channel_axis=channel_axis)
    return relabel_consecutive(labels)


SUPERPIXEL_METHODS = {"watershed": watershed_superpixels, "slic": slic_superpixels}


def superpixels(image: np.ndarray, method: str = "watershed", n_segments: int = 100) -> np.ndarray:
    """Region map of ``image`` by ``method`` ("watershed" or "slic"), ~``n_segments`` regions."""
    if method not in SUPERPIXEL_METHODS:
        raise ValueError(f"unknown superpixel method {method!r}; known: "
                         f"{sorted(SUPERPIXEL_METHODS)}")
    return SUPERPIXEL_METHODS[method](image, n_segments)


def save_region_map(region_map: np.ndarray, path: str | os.PathLike) -> None:
    """Write a region map as a 16-bit PNG (ids up to 65,535), atomically."""
    from PIL import Image

    from active_learning.files.atomic import atomic_open

    region_map = np.asarray(region_map)
    if region_map.max() > 65535 or region_map.min() < 0:
        raise ValueError("region ids must lie in [0, 65535] to be saved as a 16-bit PNG")
    with atomic_open(Path(path), "wb") as handle:
        Image.fromarray(region_map.astype(np.uint16)).save(handle, format="PNG")


def load_region_map(path: str | os.PathLike) -> np.ndarray:
    """Read a region map written by :func:`save_region_map`: int32 [H, W]."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image).astype(np.int32)
