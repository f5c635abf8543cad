"""One renderer of a model's prediction over its image, for the report's thumbnails and the
tasks' per-cycle pictures.

It dispatches on what the prediction holds (:func:`prediction_kinds`: a class map, boxes,
keypoints, one class for the image), never on which task made it; the task passes what only
it knows: the class names, its colours, the skeleton and its limbs' colours. It draws with
torchvision's ``draw_segmentation_masks``, ``draw_bounding_boxes`` and ``draw_keypoints``; the
limbs are PIL lines, since ``draw_keypoints`` draws every limb white.

Images are uint8 tensors [3, H, W]; a prediction's coordinates are in pixels of a
``prediction.width`` x ``prediction.height`` image, scaled to the image drawn on (a thumbnail
of the file, or the file itself).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from active_learning.drawing.palette import Colour, palette
from active_learning.extras import require
from active_learning.files.predictions import KEYPOINT_THRESHOLD, ImagePrediction

__all__ = ["KINDS", "Style", "draw_prediction", "prediction_kinds",
           "resize_labels"]

MASK, BOXES, KEYPOINTS, CLASS = "mask", "boxes", "keypoints", "class"
KINDS = (MASK, BOXES, KEYPOINTS, CLASS)      # drawing order: a mask under its boxes
MASK_ALPHA = 0.45            # a class's colour over the image, where the mask has that class
JOINT_COLOUR = (230, 30, 30)


@dataclass(frozen=True)
class Style:
    """What the task knows about drawing its predictions.

    Attributes:
        class_names: [C] names of the label indices (boxes' and the image's class text).
        colours: the colour of class ``k`` is ``colours[k % len(colours)]`` (boxes, mask, the
            image's frame); empty: :func:`palette` of the classes. One colour: every class.
        skeleton: pairs of 0-based joint indices joined by a limb.
        limb_colours: limb ``k``'s colour is ``limb_colours[k % len]``; empty: the palette.
        joint_colour: the joints' colour.
        keypoint_threshold: joints drawn: confidence above it (limbs: both ends above it).
        box_text: write ``class score`` on each box (never on persons' boxes with keypoints).
        line_width: pixels; 0: one per 160 pixels of the image's longer side, at least 1.
    """

    class_names: Sequence[str] = ()
    colours: Sequence[Colour] = ()
    skeleton: Sequence[tuple[int, int]] = ()
    limb_colours: Sequence[Colour] = ()
    joint_colour: Colour = JOINT_COLOUR
    keypoint_threshold: float = KEYPOINT_THRESHOLD
    box_text: bool = True
    line_width: int = 0

    def class_colour(self, label: int) -> Colour:
        colours = list(self.colours) or palette(max(len(self.class_names), 1))
        return colours[int(label) % len(colours)]

    def limb_colour(self, limb: int) -> Colour:
        colours = list(self.limb_colours) or palette(max(len(self.skeleton), 1))
        return colours[limb % len(colours)]


def prediction_kinds(prediction: ImagePrediction) -> list[str]:
    """What ``prediction`` holds, in drawing order: ``mask``, ``boxes``, ``keypoints``,
    ``class``."""
    present = {MASK: prediction.mask is not None, BOXES: prediction.boxes is not None,
               KEYPOINTS: prediction.keypoints is not None, CLASS: prediction.label is not None}
    return [kind for kind in KINDS if present[kind]]


def draw_prediction(image: torch.Tensor, prediction: ImagePrediction,
                    style: Style | None = None) -> torch.Tensor:
    """``image`` (uint8 [3, H, W]) with ``prediction`` drawn over it: a mask tints each pixel
    with its class's colour (values outside ``0 .. C-1``, such as an ignore label, stay as they
    are); boxes are outlined in their class's colour; keypoints are the skeleton's limbs and
    the confident joints; one class for the image frames it in the class's colour, named.
    ``style``: the task's names, colours and skeleton (default: :class:`Style`'s). Returns a
    new uint8 [3, H, W] tensor."""
    style = style or Style()
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be uint8 [3, H, W]; got {image.dtype} {tuple(image.shape)}")
    height, width = image.shape[-2:]
    scale = (width / prediction.width, height / prediction.height)
    line = style.line_width or max(1, round(max(height, width) / 160))
    kinds = prediction_kinds(prediction)
    if kinds:
        _require_torchvision(kinds)
    for kind in kinds:
        image = _DRAWERS[kind](image, prediction, style, scale, line)
    return image


def _torchvision_utils() -> Any:
    """torchvision.utils, whose draw_* functions draw every prediction kind."""
    return require("torchvision.utils", "drawing a prediction")


def _require_torchvision(kinds: Sequence[str]) -> None:
    """torchvision draws them: a task without it (its extra has none) asks for the extra."""
    require("torchvision.utils", f"drawing a prediction ({', '.join(kinds)})")


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an int [H, W] label map to ``size`` = (width, height)."""
    from PIL import Image

    picture = Image.fromarray(np.asarray(labels).astype(np.int32), mode="I")
    return np.asarray(picture.resize(size, Image.Resampling.NEAREST)).astype(np.int64)


def _draw_mask(image: torch.Tensor, prediction: ImagePrediction, style: Style,
               scale: tuple[float, float], line: int) -> torch.Tensor:
    draw_segmentation_masks = _torchvision_utils().draw_segmentation_masks

    assert prediction.mask is not None
    n_classes = len(style.class_names) or int(np.max(prediction.mask, initial=-1)) + 1
    mask = torch.from_numpy(resize_labels(prediction.mask, (image.shape[2], image.shape[1])))
    present = [k for k in torch.unique(mask).tolist() if 0 <= k < n_classes]
    if not present:
        return image
    masks = torch.stack([mask == k for k in present])                       # bool [K, H, W]
    return draw_segmentation_masks(image, masks, alpha=MASK_ALPHA,
                                   colors=[style.class_colour(k) for k in present])


def _scaled_boxes(boxes: np.ndarray, scale: tuple[float, float]) -> torch.Tensor:
    """float [B, 4] x1, y1, x2, y2 scaled, each with x2 >= x1 and y2 >= y1."""
    scaled = np.asarray(boxes, dtype=np.float64) * np.array([scale[0], scale[1]] * 2)
    scaled[:, 2:] = np.maximum(scaled[:, 2:], scaled[:, :2])
    return torch.from_numpy(scaled)


def _draw_boxes(image: torch.Tensor, prediction: ImagePrediction, style: Style,
                scale: tuple[float, float], line: int) -> torch.Tensor:
    draw_bounding_boxes = _torchvision_utils().draw_bounding_boxes

    assert prediction.boxes is not None
    if not len(prediction.boxes):
        return image
    count = len(prediction.boxes)
    labels = (np.asarray(prediction.labels, dtype=np.int64) if prediction.labels is not None
              else np.zeros(count, dtype=np.int64))
    texts: list[str] | None = None
    if style.box_text and prediction.keypoints is None:
        names = style.class_names
        texts = [names[label] if 0 <= label < len(names) else "" for label in labels]
        if prediction.box_scores is not None:
            texts = [f"{text} {float(score):.2f}".strip()
                     for text, score in zip(texts, prediction.box_scores, strict=True)]
        if not any(texts):
            texts = None
    colours = [style.class_colour(label) for label in labels]
    return draw_bounding_boxes(image, _scaled_boxes(prediction.boxes, scale), labels=texts,
                               colors=colours, width=line, fill_labels=texts is not None,
                               label_colors="white" if texts is not None else None)


def _draw_keypoints(image: torch.Tensor, prediction: ImagePrediction, style: Style,
                    scale: tuple[float, float], line: int) -> torch.Tensor:
    from PIL import Image, ImageDraw
    draw_keypoints = _torchvision_utils().draw_keypoints

    assert prediction.keypoints is not None
    points = np.asarray(prediction.keypoints, dtype=np.float64)                  # [P, J, 3]
    if not points.size:
        return image
    xy = points[..., :2] * np.array(scale)
    seen = points[..., 2] > style.keypoint_threshold                             # [P, J]
    picture = Image.fromarray(image.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(picture)
    for joints, visible in zip(xy, seen, strict=True):
        for limb, (a, b) in enumerate(style.skeleton):
            if a < len(joints) and b < len(joints) and visible[a] and visible[b]:
                draw.line((*joints[a], *joints[b]), fill=style.limb_colour(limb), width=line + 1)
    image = torch.from_numpy(np.array(picture)).permute(2, 0, 1).contiguous()
    return draw_keypoints(image, torch.from_numpy(xy), colors=style.joint_colour,
                          radius=line + 1, visibility=torch.from_numpy(seen))


def _draw_class(image: torch.Tensor, prediction: ImagePrediction, style: Style,
                scale: tuple[float, float], line: int) -> torch.Tensor:
    """The image framed in its class's colour, with the class's name (and confidence)."""
    draw_bounding_boxes = _torchvision_utils().draw_bounding_boxes

    assert prediction.label is not None
    label = int(prediction.label)
    names = style.class_names
    text = names[label] if 0 <= label < len(names) else str(label)
    if prediction.confidence is not None:
        text = f"{text} {float(prediction.confidence):.2f}"
    height, width = image.shape[-2:]
    frame = torch.tensor([[0.0, 0.0, width - 1.0, height - 1.0]])
    return draw_bounding_boxes(image, frame, labels=[text] if style.box_text else None,
                               colors=[style.class_colour(label)], width=line,
                               fill_labels=style.box_text, label_colors="white")


_Drawer = Callable[[torch.Tensor, ImagePrediction, Style, tuple[float, float], int], torch.Tensor]
_DRAWERS: dict[str, _Drawer] = {MASK: _draw_mask, BOXES: _draw_boxes, KEYPOINTS: _draw_keypoints,
                                CLASS: _draw_class}
