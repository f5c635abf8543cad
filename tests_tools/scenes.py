"""Tiny synthetic labeling projects, one per label kind, for the tools' stage: images, their
ground truth, and the ground truth as an annotator's Label Studio results."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from active_learning.files.proposals import BOX_TAG, CHOICE_TAG, IMAGE_TAG, MASK_TAG


@dataclass
class Scene:
    """A tiny synthetic labeling project of one label kind: ``truth`` name -> ground truth in
    pixels (the task's own form); ``results(name)`` the ground truth as an annotator's Label
    Studio results; ``same(labels, names)`` checks that labels read back are the truth."""

    task: str
    kind: str
    images: Path
    truth: dict[str, Any]
    classes: list[str]
    main: Callable[[list[str]], Path]
    flags: list[str]
    results: Callable[[str], list[dict]]
    same: Callable[..., None]
    exports: tuple[str, ...] = ("JSON_MIN",)
    initial: int = 6
    budget: int = 5


def classification_scene(folder: Path) -> Scene:
    from classification.train import main

    rng = np.random.default_rng(0)
    truth = {}
    for index in range(24):
        bright = index % 2
        pixels = rng.integers(0, 100, size=(20, 20, 3)) + 150 * bright
        name = f"part{index // 12}/img {index:02d}.png"        # a space: URL-quoted in tasks
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / name)
        truth[name] = "bright" if bright else "dark"

    def results(name: str) -> list[dict]:
        return [{"type": "choices", "from_name": CHOICE_TAG, "to_name": IMAGE_TAG,
                 "value": {"choices": [truth[name]]}}]

    def same(labels: Any, names: list[str]) -> None:
        assert {name: labels.categories[target] for name, target in labels.targets.items()} \
            == {name: truth[name] for name in names}

    return Scene("classification", "class", folder, truth, ["bright", "dark"], main,
                 ["--strategy", "entropy", "--width", "2", "--epochs", "1", "--batch-size", "8",
                  "--image-size", "16",
                  "--no-progress", "--threads", "1"], results, same)


DET_W, DET_H = 160, 120      # wider than 100 px: a box in pixels leaves the 0..100 percent


def detection_scene(folder: Path) -> Scene:
    from object_detection.train import main

    classes = ["bar", "square"]
    rng = np.random.default_rng(1)
    truth = {}
    for index in range(14):
        pixels = rng.integers(0, 60, size=(DET_H, DET_W, 3)).astype(np.uint8)
        objects = []
        for _ in range(1 + index % 2):
            label = int(rng.integers(0, 2))
            w, h = (40, 12) if label == 0 else (24, 24)
            x, y = int(rng.integers(0, DET_W - w)), int(rng.integers(0, DET_H - h))
            pixels[y:y + h, x:x + w] = 200 + 40 * label
            objects.append((classes[label], (x, y, x + w, y + h)))
        name = f"cam{index % 2}/frame_{index:02d}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name)
        truth[name] = objects

    def results(name: str) -> list[dict]:
        return [{"id": f"gt{k}", "type": "rectanglelabels", "from_name": BOX_TAG,
                 "to_name": IMAGE_TAG, "original_width": DET_W, "original_height": DET_H,
                 "image_rotation": 0,
                 "value": {"x": x1 / DET_W * 100, "y": y1 / DET_H * 100,
                           "width": (x2 - x1) / DET_W * 100, "height": (y2 - y1) / DET_H * 100,
                           "rotation": 0, "rectanglelabels": [label]}}
                for k, (label, (x1, y1, x2, y2)) in enumerate(truth[name])]

    def same(labels: Any, names: list[str], pixel: float = 0.0) -> None:
        assert sorted(labels.targets) == sorted(names)
        for name in names:
            target = labels.targets[name]
            got = sorted((labels.categories[int(label) - 1], tuple(box.tolist()))
                         for label, box in zip(target.labels, target.boxes, strict=True))
            expected = sorted((label, box) for label, box in truth[name])
            assert [label for label, _ in got] == [label for label, _ in expected], name
            difference = np.subtract([box for _, box in expected], [box for _, box in got])
            # exact but for float noise; Label Studio's VOC export truncates each coordinate
            # to a whole pixel (int(), label_studio_sdk converter.convert_to_voc): 7 may
            # come back as 6 when 5.8333..% of 120 is 6.9999...
            assert ((difference >= -1e-4) & (difference <= pixel + 1e-4)).all(), (name, got)

    return Scene("object_detection", "boxes", folder, truth, classes, main,
                 ["--strategy", "entropy", "--width", "0.0625", "--from-scratch", "--epochs",
                  "1", "--batch-size", "4",
                  "--eval-batch-size", "4", "--no-progress", "--device", "cpu", "--threads",
                  "1", "--min-prediction-score", "0"], results, same,
                 exports=("JSON_MIN", "COCO", "VOC"), initial=4, budget=4)


SEG_W, SEG_H = 48, 32


def segmentation_scene(folder: Path) -> Scene:
    """14 images: a road band at the bottom, a car square above it (class maps: background 0,
    car 1, road 2); an annotator paints each class with Label Studio's brush (the SDK's own
    RLE encoder, in the driver)."""
    from segmentation.train import main

    classes = ["background", "car", "road"]
    rng = np.random.default_rng(2)
    truth = {}
    for index in range(14):
        labels = np.zeros((SEG_H, SEG_W), dtype=np.int64)
        labels[24:] = 2
        x, y = int(rng.integers(0, SEG_W - 10)), int(rng.integers(0, 14))
        labels[y:y + 10, x:x + 10] = 1
        colours = np.array([[0, 0, 0], [255, 0, 0], [128, 64, 128]])[labels]
        noise = rng.integers(0, 40, size=colours.shape)
        name = f"street/img_{index:02d}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(colours + noise, 0, 255).astype(np.uint8)).save(folder / name)
        truth[name] = labels

    def results(name: str) -> list[dict]:
        return [{"id": f"gt{k}", "type": "brushlabels", "from_name": MASK_TAG,
                 "to_name": IMAGE_TAG, "original_width": SEG_W, "original_height": SEG_H,
                 "image_rotation": 0,
                 "value": {"mask": (truth[name] == k).astype(int).tolist(),
                           "brushlabels": [classes[k]]}}
                for k in (1, 2)]

    def same(labels: Any, names: list[str]) -> None:
        assert sorted(labels.targets) == sorted(names)
        assert labels.categories == classes
        for name in names:
            assert np.array_equal(labels.targets[name].train_ids(), truth[name]), name

    return Scene("segmentation", "mask", folder, truth, classes, main,
                 ["--strategy", "entropy", "-s", "0", "--width", "0.125", "--epochs", "1",
                  "--batch-size", "4", "--eval-batch-size", "4", "--no-progress", "--device",
                  "cpu", "--threads", "1", "--from-scratch"], results, same, initial=4,
                 budget=4)


SCENES = {"classification": classification_scene, "object_detection": detection_scene,
          "segmentation": segmentation_scene}


