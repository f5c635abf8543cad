"""VOC annotations, image sets and the synthetic VOC writer; bad input is named and stops or is skipped."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from det_fixtures import write_tiny_voc
from object_detection.data import DetectionSet, collate
from object_detection.voc import (
    VOC_CLASSES,
    DataError,
    find_unlabeled,
    parse_annotation,
    parse_image_sets,
    read_class_names,
    read_split,
)
from synthetic.scenes import SceneConfig, compose_scene, compose_scene_with_objects
from synthetic.voc import DIFFICULT_BELOW, FASHION_MNIST_CLASS_NAMES, annotation_xml

CLASSES = {name: label for label, name in enumerate(VOC_CLASSES, start=1)}

FULL_XML = """\
<annotation>
  <folder>VOC2007</folder>
  <filename>000005.jpg</filename>
  <source><database>The VOC2007 Database</database></source>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <segmented>0</segmented>
  <object>
    <name>chair</name><pose>Rear</pose><truncated>0</truncated><difficult>0</difficult>
    <bndbox><xmin>263</xmin><ymin>211</ymin><xmax>324</xmax><ymax>339</ymax></bndbox>
  </object>
  <object>
    <name>chair</name><pose>Unspecified</pose><truncated>1</truncated><difficult>1</difficult>
    <bndbox><xmin>5</xmin><ymin>244</ymin><xmax>67</xmax><ymax>374</ymax></bndbox>
  </object>
  <object>
    <name>person</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>500</xmax><ymax>375</ymax></bndbox>
  </object>
</annotation>
"""


def _write(tmp_path, text: str, name: str = "a.xml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_voc_field_is_read(tmp_path):
    note = parse_annotation(_write(tmp_path, FULL_XML), CLASSES)
    assert (note.filename, note.width, note.height) == ("000005.jpg", 500, 375)
    # 1-based inclusive pixel indices -> continuous: (x1 - 1, y1 - 1, x2, y2)
    np.testing.assert_array_equal(note.boxes, [[262, 210, 324, 339], [4, 243, 67, 374], [0, 0, 500, 375]])
    assert note.labels.tolist() == [CLASSES["chair"], CLASSES["chair"], CLASSES["person"]] == [9, 9, 15]
    assert note.difficult.tolist() == [False, True, False]
    assert note.truncated.tolist() == [False, True, True]
    assert note.poses == ["Rear", "Unspecified", "Left"]
    boxes, labels = note.training_targets()   # difficult objects are not trained on
    assert labels.tolist() == [9, 15] and boxes.shape == (2, 4)


def test_missing_optional_fields_default(tmp_path):
    xml = FULL_XML.replace("<pose>Rear</pose><truncated>0</truncated><difficult>0</difficult>", "")
    note = parse_annotation(_write(tmp_path, xml), CLASSES)
    assert note.difficult[0] == False and note.truncated[0] == False and note.poses[0] == "Unspecified"  # noqa: E712


@pytest.mark.parametrize("change, message", [
    (("<xmax>324</xmax>", "<xmax>200</xmax>"), "xmax < xmin"),
    (("<ymax>339</ymax>", "<ymax>376</ymax>"), "leaves the 500x375 image"),
    (("<xmin>263</xmin>", "<xmin>0</xmin>"), "leaves the 500x375 image"),
    (("<name>person</name>", "<name>persn</name>"), "class 'persn'"),
    (("<xmin>263</xmin>", "<xmin>abc</xmin>"), "not a number"),
    (("<size><width>500</width>", "<size><width>0</width>"), "image size"),
    (("</annotation>", ""), "cannot parse annotation"),
    (("<bndbox><xmin>263</xmin><ymin>211</ymin><xmax>324</xmax><ymax>339</ymax></bndbox>", ""), "no <bndbox>"),
])
def test_bad_annotations_name_the_file(tmp_path, change, message):
    path = _write(tmp_path, FULL_XML.replace(*change))
    with pytest.raises(DataError, match=message) as error:
        parse_annotation(path, CLASSES)
    assert str(path) in str(error.value)


def _tiny(tmp_path, **kwargs):
    return write_tiny_voc(tmp_path / "voc", **kwargs)


def test_read_split_and_loader(tmp_path):
    root = _tiny(tmp_path)
    names = read_class_names(root / "classes.txt")
    assert names == FASHION_MNIST_CLASS_NAMES
    samples = read_split(root, [("2007", "trainval")], names)
    test = read_split(root, [("2007", "test")], names)
    assert len(samples) == 14 and len(test) == 5
    assert not {s.name for s in samples} & {s.name for s in test}
    assert samples[0].name == "000001.jpg"
    loader = torch.utils.data.DataLoader(DetectionSet(samples), batch_size=4, collate_fn=collate)
    images, targets = next(iter(loader))
    assert images.shape == (4, 3, 300, 300) and 0 <= images.min() and images.max() <= 1
    counts = {len(t["labels"]) for t in targets}
    assert len(targets) == 4 and [t["index"] for t in targets] == [0, 1, 2, 3]
    # boxes scale with the resize: 80 x 64 -> 300 x 300
    note = samples[0].annotation
    boxes, _ = note.training_targets()
    np.testing.assert_allclose(targets[0]["boxes"].numpy(), boxes * np.array([300 / 80, 300 / 64] * 2), rtol=1e-5)
    assert counts  # images with different numbers of boxes batch together


def test_augmentation_keeps_boxes_inside_and_labels_aligned(tmp_path):
    root = _tiny(tmp_path)
    samples = read_split(root, [("2007", "trainval")], FASHION_MNIST_CLASS_NAMES)
    torch.manual_seed(0)
    dataset = DetectionSet(samples, augment=True)
    for position in range(len(samples)):
        image, target = dataset[position]
        assert image.shape == (3, 300, 300)
        boxes = target["boxes"]
        assert len(boxes) == len(target["labels"])
        if len(boxes):
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
            assert boxes.min() >= 0 and boxes.max() <= 300
            assert set(target["labels"].tolist()) <= set(samples[position].annotation.labels.tolist())


def test_missing_image_stops_and_empty_images_are_skipped(tmp_path):
    root = _tiny(tmp_path)
    (root / "VOC2007" / "JPEGImages" / "000003.jpg").unlink()
    with pytest.raises(DataError, match="000003.jpg"):
        read_split(root, [("2007", "trainval")], FASHION_MNIST_CLASS_NAMES)
    root = _tiny(tmp_path / "b")
    xml = root / "VOC2007" / "Annotations" / "000002.xml"
    text = xml.read_text()
    xml.write_text(text[:text.index("<object>")] + "</annotation>\n")
    with pytest.warns(UserWarning, match="1 image\\(s\\) with no object left out \\(000002\\)"):
        samples = read_split(root, [("2007", "trainval")], FASHION_MNIST_CLASS_NAMES)
    assert "000002.jpg" not in [s.name for s in samples] and len(samples) == 13


def test_missing_sets_and_years(tmp_path):
    root = _tiny(tmp_path)
    with pytest.raises(DataError, match="image set not found"):
        read_split(root, [("2007", "val")], FASHION_MNIST_CLASS_NAMES)
    with pytest.raises(DataError, match="dataset root not found"):
        read_split(tmp_path / "nowhere", [("2007", "trainval")], FASHION_MNIST_CLASS_NAMES)
    with pytest.warns(UserWarning, match="VOC2012"):
        samples = read_split(root, [("2007", "trainval"), ("2012", "trainval")], FASHION_MNIST_CLASS_NAMES,
                             optional_years=True)
    assert len(samples) == 14
    assert parse_image_sets("2007:trainval, 2012:trainval") == [("2007", "trainval"), ("2012", "trainval")]
    with pytest.raises(ValueError):
        parse_image_sets("2007")


def test_unlabeled_folder(tmp_path):
    folder = tmp_path / "new"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(folder / "sub" / "b.jpg")
    Image.new("RGB", (40, 30)).save(folder / "a.png")
    (folder / "notes.txt").write_text("x")
    assert [s.name for s in find_unlabeled(folder)] == ["a.png", "sub/b.jpg"]
    image, target = DetectionSet(find_unlabeled(folder))[0]
    assert image.shape == (3, 300, 300) and target["boxes"].shape == (0, 4)


def test_scene_objects_do_not_change_the_scene_and_match_the_pixels():
    from seg_fixtures import fake_items

    items, labels = fake_items()
    config = SceneConfig(height=64, width=80, min_items=3, max_items=5, min_size=16, max_size=40)
    for seed in range(5):
        image, label_map, instances, objects = compose_scene_with_objects(
            np.random.default_rng(seed), items, labels, config)
        same = compose_scene(np.random.default_rng(seed), items, labels, config)
        for a, b in zip((image, label_map, instances), same):
            np.testing.assert_array_equal(a, b)
        for item in objects:
            x1, y1, x2, y2 = item.box
            assert 0 <= x1 <= x2 < 80 and 0 <= y1 <= y2 < 64 and 0 < item.visible <= 1
            from synthetic.scenes import ITEM_LABEL_IDS

            # the item's class shows inside its box (it is the visible silhouette's extent)
            assert (label_map[y1:y2 + 1, x1:x2 + 1] == ITEM_LABEL_IDS[item.item_class]).any()


def test_annotation_xml_round_trip(tmp_path):
    from synthetic.scenes import SceneObject

    objects = [SceneObject(3, (0, 5, 20, 30), 1.0, False), SceneObject(9, (10, 0, 79, 63), DIFFICULT_BELOW - 0.1, True)]
    path = _write(tmp_path, annotation_xml("000007.jpg", (64, 80), objects))
    note = parse_annotation(path, {name: k for k, name in enumerate(FASHION_MNIST_CLASS_NAMES, start=1)})
    np.testing.assert_array_equal(note.boxes, [[0, 5, 21, 31], [10, 0, 80, 64]])
    assert note.labels.tolist() == [4, 10] and note.difficult.tolist() == [False, True]
    assert note.truncated.tolist() == [False, True] and (note.width, note.height) == (80, 64)


def _empty_and_all_difficult(tmp_path):
    """A tiny VOC whose test images 000015 (no object) and 000016 (only difficult objects)."""
    root = _tiny(tmp_path)
    test_ids = (root / "VOC2007" / "ImageSets" / "Main" / "test.txt").read_text().split()
    empty, difficult = (root / "VOC2007" / "Annotations" / f"{i}.xml" for i in test_ids[:2])
    text = empty.read_text()
    empty.write_text(text[:text.index("<object>")] + "</annotation>\n")
    difficult.write_text(difficult.read_text().replace("<difficult>0</difficult>",
                                                       "<difficult>1</difficult>"))
    return root, test_ids


def test_the_test_set_keeps_every_image_the_pool_skips_empty_ones(tmp_path):
    import warnings

    root, test_ids = _empty_and_all_difficult(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no warning: nothing is left out
        test = read_split(root, [("2007", "test")], FASHION_MNIST_CLASS_NAMES, keep_empty=True)
    assert [s.image_id for s in test] == test_ids
    assert len(test[0].annotation.labels) == 0 and test[1].annotation.difficult.all()
    with pytest.warns(UserWarning) as caught:
        pool = read_split(root, [("2007", "test")], FASHION_MNIST_CLASS_NAMES)
    assert sorted(str(w.message).split(": ")[1] for w in caught) == [
        f"1 image(s) with no object left out ({test_ids[0]})",
        f"1 image(s) with only difficult objects left out ({test_ids[1]})"]
    assert [s.image_id for s in pool] == test_ids[2:]
    # an image without training targets loads as an empty target
    image, target = DetectionSet(test)[0]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


def test_train_evaluates_every_test_image(tmp_path):
    from object_detection.build import build
    from object_detection.train import parse_args

    root, test_ids = _empty_and_all_difficult(tmp_path)
    args = parse_args(["--dataset_root", str(root), "--train-sets", "2007:trainval", "--width", "0.0625",
                       "--no-progress", "--device", "cpu"])
    built = build(args)
    assert [s.image_id for s in built.adapter.test_samples] == test_ids
