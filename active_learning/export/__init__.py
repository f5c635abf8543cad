"""A round's folder for other tools: ``python -m active_learning.export fiftyone ROUND_DIR``.

``fiftyone`` writes ``ROUND_DIR/fiftyone/`` (or ``--out DIR``), a dataset in FiftyOne's own
formats (docs.voxel51.com, "Importing data into FiftyOne"), read without copying the images:

* ``labels.csv``: FiftyOne's ``CSVDataset`` (``fiftyone.utils.csv.CSVDatasetImporter``): a
  ``filepath`` column (absolute) and, per image of the project, ``al_status`` (``labeled``,
  ``proposed`` or ``other``), ``al_round``, and for the scored ones ``al_rank`` (1 = label
  first) and ``al_score`` (the acquisition score, ``scores.csv``'s). A superpixel round scores
  regions, not images, and writes no ``scores.csv``: its proposed images are those holding
  chosen regions (``priority.csv``, which ``regions.csv`` details per region), ranked as there,
  each scored by the sum of its chosen regions' scores; its other images have no rank;
* ``predictions.json``: the model's predictions on the proposed images with their confidences:
  boxes, masks and persons as FiftyOne's ``COCODetectionDataset`` reads them (the round's
  ``predictions_coco.json``: its ``score`` is each label's ``confidence``), or one class per
  image as its ``FiftyOneImageClassificationDataset`` (``{"classes", "labels": {path without
  extension: {"label", "confidence"}}}``, from the Label Studio tasks' predictions);
* ``embeddings.npz``: ``names`` and ``embeddings`` float32 [N, D] of the round's map points
  (the labeled, proposed and other images the round embedded), for
  ``fiftyone.brain.compute_visualization(dataset, embeddings=...)``;
* ``load.py``: ``load(name=None)`` makes the FiftyOne dataset: the ``fo.Dataset.from_dir`` call
  of the CSV, the predictions merged as the ``predictions`` field, the embeddings as
  ``al_embedding`` (the README shows it).

The images are where the round read them (``round_NNN/images.txt``, written by the round).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from active_learning.errors import ConfigError
from active_learning.files.atomic import atomic_copy_file, atomic_write_text
from active_learning.files.coco_predictions import COCO_PREDICTIONS_FILE
from active_learning.files.export import read_entropies_csv, read_scores_csv
from active_learning.files.proposals import FILE_NAMES
from active_learning.rounds.proposals import REGIONS_FILE, SCORES_FILE
from active_learning.rounds.run import IMAGES_FILE

__all__ = ["FIELDS", "export_fiftyone", "main"]

logger = logging.getLogger("active_learning")

# The CSV's fields and their types, as the loader hands them to FiftyOne's CSV importer.
FIELDS = {"al_status": "str", "al_round": "int", "al_rank": "int", "al_score": "float"}
LABELED, PROPOSED, OTHER = "labeled", "proposed", "other"
PRIORITY_FILE = FILE_NAMES["priority_csv"]

LOADER = '''"""Load this round into FiftyOne (written by python -m active_learning.export fiftyone).

    import runpy
    dataset = runpy.run_path("{folder}/load.py")["load"]()
"""
from pathlib import Path

import numpy as np

import fiftyone as fo

HERE = Path(__file__).resolve().parent
IMAGES = {images!r}
FIELDS = {{"al_status": str, "al_round": int, "al_rank": int, "al_score": float}}
PREDICTIONS = {predictions!r}     # the dataset type of predictions.json, or None


def load(name=None):
    dataset = fo.Dataset.from_dir(dataset_dir=str(HERE), dataset_type=fo.types.CSVDataset,
                                  labels_path=str(HERE / "labels.csv"), data_path=IMAGES,
                                  fields=FIELDS, name=name)
    if PREDICTIONS == "COCODetectionDataset":
        dataset.merge_dir(data_path=IMAGES, labels_path=str(HERE / "predictions.json"),
                          dataset_type=fo.types.COCODetectionDataset,
                          label_types=["detections", "segmentations", "keypoints"],
                          label_field="predictions", insert_new=False)
    elif PREDICTIONS == "FiftyOneImageClassificationDataset":
        dataset.merge_dir(data_path=IMAGES, labels_path=str(HERE / "predictions.json"),
                          dataset_type=fo.types.FiftyOneImageClassificationDataset,
                          label_field="predictions", insert_new=False)
    points = np.load(HERE / "embeddings.npz")
    if len(points["names"]):
        by_path = {{str(Path(IMAGES) / name): row for name, row in
                    zip(points["names"], points["embeddings"])}}
        for sample in dataset.iter_samples(autosave=True):
            if sample.filepath in by_path:
                sample["al_embedding"] = by_path[sample.filepath].tolist()
    return dataset


if __name__ == "__main__":
    print(load())
'''


def _rows(round_dir: Path, images: Path) -> list[dict[str, Any]]:
    """One row per image of the project: the labeled ones (``labeled.txt``'s order), the
    scored ones by rank (``scores.csv``), then the others (not scored: out for labeling from
    an earlier round, unreadable, or left out by a strategy that scores no candidate)."""
    from active_learning.files.images import image_names

    number = int(round_dir.name.removeprefix("round_"))
    rows, seen = [], set()
    labeled = (round_dir / "labeled.txt").read_text(encoding="utf-8").splitlines()
    for name in labeled:
        rows.append({"filepath": str(images / name), "al_status": LABELED, "al_round": number,
                     "al_rank": "", "al_score": ""})
    for name, score, rank, chosen in _scored(round_dir / "proposals"):
        rows.append({"filepath": str(images / name), "al_status": PROPOSED if chosen else OTHER,
                     "al_round": number, "al_rank": rank, "al_score": repr(float(score))})
    seen = {row["filepath"] for row in rows}
    rows += [{"filepath": str(images / name), "al_status": OTHER, "al_round": number,
              "al_rank": "", "al_score": ""}
             for name in image_names(images) if str(images / name) not in seen]
    return rows


def _scored(proposals: Path) -> list[tuple[str, float, int, bool]]:
    """``(name, score, rank, chosen)`` of the round's scored images: ``scores.csv``'s, or a
    superpixel round's proposed images (``priority.csv``: those holding chosen regions, best
    first, each with its chosen regions' summed score), all chosen."""
    if (proposals / SCORES_FILE).is_file():
        return read_scores_csv(proposals / SCORES_FILE)
    chosen = read_entropies_csv(proposals / PRIORITY_FILE)
    return [(name, score, rank, True) for rank, (name, score) in enumerate(chosen, start=1)]


def _classifications(tasks_file: Path) -> dict[str, Any] | None:
    """The Label Studio tasks' ``choices`` predictions as FiftyOne's image classification
    labels (None when no task has one)."""
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    labels = {}
    for task in tasks:
        for prediction in task.get("predictions", []):
            for result in prediction.get("result", []):
                if result.get("type") == "choices":
                    key = str(PurePosixPath(task["data"]["name"]).with_suffix(""))
                    labels[key] = {"label": result["value"]["choices"][0],
                                   "confidence": result.get("score")}
    return {"classes": None, "labels": labels} if labels else None


def export_fiftyone(round_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the round's FiftyOne dataset (see the module doc); returns its folder.

    Raises:
        ConfigError: ``round_dir`` is not a finished round's folder.
    """
    round_dir = Path(round_dir)
    proposals = round_dir / "proposals"
    # a superpixel round has no scores.csv: its scores are per region (regions.csv), its
    # images' in priority.csv
    scored = (proposals / SCORES_FILE,) if not (proposals / REGIONS_FILE).is_file() else (
        proposals / PRIORITY_FILE,)
    for needed in (round_dir / IMAGES_FILE, round_dir / "labeled.txt", *scored):
        if not needed.is_file():
            raise ConfigError(f"{round_dir} is not a finished round's folder (no {needed.name}; "
                              "give round_NNN of a workspace, after the round ran)")
    images = Path((round_dir / IMAGES_FILE).read_text(encoding="utf-8").strip())
    folder = Path(out) if out is not None else round_dir / "fiftyone"
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["filepath", *FIELDS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(round_dir, images))
    atomic_write_text(folder / "labels.csv", buffer.getvalue())
    predictions = None
    (folder / "predictions.json").unlink(missing_ok=True)
    if (proposals / COCO_PREDICTIONS_FILE).is_file():
        atomic_copy_file(proposals / COCO_PREDICTIONS_FILE, folder / "predictions.json")
        predictions = "COCODetectionDataset"
    elif (proposals / "label_studio_tasks.json").is_file():
        classes = _classifications(proposals / "label_studio_tasks.json")
        if classes is not None:
            atomic_write_text(folder / "predictions.json", json.dumps(classes) + "\n")
            predictions = "FiftyOneImageClassificationDataset"
    _embeddings(round_dir / "run" / "embeddings" / "cycle_00.npz", folder / "embeddings.npz")
    atomic_write_text(folder / "load.py", LOADER.format(folder=folder, images=str(images),
                                                        predictions=predictions))
    logger.info("FiftyOne dataset of %s in %s: import it with load.py's load()", round_dir,
                folder)
    return folder


def _embeddings(source: Path, target: Path) -> None:
    """The round's map points with their names (none: empty arrays)."""
    from active_learning.files.atomic import atomic_open
    from active_learning.files.embeddings import read_embeddings_file

    names, rows = np.zeros(0, dtype=str), np.zeros((0, 0), dtype=np.float32)
    if source.is_file():
        points = read_embeddings_file(source)
        if points.names is not None:
            names, rows = points.names, np.asarray(points.embeddings, dtype=np.float32)
    with atomic_open(target, "wb") as handle:
        np.savez_compressed(handle, names=names, embeddings=rows)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module doc); 0 on success, exit 2 on a user error (one
    line)."""
    from active_learning.console import cli_errors, configure_logging

    parser = argparse.ArgumentParser(prog="python -m active_learning.export",
                                     description="a round's folder for other tools")
    parser.add_argument("tool", choices=["fiftyone"])
    parser.add_argument("round_dir", metavar="ROUND_DIR", help="a workspace's round_NNN")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where to write (default: ROUND_DIR/fiftyone)")
    args = parser.parse_args(argv)
    configure_logging()
    with cli_errors():
        export_fiftyone(args.round_dir, args.out)
    return 0
