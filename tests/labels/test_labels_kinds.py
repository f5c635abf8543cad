"""Label kinds: a task declares what its labels are, and the core's readers and writers serve
any declared kind. A fifth kind (instance masks) declared here, with nothing of the core
edited, is detected, read from a COCO export and written as Label Studio pre-annotations."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from active_learning.errors import ConfigError
from active_learning.files.proposals import (
    IMAGE_TAG,
    ImagePrediction,
    LabelStudioTags,
    Results,
    brush_rle,
    write_proposals,
)
from active_learning.labels import detect_format, read_labels
from active_learning.labels.coco import CocoImage, CocoReading
from active_learning.labels.kinds import BUILT_IN, LabelKind, label_kind
from label_exports import cvat_coco, rle_counts, write_images

H, W = 12, 16


def _instance_categories(categories: list[dict], expected: list[str] | None,
                         source: str) -> tuple[list[str], dict[int, int]]:
    return [c["name"] for c in categories], {c["id"]: k for k, c in enumerate(categories)}


def _instances(notes: list[dict], classes: dict[int, int], image: CocoImage
               ) -> tuple[list[tuple[int, np.ndarray]], bytes]:
    """One (class, bool [H, W] mask) per annotation, in the file's order."""
    found = [(classes[note["category_id"]], image.coco.annToMask(note).astype(bool))
             for note in notes]
    return found, b"".join(mask.tobytes() for _, mask in found)


def _config(class_names, keypoint_names):
    return [f'  <BrushLabels name="instance" toName="{IMAGE_TAG}">',
            *(f'    <Label value="{name}"/>' for name in class_names), "  </BrushLabels>"]


def _results(prediction: ImagePrediction, out: Results) -> None:
    """One brush per instance: ``mask`` int [H, W] holds instance k + 1 of class ``labels[k]``."""
    for k, label in enumerate(prediction.labels):
        out.results.append({"id": out.new_id(), "type": "brushlabels", "from_name": "instance",
                            **out.common,
                            "value": {"format": "rle", "rle": brush_rle(prediction.mask == k + 1),
                                      "brushlabels": [out.class_name(int(label))]}})


INSTANCES = LabelKind("instances", ("coco",), LabelStudioTags(_config, _results),
                      CocoReading("instances_", _instance_categories, _instances))


def _export(tmp_path):
    first, second = np.zeros((H, W), bool), np.zeros((H, W), bool)
    first[1:5, 2:6], second[6:10, 8:14] = True, True
    notes = [{"image": 0, "label": "car", "bbox": [2, 1, 4, 4],
              "segmentation": {"counts": rle_counts(first), "size": [H, W]}},
             {"image": 0, "label": "car", "bbox": [8, 6, 6, 4],
              "segmentation": {"counts": rle_counts(second), "size": [H, W]}}]
    path = cvat_coco(tmp_path / "cvat", ["car", "bus"],
                     [{"file_name": "a.jpg", "width": W, "height": H}], notes)
    return path, first, second


def test_a_kind_the_core_does_not_know_is_detected_and_read_with_its_own_hooks(tmp_path):
    photos = write_images(tmp_path / "photos", {"a.jpg": (W, H)})
    path, first, second = _export(tmp_path)
    assert detect_format(INSTANCES, tmp_path / "cvat") == "coco"
    labels = read_labels(INSTANCES, tmp_path / "cvat", photos)
    assert labels.kind == "instances" and labels.format == "coco"
    assert labels.categories == ["car", "bus"]
    [(car, mask_a), (car_too, mask_b)] = labels.targets["a.jpg"]
    assert car == car_too == 0
    np.testing.assert_array_equal(mask_a, first)
    np.testing.assert_array_equal(mask_b, second)
    # the same export read as the built-in mask kind paints one class map instead
    painted = read_labels("mask", path, photos).targets["a.jpg"].train_ids()
    assert set(np.unique(painted)) == {0, 1}
    with pytest.raises(ConfigError, match="cannot label instances labels; choose one of coco"):
        read_labels(INSTANCES, path, photos, labels_format="voc")


def test_a_kind_brings_its_own_label_studio_tags(tmp_path):
    instances = np.zeros((H, W), np.int64)
    instances[2:4, 2:4], instances[6:9, 1:3] = 1, 2
    prediction = ImagePrediction(W, H, labels=np.array([1, 0]), mask=instances)
    files = write_proposals(tmp_path / "out", INSTANCES.label_studio, ["a.jpg"], [0.5],
                            ["car", "bus"], predictions={"a.jpg": prediction})
    config = ET.fromstring(files.label_studio_config.read_text())
    assert [tag.get("name") for tag in config] == ["image", "instance"]
    [task] = json.loads(files.label_studio_tasks.read_text())
    bus, car = task["predictions"][0]["result"]
    assert bus["from_name"] == car["from_name"] == "instance"
    assert (bus["value"]["brushlabels"], car["value"]["brushlabels"]) == (["bus"], ["car"])
    assert bus["original_width"] == W and bus["value"]["rle"] == brush_rle(instances == 1)


def test_built_in_kinds_are_found_by_name_and_a_task_name_is_not_a_kind():
    assert label_kind("boxes") is BUILT_IN["boxes"] and label_kind(INSTANCES) is INSTANCES
    assert set(BUILT_IN) == {"class", "boxes", "mask", "keypoints"}
    for task in ("object_detection", "tracking"):
        with pytest.raises(ConfigError, match="unknown label kind"):
            label_kind(task)


def test_every_task_declares_its_kind():
    from classification.train import COMMAND as classification
    from human_pose_estimation.train import COMMAND as pose
    from object_detection.train import COMMAND as detection
    from segmentation.train import COMMAND as segmentation

    declared = [(classification, "class"), (detection, "boxes"), (segmentation, "mask"),
                (pose, "keypoints")]
    for command, kind in declared:
        assert label_kind(command.label_kind).name == kind
