"""COCO person keypoints on disk, read with pycocotools: images, persons, person-box files.

Layout (``--dataDir`` / ``--dataset-root`` is the folder holding ``annotations/``), HRNet's
``data/coco`` or the official download::

    annotations/person_keypoints_{train,val}2017.json
    images/{train,val}2017/000000391895.jpg       (HRNet)
    {train,val}2017/000000391895.jpg              (cocodataset.org's zips, unpacked beside)

A training sample is a **person** (one annotation with its box and 17 keypoints); the unit an
annotator labels is the **image** (``PoseData.unit_of_sample``).

Each annotation is checked and its box cleaned by ``active_learning.labels.keypoints`` (shared
with the reader of annotation tools' COCO exports), as HRNet's
``_load_coco_keypoint_annotation_kernal`` does. What stops a run (``DataError``, exit 2, naming
the file and the annotation) and what is skipped:

* stops: an annotation file that is missing or not JSON, one without the keypoint fields (a
  detection or caption file), a keypoint array whose length is not 3 x 17, an image the file
  references that is missing on disk (and, in ``PoseTask.check_files``, one that cannot be read);
* boxes are sanitised as HRNet does (see ``labels.keypoints.clean_box``): the top-left corner
  clipped to the image, the box then ``w - 1`` by ``h - 1`` pixels from there, clipped to the
  last pixel;
* skipped with one warning per file, as HRNet skips them: crowd annotations, persons whose
  annotation ``area`` is 0 and persons whose box lies outside the image (plus boxes of neither
  width nor height, which HRNet cannot crop either);
* skipped silently, as HRNet does: persons with no labeled keypoint (nothing to learn), and so
  images with no person left (they are never candidates, and labeling one teaches nothing).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import DataError
from active_learning.files.images import find_images
from active_learning.labels import Labels
from active_learning.labels.coco import load_coco
from active_learning.labels.keypoints import SKIP_REASONS, PersonLabel, person_label

# COCO's skeleton: 1-based joint pairs, as in person_keypoints_*.json.
COCO_SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
                 (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))


@dataclass
class PoseImage:
    """One image of the pool or the test set. ``image_id`` is COCO's (None for unlabeled files)."""

    path: Path
    name: str
    image_id: int | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class Person:
    """One person: ``box`` (x, y, w, h) in image pixels; ``keypoints`` float32 [17, 3] (x, y, v),
    ``None`` for a person-box-only entry (rank mode); ``image`` indexes the images list."""

    image: int
    box: tuple[float, float, float, float]
    keypoints: np.ndarray | None
    annotation_id: int | None = None
    score: float = 1.0


@dataclass
class PoseData:
    """Images and their persons (every person's image is in ``images``)."""

    images: list[PoseImage]
    persons: list[Person]
    annotation_file: Path | None = None
    coco: Any = None          # pycocotools COCO of the annotation file (the evaluation's
                              # ground truth)

    @property
    def unit_of_sample(self) -> np.ndarray:
        """int64 [P]: the image of each person."""
        return np.array([person.image for person in self.persons], dtype=np.int64)

    def __add__(self, other: PoseData) -> PoseData:
        offset = len(self.images)
        moved = [Person(p.image + offset, p.box, p.keypoints, p.annotation_id, p.score)
                 for p in other.persons]
        return PoseData(self.images + other.images, self.persons + moved, self.annotation_file,
                        self.coco)


def read_split(root: str | Path, split: str, *, image_folder: str | Path | None = None) -> PoseData:
    """The persons of ``<root>/annotations/person_keypoints_<split>.json`` and their images.

    Images come from ``image_folder``; by default from ``<root>/images/<split>`` (HRNet's
    layout) or, when that folder does not exist and ``<root>/<split>`` does, from there (the
    official download's). Only images holding a kept person are listed.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root} (expected annotations/ "
                        "and images/ as in COCO)")
    annotation_file = root / "annotations" / f"person_keypoints_{split}.json"
    folder = Path(image_folder) if image_folder else image_folder_of(root, split)
    coco = load_coco(annotation_file)
    return persons_of(coco, annotation_file, folder)


def image_folder_of(root: Path, split: str) -> Path:
    """Where a split's images are: HRNet's ``images/<split>``, else the official download's
    ``<split>`` beside ``annotations/`` (HRNet's when neither exists, for the message)."""
    hrnet, official = root / "images" / split, root / split
    return official if not hrnet.is_dir() and official.is_dir() else hrnet


def persons_of(coco, annotation_file: Path, folder: Path) -> PoseData:
    """Validate and collect the persons of a loaded COCO keypoints file (see the module doc)."""
    if "annotations" not in coco.dataset or "images" not in coco.dataset:
        raise DataError(f"{annotation_file} has no 'images' / 'annotations' "
                        "lists: is it a COCO file?")
    person_ids = coco.getCatIds(catNms=["person"]) or sorted(coco.cats)
    images: list[PoseImage] = []
    position: dict[int, int] = {}
    persons: list[Person] = []
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    for note in coco.dataset["annotations"]:
        if note.get("category_id") not in person_ids:
            continue
        where = f"{annotation_file}: annotation {note.get('id')}"
        image_id = note.get("image_id")
        result = person_label(note, coco.imgs.get(image_id), where)
        if not isinstance(result, PersonLabel):
            if result is not None:
                skipped[result] += 1
            continue
        if image_id not in position:
            info = coco.imgs[image_id]
            path = folder / info["file_name"]
            if not path.is_file():
                raise DataError(f"image missing: {path} ({annotation_file.name}, image {image_id})")
            position[image_id] = len(images)
            images.append(PoseImage(path, info["file_name"], image_id, info.get("width"),
                                    info.get("height")))
        persons.append(Person(position[image_id], result.box, result.keypoints,
                              result.annotation_id))
    dropped = {reason: count for reason, count in skipped.items() if count}
    if dropped:
        warnings.warn(f"{annotation_file.name}: skipped "
                      + ", ".join(f"{count} person(s) ({reason})"
                                   for reason, count in dropped.items()),
                      stacklevel=2)
    if not persons:
        raise DataError(f"{annotation_file} holds no person with a labeled keypoint")
    return PoseData(images, persons, annotation_file, coco)


def pose_data_from_labels(labels: Labels) -> PoseData:
    """A round's labeled images (``active_learning.labels.read_labels`` for
    human_pose_estimation) and their persons, in the labels' order. The persons were checked
    and cleaned as :func:`persons_of` does; the images' sizes are their files'."""
    images, persons = [], []
    for name, people in labels.targets.items():
        for person in people:
            persons.append(Person(len(images), person.box, person.keypoints,
                                  person.annotation_id))
        images.append(PoseImage(labels.images_dir / name, name))
    return PoseData(images, persons)


def read_person_boxes(folder: str | Path, boxes_file: str | Path, *,
                      min_score: float = 0.0) -> PoseData:
    """Rank mode: the unlabeled images under ``folder`` and their person boxes.

    ``boxes_file`` is a COCO detections JSON (a list of ``{"image_id", "bbox": [x, y, w, h],
    "score", "category_id"}``, what a person detector writes). An entry finds its image by a
    ``"file_name"`` (relative to ``folder``) if it has one, else by COCO's naming: the image whose
    file stem is the id (``000000391895.jpg`` for 391895). Boxes of other categories, with a
    score below ``min_score`` or of zero size are left out; images without a box are not ranked
    (top-down pose estimation needs a person box), with one warning.
    """
    folder = Path(folder)
    paths = find_images(folder, DataError)
    boxes_file = Path(boxes_file)
    if not boxes_file.is_file():
        raise DataError(f"--person-boxes file not found: {boxes_file} (top-down pose estimation "
                        "scores persons: give a COCO detections JSON of person boxes for "
                        "the unlabeled images)")
    try:
        entries = json.loads(boxes_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{boxes_file} is not JSON: {error}") from None
    if isinstance(entries, dict) and "annotations" in entries:
        entries = entries["annotations"]
    if not isinstance(entries, list):
        raise DataError(f"{boxes_file} must be a list of detections (image_id, bbox, score)")
    by_name = {path.relative_to(folder).as_posix(): path for path in paths}
    by_id: dict[int, str] = {}
    for name in by_name:
        stem = Path(name).stem
        if stem.isdigit():
            by_id.setdefault(int(stem), name)
    images: list[PoseImage] = []
    position: dict[str, int] = {}
    persons: list[Person] = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or "bbox" not in entry or len(entry["bbox"]) != 4:
            raise DataError(f"{boxes_file}: entry {number} has no 'bbox' of 4 numbers")
        if entry.get("category_id", 1) != 1 or float(entry.get("score", 1.0)) < min_score:
            continue
        box = tuple(float(v) for v in entry["bbox"])
        if box[2] <= 0 or box[3] <= 0:
            continue
        name = entry.get("file_name")
        if name is None:
            if "image_id" not in entry:
                raise DataError(f"{boxes_file}: entry {number} has neither "
                                "'file_name' nor 'image_id'")
            name = by_id.get(int(entry["image_id"]))
            if name is None:
                raise DataError(f"{boxes_file}: entry {number}: no image for image_id "
                                f"{entry['image_id']} under {folder} (expected a file named "
                                f"{int(entry['image_id']):012d}.jpg)")
        if name not in by_name:
            raise DataError(f"{boxes_file}: entry {number}: image {name} not found under {folder}")
        if name not in position:
            position[name] = len(images)
            images.append(PoseImage(by_name[name], name, entry.get("image_id")))
        persons.append(Person(position[name], box, None, score=float(entry.get("score", 1.0))))
    without = len(paths) - len(images)
    if without:
        warnings.warn(f"{without} of the {len(paths)} images under {folder} have no person box in "
                      f"{boxes_file.name} and are not ranked", stacklevel=2)
    if not persons:
        raise DataError(f"{boxes_file} gives no person box for any image under {folder}")
    return PoseData(images, persons)
