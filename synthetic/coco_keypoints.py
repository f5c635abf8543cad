"""Stick-figure scenes in the COCO person-keypoints format: the CPU benchmark of the pose task.

A scene (192 x 256 by default) is the textured street background of :mod:`synthetic.scenes` with
Fashion-MNIST items as clutter, and 0..4 articulated stick figures: the 17 COCO joints in COCO
order, a random pose (lean, arm and leg angles, elbow and knee bends, head turn), random limb
lengths, thickness and colours. A figure's left limbs are drawn darker than its right ones, as a
real person's left and right differ in appearance, so that left and right are learnable and the
flip test's joint swap matters.

Joint visibility follows COCO: ``v = 2`` visible; ``v = 1`` labeled but occluded (a later figure or
a clutter item drawn over the joint); ``v = 0`` not labeled (outside the image), written as
``(0, 0, 0)``. A person's ``bbox`` is the extent of its drawn pixels inside the image, its
``area`` half the box's (a person's silhouette fills about half its box in COCO, and OKS reads
``area`` as the object's scale); figures with no labeled joint are not written.

Layout (as HRNet's ``data/coco``): ``<root>/images/{train2017,val2017}/000000xxxxxx.jpg`` and
``<root>/annotations/person_keypoints_{train,val}2017.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES
from human_pose_estimation.coco import COCO_SKELETON

from .scenes import SceneConfig, _background

# Limbs drawn as thick lines: (joint a, joint b), 0-based.
_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12),
          (5, 11), (6, 12))
_LEFT = frozenset((1, 3, 5, 7, 9, 11, 13, 15))


@dataclass
class KeypointSceneConfig:
    height: int = 192
    width: int = 256
    min_persons: int = 0
    max_persons: int = 4
    min_person_height: int = 60      # pixels from head top to ankles, before pose shortening
    max_person_height: int = 170
    min_clutter: int = 1
    max_clutter: int = 4


@dataclass
class Figure:
    """One drawn person: joints float [17, 2] (x, y in pixels), visibility int
    [17], box (x, y, w, h)."""

    joints: np.ndarray
    visibility: np.ndarray
    box: tuple[float, float, float, float]


def _rotate(angle: float) -> np.ndarray:
    """The unit vector at ``angle`` radians from straight down (image y grows downwards)."""
    return np.array([np.sin(angle), np.cos(angle)])


def random_pose(rng: np.random.Generator, height: float,
                centre: np.ndarray) -> tuple[np.ndarray, float]:
    """The 17 joints of a random pose of a person about ``height`` pixels tall, hips at ``centre``.

    Returns (joints float [17, 2], head radius). The person faces the camera: its left is the
    image's right.
    """
    unit = height / 7.5                                   # a head height, classic proportions

    def limb(base: float) -> float:
        return base * unit * rng.uniform(0.85, 1.15)      # every limb its own length

    lean = rng.normal(0.0, 0.15)
    up = -_rotate(lean)                                   # the torso's direction, hips to neck
    side = np.array([-up[1], up[0]])                      # towards the person's left (image right)
    joints = np.zeros((17, 2))
    hip_half, shoulder_half = limb(0.55), limb(0.8)
    neck = centre + up * limb(2.6)
    joints[11], joints[12] = centre + side * hip_half, centre - side * hip_half
    joints[5], joints[6] = neck + side * shoulder_half, neck - side * shoulder_half
    # Angles from straight down, positive towards the image's right; ``sign`` mirrors the right
    # side.
    for shoulder, elbow, wrist, sign in ((5, 7, 9, 1.0), (6, 8, 10, -1.0)):
        upper = lean + sign * rng.uniform(-0.3, 2.6)      # from hanging down to raised overhead
        joints[elbow] = joints[shoulder] + _rotate(upper) * limb(1.4)
        joints[wrist] = joints[elbow] + _rotate(upper + sign * rng.uniform(-0.4, 1.8)) * limb(1.2)
    for hip, knee, ankle, sign in ((11, 13, 15, 1.0), (12, 14, 16, -1.0)):
        thigh = lean + sign * rng.uniform(-0.15, 0.7)
        joints[knee] = joints[hip] + _rotate(thigh) * limb(1.9)
        bend = rng.uniform(0.0, 0.9) if rng.random() < 0.6 else 0.0
        joints[ankle] = joints[knee] + _rotate(thigh - sign * bend) * limb(1.8)
    head_radius = 0.45 * unit
    head = neck + up * unit
    turn = rng.uniform(-0.6, 0.6)                          # head turn: the face shifts sideways
    joints[0] = head + side * turn * head_radius * 0.6
    for eye, ear, sign in ((1, 3, 1.0), (2, 4, -1.0)):
        joints[eye] = head + up * 0.25 * head_radius + side * (sign * 0.35
                                                               + turn * 0.6) * head_radius
        joints[ear] = head + side * (sign * 0.95 + turn * 0.3) * head_radius
    return joints, head_radius


def _draw_figure(mask_draw, joints: np.ndarray, head_radius: float, thickness: int,
                 value: int = 1) -> None:
    """Rasterise limbs and head into a PIL ``ImageDraw`` of a mode-L mask."""
    for a, b in _LIMBS:
        mask_draw.line([tuple(joints[a]), tuple(joints[b])], fill=value, width=thickness)
    centre = (joints[3] + joints[4]) / 2                  # the head, between the ears
    mask_draw.ellipse([centre[0] - head_radius, centre[1] - head_radius,
                       centre[0] + head_radius, centre[1] + head_radius], fill=value)
    neck = (joints[5] + joints[6]) / 2
    mask_draw.line([tuple(neck), tuple(centre)], fill=value, width=thickness)


def compose_keypoint_scene(rng: np.random.Generator, items: np.ndarray,
                           config: KeypointSceneConfig) -> tuple[np.ndarray, list[Figure]]:
    """One scene: (image uint8 [H, W, 3], the figures with at least one labeled joint)."""
    from PIL import Image, ImageDraw

    h, w = config.height, config.width
    image, _ = _background(rng, SceneConfig(height=h, width=w))
    owner = np.full((h, w), -1, dtype=np.int32)  # which layer (figure or clutter) shows at a pixel
    # joints, head r, mask, in-frame
    layers: list[tuple[np.ndarray, float, np.ndarray, np.ndarray]] = []
    n_persons = int(rng.integers(config.min_persons, config.max_persons + 1))
    n_clutter = int(rng.integers(config.min_clutter, config.max_clutter + 1))
    kinds = rng.permutation(["person"] * n_persons + ["clutter"] * n_clutter)
    for layer, kind in enumerate(kinds):
        if kind == "clutter":
            size = int(rng.integers(24, 72))
            item = np.asarray(Image.fromarray(items[int(rng.integers(len(items)))]).resize(
                (size, size), Image.BILINEAR), dtype=np.float64)
            top = int(rng.integers(-size // 4, h - size // 2))
            left = int(rng.integers(-size // 4, w - size // 2))
            rows = slice(max(0, top), min(h, top + size))
            cols = slice(max(0, left), min(w, left + size))
            patch = item[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
            silhouette = patch > 40
            shade = rng.uniform(0.5, 1.0, 3)
            image[rows, cols][silhouette] = (patch[..., None] * shade)[silhouette]
            owner[rows, cols][silhouette] = layer
            continue
        height = rng.uniform(config.min_person_height, config.max_person_height)
        centre = np.array([rng.uniform(-0.1, 1.1) * w, rng.uniform(0.35, 1.0) * h])
        joints, head_radius = random_pose(rng, height, centre)
        thickness = max(2, int(round(height / rng.uniform(18, 30))))
        mask_image = Image.new("L", (w, h), 0)
        _draw_figure(ImageDraw.Draw(mask_image), joints, head_radius, thickness)
        mask = np.asarray(mask_image) > 0
        if mask.sum() < 30:
            continue
        colour = rng.uniform(40, 255, 3)
        left_image = Image.new("L", (w, h), 0)   # the left limbs, drawn darker
        draw = ImageDraw.Draw(left_image)
        for a, b in _LIMBS:
            if a in _LEFT and b in _LEFT:
                draw.line([tuple(joints[a]), tuple(joints[b])], fill=1, width=thickness)
        left = np.asarray(left_image) > 0
        image[mask] = colour
        image[mask & left] = colour * 0.45
        owner[mask] = layer
        in_frame = ((joints[:, 0] >= 0) & (joints[:, 0] <= w - 1)
                    & (joints[:, 1] >= 0) & (joints[:, 1] <= h - 1))
        layers.append((joints, layer, mask, in_frame))
    figures = []
    for joints, layer, mask, in_frame in layers:
        if not in_frame.any():
            continue
        xs = np.clip(np.rint(joints[:, 0]).astype(int), 0, w - 1)
        ys = np.clip(np.rint(joints[:, 1]).astype(int), 0, h - 1)
        covered = owner[ys, xs] > layer                   # something drawn later sits on the joint
        visibility = np.where(in_frame, np.where(covered, 1, 2), 0)
        rows, cols = np.nonzero(mask)
        x1, y1, x2, y2 = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
        figures.append(Figure(np.where(in_frame[:, None], joints, 0.0), visibility,
                              (float(x1), float(y1), float(x2 - x1), float(y2 - y1))))
    return image.round().astype(np.uint8), figures


def categories() -> list[dict]:
    return [{"supercategory": "person", "id": 1, "name": "person",
             "keypoints": list(COCO_KEYPOINT_NAMES),
             "skeleton": [list(pair) for pair in COCO_SKELETON]}]


def annotation(figure: Figure, annotation_id: int, image_id: int) -> dict:
    keypoints = np.concatenate([figure.joints, figure.visibility[:, None]], axis=1)   # [17, 3]
    x, y, bw, bh = figure.box
    return {"id": annotation_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [round(v, 2) for v in (x, y, bw, bh)], "area": round(0.5 * bw * bh, 2),
            "num_keypoints": int((figure.visibility > 0).sum()),
            "keypoints": [round(float(v), 2) if i % 3 < 2 else int(v)
                          for i, v in enumerate(keypoints.reshape(-1))],
            "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]}


def write_coco_keypoints(root: str | Path, items: dict[str, np.ndarray], counts: dict[str, int], *,
                         config: KeypointSceneConfig | None = None, seed: int = 0,
                         progress: bool = True) -> dict[str, dict[str, int]]:
    """Write ``counts[split]`` scenes for the splits ``train`` and ``val`` (as ``*2017``).

    Clutter of split s comes from ``items[s]`` (Fashion-MNIST images [N, 28, 28]); scene k of a
    split has its own seed (``seed``, split, k). Image ids run on across splits.
    Returns per split the number of images and of persons written.
    """
    from PIL import Image

    from active_learning.files.atomic import atomic_write_text

    root = Path(root)
    config = config or KeypointSceneConfig()
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    written, next_image, next_annotation = {}, 1, 1
    for split_index, (split, count) in enumerate(counts.items()):
        folder = root / "images" / f"{split}2017"
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        indices = range(count)
        if progress:
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc=f"{split} scenes", leave=False)
        for index in indices:
            rng = np.random.default_rng([seed, split_index, index])
            pixels, figures = compose_keypoint_scene(rng, items[split], config)
            name = f"{next_image:012d}.jpg"
            Image.fromarray(pixels).save(folder / name, quality=92)
            images.append({"id": next_image, "file_name": name, "height": config.height,
                           "width": config.width})
            for figure in figures:
                annotations.append(annotation(figure, next_annotation, next_image))
                next_annotation += 1
            next_image += 1
        document = {"info": {"description": "Fashion-MNIST stick-figure scenes (synthetic)"},
                    "images": images, "annotations": annotations, "categories": categories()}
        atomic_write_text(root / "annotations" / f"person_keypoints_{split}2017.json",
                          json.dumps(document))
        written[split] = {"images": len(images), "persons": len(annotations)}
    return written
