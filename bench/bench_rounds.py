"""How long one labeling round takes for each task's CPU preset (``train.py round``).

    python bench/bench_rounds.py --pool 2000 --labeled 200            # the three dense tasks
    python bench/bench_rounds.py --pool 10000 --tasks object_detection --json rounds.json

For each task, writes the CPU benchmark scenes (``python -m synthetic``) of ``--labeled +
--pool`` images, an export of the first ``--labeled`` as an annotation tool writes it (a VOC XML
folder for detection, a class-id mask folder with ``classes.txt`` for segmentation, a COCO
keypoints file for pose, with every image's persons boxed in a detections JSON), and runs one
round with the task's ``--preset synthetic-cpu`` (``--epochs`` 1 by default: the training is
not what is measured, but an untrained detector keeps more boxes to score) and its benchmark
strategy. Prints, per task: the images labeled and scored (pose's
scenes without a labeled person are neither: its pool holds the images with a person box); the
scoring time of the pool (the run's ``select_seconds``: every candidate scored and the budget
chosen) and its images per second; the training time; the whole round's wall time (reading the
export, checking the images, training, scoring, writing the proposals with their
pre-annotations and the report).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STRATEGIES = {"object_detection": "entropy", "segmentation": "mc_entropy",
              "human_pose_estimation": "heatmap_uncertainty"}
FORMATS = {"object_detection": "voc", "segmentation": "cityscapes",
           "human_pose_estimation": "coco-keypoints"}


def scenes(task: str, folder: Path, count: int) -> None:
    subprocess.run([sys.executable, "-m", "synthetic", "--format", FORMATS[task], "--output",
                    str(folder), "--train", str(count), "--val", "1"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def detection_export(data: Path, labeled: int, export: Path) -> tuple[Path, list[str]]:
    """The first ``labeled`` VOC XML files as a VOC XML folder export; (images folder, extra
    flags)."""
    voc = data / "VOC2007"
    (export / "Annotations").mkdir(parents=True)
    for path in sorted((voc / "Annotations").glob("*.xml"))[:labeled]:
        shutil.copy(path, export / "Annotations" / path.name)
    # CVAT's labelmap.txt: every label of the project, background first
    names = (data / "classes.txt").read_text().split()
    (export / "labelmap.txt").write_text("".join(
        f"{name}:{k},{k},{k}::\n" for k, name in enumerate(["background", *names])))
    return voc / "JPEGImages", []


def segmentation_export(data: Path, labeled: int, export: Path) -> tuple[Path, list[str]]:
    """The first ``labeled`` Cityscapes label maps as class-id PNGs with ``classes.txt``."""
    import numpy as np
    from PIL import Image

    from active_learning.labels.cityscapes_ids import CITYSCAPES_CLASSES, LABEL_TO_TRAIN

    images = data / "leftImg8bit" / "train"
    table = np.where(LABEL_TO_TRAIN >= 0, LABEL_TO_TRAIN, 255).astype(np.uint8)
    export.mkdir(parents=True)
    (export / "classes.txt").write_text("\n".join(CITYSCAPES_CLASSES) + "\n")
    for path in sorted(images.rglob("*.png"))[:labeled]:
        name = path.relative_to(images)
        ids = data / "gtFine" / "train" / name.parent / name.name.replace(
            "_leftImg8bit.png", "_gtFine_labelIds.png")
        target = export / name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(table[np.asarray(Image.open(ids))]).save(target)
    return images, []


def pose_export(data: Path, labeled: int, export: Path) -> tuple[Path, list[str]]:
    """The first ``labeled`` images' persons as a COCO keypoints file; every image's persons'
    boxes as a detections JSON (``--person-boxes``)."""
    document = json.loads((data / "annotations" / "person_keypoints_train2017.json").read_text())
    images = sorted(document["images"], key=lambda image: image["file_name"])
    keep = {image["id"] for image in images[:labeled]}
    files = {image["id"]: image["file_name"] for image in images}
    subset = dict(document, images=[image for image in images if image["id"] in keep],
                  annotations=[note for note in document["annotations"]
                               if note["image_id"] in keep])
    (export / "annotations").mkdir(parents=True)
    (export / "annotations" / "person_keypoints_default.json").write_text(json.dumps(subset))
    boxes = [{"file_name": files[note["image_id"]], "bbox": note["bbox"], "score": 1.0,
              "category_id": 1} for note in document["annotations"]]
    (export / "boxes.json").write_text(json.dumps(boxes))
    return data / "images" / "train2017", ["--person-boxes", str(export / "boxes.json")]


EXPORTS = {"object_detection": detection_export, "segmentation": segmentation_export,
           "human_pose_estimation": pose_export}


def measure(task: str, pool: int, labeled: int, budget: int, folder: Path,
            threads: int, epochs: int) -> dict:
    import importlib

    import numpy as np

    data, export = folder / task / "data", folder / task / "export"
    start = time.perf_counter()
    scenes(task, data, labeled + pool)
    written = time.perf_counter() - start
    images, extra = EXPORTS[task](data, labeled, export)
    labels = export / "annotations" / "person_keypoints_default.json" \
        if task == "human_pose_estimation" else export
    main = importlib.import_module(f"{task}.train").main
    start = time.perf_counter()
    round_dir = main(["round", "--images", str(images), "--labels", str(labels), "--workspace",
                      str(folder / task / "ws"), "--preset", "synthetic-cpu", "--strategy",
                      STRATEGIES[task], "--epochs", str(epochs), "--budget", str(budget),
                      "--no-progress", "--device", "cpu", "--threads", str(threads), *extra])
    wall = time.perf_counter() - start
    with open(round_dir / "run" / "metrics.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    scoring = float(row["select_seconds"])
    with np.load(round_dir / "run" / "pool.npz") as state:   # the images of the run's pool
        labeled_at = state["labeled_at"]
    scored = int((labeled_at != 0).sum())   # every image not labeled before the round
    return {"task": task, "strategy": STRATEGIES[task], "labeled": int((labeled_at == 0).sum()),
            "scored": scored, "budget": budget, "scenes_seconds": round(written, 1),
            "scoring_seconds": round(scoring, 1), "images_per_second": round(scored / scoring, 1),
            "train_seconds": round(float(row["train_seconds"]), 1),
            "round_seconds": round(wall, 1)}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=2000, help="unlabeled images to score")
    parser.add_argument("--labeled", type=int, default=200, help="labeled images of the export")
    parser.add_argument("--budget", type=int, default=100, help="images proposed")
    parser.add_argument("--tasks", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--epochs", type=int, default=1,
                        help="training epochs (the preset's: a trained detector keeps fewer "
                             "boxes, which its scoring time depends on)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--keep", default=None, help="write the scenes here and keep them")
    args = parser.parse_args(argv)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench_rounds_"))
    os.environ.setdefault("XDG_CACHE_HOME", str(folder / "cache"))
    try:
        results = [measure(task, args.pool, args.labeled, args.budget, folder, args.threads,
                           args.epochs) for task in args.tasks]
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    report = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{os.cpu_count()} CPUs", "results": results}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
