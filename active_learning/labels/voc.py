"""Pascal VOC XML: one annotation file, and a folder of them as annotation tools export it.

One file (:func:`parse_annotation`) is what the VOCdevkit ships and what
``object_detection/voc.py`` reads for its image sets: boxes in 1-based inclusive pixel indices,
converted to continuous coordinates (x1 - 1, y1 - 1, x2, y2), so a box has VOC's area
``(x2 - x1 + 1) * (y2 - y1 + 1)`` and IoU needs no "+1".

A tool's export (:func:`read_voc_folder`) is a folder of such files, written differently:

* CVAT ("PASCAL VOC 1.1", through Datumaro's ``VocExporter``, openvinotoolkit/datumaro
  ``plugins/data_formats/voc/exporter.py``): ``Annotations/<item id>.xml`` (item ids may hold
  folders), ``<filename>`` the image's file name with its extension, boxes written as
  ``xmin = x``, ``xmax = x + w`` in Datumaro's 0-based continuous coordinates, ``<size>`` only
  when the image size is known, extra ``<occluded>`` and ``<attributes>`` elements, and a
  ``labelmap.txt`` (``name:r,g,b:parts:actions``, ``background`` first) listing every label;
  an XML is written only for an image with at least one box.
* Label Studio (label-studio-converter ``Converter.convert_to_voc``): ``Annotations/<stem>.xml``
  with ``<filename>`` the image's stem *without* its extension, boxes ``int(x% * width)``
  (0-based, so ``xmin`` may be 0), ``<size>`` from the task's ``original_width/height``.

So an export's boxes are read as 0-based continuous coordinates (``zero_based``): a box may
touch 0 and the image's width, one that leaves the image by more than
:data:`BOX_TOLERANCE` pixels is refused, and what rounding left outside is clipped. (A
VOCdevkit folder read this way has its boxes one pixel off, which no detector notices.)
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from active_learning.errors import DataError
from active_learning.labels.categories import match_categories
from active_learning.labels.collect import Collected
from active_learning.labels.exported import Labels
from active_learning.labels.images import ImageIndex

logger = logging.getLogger("active_learning")

# How far (pixels) an exported box may leave its image before it is refused: tools round
# coordinates (CVAT to a few decimals; Label Studio converts percentages of the image size), so
# a box drawn to the border may overshoot it by a fraction of a pixel.
BOX_TOLERANCE = 1.0


@dataclass
class Annotation:
    """One image's objects. ``boxes`` float32 [N, 4] continuous (x1, y1, x2, y2) in image pixels;
    ``labels`` int64 [N] in 1..K (0 is background); ``difficult`` / ``truncated`` bool [N]."""

    filename: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    poses: list[str] = field(default_factory=list)

    def training_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """The boxes [M, 4] and labels [M] a detector trains on: the non-difficult objects."""
        keep = ~self.difficult
        return self.boxes[keep], self.labels[keep]


def _text(node: ElementTree.Element, tag: str, path: Path, default: str | None = None) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if default is not None:
            return default
        raise DataError(f"{path}: <{node.tag}> has no <{tag}>")
    return child.text.strip()


def _number(node: ElementTree.Element, tag: str, path: Path) -> float:
    text = _text(node, tag, path)
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}: <{tag}> is {text!r}, not a number") from None


def _parse_xml(path: Path) -> ElementTree.Element:
    try:
        return ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise DataError(f"cannot parse annotation {path}: {error}") from None


def _size(root: ElementTree.Element, path: Path,
          image_size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height): the file's ``<size>``, checked against ``image_size`` when given; the
    image's own size where the file has none (Datumaro writes none for an unknown size)."""
    size = root.find("size")
    stated = None
    if size is not None and size.find("width") is not None and size.find("height") is not None:
        stated = int(_number(size, "width", path)), int(_number(size, "height", path))
        if stated == (0, 0):
            stated = None
    if stated is None:
        if image_size is None:
            raise DataError(f"{path}: no <size>")
        return image_size
    if stated[0] < 1 or stated[1] < 1:
        raise DataError(f"{path}: image size {stated[0]}x{stated[1]}")
    if image_size is not None and stated != tuple(image_size):
        raise DataError(f"{path}: <size> is {stated[0]}x{stated[1]}, but its image is "
                        f"{image_size[0]}x{image_size[1]} (an annotation of another image?)")
    return stated


def parse_annotation(path: str | Path, class_index: Mapping[str, int], *,
                     zero_based: bool = False,
                     image_size: tuple[int, int] | None = None) -> Annotation:
    """Read one VOC XML. ``class_index`` maps names to labels 1..K; raises DataError naming the
    file (and the object).

    ``zero_based``: the boxes are 0-based continuous coordinates, as annotation tools write them
    (see the module doc), instead of VOC's 1-based inclusive pixel indices. ``image_size``:
    the (width, height) of the image file, which ``<size>`` must match (and replaces where the
    file has no ``<size>``).
    """
    path = Path(path)
    root = _parse_xml(path)
    width, height = _size(root, path, image_size)
    boxes, labels, difficult, truncated, poses = [], [], [], [], []
    for number, node in enumerate(root.iter("object")):
        name = _text(node, "name", path).strip()
        if name not in class_index:
            raise DataError(f"{path}: object {number} has class {name!r}, not one of the "
                            f"{len(class_index)} classes ({', '.join(list(class_index)[:6])}, ...)")
        box = node.find("bndbox")
        if box is None:
            raise DataError(f"{path}: object {number} ({name}) has no <bndbox>")
        x1, y1, x2, y2 = (_number(box, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise DataError(f"{path}: object {number} ({name}) has xmax < xmin or ymax < ymin: "
                            f"({x1:g}, {y1:g}, {x2:g}, {y2:g})")
        if zero_based:
            slack = BOX_TOLERANCE
            if x1 < -slack or y1 < -slack or x2 > width + slack or y2 > height + slack:
                raise DataError(f"{path}: object {number} ({name}) box ({x1:g}, {y1:g}, {x2:g}, "
                                f"{y2:g}) leaves the {width}x{height} image")
            boxes.append((max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height)))
        else:
            if x1 < 1 or y1 < 1 or x2 > width or y2 > height:
                raise DataError(f"{path}: object {number} ({name}) box ({x1:g}, {y1:g}, {x2:g}, "
                                f"{y2:g}) leaves the {width}x{height} image (VOC boxes "
                                "are 1-based, inclusive)")
            boxes.append((x1 - 1, y1 - 1, x2, y2))
        labels.append(class_index[name])
        difficult.append(_text(node, "difficult", path, "0") == "1")
        truncated.append(_text(node, "truncated", path, "0") == "1")
        poses.append(_text(node, "pose", path, "Unspecified"))
    return Annotation(filename=_text(root, "filename", path, f"{path.stem}.jpg"), width=width,
                      height=height, boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                      labels=np.asarray(labels, dtype=np.int64),
                      difficult=np.asarray(difficult, dtype=bool),
                      truncated=np.asarray(truncated, dtype=bool), poses=poses)


def object_names(path: Path) -> list[str]:
    """The class names of the objects in one VOC XML, in file order."""
    root = _parse_xml(path)
    return [_text(node, "name", path).strip() for node in root.iter("object")]


def image_reference(path: Path) -> list[str]:
    """What a VOC XML says its image is, most specific first: ``<path>`` (LabelImg writes the
    absolute path), ``<folder>/<filename>`` and ``<filename>``."""
    root = _parse_xml(path)
    filename = _text(root, "filename", path, "")
    folder = _text(root, "folder", path, "")
    full = _text(root, "path", path, "")
    return [ref for ref in (full, f"{folder}/{filename}" if folder and filename else "", filename)
            if ref]


def read_label_map(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """Datumaro's ``labelmap.txt`` (CVAT's VOC and segmentation mask exports): one
    ``name:r,g,b:parts:actions`` line per label, ``#`` comments; returns (name, colour or None)
    in file order."""
    entries: list[tuple[str, tuple[int, int, int] | None]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        colour_text = rest.split(":", 1)[0].strip()
        colour = None
        if colour_text:
            try:
                parts = tuple(int(value) for value in colour_text.split(","))
            except ValueError:
                parts = ()
            if len(parts) != 3 or not all(0 <= value <= 255 for value in parts):
                raise DataError(f"{path}: line {number}: colour {colour_text!r} is not r,g,b")
            colour = (parts[0], parts[1], parts[2])
        if not name.strip():
            raise DataError(f"{path}: line {number} names no label")
        entries.append((name.strip(), colour))
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: a label is listed twice")
    return entries


def voc_xml_files(folder: Path) -> list[Path]:
    """The XML files of a VOC export: under ``Annotations/`` when there is one, else under
    ``folder`` itself (any depth), sorted."""
    base = folder / "Annotations" if (folder / "Annotations").is_dir() else folder
    return sorted(path for path in base.rglob("*") if path.suffix.lower() == ".xml"
                  and path.is_file())


def annotation_stem(folder: Path, xml: Path) -> str:
    """The item id an XML's path gives (``Annotations/a/b.xml`` -> ``a/b``)."""
    base = folder / "Annotations" if (folder / "Annotations").is_dir() else folder
    return xml.relative_to(base).with_suffix("").as_posix()


def class_names_of(folder: Path, files: Sequence[Path]) -> tuple[list[str], bool, list[Path]]:
    """The export's class names: ``labelmap.txt``'s labels without ``background`` (CVAT lists
    every label of the project there: complete) or, without one, the names the XML files use,
    sorted (only what is used: not complete). Returns (names, complete, files read)."""
    label_map = folder / "labelmap.txt"
    if label_map.is_file():
        names = [name for name, _ in read_label_map(label_map) if name != "background"]
        return names, True, [label_map]
    used: set[str] = set()
    for path in files:
        used.update(object_names(path))
    return sorted(used), False, []


def _index(folder: Path, index: ImageIndex | None, files: Sequence[Path]) -> ImageIndex:
    """``index``, or the images of the first of ``JPEGImages/`` (VOC, CVAT with images),
    ``images/`` (Label Studio) and the export folder itself that holds every file's image."""
    if index is not None:
        return index
    for candidate in (folder / "JPEGImages", folder / "images", folder):
        if candidate.is_dir():
            try:
                images = ImageIndex.of_folder(candidate)
            except DataError:
                continue
            if all(_image_of(folder, xml, images) is not None for xml in files):
                return images
    raise DataError(f"{folder}: found the images of its XML files neither in JPEGImages/ nor in "
                    "images/; give --images")


def _image_of(folder: Path, xml: Path, index: ImageIndex) -> str | None:
    """The image an XML file labels: by what it says (``<path>``, ``<folder>/<filename>``,
    ``<filename>``; Label Studio writes the file name without its extension), then by the
    XML's own path (``Annotations/a/b.xml`` labels ``a/b.<ext>``)."""
    where = str(xml)
    references = image_reference(xml)
    for reference in references:
        name = index.resolve(reference, where)
        if name is not None:
            return name
    stems = [Path(reference).as_posix() for reference in references if not Path(reference).suffix]
    for stem in [*stems, annotation_stem(folder, xml)]:
        name = index.resolve_stem(stem, where)
        if name is not None:
            return name
    return None


def read_voc_folder(kind: str, folder: Path, index: ImageIndex | None,
                    expected: list[str] | None, source: str) -> Labels:
    """A folder of VOC XML files (see the module doc) as ``kind`` (box) labels: one
    :class:`Annotation` per image, its ``filename`` the image's name under ``--images``.
    An XML file without an object labels nothing (its image is listed as unannotated)."""
    if not folder.is_dir():
        raise DataError(f"--labels {folder} is not a folder of VOC XML files")
    files = voc_xml_files(folder)
    if not files:
        raise DataError(f"no VOC XML file under {folder}")
    names, complete, listed = class_names_of(folder, files)
    order = match_categories(names, expected, source, complete=complete)
    class_index = {name: label for label, name in enumerate(order, start=1)}
    index = _index(folder, index, files)
    collected = Collected()
    for xml in files:
        name = _image_of(folder, xml, index)
        if name is None:
            reference = (image_reference(xml) or [annotation_stem(folder, xml)])[-1]
            raise DataError(f"{xml}: its image {reference!r} is not under --images "
                            f"{index.folder}")
        annotation = parse_annotation(xml, class_index, zero_based=True,
                                      image_size=index.size(name))
        annotation.filename = name
        if len(annotation.labels) == 0:
            collected.unlabeled(name)
            continue
        rows = sorted(zip(map(tuple, annotation.boxes.tolist()), annotation.labels.tolist(),
                          annotation.difficult.tolist(), strict=True))
        collected.add(name, annotation, repr(rows), str(xml))
    return collected.labels(kind, "voc", source, index.folder, order,
                            [*listed, *files], folder)
