"""Pascal VOC on disk: image sets, annotation XML, class lists.

Layout (as the VOCdevkit ships it; ``--dataset_root`` is the folder holding ``VOC2007/`` ...)::

    VOC2007/Annotations/000005.xml
    VOC2007/JPEGImages/000005.jpg
    VOC2007/ImageSets/Main/{trainval,test}.txt

One annotation file is read by ``active_learning.labels.voc.parse_annotation`` (shared with the
readers of annotation tools' exports): boxes are converted from VOC's 1-based inclusive pixel
indices to continuous coordinates (x1 - 1, y1 - 1, x2, y2), so a box has VOC's area
``(x2 - x1 + 1) * (y2 - y1 + 1)`` and IoU needs no "+1".

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
from dataclasses import dataclass
from pathlib import Path

from active_learning.errors import ConfigError, DataError
from active_learning.files.images import find_images
from active_learning.labels.exported import Labels
from active_learning.labels.voc import Annotation, parse_annotation

# The original's pool: VOC2007 + VOC2012 trainval (a missing VOC2012 is skipped with a warning).
DEFAULT_TRAIN_SETS = "2007:trainval,2012:trainval"
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep",
               "sofa", "train", "tvmonitor")


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


def samples_from_labels(labels: Labels) -> list[VOCSample]:
    """A round's labeled images (``active_learning.labels.read_labels`` for object_detection)
    as samples, in the labels' order: each image under ``labels.images_dir`` with its
    annotation, named as ``--images`` names it."""
    return [VOCSample(image=labels.images_dir / name, name=name, annotation=annotation,
                      image_id=name) for name, annotation in labels.targets.items()]
