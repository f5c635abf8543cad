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

Weights (:func:`build_model`) come by name through ``active_learning.files.pretrained``:

* the backbone (``--weights-backbone``): HRNet's ImageNet classifier under the reference's key
  names, which timm's HRNet keeps (conv1 ... stage4, HRNet-Image-Classification's names): the
  published ``hrnet_w32-36af842e.pth`` that deep-high-resolution-net.pytorch's MODEL.PRETRAINED
  names, ``timm:hrnet_w32.ms_in1k`` (timm's copy of the same ImageNet weights), or a local file;
  the classification head (incre_modules, downsamp_modules, final_layer, classifier) is left out;
* the whole model (``--weights``): a file of this model (``backbone.*``, ``final_layer.*``) or
  the reference's COCO model ``pose_hrnet_w32_256x192.pth`` (pose_hrnet's names: the backbone's
  without a prefix, and ``final_layer``, its 1 x 1 heatmap convolution).

pose_hrnet's last stage-4 module fuses into the highest-resolution branch only
(multi_scale_output False), so a pose_hrnet file has no ``fuse_layers.1-3`` of that module; the
timm backbone here also outputs the three lower branches (for the loss module and the
embeddings) and keeps its own initialisation of those fusions. Every other layer must be in the
file: a layer a file lacks stops the run (WeightsError) rather than staying random.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from active_learning.errors import WeightsError
from active_learning.files.pretrained import PublishedCheckpoint, load_named_state
from active_learning.files.weights import format_keys, load_state_dict_checked
from active_learning.labels.keypoints import NUM_JOINTS

log = logging.getLogger(__name__)

# Keys of an HRNet ImageNet classifier that the pose backbone does not have: its head.
CLASSIFIER_HEAD = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")

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


def single_scale_fusions(backbone: nn.Module) -> list[str]:
    """The backbone keys a pose_hrnet file lacks: the fusions into branches 2-4 of the last
    stage-4 module (pose_hrnet builds that module with multi_scale_output False)."""
    last = f"stage4.{len(backbone.stage4) - 1}.fuse_layers."
    return [key for key in backbone.state_dict()
            if key.startswith(last) and not key.startswith(last + "0.")]


def backbone_state(state: Mapping[str, torch.Tensor], backbone: nn.Module, *, spec: str,
                   flag: str) -> dict[str, torch.Tensor]:
    """A backbone file's tensors under the backbone's keys.

    ``state`` holds HRNet's names (an ImageNet classifier, whose head is dropped; a pose_hrnet
    model, whose ``final_layer`` is dropped and whose missing multi-scale fusions keep the
    backbone's values) or this model's (``backbone.*``)."""
    if any(key.startswith("backbone.") for key in state):
        state = {key[len("backbone."):]: value for key, value in state.items()
                 if key.startswith("backbone.")}
    state = {key: value for key, value in state.items() if not key.startswith(CLASSIFIER_HEAD)}
    return _with_own_fusions(state, backbone, spec=spec, flag=flag)


def pose_state(state: Mapping[str, torch.Tensor], model: PoseHRNet, *, spec: str,
               flag: str) -> dict[str, torch.Tensor]:
    """A whole-model file's tensors under this model's keys: this model's own (``backbone.*``,
    ``final_layer.*``) or the reference pose_hrnet's (the backbone's names unprefixed)."""
    if any(key.startswith("backbone.") for key in state):
        return dict(state)
    backbone = _with_own_fusions({key: value for key, value in state.items()
                                  if not key.startswith("final_layer.")},
                                 model.backbone, spec=spec, flag=flag)
    return {**{f"backbone.{key}": value for key, value in backbone.items()},
            **{key: value for key, value in state.items() if key.startswith("final_layer.")}}


def _with_own_fusions(state: Mapping[str, torch.Tensor], backbone: nn.Module, *, spec: str,
                      flag: str) -> dict[str, torch.Tensor]:
    fusions = single_scale_fusions(backbone)
    absent = [key for key in fusions if key not in state]
    if not absent:
        return dict(state)
    if len(absent) != len(fusions):
        raise WeightsError(f"{flag} {spec}: lacks {len(absent)} of the last stage-4 module's "
                           f"fusions ({format_keys(absent)}): is it an HRNet file?")
    log.info("%s %s: a single-scale HRNet (pose_hrnet); the fusions into branches 2-4 of the "
             "last module keep their initialisation (%d tensors)", flag, spec, len(absent))
    own = backbone.state_dict()
    return {**state, **{key: own[key] for key in absent}}


def build_model(arch: str = "hrnet_w32", num_joints: int = NUM_JOINTS, dropout: float = 0.0,
                pretrained: str | None = None, weights: str | None = None,
                published: Sequence[PublishedCheckpoint] = ()) -> PoseHRNet:
    """The model; ``pretrained``: the backbone's weights; ``weights``: the whole model's (see
    the module doc for the files and names each takes; ``published``: the files the
    references publish, found by name in torch.hub's cache).

    Raises WeightsError when a file is missing or cannot be had, is unreadable, or does not fit
    ``arch`` (a layer missing, or of another shape)."""
    model = PoseHRNet(arch, num_joints, dropout)
    if pretrained:
        flag = "--weights-backbone"
        state = load_named_state(pretrained, flag=flag, published=published)
        state = backbone_state(state, model.backbone, spec=pretrained, flag=flag)
        load_state_dict_checked(model.backbone, state, path=pretrained, flag=flag,
                                hint=f"is it an {arch} backbone?")
        log.info("%s %s: loaded into the %s backbone", flag, pretrained, arch)
    if weights:
        state = load_named_state(weights, flag="--weights", published=published)
        load_state_dict_checked(model, pose_state(state, model, spec=weights, flag="--weights"),
                                path=weights, flag="--weights",
                                hint=f"is it a {arch} pose model with {num_joints} joints?")
    return model
