"""``classification/train.py round``: two rounds of the labeling loop on images the test writes,
labeled through a ``name,label`` CSV as a tool exports it."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from active_learning.files.embeddings import read_embeddings_file
from active_learning.files.export import read_entropies_csv
from classification.train import main
from round_checks import check_proposals

TINY = ["--width", "2", "--epochs", "1", "--batch-size", "8", "--image-size", "16",
        "--no-progress", "--threads", "1"]


@pytest.fixture
def images(tmp_path):
    """24 images of two kinds (dark and bright), under two subfolders."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    for index in range(24):
        kind = index % 2
        pixels = rng.integers(0, 100, size=(20, 20, 3)) + 150 * kind
        path = folder / f"part{index // 12}" / f"img_{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path)
    return folder


def _labels(path, names):
    path.write_text("image,label\n" + "".join(
        f"{name},{'bright' if int(name[-6:-4]) % 2 else 'dark'}\n" for name in names))
    return path


def _round(images, labels, workspace, *extra):
    return main(["round", "--images", str(images), "--labels", str(labels), "--workspace",
                 str(workspace), "--budget", "5", *TINY, *extra])


def test_two_rounds_never_propose_an_image_out_for_labeling(tmp_path, images):
    names = sorted(path.relative_to(images).as_posix() for path in images.rglob("*.png"))
    labels = _labels(tmp_path / "export.csv", names[:6])
    workspace = tmp_path / "ws"
    first = _round(images, labels, workspace)
    classes = json.loads((workspace / "workspace.json").read_text())["categories"]
    proposed = check_proposals(first, "classification", classes)
    assert len(proposed) == 5 and not set(proposed) & set(names[:6])
    # the page's map: the 6 labeled images by their labels, the 5 proposed and the 13 others
    points = read_embeddings_file(first / "run" / "embeddings" / "cycle_00.npz")
    assert {kind: int((points.status == kind).sum()) for kind in ("labeled", "chosen",
                                                                   "unlabeled")} == \
        {"labeled": 6, "chosen": 5, "unlabeled": 13}
    labeled = points.status == "labeled"
    assert sorted(points.class_names[c] for c in points.classes[labeled]) == \
        sorted("bright" if int(name[-6:-4]) % 2 else "dark" for name in names[:6])
    # each proposal is pre-annotated with the trained model's class and its probability
    tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
    for task in tasks:
        (choice,) = task["predictions"][0]["result"]
        assert choice["value"]["choices"][0] in classes and 0.5 <= choice["score"] <= 1.0
    # the same export again: nothing changes
    before = {path: path.stat().st_mtime_ns for path in first.rglob("*") if path.is_file()}
    assert _round(images, labels, workspace) == first
    assert before == {path: path.stat().st_mtime_ns for path in first.rglob("*")
                      if path.is_file()}
    # the annotators labeled three of the five; two are still out for labeling
    labels = _labels(labels, names[:6] + proposed[:3])
    second = _round(images, labels, workspace)
    assert second.name == "round_002"
    again = check_proposals(second, "classification", classes)
    assert len(again) == 5 and not set(again) & set(proposed)
    state = json.loads((workspace / "workspace.json").read_text())
    assert [entry["status"] for entry in state["rounds"]] == ["done", "done"]
    assert state["categories"] == ["bright", "dark"] or state["categories"] == ["dark", "bright"]
    # --repropose lets the two unlabeled ones back in
    labels = _labels(labels, names[:6] + proposed[:3] + ["part1/img_23.png"])
    third = _round(images, labels, workspace, "--repropose", "--budget", "all")
    ranked = {name for name, _ in read_entropies_csv(third / "proposals" / "priority.csv")}
    assert set(proposed[3:]) <= ranked


def test_a_label_for_an_image_that_is_not_there_is_one_message(tmp_path, images, capsys):
    labels = tmp_path / "export.csv"
    labels.write_text("image,label\npart0/img_00.png,dark\nmissing.png,bright\n")
    with pytest.raises(SystemExit) as stop:
        _round(images, labels, tmp_path / "ws")
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "missing.png" in error[0]
    assert not (tmp_path / "ws" / "round_001").exists()


def test_a_round_whose_proposals_all_tie_says_their_order_is_no_preference(tmp_path, images):
    names = sorted(path.relative_to(images).as_posix() for path in images.rglob("*.png"))
    copy = (images / names[0]).read_bytes()
    for name in names[6:]:   # every candidate the same picture: the model cannot tell them apart
        (images / name).write_bytes(copy)
    first = _round(images, _labels(tmp_path / "export.csv", names[:6]), tmp_path / "ws",
                   "--strategy", "entropy")
    scores = {score for _, score in read_entropies_csv(first / "proposals" / "priority.csv")}
    assert len(scores) == 1
    html = (first / "proposals" / "report" / "index.html").read_text()
    assert "Every chosen item has the same score" in html and "not a preference" in html
