"""Pascal VOC on disk: image sets, annotation XML, class lists.

Layout (as the VOCdevkit ships it; ``--dataset_root`` is the folder holding ``VOC2007/`` ...)::

    VOC2007/Annotations/000005.xml
    VOC2007/JPEGImages/000005.jpg
    VOC2007/ImageSets/Main/{trainval,test}.txt

Boxes are converted from VOC's 1-based inclusive pixel indices to continuous coordinates
(x1 - 1, y1 - 1, x2, y2): a box then has VOC's area ``(x2 - x1 + 1) * (y2 - y1 + 1)`` and IoU
needs no "+1".

What stops a run (``DataError``, exit 2) and what is skipped with a warning:

* stops: an annotation that does not parse or lacks a field (named), an unknown class name, a
  box with x2 < x1 or y2 < y1 or outside the image, an image of the set missing on disk, a
  missing image set file;
* skipped with one warning per split, in the pool only: images with no object (nothing to learn
  from, and their label costs nothing), and images whose objects are all ``difficult`` (every
  box is ignored). The test set keeps every image of its list (``keep_empty``), as VOC's
  evaluation (``voc_eval``) does: a detection on such an image is a false positive.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from active_learning.errors import ConfigError, DataError
from active_learning.files.images import find_images

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep",
               "sofa", "train", "tvmonitor")


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


@dataclass
class VOCSample:
    """One image of the pool or the test set (``annotation`` None: an unlabeled image)."""

    image: Path
    name: str                         # what the priority CSV names: the image file name
    annotation: Annotation | None = None
    image_id: str = ""


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """One class name per line (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class list not found: {path}")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if len(names) < 1 or len(set(names)) != len(names):
        raise DataError(f"{path}: expected unique class names, one per line, got {names}")
    return tuple(names)


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


def parse_annotation(path: str | Path, class_index: dict[str, int]) -> Annotation:
    """Read one VOC XML. ``class_index`` maps names to labels 1..K; raises
    DataError naming the file."""
    path = Path(path)
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise DataError(f"cannot parse annotation {path}: {error}") from None
    size = root.find("size")
    if size is None:
        raise DataError(f"{path}: no <size>")
    width, height = int(_number(size, "width", path)), int(_number(size, "height", path))
    if width < 1 or height < 1:
        raise DataError(f"{path}: image size {width}x{height}")
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


def parse_image_sets(text: str) -> list[tuple[str, str]]:
    """``"2007:trainval,2012:trainval"`` -> [("2007", "trainval"), ("2012", "trainval")]."""
    sets = []
    for part in text.split(","):
        year, _, name = part.strip().partition(":")
        if not year or not name:
            raise ConfigError("image sets are YEAR:SET separated by commas "
                             f"(2007:trainval), got {text!r}")
        sets.append((year, name))
    return sets


def read_split(root: str | Path, image_sets: Sequence[tuple[str, str]], class_names: Sequence[str],
               *, optional_years: bool = False, keep_empty: bool = False) -> list[VOCSample]:
    """The annotated samples of ``image_sets`` under ``root``.

    ``optional_years``: a year folder that does not exist is left out with a warning (the
    default pool names VOC2012, which not every user has); otherwise it stops the run.
    ``keep_empty``: keep the images with no object or only difficult ones (an evaluation set:
    every image of the list is evaluated); otherwise they are left out with one warning each.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root} (the folder holding VOC2007/, VOC2012/)")
    class_index = {name: label for label, name in enumerate(class_names, start=1)}
    samples: list[VOCSample] = []
    for year, name in image_sets:
        year_dir = root / f"VOC{year}"
        if not year_dir.is_dir() and optional_years:
            warnings.warn(f"{year_dir} does not exist: VOC{year} {name} left out", UserWarning,
                          stacklevel=2)
            continue
        list_file = year_dir / "ImageSets" / "Main" / f"{name}.txt"
        if not list_file.is_file():
            raise DataError(f"image set not found: {list_file}")
        ids = [line.split()[0] for line in list_file.read_text(encoding="utf-8").splitlines()
               if line.strip()]
        empty, all_difficult = [], []
        for image_id in ids:
            annotation = parse_annotation(year_dir / "Annotations" / f"{image_id}.xml", class_index)
            image = year_dir / "JPEGImages" / f"{image_id}.jpg"
            if not image.is_file():
                raise DataError(f"image missing: {image} (listed in {list_file})")
            if not keep_empty and len(annotation.labels) == 0:
                empty.append(image_id)
                continue
            if not keep_empty and annotation.difficult.all():
                all_difficult.append(image_id)
                continue
            samples.append(VOCSample(image=image, name=image.name, annotation=annotation,
                                     image_id=image_id))
        for skipped, why in ((empty, "no object"), (all_difficult, "only difficult objects")):
            if skipped:
                warnings.warn(f"VOC{year} {name}: {len(skipped)} image(s) with {why} left out "
                              f"({', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''})",
                              UserWarning, stacklevel=2)
    if not samples:
        sets = ", ".join(f"{y}:{n}" for y, n in image_sets)
        raise DataError(f"no {'' if keep_empty else 'annotated '}image in {sets} under {root}")
    names = [sample.name for sample in samples]
    if len(set(names)) != len(names):  # VOC2007 and VOC2012 ids never collide; a custom set might
        for sample in samples:
            sample.name = f"VOC{sample.image.parent.parent.name[3:]}/{sample.name}"
    return samples


def find_unlabeled(folder: str | Path) -> list[VOCSample]:
    """Every image file under ``folder`` (any depth), named by its path relative to ``folder``."""
    return [VOCSample(image=path, name=path.relative_to(folder).as_posix())
            for path in find_images(folder, DataError)]
