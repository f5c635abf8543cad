"""Tiny synthetic labeling projects, one per label kind, for the tools' stage: images, their
ground truth, and the ground truth as an annotator's Label Studio results."""
from __future__ import annotations

import shutil
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
    joints: tuple[str, ...] = ()


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


def pose_scene(folder: Path) -> Scene:
    """12 images of 1-3 stick figures (tests/pose_fixtures.py); the unlabeled images' persons
    from a detections JSON. An annotator draws each person's box and its labeled joints as
    keypoints whose parentID is the box (Label Studio has no visibility: a joint is there or
    not)."""
    import json

    from active_learning.files.proposals import KEYPOINT_TAG, PERSON_LABEL, PERSON_TAG
    from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES, clean_box
    from human_pose_estimation.train import main
    from pose_fixtures import read_json, write_tiny_coco

    root = write_tiny_coco(folder.parent / "coco", train=12, val=1)
    document = read_json(root / "annotations" / "person_keypoints_train2017.json")
    files = {image["id"]: image for image in document["images"]}
    truth: dict[str, list[dict]] = {}
    for note in document["annotations"]:
        truth.setdefault(files[note["image_id"]]["file_name"], []).append(note)
    shutil.copytree(root / "images" / "train2017", folder)
    sizes = {image["file_name"]: (image["width"], image["height"]) for image in files.values()}
    boxes = folder.parent / "persons.json"
    boxes.write_text(json.dumps([{"file_name": name, "bbox": note["bbox"], "score": 0.9,
                                  "category_id": 1}
                                 for name, notes in truth.items() for note in notes]))

    def results(name: str) -> list[dict]:
        width, height = sizes[name]
        out = []
        for person, note in enumerate(truth[name]):
            x, y, w, h = note["bbox"]
            common = {"to_name": IMAGE_TAG, "original_width": width, "original_height": height,
                      "image_rotation": 0}
            out.append({"id": f"p{person}", "type": "rectanglelabels", "from_name": PERSON_TAG,
                        **common, "value": {"x": x / width * 100, "y": y / height * 100,
                                            "width": w / width * 100,
                                            "height": h / height * 100, "rotation": 0,
                                            "rectanglelabels": [PERSON_LABEL]}})
            joints = np.asarray(note["keypoints"], dtype=float).reshape(-1, 3)
            for joint, (jx, jy, visible) in enumerate(joints):
                if visible > 0:
                    out.append({"id": f"p{person}k{joint}", "type": "keypointlabels",
                                "from_name": KEYPOINT_TAG, "parentID": f"p{person}", **common,
                                "value": {"x": jx / width * 100, "y": jy / height * 100,
                                          "width": 0.5,
                                          "keypointlabels": [COCO_KEYPOINT_NAMES[joint]]}})
        return out

    def same(labels: Any, names: list[str]) -> None:
        assert sorted(labels.targets) == sorted(names) and labels.categories == ["person"]
        for name in names:
            width, height = sizes[name]
            got = sorted(labels.targets[name], key=lambda person: person.box)
            notes = [note for note in truth[name]
                     if (np.asarray(note["keypoints"]).reshape(-1, 3)[:, 2] > 0).any()]
            expected = sorted(notes, key=lambda note: clean_box(note["bbox"], width, height))
            assert len(got) == len(expected), name
            for person, note in zip(got, expected, strict=True):
                assert np.allclose(person.box, clean_box(note["bbox"], width, height),
                                   atol=1e-4), name
                joints = np.asarray(note["keypoints"], dtype=np.float32).reshape(-1, 3)
                labeled = joints[:, 2] > 0
                assert np.array_equal(person.keypoints[:, 2] > 0, labeled), name
                assert np.allclose(person.keypoints[labeled, :2], joints[labeled, :2],
                                   atol=1e-3), name

    return Scene("human_pose_estimation", "keypoints", folder, truth, ["person"], main,
                 ["--strategy", "heatmap_uncertainty", "--arch", "hrnet_w18_small",
                  "--image-size", "64,96", "--epochs", "1",
                  "--batch-size", "4", "--eval-batch-size", "8", "--no-progress", "--device",
                  "cpu", "--threads", "1", "--from-scratch", "--person-boxes", str(boxes)],
                 results, same, exports=(), initial=5, budget=4,
                 joints=COCO_KEYPOINT_NAMES)
    # No JSON-MIN: Label Studio's writes a keypoint's id and parentID only when converting to
    # YOLO (label_studio_sdk converter: is_keypoints is set in convert_to_yolo), so a joint
    # inside two persons' boxes cannot be placed; the reader refuses it, naming the joint.


# Round 1 of each task's Label Studio round trip, kept for the FiftyOne test (which runs after
# it, in file order) so that the stage trains each task's round 1 once.
FIRST_ROUNDS: dict[str, tuple[Path, Scene]] = {}

SCENES = {"classification": classification_scene, "object_detection": detection_scene,
          "segmentation": segmentation_scene, "human_pose_estimation": pose_scene}


