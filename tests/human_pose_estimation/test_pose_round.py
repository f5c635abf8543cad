"""``human_pose_estimation/train.py round``: two rounds of the labeling loop on stick figures the
test writes, labeled through CVAT's COCO Keypoints 1.0 export, the candidates' person boxes
from a detections JSON or detected (``--person-boxes auto``, a torchvision detector whose
weights the test writes into torch.hub's cache); the pre-annotations' geometry."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES
from human_pose_estimation import person_boxes
from human_pose_estimation.coco import Person, PoseData, PoseImage
from human_pose_estimation.task import PoseTask
from human_pose_estimation.train import main
from label_exports import cvat_coco
from pose_fixtures import read_json, write_json, write_tiny_coco
from round_checks import check_proposals
from weights_cache import write_hub_checkpoint

TINY = ["--arch", "hrnet_w18_small", "--image-size", "64,96", "--epochs", "1", "--batch-size",
        "4", "--eval-batch-size", "8", "--no-progress", "--device", "cpu", "--threads", "1",
        "--from-scratch"]
DETECTOR = "SSDLite320_MobileNet_V3_Large_Weights.COCO_V1"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """12 images of 1-3 stick figures: (images folder, names, COCO annotations by name)."""
    root = write_tiny_coco(tmp_path_factory.mktemp("coco"), train=12, val=1)
    document = read_json(root / "annotations" / "person_keypoints_train2017.json")
    files = {image["id"]: image["file_name"] for image in document["images"]}
    notes: dict[str, list[dict]] = {}
    for note in document["annotations"]:
        notes.setdefault(files[note["image_id"]], []).append(note)
    return root / "images" / "train2017", sorted(files.values()), notes


def _cvat_keypoints(root, names, labeled, notes):
    """CVAT's COCO Keypoints 1.0: every frame listed, the persons of the ``labeled`` ones."""
    frames = [{"file_name": name, "width": 128, "height": 96} for name in names]
    persons = [{"image": names.index(name), "label": "person", "bbox": note["bbox"],
                "keypoints": note["keypoints"]} for name in labeled for note in notes[name]]
    return cvat_coco(root, ["person"], frames, persons, keypoints=COCO_KEYPOINT_NAMES)


def _round(folder, labels, workspace, *extra):
    return main(["round", "--images", str(folder), "--labels", str(labels), "--workspace",
                 str(workspace), "--budget", "3", *TINY, *extra])


def test_two_rounds_with_person_boxes_from_a_detections_file(tmp_path, scene):
    folder, names, notes = scene
    boxes = tmp_path / "persons.json"   # a detector's output: file names, one slightly off
    write_json(boxes, [{"file_name": name, "bbox": [v + 1 for v in note["bbox"]],
                        "score": 0.9, "category_id": 1}
                       for name in names for note in notes[name]])
    workspace = tmp_path / "ws"
    labeled = names[:5]
    first = _round(folder, _cvat_keypoints(tmp_path / "e1", names, labeled, notes), workspace,
                   "--person-boxes", str(boxes))
    proposed = check_proposals(first, "human_pose_estimation", ["person"], COCO_KEYPOINT_NAMES)
    assert len(proposed) == 3 and not set(proposed) & set(labeled)
    # each proposal's persons: their boxes, and joints above the threshold tied to them
    tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
    for task in tasks:
        results = task["predictions"][0]["result"]
        persons = [r for r in results if r["type"] == "rectanglelabels"]
        assert len(persons) == len(notes[task["data"]["name"]])
        assert all(r["parentID"] in {p["id"] for p in persons}
                   for r in results if r["type"] == "keypointlabels")
    labeled = labeled + proposed[:2]
    second = _round(folder, _cvat_keypoints(tmp_path / "e2", names, labeled, notes), workspace,
                    "--person-boxes", str(boxes), "--warm-start")
    assert second.name == "round_002"
    again = check_proposals(second, "human_pose_estimation", ["person"], COCO_KEYPOINT_NAMES)
    assert again and not set(again) & (set(proposed) | set(labeled))


def test_a_round_needs_person_boxes(tmp_path, scene, capsys):
    folder, names, notes = scene
    with pytest.raises(SystemExit) as stop:
        _round(folder, _cvat_keypoints(tmp_path / "e", names, names[:4], notes), tmp_path / "ws")
    assert stop.value.code == 2
    assert "train.py round needs --person-boxes" in capsys.readouterr().err


def _write_person_detector() -> None:
    """SSDLite's weights in torch.hub's cache, with a head that calls every default box a
    person (its class convolutions zero but for the person's bias), so that any image has
    persons to score whatever the random backbone sees."""
    from torchvision.models import get_model

    torch.manual_seed(0)
    model = get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None,
                      num_classes=91)
    for block in model.head.classification_head.module_list:
        convolution = block[-1]
        torch.nn.init.zeros_(convolution.weight)
        bias = torch.zeros(convolution.out_channels // 91, 91)
        bias[:, 1] = 6.0        # COCO's person: p = e^6 / (e^6 + 90) = 0.82
        convolution.bias.data.copy_(bias.reshape(-1))
    write_hub_checkpoint("ssdlite320_mobilenet_v3_large_coco-a79551df.pth", model.state_dict())


def test_auto_person_boxes_are_detected_once_and_kept_in_the_workspace(tmp_path, scene,
                                                                      monkeypatch):
    folder, names, notes = scene
    _write_person_detector()
    workspace = tmp_path / "ws"
    auto = ["--person-boxes", "auto", "--person-detector", DETECTOR, "--max-persons", "2"]
    first = _round(folder, _cvat_keypoints(tmp_path / "e1", names, names[:5], notes), workspace,
                   *auto)
    proposed = check_proposals(first, "human_pose_estimation", ["person"], COCO_KEYPOINT_NAMES)
    kept = json.loads(person_boxes.cache_path(workspace, DETECTOR).read_text())
    assert kept["detector"] == DETECTOR and sorted(kept["images"]) == names[5:]
    for found in kept["images"].values():
        assert found and all(0 <= x and 0 <= y and x + w <= 128 and y + h <= 96 and s >= 0.5
                             for x, y, w, h, s in found)
    tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
    assert all(sum(r["type"] == "rectanglelabels" for r in task["predictions"][0]["result"]) == 2
               for task in tasks)

    def no_detector(*args, **kwargs):
        raise AssertionError("round 2's candidates were all detected in round 1")

    monkeypatch.setattr(person_boxes, "TorchvisionDetector", no_detector)
    labels = _cvat_keypoints(tmp_path / "e2", names, names[:5] + proposed[:1], notes)
    second = _round(folder, labels, workspace, *auto)
    assert not set(check_proposals(second, "human_pose_estimation", ["person"],
                                   COCO_KEYPOINT_NAMES)) & set(proposed)


class _Peaks(torch.nn.Module):
    """Heatmaps [B, 17, h, w] with joint j's peak at cell (row 2, column j % w)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        batch, _, height, width = images.shape
        heatmaps = torch.zeros(batch, 17, height // 4, width // 4)
        for joint in range(17):
            heatmaps[:, joint, 2, joint % (width // 4)] = 0.5 + joint / 100
        return heatmaps


def test_prediction_holds_each_persons_box_and_joints_in_image_pixels(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(path)
    pool = PoseData([PoseImage(path, "a.png")],
                    [Person(0, (8.0, 4.0, 32.0, 64.0), None, score=0.7),
                     Person(0, (60.0, 10.0, 48.0, 80.0), None, score=0.4)])
    task = PoseTask(pool, PoseData([], []), arch="hrnet_w18_small", input_size=(32, 64),
                    flip_test=False, heatmap_convention="aligned", progress=False)
    prediction = task.prediction(_Peaks(), 0)
    assert (prediction.width, prediction.height) == (128, 96)
    np.testing.assert_allclose(prediction.boxes, [[8, 4, 40, 68], [60, 10, 108, 90]])
    np.testing.assert_allclose(prediction.box_scores, [0.7, 0.4])
    # the same decoding as the evaluation: the model's joints through each crop's transform
    joints, maxima = task.predict_persons(_Peaks(), [0, 1])
    np.testing.assert_allclose(prediction.keypoints[..., :2], joints)
    np.testing.assert_allclose(prediction.keypoints[..., 2], maxima)
    assert prediction.keypoints.shape == (2, 17, 3)
    # every joint lands inside its own person's crop region (the box padded to 1:2)
    for (_, y1, _, y2), person in zip(prediction.boxes, prediction.keypoints, strict=True):
        centre_y = (y1 + y2) / 2
        assert (np.abs(person[:, 1] - centre_y) <= (y2 - y1)).all()


def test_persons_of_boxes_keeps_the_best_boxes_above_the_score(tmp_path):
    boxes = {"b.jpg": [(0, 0, 5, 5, 0.3), (1, 1, 5, 5, 0.9), (2, 2, 5, 5, 0.6), (3, 3, 5, 5, 0.8)],
             "a.jpg": [(0, 0, 4, 4, 0.1)], "c.jpg": []}
    data = person_boxes.persons_of_boxes(tmp_path, ["c.jpg", "b.jpg", "a.jpg"], boxes,
                                         min_score=0.5, max_persons=2)
    assert [image.name for image in data.images] == ["b.jpg"]     # a: below 0.5, c: none
    assert [person.box for person in data.persons] == [(1, 1, 5, 5), (3, 3, 5, 5)]
    assert [person.score for person in data.persons] == [0.9, 0.8]
    everything = person_boxes.persons_of_boxes(tmp_path, ["a.jpg", "b.jpg"], boxes)
    assert [image.name for image in everything.images] == ["a.jpg", "b.jpg"]
    np.testing.assert_array_equal(everything.unit_of_sample, [0, 1, 1, 1, 1])


@pytest.mark.parametrize("detector, message", [
    ("detector.pt", "not a torchvision weights name"),
    ("FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V9", "torchvision has no such weights"),
    ("ResNet18_Weights.IMAGENET1K_V1", "not the weights of a torchvision detector")])
def test_a_wrong_person_detector_is_one_message_before_any_data(tmp_path, capsys, detector,
                                                                message):
    with pytest.raises(SystemExit) as stop:
        main(["round", "--images", str(tmp_path / "nowhere"), "--labels", str(tmp_path / "x"),
              "--workspace", str(tmp_path / "ws"), "--person-boxes", "auto",
              "--person-detector", detector, *TINY])
    error = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(error) == 1 and message in error[0]
    assert not (tmp_path / "ws").exists()
