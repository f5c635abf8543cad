"""Top-down HRNet for pose: timm's HRNet backbone and a 1 x 1 convolution to joint heatmaps.

``timm.create_model(arch, features_only=True, feature_location="")`` gives the raw outputs of
HRNet: the stem (64 channels, stride 2) and the four branches of the last stage (HRNet-W32: 32,
64, 128, 256 channels at strides 4, 8, 16, 32). As in Sun et al. 2019 (and the reference
``pose_hrnet``, FINAL_CONV_KERNEL 1), the heatmaps come from the highest-resolution branch
through one 1 x 1 convolution: 17 maps of 64 x 48 for a 256 x 192 crop.

* Loss-prediction taps: the stem and the four branch outputs (the original tapped nine maps
  from the stem to stage 4; timm's features_only exposes these five).
* Embedding (core-set, DAL): the four branches, each averaged over space, concatenated
  (HRNet-W32: 480 values).
* ``dropout`` > 0 puts a Dropout2d before the final convolution, for MC-dropout strategies: the
  sampler runs the backbone once and the 1 x 1 convolution T times.
* ``arch`` picks the width (``hrnet_w32``; the CPU preset ``hrnet_w18_small``): the same code path.
"""
from __future__ import annotations

import torch
from torch import nn

from active_learning.files.weights import (
    load_state_dict_checked,
    load_weights_file,
    read_state_dict,
)

from .coco import NUM_JOINTS

ARCHITECTURES = ("hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w18", "hrnet_w30", "hrnet_w32",
                 "hrnet_w40", "hrnet_w44", "hrnet_w48", "hrnet_w64")


class PoseHRNet(nn.Module):
    """images [B, 3, H, W] (normalised) -> heatmaps [B, J, H/4, W/4]."""

    def __init__(self, arch: str = "hrnet_w32", num_joints: int = NUM_JOINTS,
                 dropout: float = 0.0) -> None:
        super().__init__()
        import timm

        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown HRNet {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        self.arch = arch
        self.backbone = timm.create_model(arch, pretrained=False, features_only=True,
                                          feature_location="")
        channels = self.backbone.feature_info.channels()
        self.feature_info = [{"name": name, "channels": c, "stride": s} for name, c, s in
                             zip(("stem", "branch1", "branch2", "branch3", "branch4"), channels,
                                 self.backbone.feature_info.reduction(), strict=True)]
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.final_layer = nn.Conv2d(channels[1], num_joints, kernel_size=1)
        nn.init.normal_(self.final_layer.weight, std=0.001)   # the reference's initialisation
        nn.init.zeros_(self.final_layer.bias)

    def forward_intermediates(self,
                              images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(heatmaps [B, J, H/4, W/4], [stem, branch 1..4] feature maps)."""
        features = self.backbone(images)
        return self.final_layer(self.dropout(features[1])), list(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.dropout(self.backbone(images)[1]))


def feature_info(arch: str) -> list[dict]:
    """The loss-module taps of ``arch`` (name, channels, stride), without building the weights."""
    return PoseHRNet(arch).feature_info


def build_model(arch: str = "hrnet_w32", num_joints: int = NUM_JOINTS, dropout: float = 0.0,
                pretrained: str | None = None, weights: str | None = None) -> PoseHRNet:
    """The model; ``pretrained``: backbone weights (timm's HRNet state dict, an ImageNet
    classifier's keys are fine: the head's are ignored); ``weights``: a whole pose model.

    Both files may be checkpoints (see :func:`active_learning.files.weights.read_state_dict`); one
    that is missing, unreadable or of another architecture raises ``WeightsError``."""
    model = PoseHRNet(arch, num_joints, dropout)
    if pretrained:
        state = read_state_dict(pretrained, flag="--weights-backbone")
        # A whole pose model's file names the backbone's layers "backbone.*": take those too.
        state = {key.removeprefix("backbone."): value for key, value in state.items()}
        load_state_dict_checked(model.backbone, state, path=pretrained, flag="--weights-backbone",
                                strict=False, hint=f"is it a {arch} backbone?")
    if weights:
        load_weights_file(model, weights, flag="--weights",
                          hint=f"is it a {arch} pose model with {num_joints} joints?")
    return model
