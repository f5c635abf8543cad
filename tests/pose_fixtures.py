"""Tiny COCO person-keypoints datasets written by the tests in the real on-disk format."""
from __future__ import annotations

import json
from pathlib import Path

from seg_fixtures import fake_items
from synthetic.coco_keypoints import KeypointSceneConfig, write_coco_keypoints

TINY_SCENES = KeypointSceneConfig(height=96, width=128, min_persons=1, max_persons=3, min_person_height=40,
                                  max_person_height=90, min_clutter=0, max_clutter=1)


def write_tiny_coco(root: Path, train: int = 12, val: int = 4, seed: int = 0) -> Path:
    """``root/annotations/person_keypoints_{train,val}2017.json`` and ``root/images/...``: stick
    figures (1..3 per image) over blob clutter."""
    items, _ = fake_items(seed=seed)
    write_coco_keypoints(root, {"train": items, "val": items}, {"train": train, "val": val},
                         config=TINY_SCENES, seed=seed, progress=False)
    return root


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write_json(path: Path, document) -> None:
    Path(path).write_text(json.dumps(document))


TINY_ARGS = ["--arch", "hrnet_w18_small", "--image-size", "64,96", "--epochs", "1", "--batch-size", "4",
             "--eval-batch-size", "8", "--cycles", "2", "--initial-size", "4", "--images-per-cycle", "2",
             "--mc-samples", "2", "--no-progress", "--device", "cpu", "--threads", "1", "--from-scratch",
             "--no-report-map"]
