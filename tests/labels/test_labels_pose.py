"""Pose labels from COCO keypoints: the official download's layout and HRNet's, CVAT's COCO
Keypoints 1.0; persons checked and cleaned exactly as the pose task's own reader does."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from active_learning.errors import DataError
from active_learning.labels import read_labels
from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES, PersonLabel
from human_pose_estimation.coco import read_split
from label_exports import cvat_coco, write_images
from pose_fixtures import write_tiny_coco


@pytest.fixture(scope="module")
def hrnet(tmp_path_factory):
    return write_tiny_coco(tmp_path_factory.mktemp("pose") / "coco", train=5, val=1)


def _official(hrnet, tmp_path):
    """cocodataset.org's layout: train2017/ beside annotations/ (no images/ folder)."""
    root = tmp_path / "official"
    shutil.copytree(hrnet / "annotations", root / "annotations")
    shutil.copytree(hrnet / "images" / "train2017", root / "train2017")
    return root


@pytest.mark.parametrize("layout", ["hrnet", "official"])
def test_both_layouts_give_the_persons_the_pose_reader_gives(hrnet, tmp_path, layout):
    root = hrnet if layout == "hrnet" else _official(hrnet, tmp_path)
    path = root / "annotations" / "person_keypoints_train2017.json"
    labels = read_labels("keypoints", path)
    expected_folder = root / "images" / "train2017" if layout == "hrnet" else root / "train2017"
    assert labels.images_dir == expected_folder and labels.categories == ["person"]
    # the pose task's reader takes the official layout too (train2017/ beside annotations/)
    data = read_split(root, "train2017")
    assert [image.path.parent for image in data.images] == [expected_folder] * len(data.images)
    persons = [(data.images[p.image].name, p) for p in data.persons]
    got = [(name, person) for name, people in labels.targets.items() for person in people]
    assert [name for name, _ in got] == [name for name, _ in persons]
    for (_, mine), (_, theirs) in zip(got, persons):
        assert isinstance(mine, PersonLabel) and mine.annotation_id == theirs.annotation_id
        np.testing.assert_allclose(mine.box, theirs.box)
        np.testing.assert_array_equal(mine.keypoints, theirs.keypoints)


def _joints(seed=0):
    rng = np.random.default_rng(seed)
    joints = np.zeros((17, 3), dtype=np.float32)
    joints[:, 0], joints[:, 1] = rng.uniform(5, 35, 17), rng.uniform(5, 45, 17)
    joints[:, 2] = rng.integers(0, 3, 17)
    joints[0, 2] = 2
    joints[joints[:, 2] == 0, :2] = 0
    return joints


def test_cvat_keypoints_export_in_another_joint_order(tmp_path):
    photos = write_images(tmp_path / "photos", {"p/a.jpg": (40, 50)})
    order = list(reversed(COCO_KEYPOINT_NAMES))        # a skeleton whose points CVAT lists reversed
    joints = _joints()
    written = joints[[COCO_KEYPOINT_NAMES.index(name) for name in order]]
    path = cvat_coco(tmp_path / "cvat", ["person"], [{"file_name": "p/a.jpg", "width": 40,
                                                      "height": 50}],
                     [{"image": 0, "label": "person", "bbox": [2.0, 3.0, 30.0, 40.0],
                       "keypoints": written.reshape(-1).tolist()}], keypoints=order)
    labels = read_labels("keypoints", path, photos)
    (person,) = labels.targets["p/a.jpg"]
    np.testing.assert_array_equal(person.keypoints, joints)       # back in COCO's order
    # HRNet's box cleaning: (x, y) kept, w - 1 and h - 1
    np.testing.assert_allclose(person.box, (2.0, 3.0, 29.0, 39.0))


def test_pose_boxes_outside_the_image_and_bad_keypoints_are_refused(tmp_path):
    photos = write_images(tmp_path / "photos", {"a.jpg": (40, 50)})
    image = [{"file_name": "a.jpg", "width": 40, "height": 50}]
    keypoints = _joints().reshape(-1).tolist()
    path = cvat_coco(tmp_path / "out", ["person"], image,
                     [{"image": 0, "label": "person", "bbox": [20, 3, 30, 40],
                       "keypoints": keypoints}], keypoints=COCO_KEYPOINT_NAMES)
    with pytest.raises(DataError, match=r"annotation 1 \(image a.jpg\): box .* leaves the 40x50"):
        read_labels("keypoints", path, photos)
    path = cvat_coco(tmp_path / "short", ["person"], image,
                     [{"image": 0, "label": "person", "bbox": [2, 3, 10, 10],
                       "keypoints": keypoints[:48]}], keypoints=COCO_KEYPOINT_NAMES[:16])
    with pytest.raises(DataError, match=r"annotation 1 \(image a.jpg\) has 48 keypoint values, "
                                        "expected 51"):
        read_labels("keypoints", path, photos)


def test_persons_without_labeled_keypoints_leave_the_image_unlabeled(tmp_path):
    photos = write_images(tmp_path / "photos", {"a.jpg": (40, 50), "b.jpg": (40, 50)})
    images = [{"file_name": "a.jpg", "width": 40, "height": 50},
              {"file_name": "b.jpg", "width": 40, "height": 50}]
    path = cvat_coco(tmp_path / "cvat", ["person"], images,
                     [{"image": 0, "label": "person", "bbox": [2, 3, 10, 10],
                       "keypoints": [0] * 51},
                      {"image": 1, "label": "person", "bbox": [2, 3, 10, 10], "iscrowd": 1,
                       "keypoints": _joints().reshape(-1).tolist()},
                      {"image": 1, "label": "person", "bbox": [5, 5, 10, 10],
                       "keypoints": _joints(1).reshape(-1).tolist()}],
                     keypoints=COCO_KEYPOINT_NAMES)
    labels = read_labels("keypoints", path, photos)
    assert labels.unannotated == ["a.jpg"]
    assert [p.annotation_id for p in labels.targets["b.jpg"]] == [3]     # the crowd one skipped
