"""``python -m active_learning.export fiftyone``: the files, checked by hand here; FiftyOne's
own importers read them in the tools' stage (tests_tools/test_round_in_fiftyone.py)."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from active_learning.errors import ConfigError
from active_learning.export import export_fiftyone, main
from active_learning.files.embeddings import write_embeddings_file
from label_exports import write_images


def _round(tmp_path):
    images = write_images(tmp_path / "photos", {"a.png": (8, 6), "b.png": (8, 6),
                                                "sub/c.png": (8, 6), "d.png": (8, 6)})
    folder = tmp_path / "ws" / "round_002"
    (folder / "proposals").mkdir(parents=True)
    (folder / "images.txt").write_text(f"{images.resolve()}\n")
    (folder / "labeled.txt").write_text("a.png\n")
    (folder / "proposals" / "scores.csv").write_text(
        "name,score,rank,chosen\nsub/c.png,0.75,1,1\nb.png,-0.5,2,0\n")
    return folder, images.resolve()


def test_every_image_gets_its_status_rank_score_and_round(tmp_path):
    folder, images = _round(tmp_path)
    (folder / "proposals" / "label_studio_tasks.json").write_text(json.dumps([
        {"data": {"name": "sub/c.png"}, "predictions": [{"score": 0.5, "result": [
            {"type": "choices", "value": {"choices": ["dog"]}, "score": 0.9}]}]}]))
    write_embeddings_file(folder / "run" / "embeddings" / "cycle_00.npz",
                          np.eye(2, 3), np.array(["labeled", "chosen"]),
                          names=["a.png", "sub/c.png"])
    out = export_fiftyone(folder)
    assert out == folder / "fiftyone"
    with open(out / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {"filepath": str(images / "a.png"), "al_status": "labeled", "al_round": "2",
         "al_rank": "", "al_score": ""},
        {"filepath": str(images / "sub/c.png"), "al_status": "proposed", "al_round": "2",
         "al_rank": "1", "al_score": "0.75"},
        {"filepath": str(images / "b.png"), "al_status": "other", "al_round": "2",
         "al_rank": "2", "al_score": "-0.5"},
        {"filepath": str(images / "d.png"), "al_status": "other", "al_round": "2",
         "al_rank": "", "al_score": ""}]
    # one class per image: FiftyOne's image classification layout, keyed without extension
    assert json.loads((out / "predictions.json").read_text()) == {
        "classes": None, "labels": {"sub/c": {"label": "dog", "confidence": 0.9}}}
    points = np.load(out / "embeddings.npz")
    assert points["names"].tolist() == ["a.png", "sub/c.png"]
    assert points["embeddings"].shape == (2, 3)
    loader = (out / "load.py").read_text()
    compile(loader, "load.py", "exec")
    assert f"IMAGES = {str(images)!r}" in loader
    assert "PREDICTIONS = 'FiftyOneImageClassificationDataset'" in loader


def test_coco_predictions_are_copied_and_a_folder_that_is_no_round_is_refused(tmp_path,
                                                                              capsys):
    folder, _ = _round(tmp_path)
    coco = {"images": [], "annotations": [], "categories": []}
    (folder / "proposals" / "predictions_coco.json").write_text(json.dumps(coco))
    out = export_fiftyone(folder, tmp_path / "elsewhere")
    assert json.loads((out / "predictions.json").read_text()) == coco
    assert "PREDICTIONS = 'COCODetectionDataset'" in (out / "load.py").read_text()
    assert np.load(out / "embeddings.npz")["names"].size == 0      # no map points
    with pytest.raises(SystemExit) as stopped:
        main(["fiftyone", str(tmp_path)])
    assert stopped.value.code == 2
    assert "is not a finished round's folder (no images.txt" in capsys.readouterr().err


def test_a_superpixel_round_proposes_the_images_holding_chosen_regions(tmp_path):
    # a superpixel round writes no scores.csv: priority.csv ranks the images that hold chosen
    # regions, each with the sum of its regions' scores (regions.csv: 0.5 + 0.25 for b.png)
    folder, images = _round(tmp_path)
    (folder / "proposals" / "scores.csv").unlink()
    (folder / "proposals" / "regions.csv").write_text(
        "name,region_id,score\nb.png,3,0.50000\nd.png,1,0.40000\nb.png,7,0.25000\n")
    (folder / "proposals" / "priority.csv").write_text(
        "name,entropy_value\nb.png,0.75000\nd.png,0.40000\n")
    out = export_fiftyone(folder)
    with open(out / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {"filepath": str(images / "a.png"), "al_status": "labeled", "al_round": "2",
         "al_rank": "", "al_score": ""},
        {"filepath": str(images / "b.png"), "al_status": "proposed", "al_round": "2",
         "al_rank": "1", "al_score": "0.75"},
        {"filepath": str(images / "d.png"), "al_status": "proposed", "al_round": "2",
         "al_rank": "2", "al_score": "0.4"},
        {"filepath": str(images / "sub/c.png"), "al_status": "other", "al_round": "2",
         "al_rank": "", "al_score": ""}]
    # without its priority.csv it is no finished round
    (folder / "proposals" / "priority.csv").unlink()
    with pytest.raises(ConfigError, match="no priority.csv"):
        export_fiftyone(folder)


def test_the_predictions_are_copied_atomically(tmp_path, monkeypatch):
    folder, _ = _round(tmp_path)
    (folder / "proposals" / "predictions_coco.json").write_text('{"images": []}')
    replaced = []
    rename = os.replace

    def recording(source, target, *args, **kwargs):
        replaced.append(Path(target).name)
        return rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", recording)
    out = export_fiftyone(folder)
    assert "predictions.json" in replaced
    assert (out / "predictions.json").read_text() == '{"images": []}'
