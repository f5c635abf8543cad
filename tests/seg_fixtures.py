"""Tiny segmentation datasets written by the tests in the real on-disk formats."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from synthetic.cityscapes import write_cityscapes
from synthetic.scenes import SceneConfig

TINY_SCENES = SceneConfig(height=32, width=64, min_items=2, max_items=4, min_size=10, max_size=22,
                          threshold=40)


def fake_items(count: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blobs standing in for Fashion-MNIST items: (uint8 [N, 28, 28], labels int64 [N])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    items = np.zeros((count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    for index, label in enumerate(labels):
        radius = 6 + label % 5
        inside = (yy - 14) ** 2 + ((xx - 14) * (1 + label / 10)) ** 2 < radius ** 2
        items[index][inside] = 120 + 12 * label
    return items, labels


def write_tiny_cityscapes(root: Path, train: int = 12, val: int = 4, seed: int = 0) -> Path:
    items = fake_items(seed=seed)
    write_cityscapes(root, {"train": items, "val": items}, {"train": train, "val": val},
                     config=TINY_SCENES, seed=seed, cities_per_split=2, progress=False)
    return root


TINY_ARGS = ["train", "-s", "0", "--width", "0.125", "--epochs", "1", "--batch-size", "4",
             "--eval-batch-size", "4", "--cycles", "2", "--initial-size", "4", "--images-per-cycle", "2",
             "--superpixels-per-cycle", "6", "--superpixels-per-image", "12", "--mc-samples", "2",
             "--no-progress", "--device", "cpu"]
