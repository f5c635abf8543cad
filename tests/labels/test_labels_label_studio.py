"""Label Studio's own JSON and JSON-MIN exports, read for every label kind (hand-built exports in
the shapes Label Studio 1.23 writes; tests/tools/ checks them against the real server)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from active_learning.errors import ConfigError, DataError
from active_learning.files.proposals import brush_rle
from active_learning.labels import detect_format, read_labels
from active_learning.labels.label_studio import decode_brush_rle
from label_exports import write_images

URL = "/data/local-files/?d="


def _task(task_id, name, results, **annotation):
    return {"id": task_id, "data": {"image": URL + name, "name": name},
            "annotations": [{"id": 100 + task_id, "result": results, "was_cancelled": False,
                             "ground_truth": False, **annotation}] if results is not None
            else [], "predictions": []}


def _write(path, entries):
    path.write_text(json.dumps(entries))
    return path


def _region(kind, value, width, height, **extra):
    return {"id": extra.pop("id", "r"), "type": kind, "from_name": extra.pop("from_name", "x"),
            "to_name": "image", "original_width": width, "original_height": height,
            "image_rotation": 0, "value": value, **extra}


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "images", {"a.png": (200, 100), "sub/b c.png": (40, 20),
                                              "d.png": (50, 50)})


def test_choices_are_read_and_a_task_without_annotation_is_not_labeled(tmp_path, images):
    export = _write(tmp_path / "export.json", [
        _task(1, "a.png", [{"type": "choices", "from_name": "class", "to_name": "image",
                            "value": {"choices": ["dog"]}}]),
        _task(2, "sub/b%20c.png", [{"type": "choices", "from_name": "mine", "to_name": "image",
                                    "value": {"choices": ["cat"]}}]),
        _task(3, "d.png", None)])
    assert detect_format("class", export) == "label_studio"
    labels = read_labels("class", export, images)
    assert labels.format == "label_studio" and labels.categories == ["cat", "dog"]
    assert labels.targets == {"a.png": 1, "sub/b c.png": 0}
    assert labels.unannotated == ["d.png"]
    # the workspace's order wins; a new class is appended
    again = read_labels("class", export, images, categories=["dog", "bird"])
    assert again.categories == ["dog", "bird", "cat"] and again.targets["a.png"] == 0


def test_cancelled_annotations_are_left_out_and_a_ground_truth_one_wins(tmp_path, images):
    def choice(label):
        return [{"type": "choices", "from_name": "class", "to_name": "image",
                 "value": {"choices": [label]}}]

    task = _task(1, "a.png", choice("dog"))
    task["annotations"] += [{"id": 9, "result": choice("cat"), "was_cancelled": True},
                            {"id": 10, "result": choice("bird"), "ground_truth": True}]
    labels = read_labels("class", _write(tmp_path / "e.json", [task]), images)
    assert labels.targets == {"a.png": labels.categories.index("bird")}
    task["annotations"][2]["ground_truth"] = False     # dog and bird, none marked
    with pytest.raises(DataError, match="2 annotations that disagree; mark one as ground"):
        read_labels("class", _write(tmp_path / "e.json", [task]), images)


def test_json_min_records_are_read_too(tmp_path, images):
    records = [{"image": URL + "a.png", "id": 1, "name": "a.png", "class": "dog",
                "annotator": 1, "annotation_id": 5, "created_at": "x", "updated_at": "x",
                "lead_time": 1.5},
               {"image": URL + "d.png", "id": 3, "name": "d.png", "annotator": None,
                "annotation_id": None},                                 # no annotation
               {"image": URL + "sub/b%20c.png", "id": 2, "annotator": 1, "annotation_id": 6,
                "label": [{"x": 10.0, "y": 20.0, "width": 50.0, "height": 30.0, "rotation": 0,
                           "rectanglelabels": ["car"], "original_width": 40,
                           "original_height": 20}]}]
    export = _write(tmp_path / "min.json", records)
    assert read_labels("class", export, images).targets == {"a.png": 0}
    boxes = read_labels("boxes", export, images)
    (name, box), = boxes.targets.items()
    assert name == "sub/b c.png" and boxes.categories == ["car"]
    np.testing.assert_allclose(box.boxes, [[4.0, 4.0, 24.0, 10.0]])   # percent of 40 x 20
    assert box.labels.tolist() == [1]


def test_rectangles_are_percent_of_the_image_and_pixels_are_refused(tmp_path, images):
    value = {"x": 10.0, "y": 20.0, "width": 50.0, "height": 30.0, "rotation": 0,
             "rectanglelabels": ["car"]}
    other = dict(value, x=0.0, y=0.0, width=25.0, height=10.0, rectanglelabels=["bus"])
    export = _write(tmp_path / "e.json", [_task(1, "a.png", [
        _region("rectanglelabels", value, 200, 100),
        _region("rectanglelabels", other, 200, 100, id="s")])])
    labels = read_labels("boxes", export, images)
    target = labels.targets["a.png"]
    assert labels.categories == ["bus", "car"]
    np.testing.assert_allclose(target.boxes, [[20.0, 20.0, 120.0, 50.0], [0.0, 0.0, 50.0, 10.0]])
    assert target.labels.tolist() == [2, 1] and not target.difficult.any()
    # the same box in pixels: x 20 + w 100 = 120 % of the width
    pixels = dict(value, x=20.0, y=20.0, width=100.0, height=30.0)
    with pytest.raises(DataError, match="percentages, not pixels"):
        read_labels("boxes", _write(tmp_path / "p.json", [
            _task(1, "a.png", [_region("rectanglelabels", pixels, 200, 100)])]), images)
    with pytest.raises(DataError, match="rotated by 30"):
        read_labels("boxes", _write(tmp_path / "r.json", [
            _task(1, "a.png", [_region("rectanglelabels", dict(value, rotation=30), 200,
                                       100)])]), images)
    with pytest.raises(DataError, match="drawn on a 400x200 image, but a.png is 200x100"):
        read_labels("boxes", _write(tmp_path / "s.json", [
            _task(1, "a.png", [_region("rectanglelabels", value, 400, 200)])]), images)


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (300, 250)])
def test_brush_rle_decodes_what_the_encoder_wrote(shape):
    rng = np.random.default_rng(shape[0])
    mask = rng.random(shape) < 0.3
    mask[: shape[0] // 2] = True                      # a run longer than 2^16 RGBA bytes
    decoded = decode_brush_rle(brush_rle(mask), *shape)
    assert decoded.dtype == bool and np.array_equal(decoded, mask)
    with pytest.raises(ValueError, match="values; a 5x5 RGBA image"):
        decode_brush_rle(brush_rle(mask), 5, 5)
    with pytest.raises(ValueError, match="cut short"):
        decode_brush_rle(brush_rle(mask)[:6], *shape)


def test_brushes_and_polygons_paint_the_class_map(tmp_path, images):
    brush = np.zeros((50, 50), dtype=bool)
    brush[10:20, 5:15] = True                                  # rows 10..19, columns 5..14
    polygon = [[20.0, 20.0], [60.0, 20.0], [60.0, 60.0], [20.0, 60.0]]   # pixels 10..30
    export = _write(tmp_path / "e.json", [_task(1, "d.png", [
        _region("brushlabels", {"format": "rle", "rle": brush_rle(brush),
                                "brushlabels": ["road"]}, 50, 50),
        _region("polygonlabels", {"points": polygon, "polygonlabels": ["car"], "closed": True},
                50, 50, id="s")])])
    labels = read_labels("mask", export, images)
    assert labels.categories == ["background", "car", "road"]
    classes = labels.targets["d.png"].train_ids()
    assert classes.shape == (50, 50)
    road, car, clash = classes == 2, classes == 1, classes == 255
    expected_car = np.zeros((50, 50), dtype=bool)
    expected_car[10:30, 10:30] = True                  # pycocotools: pixels 10 .. 29
    assert np.array_equal(clash, brush & expected_car)            # rows 10..19, cols 10..14
    assert np.array_equal(road, brush & ~expected_car)
    assert np.array_equal(car, expected_car & ~brush)
    assert (classes[~(brush | expected_car)] == 0).all()


def _keypoint(joint, x, y, width, height, parent=None, id_="k"):
    extra = {"parentID": parent} if parent else {}
    return _region("keypointlabels", {"x": x, "y": y, "width": 1.0, "keypointlabels": [joint]},
                   width, height, id=id_, **extra)


def test_keypoints_join_their_person_box_by_parent_id_or_by_place(tmp_path, images):
    person = {"x": 10.0, "y": 10.0, "width": 40.0, "height": 80.0, "rotation": 0,
              "rectanglelabels": ["person"]}
    second = dict(person, x=60.0)
    results = [_region("rectanglelabels", person, 200, 100, id="p1"),
               _region("rectanglelabels", second, 200, 100, id="p2"),
               _keypoint("nose", 20.0, 20.0, 200, 100, parent="p1", id_="k1"),
               _keypoint("left_wrist", 65.0, 50.0, 200, 100, id_="k2"),   # inside p2 only
               _keypoint("nose", 70.0, 30.0, 200, 100, parent="p2", id_="k3")]
    labels = read_labels("keypoints", _write(tmp_path / "e.json", [
        _task(1, "a.png", results)]), images)
    assert labels.categories == ["person"]
    first, other = labels.targets["a.png"]
    # HRNet's cleaning of the box (x, y, w - 1, h - 1), the joints in pixels, visible
    assert first.box == pytest.approx((20.0, 10.0, 79.0, 79.0))
    assert first.keypoints[0].tolist() == pytest.approx([40.0, 20.0, 2.0])
    assert (first.keypoints[1:, 2] == 0).all()
    assert other.keypoints[0].tolist() == pytest.approx([140.0, 30.0, 2.0])
    assert other.keypoints[9].tolist() == pytest.approx([130.0, 50.0, 2.0])   # left_wrist
    lost = results[:2] + [_keypoint("nose", 55.0, 50.0, 200, 100)]            # between the two
    with pytest.raises(DataError, match="no parentID and 0 person boxes hold it"):
        read_labels("keypoints", _write(tmp_path / "l.json", [_task(1, "a.png", lost)]), images)
    wrong = results[:1] + [_keypoint("Nose", 20.0, 20.0, 200, 100, parent="p1")]
    with pytest.raises(DataError, match="not one of COCO's joint names"):
        read_labels("keypoints", _write(tmp_path / "w.json", [_task(1, "a.png", wrong)]), images)


def test_a_label_studio_list_is_never_read_as_coco(tmp_path, images):
    export = _write(tmp_path / "e.json", [_task(1, "a.png", None)])
    with pytest.raises(DataError, match="Label Studio's JSON or JSON-MIN export"):
        read_labels("boxes", export, images, labels_format="coco")
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert detect_format("boxes", coco) == "coco"
    with pytest.raises(ConfigError, match="cannot label class labels; choose one of csv, "
                                          "folders, label_studio"):
        read_labels("class", coco, images)


def test_an_image_outside_the_folder_and_a_record_of_no_tool_are_refused(tmp_path, images):
    task = _task(1, "gone.png", [{"type": "choices", "from_name": "class", "to_name": "image",
                                  "value": {"choices": ["dog"]}}])
    with pytest.raises(DataError, match="labels image .*gone.png.*not under --images"):
        read_labels("class", _write(tmp_path / "e.json", [task]), images)
    with pytest.raises(DataError, match="neither a JSON task"):
        read_labels("class", _write(tmp_path / "f.json", [{"name": "a.png"}]), images)


def test_the_image_field_may_have_another_name_when_it_is_the_only_path(tmp_path, images):
    choice = [{"type": "choices", "from_name": "class", "to_name": "photo",
               "value": {"choices": ["dog"]}}]
    task = {"id": 1, "data": {"photo": URL + "a.png", "rank": 3},
            "annotations": [{"id": 1, "result": choice}]}
    assert read_labels("class", _write(tmp_path / "e.json", [task]), images).targets == \
        {"a.png": 0}
    task["data"]["note"] = "see v1.2"                # two strings that could be paths
    with pytest.raises(DataError, match="no 'image' data field"):
        read_labels("class", _write(tmp_path / "e.json", [task]), images)
