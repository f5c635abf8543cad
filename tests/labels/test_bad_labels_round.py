"""Bad labels never slip into a round (issue 31, item 9), through each task's ``train.py
round``: a NaN or zero-width COCO box, a mask saved as JPEG, keypoints not named as COCO's
joints are refused with one line naming the file and the entry, before anything is trained or
written."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from label_exports import cvat_coco, write_images

# Tiny runs, should a bad label get through (the code before these checks trained on it).
COMMON = ["--epochs", "1", "--batch-size", "2", "--eval-batch-size", "2", "--no-progress",
          "--device", "cpu", "--threads", "1", "--from-scratch", "--budget", "1"]


def _refused(main, argv, capsys) -> str:
    """The one ``error:`` line of a refused round (exit 2)."""
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as stop:
        code = stop.code
    else:
        code = None
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (code, err)
    return err[0]


@pytest.mark.parametrize("bbox, words", [([2.0, 3.0, math.nan, 10.0], "is not a number"),
                                         ([2.0, 3.0, 0.0, 10.0], "no area"),
                                         ([2.0, 3.0, 10.0, 0.0], "no area")])
def test_a_nan_or_zero_width_coco_box_is_refused(tmp_path, capsys, bbox, words):
    from object_detection.train import main

    images = write_images(tmp_path / "images", {f"f{i}.png": (40, 30) for i in range(4)})
    frames = [{"file_name": f"f{i}.png", "width": 40, "height": 30} for i in range(4)]
    export = cvat_coco(tmp_path / "cvat", ["car"], frames,
                       [{"image": 0, "label": "car", "bbox": [1, 1, 8, 8]},
                        {"image": 1, "label": "car", "bbox": bbox}])
    assert "NaN" in export.read_text() or not math.isnan(bbox[2])
    line = _refused(main, ["round", "--images", str(images), "--labels", str(export),
                           "--workspace", str(tmp_path / "ws"), "--width", "0.0625",
                           *COMMON], capsys)
    assert words in line and str(export) in line and "annotation 2" in line and "f1.png" in line
    assert not (tmp_path / "ws").exists()


def test_a_mask_saved_as_jpeg_is_refused_not_skipped(tmp_path, capsys):
    from segmentation.train import main

    images = write_images(tmp_path / "images", {f"f{i}.png": (24, 16) for i in range(4)})
    export = tmp_path / "masks"
    export.mkdir()
    (export / "classes.txt").write_text("background\nroad\n")
    classes = np.zeros((16, 24), dtype=np.uint8)
    classes[8:] = 1
    Image.fromarray(classes).save(export / "f0.png")
    Image.fromarray(classes * 100).convert("RGB").save(export / "f1.jpg")
    line = _refused(main, ["round", "--images", str(images), "--labels", str(export),
                           "--workspace", str(tmp_path / "ws"), "--width", "0.125",
                           *COMMON], capsys)
    assert "f1.jpg" in line and "must be a PNG" in line
    assert not (tmp_path / "ws").exists()


def test_keypoints_not_named_as_coco_joints_are_refused(tmp_path, capsys):
    from human_pose_estimation.train import main

    images = write_images(tmp_path / "images", {f"f{i}.png": (64, 48) for i in range(4)})
    frames = [{"file_name": f"f{i}.png", "width": 64, "height": 48} for i in range(4)]
    joints = np.tile([20.0, 20.0, 2.0], 17).tolist()
    export = cvat_coco(tmp_path / "cvat", ["person"], frames,
                       [{"image": 0, "label": "person", "bbox": [5, 5, 30, 30],
                         "keypoints": joints}], keypoints=[str(n) for n in range(1, 18)])
    boxes = tmp_path / "persons.json"
    boxes.write_text(json.dumps([{"file_name": "f1.png", "bbox": [5, 5, 30, 30],
                                  "score": 0.9, "category_id": 1}]))
    line = _refused(main, ["round", "--images", str(images), "--labels", str(export),
                           "--workspace", str(tmp_path / "ws"), "--person-boxes", str(boxes),
                           "--arch", "hrnet_w18_small", "--image-size", "64,96", *COMMON],
                  capsys)
    assert "names its keypoints 1, 2, 3, 4, ..." in line and "person" in line
    assert str(export) in line
    assert not (tmp_path / "ws").exists()
