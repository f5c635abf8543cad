"""Segmentation data in its real on-disk formats, and the joint augmentation.

Cityscapes (https://www.cityscapes-dataset.com)::

    <root>/leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png
    <root>/gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png      8-bit label ids 0..33
    <root>/gtFine/{train,val}/<city>/<stem>_gtFine_instanceIds.png   16-bit: labelId*1000+k for
                                                                      object instances, labelId else

Label ids become the 19 train ids (255 = ignored) through ``LABEL_TO_TRAIN``, the table of
cityscapesScripts' ``labels.py`` (``active_learning.labels.cityscapes``, where the reader of
annotation tools' exports finds it too).

A plain folder for your own data::

    <root>/images/{train,val}/<name>.png|.jpg
    <root>/masks/{train,val}/<name>.png          8-bit class ids 0..C-1, 255 = ignored
    <root>/instances/{train,val}/<name>.png      optional, 16-bit instance ids (0 = no instance)

Every bad file ends in :class:`DataError` naming it: a missing folder, a city without masks, an
unreadable PNG, a label map whose size differs from its image, label ids outside the table.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from active_learning.errors import DataError
from active_learning.files.images import find_images
from active_learning.labels.cityscapes_ids import (
    CITYSCAPES_IMAGE_SUFFIX,
    CITYSCAPES_INSTANCE_SUFFIX,
    CITYSCAPES_LABEL_SUFFIX,
    IGNORE,
)
from active_learning.labels.exported import Labels
from active_learning.labels.masks import PngMask, write_label_maps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# The dataset's mean and std of RGB (the values fyu/drn's info.json gives for Cityscapes).
CITYSCAPES_MEAN = (0.290101, 0.328081, 0.286964)
CITYSCAPES_STD = (0.182954, 0.186566, 0.184475)
FORMATS = ("cityscapes", "folder")


@dataclass
class SegmentationSample:
    """Where one image's files are; ``name`` is what the priority CSV writes."""

    image: Path
    label: Path | None
    instances: Path | None
    name: str
    expected_instances: Path | None = None   # where the instance map would be


def read_image(path: Path) -> np.ndarray:
    """uint8 [H, W, 3]."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except Exception as error:  # PIL raises many types for damaged files
        raise DataError(f"cannot read image {path}: {error}") from None


def read_label(sample: SegmentationSample, data_format: str, image_size: tuple[int, int],
               num_classes: int) -> np.ndarray:
    """Train ids int64 [H, W] (255 = ignored), checked against the image's size and the table
    (a :class:`~active_learning.labels.masks.PngMask` of the format's encoding)."""
    if sample.label is None:
        raise DataError(f"{sample.image} has no label map")
    encoding = "cityscapes" if data_format == "cityscapes" else "class_ids"
    return PngMask(sample.label, image_size, encoding, num_classes, image=sample.image).train_ids()


def read_instances(sample: SegmentationSample, image_size: tuple[int, int]) -> np.ndarray | None:
    """Instance ids int64 [H, W] (0 or a stuff label id: no instance), or None without a file."""
    if sample.instances is None:
        return None
    return PngMask(sample.instances, image_size, instances=sample.instances,
                   image=sample.image).instance_ids()


def find_samples(root: str | os.PathLike, split: str, data_format: str, *,
                 need_instances: bool = False) -> list[SegmentationSample]:
    """Every image of ``split`` with its label (and instance) files, sorted by name."""
    root = Path(root)
    if data_format not in FORMATS:
        raise DataError(f"unknown data format {data_format!r}; choose one of {FORMATS}")
    if not root.is_dir():
        raise DataError(f"data folder missing: {root}")
    samples = _cityscapes(root, split) if data_format == "cityscapes" else _folder(root, split)
    if not samples:
        raise DataError(f"no images for split {split!r} under {root}")
    if need_instances:
        missing = [sample for sample in samples if sample.instances is None]
        if missing:
            raise DataError(f"superpixel labeling takes whole object instances, but "
                            f"{missing[0].image} has no instance map: "
                            f"{missing[0].expected_instances} is missing"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return samples


def _cityscapes(root: Path, split: str) -> list[SegmentationSample]:
    image_dir = root / "leftImg8bit" / split
    label_dir = root / "gtFine" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DataError(f"Cityscapes folder missing: {folder} (expected "
                            f"leftImg8bit/{split}/<city>/ and gtFine/{split}/<city>/)")
    samples = []
    for city in sorted(path for path in image_dir.iterdir() if path.is_dir()):
        images = sorted(city.glob(f"*{CITYSCAPES_IMAGE_SUFFIX}"))
        if not images:
            continue
        if not (label_dir / city.name).is_dir():
            raise DataError(f"city {city.name} has images in {city} but no masks in "
                            f"{label_dir / city.name}")
        for image in images:
            stem = image.name[: -len(CITYSCAPES_IMAGE_SUFFIX)]
            label = label_dir / city.name / f"{stem}{CITYSCAPES_LABEL_SUFFIX}"
            if not label.is_file():
                raise DataError(f"no label map for {image}: expected {label}")
            instances = label_dir / city.name / f"{stem}{CITYSCAPES_INSTANCE_SUFFIX}"
            samples.append(SegmentationSample(image, label,
                                              instances if instances.is_file() else None,
                                              image.name, expected_instances=instances))
    return samples


def _folder(root: Path, split: str) -> list[SegmentationSample]:
    image_dir, mask_dir, instance_dir = (root / kind / split
                                         for kind in ("images", "masks", "instances"))
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"folder missing: {folder} (expected images/{split}/ "
                            f"and masks/{split}/)")
    samples = []
    for image in sorted(path for path in image_dir.iterdir()
                        if path.suffix.lower() in IMAGE_EXTENSIONS):
        label = mask_dir / f"{image.stem}.png"
        if not label.is_file():
            raise DataError(f"no mask for {image}: expected {label}")
        instances = instance_dir / f"{image.stem}.png"
        samples.append(SegmentationSample(image, label, instances if instances.is_file() else None,
                                          image.name, expected_instances=instances))
    return samples


def find_unlabeled(root: str | os.PathLike) -> list[SegmentationSample]:
    """Rank mode: every image under ``root`` (any depth), named by its path relative to it."""
    root = Path(root)
    files = find_images(root, DataError)
    return [SegmentationSample(path, None, None, path.relative_to(root).as_posix())
            for path in files]


def samples_from_labels(labels: Labels, folder: str | os.PathLike) -> list[SegmentationSample]:
    """A round's labeled images (``active_learning.labels.read_labels`` for segmentation) as
    samples of the ``folder`` format, in the labels' order: their label maps (and instance maps)
    written under ``folder`` as class-id PNGs indexing ``labels.categories`` (255 ignored)."""
    written = write_label_maps(labels.targets, folder, len(labels.categories))
    return [SegmentationSample(labels.images_dir / name, label.path, label.instances, name,
                               expected_instances=label.instances)
            for name, label in written.items()]


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W], standardised."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    return (tensor - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def joint_augment(image: torch.Tensor, mask: torch.Tensor, crop: int | None, scale: float,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scale, crop and horizontal flip applied to an image and its mask together.

    image: float [3, H, W]; mask: int64 [H, W] (255 = ignored). ``scale`` R draws a factor in
    [1 - R, 1 + R] (0 = none); the image is resized bilinearly, the mask by nearest neighbour.
    ``crop`` S takes a random S x S window, padding with 0 / 255 where the image is smaller.
    """
    if scale > 0:
        factor = 1.0 + (torch.rand((), generator=generator).item() * 2 - 1) * scale
        size = [max(1, round(image.shape[1] * factor)), max(1, round(image.shape[2] * factor))]
        image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0].long()
    if crop:
        pad_h, pad_w = max(0, crop - image.shape[1]), max(0, crop - image.shape[2])
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
            mask = F.pad(mask, (0, pad_w, 0, pad_h), value=IGNORE)
        top = int(torch.randint(0, image.shape[1] - crop + 1, (), generator=generator))
        left = int(torch.randint(0, image.shape[2] - crop + 1, (), generator=generator))
        image = image[:, top:top + crop, left:left + crop]
        mask = mask[top:top + crop, left:left + crop]
    if torch.rand((), generator=generator).item() < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    return image.contiguous(), mask.contiguous()


def superpixel_labels(train_ids: np.ndarray, labeled_pixels: np.ndarray,
                      instances: np.ndarray | None, first_instance_id: int = 1000) -> np.ndarray:
    """The partial mask an annotator produces from chosen superpixels.

    Every object instance that overlaps a chosen superpixel is labeled whole; stuff (pixels of no
    instance: instance id < 1000 in Cityscapes, 0 in the folder format) only inside the chosen
    superpixels; every other pixel is 255.

    Args:
        train_ids: int [H, W] the full mask.
        labeled_pixels: bool [H, W] the pixels of the chosen superpixels.
        instances: int [H, W] instance ids, or None (then only the superpixels' own pixels).
        first_instance_id: ids below it are stuff (1000 in Cityscapes' instanceIds, 1 in the
            folder format).
    """
    take = np.asarray(labeled_pixels, dtype=bool).copy()
    if instances is not None:
        is_instance = instances >= first_instance_id
        touched = np.unique(instances[labeled_pixels & is_instance])
        take &= ~is_instance                                        # instances are taken whole
        take |= np.isin(instances, touched) & is_instance
    return np.where(take, train_ids, IGNORE)
