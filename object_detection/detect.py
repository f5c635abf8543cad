"""Run a trained detector of this project over a folder of images; write a COCO detections JSON.

    python -m object_detection.detect --weights al/round_003/run/checkpoints/cycle_00.pt \\
        --images photos/ --output persons.json --category person

The checkpoint is a run's ``checkpoints/cycle_XX.pt`` (a simulation's with ``--save-checkpoints``,
or a labeling round's); the model it holds is rebuilt from the run's ``args.json`` beside
``checkpoints/`` (its width, VGG-16-BN, default boxes and class names). Every image under
``--images`` (any depth) is detected as the evaluation does (score above 0.01, NMS 0.45),
resized to 300 x 300 and the boxes scaled back to its pixels.

The output is COCO's result format (cocodataset.org/#format-results, what pose's
``--person-boxes`` and HRNet's ``COCO_val2017_detections_*.json`` are): a list of
``{"file_name", "image_id", "category_id", "bbox": [x, y, w, h], "score"}``, ``file_name``
relative to ``--images``, ``image_id`` the file's number where its stem is one (COCO's naming)
else its position (from 1). With ``--category NAME`` only that class's boxes are written, with
``category_id`` 1 (COCO's person, what ``--person-boxes`` reads); otherwise every class's, with
its label 1..K (``categories`` in ``<output>.categories.json``).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python detect.py` from the task folder
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "object_detection"

from active_learning.errors import ConfigError, UserError
from active_learning.files.atomic import atomic_write_text

logger = logging.getLogger("active_learning")


def run_record(weights: Path) -> dict[str, Any]:
    """The ``task`` record of the run a checkpoint belongs to (``<run>/args.json``)."""
    record_file = weights.resolve().parent.parent / "args.json"
    if not record_file.is_file():
        raise ConfigError(f"--weights {weights}: no args.json of its run at {record_file}: give "
                          "a run's checkpoints/cycle_XX.pt")
    record = json.loads(record_file.read_text(encoding="utf-8"))
    task = record.get("task", {})
    if record.get("adapter") != "detection" or "classes" not in task:
        raise ConfigError(f"--weights {weights}: {record_file} is not a detection run's")
    return task


def detections(weights: str | Path, images: str | Path, *, category: str | None = None,
               min_score: float = 0.01, device: str = "cpu") -> tuple[list[dict], list[str]]:
    """The detector's boxes on every image under ``images`` (see the module doc): (COCO result
    entries, the class names)."""
    import torch

    from active_learning.files.images import image_names as find_images

    from .task import DetectionTask
    from .voc import VOCSample

    weights, folder = Path(weights), Path(images)
    task_record = run_record(weights)
    classes = list(task_record["classes"])
    wanted = None
    if category is not None:
        if category not in classes:
            raise ConfigError(f"--category {category}: the detector's classes are "
                              f"{', '.join(classes)}")
        wanted = classes.index(category)
    names = find_images(folder)
    task = DetectionTask([VOCSample(image=folder / name, name=name) for name in names], [],
                         class_names=classes, width=float(task_record.get("width", 1.0)),
                         batch_norm=bool(task_record.get("batch_norm", False)),
                         anchors=str(task_record.get("anchors", "voc")), weights=str(weights),
                         progress=False)
    model = task.build_model().to(device).eval()
    entries = []
    with torch.inference_mode():
        for index, name in enumerate(names):
            found = task.prediction(model, index, min_score=min_score)
            stem = Path(name).stem
            image_id = int(stem) if stem.isdigit() else index + 1
            for box, label, score in zip(found.boxes, found.labels, found.box_scores,
                                         strict=True):
                if wanted is not None and label != wanted:
                    continue
                x1, y1, x2, y2 = (float(v) for v in box)
                entries.append({"file_name": name, "image_id": image_id,
                                "category_id": 1 if wanted is not None else int(label) + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return entries, classes


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--weights", required=True,
                        help="a run's checkpoints/cycle_XX.pt (its args.json describes the model)")
    parser.add_argument("--images", required=True, help="the images (any depth)")
    parser.add_argument("--output", required=True, help="the COCO detections JSON to write")
    parser.add_argument("--category", default=None,
                        help="only this class's boxes, as category_id 1 (e.g. person, for "
                             "human_pose_estimation's --person-boxes)")
    parser.add_argument("--min-score", type=float, default=0.01,
                        help="boxes scoring below this are left out")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    """Write the detections; returns the output file. A user error is one ``error:`` line and
    exit 2."""
    from active_learning.console import configure_logging
    from active_learning.distributed import resolve_device

    configure_logging()
    args = get_args_parser().parse_args(argv)
    try:
        entries, classes = detections(args.weights, args.images, category=args.category,
                                      min_score=args.min_score,
                                      device=resolve_device(args.device))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    output = Path(args.output)
    atomic_write_text(output, json.dumps(entries) + "\n")
    if args.category is None:
        categories = [{"id": label, "name": name} for label, name in enumerate(classes, 1)]
        atomic_write_text(output.with_suffix(".categories.json"), json.dumps(categories) + "\n")
    logger.info("%d detections in %s", len(entries), output)
    return output


if __name__ == "__main__":
    main()
