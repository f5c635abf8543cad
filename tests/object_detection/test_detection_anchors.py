"""The 8,732 default boxes against ssd.pytorch's published VOC configuration.

The expected boxes are computed here from the configuration's numbers (data/config.py ``voc`` of
amdegroot/ssd.pytorch and of the original project's object_detection/pascal_voc_ssd) with the
formulas of its ``PriorBox`` written out by hand, not by calling the model's code.
"""
from __future__ import annotations

import math

import pytest
import torch

from object_detection.model import build_model

# ssd.pytorch's `voc` configuration, as published
FEATURE_MAPS = [38, 19, 10, 5, 3, 1]
STEPS = [8, 16, 32, 64, 100, 300]
MIN_SIZES = [30, 60, 111, 162, 213, 264]
MAX_SIZES = [60, 111, 162, 213, 264, 315]
ASPECT_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
IMAGE = 300


def published_priors(min_sizes=MIN_SIZES, max_sizes=MAX_SIZES,
                     clip_centres: bool = True) -> list[tuple[float, ...]]:
    """(cx, cy, w, h) relative to the image, in PriorBox's order, clipped to [0, 1] (PriorBox
    clamps all four; ``clip_centres=False``: the sizes only, as torchvision)."""
    priors = []
    for k, f in enumerate(FEATURE_MAPS):
        f_k = IMAGE / STEPS[k]
        for i in range(f):              # rows (y)
            for j in range(f):          # columns (x)
                cx, cy = (j + 0.5) / f_k, (i + 0.5) / f_k
                s = min_sizes[k] / IMAGE
                boxes = [(s, s)]
                s_prime = math.sqrt(s * (max_sizes[k] / IMAGE))
                boxes.append((s_prime, s_prime))
                for ratio in ASPECT_RATIOS[k]:
                    boxes.append((s * math.sqrt(ratio), s / math.sqrt(ratio)))
                    boxes.append((s / math.sqrt(ratio), s * math.sqrt(ratio)))
                if clip_centres:
                    cx, cy = min(cx, 1.0), min(cy, 1.0)
                for w, h in boxes:
                    priors.append((cx, cy, min(w, 1.0), min(h, 1.0)))
    return priors


def model_priors(anchors: str) -> torch.Tensor:
    model = build_model(5, width=0.0625, anchors=anchors).eval()
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, IMAGE, IMAGE))
    boxes = outputs["anchors"].double() / IMAGE                       # x1, y1, x2, y2 relative
    return torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                        boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], dim=1)


def test_voc_priors_are_ssd_pytorchs_in_its_order():
    expected = torch.tensor(published_priors(), dtype=torch.float64)
    assert expected.shape == (8732, 4)
    got = model_priors("voc")
    assert got.shape == (8732, 4)
    # row by row: a wrong order, scale, max size, ratio pairing, grid or clip fails here
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)
    # PriorBox clamps the centres too: conv9_2's (10 x 10, step 32) last column sits at x = 1
    conv9_2 = got[38 * 38 * 4 + 19 * 19 * 6:][:600].view(10, 10, 6, 4)
    torch.testing.assert_close(conv9_2[0, 9, :, 0], torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(conv9_2[9, 0, :, 1], torch.ones(6, dtype=torch.float64))
    # spot checks written out: the first conv4_3 boxes (30 px, sqrt(30*60) px, 30 sqrt2 x 30/sqrt2)
    first = got[:4] * IMAGE
    torch.testing.assert_close(first[:, 2:], torch.tensor(
        [[30, 30], [math.sqrt(1800)] * 2, [30 * math.sqrt(2), 30 / math.sqrt(2)],
         [30 / math.sqrt(2), 30 * math.sqrt(2)]], dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(first[0, :2], torch.tensor([4.0, 4.0], dtype=torch.float64))
    # the last (1 x 1) map: 264 px and sqrt(264 * 315) px squares, the ratio-2 boxes clipped to 1
    last = got[-4:] * IMAGE
    torch.testing.assert_close(last[:2, 2], torch.tensor([264.0, math.sqrt(264 * 315)],
                                                         dtype=torch.float64), atol=1e-3, rtol=0)
    assert last[2, 2].item() == pytest.approx(300.0) and last[3, 3].item() == pytest.approx(300.0)


def test_coco_option_keeps_torchvisions_scales_and_differs_from_voc():
    coco = model_priors("coco")
    # torchvision's COCO scale of conv4_3: 0.07 x 300 = 21 pixels
    assert coco[0, 2].item() * IMAGE == pytest.approx(21.0, abs=1e-3)
    coco_sizes = [round(0.07 * 300, 6), 45, 99, 153, 207, 261, 315]
    expected = torch.tensor(published_priors(coco_sizes[:-1], coco_sizes[1:], clip_centres=False),
                            dtype=torch.float64)
    torch.testing.assert_close(coco, expected, atol=2e-6, rtol=0)
    assert not torch.allclose(coco, model_priors("voc"))


def test_full_width_model_uses_the_voc_boxes_too():
    with torch.device("meta"):
        model = build_model(21)
    assert [round(s * 300, 6) for s in model.anchor_generator.scales] == \
        [30, 60, 111, 162, 213, 264, 315]


def test_the_boxes_stay_float32_under_autocast():
    model = build_model(5, width=0.0625).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(torch.zeros(1, 3, IMAGE, IMAGE))
    assert outputs["cls_logits"].dtype == torch.bfloat16            # autocast is on
    assert outputs["anchors"].dtype == torch.float32
    expected = torch.tensor(published_priors(), dtype=torch.float64)
    got = outputs["anchors"].double() / IMAGE
    torch.testing.assert_close((got[:, :2] + got[:, 2:]) / 2, expected[:, :2], atol=2e-6, rtol=0)
