"""What every round's proposals must be, whatever the task: shared by the round-trip tests.

:func:`check_proposals` reads a round's ``proposals/`` folder and checks each format against
what the tool that imports it expects (files/proposals.py cites the formats): the priority CSV
best first, ``order.txt`` in the same order, Label Studio tasks whose prediction's score rises
with the rank (the CSV's score is the ``al_score`` data field) and whose results name the tags of the labeling configuration (and, for each kind,
the values Label Studio reads), and the report page with every file it links present.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

from active_learning.files.export import read_entropies_csv

RESULT_TYPES = {"classification": {"choices"}, "object_detection": {"rectanglelabels"},
                "segmentation": {"brushlabels"},
                "human_pose_estimation": {"rectanglelabels", "keypointlabels"}}
CONTROL_TAGS = {"classification": "Choices", "object_detection": "RectangleLabels",
                "segmentation": "BrushLabels", "human_pose_estimation": "KeyPointLabels"}


def _config_tags(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(control tag name -> its type, control tag name -> its label values) of the XML."""
    root = ElementTree.fromstring(path.read_text())
    assert root.tag == "View"
    kinds, values = {}, {}
    for element in root:
        if element.tag == "Image":
            continue
        kinds[element.get("name")] = element.tag
        values[element.get("name")] = [child.get("value") for child in element]
    return kinds, values


def check_proposals(round_dir: Path, kind: str, class_names: Sequence[str],
                    keypoint_names: Sequence[str] = ()) -> list[str]:
    """Check a round's proposals in every format; returns the proposed names, best first."""
    folder = Path(round_dir) / "proposals"
    ranked = read_entropies_csv(folder / "priority.csv")
    names = [name for name, _ in ranked]
    scores = [score for _, score in ranked]
    assert names and scores == sorted(scores, reverse=True)
    assert (folder / "order.txt").read_text().splitlines() == names
    kinds, values = _config_tags(folder / "label_studio_config.xml")
    tasks = json.loads((folder / "label_studio_tasks.json").read_text())
    assert [task["data"]["name"] for task in tasks] == names
    number = int(Path(round_dir).name.removeprefix("round_"))
    for rank, (task, score) in enumerate(zip(tasks, scores, strict=True), start=1):
        assert unquote(task["data"]["image"]).endswith(task["data"]["name"])
        assert task["data"]["al_rank"] == rank
        assert abs(task["data"]["al_score"] - score) <= 1e-6 * max(1.0, abs(score))
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == f"round_{number:03d}"
        # Label Studio's confidence: the lowest first (its uncertainty sampling's order)
        assert prediction["score"] == rank / (len(names) + 1)
        ids = [result["id"] for result in prediction["result"]]
        assert len(set(ids)) == len(ids)
        for result in prediction["result"]:
            assert result["type"] in RESULT_TYPES[kind]
            assert result["to_name"] == "image"
            tag = kinds[result["from_name"]]
            assert tag.lower() == result["type"]            # e.g. RectangleLabels
            value = result["value"]
            for chosen in value.get(result["type"], []):
                assert chosen in values[result["from_name"]]
            if result["type"] != "choices":
                assert result["original_width"] > 0 and result["original_height"] > 0
            for key in ("x", "y", "width", "height"):
                if key in value:
                    assert 0.0 <= value[key] <= 100.0
            if result["type"] == "keypointlabels" and "parentID" in result:
                assert result["parentID"] in ids
            if result["type"] == "brushlabels":
                assert value["format"] == "rle" and all(0 <= v < 256 for v in value["rle"])
    expected = list(keypoint_names) if kind == "human_pose_estimation" else list(class_names)
    (listed,) = [values[name] for name, tag in kinds.items() if tag == CONTROL_TAGS[kind]]
    assert listed == expected
    check_scores(folder, names)
    check_coco_predictions(folder, kind, names)
    page = folder / "report" / "index.html"
    text = page.read_text()
    for link in re.findall(r'(?:src|href)="([^"#:]+)"', text):
        assert (page.parent / unquote(link)).exists(), link
    check_round_map(Path(round_dir), kind, len(names), text)
    return names


def check_round_map(round_dir: Path, kind: str, n_proposed: int, text: str) -> None:
    """The round's page draws the t-SNE map of its run's points (``run/embeddings/
    cycle_00.npz``: every proposal among them) and, for classification, the class histogram;
    without points (superpixel units) it says why."""
    from active_learning.files.embeddings import read_embeddings_file

    points_file = round_dir / "run" / "embeddings" / "cycle_00.npz"
    image = round_dir / "proposals" / "report" / "img" / "s00_map.png"
    if not points_file.is_file():
        assert "Left out: region units have no per-region embedding" in text
        assert not image.exists()
        return
    assert 'src="img/s00_map.png"' in text and image.stat().st_size > 0
    points = read_embeddings_file(points_file)
    assert int((points.status == "chosen").sum()) == n_proposed
    assert int((points.status == "labeled").sum()) > 0
    histogram = round_dir / "proposals" / "report" / "img" / "s00_classes.png"
    if kind == "classification":
        assert 'src="img/s00_classes.png"' in text and histogram.stat().st_size > 0
        assert "chosen (predicted)" in text
    else:
        assert "No classes:" in text and not histogram.exists()


def check_scores(folder: Path, names: Sequence[str]) -> None:
    """``scores.csv`` lists every scored candidate once, ranked 1..N, the chosen first in the
    priority CSV's order (superpixel rounds: none, their scores are per region)."""
    from active_learning.files.export import read_scores_csv

    if (folder / "regions.csv").is_file():
        assert not (folder / "scores.csv").exists()
        return
    rows = read_scores_csv(folder / "scores.csv")
    assert [rank for _, _, rank, _ in rows] == list(range(1, len(rows) + 1))
    assert len({name for name, *_ in rows}) == len(rows) >= len(names)
    assert [name for name, _, _, chosen in rows if chosen] == list(names)
    assert all(chosen for *_, chosen in rows[:len(names)])


def check_coco_predictions(folder: Path, kind: str, names: Sequence[str]) -> None:
    """``predictions_coco.json``: COCO annotations with scores of proposed images, loaded by
    pycocotools, whose annotation kind is the task's (none for classification)."""
    path = folder / "predictions_coco.json"
    if kind == "classification":
        assert not path.exists()
        return
    if not path.exists():          # a model that predicted no region at all
        return
    from pycocotools.coco import COCO

    coco = COCO(str(path))
    assert {image["file_name"] for image in coco.dataset["images"]} <= set(names)
    for note in coco.dataset["annotations"]:
        assert note["category_id"] in coco.cats and note["bbox"][2] > 0
        if kind == "segmentation":
            assert note["iscrowd"] == 1 and coco.annToMask(note).sum() == note["area"]
        if kind == "human_pose_estimation":
            assert len(note["keypoints"]) == 3 * len(coco.cats[1]["keypoints"])
        if kind == "object_detection":
            assert 0.0 <= note["score"] <= 1.0
