"""``python -m active_learning.export fiftyone ROUND_DIR`` read by FiftyOne's own importer
classes (``fiftyone_check.py``, in the tools' environment): every sample field, the
predictions with their confidences, the embeddings. FiftyOne's database cannot run here, so
the dataset itself is not made; the importers are what ``fo.Dataset.from_dir`` and
``merge_dir`` call (``load.py``)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from active_learning.export import main as export
from active_learning.files.export import read_scores_csv
from active_learning.files.images import image_names
from active_learning.files.proposals import brush_rle
from conftest import tools_python
from scenes import FIRST_ROUNDS, SCENES

URL = "/data/local-files/?d="


def _encoded(result: dict) -> dict:
    """A brush region's ``mask`` as Label Studio's RLE (the driver does it with the SDK's
    encoder when the server is in the loop; here the project's, checked against it there)."""
    value = dict(result["value"])
    if "mask" in value:
        value.update(format="rle", rle=brush_rle(np.asarray(value.pop("mask"))))
    return {**result, "value": value}


def _first_round(tmp_path: Path, task: str) -> tuple[Path, object]:
    """Round 1 of ``task``'s scene: the Label Studio round trip's when it ran (this file runs
    after it), else one whose initial labels are a Label Studio JSON export written here."""
    if task in FIRST_ROUNDS:
        return FIRST_ROUNDS[task]
    scene = SCENES[task](tmp_path / "images")
    names = sorted(scene.truth)
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps([
        {"id": number, "data": {"image": URL + quote(name), "name": name},
         "annotations": [{"id": number, "result": [_encoded(result)
                                                   for result in scene.results(name)]}]}
        for number, name in enumerate(names[:scene.initial], start=1)]))
    first = scene.main(["round", "--images", str(scene.images), "--labels", str(export_file),
                        "--workspace", str(tmp_path / "workspace"), "--budget",
                        str(scene.budget), *scene.flags])
    return first, scene


@pytest.mark.parametrize("task", sorted(SCENES))
def test_fiftyone_reads_every_sample_field_and_the_predictions(tmp_path, task):
    first, scene = _first_round(tmp_path, task)
    folder = tmp_path / "fiftyone"
    assert export(["fiftyone", str(first), "--out", str(folder)]) == 0
    done = subprocess.run([str(tools_python()), str(Path(__file__).with_name(
        "fiftyone_check.py")), str(folder)], capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FIFTYONE_DO_NOT_TRACK": "true"})
    assert done.returncode == 0, done.stderr[-3000:]
    read = json.loads(done.stdout.strip().splitlines()[-1])
    images = scene.images.resolve()
    labeled = (first / "labeled.txt").read_text().splitlines()
    scored = read_scores_csv(first / "proposals" / "scores.csv")
    expected = {str(images / name): {"al_status": "labeled", "al_round": 1}
                for name in labeled}
    expected.update({str(images / name): {"al_status": "proposed" if chosen else "other",
                                          "al_round": 1, "al_rank": rank,
                                          "al_score": pytest.approx(score, rel=1e-8)}
                     for name, score, rank, chosen in scored})
    expected.update({str(images / name): {"al_status": "other", "al_round": 1}
                     for name in image_names(images) if str(images / name) not in expected})
    assert read["samples"] == expected and len(expected) == len(scene.truth)
    assert len(scored) == len(scene.truth) - scene.initial         # entropy scores them all
    proposed = [name for name, _, _, chosen in scored if chosen]
    assert len(proposed) == scene.budget
    predictions = read["predictions"]
    if task == "classification":   # one class per proposed image, with its probability
        tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
        assert predictions == {str(images / t["data"]["name"]): [
            {"label": t["predictions"][0]["result"][0]["value"]["choices"][0],
             "confidence": t["predictions"][0]["result"][0]["score"]}] for t in tasks}
    else:                          # boxes with the model's scores as confidences
        coco = json.loads((first / "proposals" / "predictions_coco.json").read_text())
        assert set(predictions) == {str(images / image["file_name"])
                                    for image in coco["images"]} <= {
            str(images / name) for name in proposed}
        def rounded(value: float | None) -> float:   # a class map's regions have no score
            return -1.0 if value is None else round(value, 6)

        # FiftyOne's COCO importer gives each annotation as a box (detections) and, with a
        # mask, as a mask (segmentations): the task's own kind is compared
        field = {"object_detection": "detections", "segmentation": "segmentations",
                 "human_pose_estimation": "detections"}[task]     # pose: the person boxes
        if task == "human_pose_estimation":   # and each person's 17 joints (no confidence:
            joints = [item["points"] for items in predictions.values()   # FiftyOne reads none)
                      for item in items if item["field"] == "keypoints"]
            assert joints and set(joints) == {17}
        predictions = {path: [item for item in items if item["field"] == field]
                       for path, items in predictions.items()}
        read_boxes = sorted((item["label"], rounded(item["confidence"]))
                            for items in predictions.values() for item in items)
        names = {category["id"]: category["name"] for category in coco["categories"]}
        assert read_boxes == sorted((names[note["category_id"]], rounded(note.get("score")))
                                    for note in coco["annotations"])
        if task == "segmentation":    # each region's mask, as many pixels as the COCO area
            assert sorted(item["mask"] for items in predictions.values() for item in items) \
                == sorted(int(note["area"]) for note in coco["annotations"])
        assert all(0 <= value <= 1 for items in predictions.values() for item in items
                   for value in item["box"])
    points = read["embeddings"]
    assert points["names"] and set(points["names"]) <= set(labeled) | {n for n, *_ in scored}
    assert points["shape"][0] == len(points["names"]) and points["shape"][1] > 0
