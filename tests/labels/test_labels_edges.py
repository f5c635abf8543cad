"""Label readers' behaviours the mutation round of issue 31 found unpinned (docs/
mutation_round_31.md): each test fails on the mutant named in its comment."""
from __future__ import annotations

import json

import numpy as np
import pytest

from active_learning.errors import DataError
from active_learning.labels import read_labels
from label_exports import cvat_coco, write_images

W, H = 30, 20
IMAGE = [{"file_name": "a.jpg", "width": W, "height": H}]
SQUARE = [1, 1, 6, 1, 6, 6, 1, 6]


def test_a_csv_label_that_holds_several_labels_is_refused(tmp_path):
    # Label Studio's CSV writes a multi-choice answer as a JSON list (mutant: the check dropped)
    photos = write_images(tmp_path / "photos", {"1.jpg": (8, 8), "2.jpg": (8, 8)})
    csv = tmp_path / "labels.csv"
    csv.write_text('image,choice\n1.jpg,cat\n2.jpg,"[""cat"", ""dog""]"\n')
    with pytest.raises(DataError, match=r"labels.csv: line 3 gives several labels \(\["):
        read_labels("class", csv, photos)


def test_coco_boxes_without_iscrowd_are_not_crowds(tmp_path):
    # iscrowd is optional in COCO (mutant: an absent iscrowd read as 1, every box ignored)
    photos = write_images(tmp_path / "photos", {"a.jpg": (W, H)})
    path = cvat_coco(tmp_path / "cvat", ["car"], IMAGE,
                     [{"image": 0, "label": "car", "bbox": [1.0, 2.0, 5.0, 6.0]},
                      {"image": 0, "label": "car", "bbox": [3.0, 4.0, 5.0, 6.0], "iscrowd": 1}])
    document = json.loads(path.read_text())
    del document["annotations"][0]["iscrowd"]
    path.write_text(json.dumps(document))
    boxes = read_labels("boxes", path, photos).targets["a.jpg"]
    assert boxes.difficult.tolist() == [False, True]


def test_without_images_the_first_layout_folder_holding_every_image_is_taken(tmp_path):
    # images/default/ holds only one of the two images, default/ both (mutant: all -> any
    # takes images/default/ and then cannot find b.jpg)
    root = tmp_path / "cvat"
    write_images(root / "images" / "default", {"a.jpg": (W, H)})
    write_images(root / "default", {"a.jpg": (W, H), "b.jpg": (W, H)})
    path = cvat_coco(root, ["car"], IMAGE + [{"file_name": "b.jpg", "width": W, "height": H}],
                     [{"image": 0, "label": "car", "bbox": [1.0, 2.0, 5.0, 6.0]},
                      {"image": 1, "label": "car", "bbox": [1.0, 2.0, 5.0, 6.0]}])
    labels = read_labels("boxes", path)
    assert labels.images_dir == root / "default" and sorted(labels.targets) == ["a.jpg", "b.jpg"]


def test_a_coco_mask_export_without_a_category_of_an_earlier_round_is_refused(tmp_path):
    # masks list every category of the project (mutant: complete=False, a renamed class passes)
    photos = write_images(tmp_path / "photos", {"a.jpg": (W, H)})
    path = cvat_coco(tmp_path / "cvat", ["car", "road"], IMAGE,
                     [{"image": 0, "label": "car", "segmentation": [SQUARE]}])
    assert read_labels("mask", path, photos, categories=["background", "car"]).categories == \
        ["background", "car", "road"]
    with pytest.raises(DataError, match=r"categories changed .*gone: bike"):
        read_labels("mask", path, photos, categories=["background", "car", "bike"])


def test_keypoints_under_a_category_not_named_person_are_persons(tmp_path):
    # a tool's project may call its one category "human" (mutant: ``or`` -> ``and``: no
    # category is a person, the export reads as unlabeled)
    photos = write_images(tmp_path / "photos", {"a.jpg": (40, 50)})
    joints = np.zeros((17, 3))
    joints[:, 0], joints[:, 1], joints[:, 2] = np.arange(17) + 5, np.arange(17) + 10, 2
    from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES

    path = cvat_coco(tmp_path / "cvat", ["human"], [{"file_name": "a.jpg", "width": 40,
                                                     "height": 50}],
                     [{"image": 0, "label": "human", "bbox": [2.0, 3.0, 30.0, 40.0],
                       "keypoints": joints.reshape(-1).tolist()}],
                     keypoints=COCO_KEYPOINT_NAMES)
    labels = read_labels("keypoints", path, photos)
    assert labels.categories == ["person"] and list(labels.targets) == ["a.jpg"]
    (person,) = labels.targets["a.jpg"]
    np.testing.assert_array_equal(person.keypoints, joints)


def test_a_polygon_with_a_coordinate_that_is_no_number_is_refused(tmp_path):
    # mutant: all -> any, a polygon with one number passes and fails later with a traceback
    photos = write_images(tmp_path / "photos", {"a.jpg": (W, H)})
    polygon = [1, 1, 6, "1", 6, 6]
    path = cvat_coco(tmp_path / "cvat", ["car"], IMAGE,
                     [{"image": 0, "label": "car", "segmentation": [polygon]}])
    with pytest.raises(DataError, match=r"annotation 1 \(image a.jpg\): polygon 0 has 6 "):
        read_labels("mask", path, photos)
