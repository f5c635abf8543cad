"""SSD300 with the VGG-16 backbone (torchvision), with loss-prediction taps and
optional head dropout.

``build_model(num_classes, width=1.0)`` is torchvision's ``ssd300_vgg16(weights=None,
weights_backbone=None)``; ``width < 1`` scales every backbone channel count (a CPU preset) and
keeps the same code path: the same extractor layout, anchors (8732 default boxes), head, box
coder, matcher and post-processing.

:class:`SSD300` wraps those parts so the active learning loop can reach what it needs:

* ``forward_intermediates(images)`` -> ({"cls_logits" [B, A, C], "bbox_regression" [B, A, 4]},
  six taps): conv4_3 *before* its L2 normalisation (as the original project tapped it), fc7,
  conv8_2, conv9_2, conv10_2, conv11_2 (512@38, 1024@19, 512@10, 256@5, 256@3, 256@1 at width 1).
* ``scorer``: images -> class logits [B, A, C] through ``dropout`` (on the six source maps, before
  the head): the module MC dropout samples; the backbone runs once, the head T times.
* ``detect(images)``: boxes after NMS, in the 300 x 300 input's coordinates.

Its state dict has torchvision's key names (``backbone.*``, ``head.*``), so a torchvision SSD300
checkpoint with the same number of classes loads as it is.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from active_learning.errors import WeightsError
from active_learning.files.pretrained import PublishedCheckpoint, describe_spec, load_named_state
from active_learning.files.weights import format_keys, load_state_dict_checked

INPUT_SIZE = 300
# torchvision's SSD300 input normalisation: 0..1 RGB -> 0..255 minus the VGG mean.
IMAGE_MEAN = (0.48235, 0.45882, 0.40784)
IMAGE_STD = (1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0)
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512)
# What detection uncertainty scores: the detector's output boxes (after the score threshold and
# NMS) or every default box.
SCORED_BOXES = ("detections", "anchors")
TAP_NAMES = ("conv4_3", "fc7", "conv8_2", "conv9_2", "conv10_2", "conv11_2")
TAP_CHANNELS = (512, 1024, 512, 256, 256, 256)
TAP_STRIDES = (8, 16, 32, 64, 100, 300)
ASPECT_RATIOS = ([2], [2, 3], [2, 3], [2, 3], [2], [2])
# Default-box scales, a fraction of the 300-pixel input per source map (the seventh is the last
# map's s'_k partner). "voc": ssd.pytorch's VOC configuration (data/config.py `voc`, also the
# original project's object_detection/pascal_voc_ssd/data/config.py): min sizes 30, 60, 111,
# 162, 213, 264 and max sizes 60 ... 315 pixels; each max size is the next map's min size, so
# the seven values below are exactly those sizes / 300. "coco": torchvision's ssd300_vgg16
# (COCO: 0.07 ... 1.05, a 21-pixel conv4_3 box), what SSD300_VGG16_Weights.COCO_V1 was trained
# with.
ANCHOR_SCALES = {
    "voc": tuple(size / INPUT_SIZE for size in (30, 60, 111, 162, 213, 264, 315)),
    "coco": (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05),
}


def _scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


class NarrowVGGExtractor(nn.Module):
    """torchvision's ``SSDFeatureExtractorVGG`` with every channel count times ``width``.

    Same attribute names (``features``, ``scale_weight``, ``extra``) and layer order, so the
    forward of :class:`SSD300` serves both. ``batch_norm`` adds BatchNorm after every VGG
    convolution (as torchvision's ``vgg16_bn``): a narrow SSD trained from scratch on a few
    hundred images barely leaves its initial loss without it.
    """

    def __init__(self, width: float, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for value in VGG16_CONFIG:
            if value in ("M", "C"):
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=value == "C"))
                continue
            out = _scaled(value, width)
            layers.append(nn.Conv2d(in_channels, out, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            in_channels = out
        pools = [index for index, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
        maxpool4 = pools[3]   # the max pool after conv4_3 (index 23 in torchvision's VGG-16)
        conv4 = _scaled(512, width)
        self.features = nn.Sequential(*layers[:maxpool4])
        self.scale_weight = nn.Parameter(torch.ones(conv4) * 20)
        fc7 = _scaled(1024, width)
        fc = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                           nn.Conv2d(conv4, fc7, kernel_size=3, padding=6, dilation=6),
                           nn.ReLU(inplace=True),
                           nn.Conv2d(fc7, fc7, kernel_size=1), nn.ReLU(inplace=True))
        extra = [nn.Sequential(*layers[maxpool4:], fc)]     # pool4, conv5_1 .. conv5_3, fc6, fc7
        # (1x1 reduce, 3x3 out, stride, padding) of conv8_2 .. conv11_2
        in_channels = fc7
        for reduce, out, stride, padding in ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0),
                                             (128, 256, 1, 0)):
            reduce, out = _scaled(reduce, width), _scaled(out, width)
            extra.append(nn.Sequential(nn.Conv2d(in_channels, reduce, kernel_size=1),
                                       nn.ReLU(inplace=True),
                                       nn.Conv2d(reduce, out, kernel_size=3, padding=padding,
                                                 stride=stride),
                                       nn.ReLU(inplace=True)))
            in_channels = out
        self.extra = nn.ModuleList(extra)
        for module in [*self.extra.modules()]:
            if isinstance(module, nn.Conv2d):  # torchvision's _xavier_init of the added layers
                nn.init.xavier_uniform_(module.weight)
                nn.init.constant_(module.bias, 0.0)
        self.out_channels = [conv4, fc7] + [_scaled(c, width) for c in TAP_CHANNELS[2:]]


class _Scorer(nn.Module):
    """What MC dropout samples; dropout between backbone and head.

    ``boxes="anchors"``: images [B, 3, 300, 300] (0..1) -> class logits [B, A, C] of every
    default box. ``boxes="detections"``: -> ``{"detection_logits": [B, D, C], "counts": [B]}``,
    the class logits of the detector's output boxes (``detection_slots``): which default boxes
    these are is decided once, by the deterministic (dropout-free) detector, so that each pass
    scores the same boxes.

    Written so torch.fx can trace it (``MCDropoutSampler``): the trunk holds no dropout and stays
    one opaque call, run once per batch; dropout and the classification head run T times.
    """

    def __init__(self, detector: SSD300, boxes: str = "anchors") -> None:
        super().__init__()
        if boxes not in SCORED_BOXES:
            raise ValueError(f"boxes must be one of {SCORED_BOXES}, got {boxes!r}")
        self.with_detections = boxes == "detections"
        self.trunk = _Trunk(detector, self.with_detections)
        self.dropout = detector.dropout
        self.head = detector.head.classification_head
        self.levels = len(self.head.module_list)

    def forward(self, images: torch.Tensor) -> Any:
        trunk = self.trunk(images)
        sources = trunk[0]
        logits = self.head([self.dropout(sources[level]) for level in range(self.levels)])
        if not self.with_detections:
            return logits
        return {"detection_logits": fill_slots(logits, trunk[1], trunk[2], trunk[3]),
                "counts": trunk[4]}


class _Trunk(nn.Module):
    """The deterministic part: images -> the six normalised source maps (no dropout inside),
    and with ``with_detections`` the detection slots of the dropout-free detector
    (``detection_slots``: index, filled, empty, counts)."""

    def __init__(self, detector: SSD300, with_detections: bool = False) -> None:
        super().__init__()
        self.detector = [detector]  # a list: not a submodule (no second copy in state dicts)
        self.backbone = detector.backbone
        self.with_detections = with_detections

    def forward(self, images: torch.Tensor) -> tuple:
        detector = self.detector[0]
        sources = detector.sources(images)[0]
        if not self.with_detections:
            return (sources,)
        outputs = detector.head(sources)
        outputs["anchors"] = detector.anchors(images, sources)
        found = detector.postprocess(outputs)
        return (sources, *detection_slots([d["anchor"] for d in found],
                                          outputs["cls_logits"].shape[-1],
                                          outputs["cls_logits"].dtype))


class SSD300(nn.Module):
    """torchvision's SSD300 parts, driven step by step (see the module docstring).

    Args:
        ssd: a ``torchvision.models.detection.SSD`` (its backbone, head, anchors, coder, matcher).
        dropout: p of the dropout on the source maps before the head (0 = none).
    """

    def __init__(self, ssd: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone, self.head = ssd.backbone, ssd.head
        self.anchor_generator = ssd.anchor_generator
        self.box_coder, self.proposal_matcher = ssd.box_coder, ssd.proposal_matcher
        self.neg_to_pos_ratio = ssd.neg_to_pos_ratio
        self._torchvision = [ssd]     # a list: not a submodule (tests compare its loss with ours)
        self.num_classes = ssd.head.classification_head.num_columns
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)
        self._anchors: dict[tuple, torch.Tensor] = {}
        # ssd.pytorch's evaluation settings (see ``detections``)
        self.score_thresh, self.nms_thresh, self.top_k = SCORE_THRESH, NMS_THRESH, TOP_K

    @property
    def scorer(self) -> nn.Module:
        """images -> class logits [B, A, C]: the module MC dropout samples (shares our weights)."""
        return _Scorer(self)

    def scorer_for(self, boxes: str) -> nn.Module:
        """The module MC dropout samples, over ``boxes`` ("anchors" or "detections", see
        ``_Scorer``); it shares our weights."""
        return _Scorer(self, boxes)

    def sources(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """images [B, 3, 300, 300] in 0..1 -> (six source maps for the head, six loss taps).

        The taps are the sources, except conv4_3, taken before its L2 normalisation.
        """
        x = self.backbone.features((images - self.mean) / self.std)  # conv4_3 [B, 512, 38, 38]
        conv4_3 = x
        sources = [self.backbone.scale_weight.view(1, -1, 1, 1) * F.normalize(x)]
        for block in self.backbone.extra:
            x = block(x)
            sources.append(x)
        return sources, [conv4_3, *sources[1:]]

    def anchors(self, images: torch.Tensor, sources: list[torch.Tensor]) -> torch.Tensor:
        """The default boxes [A, 4] (x1, y1, x2, y2 in input pixels, float32); the same for
        every image. Always float32: under autocast the source maps are half precision, and
        bf16 boxes would be off by up to a pixel (the generator takes their dtype)."""
        key = (tuple(images.shape[-2:]), images.device)
        if key not in self._anchors:
            from torchvision.models.detection.image_list import ImageList

            image_list = ImageList(images[:1].float(), [tuple(images.shape[-2:])])
            shapes = [torch.empty(0, 0, *source.shape[-2:], device=source.device)  # fp32, no data
                      for source in sources]
            self._anchors[key] = self.anchor_generator(image_list, shapes)[0]
        return self._anchors[key]

    def forward_intermediates(self, images: torch.Tensor
                              ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """images [B, 3, 300, 300] -> (head outputs with ``anchors`` [A, 4], six loss taps)."""
        sources, taps = self.sources(images)
        outputs = self.head([self.dropout(source) for source in sources])
        outputs["anchors"] = self.anchors(images, sources)
        return outputs, taps

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_intermediates(images)[0]

    @torch.inference_mode()
    def detect(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per image: boxes [K, 4] (input pixels), scores [K], labels [K] (1..C-1), after NMS."""
        return self.postprocess(self.forward(images))

    def postprocess(self, outputs: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Head outputs -> per image, the detections best first (see :func:`detections`)."""
        return detections(outputs, score_thresh=self.score_thresh, nms_thresh=self.nms_thresh,
                          top_k=self.top_k)


# ssd.pytorch's test-time settings: Detect(num_classes, 0, 200, 0.01, 0.45) in ssd.py (the
# original project's too): score above 0.01, the 200 best per class, NMS at IoU 0.45.
SCORE_THRESH, NMS_THRESH, TOP_K = 0.01, 0.45, 200
# SSD's box coder: ssd.pytorch's variances (0.1, 0.2) as torchvision's weights (10, 10, 5, 5).
BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# The class logits of an empty detection slot: background 0, every class -1e4, so its softmax
# is exactly (1, 0, ..., 0) and every uncertainty score of it (entropy, margin, MC variance,
# BALD, ...) is exactly 0.
EMPTY_SLOT_LOGIT = -1e4


def detections(outputs: dict[str, torch.Tensor], *, score_thresh: float = SCORE_THRESH,
               nms_thresh: float = NMS_THRESH, top_k: int = TOP_K
               ) -> list[dict[str, torch.Tensor]]:
    """Head outputs (``cls_logits`` [B, A, C], ``bbox_regression`` [B, A, 4], ``anchors``
    [A, 4]) -> per image, the detections best first: ``boxes`` [K, 4] (input pixels, clipped
    to the input), ``scores`` [K], ``labels`` [K] (1..C-1) and ``anchor`` [K] (the default box
    each came from, an index into the A boxes).

    ssd.pytorch's test-time ``Detect``: per class, the boxes scoring above ``score_thresh``,
    the ``top_k`` best of them, NMS at IoU ``nms_thresh``; up to ``top_k`` per class and no cap
    per image (torchvision's SSD keeps 400 candidates per class and 200 per image).
    """
    from torchvision.models.detection._utils import BoxCoder
    from torchvision.ops import batched_nms, clip_boxes_to_image

    coder = BoxCoder(weights=BOX_CODER_WEIGHTS)
    probabilities = torch.softmax(outputs["cls_logits"].float(), dim=-1)          # [B, A, C]
    anchors = outputs["anchors"].float()
    results = []
    for regression, scores in zip(outputs["bbox_regression"], probabilities, strict=True):
        boxes = clip_boxes_to_image(coder.decode_single(regression.float(), anchors),
                                    (INPUT_SIZE, INPUT_SIZE))                      # [A, 4]
        foreground = scores[:, 1:]                                                # [A, C - 1]
        anchor, label = torch.nonzero(foreground > score_thresh, as_tuple=True)
        score = foreground[anchor, label]
        if len(label):  # the top_k best of each class (stable order among equal scores)
            keep = torch.cat([index[score[index].argsort(descending=True, stable=True)[:top_k]]
                              for index in (torch.nonzero(label == c, as_tuple=True)[0]
                                            for c in label.unique())])
            anchor, label, score = anchor[keep], label[keep], score[keep]
        keep = batched_nms(boxes[anchor], score, label, nms_thresh)       # score-descending
        anchor, label, score = anchor[keep], label[keep], score[keep]
        results.append({"boxes": boxes[anchor], "scores": score, "labels": label + 1,
                        "anchor": anchor})
    return results


def detection_slots(anchor_lists: Sequence[torch.Tensor], num_classes: int,
                    dtype: torch.dtype = torch.float32
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch's detections as D = max(1, most detections of an image) slots per image.

    ``anchor_lists``: per image, the default box of each detection [K_b] (best first). Returns
    ``index`` [B, D] (the default box of each slot; 0 in empty slots), ``filled`` [B, D] bool,
    ``empty`` [B, D, C] (the logits of an empty slot, ``EMPTY_SLOT_LOGIT``) and ``counts``
    [B] (K_b). :func:`fill_slots` then picks the slots' class logits out of a head's.
    """
    device = anchor_lists[0].device if len(anchor_lists) else torch.device("cpu")
    counts = torch.tensor([len(a) for a in anchor_lists], dtype=torch.int64, device=device)
    slots = max(1, int(counts.max()) if len(counts) else 1)
    index = torch.zeros(len(anchor_lists), slots, dtype=torch.int64, device=device)
    for row, anchors in enumerate(anchor_lists):
        index[row, :len(anchors)] = anchors
    filled = torch.arange(slots, device=device)[None] < counts[:, None]
    empty = torch.full((len(anchor_lists), slots, num_classes), EMPTY_SLOT_LOGIT, dtype=dtype,
                       device=device)
    empty[..., 0] = 0.0
    return index, filled, empty, counts


def fill_slots(cls_logits: torch.Tensor, index: torch.Tensor, filled: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
    """Class logits [B, A, C] -> the detection slots' [B, D, C] (``detection_slots``)."""
    picked = cls_logits.gather(1, index.unsqueeze(-1).expand(-1, -1, cls_logits.shape[-1]))
    return torch.where(filled.unsqueeze(-1), picked, empty.to(picked.dtype))


def default_boxes(anchors: str = "voc") -> nn.Module:
    """The default-box generator of ``anchors`` ("voc" or "coco", see ``ANCHOR_SCALES``).

    torchvision's ``DefaultBoxGenerator`` lays the boxes out as ssd.pytorch's ``PriorBox``: map
    by map, locations row by row, at each location (s_k, s_k), (s'_k, s'_k) with
    s'_k = sqrt(s_k s_{k+1}), then (s_k sqrt(a), s_k / sqrt(a)) and its transpose for each
    aspect ratio a; centres ((j + 0.5) step / 300, (i + 0.5) step / 300); sizes clipped to
    [0, 1]. 8,732 boxes on a 300 x 300 input. "voc" also clips the centres to [0, 1] as
    ``PriorBox`` does (it clamps the whole (cx, cy, w, h)): the last row and column of the
    10 x 10 map (step 32) have centre 9.5 x 32 / 300 = 1.013 otherwise; torchvision clips only
    the sizes, and "coco" keeps that (what COCO_V1 was trained with).
    """
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

    if anchors not in ANCHOR_SCALES:
        raise ValueError(f"anchors must be one of {sorted(ANCHOR_SCALES)}, got {anchors!r}")
    generator = _prior_boxes_class() if anchors == "voc" else DefaultBoxGenerator
    return generator([list(ratios) for ratios in ASPECT_RATIOS],
                     scales=list(ANCHOR_SCALES[anchors]), steps=list(TAP_STRIDES), clip=True)


def _prior_boxes_class() -> type:
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

    class PriorBoxes(DefaultBoxGenerator):
        """torchvision's generator with ssd.pytorch's clip: (cx, cy, w, h) all in [0, 1]."""

        def _grid_default_boxes(self, grid_sizes, image_size, dtype=torch.float32):
            boxes = super()._grid_default_boxes(grid_sizes, image_size, dtype=dtype)  # [A, 4]
            return boxes.clamp(min=0.0, max=1.0)

    return PriorBoxes


def build_model(num_classes: int, *, width: float = 1.0, dropout: float = 0.0,
                batch_norm: bool = False, anchors: str = "voc",
                basenet: str | Path | None = None,
                weights: str | Path | None = None) -> SSD300:
    """SSD300-VGG16 for ``num_classes`` classes (background included), randomly initialised,
    then the backbone from ``basenet`` (:func:`load_basenet`) and / or everything from
    ``weights`` (:func:`load_weights`): files or the names ``load_named_state`` reads.

    ``anchors``: the default boxes, "voc" (ssd.pytorch's VOC configuration, the default) or
    "coco" (torchvision's ``ssd300_vgg16``). ``batch_norm`` (VGG-16-BN) and ``width < 1`` build
    the extractor here; otherwise it is torchvision's ``ssd300_vgg16``."""
    from torchvision.models.detection.ssd import SSD, ssd300_vgg16

    generator = default_boxes(anchors)
    if width == 1.0 and not batch_norm:
        ssd = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=num_classes)
        ssd.anchor_generator = generator   # same boxes per location (4, 6, 6, 6, 4, 4)
    else:
        ssd = SSD(NarrowVGGExtractor(width, batch_norm), generator, (INPUT_SIZE, INPUT_SIZE),
                  num_classes, image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD))
    model = SSD300(ssd, dropout=dropout)
    if basenet:
        load_basenet(model, basenet)
    if weights:
        load_weights(model, weights, anchors)
    return model


def feature_info(width: float = 1.0) -> list[dict]:
    """The loss-prediction taps (name, channels, stride)."""
    channels = TAP_CHANNELS if width == 1.0 else [_scaled(c, width) for c in TAP_CHANNELS]
    return [{"name": name, "channels": c, "stride": s}
            for name, c, s in zip(TAP_NAMES, channels, TAP_STRIDES, strict=True)]


# ssd.pytorch's backbone start: its README's "download the fc-reduced VGG-16 PyTorch base network
# weights" (the original project loads it from weights/ by default, `--basenet`).
VGG16_REDUCEDFC = PublishedCheckpoint(
    filename="vgg16_reducedfc.pth",
    url="https://s3.amazonaws.com/amdegroot-models/vgg16_reducedfc.pth",
    source="amdegroot/ssd.pytorch")
PUBLISHED = (VGG16_REDUCEDFC,)
# The torchvision VGG-16 weights that fit SSD's input (0..255 minus the mean, the weights of
# ssd.pytorch ported by torchvision): every other VGG16 / VGG16_BN weights name expects
# mean/std-normalised inputs.
TORCHVISION_SSD_VGG = "VGG16_Weights.IMAGENET1K_FEATURES"
# torchvision's whole detector, trained on COCO (91 classes) with the "coco" default boxes.
TORCHVISION_COCO_SSD = "SSD300_VGG16_Weights.COCO_V1"
CLASS_HEAD = "head.classification_head."

log = logging.getLogger(__name__)


def _vgg_key(key: str) -> str | None:
    """A VGG-16 key -> our backbone's key, or None for layers SSD does not have.

    Accepts ssd.pytorch's reduced-fc file (``0.weight`` .. ``28.weight`` the VGG convolutions,
    ``31.*`` fc6 and ``33.*`` fc7 as dilated convolutions; ``vgg.N.*`` in a whole ssd.pytorch
    detector) and torchvision's ``vgg16`` state dict (``features.N.*``; its fully connected
    classifier has no convolutional counterpart, and in IMAGENET1K_FEATURES no values).
    """
    torchvision = key.startswith("features.")
    layer, _, parameter = key.removeprefix("features.").removeprefix("vgg.").partition(".")
    if not layer.isdigit() or parameter not in ("weight", "bias"):
        return None
    index = int(layer)
    if index < 23:
        return f"backbone.features.{index}.{parameter}"
    if index < 30:
        return f"backbone.extra.0.{index - 23}.{parameter}"
    if torchvision:
        return None
    return {31: f"backbone.extra.0.7.1.{parameter}",
            33: f"backbone.extra.0.7.3.{parameter}"}.get(index)


def ssd_pytorch_key(key: str) -> str | None:
    """A whole ssd.pytorch SSD300's key -> ours (``ssd.py``: ``vgg.N``, ``L2Norm.weight``,
    ``extras.0`` .. ``extras.7`` (conv8_1, conv8_2, ..., conv11_2), ``loc.k`` / ``conf.k`` the
    heads of the six sources); None for a key it does not have. Its heads lay each location's
    boxes and coordinates out as torchvision's (box-major, then the 4 offsets / C classes)."""
    if key == "L2Norm.weight":
        return "backbone.scale_weight"
    head, _, rest = key.partition(".")
    layer, _, parameter = rest.partition(".")
    if head == "vgg":
        return _vgg_key(key)
    if not layer.isdigit() or parameter not in ("weight", "bias"):
        return None
    index = int(layer)
    if head == "extras" and index < 8:          # block k + 1 of ours: 1x1 reduce (0), 3x3 (2)
        return f"backbone.extra.{index // 2 + 1}.{2 * (index % 2)}.{parameter}"
    if head in ("loc", "conf") and index < 6:
        kind = "regression" if head == "loc" else "classification"
        return f"head.{kind}_head.module_list.{index}.{parameter}"
    return None


def refuse_normalised_vgg(spec: str, flag: str) -> None:
    """One WeightsError for torchvision VGG-16 weights that expect normalised inputs."""
    name = str(spec)
    if name.startswith(("VGG16_Weights.", "VGG16_BN_Weights.", "timm:vgg")) \
            and name != TORCHVISION_SSD_VGG:
        raise WeightsError(
            f"{flag} {name}: these weights expect mean/std-normalised inputs, about 57x smaller "
            f"than SSD's 0-255 ones (the first convolution cannot absorb the difference exactly "
            f"at the image border); use {TORCHVISION_SSD_VGG} or {VGG16_REDUCEDFC.filename} "
            "(ssd.pytorch's), or --from-scratch")


def load_basenet(model: SSD300, spec: str | Path) -> list[str]:
    """Load backbone weights (``--basenet`` / ``--weights-backbone``); returns the loaded keys.

    ``spec`` is anything ``load_named_state`` reads: ssd.pytorch's ``vgg16_reducedfc.pth`` (its
    published name, from torch.hub's cache; VGG-16 with fc6 / fc7 as convolutions), the
    torchvision name ``VGG16_Weights.IMAGENET1K_FEATURES`` (the same network's convolutions
    ported by torchvision; fc6 / fc7 stay random, as in torchvision's ``ssd300_vgg16``), or a
    local file: one of those, a whole ssd.pytorch detector (``vgg.N``: its VGG part), or a
    backbone under this model's own key names (``backbone.*``). Other torchvision VGG weights
    expect normalised inputs and are refused. Every tensor must match the model's shape (a
    ``--width`` model cannot take full VGG); a missing file or layer raises ``WeightsError``.
    """
    flag = "--weights-backbone"
    hint = "full-width VGG-16 weights need --width 1; same --batch-norm?"
    refuse_normalised_vgg(str(spec), flag)
    state = load_named_state(str(spec), flag=flag, published=PUBLISHED)
    if any(key.startswith("backbone.") for key in state):
        mapped = {key: value for key, value in state.items() if key.startswith("backbone.")}
    else:
        if any(isinstance(module, nn.BatchNorm2d) for module in model.backbone.modules()):
            raise WeightsError(f"{flag} {spec} holds plain VGG-16 weights; the model has "
                               "BatchNorm (--batch-norm)")
        mapped = {target: value for key, value in state.items()
                  if (target := _vgg_key(key)) is not None}
    if not mapped:
        raise WeightsError(f"{flag} {spec}: no VGG-16 layer found (expected keys like "
                           "'0.weight', 'vgg.0.weight', 'features.0.weight' or "
                           "'backbone.features.0.weight')")
    # Every VGG layer of the file must land somewhere: a layer this backbone lacks means another
    # layout (BatchNorm or not), which a partial load would hide.
    own = model.state_dict()
    unknown = [key for key in mapped if key not in own]
    if unknown:
        raise WeightsError(f"{flag} {spec} has {len(unknown)} layers this backbone lacks: "
                           f"{format_keys(unknown)} (same --batch-norm?)")
    # ... and every VGG convolution must come from the file: a truncated or partial file would
    # otherwise leave layers random without a word. torchvision's VGG has no fc6 / fc7.
    torchvision_layout = any(key.startswith("features.") for key in state)
    expected = {target for index in range(34) for parameter in ("weight", "bias")
                if (target := _vgg_key(f"{'features.' if torchvision_layout else ''}"
                                       f"{index}.{parameter}")) is not None and target in own}
    if not any(key.startswith("backbone.") for key in state):
        missing = sorted(expected - set(mapped))
        fits = all(tuple(mapped[key].shape) == tuple(own[key].shape) for key in mapped)
        if missing and fits:   # a file of another width gets the shape message below
            raise WeightsError(f"{flag} {spec} lacks {len(missing)} VGG-16 layers: "
                               f"{format_keys(missing)} (a truncated or partial file?)")
    loaded = load_state_dict_checked(model, mapped, path=spec, flag=flag, strict=False,
                                     hint=hint)
    log.info("%s: %d backbone tensors from %s", flag, len(loaded),
             describe_spec(str(spec), PUBLISHED))
    return loaded


def load_weights(model: SSD300, spec: str | Path, anchors: str = "voc") -> list[str]:
    """Load a whole detector (``--weights``): ours, torchvision's SSD300 (a file, or the name
    ``SSD300_VGG16_Weights.COCO_V1``) or ssd.pytorch's (``vgg.*``, ``extras.*``, ``loc.*``,
    ``conf.*``). Returns the keys loaded.

    Everything must fit, except the class head when the classes differ (COCO_V1's 91 against a
    VOC run's 21): it then stays random, and a warning says so. ``anchors`` is the model's
    default-box set: COCO_V1 was trained with torchvision's "coco" boxes, and its box regression
    means less over the "voc" ones (a warning says so).
    """
    flag = "--weights"
    state = load_named_state(str(spec), flag=flag, published=PUBLISHED)
    if "L2Norm.weight" in state or any(key.startswith("vgg.") for key in state):
        state = {target: value for key, value in state.items()
                 if (target := ssd_pytorch_key(key)) is not None}
    own = model.state_dict()
    head = [key for key in own if key.startswith(CLASS_HEAD)]
    bias = state.get(f"{CLASS_HEAD}module_list.0.bias")          # [4 boxes x classes]
    classes = None if bias is None else bias.shape[0] // 4
    if classes is not None and classes != model.num_classes and all(k in state for k in head):
        warnings.warn(f"{flag} {spec}: its class head has {classes} classes, this model "
                      f"{model.num_classes}: every other layer is loaded, the class head "
                      "starts random", UserWarning, stacklevel=2)
        state = {key: value for key, value in state.items() if not key.startswith(CLASS_HEAD)}
        state.update({key: own[key] for key in head})
    if str(spec) == TORCHVISION_COCO_SSD and anchors != "coco":
        warnings.warn(f"{flag} {spec} was trained with torchvision's COCO default boxes; "
                      "--anchors coco keeps its box regression meaningful", UserWarning,
                      stacklevel=2)
    loaded = load_state_dict_checked(model, state, path=spec, flag=flag,
                                     hint="same --width, --batch-norm and classes?")
    log.info("%s: the whole detector from %s", flag, describe_spec(str(spec), PUBLISHED))
    return loaded
