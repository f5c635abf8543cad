"""DRN-D-22's pretrained starts: fyu/drn's published files, converted to this model's layer names.

fyu/drn publishes (facts from its drn.py ``model_urls`` and README):

* ``drn_d_22-4bd2f8ea.pth``: DRN-D-22 trained on ImageNet, keys ``layer0 ... layer8`` (the 3x3
  convolution levels as ``nn.Sequential(conv, bn, relu)``, the residual levels as sequences of
  ``BasicBlock``s with ``conv1 bn1 conv2 bn2`` and a ``downsample`` (1x1 conv, bn) projection)
  and the ImageNet classifier ``fc`` (dropped here). The start of every reference segmentation
  run: fyu/drn's and the original project's ``DRNSeg`` build the network with
  ``pretrained=True``.
* ``drn_d_22_cityscapes.pth``: fyu/drn's whole ``DRNSeg`` trained on Cityscapes: ``base.*`` (the
  DRN without ``avgpool`` and ``fc``, as ``nn.Sequential(*children()[:-2])``, so ``base.0`` is
  ``layer0`` ... ``base.8`` is ``layer8``), ``seg.*`` (the 1x1 classifier) and ``up.weight`` (a
  fixed bilinear ``ConvTranspose2d`` kernel, not learned; this model upsamples bilinearly, so it
  is dropped). The original project's ``DRNSeg`` keeps the DRN whole: ``base.layer0 ...`` and
the 1000-class ImageNet ``base.fc`` (dropped, as ``fc`` of the plain layout).

This model names the same layers ``stage0 ... stage8`` (the residual stages hold their blocks
under ``stageN.0``; ``shortcut`` for ``downsample``) and ``classifier`` for ``seg``. A file in this
project's own layout loads as it is. Anything else, or a file the mapping leaves a layer of the
model without, is one :class:`WeightsError`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from active_learning.errors import WeightsError
from active_learning.files.pretrained import PublishedCheckpoint, describe_spec, load_named_state
from active_learning.files.weights import format_keys, load_state_dict_checked

__all__ = ["DRN_D_22_CITYSCAPES", "DRN_D_22_IMAGENET", "PUBLISHED", "load_pretrained",
           "to_model_keys"]

DRN_D_22_IMAGENET = PublishedCheckpoint(
    filename="drn_d_22-4bd2f8ea.pth", url="http://dl.yf.io/drn/drn_d_22-4bd2f8ea.pth",
    source="fyu/drn")
# fyu/drn's README links its Cityscapes models as http://go.yf.io/drn-cityscapes-models (a folder
# next to the ImageNet files of drn.py's webroot, http://dl.yf.io/drn/); this is the file there.
DRN_D_22_CITYSCAPES = PublishedCheckpoint(
    filename="drn_d_22_cityscapes.pth", url="http://dl.yf.io/drn/drn_d_22_cityscapes.pth",
    source="fyu/drn")
PUBLISHED = (DRN_D_22_IMAGENET, DRN_D_22_CITYSCAPES)

_PLAIN_LEVELS = {0, 1, 2, 7, 8}       # conv-BN-ReLU levels: the same layout on both sides
_LEVEL = re.compile(r"^layer([0-8])\.(.+)$")
_BLOCK = re.compile(r"^(\d+)\.(.+)$")
_SEQUENTIAL_BASE = re.compile(r"^base\.([0-8])\.(.+)$")
OWN_PREFIXES = ("stage", "classifier.")
BATCH_COUNTER = "num_batches_tracked"   # BatchNorm's counter; fyu's 2017 files predate it


def _level_key(key: str) -> str | None:
    """``layerN.<rest>`` (fyu/drn's DRN) -> this model's key; None if ``key`` is not one."""
    match = _LEVEL.match(key)
    if match is None:
        return None
    level, rest = int(match.group(1)), match.group(2)
    if level in _PLAIN_LEVELS:
        return f"stage{level}.{rest}"
    block = _BLOCK.match(rest)
    if block is None:
        return None
    index, inner = block.groups()
    if inner.startswith("downsample."):
        inner = "shortcut." + inner[len("downsample."):]
    # stageN = Sequential(the blocks, dropout): the blocks sit under stageN.0
    return f"stage{level}.0.{index}.{inner}"


def to_model_keys(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """``state`` under this model's key names, and the layout it was in.

    Layouts: ``"this project"`` (``stage0.* ... classifier.*``, unchanged), ``"fyu/drn DRN"``
    (``layer0.* ... layer8.*``; the ImageNet classifier ``fc.*`` is dropped), ``"DRNSeg"``
    (``base.*`` as ``base.N.*`` or ``base.layerN.*``, ``seg.*``; ``up.weight`` and the original
    project's ``base.fc.*``, the ImageNet classifier it keeps inside ``base``, are dropped).

    Raises:
        ValueError: a key of none of these layouts (the caller names the file).
    """
    keys = list(state)
    if keys and all(key.startswith(OWN_PREFIXES) for key in keys):
        return dict(state), "this project"
    seg = any(key.startswith(("base.", "seg.")) for key in keys)
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        name: str | None = key
        if seg:
            if key == "up.weight":        # DRNSeg's fixed bilinear upsampling kernel
                continue
            if key.startswith("base.fc."):  # the original's DRNSeg keeps ImageNet's classifier
                continue
            match = _SEQUENTIAL_BASE.match(key)
            if match is not None:         # fyu/drn: base = Sequential(layer0, ..., layer8)
                name = f"layer{match.group(1)}.{match.group(2)}"
            elif key.startswith("base."):  # the original project: base = the DRN itself
                name = key[len("base."):]
            elif key.startswith("seg."):
                converted["classifier." + key[len("seg."):]] = value
                continue
        elif key.startswith("fc."):       # the ImageNet classifier
            continue
        mapped = _level_key(name) if name is not None else None
        if mapped is None:
            unknown.append(key)
        else:
            converted[mapped] = value
    if unknown:
        raise ValueError(f"keys of no DRN-D-22 layout ({len(unknown)}): {format_keys(unknown)}")
    return converted, "DRNSeg" if seg else "fyu/drn DRN"


def load_pretrained(model: nn.Module, spec: str, *, flag: str, backbone: bool,
                    state: Mapping[str, torch.Tensor] | None = None) -> list[str]:
    """Load the weights ``spec`` names into ``model`` (a ``DRNSegmentation``); the loaded keys.

    ``backbone=True`` (``--weights-backbone``): every layer but the classifier must come from
    the file (a classifier in it, e.g. a DRNSeg's for other classes, is ignored);
    ``backbone=False`` (``--weights``): every layer, the classifier too. BatchNorm's
    ``num_batches_tracked`` counters, which fyu/drn's files predate, keep the model's values.
    ``state``: the file's tensors when the caller already read them (one read per run).

    Raises:
        WeightsError: the file is missing (``load_named_state``), is in no DRN-D-22 layout,
            leaves a layer of the model out, or its shapes differ (another ``--width`` or
            number of classes).
    """
    if state is None:
        state = load_named_state(spec, flag=flag, published=PUBLISHED)
    where = f"{flag} {describe_spec(spec, PUBLISHED)}"
    try:
        converted, layout = to_model_keys(state)
    except ValueError as error:
        raise WeightsError(f"{where}: not a DRN-D-22 checkpoint: {error}") from None
    own = model.state_dict()
    wanted = [key for key in own if not key.endswith(BATCH_COUNTER)
              and not (backbone and key.startswith("classifier."))]
    if backbone:
        converted = {key: value for key, value in converted.items()
                     if not key.startswith("classifier.")}
    missing = [key for key in wanted if key not in converted]
    unexpected = [key for key in converted if key not in own]
    problems = [f"{label} ({len(keys)}): {format_keys(keys)}"
                for label, keys in (("layers the file lacks", missing),
                                    ("keys the model lacks", unexpected)) if keys]
    if problems:
        raise WeightsError(f"{where} ({layout} layout) does not fit DRN-D-22: "
                           f"{'; '.join(problems)}")
    hint = "the published files are DRN-D-22 at --width 1; --weights also needs their classes"
    return load_state_dict_checked(model, converted, path=spec, flag=flag, strict=False, hint=hint)
