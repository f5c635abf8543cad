"""Label kinds: what a task's labels are, declared by the task, served by the core.

A task's ``TaskCommand.label_kind`` names one of the built-in kinds, or gives a
:class:`LabelKind` of its own. The export readers (``read_labels``) and the proposals' writers
(``files/proposals.py``) dispatch on the kind, never on a task:

=============  ==========================  ======================  ==========================
kind           a target (one image's)      read from               Label Studio pre-annotation
=============  ==========================  ======================  ==========================
``class``      ``int`` class index         class folders, a CSV    ``choices``
``boxes``      ``labels.voc.Annotation``   VOC XML, COCO           ``rectanglelabels``
``mask``       ``PngMask`` / ``CocoMask``  Cityscapes, COCO, PNGs  ``brushlabels``
``keypoints``  ``list[PersonLabel]``       COCO (keypoints)        boxes + ``keypointlabels``
=============  ==========================  ======================  ==========================

A fifth kind (instance masks, say) is a :class:`LabelKind` with the formats it is read from,
what it takes from a COCO file (a ``labels.coco.CocoReading``) and its Label Studio writer (a
``files.proposals.LabelStudioTags``); nothing in the readers or writers changes.
"""
from __future__ import annotations

from dataclasses import dataclass

from active_learning.errors import ConfigError
from active_learning.files.proposals import (
    BRUSHES,
    CHOICES,
    KEYPOINT_LABELS,
    RECTANGLES,
    LabelStudioTags,
)
from active_learning.labels.coco import COCO_BOXES, COCO_KEYPOINTS, COCO_MASKS, CocoReading

__all__ = ["BOXES", "BUILT_IN", "CLASS", "KEYPOINTS", "MASK", "LabelKind", "label_kind"]

CLASS, BOXES, MASK, KEYPOINTS = "class", "boxes", "mask", "keypoints"


@dataclass(frozen=True)
class LabelKind:
    """What a task's labels are, and what the core needs to read and write them.

    Attributes:
        name: the kind's name (``Labels.kind``; messages).
        formats: the export formats (keys of ``labels.formats.FORMATS``) it is read from, in
            the order :func:`labels.detect_format` tries them on a folder.
        label_studio: its Label Studio labeling config and pre-annotations (the proposals'
            ``label_studio_config.xml`` and the tasks' predictions).
        coco: what it takes from a COCO file (needed when ``formats`` has ``coco``).
    """

    name: str
    formats: tuple[str, ...]
    label_studio: LabelStudioTags
    coco: CocoReading | None = None


BUILT_IN: dict[str, LabelKind] = {kind.name: kind for kind in (
    LabelKind(CLASS, ("folders", "csv"), CHOICES),
    LabelKind(BOXES, ("voc", "coco"), RECTANGLES, COCO_BOXES),
    LabelKind(MASK, ("cityscapes", "coco", "masks"), BRUSHES, COCO_MASKS),
    LabelKind(KEYPOINTS, ("coco",), KEYPOINT_LABELS, COCO_KEYPOINTS),
)}


def label_kind(kind: str | LabelKind) -> LabelKind:
    """``kind`` itself, or the built-in kind of that name (ConfigError for another name)."""
    if isinstance(kind, LabelKind):
        return kind
    if kind not in BUILT_IN:
        raise ConfigError(f"unknown label kind {kind!r}; choose one of {', '.join(BUILT_IN)}, "
                          "or declare a LabelKind")
    return BUILT_IN[kind]
