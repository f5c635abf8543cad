"""The model's predictions as a COCO file (CVAT's COCO 1.0 layout, with scores), read back
with pycocotools and with the project's own COCO reader."""
from __future__ import annotations

import json

import numpy as np
import pytest

from active_learning.files.coco_predictions import CocoPredictions, uncompressed_rle
from active_learning.files.predictions import ImagePrediction

mask_utils = pytest.importorskip("pycocotools.mask")


@pytest.mark.parametrize("first", [False, True])
def test_uncompressed_rle_is_column_major_and_starts_with_zeros(first):
    mask = np.zeros((3, 4), dtype=bool)
    mask[1:3, 1] = True          # column 1, rows 1..2
    mask[0, 3] = True
    mask[0, 0] = first
    rle = uncompressed_rle(mask)
    # column-major: col0 = [first,0,0], col1 = [0,1,1], col2 = [0,0,0], col3 = [1,0,0]
    expected = [0, 1, 3, 2, 3, 1, 2] if first else [4, 2, 3, 1, 2]
    assert rle == {"size": [3, 4], "counts": expected}
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 3, 4))
    assert np.array_equal(decoded.astype(bool), mask)


def test_boxes_masks_and_persons_become_coco_annotations(tmp_path):
    coco = CocoPredictions(["background", "car", "bus"], keypoint_names=["nose", "eye"],
                           skeleton=[(0, 1)])
    coco.add("a/one.png", ImagePrediction(40, 30, boxes=np.array([[-5.0, 2.0, 10.0, 12.0],
                                                                  [50.0, 0.0, 60.0, 5.0]]),
                                          labels=np.array([2, 1]),
                                          box_scores=np.array([0.9, 0.5])))
    coco.add("none.png", None)
    mask = np.zeros((30, 40), dtype=np.int64)
    mask[5:10, 20:30] = 1
    mask[0, 0] = 255
    coco.add("two.png", ImagePrediction(40, 30, mask=mask))
    document = coco.document()
    assert [image["file_name"] for image in document["images"]] == ["a/one.png", "two.png"]
    assert [c["name"] for c in document["categories"]] == ["background", "car", "bus"]
    box, region = document["annotations"]          # the box outside the image is left out
    assert box["bbox"] == [0.0, 2.0, 10.0, 10.0] and box["category_id"] == 3
    assert box["score"] == 0.9 and box["image_id"] == 1 and box["iscrowd"] == 0
    assert region["category_id"] == 2 and region["iscrowd"] == 1 and region["image_id"] == 2
    assert region["bbox"] == [20.0, 5.0, 10.0, 5.0] and region["area"] == 50.0
    decoded = mask_utils.decode(mask_utils.frPyObjects(region["segmentation"], 30, 40))
    assert np.array_equal(decoded.astype(bool), mask == 1)
    assert coco.write(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text()) == document
    # classification: nothing to write
    classes = CocoPredictions(["cat"])
    classes.add("c.png", ImagePrediction(8, 8, label=0, confidence=0.7))
    assert not classes.write(tmp_path / "c.json") and not (tmp_path / "c.json").exists()


def test_persons_keep_their_confident_joints(tmp_path):
    coco = CocoPredictions(["person"], keypoint_names=["nose", "eye"], skeleton=[(0, 1)])
    points = np.array([[[12.0, 8.0, 0.9], [14.0, 9.0, 0.1]]])
    coco.add("p.png", ImagePrediction(40, 30, boxes=np.array([[10.0, 5.0, 30.0, 25.0]]),
                                      keypoints=points, box_scores=np.array([0.8])))
    document = coco.document()
    (category,) = document["categories"]
    assert category["keypoints"] == ["nose", "eye"] and category["skeleton"] == [[1, 2]]
    (person,) = document["annotations"]
    assert person["keypoints"] == [12.0, 8.0, 2.0, 0.0, 0.0, 0.0]
    assert person["num_keypoints"] == 1 and person["bbox"] == [10.0, 5.0, 20.0, 20.0]
    assert person["score"] == 0.8
