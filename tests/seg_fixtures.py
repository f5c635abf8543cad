"""Tiny segmentation datasets written by the tests in the real on-disk formats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthetic.cityscapes import write_cityscapes
from synthetic.scenes import SceneConfig

TINY_SCENES = SceneConfig(height=32, width=64, min_items=2, max_items=4, min_size=10, max_size=22,
                          threshold=40)


def fake_items(count: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blobs standing in for Fashion-MNIST items: (uint8 [N, 28, 28], labels int64 [N])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    items = np.zeros((count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    for index, label in enumerate(labels):
        radius = 6 + label % 5
        inside = (yy - 14) ** 2 + ((xx - 14) * (1 + label / 10)) ** 2 < radius ** 2
        items[index][inside] = 120 + 12 * label
    return items, labels


def write_tiny_cityscapes(root: Path, train: int = 12, val: int = 4, seed: int = 0) -> Path:
    items = fake_items(seed=seed)
    write_cityscapes(root, {"train": items, "val": items}, {"train": train, "val": val},
                     config=TINY_SCENES, seed=seed, cities_per_split=2, progress=False)
    return root


TINY_ARGS = ["train", "--no-report-map", "-s", "0", "--width", "0.125", "--epochs", "1", "--batch-size", "4",
             "--eval-batch-size", "4", "--cycles", "2", "--initial-size", "4", "--images-per-cycle", "2",
             "--superpixels-per-cycle", "6", "--superpixels-per-image", "12", "--mc-samples", "2",
             "--no-progress", "--device", "cpu", "--from-scratch"]


# DRN-D-22's convolutions as fyu/drn's drn.py builds them (``drn_d_22``: levels of 1, 1, 2, 2, 2,
# 2, 1, 1; layer5 and layer6 with new_level=False, so every 3x3 of theirs dilates 2 and 4) and as
# the DRN paper's Table 1 lists them. # fyu/drn builds them (conv1, conv2, then downsample inside a block).
DRN_D_22 = [
    ("layer0.0", 3, 16, 7, 1, 1, 3),
    ("layer1.0", 16, 16, 3, 1, 1, 1),
    ("layer2.0", 16, 32, 3, 2, 1, 1),
    ("layer3.0.conv1", 32, 64, 3, 2, 1, 1),
    ("layer3.0.conv2", 64, 64, 3, 1, 1, 1),
    ("layer3.0.downsample.0", 32, 64, 1, 2, 1, 0),
    ("layer3.1.conv1", 64, 64, 3, 1, 1, 1),
    ("layer3.1.conv2", 64, 64, 3, 1, 1, 1),
    ("layer4.0.conv1", 64, 128, 3, 2, 1, 1),
    ("layer4.0.conv2", 128, 128, 3, 1, 1, 1),
    ("layer4.0.downsample.0", 64, 128, 1, 2, 1, 0),
    ("layer4.1.conv1", 128, 128, 3, 1, 1, 1),
    ("layer4.1.conv2", 128, 128, 3, 1, 1, 1),
    ("layer5.0.conv1", 128, 256, 3, 1, 2, 2),
    ("layer5.0.conv2", 256, 256, 3, 1, 2, 2),
    ("layer5.0.downsample.0", 128, 256, 1, 1, 1, 0),
    ("layer5.1.conv1", 256, 256, 3, 1, 2, 2),
    ("layer5.1.conv2", 256, 256, 3, 1, 2, 2),
    ("layer6.0.conv1", 256, 512, 3, 1, 4, 4),
    ("layer6.0.conv2", 512, 512, 3, 1, 4, 4),
    ("layer6.0.downsample.0", 256, 512, 1, 1, 1, 0),
    ("layer6.1.conv1", 512, 512, 3, 1, 4, 4),
    ("layer6.1.conv2", 512, 512, 3, 1, 4, 4),
    ("layer7.0", 512, 512, 3, 1, 2, 2),
    ("layer8.0", 512, 512, 3, 1, 1, 1),
    ("seg", 512, 19, 1, 1, 1, 0),          # DRNSeg's 1x1 classifier
]


def _bn_name(conv: str) -> str:
    """The BatchNorm that follows a convolution in fyu/drn's naming."""
    if conv.endswith(".conv1") or conv.endswith(".conv2"):
        return conv[:-5] + "bn" + conv[-1]
    return conv[:-1] + "1"          # layerN.0 -> layerN.1, downsample.0 -> downsample.1


def reference_state(model: nn.Module, layout: str = "imagenet") -> dict[str, torch.Tensor]:
    """``model``'s (a DRNSegmentation) tensors under the reference's key names, found by module
    order (each convolution, then its BatchNorm, in DRN_D_22's order), not by any name mapping.

    layout: ``"imagenet"`` (fyu/drn's drn_d_22-4bd2f8ea.pth: layer0..8 + the ImageNet ``fc``),
    ``"fyu_drnseg"`` (fyu/drn's DRNSeg: base.0..8 + seg + up) or ``"original_drnseg"`` (the
    original project's DRNSeg: base.layer0..8 + base.fc + seg + up)."""
    modules = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    assert len(convs) == len(DRN_D_22)
    state: dict[str, torch.Tensor] = {}
    position = 0
    for name, *_ in DRN_D_22[:-1]:
        conv, bn = modules[position], modules[position + 1]
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        position += 2
        state[f"{name}.weight"] = conv.weight.detach().clone()
        for key in ("weight", "bias", "running_mean", "running_var"):
            state[f"{_bn_name(name)}.{key}"] = getattr(bn, key).detach().clone()
    classifier = modules[position]
    classes, channels = classifier.weight.shape[:2]
    if layout == "imagenet":
        state["fc.weight"] = torch.zeros(1000, channels, 1, 1)
        state["fc.bias"] = torch.zeros(1000)
        return state
    prefix = {"fyu_drnseg": lambda level: f"base.{level}.",
              "original_drnseg": lambda level: f"base.layer{level}."}[layout]
    state = {prefix(key[5]) + key.split(".", 1)[1]: value for key, value in state.items()}
    state["seg.weight"] = classifier.weight.detach().clone()
    state["seg.bias"] = classifier.bias.detach().clone()
    state["up.weight"] = torch.ones(classes, 1, 16, 16)
    if layout == "original_drnseg":   # it keeps the whole DRN as base, ImageNet's fc included
        state["base.fc.weight"] = torch.zeros(1000, channels, 1, 1)
        state["base.fc.bias"] = torch.zeros(1000)
    return state
