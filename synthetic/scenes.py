"""Scenes of Fashion-MNIST items on textured backgrounds, with per-pixel classes and instances.

A scene is ``H x W`` (128 x 256 by default, Cityscapes' 1:2 aspect): sky above a random horizon,
a band of building facades, road below, all with noise textures; then 3..8 items, each a
Fashion-MNIST photograph scaled to 20..64 px, tinted, and pasted at a random place where its
silhouette (pixels brighter than a threshold) covers what is beneath: items occlude each other.

Each Fashion-MNIST class is written as a Cityscapes class (:data:`ITEM_LABEL_IDS`): eight as
object ("thing") classes with one instance per item, two as stuff classes (no instance id), so
the scenes exercise both rules of superpixel labeling.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
# Fashion-MNIST class -> Cityscapes label id. Things (instances): person, rider, car, truck, bus,
# train, motorcycle, bicycle; stuff: traffic light, traffic sign.
ITEM_LABEL_IDS = (24, 25, 26, 27, 28, 31, 32, 33, 19, 20)
THING_LABEL_IDS = frozenset(ITEM_LABEL_IDS[:8])
ROAD, BUILDING, SKY = 7, 11, 23


@dataclass
class SceneConfig:
    height: int = 128
    width: int = 256
    min_items: int = 3
    max_items: int = 8
    min_size: int = 20
    max_size: int = 64
    threshold: int = 40        # a Fashion-MNIST pixel brighter than this belongs to the item


def load_fashion_mnist(folder: str | Path | None = None,
                       split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) of Fashion-MNIST's
    ``train`` or ``t10k`` split."""
    from active_learning.errors import DataError
    from classification.fashion_mnist import read_idx

    folder = Path(folder) if folder else FASHION_MNIST_SYSTEM_DIR
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        candidates = [folder / f"{split}-{kind}-ubyte{suffix}" for suffix in ("", ".gz")]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise DataError(f"Fashion-MNIST file missing: {candidates[1]} (install the Debian "
                            "package dataset-fashion-mnist, or pass --fashion-mnist DIR)")
        paths.append(found)
    return read_idx(paths[0]), read_idx(paths[1]).astype(np.int64)


def _texture(rng: np.random.Generator, shape: tuple[int, int], base: np.ndarray,
             amount: float) -> np.ndarray:
    """A colour ``base`` [3] with smooth and fine noise: float [h, w, 3] in 0..255."""
    h, w = shape
    coarse = rng.normal(0, 1, (max(1, h // 8) + 1, max(1, w // 8) + 1, 3))
    coarse = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
    fine = rng.normal(0, 1, (h, w, 3))
    return np.clip(base + amount * (0.7 * coarse + 0.3 * fine), 0, 255)


def _background(rng: np.random.Generator, config: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    h, w = config.height, config.width
    image = np.zeros((h, w, 3))
    labels = np.full((h, w), ROAD, dtype=np.uint8)
    horizon = int(h * rng.uniform(0.3, 0.5))
    sky = np.array([120, 160, 220]) + rng.normal(0, 15, 3)
    image[:horizon] = _texture(rng, (horizon, w), sky, 8)
    labels[:horizon] = SKY
    x = 0
    while x < w:  # facades of random widths and heights standing on the horizon
        width = int(rng.integers(w // 10, w // 4))
        top = int(horizon * rng.uniform(0.2, 0.9))
        colour = np.array([140, 110, 90]) + rng.normal(0, 25, 3)
        image[top:horizon, x:x + width] = _texture(rng, (horizon - top, min(width, w - x)),
                                                   colour, 20)
        labels[top:horizon, x:x + width] = BUILDING
        x += width
    road = np.array([90, 90, 95]) + rng.normal(0, 10, 3)
    image[horizon:] = _texture(rng, (h - horizon, w), road, 15)
    return image, labels


@dataclass
class SceneObject:
    """One pasted item as a detector sees it.

    ``box`` is the visible silhouette's extent in pixel indices, inclusive: (x1, y1, x2, y2),
    0-based. ``visible`` is the fraction of its pasted silhouette that no later item covers;
    ``truncated``: part of the item fell outside the scene.
    """

    item_class: int
    box: tuple[int, int, int, int]
    visible: float
    truncated: bool


def compose_scene(rng: np.random.Generator, items: np.ndarray, item_labels: np.ndarray,
                  config: SceneConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: (image uint8 [H, W, 3], label ids uint8 [H, W], instance ids uint16 [H, W]).

    Instance ids follow Cityscapes: ``label_id * 1000 + k`` on object items, the label id on
    stuff. Items are drawn from ``items`` [N, 28, 28] / ``item_labels`` [N] with ``rng``.
    """
    return compose_scene_with_objects(rng, items, item_labels, config)[:3]


def compose_scene_with_objects(rng: np.random.Generator, items: np.ndarray, item_labels: np.ndarray,
                               config: SceneConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             list[SceneObject]]:
    """:func:`compose_scene` plus the :class:`SceneObject` of every item still visible.

    The same ``rng`` draws give the same scene as :func:`compose_scene`.
    """
    from PIL import Image

    image, labels = _background(rng, config)
    instances = labels.astype(np.uint16)
    owner = np.full(labels.shape, -1, dtype=np.int32)        # which pasted item shows at a pixel
    pasted: list[tuple[int, int, bool]] = []    # (item class, silhouette pixels, truncated)
    count = int(rng.integers(config.min_items, config.max_items + 1))
    next_instance: dict[int, int] = {}
    for index in rng.choice(len(items), size=count, replace=False):
        size = int(rng.integers(config.min_size, config.max_size + 1))
        item = np.asarray(Image.fromarray(items[index]).resize((size, size), Image.BILINEAR),
                          dtype=np.float64)
        top = int(rng.integers(-size // 4, config.height - 3 * size // 4))
        left = int(rng.integers(-size // 4, config.width - 3 * size // 4))
        rows = slice(max(0, top), min(config.height, top + size))
        cols = slice(max(0, left), min(config.width, left + size))
        patch = item[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
        silhouette = patch > config.threshold
        if silhouette.sum() < 16:
            continue  # almost entirely outside the scene
        tint = rng.uniform(0.6, 1.0, 3)
        coloured = patch[..., None] * tint                                   # [h, w, 3]
        region = image[rows, cols]
        region[silhouette] = coloured[silhouette]
        label_id = ITEM_LABEL_IDS[int(item_labels[index])]
        labels[rows, cols][silhouette] = label_id
        owner[rows, cols][silhouette] = len(pasted)
        pasted.append((int(item_labels[index]), int(silhouette.sum()),
                       bool(int((item > config.threshold).sum()) > int(silhouette.sum()))))
        if label_id in THING_LABEL_IDS:
            next_instance[label_id] = next_instance.get(label_id, -1) + 1
            instances[rows, cols][silhouette] = label_id * 1000 + next_instance[label_id]
        else:
            instances[rows, cols][silhouette] = label_id
    objects = []
    for number, (item_class, pixels, truncated) in enumerate(pasted):
        ys, xs = np.nonzero(owner == number)
        if len(xs) == 0:
            continue  # entirely hidden by later items
        objects.append(SceneObject(item_class,
                                   (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())),
                                   len(xs) / pixels, truncated))
    return image.round().astype(np.uint8), labels, instances, objects
