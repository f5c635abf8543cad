"""``segmentation/train.py round``: two rounds of the labeling loop on images the test writes,
labeled first through CVAT's segmentation-mask export (colour PNGs + labelmap.txt), then
through CVAT's COCO 1.0 (polygons); a superpixel round; the pre-annotation's mask."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from active_learning.loop.superpixels import load_region_map
from label_exports import cvat_coco, label_map, paint
from round_checks import check_proposals
from segmentation.data import SegmentationSample
from segmentation.task import SegmentationTask
from segmentation.train import main

TINY = ["-s", "0", "--width", "0.125", "--epochs", "1", "--batch-size", "4",
        "--eval-batch-size", "4", "--superpixels-per-image", "12", "--no-progress",
        "--device", "cpu", "--threads", "1", "--from-scratch"]
COLOURS = [("background", (0, 0, 0)), ("car", (255, 0, 0)), ("road", (128, 64, 128))]
CLASSES = [name for name, _ in COLOURS]
W, H = 48, 32


@pytest.fixture
def scene(tmp_path):
    """12 images: a road band at the bottom and a car square somewhere above it:
    (folder, names, class maps by name, car squares by name as x, y, side)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    maps, cars = {}, {}
    for index in range(12):
        classes = np.zeros((H, W), dtype=np.int64)
        classes[24:] = 2
        x, y = int(rng.integers(0, W - 10)), int(rng.integers(0, 14))
        classes[y:y + 10, x:x + 10] = 1
        pixels = paint(classes, [colour for _, colour in COLOURS])
        noise = rng.integers(0, 40, size=pixels.shape)
        name = f"img_{index:02d}.png"
        Image.fromarray(np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8)).save(
            folder / name)
        maps[name], cars[name] = classes, (x, y, 10)
    return folder, sorted(maps), maps, cars


def _cvat_masks(root, labeled, maps):
    label_map(root / "labelmap.txt", COLOURS)
    (root / "SegmentationClass").mkdir(parents=True)
    for name in labeled:
        Image.fromarray(paint(maps[name], [colour for _, colour in COLOURS])).save(
            root / "SegmentationClass" / name)
    return root


def _cvat_polygons(root, names, labeled, cars):
    """CVAT's COCO 1.0 with a polygon per car and per road (background is what no polygon
    covers); the car is listed first in CVAT's labels, as the masks' label map has it."""
    frames = [{"file_name": name, "width": W, "height": H} for name in names]
    notes = []
    for name in labeled:
        x, y, side = cars[name]
        notes.append({"image": names.index(name), "label": "car", "bbox": [x, y, side, side],
                      "segmentation": [[x, y, x + side, y, x + side, y + side, x, y + side]]})
        notes.append({"image": names.index(name), "label": "road", "bbox": [0, 24, W, 8],
                      "segmentation": [[0, 24, W, 24, W, H, 0, H]]})
    return cvat_coco(root, ["car", "road"], frames, notes)


def _round(folder, labels, workspace, *extra):
    return main(["round", "--images", str(folder), "--labels", str(labels), "--workspace",
                 str(workspace), *TINY, *extra])


def _files(folder):
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


def test_two_rounds_from_mask_pngs_then_coco_polygons(tmp_path, scene):
    folder, names, maps, cars = scene
    before = _files(folder)
    workspace = tmp_path / "ws"
    labeled = names[:5]
    first = _round(folder, _cvat_masks(tmp_path / "masks", labeled, maps), workspace,
                   "--budget", "3")
    proposed = check_proposals(first, "segmentation", CLASSES)
    assert len(proposed) == 3 and not set(proposed) & set(labeled)
    # the class-id PNGs the task trains on are in the round's folder, not beside the images
    written = Image.open(first / "label_maps" / f"{labeled[0]}.png")
    np.testing.assert_array_equal(np.asarray(written), maps[labeled[0]])
    assert _files(folder) == before
    # every proposal is pre-annotated with a brush mask per predicted class
    tasks = json.loads((first / "proposals" / "label_studio_tasks.json").read_text())
    assert all(task["predictions"][0]["result"] for task in tasks)
    # the page keys the colours of the classes its masks show, by name
    page = (first / "proposals" / "report" / "index.html").read_text()
    key = page[page.index('class="key"'):page.index("</p>", page.index('class="key"'))]
    shown = {CLASSES[label] for task in tasks for label in range(3)
             if any(CLASSES[label] in result["value"].get("brushlabels", [])
                    for result in task["predictions"][0]["result"])}
    assert key.count('class="swatch"') >= 1 and all(name in key for name in shown)
    # round 2 is labeled in another tool format; the categories are the same names
    labeled = labeled + proposed[:1]
    second = _round(folder, _cvat_polygons(tmp_path / "coco", names, labeled, cars), workspace,
                    "--budget", "3", "--warm-start")
    assert second.name == "round_002"
    again = check_proposals(second, "segmentation", CLASSES)
    assert len(again) == 3 and not set(again) & (set(proposed) | set(labeled))
    assert json.loads((workspace / "workspace.json").read_text())["categories"] == CLASSES
    assert _files(folder) == before


@pytest.mark.parametrize("strategy", ["random_superpixels", "ripu_superpixels"])
def test_a_superpixel_round_proposes_regions_with_their_maps(tmp_path, scene, strategy):
    folder, names, maps, _ = scene
    round_dir = _round(folder, _cvat_masks(tmp_path / "masks", names[:4], maps),
                       tmp_path / "ws", "--strategy", strategy,
                       "--superpixels-per-cycle", "5")
    proposed = check_proposals(round_dir, "segmentation", CLASSES)
    rows = (round_dir / "proposals" / "regions.csv").read_text().splitlines()
    assert rows[0] == "name,region_id,score" and len(rows) == 6
    regions = [row.split(",") for row in rows[1:]]
    assert {name for name, _, _ in regions} == set(proposed)
    assert not set(proposed) & set(names[:4])
    for name, region, _ in regions:   # each region id is one of its image's map
        region_map = load_region_map(round_dir / "proposals" / "region_maps" / name)
        assert region_map.shape == (H, W) and int(region) in np.unique(region_map)
    page = (round_dir / "proposals" / "report" / "index.html").read_text()
    assert "regions.csv" in page
    # FiftyOne's export: the proposed images are those holding chosen regions, ranked as in
    # priority.csv, each scored by its chosen regions' sum
    from active_learning.export import export_fiftyone

    with open(export_fiftyone(round_dir) / "labels.csv", newline="") as handle:
        exported = [row for row in csv.DictReader(handle) if row["al_status"] == "proposed"]
    priority = (round_dir / "proposals" / "priority.csv").read_text().splitlines()[1:]
    assert [Path(row["filepath"]).name for row in exported] == [
        Path(line.split(",")[0]).name for line in priority]
    assert [row["al_rank"] for row in exported] == [str(k) for k in range(1, len(priority) + 1)]
    for row in exported:
        mine = [float(score) for name, _, score in regions
                if Path(name).name == Path(row["filepath"]).name]
        assert float(row["al_score"]) == pytest.approx(sum(mine), abs=3e-5)


@pytest.mark.parametrize(("strategy", "copied"), [("entropy", "scores.csv"),
                                                  ("random_superpixels", "regions.csv")])
def test_the_round_copies_the_runs_scores_atomically(tmp_path, scene, monkeypatch, strategy,
                                                     copied):
    # copied into proposals/ through a temporary file renamed into place, never in place
    import os

    folder, names, maps, _ = scene
    replaced = []
    rename = os.replace

    def recording(source, target, *args, **kwargs):
        replaced.append(str(target))
        return rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", recording)
    _round(folder, _cvat_masks(tmp_path / "masks", names[:4], maps), tmp_path / "ws",
           "--strategy", strategy, "--budget", "2", "--superpixels-per-cycle", "3")
    assert str(tmp_path / "ws" / "round_001" / "proposals" / copied) in replaced


class _Constant(torch.nn.Module):
    """Logits at half the input's resolution, class 2 everywhere but the top-left quarter."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        batch, _, height, width = images.shape
        logits = torch.zeros(batch, 3, height // 2, width // 2)
        logits[:, 2] = 1.0
        logits[:, 1, :height // 4, :width // 4] = 2.0
        return logits


def test_prediction_is_a_mask_of_the_image_files_size(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(path)
    task = SegmentationTask([SegmentationSample(path, None, None, "a.png")], [],
                            data_format="folder", num_classes=3, class_names=CLASSES,
                            mean=(0.5,) * 3, std=(0.2,) * 3, progress=False)
    prediction = task.prediction(_Constant(), 0)
    assert (prediction.width, prediction.height) == (24, 16)
    expected = np.full((16, 24), 2)
    expected[:8, :12] = 1
    np.testing.assert_array_equal(prediction.mask, expected)
