"""Detection labels from CVAT's, Label Studio's and Roboflow's COCO and from VOC XML folders:
boxes, labels by category name, image references as each tool writes them, and every bad export
refused with one line naming the file and the entry."""
from __future__ import annotations

import numpy as np
import pytest

from active_learning.errors import ConfigError, DataError
from active_learning.labels import detect_format, read_labels
from label_exports import (
    cvat_coco,
    label_map,
    label_studio_coco,
    roboflow_coco,
    voc_xml,
    write_images,
)

SIZES = {"street/a.jpg": (64, 48), "street/b.jpg": (64, 48), "c.png": (40, 30)}
CVAT_IMAGES = [{"file_name": name, "width": w, "height": h} for name, (w, h) in SIZES.items()]


@pytest.fixture
def photos(tmp_path):
    return write_images(tmp_path / "photos", SIZES)


def _cvat_detection(root, annotations=None, labels=("car", "person", "bike")):
    notes = annotations if annotations is not None else [
        {"image": 0, "label": "person", "bbox": [10.5, 4.0, 20.25, 30.0]},
        {"image": 0, "label": "car", "bbox": [0.0, 0.0, 64.0, 48.0]},
        {"image": 2, "label": "person", "bbox": [5.0, 6.0, 7.0, 8.0], "iscrowd": 1},
    ]
    return cvat_coco(root, list(labels), CVAT_IMAGES, notes)


def test_cvat_coco_boxes_labels_and_unlabeled_frames(tmp_path, photos):
    path = _cvat_detection(tmp_path / "cvat")
    labels = read_labels("boxes", path, photos)
    # categories in CVAT's label order, the unused "bike" too; labels 1..K by that order
    assert labels.categories == ["car", "person", "bike"]
    assert list(labels.targets) == ["street/a.jpg", "c.png"]
    assert labels.unannotated == ["street/b.jpg"]          # listed by CVAT, not labeled
    a = labels.targets["street/a.jpg"]
    # [x, y, w, h] -> (x, y, x + w, y + h), continuous pixels
    np.testing.assert_allclose(a.boxes, [[10.5, 4.0, 30.75, 34.0], [0, 0, 64, 48]])
    assert a.labels.tolist() == [2, 1] and not a.difficult.any()
    assert (a.width, a.height, a.filename) == (64, 48, "street/a.jpg")
    # a crowd box is kept but ignored in training, as VOC's difficult ones
    c = labels.targets["c.png"]
    assert c.difficult.tolist() == [True] and len(c.training_targets()[0]) == 0
    assert labels.files == [path] and len(labels.checksum) == 64 and labels.format == "coco"


def test_cvat_layout_without_images_flag_finds_images_default(tmp_path):
    root = tmp_path / "cvat"
    write_images(root / "images" / "default", SIZES)
    _cvat_detection(root)
    labels = read_labels("boxes", root)       # the export folder: format detected
    assert labels.images_dir == root / "images" / "default"
    assert sorted(labels.targets) == ["c.png", "street/a.jpg"]


def test_label_studio_coco_ids_from_zero_and_upload_prefixes(tmp_path, photos):
    notes = [{"image": 0, "label": "person", "bbox": [10.9, 4.2, 20.7, 30.0]},
             {"image": 2, "label": "car", "bbox": [1, 2, 3, 4]}]
    path = label_studio_coco(tmp_path / "ls", ["person", "car"], CVAT_IMAGES, notes)
    labels = read_labels("boxes", path, photos)
    assert labels.categories == ["car", "person"]         # Label Studio: ids 0.. in name order
    # images/8f3a2b1c-a.jpg is the upload of a.jpg: found under --images by its file name
    assert sorted(labels.targets) == ["c.png", "street/a.jpg"]
    # category 0 is a class (not a Roboflow root); truncated boxes as Label Studio writes them
    assert labels.targets["c.png"].labels.tolist() == [1]
    np.testing.assert_allclose(labels.targets["street/a.jpg"].boxes, [[10, 4, 30, 34]])


def test_roboflow_layout_drops_the_root_category_and_finds_renamed_images(tmp_path, photos):
    notes = [{"image": 0, "label": "dog", "bbox": [1, 2, 10, 10]},
             {"image": 1, "label": "cat", "bbox": [3, 3, 5, 5]}]
    images = [{"file_name": "a.jpg", "width": 64, "height": 48},
              {"file_name": "c.png", "width": 40, "height": 30}]
    split = tmp_path / "rf" / "train"
    roboflow_coco(split, "pets-x1y2", ["cat", "dog"], images, notes)
    # the images beside the JSON (Roboflow's download), named as Roboflow renamed them
    beside = read_labels("boxes", tmp_path / "rf" / "train")
    assert beside.categories == ["cat", "dog"] and beside.images_dir == split
    assert all(".rf." in name for name in beside.targets)
    # the user's own images: a_jpg.rf.<hash>.jpg is a.jpg
    own = read_labels("boxes", split / "_annotations.coco.json", photos)
    assert sorted(own.targets) == ["c.png", "street/a.jpg"]
    assert own.targets["street/a.jpg"].labels.tolist() == [2]


def test_categories_are_mapped_by_name_onto_the_workspace_order(tmp_path, photos):
    path = _cvat_detection(tmp_path / "cvat")
    labels = read_labels("boxes", path, photos,
                         categories=["bike", "person", "car"])
    assert labels.categories == ["bike", "person", "car"]
    assert labels.targets["street/a.jpg"].labels.tolist() == [2, 3]     # person, car


def test_a_changed_category_set_is_refused_with_one_message(tmp_path, photos):
    path = _cvat_detection(tmp_path / "cvat")
    with pytest.raises(DataError) as error:
        read_labels("boxes", path, photos, categories=["car", "person", "truck"])
    message = str(error.value)
    assert "categories changed" in message and "new: bike" in message
    assert "gone: truck" in message and "\n" not in message


@pytest.mark.parametrize("bbox, ok", [
    ([63.5, 0, 1.4, 48.6], True),       # rounding past the border: clipped
    ([50, 10, 20, 10], False),          # 6 pixels out on the right
    ([-3, 10, 5, 5], False),
])
def test_boxes_outside_the_image_are_refused(tmp_path, photos, bbox, ok):
    path = _cvat_detection(tmp_path / "cvat", [{"image": 0, "label": "car", "bbox": bbox}])
    if ok:
        boxes = read_labels("boxes", path, photos).targets["street/a.jpg"].boxes
        np.testing.assert_allclose(boxes, [[63.5, 0, 64, 48]])
        return
    with pytest.raises(DataError, match=r"annotation 1 \(image street/a.jpg\): box .* leaves "
                                        r"the 64x48 image") as error:
        read_labels("boxes", path, photos)
    assert str(path) in str(error.value)


def test_an_annotation_for_an_image_not_under_images_is_refused(tmp_path, photos):
    images = CVAT_IMAGES + [{"file_name": "elsewhere/z.jpg", "width": 10, "height": 10}]
    path = cvat_coco(tmp_path / "cvat", ["car"], images,
                     [{"image": 3, "label": "car", "bbox": [1, 1, 2, 2]}])
    with pytest.raises(DataError, match=r"annotation 1 is for image 'elsewhere/z.jpg' \(id 4\), "
                                        "which is not under --images"):
        read_labels("boxes", path, photos)


def test_an_image_labeled_twice_differently_is_refused_and_the_same_twice_kept(tmp_path, photos):
    images = CVAT_IMAGES + [{"file_name": "street/a.jpg", "width": 64, "height": 48}]
    same = [{"image": 0, "label": "car", "bbox": [1, 1, 2, 2]},
            {"image": 3, "label": "car", "bbox": [1, 1, 2, 2]}]
    path = cvat_coco(tmp_path / "same", ["car", "person"], images, same)
    assert list(read_labels("boxes", path, photos).targets) == ["street/a.jpg"]
    other = [same[0], {"image": 3, "label": "person", "bbox": [1, 1, 2, 2]}]
    path = cvat_coco(tmp_path / "other", ["car", "person"], images, other)
    with pytest.raises(DataError, match=r"image 4 \(street/a.jpg\): image street/a.jpg is labeled "
                                        r"twice with different labels \(also by .*image 1 "):
        read_labels("boxes", path, photos)


def test_an_image_listed_with_another_size_is_refused(tmp_path, photos):
    images = [dict(CVAT_IMAGES[0], width=640, height=480)]
    path = cvat_coco(tmp_path / "cvat", ["car"], images,
                     [{"image": 0, "label": "car", "bbox": [1, 1, 2, 2]}])
    with pytest.raises(DataError, match=r"image 1 \(street/a.jpg\) is listed as 640x480, but "
                                        r".*a.jpg is 64x48"):
        read_labels("boxes", path, photos)


def test_cvat_voc_folder_zero_based_boxes_and_label_map(tmp_path, photos):
    root = tmp_path / "voc"
    (root / "Annotations" / "street").mkdir(parents=True)
    (root / "Annotations" / "street" / "a.xml").write_text(voc_xml(
        "street/a.jpg", (64, 48), [("person", 0, 0, 64, 48), ("car", 10.5, 4, 30.75, 34, 1)]))
    (root / "Annotations" / "street" / "b.xml").write_text(voc_xml("street/b.jpg", None, []))
    label_map(root / "labelmap.txt", [("background", (0, 0, 0)), ("car", (255, 0, 0)),
                                      ("person", (0, 255, 0)), ("bike", (0, 0, 255))])
    assert detect_format("boxes", root) == "voc"
    labels = read_labels("boxes", root, photos)
    assert labels.categories == ["car", "person", "bike"]          # the label map's, unused too
    a = labels.targets["street/a.jpg"]
    # 0-based continuous as CVAT writes them: xmin 0 and xmax = width are inside the image
    np.testing.assert_allclose(a.boxes, [[0, 0, 64, 48], [10.5, 4, 30.75, 34]])
    assert a.labels.tolist() == [2, 1] and a.difficult.tolist() == [False, True]
    assert labels.unannotated == ["street/b.jpg"]
    assert root / "labelmap.txt" in labels.files


def test_label_studio_voc_names_images_without_extension(tmp_path, photos):
    root = tmp_path / "ls_voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "c.xml").write_text(
        voc_xml("c", (40, 30), [("dog", 0, 0, 12, 9)], style="label_studio"))
    labels = read_labels("boxes", root, photos)
    assert list(labels.targets) == ["c.png"] and labels.categories == ["dog"]
    np.testing.assert_allclose(labels.targets["c.png"].boxes, [[0, 0, 12, 9]])


@pytest.mark.parametrize("damage, message", [
    ("outside", r"a.xml: object 0 \(car\) box \(60, 0, 70, 10\) leaves the 64x48 image"),
    ("size", r"a.xml: <size> is 640x480, but its image is 64x48"),
    ("missing", r"z.xml: its image 'z.jpg' is not under --images"),
    ("twice", r"b.xml: image street/a.jpg is labeled twice with different labels \(also by "
              r".*a.xml\)"),
])
def test_bad_voc_exports_name_the_file_and_the_entry(tmp_path, photos, damage, message):
    root = tmp_path / "voc" / "Annotations"
    root.mkdir(parents=True)
    box = (60, 0, 70, 10) if damage == "outside" else (1, 1, 10, 10)
    size = (640, 480) if damage == "size" else (64, 48)
    (root / "a.xml").write_text(voc_xml("street/a.jpg", size, [("car", *box)]))
    if damage == "missing":
        (root / "z.xml").write_text(voc_xml("z.jpg", (64, 48), [("car", 1, 1, 2, 2)]))
    if damage == "twice":
        (root / "b.xml").write_text(voc_xml("street/a.jpg", (64, 48), [("car", 1, 1, 5, 5)]))
    with pytest.raises(DataError, match=message):
        read_labels("boxes", root.parent, photos)


def test_a_format_that_cannot_label_the_kind_is_a_config_error(tmp_path, photos):
    path = _cvat_detection(tmp_path / "cvat")
    with pytest.raises(ConfigError, match="--labels-format voc cannot label mask labels"):
        read_labels("mask", path, photos, labels_format="voc")
    with pytest.raises(ConfigError, match="unknown label kind"):
        read_labels("tracking", path, photos)
