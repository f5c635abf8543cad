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
               / ``StudioMask``
``keypoints``  ``list[PersonLabel]``       COCO (keypoints)        boxes + ``keypointlabels``
=============  ==========================  ======================  ==========================

Every kind is also read from Label Studio's own JSON and JSON-MIN exports
(``labels/label_studio.py``). A fifth kind (instance masks, say) is a :class:`LabelKind` with
the formats it is read from, what it takes from a COCO file (a ``labels.coco.CocoReading``)
and from a Label Studio export (a ``labels.label_studio.LabelStudioReading``) and its Label
Studio writer (a ``files.proposals.LabelStudioTags``); nothing in the readers or writers
changes.
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
from active_learning.labels.label_studio import (
    LS_BOXES,
    LS_CHOICES,
    LS_KEYPOINTS,
    LS_MASKS,
    LabelStudioReading,
)

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
        label_studio_export: what it takes from Label Studio's JSON and JSON-MIN exports
            (needed when ``formats`` has ``label_studio``).
    """

    name: str
    formats: tuple[str, ...]
    label_studio: LabelStudioTags
    coco: CocoReading | None = None
    label_studio_export: LabelStudioReading | None = None


BUILT_IN: dict[str, LabelKind] = {kind.name: kind for kind in (
    LabelKind(CLASS, ("folders", "csv", "label_studio"), CHOICES,
              label_studio_export=LS_CHOICES),
    LabelKind(BOXES, ("voc", "coco", "label_studio"), RECTANGLES, COCO_BOXES, LS_BOXES),
    LabelKind(MASK, ("cityscapes", "coco", "masks", "label_studio"), BRUSHES, COCO_MASKS,
              LS_MASKS),
    LabelKind(KEYPOINTS, ("coco", "label_studio"), KEYPOINT_LABELS, COCO_KEYPOINTS,
              LS_KEYPOINTS),
)}


def label_kind(kind: str | LabelKind) -> LabelKind:
    """``kind`` itself, or the built-in kind of that name (ConfigError for another name)."""
    if isinstance(kind, LabelKind):
        return kind
    if kind not in BUILT_IN:
        raise ConfigError(f"unknown label kind {kind!r}; choose one of {', '.join(BUILT_IN)}, "
                          "or declare a LabelKind")
    return BUILT_IN[kind]
