"""Detection datasets: images resized to SSD's 300 x 300 input, boxes moved with them.

Training applies SSD's augmentation with torchvision's v2 transforms, which move the boxes with
the image: photometric distortion, zoom out (expand onto a mean-coloured canvas up to 4x), a
minimum-IoU random crop, horizontal flip; then the resize and the removal of boxes the crop
left degenerate. Scoring and evaluation only resize.

A sample is ``(image float32 [3, 300, 300] in 0..1, target)`` with target ``boxes`` float32
[M, 4] (input pixels), ``labels`` int64 [M] (1..K) and ``index`` (the sample's index in its
list); :func:`collate` keeps the targets as a list, so images with different numbers of boxes
batch together.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .model import IMAGE_MEAN, INPUT_SIZE
from .voc import DataError, VOCSample


def read_image(path) -> torch.Tensor:
    """uint8 [3, H, W] RGB; a missing or corrupt file is a DataError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except Exception as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def ssd_augmentation(size: int = INPUT_SIZE):
    """SSD's training augmentation (torchvision v2), ending in a ``size`` x ``size`` resize."""
    from collections import defaultdict

    from torchvision import tv_tensors
    from torchvision.transforms import v2

    fill = defaultdict(lambda: 0, {tv_tensors.Image: tuple(round(255 * m) for m in IMAGE_MEAN)})
    return v2.Compose([
        v2.RandomPhotometricDistort(p=0.5),
        v2.RandomZoomOut(fill=fill, side_range=(1.0, 4.0), p=0.5),
        v2.RandomIoUCrop(),
        v2.RandomHorizontalFlip(p=0.5),
        v2.Resize((size, size), antialias=True),
        v2.SanitizeBoundingBoxes(),
    ])


def resize(size: int = INPUT_SIZE):
    from torchvision.transforms import v2

    return v2.Resize((size, size), antialias=True)


class DetectionSet(Dataset):
    """``samples[indices]`` as (image, target); ``augment``: SSD's training augmentation.

    Targets hold the non-difficult boxes only (what the detector trains on and the loss is
    computed on); evaluation reads the full annotation, difficult boxes included.
    """

    def __init__(self, samples: Sequence[VOCSample], indices: Sequence[int] | None = None, *,
                 augment: bool = False, size: int = INPUT_SIZE) -> None:
        self.samples = samples
        self.indices = list(range(len(samples))) if indices is None else list(indices)
        self.size = size
        self.transform = ssd_augmentation(size) if augment else resize(size)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        from torchvision import tv_tensors

        index = self.indices[position]
        sample = self.samples[index]
        image = read_image(sample.image)
        height, width = image.shape[-2:]
        if sample.annotation is not None:
            boxes, labels = sample.annotation.training_targets()
        else:  # an unlabeled image (rank mode): scored, never trained on
            boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        target = {"boxes": tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY",
                                                    canvas_size=(height, width)),
                  "labels": torch.from_numpy(labels)}
        image, target = self.transform(tv_tensors.Image(image), target)
        return (image.as_subclass(torch.Tensor).float() / 255.0,
                {"boxes": target["boxes"].as_subclass(torch.Tensor).float(),
                 "labels": target["labels"], "index": index})


def collate(batch):
    """[(image, target)] -> (images [B, 3, S, S], list of B targets)."""
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)
