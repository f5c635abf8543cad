"""COCO person keypoints on disk, read with pycocotools: images and persons (person-box files:
``person_boxes.py``).

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

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import DataError
from active_learning.labels.coco import load_coco
from active_learning.labels.exported import Labels
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
