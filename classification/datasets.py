"""The datasets every classification source produces: images in memory or read from files, their
transforms, and the ``ClassificationData`` a loader returns."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from active_learning.errors import DataError

# Generic photos: the ImageNet statistics are the usual default when a dataset's own are unknown.
IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


UNLABELED_TARGET = -1  # the label of an image to rank: never trained on


class CorruptImageWarning(UserWarning):
    """An image file failed to open or verify and was skipped."""


@dataclass
class ClassificationData:
    """A loaded classification dataset.

    ``train`` and ``train_eval`` hold the same items in the same order (absolute dataset indices),
    with and without augmentation. ``names[i]`` is the CSV name of training item ``i``;
    ``targets: int64 [N_train]``.
    """

    train: Dataset
    train_eval: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    names: list[str]
    targets: np.ndarray
    class_names: list[str]


class ArrayImageDataset(Dataset):
    """Images held in memory: ``images: uint8 [N, C, H, W]``, ``targets: int64 [N]``.

    ``transform`` maps one ``uint8 [C, H, W]`` tensor to a float tensor.
    """

    def __init__(self, images: Tensor, targets: np.ndarray,
                 transform: Callable[[Tensor], Tensor]) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} "
                             f"{tuple(images.shape)}")
        if len(images) != len(targets):
            raise ValueError(f"images ({len(images)}) and targets "
                             f"({len(targets)}) differ in length")
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(self.images[index]), int(self.targets[index])


class ImageFileDataset(Dataset):
    """Images read from files: ``samples`` is ``[(path, label), ...]``.

    Each image is converted to RGB, resized to ``image_size`` x ``image_size`` and passed to
    ``transform`` as ``uint8 [3, image_size, image_size]``.
    """

    def __init__(self, samples: list[tuple[str, int]], image_size: int,
                 transform: Callable[[Tensor], Tensor]) -> None:
        self.samples = samples
        self.targets = np.array([label for _, label in samples], dtype=np.int64)
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB").resize((self.image_size, self.image_size), Image.BILINEAR)
        except (OSError, ValueError, SyntaxError) as err:  # PIL reports damaged data with all three
            raise DataError(f"cannot read image {path}: {err}") from err
        return self.transform(pil_to_tensor(img)), label  # [3, S, S]


class _Scale:
    """``uint8 [C, H, W]`` -> ``float32`` divided by ``max_value`` (255 for
    photos, 16 for digits)."""

    def __init__(self, max_value: float) -> None:
        self.max_value = float(max_value)

    def __call__(self, x: Tensor) -> Tensor:
        return x.to(torch.float32) / self.max_value


def make_transform(
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    crop_padding: int = 0,
    flip: bool = False,
    max_value: float = 255.0,
) -> Callable[[Tensor], Tensor]:
    """``uint8 [C, S, S]`` -> normalised ``float32 [C, S, S]``, with optional random crop / flip.

    The crop pads with zeros before scaling (black borders), like torchvision's CIFAR recipe.
    """
    from torchvision.transforms import v2

    steps: list = []
    if crop_padding > 0:
        steps.append(v2.RandomCrop(image_size, padding=crop_padding))
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [_Scale(max_value), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def array_views(
    train_images: Tensor,
    train_targets: np.ndarray,
    test_images: Tensor,
    test_targets: np.ndarray,
    train_transform: Callable,
    eval_transform: Callable,
) -> tuple[Dataset, Dataset, Dataset]:
    # train and train_eval share the same storage: no copy of the images.
    return (
        ArrayImageDataset(train_images, train_targets, train_transform),
        ArrayImageDataset(train_images, train_targets, eval_transform),
        ArrayImageDataset(test_images, test_targets, eval_transform),
    )


def index_names(n: int, prefix: str = "train") -> list[str]:
    """``["train_00000.png", ...]``: CSV names for datasets whose items have no file name."""
    return [f"{prefix}_{i:05d}.png" for i in range(n)]


def download_with_torchvision(name: str, root: Path) -> None:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, name)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as err:  # network errors come in many types; the user needs one message
        raise DataError(f"downloading {name} into {root} failed: {err}") from err
