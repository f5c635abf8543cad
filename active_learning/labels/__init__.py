"""What annotation tools export, read as each task's labels: ``read_labels``.

A round of the labeling loop (``train.py round --images DIR --labels EXPORT``) reads the export
the user's annotation tool wrote, checks it against the images, and trains on it::

    labels = read_labels("object_detection", "export/annotations/instances_default.json",
                         images_dir="photos/", categories=workspace_categories)
    labels.targets["street/001.jpg"]   # an Annotation: boxes, labels 1..K, difficult

Formats, one module each, each read with the library made for it:

==============  ===========================================  ==================================
format          what                                         tasks
==============  ===========================================  ==================================
``coco``        a COCO JSON (pycocotools): CVAT's COCO 1.0   object_detection (boxes),
                and COCO Keypoints 1.0, Label Studio's COCO, segmentation (polygons, RLE),
                Roboflow's ``<split>/_annotations.coco.json``, human_pose_estimation
                the official ``annotations/*_<split>.json``  (keypoints)
``voc``         a folder of Pascal VOC XML (CVAT, Label      object_detection
                Studio, LabelImg)
``masks``       a folder of mask PNGs (CVAT's segmentation   segmentation
                masks with ``labelmap.txt``, class-id PNGs)
``cityscapes``  a Cityscapes root (``gtFine/``)              segmentation
``csv``         ``name,label`` rows (Label Studio's CSV too) classification
``folders``     one folder per class                         classification
==============  ===========================================  ==================================

The format is told from the path (:func:`detect_format`) unless given. Each target is in the
form the task's data code takes:

* classification: ``int``, the index of the image's class in ``categories``;
* object_detection: ``labels.voc.Annotation`` (boxes float32 [N, 4] continuous x1, y1, x2, y2
  in image pixels; labels int64 [N] in 1..K, ``categories[label - 1]``; ``difficult`` [N] also
  marks COCO's crowd boxes, which training leaves out);
* segmentation: ``labels.masks.PngMask`` or ``CocoMask`` (``train_ids()`` int64 [H, W] indexing
  ``categories``, 255 ignored; ``write_label_maps`` turns them into class-id PNGs);
* human_pose_estimation: ``list[labels.keypoints.PersonLabel]`` (box x, y, w, h; keypoints
  float32 [17, 3] in COCO's joint order).

An image is named by its path under ``--images`` (``labels/images.py`` says how a tool's
reference finds it). Bad input stops with one ``DataError`` line naming the file and the
entry: a label for an image that is not under ``--images``, an image labeled twice with
different labels, a box outside its image, a mask (or an annotation's image size) that does
not match the image, a category set other than the workspace's. Images an export lists
without any label are not labeled (``Labels.unannotated``): CVAT lists every frame of a task.
Nothing is written: reading an export changes no file.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from active_learning.errors import ConfigError, DataError

__all__ = ["FORMATS", "TASKS", "Labels", "checksum", "detect_format", "read_labels"]

logger = logging.getLogger("active_learning")

TASKS = ("classification", "object_detection", "segmentation", "human_pose_estimation")
# format -> the tasks it can label
FORMATS: dict[str, tuple[str, ...]] = {
    "coco": ("object_detection", "segmentation", "human_pose_estimation"),
    "voc": ("object_detection",),
    "masks": ("segmentation",),
    "cityscapes": ("segmentation",),
    "csv": ("classification",),
    "folders": ("classification",),
}


@dataclass
class Labels:
    """What an export says, per image.

    Attributes:
        task: the task the targets are for.
        format: the export's format (a key of :data:`FORMATS`).
        source: the export as given, for messages.
        images_dir: the folder the names are relative to (``--images``, or the one the
            export's layout gives).
        targets: image name -> its target (see the module doc), in the export's order.
        categories: the category names, in the order the targets' class indices use (the
            workspace's when it gave them).
        files: the export's files that were read (what :attr:`checksum` covers); empty for
            class folders, whose labels are their listing.
        checksum: sha256 of the labels as read (file contents, or the class folders' listing):
            a new export gives a new checksum, the same export the same.
        unannotated: images the export lists without any label (left out of ``targets``).
    """

    task: str
    format: str
    source: str
    images_dir: Path
    targets: dict[str, Any]
    categories: list[str]
    files: list[Path]
    checksum: str
    unannotated: list[str] = field(default_factory=list)


def checksum(files: Sequence[Path], root: Path, listing: Sequence[str] = ()) -> str:
    """sha256 over each file's path relative to ``root`` and its contents' digest, in path
    order, then over ``listing`` (lines that carry labels by themselves, such as
    ``class/image`` paths)."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.as_posix()):
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:
            relative = path.name
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for line in listing:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def detect_format(task: str, export: str | Path) -> str:
    """The export's format, from its path: a ``.json`` file is COCO, a ``.csv`` a CSV; a folder
    holding a COCO file (``_annotations.coco.json``, ``result.json``, ``annotations/*.json``)
    is COCO, one with VOC XML files VOC, a Cityscapes root (``gtFine/``) Cityscapes, one with
    PNG masks a mask folder, and for classification any other folder is class folders."""
    from active_learning.labels.cityscapes import is_cityscapes_root
    from active_learning.labels.coco import coco_files
    from active_learning.labels.masks import mask_files
    from active_learning.labels.voc import voc_xml_files

    path = Path(export)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return "coco"
        if suffix in (".csv", ".txt"):
            return "csv"
        raise DataError(f"--labels {path}: cannot tell its format from the name; give "
                        f"--labels-format ({', '.join(_formats_of(task))})")
    if not path.is_dir():
        raise DataError(f"--labels not found: {path}")
    if task == "classification":
        return "folders"
    if task == "object_detection" and voc_xml_files(path):
        return "voc"
    if task == "segmentation" and is_cityscapes_root(path):
        return "cityscapes"
    if coco_files(path, task):
        return "coco"
    if task == "segmentation" and mask_files(path)[1]:
        return "masks"
    raise DataError(f"--labels {path}: found no {' or '.join(_formats_of(task))} export in it; "
                    "give the export's file or folder, or --labels-format")


def _formats_of(task: str) -> list[str]:
    return [name for name, tasks in FORMATS.items() if task in tasks]


def read_labels(task: str, export: str | Path, images_dir: str | Path | None = None,
                categories: Sequence[str] | None = None, *,
                labels_format: str = "auto") -> Labels:
    """Read an annotation tool's export as ``task``'s labels (see the module doc).

    Args:
        task: one of :data:`TASKS`.
        export: the exported file or folder (``--labels``).
        images_dir: the images the labels are for (``--images``); None: the folder the
            export's layout puts them in (COCO's ``images/<split>/`` or ``<split>/``, beside a
            Roboflow JSON, a VOC export's ``JPEGImages/``, Cityscapes' ``leftImg8bit/``, the
            class folders themselves).
        categories: the category names the workspace fixed (None in a first round): the
            export's are matched to them by name, and a different set is refused.
        labels_format: ``auto`` (:func:`detect_format`) or a key of :data:`FORMATS`.

    Raises:
        ConfigError: an unknown task or format, or a format that cannot label the task.
        DataError: a missing or bad export (one line naming the file and the entry).
    """
    from active_learning.labels.images import ImageIndex

    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if labels_format == "auto":
        labels_format = detect_format(task, export)
    elif labels_format not in FORMATS:
        raise ConfigError(f"--labels-format {labels_format!r} is not one of "
                          f"auto, {', '.join(FORMATS)}")
    if task not in FORMATS[labels_format]:
        raise ConfigError(f"--labels-format {labels_format} cannot label {task}; choose one of "
                          f"{', '.join(_formats_of(task))}")
    path = Path(export)
    if not path.exists():
        raise DataError(f"--labels not found: {path}")
    index = ImageIndex.of_folder(images_dir) if images_dir is not None else None
    source = str(path)
    expected = list(categories) if categories is not None else None
    if labels_format == "coco":
        from active_learning.labels.coco import read_coco
        labels = read_coco(task, path, index, expected, source)
    elif labels_format == "voc":
        from active_learning.labels.voc import read_voc_folder
        labels = read_voc_folder(path, index, expected, source)
    elif labels_format == "masks":
        from active_learning.labels.masks import read_mask_folder
        labels = read_mask_folder(path, index, expected, source)
    elif labels_format == "cityscapes":
        from active_learning.labels.cityscapes import read_cityscapes
        labels = read_cityscapes(path, index, expected, source)
    elif labels_format == "csv":
        from active_learning.labels.classes import read_csv
        labels = read_csv(path, index, expected, source)
    else:
        from active_learning.labels.classes import read_class_folders
        labels = read_class_folders(path, index, expected, source)
    if not labels.targets:
        raise DataError(f"{source}: no labeled image (of {len(labels.unannotated)} listed); "
                        "label some in the tool and export again")
    logger.info("%s: %d labeled images (%s), %d categories%s", source, len(labels.targets),
                labels_format, len(labels.categories),
                f", {len(labels.unannotated)} listed without a label" if labels.unannotated
                else "")
    return labels
