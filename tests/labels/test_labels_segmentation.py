"""Segmentation labels from COCO polygons and RLE masks (CVAT), from mask PNG folders (CVAT's
colours with labelmap.txt, class-id PNGs) and from a Cityscapes root; label maps compared with
masks painted here by hand; the written label maps read back by the segmentation task."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from active_learning.errors import DataError
from active_learning.labels import detect_format, read_labels
from active_learning.labels.cityscapes_ids import LABEL_TO_TRAIN
from active_learning.labels.masks import CocoMask, PngMask, write_label_maps
from label_exports import cvat_coco, label_map, paint, rle_counts, write_images
from seg_fixtures import write_tiny_cityscapes
from segmentation.data import SegmentationSample, read_instances, read_label

H, W = 20, 30


@pytest.fixture
def photos(tmp_path):
    return write_images(tmp_path / "photos", {"a.jpg": (W, H), "b.jpg": (W, H)})


def _rectangle(x1, y1, x2, y2):
    """A polygon [x, y, ...] around the pixels x1..x2-1, y1..y2-1 (pycocotools rasterises a
    pixel when its centre is inside)."""
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def _block(y1, y2, x1, x2):
    mask = np.zeros((H, W), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def test_cvat_rle_masks_and_polygons_painted_by_class(tmp_path, photos):
    car = _block(2, 8, 3, 9)
    road = _block(10, 20, 0, 30)
    notes = [
        # CVAT exports a brush mask as an uncompressed RLE with iscrowd 1
        {"image": 0, "label": "car", "bbox": [3, 2, 6, 6],
         "segmentation": {"counts": rle_counts(car), "size": [H, W]}},
        {"image": 0, "label": "road", "bbox": [0, 10, 30, 10],
         "segmentation": {"counts": rle_counts(road), "size": [H, W]}},
        {"image": 1, "label": "car", "bbox": [10, 5, 10, 10],
         "segmentation": [_rectangle(10, 5, 20, 15)]},
    ]
    path = cvat_coco(tmp_path / "cvat", ["road", "car"],
                     [{"file_name": "a.jpg", "width": W, "height": H},
                      {"file_name": "b.jpg", "width": W, "height": H}], notes)
    labels = read_labels("mask", path, photos)
    assert labels.categories == ["background", "road", "car"]
    a = labels.targets["a.jpg"]
    assert isinstance(a, CocoMask) and a.size == (H, W)
    expected = np.zeros((H, W), dtype=np.int64)
    expected[road], expected[car] = 1, 2
    np.testing.assert_array_equal(a.train_ids(), expected)
    # the instance map numbers the annotations: car 1, road 2
    np.testing.assert_array_equal(a.instance_ids(), np.where(car, 1, np.where(road, 2, 0)))
    b = labels.targets["b.jpg"].train_ids()
    assert (b[6:14, 11:19] == 2).all() and (b[:4] == 0).all() and (b[:, :9] == 0).all()
    assert set(np.unique(b)) == {0, 2}


def test_overlaps_of_different_classes_are_ignored_and_background_never_clashes(tmp_path,
                                                                                photos):
    left, right, middle = _block(0, 10, 0, 20), _block(0, 10, 10, 30), _block(0, 10, 12, 18)
    everything = np.ones((H, W), dtype=bool)
    notes = [{"image": 0, "label": "background", "segmentation":
              {"counts": rle_counts(everything), "size": [H, W]}},
             {"image": 0, "label": "car", "segmentation":
              {"counts": rle_counts(left), "size": [H, W]}},
             {"image": 0, "label": "car", "segmentation":
              {"counts": rle_counts(middle), "size": [H, W]}},
             {"image": 0, "label": "road", "segmentation":
              {"counts": rle_counts(right), "size": [H, W]}}]
    path = cvat_coco(tmp_path / "cvat", ["background", "car", "road"],
                     [{"file_name": "a.jpg", "width": W, "height": H}], notes)
    labels = read_labels("mask", path, photos)
    assert labels.categories == ["background", "car", "road"]
    expected = np.zeros((H, W), dtype=np.int64)
    expected[left], expected[right] = 1, 2
    expected[left & right] = 255          # car and road both claim it
    np.testing.assert_array_equal(labels.targets["a.jpg"].train_ids(), expected)


def test_boxes_without_masks_leave_an_image_unlabeled(tmp_path, photos):
    notes = [{"image": 0, "label": "car", "bbox": [1, 1, 5, 5]},     # CVAT's box: segmentation []
             {"image": 1, "label": "car", "segmentation": [_rectangle(1, 1, 6, 6)]}]
    path = cvat_coco(tmp_path / "cvat", ["car"], [{"file_name": "a.jpg", "width": W, "height": H},
                                                  {"file_name": "b.jpg", "width": W, "height": H}],
                     notes)
    labels = read_labels("mask", path, photos)
    assert list(labels.targets) == ["b.jpg"] and labels.unannotated == ["a.jpg"]


@pytest.mark.parametrize("segmentation, message", [
    ({"counts": [600], "size": [30, 20]}, r"annotation 1 \(image a.jpg\): its RLE mask is 20x30, "
                                          r"but the image is 30x20"),
    ([[1, 2, 3, 4]], r"annotation 1 \(image a.jpg\): polygon 0 has 4 coordinates"),
])
def test_a_mask_of_the_wrong_size_or_shape_is_refused(tmp_path, photos, segmentation, message):
    path = cvat_coco(tmp_path / "cvat", ["car"], [{"file_name": "a.jpg", "width": W, "height": H}],
                     [{"image": 0, "label": "car", "segmentation": segmentation}])
    with pytest.raises(DataError, match=message):
        read_labels("mask", path, photos)


COLOURS = [("background", (0, 0, 0)), ("car", (255, 0, 0)), ("road", (128, 64, 128))]


def _cvat_masks(root, classes_by_image, colours=COLOURS):
    """CVAT's segmentation mask export: SegmentationClass/<id>.png in colours, labelmap.txt."""
    label_map(root / "labelmap.txt", colours)
    for name, classes in classes_by_image.items():
        path = root / "SegmentationClass" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(paint(classes, [colour for _, colour in colours])).save(path)
    return root


def test_cvat_colour_masks_with_a_label_map(tmp_path, photos):
    classes = np.zeros((H, W), dtype=np.int64)
    classes[2:8, 3:9], classes[12:, :] = 1, 2
    root = _cvat_masks(tmp_path / "masks", {"a": classes})
    assert detect_format("mask", root) == "masks"
    labels = read_labels("mask", root, photos)
    assert labels.categories == ["background", "car", "road"] and list(labels.targets) == ["a.jpg"]
    np.testing.assert_array_equal(labels.targets["a.jpg"].train_ids(), classes)
    # the workspace's order: the colours follow the names
    again = read_labels("mask", root, photos, categories=["road", "background", "car"])
    np.testing.assert_array_equal(again.targets["a.jpg"].train_ids(),
                                  np.array([1, 2, 0])[classes])
    # CVAT with "save images": JPEGImages/ inside the export, found without --images, and its
    # PNG images are not taken for masks
    write_images(root / "JPEGImages", {"a.png": (W, H)})
    inside = read_labels("mask", root)
    assert inside.images_dir == root / "JPEGImages" and list(inside.targets) == ["a.png"]


def test_bad_masks_name_the_file(tmp_path, photos):
    small = _cvat_masks(tmp_path / "small", {"a": np.zeros((H - 1, W), dtype=np.int64)})
    with pytest.raises(DataError, match=r"mask .*a.png is 30x19 but its image .*a.jpg is 30x20"):
        read_labels("mask", small, photos)
    odd = _cvat_masks(tmp_path / "odd", {"a": np.zeros((H, W), dtype=np.int64)})
    Image.fromarray(np.full((H, W, 3), 7, dtype=np.uint8)).save(odd / "SegmentationClass" / "a.png")
    labels = read_labels("mask", odd, photos)
    with pytest.raises(DataError, match=r"a.png has pixels of colour \(7, 7, 7\), which "
                                        "labelmap.txt gives no label"):
        labels.targets["a.jpg"].train_ids()
    stray = _cvat_masks(tmp_path / "stray", {"zzz": np.zeros((H, W), dtype=np.int64)})
    with pytest.raises(DataError, match=r"zzz.png: no image zzz.\* under --images"):
        read_labels("mask", stray, photos)


def test_class_id_masks_named_by_classes_txt(tmp_path, photos):
    root = tmp_path / "ids"
    root.mkdir()
    (root / "classes.txt").write_text("sky\nground\n")
    ids = np.zeros((H, W), dtype=np.uint8)
    ids[10:] = 1
    ids[0, 0] = 255
    Image.fromarray(ids).save(root / "b.png")
    labels = read_labels("mask", root, photos, labels_format="masks")
    assert labels.categories == ["sky", "ground"]
    np.testing.assert_array_equal(labels.targets["b.jpg"].train_ids(), ids.astype(np.int64))
    flipped = read_labels("mask", root, photos, categories=["ground", "sky"])
    expected = np.where(ids == 255, 255, 1 - ids.astype(np.int64))
    np.testing.assert_array_equal(flipped.targets["b.jpg"].train_ids(), expected)
    (root / "classes.txt").unlink()
    with pytest.raises(DataError, match="no labelmap.txt or classes.txt names the classes"):
        read_labels("mask", root, photos, labels_format="masks")


def test_cityscapes_root_as_labels(tmp_path):
    root = write_tiny_cityscapes(tmp_path / "cs", train=3, val=1)
    assert detect_format("mask", root) == "cityscapes"
    labels = read_labels("mask", root)                     # images: leftImg8bit/
    assert labels.images_dir == root / "leftImg8bit" and len(labels.targets) == 4
    name = sorted(labels.targets)[0]
    assert name.startswith("train/") and name.endswith("_leftImg8bit.png")
    target = labels.targets[name]
    assert isinstance(target, PngMask) and target.instances is not None
    raw = np.asarray(Image.open(target.path))
    np.testing.assert_array_equal(target.train_ids(), LABEL_TO_TRAIN[raw])
    # --images may be the Cityscapes root itself: the names then start with leftImg8bit/
    rooted = read_labels("mask", root, images_dir=root)
    assert sorted(rooted.targets)[0] == f"leftImg8bit/{name}"


def test_written_label_maps_are_what_the_segmentation_task_reads(tmp_path, photos):
    car = _block(2, 8, 3, 9)
    path = cvat_coco(tmp_path / "cvat", ["car"], [{"file_name": "a.jpg", "width": W, "height": H}],
                     [{"image": 0, "label": "car",
                       "segmentation": {"counts": rle_counts(car), "size": [H, W]}}])
    coco = read_labels("mask", path, photos)
    root = write_tiny_cityscapes(tmp_path / "cs", train=1, val=0)
    cityscapes = read_labels("mask", root)
    for labels in (coco, cityscapes):
        written = write_label_maps(labels.targets, tmp_path / "round" / labels.format,
                                   len(labels.categories))
        for name, target in labels.targets.items():
            out = written[name]
            assert out.path == tmp_path / "round" / labels.format / f"{name}.png"
            sample = SegmentationSample(labels.images_dir / name, out.path, out.instances, name)
            np.testing.assert_array_equal(
                read_label(sample, "folder", target.size, len(labels.categories)),
                target.train_ids())
            instances = read_instances(sample, target.size)
            raw = target.instance_ids()
            if labels.format == "cityscapes":      # stuff ids below 1000 are no instance
                raw = np.where(raw >= 1000, raw, 0)
            np.testing.assert_array_equal(instances, raw)
