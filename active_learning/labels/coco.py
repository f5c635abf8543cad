"""COCO JSON, read with pycocotools: detection boxes, segmentation masks, person keypoints.

What each tool writes (the tests build exports in these shapes):

* CVAT "COCO 1.0" / "COCO Keypoints 1.0" (Datumaro's ``CocoExporter``, openvinotoolkit/datumaro
  ``plugins/data_formats/coco/exporter.py``; cvat ``apps/dataset_manager/formats/coco.py``
  exports with ``all_images=True``, ``merge_images=False``):
  ``annotations/instances_default.json`` (``person_keypoints_default.json``), images under
  ``images/default/``; image, annotation and category ids from 1, categories in the project's
  label order and listed even when unused, every frame listed even when unlabeled, width and
  height 0 when unknown; a box has ``segmentation: []``, a mask is an uncompressed RLE with
  ``iscrowd: 1``, each annotation carries an ``attributes`` dict (``{"occluded": false}``).
* Label Studio "COCO" (label-studio-converter ``Converter.convert_to_coco``): ``result.json``
  beside ``images/``; ids from 0, categories from 0 in name order (all labels of the labeling
  config), ``file_name`` ``images/<file>`` (uploads keep Label Studio's ``8f3a2b1c-`` prefix),
  only annotated tasks listed, boxes truncated to whole pixels, an extra ``ignore: 0``.
* Roboflow "COCO JSON": ``<split>/_annotations.coco.json`` beside the split's images, a root
  category 0 named after the project that every class names as its supercategory
  (``categories.drop_grouping_categories`` leaves it out), files renamed
  ``<name>_<ext>.rf.<hash>.jpg``.
* The official download: ``annotations/{instances,person_keypoints}_<split>.json`` with the
  images in ``<split>/`` (cocodataset.org) or, as HRNet lays it out, ``images/<split>/``.

Per label kind (``labels.kinds``; each kind's :class:`CocoReading` is what it takes from the
file, so a new kind brings its own instead of editing this reader):

* boxes (:data:`COCO_BOXES`): every annotation's ``bbox`` [x, y, w, h] -> (x, y, x + w,
  y + h), label 1..K by category name; crowd annotations are kept as ``difficult`` (ignored in
  training and evaluation, as COCO's evaluation ignores crowds).
* mask (:data:`COCO_MASKS`): polygons and RLE masks (``CocoMask``); classes are
  ``background`` (0, what no annotation covers; a category named ``background`` paints it)
  then the categories; an annotation with only a box (``segmentation: []``) is left out with a
  warning.
* keypoints (:data:`COCO_KEYPOINTS`): the ``person`` category's annotations (every
  category's when none is named so), checked and cleaned as HRNet does (``labels.keypoints``);
  keypoints named in COCO's 17 joint names in another order are put in COCO's order.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import DataError
from active_learning.extras import require
from active_learning.labels.categories import drop_grouping_categories, match_categories
from active_learning.labels.collect import Collected
from active_learning.labels.exported import Labels
from active_learning.labels.images import ImageIndex
from active_learning.labels.keypoints import (
    COCO_KEYPOINT_NAMES,
    NUM_JOINTS,
    SKIP_REASONS,
    PersonLabel,
    person_label,
)
from active_learning.labels.masks import CocoMask
from active_learning.labels.voc import BOX_TOLERANCE, Annotation

logger = logging.getLogger("active_learning")

SPLIT_FILE = re.compile(r"^(?:instances|person_keypoints)_(.+)\.json$")
ROBOFLOW_FILE = "_annotations.coco.json"
LABEL_STUDIO_FILE = "result.json"
BACKGROUND = "background"
PERSON = "person"


@dataclass(frozen=True)
class CocoImage:
    """One labeled image entry of a COCO file, as a :class:`CocoReading`'s ``target`` sees it.

    Attributes:
        coco: pycocotools' COCO of the file.
        entry: the file's image entry (``width`` / ``height`` set to the image file's size).
        name: the image's name under ``--images``.
        size: (width, height) of the image file, in pixels.
        describe: ``note -> "<file>: annotation <id> (image <reference>)"``, for messages.
        skipped: reason -> count of the annotations left out (logged once per file).
        prepared: what the reading's ``prepare`` returned for the file.
    """

    coco: Any
    entry: dict
    name: str
    size: tuple[int, int]
    describe: Callable[[dict], str]
    skipped: Counter[str]
    prepared: Any = None


@dataclass(frozen=True)
class CocoReading:
    """What one label kind takes from a COCO file (the hooks :func:`read_coco` calls).

    Attributes:
        file_prefix: a folder export's ``annotations/<prefix>*.json`` is preferred
            (``instances_``, ``person_keypoints_``).
        categories: ``(categories sorted by id, the workspace's names or None, source) ->
            (names, classes)``: the category names in the targets' order and the class of each
            kept COCO category id (an annotation of another category is left out).
        target: ``(the image's kept annotations, classes, CocoImage) -> (target, key)``, or
            None when nothing in them labels the image; ``key`` compares two entries' labels.
        prepare: ``(coco, classes, path) -> anything`` the targets need once per file.
        every_category_listed: an annotation whose category the file does not list is an error
            (False: it is left out, as pose leaves out other categories than its persons).
    """

    file_prefix: str
    categories: Callable[[list[dict], list[str] | None, str], tuple[list[str], dict[int, int]]]
    target: Callable[[list[dict], dict[int, int], CocoImage], tuple[Any, Hashable] | None]
    prepare: Callable[[Any, dict[int, int], Path], Any] = lambda coco, classes, path: None
    every_category_listed: bool = True


def load_coco(annotation_file: str | Path) -> Any:
    """pycocotools' COCO of ``annotation_file`` (its progress prints silenced); DataError if bad."""
    COCO = require("pycocotools.coco", "reading a COCO export").COCO

    path = Path(annotation_file)
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    from active_learning.labels.label_studio import is_label_studio_export

    if is_label_studio_export(path):   # pycocotools would say "list not supported"
        raise DataError(f"{path} is a list of tasks (Label Studio's JSON or JSON-MIN export), "
                        "not a COCO file; read it with --labels-format label_studio")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a JSON annotation file: {error}") from None
    except (KeyError, TypeError, AttributeError, AssertionError) as error:
        raise DataError(f"{path} is not in the COCO format (missing {error})") from None


def coco_files(folder: Path, prefix: str = "instances_") -> list[Path]:
    """The COCO files of a folder export: Roboflow's ``_annotations.coco.json`` or Label
    Studio's ``result.json`` in it, else ``annotations/<prefix>*.json`` (the label kind's
    :attr:`CocoReading.file_prefix`), else any ``annotations/*.json``."""
    for name in (ROBOFLOW_FILE, LABEL_STUDIO_FILE):
        if (folder / name).is_file():
            return [folder / name]
    annotations = folder / "annotations"
    if not annotations.is_dir():
        return []
    found = sorted(annotations.glob(f"{prefix}*.json"))
    return found or sorted(annotations.glob("*.json"))


def _coco_file(path: Path, prefix: str) -> Path:
    if path.is_file():
        return path
    found = coco_files(path, prefix)
    if len(found) != 1:
        listed = ", ".join(str(file) for file in found)
        raise DataError(f"--labels {path} holds {len(found)} COCO files ({listed}); give "
                        "the one to read" if found else f"--labels {path} holds no COCO file")
    return found[0]


def layout(path: Path) -> tuple[list[Path], list[str]]:
    """Where a COCO file's layout keeps its images: the candidate folders (for a read without
    ``--images``) and the prefixes of ``file_name`` under a common root (for one with it).

    ``annotations/<task>_<split>.json``: ``images/<split>/`` (HRNet, CVAT), ``<split>/`` (the
    official download), ``images/``; then the file's own folder (Roboflow, Label Studio)."""
    root = path.parent.parent if path.parent.name == "annotations" else path.parent
    split = SPLIT_FILE.match(path.name)
    folders, prefixes = [], []
    if split:
        folders += [root / "images" / split.group(1), root / split.group(1)]
        prefixes += [f"images/{split.group(1)}", split.group(1)]
    folders += [root / "images", path.parent]
    prefixes.append("images")
    return folders, prefixes


def _index(path: Path, index: ImageIndex | None, references: Sequence[str]) -> ImageIndex:
    """``index``, or the images of the first layout folder that holds every reference."""
    if index is not None:
        return index
    folders, _ = layout(path)
    for folder in folders:
        if folder.is_dir():
            candidate = ImageIndex.of_folder(folder)
            if all(reference in candidate for reference in references):
                return candidate
    raise DataError(f"{path}: its images are in none of {', '.join(map(str, folders))}; "
                    "give --images")


def _file_categories(coco: Any, path: Path) -> list[dict]:
    """The file's categories that name a class, sorted by id (grouping categories left out)."""
    notes = coco.dataset["annotations"]
    categories = drop_grouping_categories(coco.dataset["categories"],
                                          {note.get("category_id") for note in notes})
    for category in categories:
        if "id" not in category or not str(category.get("name", "")).strip():
            raise DataError(f"{path}: category {category} has no id or no name")
    return sorted(categories, key=lambda category: category["id"])


def _box_categories(categories: list[dict], expected: list[str] | None,
                    source: str) -> tuple[list[str], dict[int, int]]:
    """Boxes: the categories are classes 1..K (0 is the detector's background)."""
    names = match_categories([c["name"] for c in categories], expected, source, complete=True)
    position = {name: number for number, name in enumerate(names, start=1)}
    return names, {c["id"]: position[c["name"]] for c in categories}


def _mask_categories(categories: list[dict], expected: list[str] | None,
                     source: str) -> tuple[list[str], dict[int, int]]:
    """Masks: class 0 is ``background`` (what no annotation covers), then the categories."""
    found = [BACKGROUND] + [c["name"] for c in categories if c["name"].lower() != BACKGROUND]
    names = match_categories(found, expected, source, complete=True)
    position = {name: number for number, name in enumerate(names)}
    return names, {c["id"]: position[BACKGROUND if c["name"].lower() == BACKGROUND
                                     else c["name"]] for c in categories}


def _person_categories(categories: list[dict], expected: list[str] | None,
                       source: str) -> tuple[list[str], dict[int, int]]:
    """Keypoints: the ``person`` category (every category when none is named so) is class 0."""
    persons = [c for c in categories if c["name"] == PERSON] or categories
    names = match_categories([PERSON], expected, source, complete=True)
    return names, {category["id"]: 0 for category in persons}


def _box(note: dict, where: str, width: int, height: int) -> tuple[float, float, float, float]:
    """A COCO ``bbox`` [x, y, w, h] as (x1, y1, x2, y2) inside the image; DataError when it is
    malformed or leaves the image by more than ``BOX_TOLERANCE`` pixels."""
    box = note.get("bbox")
    try:
        x, y, w, h = (float(value) for value in (box if isinstance(box, list) else ()))
    except (TypeError, ValueError):
        raise DataError(f"{where} has no 'bbox' of 4 numbers (got {box!r})") from None
    if not all(math.isfinite(value) for value in (x, y, w, h)):
        raise DataError(f"{where}: box [{x:g}, {y:g}, {w:g}, {h:g}] is not a number (NaN or "
                        "infinite)")
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: box [{x:g}, {y:g}, {w:g}, {h:g}] has "
                        + ("a negative size" if w < 0 or h < 0 else "no area (zero width or "
                                                                    "height)"))
    slack = BOX_TOLERANCE
    if x < -slack or y < -slack or x + w > width + slack or y + h > height + slack:
        raise DataError(f"{where}: box [{x:g}, {y:g}, {w:g}, {h:g}] (x, y, w, h) leaves the "
                        f"{width}x{height} image")
    return max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))


def _boxes(notes: list[dict], classes: dict[int, int], image: CocoImage
           ) -> tuple[Annotation, bytes]:
    """Boxes: every annotation's box, crowds marked ``difficult``."""
    name, (width, height), describe = image.name, image.size, image.describe
    boxes = [_box(note, describe(note), width, height) for note in notes]
    labels = [classes[note["category_id"]] for note in notes]
    crowd = [bool(note.get("iscrowd", 0)) for note in notes]
    annotation = Annotation(filename=name, width=width, height=height,
                            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                            labels=np.asarray(labels, dtype=np.int64),
                            difficult=np.asarray(crowd, dtype=bool),
                            truncated=np.zeros(len(notes), dtype=bool),
                            poses=["Unspecified"] * len(notes))
    rows = sorted(zip(map(tuple, annotation.boxes.tolist()), labels, crowd, strict=True))
    return annotation, repr(rows).encode()


def _mask(notes: list[dict], classes: dict[int, int], image: CocoImage
          ) -> tuple[CocoMask, str] | None:
    """Masks: the annotations with a polygon or RLE, painted when read (a box alone is left
    out); None when none has one."""
    painted = [note for note in notes
               if _check_segmentation(note, image.describe(note), image.size)]
    if len(painted) < len(notes):
        image.skipped["box without a mask"] += len(notes) - len(painted)
    if not painted:
        return None
    width, height = image.size
    mask = CocoMask(image.coco, tuple(painted), classes, (height, width), image.entry["id"])
    return mask, mask.key()


def _keypoints(notes: list[dict], classes: dict[int, int], image: CocoImage
               ) -> tuple[list[PersonLabel], bytes] | None:
    """Keypoints: the image's persons (None when none is kept)."""
    persons = _persons(notes, image.entry, image.size, image.prepared, image.describe,
                       image.skipped)
    if not persons:
        return None
    return persons, b"".join(sorted(person.key() for person in persons))


def _check_segmentation(note: dict, where: str, size: tuple[int, int]) -> bool:
    """Whether ``note`` has a mask to paint (False: a box only); DataError for a malformed
    polygon or an RLE mask whose size is not the image's."""
    segmentation = note.get("segmentation")
    if not segmentation:
        return False
    width, height = size
    if isinstance(segmentation, dict):
        rle_size = segmentation.get("size")
        if "counts" not in segmentation or not isinstance(rle_size, list) or len(rle_size) != 2:
            raise DataError(f"{where}: its RLE mask has no 'counts' or no 'size' [h, w]")
        if [int(rle_size[0]), int(rle_size[1])] != [height, width]:
            raise DataError(f"{where}: its RLE mask is {rle_size[1]}x{rle_size[0]}, but the "
                            f"image is {width}x{height}")
        return True
    if not isinstance(segmentation, list):
        raise DataError(f"{where}: 'segmentation' is neither polygons nor an RLE mask")
    for number, polygon in enumerate(segmentation):
        if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                or not all(isinstance(value, int | float) for value in polygon)):
            count = len(polygon) if isinstance(polygon, list) else "no"
            raise DataError(f"{where}: polygon {number} has {count} coordinates; expected "
                            "x, y pairs of at least 3 points")
    return True


def _keypoint_order(coco: Any, classes: dict[int, int], path: Path) -> np.ndarray | None:
    """The permutation that puts a category's keypoints in COCO's joint order, when it names
    them as COCO does in another order (None: already in order, or named otherwise)."""
    for category_id in classes:
        names = coco.cats[category_id].get("keypoints") or []
        if names and not set(names) <= set(COCO_KEYPOINT_NAMES):
            # Joints named otherwise ("1".."17", a tool's own names) say nothing of their order:
            # read as COCO's, a left wrist could train as a right ankle.
            shown = ", ".join(str(name) for name in names[:4]) + (", ..." if len(names) > 4
                                                                   else "")
            raise DataError(f"{path}: category {coco.cats[category_id].get('name')!r} names "
                            f"its keypoints {shown}, not by COCO's joint names (nose, "
                            "left_eye, ...); name them so in the tool, in any order")
        if len(names) == NUM_JOINTS and set(names) == set(COCO_KEYPOINT_NAMES) \
                and tuple(names) != COCO_KEYPOINT_NAMES:
            logger.info("%s: keypoints listed in another order; put in COCO's joint order", path)
            return np.array([list(names).index(joint) for joint in COCO_KEYPOINT_NAMES])
    return None


def read_coco(kind: str, reading: CocoReading, export: Path, index: ImageIndex | None,
              expected: list[str] | None, source: str) -> Labels:
    """Read a COCO export as ``kind`` labels, taking from it what ``reading`` says (see the
    module doc and ``labels.read_labels``)."""
    path = _coco_file(export, reading.file_prefix)
    coco = load_coco(path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.dataset.get(key), list):
            raise DataError(f"{path} has no {key!r} list: is it a COCO file?")
    names, classes = reading.categories(_file_categories(coco, path), expected, source)
    for note in coco.dataset["annotations"]:
        if note.get("image_id") not in coco.imgs:
            raise DataError(f"{path}: annotation {note.get('id')} is for image "
                            f"{note.get('image_id')}, which the file does not list")
        if reading.every_category_listed and note.get("category_id") not in classes:
            raise DataError(f"{path}: annotation {note.get('id')} has category "
                            f"{note.get('category_id')}, which the file does not list")
    kept = {image_id: [note for note in notes if note.get("category_id") in classes]
            for image_id, notes in coco.imgToAnns.items()}
    labeled = [image for image in coco.dataset["images"] if kept.get(image.get("id"))]
    index = _index(path, index, [str(image.get("file_name", "")) for image in labeled])
    _, prefixes = layout(path)
    prepared = reading.prepare(coco, classes, path)
    collected = Collected()
    skipped: Counter[str] = Counter()
    unknown = 0
    for image in coco.dataset["images"]:
        reference = str(image.get("file_name", ""))
        where = f"{path}: image {image.get('id')} ({reference})"
        notes = kept.get(image.get("id"), [])
        name = index.resolve(reference, where, prefixes)
        if not notes:
            if name is None:
                unknown += 1
            else:
                collected.unlabeled(name)
            continue
        if name is None:
            raise DataError(f"{path}: annotation {notes[0].get('id')} is for image "
                            f"{reference!r} (id {image.get('id')}), which is not under "
                            f"--images {index.folder}")
        size = index.size(name)
        stated = (int(image.get("width") or 0), int(image.get("height") or 0))
        if stated != (0, 0) and stated != size:
            raise DataError(f"{where} is listed as {stated[0]}x{stated[1]}, but "
                            f"{index.path(name)} is {size[0]}x{size[1]}")
        # what pycocotools' annToMask sizes masks by, where the tool wrote 0 (unknown)
        image["width"], image["height"] = size

        def describe(note: dict, reference: str = reference) -> str:
            return f"{path}: annotation {note.get('id')} (image {reference})"

        found = reading.target(notes, classes, CocoImage(coco, image, name, size, describe,
                                                         skipped, prepared))
        if found is None:
            collected.unlabeled(name)
        else:
            collected.add(name, *found, where)
    if unknown:
        logger.info("%s: %d unlabeled image entries name no image under %s (left out)", path,
                    unknown, index.folder)
    if skipped:
        logger.warning("%s: left out %s", path, ", ".join(
            f"{count} annotation(s) ({reason})" for reason, count in skipped.items()))
    return collected.labels(kind, "coco", source, index.folder, names, [path], path.parent)


def _persons(notes: list[dict], image: dict, size: tuple[int, int], order: np.ndarray | None,
             describe: Any, skipped: Counter[str]) -> list[PersonLabel]:
    """The persons of one image's annotations; boxes leaving the image are refused, the rest
    checked and cleaned as HRNet does (``labels.keypoints.person_label``)."""
    persons = []
    for note in notes:
        where = describe(note)
        if order is not None and len(note.get("keypoints") or []) == 3 * NUM_JOINTS:
            joints = np.asarray(note["keypoints"], dtype=np.float32).reshape(NUM_JOINTS, 3)
            note = {**note, "keypoints": joints[order].reshape(-1).tolist()}
        if isinstance(note.get("bbox"), list) and len(note["bbox"]) == 4:
            _box(note, where, *size)
        result = person_label(note, image, where)
        if isinstance(result, PersonLabel):
            persons.append(result)
        elif result in SKIP_REASONS:
            skipped[result] += 1
    return persons


# What each built-in label kind takes from a COCO file (``labels.kinds`` declares the kinds).
COCO_BOXES = CocoReading("instances_", _box_categories, _boxes)
COCO_MASKS = CocoReading("instances_", _mask_categories, _mask)
COCO_KEYPOINTS = CocoReading("person_keypoints_", _person_categories, _keypoints,
                             prepare=_keypoint_order, every_category_listed=False)
