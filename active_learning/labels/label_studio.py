"""Label Studio's own exports, JSON and JSON-MIN, read for every label kind.

Label Studio (labelstud.io/guide/export) exports a project as

* **JSON**: a list of tasks, each ``{"id", "data": {...}, "annotations": [{"id", "result":
  [...], "was_cancelled", "ground_truth", ...}], "predictions": [...], ...}``; a result is
  ``{"id", "type", "from_name", "to_name", "value": {...}, "original_width",
  "original_height", "parentID"?}`` (labelstud.io/guide/task_format);
* **JSON-MIN**: one flat record per annotation that was not cancelled (label_studio_sdk
  ``converter.Converter.convert_to_json_min``): the task's data fields, ``id`` (the task's),
  ``annotation_id``, and per control tag (``from_name``) its regions' values (with
  ``original_width`` / ``original_height`` and, in a project with keypoints, ``id`` and
  ``parentID``; no ``type``: the labels' key says it), only for the tags of the project's
  configuration; a single choice is written as the bare label (``prettify_result``).

Values are in **percent** of the image size (``x``, ``y``, ``width``, ``height``, polygon
``points``, keypoint ``x`` / ``y``); brush masks are Label Studio's RLE (:func:`decode_brush_rle`).
What each label kind reads (its :class:`LabelStudioReading`, on ``labels.kinds.LabelKind``):

* class: the ``choices`` result (one choice);
* boxes: ``rectanglelabels`` (x, y, width, height; rotation 0) -> pixels x1, y1, x2, y2;
* mask: ``brushlabels`` (RLE) and ``polygonlabels`` (points), painted as COCO masks are
  (``labels.masks.CocoMask``: uncovered pixels background, a pixel two classes cover 255);
* keypoints: ``rectanglelabels`` person boxes and ``keypointlabels`` joints (named by COCO's
  joint names), each joint in the box its ``parentID`` names (without one, in the one box that
  holds it), made COCO persons and cleaned as HRNet does (``labels.keypoints``).

Results are taken by their type, whatever the control tag's name, except a JSON-MIN single
choice, which carries no type: it is read under the name of the rounds' config
(``files.proposals.CHOICE_TAG``, ``class``). An image is found from its task's image field (the
``to_name`` of its results, else ``image``) like every tool reference (``labels.images``); the
categories are the label names the results use, in name order (Label Studio's COCO export
numbers them so), matched to the workspace's. A task with several annotations takes its ground
truth one, else all must agree. A task without annotation (or with an empty one) lists its
image as not labeled.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import DataError
from active_learning.labels.categories import match_categories
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
from active_learning.labels.masks import paint_instance_ids, paint_train_ids
from active_learning.labels.voc import BOX_TOLERANCE, Annotation

__all__ = ["LS_BOXES", "LS_CHOICES", "LS_KEYPOINTS", "LS_MASKS", "LabelStudioReading",
           "StudioMask", "decode_brush_rle", "is_label_studio_export", "read_label_studio"]

BACKGROUND, PERSON, IGNORE = "background", "person", 255
SINGLE_CHOICE_TAG = "class"     # files.proposals.CHOICE_TAG: where JSON-MIN puts a bare choice
# Result value keys that hold the labels, by result type.
LABEL_KEYS = {"choices": "choices", "rectanglelabels": "rectanglelabels",
              "brushlabels": "brushlabels", "polygonlabels": "polygonlabels",
              "keypointlabels": "keypointlabels"}


@dataclass(frozen=True)
class Result:
    """One region (or choice) of an annotation: ``type`` (lower case, as JSON writes it),
    ``value`` (the coordinates and labels), ``id`` / ``parent`` (keypoints' ``parentID``) and
    the image size the tool stated (0: not stated)."""

    type: str
    value: dict[str, Any]
    id: str | None = None
    parent: str | None = None
    stated: tuple[int, int] = (0, 0)

    def labels(self, where: str) -> list[str]:
        names = self.value.get(LABEL_KEYS[self.type])
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise DataError(f"{where}: a {self.type} result has no list of labels "
                            f"({LABEL_KEYS[self.type]!r})")
        return names

    def label(self, where: str) -> str:
        """The one label of a region; DataError for none or several."""
        names = self.labels(where)
        if len(names) != 1:
            raise DataError(f"{where}: a {self.type} region has {len(names)} labels "
                            f"({', '.join(names)}); one label per region is expected")
        return names[0]


@dataclass(frozen=True)
class StudioImage:
    """What a :class:`LabelStudioReading`'s target sees of one labeled image: its name under
    ``--images``, its size (width, height) in pixels, ``where`` (the file and the task, for
    messages) and the counts of left-out regions (logged once)."""

    name: str
    size: tuple[int, int]
    where: str
    skipped: Counter[str]


@dataclass(frozen=True)
class LabelStudioReading:
    """What one label kind takes from a Label Studio export.

    Attributes:
        types: the result types it reads (others are left out).
        named: those of ``types`` whose labels are category names (a keypoint's label is a
            joint's).
        categories: ``(names the results use, sorted; the workspace's or None; source) ->
            the category names``, in the targets' order.
        target: ``(the results, categories, StudioImage) -> (target, key)``, or None when
            they label nothing; ``key`` compares two annotations of one image.
    """

    types: frozenset[str]
    named: frozenset[str]
    categories: Callable[[list[str], list[str] | None, str], list[str]]
    target: Callable[[list[Result], list[str], StudioImage], tuple[Any, Hashable] | None]


# --------------------------------------------------------------------------- the file

def is_label_studio_export(path: Path) -> bool:
    """Whether the JSON file ``path`` holds a list (Label Studio's JSON and JSON-MIN) rather
    than an object (COCO); only its first character is read."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            head = handle.read(4096).lstrip()
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith("[")


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path} is not a JSON file: {error}") from None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise DataError(f"{path} is not a Label Studio export (a list of tasks)")
    return entries


def _size(entry: dict[str, Any]) -> tuple[int, int]:
    try:
        return int(entry.get("original_width") or 0), int(entry.get("original_height") or 0)
    except (TypeError, ValueError):
        return 0, 0


def _full_results(results: Any, where: str) -> list[Result]:
    """The results of one annotation of the JSON export."""
    if not isinstance(results, list):
        raise DataError(f"{where}: 'result' is not a list")
    out = []
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            raise DataError(f"{where}: a result without a 'value' object")
        out.append(Result(str(result.get("type", "")).lower(), result["value"],
                          None if result.get("id") is None else str(result["id"]),
                          None if result.get("parentID") is None else str(result["parentID"]),
                          _size(result)))
    return out


def _min_results(record: dict[str, Any]) -> list[Result]:
    """The results of one JSON-MIN record: its region lists, each value's type told by the key
    that holds its labels (``rectanglelabels``, ...; the converter drops the ``type``), and a
    bare single choice under :data:`SINGLE_CHOICE_TAG`."""
    out = []
    for key, value in record.items():
        if key == SINGLE_CHOICE_TAG and isinstance(value, str):
            out.append(Result("choices", {"choices": [value]}))
            continue
        regions = value if isinstance(value, list) else [value]
        for region in regions:
            if not isinstance(region, dict):
                continue
            kinds = [name for name in LABEL_KEYS if name in region]
            if len(kinds) != 1:
                continue
            kind = kinds[0]
            region_value = {k: v for k, v in region.items()
                            if k not in ("type", "original_width", "original_height", "id",
                                         "parentID")}
            out.append(Result(kind, region_value,
                              None if region.get("id") is None else str(region["id"]),
                              None if region.get("parentID") is None
                              else str(region["parentID"]), _size(region)))
    return out


@dataclass
class _Task:
    """One task of the export: its data and the results of each annotation that counts."""

    id: Any
    data: dict[str, Any]
    annotations: list[list[Result]] = field(default_factory=list)
    ground_truth: list[list[Result]] = field(default_factory=list)


def _tasks(path: Path, entries: list[dict[str, Any]]) -> list[_Task]:
    """The export's tasks (JSON-MIN's records of one task gathered), in file order."""
    tasks: dict[Any, _Task] = {}
    for number, entry in enumerate(entries):
        task_id = entry.get("id", f"#{number}")
        where = f"{path}: task {task_id}"
        if "annotations" in entry or "data" in entry:          # JSON
            data = entry.get("data")
            if not isinstance(data, dict):
                raise DataError(f"{where} has no 'data' object")
            task = tasks.setdefault(task_id, _Task(task_id, data))
            for annotation in entry.get("annotations") or []:
                if not isinstance(annotation, dict) or annotation.get("was_cancelled") \
                        or annotation.get("skipped"):
                    continue
                results = _full_results(annotation.get("result") or [],
                                        f"{where}, annotation {annotation.get('id')}")
                task.annotations.append(results)
                if annotation.get("ground_truth"):
                    task.ground_truth.append(results)
        elif "annotation_id" in entry or "annotator" in entry:   # JSON-MIN
            task = tasks.setdefault(task_id, _Task(task_id, entry))
            if entry.get("annotation_id") is not None:
                task.annotations.append(_min_results(entry))
        else:
            raise DataError(f"{where}: neither a JSON task ('data', 'annotations') nor a "
                            "JSON-MIN record ('annotation_id'): is this a Label Studio export?")
    return list(tasks.values())


def _reference(task: _Task, results: Iterable[Result]) -> str:
    """The task's image reference: its ``image`` data field (the rounds' tasks and Label
    Studio's image imports name it so), else its only string field that looks like a path."""
    value = task.data.get("image")
    if isinstance(value, str) and value:
        return value
    found = [value for value in task.data.values() if isinstance(value, str)
             and ("/" in value or "." in value)]
    return found[0] if len(found) == 1 else ""


# --------------------------------------------------------------------------- coordinates

def _percent(value: dict[str, Any], key: str, where: str) -> float:
    number = value.get(key)
    if not isinstance(number, int | float) or isinstance(number, bool) or \
            not np.isfinite(number):
        raise DataError(f"{where}: region value {key!r} is not a number (got {number!r})")
    return float(number)


def _check_stated(result: Result, image: StudioImage) -> None:
    """Refuse a region drawn on an image of another size than the file under ``--images``."""
    if result.stated != (0, 0) and result.stated != image.size:
        raise DataError(f"{image.where}: a {result.type} region was drawn on a "
                        f"{result.stated[0]}x{result.stated[1]} image, but {image.name} is "
                        f"{image.size[0]}x{image.size[1]}")


def _box_pixels(result: Result, image: StudioImage) -> tuple[float, float, float, float]:
    """A rectangle's (x1, y1, x2, y2) in pixels; DataError for a rotated one or one that leaves
    the image by more than ``BOX_TOLERANCE`` pixels (coordinates in pixels, not percent, do)."""
    _check_stated(result, image)
    value, (width, height), where = result.value, image.size, image.where
    x, y, w, h = (_percent(value, key, where) for key in ("x", "y", "width", "height"))
    if abs(float(value.get("rotation") or 0.0)) > 1e-6:
        raise DataError(f"{where}: a rectangle rotated by {value['rotation']} degrees; rotated "
                        "boxes are not read (draw it without rotation)")
    x1, y1 = x / 100.0 * width, y / 100.0 * height
    x2, y2 = x1 + w / 100.0 * width, y1 + h / 100.0 * height
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: a rectangle of no area (width {w:g}%, height {h:g}%)")
    slack = BOX_TOLERANCE
    if x1 < -slack or y1 < -slack or x2 > width + slack or y2 > height + slack:
        raise DataError(f"{where}: a rectangle at x {x:g}, y {y:g}, width {w:g}, height {h:g} "
                        f"(percent of the image) leaves the {width}x{height} image: Label "
                        "Studio's values are percentages, not pixels")
    return max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))


def decode_brush_rle(rle: list[int], height: int, width: int) -> np.ndarray:
    """Label Studio's brush RLE (a ``brushlabels`` value's ``rle``) -> bool [height, width].

    The inverse of ``files.proposals.brush_rle`` (thi.ng's rle-pack: a 32-bit value count, the
    word size minus 1 in 5 bits, four run-length field widths minus 1 in 4 bits each, then per
    chunk a repeat flag, the field's index (2 bits), the length minus 1, and one value
    repeated or that many values); the values are the RGBA bytes of the mask image, and a
    pixel is inside where its alpha byte is nonzero (label_studio_sdk
    ``converter/brush.py``: ``decode_rle`` then channel 3). ValueError for a stream that is
    cut short or whose count is not 4 x height x width.
    """
    data = np.asarray(rle, dtype=np.int64)
    if data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError("brush RLE bytes must be 0..255")
    bits = np.unpackbits(data.astype(np.uint8))
    position = 0

    def read(count: int) -> int:
        nonlocal position
        if position + count > bits.size:
            raise ValueError("brush RLE is cut short")
        chunk = bits[position:position + count]
        position += count
        return int(chunk.dot(1 << np.arange(count - 1, -1, -1, dtype=np.int64))) if count else 0

    total = read(32)
    if total != 4 * height * width:
        raise ValueError(f"brush RLE holds {total} values; a {width}x{height} RGBA image has "
                         f"{4 * height * width}")
    word = read(5) + 1
    widths = [read(4) + 1 for _ in range(4)]
    out = np.zeros(total, dtype=np.uint8)
    filled = 0
    while filled < total:
        repeat = read(1)
        length = read(widths[read(2)]) + 1
        if filled + length > total:
            raise ValueError("brush RLE runs past its value count")
        if repeat:
            out[filled:filled + length] = read(word)
        else:
            for offset in range(length):
                out[filled + offset] = read(word)
        filled += length
    return out.reshape(height, width, 4)[:, :, 3] > 0


@dataclass(frozen=True)
class StudioMask:
    """An image's brush and polygon regions painted into a class map, as
    ``labels.masks.CocoMask`` paints COCO's: uncovered pixels are class 0 (background), a
    region paints its class, a pixel regions of two classes cover is 255 (ignored).

    ``regions``: (class, ``"rle"`` or ``"polygon"``, the RLE bytes or the polygon's x, y pixel
    pairs flattened), in the annotation's order; ``size`` (height, width)."""

    regions: tuple[tuple[int, str, tuple[float, ...]], ...]
    size: tuple[int, int]

    def _masks(self) -> list[tuple[int, np.ndarray]]:
        height, width = self.size
        masks = []
        for cls, kind, data in self.regions:
            if kind == "rle":
                mask = decode_brush_rle([int(v) for v in data], height, width)
            else:
                from active_learning.extras import require

                mask_utils = require("pycocotools.mask", "reading polygons")
                encoded = mask_utils.merge(mask_utils.frPyObjects([list(data)], height, width))
                mask = mask_utils.decode(encoded).astype(bool)
            masks.append((cls, mask))
        return masks

    def train_ids(self) -> np.ndarray:
        """int64 [H, W] (see the class doc)."""
        return paint_train_ids(self.size, self._masks())

    def instance_ids(self) -> np.ndarray:
        """int64 [H, W]: region k (1-based) of a class other than 0 over its pixels; the later
        one where two overlap."""
        return paint_instance_ids(self.size, self._masks())

    def key(self) -> str:
        return json.dumps(sorted(json.dumps([cls, kind, list(data)])
                                 for cls, kind, data in self.regions))


# --------------------------------------------------------------------------- per label kind

def _plain_categories(found: list[str], expected: list[str] | None, source: str) -> list[str]:
    return match_categories(found, expected, source, complete=False)


def _mask_categories(found: list[str], expected: list[str] | None, source: str) -> list[str]:
    return match_categories([BACKGROUND] + [name for name in found if name != BACKGROUND],
                            expected, source, complete=False)


def _person_categories(found: list[str], expected: list[str] | None, source: str) -> list[str]:
    return match_categories([PERSON], expected, source, complete=True)


def _choice(results: list[Result], names: list[str], image: StudioImage
            ) -> tuple[int, str] | None:
    chosen = [name for result in results for name in result.labels(image.where)]
    if not chosen:
        return None
    if len(set(chosen)) > 1:
        raise DataError(f"{image.where}: {len(set(chosen))} classes chosen "
                        f"({', '.join(sorted(set(chosen)))}); one class per image is expected")
    return names.index(chosen[0]), chosen[0]


def _boxes(results: list[Result], names: list[str], image: StudioImage
           ) -> tuple[Annotation, str] | None:
    if not results:
        return None
    boxes = [_box_pixels(result, image) for result in results]
    labels = [names.index(result.label(image.where)) + 1 for result in results]
    width, height = image.size
    annotation = Annotation(filename=image.name, width=width, height=height,
                            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                            labels=np.asarray(labels, dtype=np.int64),
                            difficult=np.zeros(len(boxes), dtype=bool),
                            truncated=np.zeros(len(boxes), dtype=bool),
                            poses=["Unspecified"] * len(boxes))
    rows = sorted(zip(map(tuple, annotation.boxes.tolist()), labels, strict=True))
    return annotation, repr(rows)


def _mask(results: list[Result], names: list[str], image: StudioImage
          ) -> tuple[StudioMask, str] | None:
    width, height = image.size
    regions = []
    for result in results:
        _check_stated(result, image)
        cls = names.index(result.label(image.where))
        if result.type == "brushlabels":
            if result.value.get("format", "rle") != "rle" or \
                    not isinstance(result.value.get("rle"), list):
                raise DataError(f"{image.where}: a brush region without an 'rle' list")
            data: tuple[float, ...] = tuple(int(v) for v in result.value["rle"])
            try:   # checked now, so that a bad mask stops the reading, not the training
                decode_brush_rle([int(v) for v in data], height, width)
            except ValueError as error:
                raise DataError(f"{image.where}: {error}") from None
            regions.append((cls, "rle", data))
        else:
            points = result.value.get("points")
            if not isinstance(points, list) or len(points) < 3 or not all(
                    isinstance(point, list) and len(point) == 2 for point in points):
                raise DataError(f"{image.where}: a polygon without 3 or more [x, y] points")
            pixels = []
            for x, y in points:
                x_px, y_px = float(x) / 100.0 * width, float(y) / 100.0 * height
                if not (-BOX_TOLERANCE <= x_px <= width + BOX_TOLERANCE
                        and -BOX_TOLERANCE <= y_px <= height + BOX_TOLERANCE):
                    raise DataError(f"{image.where}: a polygon point ({x:g}, {y:g}) (percent "
                                    f"of the image) leaves the {width}x{height} image")
                pixels += [x_px, y_px]
            regions.append((cls, "polygon", tuple(pixels)))
    if not regions:
        return None
    mask = StudioMask(tuple(regions), (height, width))
    return mask, mask.key()


def _persons(results: list[Result], names: list[str], image: StudioImage
             ) -> tuple[list[PersonLabel], bytes] | None:
    """The persons: each ``rectanglelabels`` box with the ``keypointlabels`` joints whose
    ``parentID`` is its id (or, without one, that only it holds)."""
    width, height = image.size
    boxes = [result for result in results if result.type == "rectanglelabels"]
    pixels = [_box_pixels(box, image) for box in boxes]
    joints = np.zeros((len(boxes), NUM_JOINTS, 3), dtype=np.float32)
    by_id = {box.id: number for number, box in enumerate(boxes) if box.id is not None}
    for result in results:
        if result.type != "keypointlabels":
            continue
        _check_stated(result, image)
        joint = result.label(image.where)
        if joint not in COCO_KEYPOINT_NAMES:
            raise DataError(f"{image.where}: keypoint {joint!r} is not one of COCO's joint "
                            "names (nose, left_eye, ...)")
        x = _percent(result.value, "x", image.where) / 100.0 * width
        y = _percent(result.value, "y", image.where) / 100.0 * height
        if not (0 <= x <= width and 0 <= y <= height):
            raise DataError(f"{image.where}: keypoint {joint} at ({result.value['x']:g}, "
                            f"{result.value['y']:g}) (percent of the image) leaves the "
                            f"{width}x{height} image")
        if result.parent is not None:
            if result.parent not in by_id:
                raise DataError(f"{image.where}: keypoint {joint}'s parentID "
                                f"{result.parent!r} names no person box of the annotation")
            person = by_id[result.parent]
        else:
            holding = [number for number, (x1, y1, x2, y2) in enumerate(pixels)
                       if x1 <= x <= x2 and y1 <= y <= y2]
            if len(holding) != 1:
                raise DataError(f"{image.where}: keypoint {joint} has no parentID and "
                                f"{len(holding)} person boxes hold it; link it to its person")
            person = holding[0]
        index = COCO_KEYPOINT_NAMES.index(joint)
        if joints[person, index, 2] > 0:
            raise DataError(f"{image.where}: a person has two {joint} keypoints")
        joints[person, index] = (x, y, 2.0)
    persons = []
    entry = {"file_name": image.name, "width": width, "height": height}
    for number, (x1, y1, x2, y2) in enumerate(pixels):
        note = {"id": number, "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
                "area": (x2 - x1) * (y2 - y1), "keypoints": joints[number].reshape(-1).tolist()}
        found = person_label(note, entry, f"{image.where}, person {number}")
        if isinstance(found, PersonLabel):
            persons.append(found)
        elif found in SKIP_REASONS:
            image.skipped[found] += 1
        else:
            image.skipped["person without a keypoint"] += 1
    if not persons:
        return None
    return persons, b"".join(sorted(person.key() for person in persons))


LS_CHOICES = LabelStudioReading(frozenset({"choices"}), frozenset({"choices"}),
                                _plain_categories, _choice)
LS_BOXES = LabelStudioReading(frozenset({"rectanglelabels"}), frozenset({"rectanglelabels"}),
                              _plain_categories, _boxes)
LS_MASKS = LabelStudioReading(frozenset({"brushlabels", "polygonlabels"}),
                              frozenset({"brushlabels", "polygonlabels"}), _mask_categories,
                              _mask)
LS_KEYPOINTS = LabelStudioReading(frozenset({"rectanglelabels", "keypointlabels"}),
                                  frozenset({"rectanglelabels"}), _person_categories, _persons)


# --------------------------------------------------------------------------- the reader

def _chosen(task: _Task, reading: LabelStudioReading, where: str) -> list[Result] | None:
    """The results of the annotation that labels the task (the ground truth one when marked,
    else all must agree), the kind's types only; None when no annotation counts."""
    annotations = task.ground_truth or task.annotations
    kept = [[result for result in results if result.type in reading.types]
            for results in annotations]
    if not kept:
        return None

    def said(results: list[Result]) -> str:   # ids and parentIDs differ between annotators
        return json.dumps(sorted(json.dumps([r.type, r.value], sort_keys=True)
                                 for r in results))

    first = said(kept[0])
    for other in kept[1:]:
        if said(other) != first:
            raise DataError(f"{where} has {len(kept)} annotations that disagree; mark one "
                            "as ground truth in Label Studio, or remove the others")
    return kept[0]


def read_label_studio(kind: str, reading: LabelStudioReading, path: Path,
                      index: ImageIndex | None, expected: list[str] | None,
                      source: str) -> Labels:
    """Read Label Studio's JSON or JSON-MIN export ``path`` as ``kind`` labels (see the module
    doc and ``labels.read_labels``)."""
    import logging

    if not path.is_file():
        raise DataError(f"--labels {path}: Label Studio's export is a JSON file; give it")
    if index is None:
        raise DataError(f"{path}: a Label Studio export does not say where its images are; "
                        "give --images")
    tasks = _tasks(path, _load(path))
    chosen = [(task, _chosen(task, reading, f"{path}: task {task.id}")) for task in tasks]
    found = sorted({name for task, results in chosen for result in results or []
                    if result.type in reading.named
                    for name in result.labels(f"{path}: task {task.id}")})
    names = reading.categories(found, expected, source)
    collected = Collected()
    skipped: Counter[str] = Counter()
    for task, results in chosen:
        where = f"{path}: task {task.id}"
        reference = _reference(task, results or [])
        name = index.resolve(reference, where) if reference else None
        if name is None:
            if results and not reference:
                raise DataError(f"{where} has no 'image' data field to tell its image by; "
                                "name the labeling config's image value $image")
            if results:
                raise DataError(f"{where} labels image {reference!r}, which is not under "
                                f"--images {index.folder}")
            continue
        found_target = None if not results else reading.target(
            results, names, StudioImage(name, index.size(name), where, skipped))
        if found_target is None:
            collected.unlabeled(name)
        else:
            collected.add(name, *found_target, where)
    if skipped:
        logging.getLogger("active_learning").warning("%s: left out %s", path, ", ".join(
            f"{count} region(s) ({reason})" for reason, count in skipped.items()))
    return collected.labels(kind, "label_studio", source, index.folder, names, [path],
                            path.parent)

