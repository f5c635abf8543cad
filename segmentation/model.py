"""DRN-D-22 for semantic segmentation (Yu, Koltun & Funkhouser, "Dilated Residual Networks", 2017).

Layout of DRN-D-22 (facts from the paper and fyu/drn; the code here is written for this project):

======  ========  ===============  ======  ========  =========================================
stage   channels  blocks           stride  dilation  kind
======  ========  ===============  ======  ========  =========================================
0       16        7x7 conv         1       1         conv-BN-ReLU
1       16        1 conv           1       1         conv-BN-ReLU (no residual)
2       32        1 conv           2       1         conv-BN-ReLU (no residual)
3       64        2 basic blocks   2       1         residual
4       128       2 basic blocks   2       1         residual
5       256       2 basic blocks   1       2         residual, every convolution dilated 2
6       512       2 basic blocks   1       4         residual, every convolution dilated 4
7       512       1 conv           1       2         conv-BN-ReLU (no residual: removes gridding)
8       512       1 conv           1       1         conv-BN-ReLU (no residual)
======  ========  ===============  ======  ========  =========================================

Output stride 8; a 1x1 classifier maps the 512 channels to the classes and bilinear upsampling
restores the input size. ``width`` scales every stage's channels (1.0 = the reference) for CPU
presets.

Dropout, as the original project's ``--mc-dropout`` model (segmentation/cityscapes_drn: drn.py
appends its ``MCDropout``, i.e. ``F.dropout`` at p = 0.5, to the end of every residual level
3-6): element-wise (``nn.Dropout``) after the residual stages 3-6. ``dropout_type="channel"``
drops whole feature maps instead (``nn.Dropout2d``: neighbouring activations of a convolution
are strongly correlated, so element-wise dropout perturbs them less), and
``dropout_at="classifier"`` puts one dropout layer only before the classifier: then everything up
to the classifier is deterministic and MC-dropout sampling runs it once per batch instead of T
times. Dropout is active only while MC sampling (``active_learning.strategies.mc_dropout``) or
training, never in validation (the original forces it on in validation too).

The loss-prediction module reads ten maps, as the original's (its DRNSeg appends the
classifier's output and the log-softmax of the upsampled output to the eight level outputs).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

STAGE_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)
STAGE_STRIDES = (1, 2, 4, 8, 8, 8, 8, 8)          # cumulative stride after each stage (0 excluded)
DROPOUT_PLACES = ("stages", "classifier", "none")
DROPOUT_TYPES = {"element": nn.Dropout, "channel": nn.Dropout2d}


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
                  dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation,
                                   bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (dilations ``d1``, ``d2``) with an identity or
    1x1 projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 dilations: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        d1, d2 = dilations
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, d1, d1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, d2, d2, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride,
                                                    bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity, inplace=True)


def _residual_stage(in_channels: int, out_channels: int, blocks: int, stride: int,
                    dilation: int) -> nn.Sequential:
    # Every convolution of a stage uses the stage's dilation, its first block's first one too:
    # fyu/drn (drn.py, DRN.__init__) builds layer5 and layer6 with new_level=False, which keeps
    # the first block from entering at half the dilation (half is only for new_level=True).
    layers = [BasicBlock(in_channels, out_channels, stride, (dilation, dilation))]
    layers += [BasicBlock(out_channels, out_channels, 1, (dilation, dilation))
               for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class DRNSegmentation(nn.Module):
    """DRN-D-22 with a 1x1 classifier and bilinear upsampling: [B, 3, H, W] -> logits [B, K, H, W].

    Args:
        num_classes: K.
        width: channel multiplier (1.0 = 16 ... 512 channels).
        dropout: p of the dropout layers (0 = none).
        dropout_at: "stages" (after residual stages 3-6, the original's placement),
            "classifier" (only before the 1x1 classifier) or "none".
        dropout_type: "element" (``nn.Dropout``, the original's) or "channel"
            (``nn.Dropout2d``).
    """

    def __init__(self, num_classes: int = 19, width: float = 1.0, dropout: float = 0.5,
                 dropout_at: str = "stages", dropout_type: str = "element") -> None:
        super().__init__()
        if dropout_at not in DROPOUT_PLACES:
            raise ValueError(f"dropout_at must be one of {DROPOUT_PLACES}, got {dropout_at!r}")
        if dropout_type not in DROPOUT_TYPES:
            raise ValueError(f"dropout_type must be one of {tuple(DROPOUT_TYPES)}, "
                             f"got {dropout_type!r}")
        channels = [max(1, round(c * width)) for c in STAGE_CHANNELS]
        self.channels = channels
        p = dropout if dropout_at != "none" else 0.0
        after_stage = p if dropout_at == "stages" else 0.0

        def drop(rate: float) -> nn.Module:
            return DROPOUT_TYPES[dropout_type](rate) if rate > 0 else nn.Identity()

        self.stage0 = _conv_bn_relu(3, channels[0], kernel=7)
        self.stage1 = _conv_bn_relu(channels[0], channels[0])
        self.stage2 = _conv_bn_relu(channels[0], channels[1], stride=2)
        self.stage3 = nn.Sequential(_residual_stage(channels[1], channels[2], 2, 2, 1),
                                    drop(after_stage))
        self.stage4 = nn.Sequential(_residual_stage(channels[2], channels[3], 2, 2, 1),
                                    drop(after_stage))
        self.stage5 = nn.Sequential(_residual_stage(channels[3], channels[4], 2, 1, 2),
                                    drop(after_stage))
        self.stage6 = nn.Sequential(_residual_stage(channels[4], channels[5], 2, 1, 4),
                                    drop(after_stage))
        self.stage7 = _conv_bn_relu(channels[5], channels[6], dilation=2)
        self.stage8 = _conv_bn_relu(channels[6], channels[7])
        self.head_dropout = drop(p if dropout_at == "classifier" else 0.0)
        self.classifier = nn.Conv2d(channels[7], num_classes, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # fyu/drn's DRNSeg: the classifier's weights as every convolution's (normal, std
        # sqrt(2 / (k * k * out_channels)), i.e. Kaiming fan-out), its bias zero
        nn.init.zeros_(self.classifier.bias)

    def stages(self) -> Sequence[nn.Module]:
        return (self.stage1, self.stage2, self.stage3, self.stage4, self.stage5, self.stage6,
                self.stage7, self.stage8)

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [B, K, H, W] and the ten maps the loss module reads: the eight stage outputs
        (strides 1, 2, 4, 8, 8, 8, 8, 8), the classifier's logits [B, K, H/8, W/8] and the
        log-softmax of the upsampled logits [B, K, H, W] (the original's ten)."""
        size = x.shape[-2:]
        x = self.stage0(x)
        features = []
        for stage in self.stages():
            x = stage(x)
            features.append(x)
        coarse = self.classifier(self.head_dropout(x))                          # [B, K, H/8, W/8]
        logits = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
        return logits, [*features, coarse, F.log_softmax(logits, dim=1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, K, H, W] (without the loss module's taps)."""
        size = x.shape[-2:]
        x = self.stage0(x)
        for stage in self.stages():
            x = stage(x)
        coarse = self.classifier(self.head_dropout(x))                          # [B, K, H/8, W/8]
        return F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


def feature_info(width: float = 1.0, num_classes: int = 19) -> list[dict]:
    """The loss-prediction taps (name, channels, stride): the eight stage outputs, the
    classifier's logits and the log-softmax of the upsampled logits."""
    stages = [{"name": f"stage{index + 1}", "channels": max(1, round(c * width)), "stride": stride}
              for index, (c, stride) in enumerate(zip(STAGE_CHANNELS, STAGE_STRIDES, strict=True))]
    return [*stages, {"name": "logits", "channels": num_classes, "stride": 8},
            {"name": "log_probabilities", "channels": num_classes, "stride": 1}]


def build_model(num_classes: int, *, width: float = 1.0, dropout: float = 0.5,
                dropout_at: str = "stages", dropout_type: str = "element",
                weights_path: str | None = None,
                weights_backbone: str | None = None) -> DRNSegmentation:
    """DRN-D-22, its backbone from ``weights_backbone`` then all of it from ``weights_path``.

    Each is what ``--weights`` / ``--weights-backbone`` take (a local file, a published file
    name such as ``drn_d_22-4bd2f8ea.pth``; see ``segmentation.weights``), in fyu/drn's layouts
    or this project's. A file that is missing or does not fit raises ``WeightsError``."""
    from .weights import load_pretrained

    model = DRNSegmentation(num_classes, width=width, dropout=dropout, dropout_at=dropout_at,
                            dropout_type=dropout_type)
    for spec, flag, backbone in ((weights_backbone, "--weights-backbone", True),
                                 (weights_path, "--weights", False)):
        if spec:
            load_pretrained(model, spec, flag=flag, backbone=backbone)
    return model
