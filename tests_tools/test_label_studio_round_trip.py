"""The labeling loop with the real Label Studio in it (see conftest.py for the server).

One project holds every labeled image, as a team runs it: the initial labeled set is imported
with its annotations, exported with Label Studio's JSON export and read by round 1; round 1's
tasks are imported in shuffled order, and with "Uncertainty sampling" the server serves them
in ``order.txt``'s order; an annotator submits the ground truth of three of them through the
API (each checked with the SDK's own validator against the project's config, as are the
served tasks' predictions); the next export goes to round 2, whose labels must be the ground
truth exactly and whose proposals hold nothing labeled or still out for labeling. Round 2's
tasks are served in its order once the project's model version is round 2's: Label Studio
samples only the tasks whose prediction has the project's ``model_version``, which import sets
to the first one it sees and never changes again (``projects/functions/next_task.py``,
``tasks/serializers.py``). Label Studio's other exports (JSON-MIN; COCO and Pascal VOC for
boxes) read to the same labels.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from active_learning.errors import DataError
from active_learning.files.proposals import IMAGE_TAG, label_studio_config
from active_learning.labels import read_labels
from active_learning.labels.kinds import label_kind
from round_checks import check_proposals
from scenes import DET_H, DET_W, FIRST_ROUNDS, SCENES, Scene, detection_scene

URL = "/data/local-files/?d="


# --------------------------------------------------------------------------- the round trip

def _write(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def _task(name: str, **extra: Any) -> dict:
    return {"data": {IMAGE_TAG: URL + quote(name), "name": name}, **extra}


def _served_in_order(tasks: list[dict], order: list[str]) -> None:
    """The round's file itself: the task first in order.txt has the lowest score."""
    assert [task["data"]["name"] for task in tasks] == order
    scores = [task["predictions"][0]["score"] for task in tasks]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert all(0.0 <= score <= 1.0 for score in scores)


def round_trip(studio: Any, tmp_path: Path, scene: Scene,
               corrupt: Callable[[list[dict]], list[dict]] | None = None,
               answer: Callable[[str], list[dict]] | None = None) -> None:
    """The whole loop (module doc); ``corrupt`` rewrites round 1's tasks before they are
    imported and ``answer`` replaces the annotator's results (the negative tests)."""
    answer = answer or scene.results
    names = sorted(scene.truth)
    initial = names[:scene.initial]
    config = label_studio_config(label_kind(scene.kind).label_studio, scene.classes,
                                 scene.joints)
    project = studio.call("create", title=scene.task, config=config)["project"]
    studio.call("import", project=project, tasks=_write(tmp_path / "initial.json", [
        _task(name, annotations=[{"result": answer(name)}]) for name in initial]))
    export = tmp_path / "export_0.json"
    studio.call("export", project=project, type="JSON", out=export)
    scene.same(read_labels(scene.kind, export, scene.images), initial)

    workspace = tmp_path / "workspace"

    def run_round(export: Path) -> Path:
        return scene.main(["round", "--images", str(scene.images), "--labels", str(export),
                           "--workspace", str(workspace), "--budget", str(scene.budget),
                           *scene.flags])

    first = run_round(export)
    if corrupt is None and answer is scene.results:
        FIRST_ROUNDS[scene.task] = (first, scene)
    order = check_proposals(first, scene.task, scene.classes, scene.joints)
    assert (first / "proposals" / "label_studio_config.xml").read_text() == config
    tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
    _served_in_order(tasks, order)
    tasks = corrupt(tasks) if corrupt else tasks
    shuffled = list(tasks)
    random.Random(0).shuffle(shuffled)
    assert [task["data"]["name"] for task in shuffled] != order
    imported = studio.call("import", project=project,
                           tasks=_write(tmp_path / "round_1.json", shuffled))
    assert imported["predictions"] == len(order)
    assert imported["model_version"] == "round_001"     # set by the first predictions imported
    labeled = studio.call("label", project=project, count=3,
                          answers=_write(tmp_path / "answers_1.json",
                                         {name: answer(name) for name in order}))
    assert labeled["errors"] == []
    assert labeled["served"] == order[:3]

    export = tmp_path / "export_1.json"
    studio.call("export", project=project, type="JSON", out=export)
    done = initial + order[:3]
    scene.same(read_labels(scene.kind, export, scene.images), done)
    second = run_round(export)
    assert second.name == "round_002"
    assert sorted((second / "labeled.txt").read_text().splitlines()) == sorted(done)
    again = check_proposals(second, scene.task, scene.classes, scene.joints)
    assert not set(again) & (set(initial) | set(order))  # labeled or still out for labeling

    # Round 2's tasks: served by round 1's model version until the project's is round 2's.
    tasks = json.loads((second / "proposals" / "label_studio_tasks.json").read_text())
    _served_in_order(tasks, again)
    shuffled = list(tasks)
    random.Random(1).shuffle(shuffled)
    imported = studio.call("import", project=project,
                           tasks=_write(tmp_path / "round_2.json", shuffled))
    assert imported["model_version"] == "round_001"
    answers = _write(tmp_path / "answers_2.json",
                     {name: answer(name) for name in order[3:] + again})
    assert studio.call("label", project=project, count=1, answers=answers)["served"] == \
        [order[3]]                                      # round 1's leftover, lowest score
    studio.call("model_version", project=project, model_version="round_002")
    labeled = studio.call("label", project=project, count=len(again), answers=answers)
    assert labeled["served"] == again and labeled["errors"] == []

    # Label Studio's other exports read to the same labels.
    done += order[3:4] + again
    for export_type in ("JSON", *scene.exports):
        out = tmp_path / (f"export_2_{export_type}.json" if export_type.startswith("JSON")
                          else f"export_2_{export_type}")      # COCO and VOC: a zip, unpacked
        studio.call("export", project=project, type=export_type, out=out)
        if export_type == "VOC":
            scene.same(read_labels(scene.kind, out, scene.images), done, 1.0)
        else:
            scene.same(read_labels(scene.kind, out, scene.images), done)


@pytest.mark.parametrize("task", sorted(SCENES))
def test_the_loop_runs_through_label_studio(studio, tmp_path, task):
    round_trip(studio, tmp_path, SCENES[task](tmp_path / "images"))


# --------------------------------------------------------------------------- negative tests

def test_a_wrong_from_name_in_the_round_files_fails_the_round_trip(studio, tmp_path):
    """Label Studio imports predictions whose from_name its config lacks without a word (seen
    on 1.23.2), and then never shows them: the SDK's validator, run on the served tasks,
    catches it."""
    def rename(tasks: list[dict]) -> list[dict]:
        for task in tasks:
            for result in task["predictions"][0]["result"]:
                result["from_name"] = "labels"
        return tasks

    with pytest.raises(AssertionError, match="'from_name' 'labels' not found"):
        round_trip(studio, tmp_path, detection_scene(tmp_path / "images"), corrupt=rename)


def test_boxes_in_pixels_instead_of_percent_fail_the_round_trip(studio, tmp_path):
    """Annotations whose rectangles are in pixels: Label Studio stores them as given (seen on
    1.23.2); reading its export refuses them, a box of the 160 x 120 images leaving 0..100%."""
    scene = detection_scene(tmp_path / "images")

    def in_pixels(name: str) -> list[dict]:
        results = scene.results(name)
        for result in results:
            value = result["value"]
            for key, size in (("x", DET_W), ("width", DET_W), ("y", DET_H), ("height", DET_H)):
                value[key] = value[key] * size / 100
        return results

    with pytest.raises(DataError, match="percentages, not pixels"):
        round_trip(studio, tmp_path, scene, answer=in_pixels)
