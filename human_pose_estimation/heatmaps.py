"""Top-down pose geometry: person crops, Gaussian heatmap targets, decoding, flipping.

Coordinates are continuous pixel coordinates with pixel centres at integers, in the image, in
the crop (``input_size`` = (W, H), 192 x 256 for HRNet-W32) and in the heatmap (``stride`` = 4
crop pixels per cell). Two conventions place the heatmap on the crop (``CONVENTIONS``):

* ``"hrnet"`` (the default; deep-high-resolution-net.pytorch, lib/dataset/JointsDataset.py
  ``generate_target``, lib/core/inference.py ``get_final_preds``, lib/utils/transforms.py): the
  crop's centre pixel is ``(W/2, H/2)``; heatmap cell ``j`` stands for crop pixel ``j*s``; a target
  is a Gaussian centred on the *nearest* cell, cut to a ``3 sigma`` window, and weighs 1 when its
  joint is labeled and the window touches the map; a decoded arg-max moves a quarter cell toward
  the higher neighbour on both axes only when ``1 < x < w-1 and 1 < y < h-1``; a horizontal flip
  maps crop ``x`` to ``W - x``, and the flip test shifts the flipped heatmaps one cell right
  (SHIFT_HEATMAP), since a flipped map is off by most of a cell in this convention.
* ``"aligned"`` (an option): cell ``j`` sits at the centre of the ``s`` crop pixels it covers,
  crop ``j*s + (s - 1)/2``, and the crop's centre pixel is ``((W-1)/2, (H-1)/2)``. A horizontal
  flip (``x -> W - 1 - x``) of the crop is then exactly a flip of the heatmap array, so the flip
  test needs no shift; targets are Gaussians at the joint's sub-cell position (no rounding to a
  cell, no window), weighing 1 when the labeled joint lies on the map; the quarter-cell move is
  made on each axis where both neighbours exist.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from active_learning.labels.keypoints import NUM_JOINTS

# COCO's left/right joint pairs (0-based): eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles.
FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
UPPER_BODY = tuple(range(11))
ASPECT = 3 / 4          # crop width / height
BOX_ENLARGE = 1.25
CONVENTIONS = ("hrnet", "aligned")


def _check(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"heatmap convention must be one of {CONVENTIONS}, got {convention!r}")


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
                   rotation: float = 0.0, convention: str = "hrnet") -> np.ndarray:
    """The 2 x 3 affine map from image to crop coordinates.

    The ``size`` (w, h) region around ``centre``, turned by ``rotation`` degrees (counter-
    clockwise in the crop), fills the ``output_size`` (W, H) crop; ``centre`` goes to crop
    ``(W/2, H/2)`` (``"hrnet"``, its get_affine_transform) or ``((W-1)/2, (H-1)/2)``
    (``"aligned"``).
    """
    _check(convention)
    out_w, out_h = output_size
    scale = out_w / float(size[0])
    angle = np.deg2rad(rotation)
    cos, sin = np.cos(angle), np.sin(angle)
    linear = scale * np.array([[cos, sin], [-sin, cos]])
    half = 0.0 if convention == "hrnet" else 0.5
    out_centre = np.array([out_w / 2 - half, out_h / 2 - half])
    return np.concatenate([linear, (out_centre - linear @ centre)[:, None]], axis=1)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points [..., 2] through a 2 x 3 affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    linear_inverse = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear_inverse, (-linear_inverse @ matrix[:, 2])[:, None]], axis=1)


def flip_transform(width: int, convention: str = "hrnet") -> np.ndarray:
    """The 2 x 3 map of a horizontal flip of a crop ``width`` pixels wide: ``x -> W - x``
    (``"hrnet"``: what flipping the image before cropping does there, lib/utils/transforms.py
    ``fliplr_joints`` and the flipped centre) or ``x -> W - 1 - x`` (``"aligned"``: the pixel array
    mirrored)."""
    _check(convention)
    return np.array([[-1.0, 0.0, width - (convention == "aligned")], [0.0, 1.0, 0.0]])


def crop_to_heatmap(points: np.ndarray, stride: int, convention: str = "hrnet") -> np.ndarray:
    """Crop coordinates [..., 2] -> heatmap cells: ``x / s`` (hrnet) or ``(x - (s-1)/2) / s``."""
    _check(convention)
    return points / stride if convention == "hrnet" else (points - (stride - 1) / 2) / stride


def heatmap_to_crop(points: np.ndarray, stride: int, convention: str = "hrnet") -> np.ndarray:
    """Heatmap cells [..., 2] -> crop coordinates (the inverse of :func:`crop_to_heatmap`)."""
    _check(convention)
    return points * stride if convention == "hrnet" else points * stride + (stride - 1) / 2


def encode(joints: np.ndarray, visible: np.ndarray, heatmap_size: Sequence[int],
           sigma: float, convention: str = "hrnet") -> tuple[np.ndarray, np.ndarray]:
    """Gaussian targets of joints in heatmap coordinates.

    Args:
        joints: float [J, 2] (x, y) in heatmap coordinates.
        visible: [J], > 0 for a labeled joint (COCO v = 1 or 2).
        heatmap_size: (W, H). sigma: the Gaussian's standard deviation in heatmap cells.
        convention: ``"hrnet"``: HRNet's ``generate_target``: the centre is the cell
            ``mu = int(x + 0.5)`` (Python's int, toward zero), the Gaussian is cut to the cells
            ``int(mu - 3 sigma) <= x < int(mu + 3 sigma + 1)``, and a labeled joint weighs 1 unless
            that window lies wholly off the map (so a joint just outside the map keeps a partial
            Gaussian). ``"aligned"``: a Gaussian at the sub-cell position, uncut, weight 1 for a
            labeled joint within half a cell of the map.
    Returns:
        (heatmaps float32 [J, H, W] peaking at 1 on each joint, target weights float32 [J]: 0 for
        an unlabeled joint or one off the map, whose heatmap is all zeros).
    """
    _check(convention)
    width, height = heatmap_size
    joints = np.asarray(joints, dtype=np.float64)
    labeled = np.asarray(visible) > 0
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    if convention == "aligned":
        inside = ((joints[:, 0] >= -0.5) & (joints[:, 0] <= width - 0.5)
                  & (joints[:, 1] >= -0.5) & (joints[:, 1] <= height - 0.5))
        weight = (labeled & inside).astype(np.float32)
        gx = np.exp(-((xs[None, :] - joints[:, :1]) ** 2) / (2 * sigma ** 2))     # [J, W]
        gy = np.exp(-((ys[None, :] - joints[:, 1:]) ** 2) / (2 * sigma ** 2))     # [J, H]
    else:
        radius = sigma * 3                              # HRNet's tmp_size
        mu = np.trunc(joints + 0.5)                     # int(x / stride + 0.5)
        upper_left = np.trunc(mu - radius)              # int(mu - tmp_size)
        bottom_right = np.trunc(mu + radius + 1)        # int(mu + tmp_size + 1), exclusive
        touches = ((upper_left[:, 0] < width) & (upper_left[:, 1] < height)
                   & (bottom_right[:, 0] >= 0) & (bottom_right[:, 1] >= 0))
        weight = (labeled & touches).astype(np.float32)
        # the window's own Gaussian: its centre cell (size // 2) lands on map cell upper_left +
        # size // 2 (that is mu, except where int() truncated a negative corner toward zero)
        size = 2 * radius + 1
        centre = upper_left + size // 2                                          # [J, 2]
        length = len(np.arange(0, size, 1))                            # the window's cells
        grids = []
        for axis, cells in ((0, xs), (1, ys)):
            offset = cells[None, :] - upper_left[:, axis:axis + 1]               # [J, W or H]
            window = ((offset >= 0) & (offset < length)
                      & (cells[None, :] < bottom_right[:, axis:axis + 1]))
            grids.append(np.exp(-((cells[None, :] - centre[:, axis:axis + 1]) ** 2)
                                / (2 * sigma ** 2)) * window)
        gx, gy = grids
    heatmaps = gy[:, :, None] * gx[:, None, :] * weight[:, None, None]
    return heatmaps.astype(np.float32), weight


def decode(heatmaps: torch.Tensor,
           convention: str = "hrnet") -> tuple[torch.Tensor, torch.Tensor]:
    """Joint positions from heatmaps: the arg-max, moved a quarter cell toward the higher neighbour.

    heatmaps [B, J, H, W] -> (coordinates float [B, J, 2] (x, y) in heatmap cells, maxima [B, J]).
    A joint whose maximum is not positive has no position: its coordinates are 0. The move is
    made, as in HRNet's ``get_final_preds``, on both axes only when ``1 < x < W-1`` and
    ``1 < y < H-1`` (``"hrnet"``), or on each axis where the cell has both neighbours on it,
    ``0 < x < W-1`` (``"aligned"``).
    """
    _check(convention)
    batch, joints, height, width = heatmaps.shape
    flat = heatmaps.reshape(batch, joints, -1).float()
    maxima, index = flat.max(dim=2)
    x = (index % width).long()
    y = torch.div(index, width, rounding_mode="floor").long()
    maps = heatmaps.float()
    coordinates = torch.stack([x, y], dim=-1).float()
    b = torch.arange(batch)[:, None].expand(batch, joints)
    j = torch.arange(joints)[None, :].expand(batch, joints)
    if convention == "hrnet":
        inner_x = inner_y = (x > 1) & (x < width - 1) & (y > 1) & (y < height - 1)
    else:
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


def shift_right(heatmaps: torch.Tensor) -> torch.Tensor:
    """HRNet's SHIFT_HEATMAP: every column moved one cell right, the first kept as it was
    (``out[..., 1:] = in[..., :-1]``): [B, J, H, W]."""
    return torch.cat([heatmaps[..., :1], heatmaps[..., :-1]], dim=-1)


def to_image(coordinates: np.ndarray, matrix: np.ndarray, stride: int,
             convention: str = "hrnet") -> np.ndarray:
    """Heatmap coordinates [J, 2] of one crop -> image coordinates [J, 2]
    (``matrix``: image -> crop)."""
    return apply_affine(invert_affine(matrix), heatmap_to_crop(coordinates, stride, convention))
