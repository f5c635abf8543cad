"""The pose model's published weights: the files HRNet's configurations start from, where each
is published, and the check for the one published on a page only."""
from __future__ import annotations

import argparse
from pathlib import Path

from active_learning.errors import WeightsError
from active_learning.files.pretrained import PublishedCheckpoint, hub_checkpoint_path

# The weights the references publish. HRNet's MODEL.PRETRAINED is HRNet-Image-Classification's
# ImageNet HRNet-W32, which deep-high-resolution-net.pytorch's README links on Google Drive /
# OneDrive; OpenMMLab mirrors the same file under the same name as a direct download (mmpose's
# HRNet configs start from it). The COCO pose model is on the model zoo's Drive folder only.
MODEL_ZOO_PAGE = "https://drive.google.com/drive/folders/1hOTihvbyIxsm5ygDpbUuJ7O_tzv4oXjC"
IMAGENET_HRNET_W32 = "hrnet_w32-36af842e.pth"
IMAGENET_HRNET_W48 = "hrnet_w48-8ef0771d.pth"      # the MODEL.PRETRAINED of HRNet's W48 configs
COCO_POSE_HRNET_W32 = "pose_hrnet_w32_256x192.pth"
PUBLISHED = (
    PublishedCheckpoint(
        IMAGENET_HRNET_W32,
        "https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w32-36af842e.pth",
        "ImageNet HRNet-W32: deep-high-resolution-net.pytorch's MODEL.PRETRAINED, mirrored by "
        "OpenMMLab"),
    PublishedCheckpoint(
        IMAGENET_HRNET_W48,
        "https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w48-8ef0771d.pth",
        "ImageNet HRNet-W48: deep-high-resolution-net.pytorch's MODEL.PRETRAINED for W48, "
        "mirrored by OpenMMLab"),
    PublishedCheckpoint(COCO_POSE_HRNET_W32, MODEL_ZOO_PAGE,
                            "deep-high-resolution-net.pytorch's COCO model zoo"),
)
# Published on a page, not as a file a program can download: never fetched, only found cached.
PAGE_ONLY = {COCO_POSE_HRNET_W32}
# --weights-backbone's default: the ImageNet weights of --arch (see imagenet_backbone).
IMAGENET = "imagenet"


def imagenet_backbone(arch: str) -> str:
    """The ImageNet start of ``arch``: the file HRNet's configurations name for W32 and W48
    (MODEL.PRETRAINED), timm's pretrained model of that name for the other widths."""
    return {"hrnet_w32": IMAGENET_HRNET_W32, "hrnet_w48": IMAGENET_HRNET_W48}.get(
        arch, f"timm:{arch}")


def check_page_only_weights(args: argparse.Namespace) -> None:
    """A file published on a web page only (the COCO pose model) is used from torch.hub's cache
    and never downloaded (the download would fetch the page): WeightsError when it is not
    there, saying where to get it and where to put it."""
    for flag, spec in (("--weights", args.weights),
                       ("--weights-backbone", getattr(args, "weights_backbone", None))):
        if spec in PAGE_ONLY and not Path(spec).exists() \
                and not hub_checkpoint_path(spec).is_file():
            source = next(c for c in PUBLISHED if c.filename == spec)
            raise WeightsError(
                f"{flag} {spec} ({source.source}): not in torch.hub's cache "
                f"({hub_checkpoint_path(spec)}); it is published on a page, not as a direct "
                f"download: save it from {source.url} to that path, or give its local path")
