"""Label readers' behaviours the mutation round of issue 31 found unpinned (docs/
mutation_round_31.md): each test fails on the mutant named in its comment."""
from __future__ import annotations

import json

import numpy as np
import pytest

from active_learning.errors import DataError
from active_learning.labels import read_labels
from label_exports import cvat_coco, voc_xml, write_images

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


def test_a_person_box_is_clipped_to_the_last_pixel_of_the_image():
    # HRNet's cleaning: x2 = min(width - 1, x1 + w - 1), the same for y (mutants: width + 1;
    # the height's clipping skipped; the image's width read as unknown)
    from active_learning.labels.keypoints import NUM_JOINTS, PersonLabel, person_label

    joints = np.zeros((NUM_JOINTS, 3))
    joints[0] = (25, 35, 2)
    note = {"id": 7, "bbox": [20.0, 30.0, 40.0, 40.0], "keypoints": joints.reshape(-1).tolist()}
    person = person_label(note, {"file_name": "a.jpg", "width": 40, "height": 50}, "a")
    assert isinstance(person, PersonLabel)
    np.testing.assert_allclose(person.box, (20.0, 30.0, 19.0, 19.0))   # to x = 39, y = 49
    unknown = person_label(note, {"file_name": "a.jpg", "width": 0, "height": 0}, "a")
    np.testing.assert_allclose(unknown.box, (20.0, 30.0, 39.0, 39.0))  # size 0: unclipped


def test_a_label_kind_cannot_be_changed_in_place():
    # the built-in kinds are shared by every task (mutant: frozen=False)
    import dataclasses

    from active_learning.labels.kinds import label_kind

    kind = label_kind("boxes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        kind.name = "other"
    assert hash(kind) == hash(label_kind("boxes"))


class _Instances:
    """A mask target whose instance map holds ``largest`` (one class everywhere)."""

    size = (2, 2)

    def __init__(self, largest):
        self.largest = largest

    def train_ids(self):
        return np.zeros((2, 2), dtype=np.int64)

    def instance_ids(self):
        return np.array([[0, 1], [2, self.largest]], dtype=np.int64)


def test_instance_ids_up_to_65535_are_written_and_one_more_is_refused(tmp_path):
    # a 16-bit PNG holds 0..65535: 65536 would wrap to 0, no instance (mutant: 65536 allowed)
    from PIL import Image

    from active_learning.labels.masks import write_label_maps

    written = write_label_maps({"a.jpg": _Instances(65535)}, tmp_path / "ok", 1)
    assert np.asarray(Image.open(written["a.jpg"].instances)).max() == 65535
    with pytest.raises(DataError, match="a.jpg: instance ids up to 65536 do not fit"):
        write_label_maps({"a.jpg": _Instances(65536)}, tmp_path / "bad", 1)


def test_a_voc_export_without_images_finds_jpegimages_and_reads_truncated(tmp_path):
    # VOC's layout keeps the images in JPEGImages/ (mutant: the check that it holds every
    # file's image dropped, no folder is taken); <truncated> is read as written (mutant: == -> !=)
    root = tmp_path / "voc"
    write_images(root / "JPEGImages", {"a.jpg": (W, H)})
    (root / "Annotations").mkdir(parents=True)
    xml = voc_xml("a.jpg", (W, H), [("car", 1, 2, 10, 12), ("car", 3, 4, 8, 9)])
    (root / "Annotations" / "a.xml").write_text(xml.replace("<truncated>0", "<truncated>1", 1))
    labels = read_labels("boxes", root)
    # the kind and the format as the round records them (mutant: the two swapped)
    assert (labels.kind, labels.format) == ("boxes", "voc")
    assert labels.images_dir == root / "JPEGImages"
    assert labels.targets["a.jpg"].truncated.tolist() == [True, False]


def test_class_folders_inside_images_label_the_images_not_their_copies(tmp_path):
    # an export unpacked inside --images: each class folder's file is named by its path in the
    # export (cat/x.png), which finds the project's x.png, not the copy export/cat/x.png that
    # the absolute path would name (mutant: the path and the message's location swapped)
    images = write_images(tmp_path / "photos", {"x.png": (8, 8), "y.png": (8, 8)})
    write_images(images / "export" / "cat", {"x.png": (8, 8)})
    write_images(images / "export" / "dog", {"y.png": (8, 8)})
    labels = read_labels("class", images / "export", images)
    assert labels.targets == {"x.png": 0, "y.png": 1} and labels.categories == ["cat", "dog"]
