"""What annotation tools export, read as a task's labels: ``read_labels``.

A round of the labeling loop (``train.py round --images DIR --labels EXPORT``) reads the export
the user's annotation tool wrote, checks it against the images, and trains on it::

    labels = read_labels("boxes", "export/annotations/instances_default.json",
                         images_dir="photos/", categories=workspace_categories)
    labels.targets["street/001.jpg"]   # an Annotation: boxes, labels 1..K, difficult

The labels are read as the *label kind* the task declares (``TaskCommand.label_kind``, see
``labels/kinds.py``): ``class``, ``boxes``, ``mask``, ``keypoints``, or a kind of the task's
own. Formats, one module each, each read with the library made for it
(``labels/formats.py``):

==============  ===========================================  ==================================
format          what                                         label kinds
==============  ===========================================  ==================================
``coco``        a COCO JSON (pycocotools): CVAT's COCO 1.0   boxes, mask (polygons, RLE),
                and COCO Keypoints 1.0, Label Studio's COCO, keypoints
                Roboflow's ``<split>/_annotations.coco.json``,
                the official ``annotations/*_<split>.json``
``label_studio`` Label Studio's own JSON and JSON-MIN       every kind: choices, rectangles,
                exports (a list of tasks or records)        brushes, polygons, keypoints
``voc``         a folder of Pascal VOC XML (CVAT, Label      boxes
                Studio, LabelImg)
``masks``       a folder of mask PNGs (CVAT's segmentation   mask
                masks with ``labelmap.txt``, class-id PNGs)
``cityscapes``  a Cityscapes root (``gtFine/``)              mask
``csv``         ``name,label`` rows (Label Studio's CSV too) class
``folders``     one folder per class                         class
==============  ===========================================  ==================================

The format is told from the path (:func:`detect_format`: a ``.json`` file holding a list is
Label Studio's, one holding an object COCO) unless given. Each target is in the
form the task's data code takes:

* class: ``int``, the index of the image's class in ``categories``;
* boxes: ``labels.voc.Annotation`` (boxes float32 [N, 4] continuous x1, y1, x2, y2 in image
  pixels; labels int64 [N] in 1..K, ``categories[label - 1]``; ``difficult`` [N] also marks
  COCO's crowd boxes, which training leaves out);
* mask: ``labels.masks.PngMask``, ``CocoMask`` or ``labels.label_studio.StudioMask``
  (``train_ids()`` int64 [H, W] indexing ``categories``, 255 ignored; ``write_label_maps``
  turns them into class-id PNGs);
* keypoints: ``list[labels.keypoints.PersonLabel]`` (box x, y, w, h; keypoints float32
  [17, 3] in COCO's joint order).

An image is named by its path under ``--images`` (``labels/images.py`` says how a tool's
reference finds it). Bad input stops with one ``DataError`` line naming the file and the
entry: a label for an image that is not under ``--images``, an image labeled twice with
different labels, a box outside its image, a mask (or an annotation's image size) that does
not match the image, a category set other than the workspace's. Images an export lists
without any label are not labeled (``Labels.unannotated``): CVAT lists every frame of a task.
Nothing is written: reading an export changes no file.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from active_learning.errors import ConfigError, DataError
from active_learning.labels.exported import Labels

if TYPE_CHECKING:
    from active_learning.labels.kinds import LabelKind

__all__ = ["detect_format", "read_labels"]

logger = logging.getLogger("active_learning")


def detect_format(kind: str | LabelKind, export: str | Path) -> str:
    """The export's format, from its path: a ``.json`` file is COCO, a ``.csv`` a CSV; a folder
    is the first of the label kind's formats that it holds (``LabelKind.formats``: a folder
    with VOC XML files is VOC, a Cityscapes root (``gtFine/``) Cityscapes, one holding a COCO
    file (``_annotations.coco.json``, ``result.json``, ``annotations/*.json``) COCO, one with PNG
    masks a mask folder; any folder is class folders for the class kind)."""
    from active_learning.labels.formats import FORMATS
    from active_learning.labels.kinds import label_kind

    declared = label_kind(kind)
    path = Path(export)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":   # Label Studio's JSON and JSON-MIN are lists, COCO an object
            from active_learning.labels.label_studio import is_label_studio_export

            return "label_studio" if is_label_studio_export(path) else "coco"
        if suffix in (".csv", ".txt"):
            return "csv"
        raise DataError(f"--labels {path}: cannot tell its format from the name; give "
                        f"--labels-format ({', '.join(_formats_of(declared))})")
    if not path.is_dir():
        raise DataError(f"--labels not found: {path}")
    for name in declared.formats:
        if FORMATS[name].holds(path, declared):
            return name
    folders = [name for name in _formats_of(declared) if FORMATS[name].folder]
    raise DataError(f"--labels {path}: found no {' or '.join(folders)} export in "
                    "it; give the export's file or folder, or --labels-format")


def _formats_of(kind: LabelKind) -> list[str]:
    """The formats ``kind`` is read from, in ``FORMATS``' order."""
    from active_learning.labels.formats import FORMATS

    return [name for name in FORMATS if name in kind.formats]


def read_labels(kind: str | LabelKind, export: str | Path,
                images_dir: str | Path | None = None,
                categories: Sequence[str] | None = None, *,
                labels_format: str = "auto") -> Labels:
    """Read an annotation tool's export as labels of ``kind`` (see the module doc).

    Args:
        kind: the label kind the task declares: a built-in kind's name (``class``, ``boxes``,
            ``mask``, ``keypoints``) or a ``labels.kinds.LabelKind``.
        export: the exported file or folder (``--labels``).
        images_dir: the images the labels are for (``--images``); None: the folder the
            export's layout puts them in (COCO's ``images/<split>/`` or ``<split>/``, beside a
            Roboflow JSON, a VOC export's ``JPEGImages/``, Cityscapes' ``leftImg8bit/``, the
            class folders themselves).
        categories: the category names the workspace fixed (None in a first round): the
            export's are matched to them by name, and a different set is refused.
        labels_format: ``auto`` (:func:`detect_format`) or a key of ``labels.formats.FORMATS``.

    Raises:
        ConfigError: an unknown kind or format, or a format the kind is not read from.
        DataError: a missing or bad export (one line naming the file and the entry).
    """
    from active_learning.labels.formats import FORMATS
    from active_learning.labels.images import ImageIndex
    from active_learning.labels.kinds import label_kind

    declared = label_kind(kind)
    if labels_format == "auto":
        labels_format = detect_format(declared, export)
    elif labels_format not in FORMATS:
        raise ConfigError(f"--labels-format {labels_format!r} is not one of "
                          f"auto, {', '.join(FORMATS)}")
    if labels_format not in declared.formats:
        raise ConfigError(f"--labels-format {labels_format} cannot label {declared.name} "
                          f"labels; choose one of {', '.join(_formats_of(declared))}")
    path = Path(export)
    if not path.exists():
        raise DataError(f"--labels not found: {path}")
    index = ImageIndex.of_folder(images_dir) if images_dir is not None else None
    source = str(path)
    expected = list(categories) if categories is not None else None
    labels = FORMATS[labels_format].read(declared, path, index, expected, source)
    if not labels.targets:
        raise DataError(f"{source}: no labeled image (of {len(labels.unannotated)} listed); "
                        "label some in the tool and export again")
    logger.info("%s: %d labeled images (%s), %d categories%s", source, len(labels.targets),
                labels_format, len(labels.categories),
                f", {len(labels.unannotated)} listed without a label" if labels.unannotated
                else "")
    return labels
