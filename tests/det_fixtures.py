"""Tiny Pascal VOC datasets written by the tests in the real on-disk format."""
from __future__ import annotations

from pathlib import Path

from seg_fixtures import fake_items
from synthetic.scenes import SceneConfig
from synthetic.voc import write_voc

TINY_VOC_SCENES = SceneConfig(height=64, width=80, min_items=1, max_items=3, min_size=16, max_size=32,
                              threshold=40)


def write_tiny_voc(root: Path, trainval: int = 14, test: int = 5, seed: int = 0) -> Path:
    """``root/VOC2007`` with ``trainval`` and ``test`` scenes of blob items, and ``root/classes.txt``."""
    items = fake_items(seed=seed)
    write_voc(root, {"trainval": items, "test": items}, {"trainval": trainval, "test": test},
              config=TINY_VOC_SCENES, seed=seed, progress=False)
    return root


TINY_ARGS = ["--no-report-map", "--train-sets", "2007:trainval", "--width", "0.0625", "--from-scratch", "--epochs", "1", "--batch-size", "4",
             "--eval-batch-size", "4", "--cycles", "2", "--initial-size", "4", "--images-per-cycle", "2",
             "--mc-samples", "2", "--no-progress", "--device", "cpu", "--threads", "1"]
