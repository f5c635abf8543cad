"""Image classification labels: one folder per class, or a CSV of image names and labels.

Class folders (torchvision's ``ImageFolder`` layout; what CVAT's "ImageNet 1.0" export and a
hand-sorted folder look like): ``<export>/<class>/<image>``, any depth below the class; the
classes are the folder names, sorted (as ``ImageFolder``), and an empty class folder still
names a class. Without ``--images`` the export holds the images (named ``<class>/<image>``);
with it, ``<class>/<path>`` labels the image ``<path>`` under ``--images`` (or
``<class>/<path>`` when ``--images`` is the export itself).

A CSV: ``name,label`` rows, with or without a header. A header names the columns: the image
in ``name``, ``image``, ``filename``, ``file_name``, ``file``, ``path``; the label in ``label``,
``class``, ``category``, ``choice`` (Label Studio's CSV export, label-studio-converter
``Converter.convert_to_csv``: the data key's column, ``image``, holds the task's URL and the
choices tag's, ``choice``, the class). An empty label leaves its image unlabeled; the classes are
the labels used, sorted.
"""
from __future__ import annotations

import csv
from pathlib import Path

from active_learning.errors import DataError
from active_learning.files.images import is_image_name
from active_learning.labels.categories import match_categories
from active_learning.labels.collect import Collected
from active_learning.labels.exported import Labels
from active_learning.labels.images import ImageIndex

NAME_COLUMNS = ("name", "image", "filename", "file_name", "file", "path", "image_path",
                "image_name")
LABEL_COLUMNS = ("label", "class", "category", "choice", "class_name")


def read_class_folders(kind: str, folder: Path, index: ImageIndex | None,
                       expected: list[str] | None, source: str) -> Labels:
    """Class folders (see the module doc) as ``kind`` labels: image -> class index."""
    if not folder.is_dir():
        raise DataError(f"--labels {folder} is not a folder of class folders")
    classes = sorted(path.name for path in folder.iterdir()
                     if path.is_dir() and not path.name.startswith("."))
    if not classes:
        raise DataError(f"{folder} holds no class folder (expected <class>/<image>)")
    order = match_categories(classes, expected, source, complete=True)
    if index is None:
        index = ImageIndex.of_folder(folder, flag="--labels")
    collected = Collected()
    listing = []
    for class_name in classes:
        class_dir = folder / class_name
        for path in sorted(class_dir.rglob("*")):
            if not is_image_name(path.relative_to(class_dir)) or not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            name = index.resolve(relative, str(path))
            if name is None:
                raise DataError(f"{path}: image {path.relative_to(class_dir).as_posix()!r} is "
                                f"not under --images {index.folder}")
            collected.add(name, order.index(class_name), class_name, str(path))
            listing.append(f"{relative}\t{name}")
    return collected.labels(kind, "folders", source, index.folder, order, [],
                            folder, listing)


def _columns(header: list[str]) -> tuple[int, int] | None:
    """(name column, label column) of a header row, or None when the row is data."""
    cells = [cell.strip().lower() for cell in header]
    name = next((cells.index(column) for column in NAME_COLUMNS if column in cells), None)
    label = next((cells.index(column) for column in LABEL_COLUMNS if column in cells), None)
    return (name, label) if name is not None and label is not None else None


def read_csv(kind: str, path: Path, index: ImageIndex | None, expected: list[str] | None,
             source: str) -> Labels:
    """A CSV of image names and labels (see the module doc) as ``kind`` labels: image -> class
    index."""
    if not path.is_file():
        raise DataError(f"--labels {path} is not a CSV file")
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path} is not a CSV file: {error}") from None
    columns = _columns(rows[0]) if rows else None
    first = 2 if columns else 1
    name_column, label_column = columns or (0, 1)
    entries = []
    for number, row in enumerate(rows[first - 1:], start=first):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(name_column, label_column):
            raise DataError(f"{path}: line {number} has {len(row)} column(s); expected "
                            "name,label")
        label = row[label_column].strip()
        if label.startswith(("{", "[")):
            raise DataError(f"{path}: line {number} gives several labels ({label[:40]}); one "
                            "label per image is expected")
        entries.append((number, row[name_column].strip(), label))
    used = sorted({label for _, _, label in entries if label})
    order = match_categories(used, expected, source, complete=False)
    if index is None:
        index = ImageIndex.of_folder(path.parent, flag="the CSV's folder")
    collected = Collected()
    for number, reference, label in entries:
        where = f"{path}: line {number}"
        name = index.resolve(reference, where)
        if name is None:
            raise DataError(f"{where}: image {reference!r} is not under --images {index.folder}")
        if not label:
            collected.unlabeled(name)
            continue
        collected.add(name, order.index(label), label, where)
    return collected.labels(kind, "csv", source, index.folder, order, [path],
                            path.parent)
