"""Behaviours of the image checks, the label readers and the atomic writes that a mutation
round found no test pinned (issue 31): each test here fails on the plausible wrong version
named in its docstring."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from active_learning.errors import DataError
from active_learning.files.atomic import atomic_open, atomic_write_text
from active_learning.files.images import check_images, image_size
from active_learning.labels import read_labels
from label_exports import cvat_coco, write_image, write_images


def _truncated_png(path, seed=0):
    """A PNG whose header (and so its size) reads, whose pixels do not: the file cut short."""
    write_image(path, 40, 30, seed)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    return path


def test_the_check_decodes_the_pixels_not_only_the_header(tmp_path):
    """Wrong version: the check opens the file (its header) without loading the pixels."""
    path = _truncated_png(tmp_path / "cut.png")
    assert image_size(path) == (40, 30)          # the header alone is fine
    with pytest.raises(DataError, match=r"cannot read image .*cut.png"):
        check_images([(path, None)], DataError)


def test_the_check_cache_notices_a_file_rewritten_at_the_same_size(tmp_path):
    """Wrong version: the cache keys an image by its size in bytes alone."""
    path = write_image(tmp_path / "a.png", 40, 30)
    cache = tmp_path / "checked.json"
    check_images([(path, (40, 30))], DataError, cache=cache)
    assert str(path) in json.loads(cache.read_text())
    size = path.stat().st_size
    broken = bytearray(path.read_bytes())
    broken[size // 2:] = bytes(size - size // 2)   # same length, pixels destroyed
    path.write_bytes(bytes(broken))
    stamp = path.stat()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_size == size
    with pytest.raises(DataError, match="cannot read image"):
        check_images([(path, (40, 30))], DataError, cache=cache)


def test_class_id_masks_of_three_classes_in_a_new_order(tmp_path):
    """Wrong version: the ids are mapped by the inverse permutation (right for a swap of two,
    wrong for a cycle of three)."""
    photos = write_images(tmp_path / "photos", {"a.jpg": (6, 3)})
    root = tmp_path / "ids"
    root.mkdir()
    (root / "classes.txt").write_text("sky\nground\nroad\n")
    ids = np.array([[0, 1, 2, 0, 1, 2]] * 3, dtype=np.uint8)
    ids[0, 0] = 255
    Image.fromarray(ids).save(root / "a.png")
    labels = read_labels("mask", root, photos, categories=["road", "sky", "ground"])
    assert labels.categories == ["road", "sky", "ground"]
    # stored id -> workspace index: sky 0 -> 1, ground 1 -> 2, road 2 -> 0; 255 stays ignored
    expected = np.array([1, 2, 0], dtype=np.int64)[np.minimum(ids, 2)]
    expected[ids == 255] = 255
    np.testing.assert_array_equal(labels.targets["a.jpg"].train_ids(), expected)


def test_two_overlapping_annotations_of_one_class_keep_the_class(tmp_path):
    """Wrong version: any pixel two annotations cover is ignored (255), also when both are of
    the same class (only a clash of two classes is ambiguous)."""
    photos = write_images(tmp_path / "photos", {"a.jpg": (30, 20)})
    path = cvat_coco(tmp_path / "cvat", ["car"], [{"file_name": "a.jpg", "width": 30,
                                                   "height": 20}],
                     [{"image": 0, "label": "car", "bbox": [2, 2, 10, 10],
                       "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
                      {"image": 0, "label": "car", "bbox": [8, 8, 10, 10],
                       "segmentation": [[8, 8, 18, 8, 18, 18, 8, 18]]}])
    labels = read_labels("mask", path, photos)
    car = labels.categories.index("car")
    ids = labels.targets["a.jpg"].train_ids()
    assert ids[10, 10] == car          # covered by both
    assert ids[3, 3] == car and ids[16, 16] == car and ids[0, 29] == 0


def test_a_person_whose_labeled_joints_are_all_hidden_is_kept(tmp_path):
    """Wrong version: only joints with v=2 (visible) count as labeled, so a person whose
    joints are all v=1 (labeled, hidden) is dropped."""
    from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES

    photos = write_images(tmp_path / "photos", {"a.jpg": (40, 50)})
    joints = np.zeros((17, 3), dtype=np.float32)
    joints[:5] = [[10, 12, 1], [11, 13, 1], [12, 14, 1], [13, 15, 1], [14, 16, 1]]
    path = cvat_coco(tmp_path / "cvat", ["person"],
                     [{"file_name": "a.jpg", "width": 40, "height": 50}],
                     [{"image": 0, "label": "person", "bbox": [2.0, 3.0, 30.0, 40.0],
                       "keypoints": joints.reshape(-1).tolist()}],
                     keypoints=COCO_KEYPOINT_NAMES)
    labels = read_labels("keypoints", path, photos)
    (person,) = labels.targets["a.jpg"]
    np.testing.assert_array_equal(person.keypoints, joints)


def test_ctrl_c_during_an_atomic_write_leaves_no_temporary_file(tmp_path):
    """Wrong version: the temporary file is removed on Exception only (KeyboardInterrupt is a
    BaseException)."""
    target = tmp_path / "report.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as handle:
            handle.write("half of the new")
            raise KeyboardInterrupt
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.json"]
    assert target.read_text() == "old\n"
