"""``python -m synthetic``: both formats write readable datasets, seeded, from the idx files."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from synthetic.__main__ import main


def _write_idx(folder, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Fashion-MNIST's idx format (gzip): magic, dimensions, bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    header = np.array([0x00000803, len(images), 28, 28], dtype=">i4").tobytes()
    with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + images.astype(np.uint8).tobytes())
    with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(np.array([0x00000801, len(labels)], dtype=">i4").tobytes() + labels.astype(np.uint8).tobytes())


@pytest.fixture()
def fashion_mnist(tmp_path):
    from seg_fixtures import fake_items

    items, labels = fake_items(count=40)
    for split in ("train", "t10k"):
        _write_idx(tmp_path / "fmnist", split, items, labels)
    return tmp_path / "fmnist"


def test_voc_format(tmp_path, fashion_mnist):
    from object_detection.voc import read_class_names, read_split

    root = main(["--format", "voc", "--output", str(tmp_path / "voc"), "--train", "6", "--test", "3",
                 "--height", "96", "--width", "128", "--fashion-mnist", str(fashion_mnist)])
    names = read_class_names(root / "classes.txt")
    train = read_split(root, [("2007", "trainval")], names)
    test = read_split(root, [("2007", "test")], names)
    assert len(test) == 3 and 0 < len(train) <= 6
    assert (train[0].annotation.width, train[0].annotation.height) == (128, 96)
    again = main(["--format", "voc", "--output", str(tmp_path / "voc2"), "--train", "6", "--test", "3",
                  "--height", "96", "--width", "128", "--fashion-mnist", str(fashion_mnist)])
    for name in ("VOC2007/Annotations/000001.xml", "VOC2007/ImageSets/Main/test.txt"):
        assert (root / name).read_text() == (again / name).read_text()     # seeded


def test_cityscapes_format_and_missing_data(tmp_path, fashion_mnist, capsys):
    root = main(["--output", str(tmp_path / "cs"), "--train", "2", "--val", "1", "--fashion-mnist", str(fashion_mnist)])
    assert len(list((root / "leftImg8bit" / "train").rglob("*.png"))) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--format", "voc", "--output", str(tmp_path / "x"), "--fashion-mnist", str(tmp_path / "nothing")])
    assert exit_info.value.code == 2 and "Fashion-MNIST file missing" in capsys.readouterr().err


def test_coco_keypoints_format(tmp_path, fashion_mnist):
    from human_pose_estimation.coco import read_split

    root = main(["--format", "coco-keypoints", "--output", str(tmp_path / "coco"), "--train", "8", "--val", "3",
                 "--fashion-mnist", str(fashion_mnist)])
    train, val = read_split(root, "train2017"), read_split(root, "val2017")
    assert 0 < len(train.images) <= 8 and len(val.images) <= 3
    assert (train.images[0].width, train.images[0].height) == (256, 192)
    again = main(["--format", "coco-keypoints", "--output", str(tmp_path / "coco2"), "--train", "8", "--val", "3",
                  "--fashion-mnist", str(fashion_mnist)])
    name = "annotations/person_keypoints_train2017.json"
    assert (root / name).read_text() == (again / name).read_text()     # seeded
