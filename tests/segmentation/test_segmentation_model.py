"""DRN-D-22's layout against the reference's, convolution by convolution.

The table below is written from the DRN paper (Yu, Koltun & Funkhouser 2017, Table 1 and
Sec. 4: DRN-D-22 = levels of 1, 1, 2, 2, 2, 2, 1, 1 layers with 16, 32, 64, 128, 256, 512, 512,
512 channels, output stride 8, dilation 2 in level 5 and 4 in level 6, then two degridding
convolutions without residuals at dilation 2 and 1) and from fyu/drn's drn.py (``drn_d_22``:
``DRN(BasicBlock, [1, 1, 2, 2, 2, 2, 1, 1], arch='D')``; layer5 and layer6 are made with
``new_level=False``, so every 3x3 convolution of both levels is dilated 2 and 4, the first
block's first one included; a 1x1 ``downsample`` projection where the stride or the channels
change; padding = dilation for every 3x3, 3 for the 7x7 stem).
"""
from __future__ import annotations

import torch
from torch import nn

from seg_fixtures import DRN_D_22
from segmentation.model import DRNSegmentation


def _convolutions(model: nn.Module) -> list[tuple[int, int, int, int, int, int]]:
    return [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.dilation[0],
             m.padding[0])
            for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_every_convolution_matches_drn_d_22():
    model = DRNSegmentation(num_classes=19)
    expected = [row[1:] for row in DRN_D_22]
    found = _convolutions(model)
    assert len(found) == len(expected)
    for (name, *_), want, got in zip(DRN_D_22, expected, found, strict=True):
        assert got == want, f"{name}: (in, out, kernel, stride, dilation, padding) {got} != {want}"
    # square kernels, strides and dilations throughout (the table checks one side)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            assert len(set(m.kernel_size)) == len(set(m.stride)) == len(set(m.dilation)) == 1


def test_output_stride_8_and_the_receptive_field_of_the_dilated_layout():
    """An impulse at the centre reaches exactly the pixels DRN-D-22's layout predicts.

    Receptive field (in input pixels) of one stride-8 output: 7x7 stem (+6), layer1 (+2), layer2
    (+2, then x2), layer3: first conv 3x3 at input stride 2 (+4), then 3 convs at stride 4 (+24),
    layer4: first at stride 4 (+8), 3 at stride 8 (+48), layer5: 4 convs at dilation 2 x stride 8
    (+128), layer6: 4 at 4 x 8 (+256), layer7: 2 x 8 (+32), layer8 (+16): 1 + 526 = 527. With
    layer5/6 entering at half dilation (the wrong layout) it is 527 - 16 - 32 = 479.
    """
    model = DRNSegmentation(num_classes=3, width=0.125, dropout=0.0).eval()
    for m in model.modules():       # positive weights: every path within reach contributes
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    # positive inputs keep every ReLU open (its gradient at 0 is 0)
    x = torch.ones(1, 3, 640, 640, requires_grad=True)
    logits, features = model.forward_intermediates(x)
    assert features[7].shape[-2:] == (80, 80)                       # stage 8: output stride 8
    features[7][0, :, 40, 40].sum().backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == 527


def test_bilinear_upsampling_equals_drnsegs_fixed_transposed_convolution_inside_the_border():
    """DRNSeg upsamples with a ConvTranspose2d(K, K, 16, stride 8, padding 4, groups K) whose fixed
    kernel is w[i, j] = (1 - |i/8 - 15/16|)(1 - |j/8 - 15/16|) (fyu/drn segment.py,
    fill_up_weights: f = ceil(16 / 2), c = (2f - 1 - f % 2) / 2f). That is bilinear interpolation
    with half-pixel centres, as F.interpolate(align_corners=False), except in the 4 outer pixels
    of each side, where the transposed convolution reads zeros past the edge and this model
    repeats the edge value."""
    import math

    from torch.nn import functional as F

    classes, f = 3, 8
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    taps = torch.tensor([1 - math.fabs(i / f - c) for i in range(16)])
    up = nn.ConvTranspose2d(classes, classes, 16, stride=8, padding=4, groups=classes, bias=False)
    up.weight.data[:] = torch.outer(taps, taps)
    coarse = torch.randn(2, classes, 6, 7)
    with torch.no_grad():
        reference = up(coarse)
    ours = F.interpolate(coarse, size=(48, 56), mode="bilinear", align_corners=False)
    assert reference.shape == ours.shape
    torch.testing.assert_close(ours[..., 4:-4, 4:-4], reference[..., 4:-4, 4:-4])
    assert not torch.allclose(ours[..., 0, :], reference[..., 0, :])   # the border differs
    model = DRNSegmentation(num_classes=classes)
    assert (model.classifier.bias == 0).all()          # DRNSeg zeroes the classifier's bias
