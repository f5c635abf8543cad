"""The export formats ``read_labels`` reads: how each is recognised and read.

Each format's reader takes the label kind it reads for (``labels.kinds``): the COCO reader
takes from the file what the kind's ``CocoReading`` says; the others read one kind of target
(VOC: boxes, masks and Cityscapes: masks, CSV and class folders: classes) and name the kind in
the :class:`~active_learning.labels.Labels` they return.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from active_learning.errors import ConfigError
from active_learning.labels.cityscapes import is_cityscapes_root, read_cityscapes
from active_learning.labels.classes import read_class_folders, read_csv
from active_learning.labels.coco import coco_files, read_coco
from active_learning.labels.exported import Labels
from active_learning.labels.images import ImageIndex
from active_learning.labels.kinds import LabelKind
from active_learning.labels.label_studio import read_label_studio
from active_learning.labels.masks import mask_files, read_mask_folder
from active_learning.labels.voc import read_voc_folder, voc_xml_files

__all__ = ["FORMATS", "Format"]

Reader = Callable[[LabelKind, Path, ImageIndex | None, list[str] | None, str], Labels]


@dataclass(frozen=True)
class Format:
    """An export format.

    Attributes:
        name: ``--labels-format``'s value.
        read: ``(kind, export, images or None, the workspace's categories or None, source) ->
            Labels``.
        holds: ``(folder, kind) -> whether the folder is an export in this format``
            (:func:`labels.detect_format`; a file is told by its suffix instead).
        folder: whether an export in this format can be a folder (False: a file only).
    """

    name: str
    read: Reader
    holds: Callable[[Path, LabelKind], bool]
    folder: bool = True


def _read_coco(kind: LabelKind, export: Path, index: ImageIndex | None,
               expected: list[str] | None, source: str) -> Labels:
    if kind.coco is None:
        raise ConfigError(f"the {kind.name} label kind declares no COCO reading")
    return read_coco(kind.name, kind.coco, export, index, expected, source)


def _read_label_studio(kind: LabelKind, export: Path, index: ImageIndex | None,
                       expected: list[str] | None, source: str) -> Labels:
    if kind.label_studio_export is None:
        raise ConfigError(f"the {kind.name} label kind declares no Label Studio reading")
    return read_label_studio(kind.name, kind.label_studio_export, export, index, expected,
                             source)


def _holds_coco(folder: Path, kind: LabelKind) -> bool:
    return kind.coco is not None and bool(coco_files(folder, kind.coco.file_prefix))


def _single(reader: Callable[[str, Path, ImageIndex | None, list[str] | None, str], Labels]
            ) -> Reader:
    """A reader of one kind of target, naming the declared kind in its labels."""
    def read(kind: LabelKind, export: Path, index: ImageIndex | None,
             expected: list[str] | None, source: str) -> Labels:
        return reader(kind.name, export, index, expected, source)
    return read


# In the order --labels-format lists them (and messages name them).
FORMATS: dict[str, Format] = {format_.name: format_ for format_ in (
    Format("coco", _read_coco, _holds_coco),
    Format("voc", _single(read_voc_folder), lambda folder, kind: bool(voc_xml_files(folder))),
    Format("masks", _single(read_mask_folder),
           lambda folder, kind: bool(mask_files(folder)[1])),
    Format("cityscapes", _single(read_cityscapes),
           lambda folder, kind: is_cityscapes_root(folder)),
    Format("csv", _single(read_csv), lambda folder, kind: False, folder=False),
    Format("folders", _single(read_class_folders), lambda folder, kind: folder.is_dir()),
    Format("label_studio", _read_label_studio, lambda folder, kind: False, folder=False),
)}
