"""Reports to test: a round's page with every kind of thumbnail, and a run folder on disk."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from active_learning.files.embeddings import EmbeddingMap, write_embeddings_file
from active_learning.files.predictions import ImagePrediction
from active_learning.reports.page import ChosenImage, Selection, write_report

CLASSES = ["cat", "dog", "bird <&>"]
SKELETON = [(0, 1), (1, 2)]


def make_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width, 3)) * 60 + 90).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def embedding_map(n: int = 60, seed: int = 0) -> EmbeddingMap:
    """Two clusters of n/2 points in 8-D; 10 labeled, 6 chosen, the rest unlabeled."""
    rng = np.random.default_rng(seed)
    half = n // 2
    embeddings = np.r_[rng.normal(0, 1, (half, 8)), rng.normal(6, 1, (n - half, 8))]
    status = np.array(["unlabeled"] * n, dtype="<U9")
    status[:5] = "labeled"
    status[half:half + 5] = "labeled"
    status[[10, 11, 12, half + 10, half + 11, half + 12]] = "chosen"
    classes = np.r_[np.zeros(half, int), np.ones(n - half, int)]
    return EmbeddingMap(embeddings, status, classes)


def round_selection(images: Path) -> Selection:
    """A selection with a detection, a pose, a mask, a superpixel and a classification item."""
    mask = np.zeros((40, 60), dtype=np.int64)
    mask[10:30, 5:25] = 1
    region_map = (np.arange(40)[:, None] // 10) * 10 + np.arange(60)[None, :] // 15
    chosen = [
        ChosenImage("det/a <1>.jpg", 0.9, make_image(images / "det" / "a <1>.jpg", 80, 60, 1),
                    ImagePrediction(80, 60, boxes=np.array([[10.0, 10.0, 50.0, 40.0]]),
                                    labels=np.array([2]), box_scores=np.array([0.8]))),
        ChosenImage("pose.png", 0.3, make_image(images / "pose.png", 60, 80, 2),
                    ImagePrediction(60, 80, boxes=np.array([[5.0, 5.0, 55.0, 75.0]]),
                                    keypoints=np.array([[[20, 20, .9], [30, 40, .9], [40, 60, .9]]]))),
        ChosenImage("seg.png", 0.7, make_image(images / "seg.png", 60, 40, 3),
                    ImagePrediction(60, 40, mask=mask)),
        ChosenImage("sp.png", 0.5, make_image(images / "sp.png", 60, 40, 4), region_map=region_map,
                    regions=np.array([0, 12]), region_scores=np.array([0.5, 0.25])),
        ChosenImage("cls.png", 0.1, make_image(images / "cls.png", 16, 16, 5),
                    ImagePrediction(16, 16, label=1, confidence=0.6), note="true class: cat"),
        ChosenImage("no image.png", 0.05),
    ]
    return Selection("round 2", chosen=chosen,
                     class_counts={"labeled": [4, 5, 1], "chosen (predicted)": [1, 3, 2]},
                     embedding_map=embedding_map(), links={"priority CSV": images / "priority.csv"})


def write_round_report(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    (images / "priority.csv").parent.mkdir(parents=True, exist_ok=True)
    (images / "priority.csv").write_text("name,entropy_value\n")
    rows = [{"cycle": c, "n_labeled": 10 + 5 * c, "accuracy": 0.5 + 0.1 * c} for c in range(3)]
    return write_report(tmp_path / "report", title="a round <2>", selections=[round_selection(images)],
                        summary={"task": "test", "round": 2}, metrics_rows=rows, metric="accuracy",
                        class_names=CLASSES, skeleton=SKELETON, links={"images": images})


def make_run_folder(root: Path, images: Path) -> Path:
    """A superpixel run folder as the runner writes it: args.json, metrics.csv, priorities,
    regions (CSV and 16-bit maps), a selection picture, and an embeddings file."""
    from active_learning.files.export import (
        write_entropies_csv,
        write_metrics_csv,
        write_region_csv,
    )
    from active_learning.loop.superpixels import save_region_map

    run = root / "segmentation" / "toy" / "entropy" / "seed0"
    run.mkdir(parents=True)
    (run / "args.json").write_text(json.dumps({
        "adapter": "segmentation", "loop": {"strategy": "entropy", "seed": 0, "budget": 2},
        "metric": {"name": "miou"}, "task": {"dataset": "toy"}, "units": {"kind": "regions"}}))
    write_metrics_csv([{"cycle": c, "n_labeled": 4 + 2 * c, "labeled_pixel_fraction": 0.1 * (c + 1),
                        "miou": 0.2 + 0.1 * c} for c in range(2)], run / "metrics.csv")
    region_map = (np.arange(40)[:, None] // 20) * 2 + np.arange(60)[None, :] // 30
    for cycle in range(2):
        names = [f"img{cycle}_{k}.png" for k in range(2)]
        for k, name in enumerate(names):
            make_image(images / name, 60, 40, seed=cycle * 10 + k)
            save_region_map(region_map, run / "regions" / "maps" / name)
        write_entropies_csv(names, [0, 1], [0.8, 0.4], run / "priorities" / f"cycle_{cycle:02d}.csv")
        write_region_csv([names[0], names[0], names[1]], [0, 3, 1], [0.5, 0.3, 0.4],
                         run / "regions" / f"cycle_{cycle:02d}.csv")
        make_image(run / "selections" / f"cycle_{cycle:02d}.png", 50, 30, seed=99)
    points = embedding_map(40)
    write_embeddings_file(run / "embeddings" / "cycle_01.npz", points.embeddings, points.status,
                          points.classes)
    with open(run / "priorities" / "cycle_01.csv", newline="") as handle:
        assert next(csv.reader(handle)) == ["name", "entropy_value"]
    return run
