"""Top-down person crops with Gaussian heatmap targets (one sample = one person).

Training augments as HRNet does (lib/dataset/JointsDataset.py ``__getitem__``, its COCO YAML
values): with probability 0.3 a half-body crop when more than 8 joints are labeled (see
:func:`half_body`), the crop's size scaled by ``clip(N(1, 0.35), 0.65, 1.35)``, rotated by
``clip(N(0, 45), -90, 90)`` degrees with probability 0.6, flipped with probability 0.5 (left and
right joints swapped).

A sample is ``(image float32 [3, H, W] normalised, target)``; ``target`` holds ``heatmaps``
float32 [J, h, w], ``weight`` float32 [J] (0 for an unlabeled joint or one off the heatmap; see
``heatmaps.encode`` for each convention), ``matrix`` float64 [2, 3] (image -> crop) and ``index``
(the person's index in its list).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from active_learning.labels.keypoints import NUM_JOINTS

from .coco import DataError, PoseData
from .heatmaps import (
    UPPER_BODY,
    box_to_centre_size,
    crop_to_heatmap,
    crop_transform,
    encode,
    flip_permutation,
    flip_transform,
)

IMAGE_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGE_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# HRNet picks the upper body when ``np.random.randn() < 0.5``: a standard normal draw, so with
# probability Phi(0.5) = 0.6915, not 0.5 (JointsDataset.half_body_transform).
HRNET_UPPER_BODY_PROBABILITY = 0.5 * (1 + math.erf(0.5 / math.sqrt(2)))


@dataclass
class Augmentation:
    """HRNet's COCO training augmentation (DATASET.* in its YAML; the half-body fields are its
    NUM_JOINTS_HALF_BODY, PROB_HALF_BODY, the 1.5 enlargement and the upper-body draw)."""

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_probability: float = 0.6
    flip: bool = True
    half_body_probability: float = 0.3
    half_body_min_joints: int = 8
    upper_body_probability: float = HRNET_UPPER_BODY_PROBABILITY
    half_body_enlarge: float = 1.5


def half_body(keypoints: np.ndarray, aspect: float, upper_first: bool,
              enlarge: float = 1.5) -> tuple[np.ndarray, np.ndarray] | None:
    """HRNet's half-body crop (JointsDataset.half_body_transform) of one person, or None.

    keypoints float [J, 3] (x, y, v). The labeled joints split into the upper body (COCO joints
    0-10) and the lower (11-16). ``upper_first`` (HRNet's draw) takes the upper body when it holds
    more than 2 labeled joints; otherwise the lower body is taken when it holds more than 2, else
    the upper; fewer than 2 joints in the part taken is no crop (None). The crop is centred on the
    mean of the part's joints, spans their extent padded to ``aspect`` (w / h) and ``enlarge``
    times it: (centre [2], size [2] = (w, h)) in image pixels.
    """
    labeled = keypoints[:, 2] > 0
    upper = np.zeros(len(keypoints), dtype=bool)
    upper[list(UPPER_BODY)] = True
    upper_joints, lower_joints = keypoints[labeled & upper, :2], keypoints[labeled & ~upper, :2]
    if upper_first and len(upper_joints) > 2:
        chosen = upper_joints
    else:
        chosen = lower_joints if len(lower_joints) > 2 else upper_joints
    if len(chosen) < 2:
        return None
    chosen = chosen.astype(np.float64)
    width, height = chosen.max(axis=0) - chosen.min(axis=0)
    if width > aspect * height:
        height = width / aspect
    elif width < aspect * height:
        width = height * aspect
    return chosen.mean(axis=0), np.array([width, height]) * enlarge


def read_rgb(path) -> np.ndarray:
    """uint8 [H, W, 3]; a missing or corrupt file is a DataError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as error:
        raise DataError(f"cannot read image {path}: {error}") from None


class PoseSet(Dataset):
    """The persons ``data.persons[indices]`` as crops of ``input_size`` (W, H).

    Args:
        data: images and persons. indices: which persons (default: all).
        input_size: crop (W, H). stride: crop pixels per heatmap cell. sigma: heatmap Gaussian.
        augmentation: training augmentation (None: a plain crop, for scoring and evaluation).
        flip: always flip (the flip test's second view).
        convention: how heatmap cells sit on the crop (``heatmaps.CONVENTIONS``).
    """

    def __init__(self, data: PoseData, indices: Sequence[int] | None = None, *,
                 input_size: Sequence[int] = (192, 256), stride: int = 4, sigma: float = 2.0,
                 augmentation: Augmentation | None = None, flip: bool = False,
                 convention: str = "hrnet") -> None:
        self.data = data
        self.indices = (list(range(len(data.persons))) if indices is None
                        else [int(i) for i in indices])
        self.input_size = tuple(int(v) for v in input_size)
        self.stride, self.sigma = stride, sigma
        self.heatmap_size = (self.input_size[0] // stride, self.input_size[1] // stride)
        self.augmentation = augmentation
        self.flip = flip     # always flip (the flip test's second view)
        self.convention = convention
        self.aspect = self.input_size[0] / self.input_size[1]

    def with_indices(self, indices: Sequence[int]) -> PoseSet:
        """A view of the persons ``indices`` with the same crops and augmentation."""
        return PoseSet(self.data, indices, input_size=self.input_size, stride=self.stride,
                       sigma=self.sigma, augmentation=self.augmentation, flip=self.flip,
                       convention=self.convention)

    def __len__(self) -> int:
        return len(self.indices)

    def _augment(self, centre: np.ndarray, size: np.ndarray, keypoints: np.ndarray | None,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float, bool]:
        augmentation = self.augmentation
        if (keypoints is not None
                and (keypoints[:, 2] > 0).sum() > augmentation.half_body_min_joints
                and rng.random() < augmentation.half_body_probability):
            part = half_body(keypoints, self.aspect,
                             rng.random() < augmentation.upper_body_probability,
                             augmentation.half_body_enlarge)
            if part is not None:
                centre, size = part
        size = size * np.clip(rng.normal(1.0, augmentation.scale_factor),
                              1 - augmentation.scale_factor, 1 + augmentation.scale_factor)
        rotation = 0.0
        if rng.random() < augmentation.rotation_probability:
            rotation = float(np.clip(rng.normal(0.0, augmentation.rotation_factor),
                                     -2 * augmentation.rotation_factor,
                                     2 * augmentation.rotation_factor))
        flip = augmentation.flip and rng.random() < 0.5
        return centre, size, rotation, flip

    def __getitem__(self, position: int):
        import cv2

        index = self.indices[position]
        person = self.data.persons[index]
        image = read_rgb(self.data.images[person.image].path)
        centre, size = box_to_centre_size(person.box, self.aspect)
        rotation, flip = 0.0, self.flip
        if self.augmentation is not None:
            rng = np.random.default_rng([index, int(torch.randint(0, 2 ** 31, ()).item())])
            centre, size, rotation, flip = self._augment(centre, size, person.keypoints, rng)
        matrix = crop_transform(centre, size, self.input_size, rotation, self.convention)
        keypoints = (person.keypoints if person.keypoints is not None
                     else np.zeros((NUM_JOINTS, 3), np.float32))
        visible = keypoints[:, 2].copy()
        if flip:   # the mirror is part of the crop's map: the image is sampled mirrored
            matrix = flip_transform(self.input_size[0], self.convention) @ np.vstack(
                [matrix, [0, 0, 1]])
        crop = cv2.warpAffine(image, matrix, self.input_size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        joints = keypoints[:, :2] @ matrix[:, :2].T + matrix[:, 2]       # crop coordinates [J, 2]
        if flip:
            order = flip_permutation(len(joints))
            joints, visible = joints[order], visible[order]
        heatmaps, weight = encode(crop_to_heatmap(joints, self.stride, self.convention), visible,
                                  self.heatmap_size, self.sigma, self.convention)
        pixels = (crop.astype(np.float32) / 255.0 - IMAGE_MEAN) / IMAGE_STD
        tensor = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
        return tensor, {"heatmaps": torch.from_numpy(heatmaps), "weight": torch.from_numpy(weight),
                        "matrix": torch.from_numpy(matrix), "index": index}


def collate(batch):
    """Stack crops and targets: (images [B, 3, H, W], {heatmaps [B, J, h, w], weight [B, J],
    matrix [B, 2, 3], index int64 [B]})."""
    images = torch.stack([image for image, _ in batch])
    targets = {key: torch.stack([target[key] for _, target in batch])
               for key in ("heatmaps", "weight", "matrix")}
    targets["index"] = torch.tensor([target["index"] for _, target in batch], dtype=torch.int64)
    return images, targets
