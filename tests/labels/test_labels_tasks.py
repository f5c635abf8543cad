"""Each task's data code takes a round's labels as they are read: the samples built from them
feed the task's own datasets."""
from __future__ import annotations

import numpy as np

from active_learning.labels import read_labels
from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES
from classification.datasets import ImageFileDataset
from classification.folders import samples_from_labels as classification_samples
from human_pose_estimation.coco import pose_data_from_labels
from human_pose_estimation.data import PoseSet
from label_exports import cvat_coco, rle_counts, write_images
from object_detection.data import DetectionSet
from object_detection.voc import samples_from_labels as detection_samples
from segmentation.data import read_label
from segmentation.data import samples_from_labels as segmentation_samples


def test_detection_samples_feed_the_detection_set(tmp_path):
    photos = write_images(tmp_path / "photos", {"a/x.jpg": (60, 30)})
    path = cvat_coco(tmp_path / "cvat", ["car", "cat"], [{"file_name": "a/x.jpg", "width": 60,
                                                          "height": 30}],
                     [{"image": 0, "label": "cat", "bbox": [6, 3, 30, 15]}])
    samples = detection_samples(read_labels("boxes", path, photos))
    assert [(s.name, s.image) for s in samples] == [("a/x.jpg", photos / "a" / "x.jpg")]
    image, target = DetectionSet(samples, size=300)[0]
    assert image.shape == (3, 300, 300)
    # the box follows the resize to 300 x 300: x by 5, y by 10
    np.testing.assert_allclose(target["boxes"].numpy(), [[30, 30, 180, 180]], atol=1e-4)
    assert target["labels"].tolist() == [2]


def test_classification_samples_feed_the_image_file_dataset(tmp_path):
    photos = write_images(tmp_path / "photos", {"1.jpg": (8, 8), "2.jpg": (8, 8)})
    csv = tmp_path / "labels.csv"
    csv.write_text("1.jpg,dog\n2.jpg,cat\n")
    samples = classification_samples(read_labels("class", csv, photos))
    assert samples == [(str(photos / "1.jpg"), 1), (str(photos / "2.jpg"), 0)]
    dataset = ImageFileDataset(samples, 4, transform=lambda x: x.float())
    assert dataset[1][1] == 0 and dataset[1][0].shape == (3, 4, 4)


def test_pose_data_feeds_the_pose_set(tmp_path):
    photos = write_images(tmp_path / "photos", {"a.jpg": (48, 64)})
    joints = np.zeros((17, 3), dtype=np.float32)
    joints[:5] = [[20, 10, 2], [22, 9, 2], [18, 9, 1], [25, 10, 2], [15, 10, 2]]
    path = cvat_coco(tmp_path / "cvat", ["person"], [{"file_name": "a.jpg", "width": 48,
                                                      "height": 64}],
                     [{"image": 0, "label": "person", "bbox": [8, 4, 30, 50],
                       "keypoints": joints.reshape(-1).tolist()}], keypoints=COCO_KEYPOINT_NAMES)
    data = pose_data_from_labels(read_labels("keypoints", path, photos))
    assert [image.name for image in data.images] == ["a.jpg"]
    assert data.unit_of_sample.tolist() == [0]
    crop, target = PoseSet(data, input_size=(48, 64))[0]
    assert crop.shape == (3, 64, 48) and target["heatmaps"].shape == (17, 16, 12)
    assert target["weight"].tolist() == [1.0] * 5 + [0.0] * 12


def test_segmentation_samples_are_the_folder_format(tmp_path):
    photos = write_images(tmp_path / "photos", {"a.jpg": (12, 10)})
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    path = cvat_coco(tmp_path / "cvat", ["car"], [{"file_name": "a.jpg", "width": 12,
                                                   "height": 10}],
                     [{"image": 0, "label": "car",
                       "segmentation": {"counts": rle_counts(mask), "size": [10, 12]}}])
    labels = read_labels("mask", path, photos)
    (sample,) = segmentation_samples(labels, tmp_path / "round" / "masks")
    assert sample.image == photos / "a.jpg" and sample.name == "a.jpg"
    assert sample.label == tmp_path / "round" / "masks" / "a.jpg.png"
    assert labels.categories == ["background", "car"]
    np.testing.assert_array_equal(read_label(sample, "folder", (10, 12), 2), mask.astype(np.int64))
