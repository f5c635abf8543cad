"""Proposals in the formats annotation tools import: the priority CSV, Label Studio tasks and
labeling configuration, the plain order list."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from active_learning.files.export import read_entropies_csv
from active_learning.files.proposals import (
    BRUSHES,
    CHOICES,
    KEYPOINT_LABELS,
    RECTANGLES,
    ImagePrediction,
    brush_rle,
    label_studio_config,
    prediction_results,
    write_label_studio_tasks,
    write_order_list,
    write_proposals,
)

jsonschema = pytest.importorskip("jsonschema")

CLASSES = ["cat", "dog", 'a "quoted" & <odd> class']
JOINTS = ["nose", "left_eye", "right_eye"]

# The task structure Label Studio documents for importing pre-annotations
# (labelstud.io/guide/predictions, labelstud.io/guide/task_format) and each tag's result
# (labelstud.io/tags/rectanglelabels, keypointlabels, brushlabels, choices): a list of tasks,
# each with `data` and `predictions`; a prediction has `result`, a float `score` and a
# `model_version` at its root; coordinates in percent (0-100) of original_width/height.
PERCENT = {"type": "number", "minimum": 0, "maximum": 100}
IMAGE_RESULT = {"original_width": {"type": "integer", "minimum": 1},
                "original_height": {"type": "integer", "minimum": 1},
                "image_rotation": {"type": "number"}}
LABELS = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1}


def _result(kind: str, value: dict, required_value: list, image: bool = True) -> dict:
    properties = {"id": {"type": "string", "minLength": 1}, "type": {"const": kind},
                  "from_name": {"type": "string"}, "to_name": {"type": "string"},
                  "score": {"type": "number"}, "parentID": {"type": "string"},
                  "value": {"type": "object", "properties": value, "required": required_value}}
    required = ["id", "type", "from_name", "to_name", "value"]
    if image:
        properties.update(IMAGE_RESULT)
        required += ["original_width", "original_height"]
    return {"type": "object", "properties": properties, "required": required}


SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["data", "predictions"],
        "properties": {
            "data": {"type": "object", "required": ["image"],
                     "properties": {"image": {"type": "string", "minLength": 1}}},
            "predictions": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["result", "score", "model_version"],
                "properties": {
                    "score": {"type": "number"}, "model_version": {"type": "string"},
                    "result": {"type": "array", "items": {"oneOf": [
                        _result("rectanglelabels", {"x": PERCENT, "y": PERCENT, "width": PERCENT,
                                                    "height": PERCENT, "rotation": {"type": "number"},
                                                    "rectanglelabels": LABELS},
                                ["x", "y", "width", "height", "rectanglelabels"]),
                        _result("keypointlabels", {"x": PERCENT, "y": PERCENT, "width": PERCENT,
                                                   "keypointlabels": LABELS},
                                ["x", "y", "width", "keypointlabels"]),
                        _result("brushlabels", {"format": {"const": "rle"},
                                                "rle": {"type": "array", "items": {
                                                    "type": "integer", "minimum": 0, "maximum": 255}},
                                                "brushlabels": LABELS},
                                ["format", "rle", "brushlabels"]),
                        _result("choices", {"choices": LABELS}, ["choices"], image=False),
                    ]}},
                }}},
        },
    },
}


def decode_brush_rle(data: list[int]) -> np.ndarray:
    """thi.ng rle-pack's decode, written from its specification (header: 32-bit count, 5-bit
    word size - 1, four 4-bit run-length widths - 1; then chunks: repeat bit, 2-bit width
    index, run length - 1, then one value (repeat) or that many values (literal))."""
    bits = "".join(f"{byte:08b}" for byte in data)
    position = 0

    def read(width: int) -> int:
        nonlocal position
        value = int(bits[position:position + width], 2)
        position += width
        return value

    count = read(32)
    word = read(5) + 1
    widths = [read(4) + 1 for _ in range(4)]
    out = np.zeros(count, dtype=np.int64)
    i = 0
    while i < count:
        repeat = read(1)
        end = i + 1 + read(widths[read(2)])
        if repeat:
            out[i:end] = read(word)
            i = end
        else:
            while i < end:
                out[i] = read(word)
                i += 1
    return out


def _config_tags(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    return {element.get("name"): element for element in root.iter() if element.get("name")}


def _predictions() -> dict[str, ImagePrediction]:
    mask = np.zeros((20, 30), dtype=np.int64)
    mask[5:10, 3:12] = 1
    mask[0, :] = 255                                      # ignore label: no class
    points = np.array([[[40.0, 30.0, 0.9], [50.0, 28.0, 0.1], [60.0, 30.0, 0.8]]])
    return {
        "cls.png": ImagePrediction(28, 28, label=1, confidence=0.7),
        "det.jpg": ImagePrediction(400, 300, boxes=np.array([[20.0, 30.0, 200.0, 250.0],
                                                             [-10.0, 280.0, 50.0, 320.0]]),
                                   labels=np.array([0, 2]), box_scores=np.array([0.9, 0.3])),
        "seg.png": ImagePrediction(30, 20, mask=mask),
        "pose.jpg": ImagePrediction(200, 100, boxes=np.array([[30.0, 10.0, 80.0, 90.0]]),
                                    keypoints=points),
    }


KIND_OF = {"cls.png": CHOICES, "det.jpg": RECTANGLES, "seg.png": BRUSHES,
           "pose.jpg": KEYPOINT_LABELS}
KINDS = (CHOICES, RECTANGLES, BRUSHES, KEYPOINT_LABELS)


@pytest.mark.parametrize("kind", KINDS, ids=("class", "boxes", "mask", "keypoints"))
def test_the_tasks_validate_and_fit_their_labeling_config(tmp_path, kind):
    names = [name for name, of in KIND_OF.items() if of == kind] + ["plain/no prediction.jpg"]
    path = tmp_path / "tasks.json"
    write_label_studio_tasks(path, kind, names, [0.5, 0.25], CLASSES, predictions=_predictions(),
                             keypoint_names=JOINTS, model_version="round 3")
    tasks = json.loads(path.read_text())
    jsonschema.validate(tasks, SCHEMA)
    # Label Studio's confidence rises with the rank; the acquisition score is a data field
    assert [task["predictions"][0]["score"] for task in tasks] == [1 / 3, 2 / 3]
    assert [task["data"]["al_score"] for task in tasks] == [0.5, 0.25]
    assert all(task["predictions"][0]["model_version"] == "round 3" for task in tasks)
    assert tasks[1]["predictions"][0]["result"] == []          # a name without a prediction
    # Every from_name / to_name is a tag of the configuration, of the right kind, and every
    # label a result uses is one of that tag's labels: what Label Studio checks on import.
    tags = _config_tags(label_studio_config(kind, CLASSES, JOINTS))
    tag_of = {"rectanglelabels": "RectangleLabels", "keypointlabels": "KeyPointLabels",
              "brushlabels": "BrushLabels", "choices": "Choices"}
    results = tasks[0]["predictions"][0]["result"]
    assert results
    for result in results:
        control = tags[result["from_name"]]
        assert control.tag == tag_of[result["type"]]
        assert control.get("toName") == result["to_name"]
        assert tags[result["to_name"]].tag == "Image"
        allowed = {label.get("value") for label in control}
        assert set(result["value"][result["type"]]) <= allowed
    image_tag = tags[results[0]["to_name"]]
    assert image_tag.get("value").removeprefix("$") in tasks[0]["data"]
    ids = [result["id"] for task in tasks for result in task["predictions"][0]["result"]]
    assert len(ids) == len(set(ids))                           # Label Studio wants them unique


def test_boxes_are_percent_of_width_and_height_and_clipped():
    results = prediction_results(RECTANGLES, _predictions()["det.jpg"], CLASSES)
    first, second = (result["value"] for result in results)
    # 400 x 300 image: x1 = 20 -> 5 %, y1 = 30 -> 10 %, w = 180 -> 45 %, h = 220 -> 73.33 %.
    assert (first["x"], first["y"], first["width"]) == pytest.approx((5.0, 10.0, 45.0))
    assert first["height"] == pytest.approx(220 / 3)
    assert first["rectanglelabels"] == ["cat"] and results[0]["score"] == pytest.approx(0.9)
    # [-10, 280, 50, 320] is clipped to the image: [0, 280, 50, 300].
    assert (second["x"], second["y"], second["width"], second["height"]) == pytest.approx(
        (0.0, 280 / 3, 12.5, 20 / 3))
    assert second["rectanglelabels"] == [CLASSES[2]]
    assert results[0]["original_width"] == 400 and results[0]["original_height"] == 300


def test_keypoints_hang_on_their_person_box_and_drop_unsure_joints():
    results = prediction_results(KEYPOINT_LABELS, _predictions()["pose.jpg"], [], JOINTS,
                                 keypoint_threshold=0.2)
    box, *points = results
    assert box["type"] == "rectanglelabels" and box["value"]["rectanglelabels"] == ["person"]
    assert (box["value"]["x"], box["value"]["y"], box["value"]["width"],
            box["value"]["height"]) == pytest.approx((15.0, 10.0, 25.0, 80.0))
    assert [point["value"]["keypointlabels"] for point in points] == [["nose"], ["right_eye"]]
    assert all(point["parentID"] == box["id"] for point in points)
    assert (points[1]["value"]["x"], points[1]["value"]["y"]) == pytest.approx((30.0, 30.0))
    assert points[0]["score"] == pytest.approx(0.9)


def test_a_mask_becomes_one_brush_result_per_class_that_decodes_to_it():
    prediction = _predictions()["seg.png"]
    results = prediction_results(BRUSHES, prediction, CLASSES)
    assert [result["value"]["brushlabels"] for result in results] == [["cat"], ["dog"]]
    for index, result in zip((0, 1), results):
        rgba = decode_brush_rle(result["value"]["rle"]).reshape(20, 30, 4)
        expected = (prediction.mask == index) * 255
        for channel in range(4):                # the same byte in R, G, B and alpha
            np.testing.assert_array_equal(rgba[..., channel], expected)


@pytest.mark.parametrize("shape, fill", [((1, 1), 1.0), ((3, 5), 0.5), ((64, 80), 0.3),
                                         ((200, 400), 1.0), ((300, 300), 0.0)])
def test_brush_rle_round_trips(shape, fill):
    rng = np.random.default_rng(shape[0])
    mask = rng.random(shape) < fill
    if shape == (64, 80):
        mask[10:50, 20:70] = True               # long runs beside short ones
    data = brush_rle(mask)
    assert all(0 <= byte <= 255 for byte in data)
    rgba = decode_brush_rle(data)
    assert rgba.size == 4 * mask.size            # 200 x 400 x 4 = 320,000 > 2^16: split runs
    np.testing.assert_array_equal(rgba.reshape(*shape, 4)[..., 3], mask * 255)


def test_brush_rle_header_is_label_studios():
    bits = "".join(f"{byte:08b}" for byte in brush_rle(np.ones((2, 3), bool)))
    assert int(bits[:32], 2) == 24                   # 2 x 3 pixels x RGBA
    assert int(bits[32:37], 2) + 1 == 8              # 8-bit words
    assert [int(bits[37 + 4 * k:41 + 4 * k], 2) + 1 for k in range(4)] == [3, 4, 8, 16]


def test_classification_pre_annotates_the_predicted_choice():
    [result] = prediction_results(CHOICES, _predictions()["cls.png"], CLASSES)
    assert result["type"] == "choices" and result["value"] == {"choices": ["dog"]}
    assert result["score"] == pytest.approx(0.7)


def test_every_format_orders_best_first_and_the_priority_csv_imports_as_before(tmp_path):
    names = ["b.jpg", "a.jpg", "c d.jpg", "e.jpg"]
    scores = np.array([0.2, 0.9, 0.5, 0.5])          # a tie keeps the given order
    paths = write_proposals(tmp_path / "out", RECTANGLES, names, scores, CLASSES,
                            image_url_prefix="/data/local-files/?d=pool/")
    expected = ["a.jpg", "c d.jpg", "e.jpg", "b.jpg"]
    assert paths.order.read_text() == "".join(f"{name}\n" for name in expected)
    assert paths.priority_csv.read_text().splitlines()[0] == "name,entropy_value"
    rows = read_entropies_csv(paths.priority_csv)
    assert [name for name, _ in rows] == expected
    assert [value for _, value in rows] == pytest.approx([0.9, 0.5, 0.5, 0.2])
    tasks = json.loads(paths.label_studio_tasks.read_text())
    assert [task["data"]["name"] for task in tasks] == expected
    assert [task["data"]["al_rank"] for task in tasks] == [1, 2, 3, 4]
    assert tasks[1]["data"]["image"] == "/data/local-files/?d=pool/c%20d.jpg"
    assert _config_tags(paths.label_studio_config.read_text())["label"].tag == "RectangleLabels"


def test_predictions_may_be_computed_when_asked(tmp_path):
    asked = []

    def predict(name):
        asked.append(name)
        return ImagePrediction(10, 10, label=0, confidence=0.5) if name == "x.png" else None

    path = tmp_path / "tasks.json"
    write_label_studio_tasks(path, CHOICES, ["y.png", "x.png"], [1.0, 2.0], CLASSES,
                             predictions=predict)
    tasks = json.loads(path.read_text())
    assert asked == ["x.png", "y.png"]                 # best first, each once
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == ["cat"]


def test_the_label_config_escapes_names_and_lists_the_joints():
    tags = _config_tags(label_studio_config(KEYPOINT_LABELS, CLASSES, JOINTS))
    assert [label.get("value") for label in tags["keypoints"]] == JOINTS
    assert [label.get("model_index") for label in tags["keypoints"]] == ["0", "1", "2"]
    assert tags["keypoints_bbox"].tag == "RectangleLabels"
    choices = _config_tags(label_studio_config(CHOICES, CLASSES))["class"]
    assert [choice.get("value") for choice in choices] == CLASSES
    with pytest.raises(ValueError, match="keypoint_names"):
        label_studio_config(KEYPOINT_LABELS, CLASSES)


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_order_list(["a", "b"], [1.0, float("nan")], tmp_path / "o.txt")
    with pytest.raises(ValueError, match="unique"):
        write_order_list(["a", "a"], [1.0, 2.0], tmp_path / "o.txt")
    with pytest.raises(ValueError, match="differ in length"):
        write_order_list(["a"], [1.0, 2.0], tmp_path / "o.txt")
    with pytest.raises(ValueError, match="unknown label kind"):
        label_studio_config("boxes", CLASSES)
    with pytest.raises(ValueError, match="outside the 3 class names"):
        prediction_results(RECTANGLES, ImagePrediction(10, 10, boxes=np.array([[0, 0, 5, 5]]),
                                                      labels=np.array([3])), CLASSES)
    with pytest.raises(ValueError, match=r"mask must be \[height, width\]"):
        ImagePrediction(30, 20, mask=np.zeros((30, 20)))
    with pytest.raises(ValueError, match="persons' keypoints"):
        ImagePrediction(9, 9, boxes=np.zeros((2, 4)), keypoints=np.zeros((1, 3, 3)))
    assert not (tmp_path / "o.txt").exists()


def test_the_schema_is_not_vacuous():
    task = {"data": {"image": "/x.jpg"}, "predictions": [{"model_version": "v", "score": 1.0,
            "result": prediction_results(RECTANGLES, _predictions()["det.jpg"], CLASSES)}]}
    jsonschema.validate([task], SCHEMA)
    in_pixels = json.loads(json.dumps(task))
    in_pixels["predictions"][0]["result"][0]["value"]["x"] = 150.0
    without_score = json.loads(json.dumps(task))
    del without_score["predictions"][0]["score"]
    for broken in (in_pixels, without_score):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate([broken], SCHEMA)


def test_label_studio_confidence_is_lowest_for_the_first_task_whatever_the_scores(tmp_path):
    # Acquisition scores that are negative, above 1 and tied: Label Studio's uncertainty
    # sampling serves the lowest prediction score first, so order.txt's first task must have
    # it, each task a distinct one in [0, 1], the raw score and the rank kept as data fields.
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    scores = np.array([-3.0, 7.5, 7.5, 0.25])
    paths = write_proposals(tmp_path / "out", CHOICES, names, scores, CLASSES)
    order = paths.order.read_text().splitlines()
    assert order == ["b.jpg", "c.jpg", "d.jpg", "a.jpg"]
    tasks = json.loads(paths.label_studio_tasks.read_text())
    served = sorted(tasks, key=lambda task: task["predictions"][0]["score"])
    assert [task["data"]["name"] for task in served] == order
    assert [task["predictions"][0]["score"] for task in tasks] == [0.2, 0.4, 0.6, 0.8]
    assert [task["data"]["al_score"] for task in tasks] == [7.5, 7.5, 0.25, -3.0]
    assert [task["data"]["al_rank"] for task in tasks] == [1, 2, 3, 4]


def test_label_studio_score_is_the_rank_over_count_plus_one():
    from active_learning.files.proposals import label_studio_score

    assert label_studio_score(1, 1) == 0.5
    assert label_studio_score(3, 4) == 0.6
    for rank in (0, 5):
        with pytest.raises(ValueError, match="outside 1..4"):
            label_studio_score(rank, 4)
