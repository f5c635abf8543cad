"""Cityscapes: a ``gtFine`` export read as mask labels (its ids: ``labels.cityscapes_ids``).

Layout (https://www.cityscapes-dataset.com; CVAT's "Cityscapes 1.0" export keeps it)::

    <root>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png      8-bit label ids 0..33
    <root>/gtFine/<split>/<city>/<stem>_gtFine_instanceIds.png   16-bit: labelId*1000+k for
                                                                  object instances, labelId else

Label ids become the 19 train ids (255 = ignored) through :data:`LABEL_TO_TRAIN`, the table of
cityscapesScripts' ``labels.py``. An export with labels of its own (CVAT's ``label_colors.txt``
with other names) is not this layout: export it as segmentation masks instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from active_learning.errors import DataError
from active_learning.labels.categories import match_categories
from active_learning.labels.cityscapes_ids import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_IMAGE_SUFFIX,
    CITYSCAPES_INSTANCE_SUFFIX,
    CITYSCAPES_LABEL_SUFFIX,
)
from active_learning.labels.collect import Collected
from active_learning.labels.exported import Labels
from active_learning.labels.images import ImageIndex
from active_learning.labels.masks import PngMask, mask_key, png_size

__all__ = ["image_reference", "is_cityscapes_root", "label_files", "read_cityscapes"]


def label_files(root: Path) -> list[Path]:
    """The ``*_gtFine_labelIds.png`` files of an export: under ``<root>/gtFine`` when there is
    one, else under ``root`` (any depth), sorted."""
    base = root / "gtFine" if (root / "gtFine").is_dir() else root
    return sorted(base.rglob(f"*{CITYSCAPES_LABEL_SUFFIX}"))


def image_reference(root: Path, label: Path) -> tuple[str, Sequence[str]]:
    """The image a label map is for: its file name, and the folders it sits in under
    ``leftImg8bit/`` (``train/aachen``), to try as prefixes of it."""
    base = root / "gtFine" if (root / "gtFine").is_dir() else root
    stem = label.name[: -len(CITYSCAPES_LABEL_SUFFIX)]
    folder = label.parent.relative_to(base).as_posix()
    file = f"{stem}{CITYSCAPES_IMAGE_SUFFIX}"
    prefixes = [f"leftImg8bit/{folder}", folder] if folder != "." else ["leftImg8bit"]
    return file, prefixes


def is_cityscapes_root(path: Path) -> bool:
    """A folder laid out as Cityscapes: a ``gtFine`` folder, or label maps named as its."""
    if (path / "gtFine").is_dir():
        return True
    return path.is_dir() and next(path.rglob(f"*{CITYSCAPES_LABEL_SUFFIX}"), None) is not None


def read_cityscapes(kind: str, root: Path, index: ImageIndex | None,
                    expected: list[str] | None, source: str) -> Labels:
    """A Cityscapes root's (or ``gtFine`` folder's) label maps as ``kind`` (mask) labels: one
    ``PngMask`` (``cityscapes`` encoding, with its instance map when there is one) per image,
    checked to have its image's size. Images come from ``--images`` or ``<root>/leftImg8bit``."""
    files = label_files(root)
    if not files:
        raise DataError(f"no *{CITYSCAPES_LABEL_SUFFIX} under {root}")
    names = match_categories(CITYSCAPES_CLASSES, expected, source, complete=True)
    if names != CITYSCAPES_CLASSES:
        raise DataError(f"{source}: the workspace orders the Cityscapes classes differently "
                        "(its train ids are fixed); start a new --workspace")
    if index is None:
        index = ImageIndex.of_folder(root / "leftImg8bit")
    collected = Collected()
    for label in files:
        file, prefixes = image_reference(root, label)
        name = index.resolve(file, str(label), prefixes)
        if name is None:
            raise DataError(f"{label}: its image {file} is not under --images {index.folder}")
        width, height = index.size(name)
        if png_size(label) != (width, height):
            found = png_size(label)
            raise DataError(f"label map {label} is {found[0]}x{found[1]} but its image "
                            f"{index.path(name)} is {width}x{height}")
        instances = label.with_name(label.name.replace(CITYSCAPES_LABEL_SUFFIX,
                                                       CITYSCAPES_INSTANCE_SUFFIX))
        target = PngMask(label, (height, width), "cityscapes", len(names),
                         instances=instances if instances.is_file() else None,
                         image=index.path(name))
        collected.add(name, target, mask_key(target), str(label))
    listed = [target.instances for target in collected.targets.values() if target.instances]
    return collected.labels(kind, "cityscapes", source, index.folder, names,
                            [*files, *listed], root)
