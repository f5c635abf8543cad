"""What a label costs an annotator, and what the one-click (dominant-label) annotator gives.

**Clicks** (Cai et al., CVPR 2021, "Revisiting superpixels for active learning in semantic
segmentation with realistic annotation costs"; the formula below is this project's, fixed before
any grid and never tuned):

* a superpixel labeled with its dominant class (``--region-label dominant``) costs **1 click**;
* a label map drawn with polygons (a whole image, and ``--region-label exact``'s partial masks)
  costs the vertices of its polygons: for each class of the map (the ignore label excluded), for
  each 8-connected region of that class, the vertices of OpenCV's ``cv2.approxPolyDP`` at
  epsilon = 1 px (closed) over the region's **outer** contour (``cv2.findContours`` with
  ``RETR_CCOMP``, every contour point kept, the contours without a parent: the outer boundary
  of every region, including a region that lies in a hole of another region of the same
  class, as a class-1 island in a class-2 square in a class-1 ring). Holes are **not**
  counted: a hole of one class is a region of another class (or of the ignore label), whose
  own polygon draws it, as annotation tools layer polygons (Cityscapes' polygons are
  depth-ordered). A one-pixel region costs 1 click.

**Pixels**: the pixels that received a class (ignore-label pixels not counted).

The **dominant-label oracle** (:func:`dominant_labels`): every pixel of a chosen superpixel gets
the superpixel's majority ground-truth class; pixels whose ground truth is the ignore label stay
ignored. The vote counts the ignore label as a candidate: when most of a superpixel is ignore
(void), the annotator's one click says "void" and the whole superpixel stays ignored (the click
is still paid). Ties go to the smallest class id, a class before the ignore label.
"""
from __future__ import annotations

import numpy as np

from .data import IGNORE

POLYGON_EPSILON = 1.0   # px: cv2.approxPolyDP's tolerance (fixed before any grid: never tune)


def polygon_clicks(mask: np.ndarray, ignore: int = IGNORE) -> int:
    """Clicks to draw ``mask`` (int [H, W] class ids, ``ignore`` = no label) with polygons.

    The sum, over each class present (``ignore`` excluded) and each 8-connected region of it,
    of the vertices ``cv2.approxPolyDP(contour, 1.0, closed=True)`` keeps of the region's outer
    contour (see the module docstring). 0 for a mask without a labeled pixel.
    """
    import cv2  # the segmentation extra's opencv-python-headless

    mask = np.asarray(mask)
    clicks = 0
    for value in np.unique(mask):
        if value == ignore:
            continue
        binary = np.ascontiguousarray(mask == value, dtype=np.uint8)
        # RETR_CCOMP: outer boundaries (parent -1) and their holes (a parent); a region inside
        # a hole is an outer boundary again. RETR_EXTERNAL would drop such nested regions.
        contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        if not contours:
            continue
        clicks += sum(len(cv2.approxPolyDP(contour, POLYGON_EPSILON, True))
                      for contour, links in zip(contours, hierarchy[0], strict=True)
                      if links[3] == -1)
    return int(clicks)


def dominant_classes(mask: np.ndarray, region_map: np.ndarray, n_classes: int,
                     ignore: int = IGNORE) -> np.ndarray:
    """Each region's majority ground-truth class: int64 [R], ``ignore`` where void wins.

    Args:
        mask: int [H, W] class ids ``0..n_classes-1`` or ``ignore``.
        region_map: int [H, W] region ids ``0..R-1``.
    """
    mask = np.asarray(mask).ravel()
    regions = np.asarray(region_map).ravel().astype(np.int64)
    n_regions = int(regions.max()) + 1 if regions.size else 0
    # the ignore label is the last bin, so that a tie goes to a class
    bins = np.where(mask == ignore, n_classes, mask).astype(np.int64)
    counts = np.bincount(regions * (n_classes + 1) + bins,
                         minlength=n_regions * (n_classes + 1)).reshape(n_regions, n_classes + 1)
    winner = counts.argmax(axis=1)                                              # [R]
    return np.where(winner == n_classes, ignore, winner).astype(np.int64)


def dominant_labels(mask: np.ndarray, region_map: np.ndarray, chosen: np.ndarray,
                    n_classes: int, ignore: int = IGNORE) -> np.ndarray:
    """What the one-click annotator gives for the ``chosen`` regions: int64 [H, W].

    Each pixel of a chosen region gets the region's majority class (:func:`dominant_classes`),
    except pixels whose own ground truth is ``ignore``; every other pixel is ``ignore``.

    Args:
        mask: int [H, W] the ground truth; region_map: int [H, W] region ids 0..R-1;
        chosen: bool [R] the labeled regions.
    """
    mask = np.asarray(mask)
    region_map = np.asarray(region_map)
    majority = dominant_classes(mask, region_map, n_classes, ignore)           # [R]
    labeled = np.where(np.asarray(chosen, dtype=bool), majority, ignore)       # [R]
    result = labeled[region_map]
    result[mask == ignore] = ignore
    return result.astype(np.int64)
