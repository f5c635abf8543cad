"""``object_detection/train.py round``: two rounds of the labeling loop on images the test
writes, labeled through CVAT's COCO 1.0 export; and the pre-annotations' geometry."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from human_pose_estimation.person_boxes import read_detections
from label_exports import cvat_coco
from object_detection.detect import main as detect
from object_detection.model import INPUT_SIZE
from object_detection.task import DetectionTask
from object_detection.train import main
from object_detection.voc import VOCSample
from round_checks import check_proposals

TINY = ["--width", "0.0625", "--from-scratch", "--epochs", "1", "--batch-size", "4",
        "--eval-batch-size", "4", "--no-progress", "--device", "cpu", "--threads", "1",
        "--min-prediction-score", "0"]
CLASSES = ["square", "bar"]
WIDTH, HEIGHT = 80, 64


@pytest.fixture
def scene(tmp_path):
    """14 images with one or two bright rectangles each: (folder, names, boxes by name)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    boxes = {}
    for index in range(14):
        pixels = rng.integers(0, 60, size=(HEIGHT, WIDTH, 3)).astype(np.uint8)
        objects = []
        for _ in range(1 + index % 2):
            label = int(rng.integers(0, 2))
            w, h = (20, 20) if label == 0 else (30, 10)
            x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
            pixels[y:y + h, x:x + w] = 200 + 40 * label
            objects.append((CLASSES[label], [x, y, w, h]))
        name = f"cam{index % 2}/frame_{index:02d}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name)
        boxes[name] = objects
    return folder, sorted(boxes), boxes


def _cvat_export(root, names, labeled, boxes):
    """CVAT's COCO 1.0: every frame listed, the ``labeled`` ones with their boxes."""
    frames = [{"file_name": name, "width": WIDTH, "height": HEIGHT} for name in names]
    notes = [{"image": names.index(name), "label": label, "bbox": box}
             for name in labeled for label, box in boxes[name]]
    return cvat_coco(root, CLASSES, frames, notes)


def _round(folder, labels, workspace, *extra):
    return main(["round", "--images", str(folder), "--labels", str(labels), "--workspace",
                 str(workspace), "--budget", "4", *TINY, *extra])


def test_two_rounds_from_cvat_coco_exports(tmp_path, scene):
    folder, names, boxes = scene
    workspace = tmp_path / "ws"
    labeled = names[:6]
    first = _round(folder, _cvat_export(tmp_path / "export1", names, labeled, boxes), workspace)
    proposed = check_proposals(first, "object_detection", CLASSES)
    assert len(proposed) == 4 and not set(proposed) & set(labeled)
    # the round's own trained detector pre-annotates: boxes inside the image, classes named
    tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
    results = [result for task in tasks for result in task["predictions"][0]["result"]]
    assert results and {result["original_width"] for result in results} == {WIDTH}
    assert (first / "run" / "checkpoints" / "cycle_00.pt").is_file()
    # the annotators labeled two of the four; the other two are still out for labeling
    labeled = labeled + proposed[:2]
    second = _round(folder, _cvat_export(tmp_path / "export2", names, labeled, boxes), workspace,
                    "--warm-start")
    assert second.name == "round_002"
    record = json.loads((second / "run" / "args.json").read_text())["task"]
    assert record["weights"] == str(first / "run" / "checkpoints" / "cycle_00.pt")
    again = check_proposals(second, "object_detection", CLASSES)
    assert len(again) == 4 and not set(again) & (set(proposed) | set(labeled))
    state = json.loads((workspace / "workspace.json").read_text())
    assert state["categories"] == CLASSES
    assert [entry["labeled"] for entry in state["rounds"]] == [6, 8]
    # the round's detector writes a COCO detections JSON (pose's --person-boxes reads one)
    output = detect(["--weights", str(second / "run" / "checkpoints" / "cycle_00.pt"),
                     "--images", str(folder), "--output", str(tmp_path / "bars.json"),
                     "--category", "bar", "--min-score", "0", "--device", "cpu"])
    entries = json.loads(output.read_text())
    assert entries and {entry["category_id"] for entry in entries} == {1}
    assert {entry["file_name"] for entry in entries} <= set(names)
    assert all(0 <= x and 0 <= y and x + w <= WIDTH + 1e-3 and y + h <= HEIGHT + 1e-3
               for x, y, w, h in (entry["bbox"] for entry in entries))
    boxes, _ = read_detections(output, folder, names)
    assert sum(map(len, boxes.values())) == len(entries)


class _FixedDetector(torch.nn.Module):
    """Stands in for SSD: ``detect`` returns the same boxes (in the 300 x 300 input) for every
    image, best first, as ``model.detect`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def detect(self, images):
        boxes = torch.tensor([[30.0, 60.0, 150.0, 240.0], [0.0, 0.0, 300.0, 300.0],
                              [10.0, 10.0, 20.0, 20.0]])
        return [{"boxes": boxes, "scores": torch.tensor([0.9, 0.6, 0.2]),
                 "labels": torch.tensor([2, 1, 1])} for _ in images]


def test_prediction_is_in_the_image_files_pixels_with_0_based_labels(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((120, 600, 3), np.uint8)).save(path)
    task = DetectionTask([VOCSample(image=path, name="wide.png")], [], class_names=CLASSES)
    prediction = task.prediction(_FixedDetector(), 0, min_score=0.5)
    assert (prediction.width, prediction.height) == (600, 120)
    # x scales by 600 / 300, y by 120 / 300; the box scoring 0.2 is below min_score
    scale = np.array([600, 120, 600, 120]) / INPUT_SIZE
    np.testing.assert_allclose(prediction.boxes, [[60, 24, 300, 96], [0, 0, 600, 120]])
    np.testing.assert_allclose(prediction.boxes[0], np.array([30, 60, 150, 240]) * scale)
    np.testing.assert_array_equal(prediction.labels, [1, 0])
    np.testing.assert_allclose(prediction.box_scores, [0.9, 0.6])
    assert len(task.prediction(_FixedDetector(), 0, min_score=0.0, max_boxes=2).boxes) == 2


def test_a_round_whose_boxes_all_fall_below_the_minimum_score_says_so_on_its_page(tmp_path, scene):
    folder, names, boxes = scene
    first = main(["round", "--images", str(folder), "--labels",
                  str(_cvat_export(tmp_path / "export", names, names[:6], boxes)), "--workspace",
                  str(tmp_path / "ws"), "--budget", "3", *TINY[:-1], "1.0"])
    html = (first / "proposals" / "report" / "index.html").read_text()
    assert "No box on any of the 3 images shown clears the minimum prediction score" in html
    assert html.count("no box clears the minimum score") == 3
    tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
    assert all(not task.get("predictions") or not task["predictions"][0]["result"] for task in tasks)
