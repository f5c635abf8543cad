"""Top-down pose geometry: person crops, Gaussian heatmap targets, decoding, flipping.

Coordinates are continuous pixel coordinates with pixel centres at integers, in the image, in
the crop (``input_size`` = (W, H), 192 x 256 for HRNet-W32) and in the heatmap (``stride`` = 4
crop pixels per cell). Heatmap cell ``j`` covers crop pixels ``j*s .. j*s + s - 1``, so it sits
at crop coordinate ``j*s + (s - 1)/2``. With that alignment a horizontal flip of the crop is
exactly a flip of the heatmap array (``x -> W - 1 - x`` in both), and the flip test needs no
one-pixel shift (HRNet's SHIFT_HEATMAP corrects the misalignment its ``x/s`` convention has).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .coco import NUM_JOINTS

# COCO's left/right joint pairs (0-based): eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles.
FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
UPPER_BODY = tuple(range(11))
ASPECT = 3 / 4          # crop width / height
BOX_ENLARGE = 1.25


def flip_permutation(num_joints: int = NUM_JOINTS) -> list[int]:
    """The joint order after a horizontal flip: left and right swapped."""
    order = list(range(num_joints))
    for left, right in FLIP_PAIRS:
        order[left], order[right] = right, left
    return order


def box_to_centre_size(box: Sequence[float], aspect: float = ASPECT,
                       enlarge: float = BOX_ENLARGE) -> tuple[np.ndarray, np.ndarray]:
    """A person box (x, y, w, h) -> (centre [2], size [2] = (w, h)) of its crop: the box padded
    to ``aspect`` (width / height) and enlarged ``enlarge`` x, as HRNet does."""
    x, y, w, h = (float(v) for v in box)
    centre = np.array([x + w / 2, y + h / 2])
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    return centre, np.array([w, h]) * enlarge


def crop_transform(centre: np.ndarray, size: np.ndarray, output_size: Sequence[int],
                   rotation: float = 0.0) -> np.ndarray:
    """The 2 x 3 affine map from image to crop coordinates.

    The ``size`` (w, h) region around ``centre``, turned by ``rotation`` degrees (counter-
    clockwise in the crop), fills the ``output_size`` (W, H) crop.
    """
    out_w, out_h = output_size
    scale = out_w / float(size[0])
    angle = np.deg2rad(rotation)
    cos, sin = np.cos(angle), np.sin(angle)
    linear = scale * np.array([[cos, sin], [-sin, cos]])
    out_centre = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
    return np.concatenate([linear, (out_centre - linear @ centre)[:, None]], axis=1)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points [..., 2] through a 2 x 3 affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    linear_inverse = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear_inverse, (-linear_inverse @ matrix[:, 2])[:, None]], axis=1)


def crop_to_heatmap(points: np.ndarray, stride: int) -> np.ndarray:
    return (points - (stride - 1) / 2) / stride


def heatmap_to_crop(points: np.ndarray, stride: int) -> np.ndarray:
    return points * stride + (stride - 1) / 2


def encode(joints: np.ndarray, visible: np.ndarray, heatmap_size: Sequence[int],
           sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian targets of joints in heatmap coordinates.

    Args:
        joints: float [J, 2] (x, y) in heatmap coordinates.
        visible: [J], > 0 for a labeled joint (COCO v = 1 or 2).
        heatmap_size: (W, H). sigma: the Gaussian's standard deviation in heatmap cells.
    Returns:
        (heatmaps float32 [J, H, W] peaking at 1 on each joint, target weights float32 [J]: 1 for
        a labeled joint inside the heatmap, 0 otherwise, whose heatmap is all zeros).
    """
    width, height = heatmap_size
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    inside = ((joints[:, 0] >= -0.5) & (joints[:, 0] <= width - 0.5)
              & (joints[:, 1] >= -0.5) & (joints[:, 1] <= height - 0.5))
    weight = ((np.asarray(visible) > 0) & inside).astype(np.float32)
    gx = np.exp(-((xs[None, :] - joints[:, :1]) ** 2) / (2 * sigma ** 2))     # [J, W]
    gy = np.exp(-((ys[None, :] - joints[:, 1:]) ** 2) / (2 * sigma ** 2))     # [J, H]
    heatmaps = gy[:, :, None] * gx[:, None, :] * weight[:, None, None]
    return heatmaps.astype(np.float32), weight


def decode(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint positions from heatmaps: the arg-max, moved a quarter cell toward the higher neighbour.

    heatmaps [B, J, H, W] -> (coordinates float [B, J, 2] (x, y) in heatmap cells, maxima [B, J]).
    A joint whose maximum is not positive has no position: its coordinates are 0.
    """
    batch, joints, height, width = heatmaps.shape
    flat = heatmaps.reshape(batch, joints, -1).float()
    maxima, index = flat.max(dim=2)
    x = (index % width).long()
    y = torch.div(index, width, rounding_mode="floor").long()
    maps = heatmaps.float()
    coordinates = torch.stack([x, y], dim=-1).float()
    b = torch.arange(batch)[:, None].expand(batch, joints)
    j = torch.arange(joints)[None, :].expand(batch, joints)
    inner_x = (x > 0) & (x < width - 1)
    inner_y = (y > 0) & (y < height - 1)
    dx = maps[b, j, y, (x + 1).clamp(max=width - 1)] - maps[b, j, y, (x - 1).clamp(min=0)]
    dy = maps[b, j, (y + 1).clamp(max=height - 1), x] - maps[b, j, (y - 1).clamp(min=0), x]
    coordinates[..., 0] += 0.25 * torch.sign(dx) * inner_x
    coordinates[..., 1] += 0.25 * torch.sign(dy) * inner_y
    coordinates = coordinates * (maxima > 0).unsqueeze(-1)
    return coordinates, maxima


def flip_back(heatmaps: torch.Tensor) -> torch.Tensor:
    """Heatmaps of a horizontally flipped crop -> heatmaps of the crop: [B, J, H, W]."""
    return heatmaps.flip(-1)[:, flip_permutation(heatmaps.shape[1])]


def to_image(coordinates: np.ndarray, matrix: np.ndarray, stride: int) -> np.ndarray:
    """Heatmap coordinates [J, 2] of one crop -> image coordinates [J, 2]
    (``matrix``: image -> crop)."""
    return apply_affine(invert_affine(matrix), heatmap_to_crop(coordinates, stride))
