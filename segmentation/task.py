"""The segmentation task adapter: DRN-D-22 on Cityscapes-format data, image or superpixel units.

Image mode (``superpixels=False``): unit = image, trained on its full mask.
Superpixel mode: unit = one superpixel of one image (``active_learning.loop.units.RegionUnits``);
the initial set is every superpixel of ``initial_images`` random images; a chosen superpixel is
labeled by every object instance overlapping it, taken whole, and by its own stuff pixels
(``data.superpixel_labels``); the rest of the image stays 255 and is ignored by the loss.
"""
from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from active_learning.adapter import BaseTaskAdapter, PartwiseEvaluation
from active_learning.errors import ConfigError
from active_learning.files.images import check_images
from active_learning.files.predictions import ImagePrediction
from active_learning.loop.config import LoopConfig
from active_learning.loop.superpixels import load_region_map, save_region_map, superpixels
from active_learning.loop.units import RegionUnits, SelectionUnits
from active_learning.strategies import PIXEL_DISTRIBUTIONS

from .costs import dominant_labels, polygon_clicks
from .data import (
    IGNORE,
    DataError,
    SegmentationSample,
    joint_augment,
    normalize,
    read_image,
    read_instances,
    read_label,
    superpixel_labels,
)
from .model import STAGE_CHANNELS, build_model, feature_info
from .pseudo import PSEUDO_OFFSET, knn_pick, pseudo_target, weighted_pixel_losses

logger = logging.getLogger("active_learning")
PSEUDO_BATCH = 16   # images per forward pass of the weak annotator

REGION_MAP_CACHE_SIZE = 64   # region maps each task keeps in memory, least recently used dropped
LOSS_MODULE_WARMUP_EPOCHS = 2   # epochs 0 and 1 train the network alone (the original's epoch > 1)


def cosine_factor(epoch: int, epochs: int, warmup: int) -> float:
    """The learning rate's factor in ``epoch`` (0-based) of ``epochs``: ``(epoch + 1) / (warmup
    + 1)`` during the ``warmup`` first epochs, then ``(1 + cos(pi t)) / 2`` with ``t = (epoch -
    warmup) / (epochs - warmup)``, from 1 down towards 0 in the last epoch."""
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / max(1, epochs - warmup)))


class _RegionMapCache:
    """One task's least-recently-used region maps (image index -> int [H, W]).

    A copy (pickled for spawned DataLoader workers, or deep-copied) starts empty rather than
    carrying up to ``maxsize`` full-resolution maps along.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, index: int) -> np.ndarray | None:
        region_map = self._maps.get(index)
        if region_map is not None:
            self._maps.move_to_end(index)
        return region_map

    def put(self, index: int, region_map: np.ndarray) -> None:
        self._maps[index] = region_map
        self._maps.move_to_end(index)
        while len(self._maps) > self.maxsize:
            self._maps.popitem(last=False)

    def __getstate__(self) -> dict:
        return {"maxsize": self.maxsize, "_maps": OrderedDict()}


class SegmentationSet(Dataset):
    """(image float32 [3, H, W], train ids int64 [H, W]) of some samples.

    ``masks`` (optional) replaces a sample's mask by a callable ``sample index -> mask`` (the
    partial masks of superpixel mode); ``augment`` applies the joint random scale / crop / flip.
    """

    def __init__(self, task: SegmentationTask, indices: Sequence[int], *, augment: bool = False,
                 samples: Sequence[SegmentationSample] | None = None, masks=None) -> None:
        self.task, self.indices, self.augment = task, list(indices), augment
        self.samples = task.samples if samples is None else samples
        self.masks = masks

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        index = self.indices[position]
        sample = self.samples[index]
        image = read_image(sample.image)
        if self.masks is not None:
            mask = self.masks(index)
        elif sample.label is None:  # an unlabeled image (rank mode): nothing to learn from
            mask = np.full(image.shape[:2], IGNORE, dtype=np.int64)
        else:
            mask = read_label(sample, self.task.data_format, image.shape[:2], self.task.num_classes)
        tensor, target = normalize(image, self.task.mean, self.task.std), torch.from_numpy(mask)
        if self.augment:
            tensor, target = joint_augment(tensor, target, self.task.crop_size,
                                           self.task.random_scale)
        return tensor, target


class ImageUnits(SelectionUnits):
    """One unit per image, with the labeled pixel fraction as the cost (comparable with regions),
    and the annotation cost in pixels and polygon clicks (``costs.py``)."""

    def __init__(self, pixels: np.ndarray,
                 image_cost: Callable[[int], tuple[int, int]] | None = None) -> None:
        super().__init__(len(pixels))
        self.pixels = np.asarray(pixels, dtype=np.int64)
        self.image_cost = image_cost

    def cost(self, labeled_units, labeled_at=None):
        labeled = np.asarray(labeled_units, dtype=np.int64)
        fraction = float(self.pixels[labeled].sum() / self.pixels.sum())
        cost = {"n_images": len(labeled), "labeled_pixel_fraction": fraction}
        if self.image_cost is not None:
            paid = [self.image_cost(int(image)) for image in labeled]
            cost["n_pixels"] = sum(pixels for pixels, _ in paid)
            cost["n_clicks"] = sum(clicks for _, clicks in paid)
        return cost


class SuperpixelUnits(RegionUnits):
    """Region units whose cost counts the pixels really labeled (instances taken whole, or the
    dominant label's pixels) and the clicks the annotator paid, cycle after cycle (``costs.py``).

    ``n_clicks`` is cumulative and never decreases. Per image, in the order of the cycles its
    regions were labeled in (``labeled_at``): an image whose regions are all labeled in the
    first cycle that labels any of them (the initial set, or every region chosen at once) pays
    its whole mask's polygon clicks; otherwise each cycle pays, with ``dominant`` labels, 1 click
    per region it adds, and with ``exact`` labels, the polygon clicks its regions add to the
    image's labeled mask, ``max(0, clicks(mask up to this cycle) - clicks(mask up to the
    previous one))`` (a region that merges two polygons costs 0, never a refund).
    ``n_pixels`` is the pixels the labeled regions label now.
    """

    def __init__(self, task: SegmentationTask, region_pixels: list[np.ndarray]) -> None:
        super().__init__(region_pixels, task.region_map)
        self.task = task
        # (image, its labeled regions) -> (the pixels they label, their mask's polygon clicks):
        # the masks of earlier cycles are not read again.
        self._mask_cost: dict[tuple[int, bytes], tuple[int, int]] = {}

    def _mask_cost_of(self, image: int, own: np.ndarray) -> tuple[int, int]:
        """(pixels labeled, polygon clicks) of ``image``'s mask under its labeled regions
        ``own`` (bool [R_i]): the whole mask when every region is labeled."""
        key = (image, own.tobytes())
        cached = self._mask_cost.get(key)
        if cached is None:
            if own.all():
                cached = self.task.image_cost(image)
            else:
                member = np.zeros(self.n_units, dtype=bool)
                member[self.offsets[image]:self.offsets[image + 1]] = own
                mask = self.task.partial_mask(image, member)
                pixels = int((mask != IGNORE).sum())
                clicks = polygon_clicks(mask) if self.task.region_label == "exact" else 0
                cached = (pixels, clicks)
            self._mask_cost[key] = cached
        return cached

    def _image_cost(self, image: int, regions: np.ndarray,
                    cycles: np.ndarray) -> tuple[int, int]:
        """(pixels labeled, clicks paid) of ``image`` whose regions ``regions`` (int [K] local
        ids) were labeled in ``cycles`` (int [K])."""
        own = np.zeros(int(self.offsets[image + 1] - self.offsets[image]), dtype=bool)
        paid, previous = 0, 0
        for step, cycle in enumerate(np.unique(cycles)):
            added = regions[cycles == cycle]
            own[added] = True
            pixels, clicks = self._mask_cost_of(image, own)
            if step == 0 and own.all():          # labeled whole: its polygons
                paid = clicks
            elif self.task.region_label == "dominant":
                paid += len(added)                   # one click per superpixel
            else:
                paid += max(0, clicks - previous)    # the polygon clicks it adds
            previous = clicks
        return pixels, paid

    def cost(self, labeled_units, labeled_at=None):
        labeled_units = np.asarray(labeled_units, dtype=np.int64)
        cost = super().cost(labeled_units)
        cycles = (np.zeros(len(labeled_units), dtype=np.int64) if labeled_at is None
                  else np.asarray(labeled_at, dtype=np.int64))
        images, regions = self.image_and_region(labeled_units)
        order = np.argsort(images, kind="stable")
        touched, starts = np.unique(images[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        paid = [self._image_cost(int(image), regions[order[bounds[i]:bounds[i + 1]]],
                                 cycles[order[bounds[i]:bounds[i + 1]]])
                for i, image in enumerate(touched)]
        labeled = sum(pixels for pixels, _ in paid)
        return {"n_images": cost["n_images"],
                "superpixel_pixel_fraction": cost["labeled_pixel_fraction"],
                "labeled_pixel_fraction": labeled / max(self.task.annotated_pixel_count(), 1),
                "n_pixels": labeled, "n_clicks": sum(clicks for _, clicks in paid)}


class SegmentationTask(PartwiseEvaluation, BaseTaskAdapter):
    """Adapter for semantic segmentation (see ``active_learning.adapter.TaskAdapter``).

    Args:
        samples: the pool (training split, plus unlabeled images in rank mode).
        test_samples: the evaluation split.
        data_format: "cityscapes" or "folder".
        superpixels: superpixel units instead of image units.
        superpixel_method / superpixels_per_image: how region maps are made (watershed, ~100).
        region_label: what the simulated annotator gives a chosen superpixel: ``exact`` (every
            instance overlapping it whole, its stuff pixels) or ``dominant`` (its majority class
            on all its pixels, one click: ``costs.dominant_labels``).
        cache_dir: where region maps are kept between runs.
    """

    name = "segmentation"
    primary_metric = "mIoU"
    output_kind = PIXEL_DISTRIBUTIONS   # one class distribution per pixel: [B, C, H, W]

    def __init__(self, samples: Sequence[SegmentationSample],
                 test_samples: Sequence[SegmentationSample], *, data_format: str, num_classes: int,
                 class_names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                 width: float = 1.0, dropout: float = 0.5, dropout_at: str = "stages",
                 dropout_type: str = "element",
                 crop_size: int | None = 896, random_scale: float = 0.0, lr: float = 0.01,
                 momentum: float = 0.9, weight_decay: float = 1e-4, lr_mode: str = "step",
                 step: int = 100, warmup_epochs: int = 0, superpixels: bool = False,
                 superpixel_method: str = "watershed",
                 superpixels_per_image: int = 100, region_label: str = "exact",
                 cache_dir: str | Path | None = None,
                 weights_path: str | None = None, weights_backbone: str | None = None,
                 progress: bool = True, pseudo_labels: str | None = None, pseudo_k: int = 5,
                 pseudo_weight: float = 0.1) -> None:
        self.samples, self.test_samples = list(samples), list(test_samples)
        self.data_format, self.num_classes = data_format, num_classes
        self.class_names = list(class_names)
        self.mean, self.std = tuple(mean), tuple(std)
        self.width, self.dropout, self.dropout_at = width, dropout, dropout_at
        self.dropout_type = dropout_type
        self.crop_size, self.random_scale = crop_size or None, random_scale
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.lr_mode, self.step, self.warmup_epochs = lr_mode, step, warmup_epochs
        self.superpixels = superpixels
        self.superpixel_method = superpixel_method
        self.superpixels_per_image = superpixels_per_image
        self.region_label = region_label
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.weights_path, self.weights_backbone = weights_path, weights_backbone
        self.progress = progress
        # The weak annotator (segmentation/pseudo.py): pool index -> pseudo-mask of this cycle.
        self.pseudo_labels, self.pseudo_k, self.pseudo_weight = pseudo_labels, pseudo_k, \
            pseudo_weight
        self.uses_previous_model = pseudo_labels is not None
        self.pseudo_masks: dict[int, np.ndarray] = {}
        self.feature_info = feature_info(width, num_classes)
        self.pool_set = SegmentationSet(self, range(len(self.samples)))
        self.test_set = SegmentationSet(self, range(len(self.test_samples)),
                                        samples=self.test_samples)
        self.image_sizes = [self._size(sample) for sample in self.samples]        # (H, W) each
        self.test_sizes = [self._size(sample) for sample in self.test_samples]
        self._units: SelectionUnits | None = None
        self._region_maps = _RegionMapCache(REGION_MAP_CACHE_SIZE)
        self.annotated_pixels: int | None = None   # pixels with a class in the pool's full masks
        self._image_costs: dict[int, tuple[int, int]] = {}   # fixed per mask: computed once

    # ---- data --------------------------------------------------------------------------

    @staticmethod
    def _size(sample: SegmentationSample) -> tuple[int, int]:
        from PIL import Image

        try:
            with Image.open(sample.image) as image:
                return image.height, image.width
        except Exception as error:
            raise DataError(f"cannot read image {sample.image}: {error}") from None

    def check_files(self, jobs: int = 1, cache: Path | None = None) -> None:
        """Decode every image and read every label (and instance) map once, so a bad file stops
        the run before training (``jobs`` threads decode; ``cache`` remembers what decoded).

        Also counts the annotated pixels of the pool (``annotated_pixel_count``).
        """
        check_images(((sample.image, (width, height)) for sample, (height, width) in
                      zip([*self.samples, *self.test_samples],
                          [*self.image_sizes, *self.test_sizes], strict=True)),
                     DataError, self.progress, jobs=jobs, cache=cache)
        annotated = 0
        for index in self._progress(range(len(self.samples)), "checking masks"):
            annotated += int((self.full_mask(index) != IGNORE).sum())
            if self.superpixels and self.samples[index].label is not None:
                read_instances(self.samples[index], self.image_sizes[index])
        for sample, size in zip(self.test_samples, self.test_sizes, strict=True):
            read_label(sample, self.data_format, size, self.num_classes)
        self.annotated_pixels = annotated

    def annotated_pixel_count(self) -> int:
        """Pixels with a class in the pool's full masks: the whole of ``labeled_pixel_fraction``.

        Counted by ``check_files`` (which every run calls first), or here on first use.
        """
        if self.annotated_pixels is None:
            self.annotated_pixels = sum(int((self.full_mask(index) != IGNORE).sum())
                                        for index in range(len(self.samples)))
        return self.annotated_pixels

    def image_cost(self, index: int) -> tuple[int, int]:
        """(labeled pixels, polygon clicks) of pool image ``index``'s whole mask; computed once
        (a mask does not change during a run)."""
        cached = self._image_costs.get(index)
        if cached is None:
            mask = self.full_mask(index)
            cached = (int((mask != IGNORE).sum()), polygon_clicks(mask))
            self._image_costs[index] = cached
        return cached

    def full_mask(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        if sample.label is None:
            return np.full(self.image_sizes[index], IGNORE, dtype=np.int64)
        return read_label(sample, self.data_format, self.image_sizes[index], self.num_classes)

    def partial_mask(self, index: int, labeled: np.ndarray) -> np.ndarray:
        """Train ids of image ``index`` where its labeled superpixels reach, 255 elsewhere
        (``region_label``: the instances they overlap whole, or their dominant classes)."""
        units = self.selection_units()
        pixels = units.labeled_mask(index, labeled=labeled)
        if pixels.all():
            return self.full_mask(index)
        if self.region_label == "dominant":
            assert isinstance(units, RegionUnits)
            chosen = labeled[units.offsets[index]:units.offsets[index + 1]]           # [R_i]
            return dominant_labels(self.full_mask(index), self.region_map(index), chosen,
                                   self.num_classes)
        instances = read_instances(self.samples[index], self.image_sizes[index])
        first = 1000 if self.data_format == "cityscapes" else 1
        return superpixel_labels(self.full_mask(index), pixels, instances, first_instance_id=first)

    def selection_units(self) -> SelectionUnits:
        if self._units is None:
            if self.superpixels:
                pixels = [np.bincount(self.region_map(index).ravel()) for index in
                          self._progress(range(len(self.samples)), "superpixels")]
                self._units = SuperpixelUnits(self, pixels)
            else:
                self._units = ImageUnits(np.array([h * w for h, w in self.image_sizes]),
                                         self.image_cost)
        return self._units

    def _progress(self, iterable: Iterable, description: str) -> Iterable:
        if not self.progress:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=description, leave=False, dynamic_ncols=True)

    def region_map(self, index: int) -> np.ndarray:
        """int [H, W] superpixels of pool image ``index`` (cached on disk under ``cache_dir``, and
        the last ``REGION_MAP_CACHE_SIZE`` used in memory)."""
        region_map = self._region_maps.get(index)
        if region_map is None:
            region_map = self._make_region_map(index)
            self._region_maps.put(index, region_map)
        return region_map

    def _make_region_map(self, index: int) -> np.ndarray:
        path = None
        if self.cache_dir is not None:
            path = (self.cache_dir / f"{self.superpixel_method}_{self.superpixels_per_image}"
                    / Path(self.samples[index].name).with_suffix(".png"))
            if path.is_file():
                region_map = load_region_map(path)
                if region_map.shape == self.image_sizes[index]:
                    return region_map.astype(np.intp)
        region_map = superpixels(read_image(self.samples[index].image),
                                 method=self.superpixel_method,
                                 n_segments=self.superpixels_per_image)
        if path is not None:
            try:
                save_region_map(region_map, path)
            except OSError as error:   # a file where the cache folder should be, no permission
                raise ConfigError(f"cannot keep superpixel maps under {self.cache_dir} "
                                  f"(--cache-dir): {error.strerror or error}") from None
        return region_map.astype(np.intp)

    def training_set(self, labeled_units: np.ndarray) -> Dataset:
        """The labeled images (their partial masks in superpixel mode), then this cycle's
        pseudo-labeled images (``before_training``), whose targets carry ``PSEUDO_OFFSET``."""
        units = self.selection_units()
        images = units.samples_of(labeled_units)
        if not self.superpixels:
            labeled = SegmentationSet(self, images, augment=True)
        else:
            member = units.membership(labeled_units)
            labeled = SegmentationSet(self, images, augment=True,
                                      masks=lambda index: self.partial_mask(index, member))
        if not self.pseudo_masks:
            return labeled
        pseudo = SegmentationSet(self, sorted(self.pseudo_masks), augment=True,
                                 masks=lambda index: pseudo_target(self.pseudo_masks[index]))
        return ConcatDataset([labeled, pseudo])

    def before_training(self, previous_model: nn.Module | None, labeled_units: np.ndarray,
                        cycle: int, device: torch.device) -> dict[str, float]:
        """The weak annotator (``--pseudo-labels knn``): the unlabeled images among the
        ``pseudo_k`` nearest neighbours of each labeled image, in ``previous_model``'s embedding
        (``embedding``), get its predicted masks for this cycle's training; ``n_pseudo`` and
        their ``pseudo_miou`` against the hidden ground truth go to ``metrics.csv``. Nothing
        without the option; none in cycle 0 (no model yet)."""
        self.pseudo_masks = {}
        if self.pseudo_labels is None:
            return {}
        if previous_model is None:
            return {"n_pseudo": 0, "pseudo_miou": float("nan")}
        from .metrics import confusion_matrix, scores_from_confusion

        labeled = self.selection_units().samples_of(labeled_units)
        unlabeled = np.setdiff1d(np.arange(len(self.samples)), labeled)
        embeddings = self._pool_outputs(previous_model, range(len(self.samples)), device,
                                        embed=True)
        picked = knn_pick(embeddings, labeled, unlabeled, self.pseudo_k)
        masks = self._pool_outputs(previous_model, picked, device, embed=False)
        confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        for index, mask in zip(picked.tolist(), masks, strict=True):
            self.pseudo_masks[index] = mask
            if self.samples[index].label is not None:   # rank mode's new images have none
                confusion += confusion_matrix(torch.from_numpy(mask.astype(np.int64)),
                                              torch.from_numpy(self.full_mask(index)),
                                              self.num_classes)
        miou = scores_from_confusion(confusion)["mIoU"] if confusion.sum() else float("nan")
        logger.info("cycle %d: %d pseudo-labeled images (the %d nearest of each labeled one), "
                    "mIoU %.4f against their hidden masks", cycle, len(picked), self.pseudo_k,
                    miou)
        return {"n_pseudo": len(picked), "pseudo_miou": miou}

    @torch.inference_mode()
    def _pool_outputs(self, model: nn.Module, indices: Iterable[int], device: torch.device, *,
                      embed: bool) -> Any:
        """Pool images through ``model`` (eval mode, no augmentation): their embeddings
        float [N, D] (``embed``), or their predicted class maps, a list of [H, W] arrays."""
        model.eval()
        loader = DataLoader(Subset(self.pool_set, list(indices)), batch_size=PSEUDO_BATCH)
        rows: list[Any] = []
        dtype = np.uint8 if self.num_classes <= 255 else np.int32
        for inputs, _ in loader:
            outputs, features = self.forward_intermediates(model, inputs.to(device))
            if embed:
                rows.append(self.embedding(outputs, features).cpu().numpy())
            else:
                rows += list(outputs.float().argmax(dim=1).cpu().numpy().astype(dtype))
        if embed:
            return np.concatenate(rows) if rows else np.zeros((0, 1), dtype=np.float32)
        return rows

    # ---- model -------------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        """DRN-D-22, from the pretrained start (``--weights-backbone``, ``--weights``) each cycle,
        as the original rebuilds its DRNSeg with ImageNet weights every cycle (the file is read
        again each time rather than kept: the task travels to DataLoader workers)."""
        return build_model(self.num_classes, width=self.width, dropout=self.dropout,
                           dropout_at=self.dropout_at, dropout_type=self.dropout_type,
                           weights_path=self.weights_path, weights_backbone=self.weights_backbone)

    def build_optimizer(self, parameters, epochs: int):
        """SGD; ``step``: x0.1 every ``step`` epochs, ``poly``: (1 - epoch/epochs)^0.9 (as DRN),
        ``cosine``: ``cosine_factor`` (a linear warm-up over ``warmup_epochs``, then a cosine)."""
        optimizer = torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        if self.lr_mode == "poly":
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda epoch: (1 - min(epoch, epochs - 1) / epochs) ** 0.9)
        elif self.lr_mode == "cosine":
            warmup = self.warmup_epochs
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda epoch: cosine_factor(epoch, epochs, warmup))
        else:
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.step, gamma=0.1)
        return optimizer, scheduler

    def forward_intermediates(self, model: nn.Module, inputs: torch.Tensor):
        return model.forward_intermediates(inputs)     # logits [B, K, H, W], the 10 taps

    def embedding(self, outputs: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Core-set's embedding: the last stage's map (stage 8, not the two class maps the loss
        module also reads), averaged over the image: [B, C8]."""
        return features[len(STAGE_CHANNELS) - 1].float().mean(dim=(2, 3))

    def hidden_features(self, outputs: torch.Tensor,
                        features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Hidden uncertainty's per-pixel features: the classifier's logits at stride 8
        ``[B, K, H/8, W/8]``, the ``features`` hidden_uncertainty_active_learning's DRN gives
        its densities (the upsampled logits interpolate them: no more information, 64x the
        pixels)."""
        return features[len(STAGE_CHANNELS)].float()

    def train_one_epoch(self, model: nn.Module, loss_module: nn.Module | None, loader: Iterable,
                        optimizer: torch.optim.Optimizer, *, epoch: int, config: LoopConfig,
                        device: torch.device, scaler: torch.amp.GradScaler | None = None,
                        forward: Callable[[Any], Any] | None = None) -> dict[str, float]:
        """One epoch; the loss module joins from epoch ``LOSS_MODULE_WARMUP_EPOCHS`` on.

        The original (segmentation/cityscapes_drn/segment.py, ``train``) adds the ranking loss
        only when ``epoch > 1``, letting the segmentation network warm up first ("loss prediction
        does not work well otherwise"); before that the loss module is not trained at all.
        """
        if epoch < LOSS_MODULE_WARMUP_EPOCHS:
            loss_module = None
        return super().train_one_epoch(model, loss_module, loader, optimizer, epoch=epoch,
                                       config=config, device=device, scaler=scaler,
                                       forward=forward)

    def batch_loss(self, outputs: torch.Tensor,
                   targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(training loss, per-image losses [B]) of logits [B, K, H, W] and train ids [B, H, W].

        The training loss is the cross-entropy averaged over every labeled pixel of the batch,
        as fyu/drn's ``NLLLoss(ignore_index=255)`` (segment.py): each pixel weighs the same, so
        an image with one labeled superpixel counts for its few pixels, not as much as a fully
        labeled image (the mean of per-image means would up-weight its pixels ~100x). The
        per-image values, each image's mean over its own labeled pixels, stay what the loss
        module learns to rank. A batch without any labeled pixel gives 0.
        """
        pixel_sums, labeled = self._pixel_losses(outputs, targets)             # [B], [B]
        per_image = pixel_sums / labeled.clamp_min(1)
        return pixel_sums.sum() / labeled.sum().clamp_min(1), per_image

    def _pixel_losses(self, outputs: torch.Tensor,
                      targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: its labeled pixels' summed cross-entropy and their count ([B] each);
        pseudo-labeled pixels (``PSEUDO_OFFSET``) count ``pseudo_weight`` each, in both."""
        if self.pseudo_labels is not None and bool((targets >= PSEUDO_OFFSET).any()):
            return weighted_pixel_losses(outputs, targets, self.pseudo_weight)
        return self._labeled_pixel_losses(outputs, targets)

    def per_sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy averaged over each image's labeled pixels: [B]; 0 without any."""
        pixel_sums, labeled = self._pixel_losses(outputs, targets)
        return pixel_sums / labeled.clamp_min(1)

    @staticmethod
    def _labeled_pixel_losses(outputs: torch.Tensor,
                              targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: the summed cross-entropy of its labeled pixels and their count ([B] each)."""
        pixel = F.cross_entropy(outputs, targets, ignore_index=IGNORE,
                                reduction="none")                          # [B, H, W], 0 at 255
        labeled = (targets != IGNORE).flatten(1).sum(dim=1)                # [B]
        return pixel.flatten(1).sum(dim=1), labeled

    @torch.inference_mode()
    def evaluation_part(self, model: nn.Module, loader: Iterable,
                        device: torch.device) -> torch.Tensor:
        """The confusion matrix of ``loader``'s images: int64 [C, C], rows the true classes."""
        from .metrics import confusion_matrix

        model.eval()
        confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        for inputs, targets in loader:
            predictions = model(inputs.to(device)).float().argmax(dim=1).cpu()
            confusion += confusion_matrix(predictions, targets, self.num_classes)
        return confusion

    def metrics_from_parts(self, parts: Sequence[torch.Tensor]) -> dict[str, float]:
        """mIoU, per-class IoU and pixel accuracy from the summed confusion matrices
        (see ``metrics``)."""
        from .metrics import scores_from_confusion

        return scores_from_confusion(torch.stack(list(parts)).sum(dim=0), self.class_names)

    def item_name(self, index: int) -> str:
        return self.samples[index].name

    def item_file(self, index: int) -> Path | None:
        return self.samples[index].image

    @torch.inference_mode()
    def prediction(self, model: nn.Module, index: int) -> ImagePrediction:
        """The model's class map of pool image ``index`` (round mode's pre-annotation): mask
        [H, W], the argmax over the classes of each pixel of the image file (uint8 up to 255
        classes: a round keeps the report's masks in memory, 2 MB each at 2048 x 1024)."""
        model.eval()
        device = next(model.parameters()).device
        image = self.pool_set[index][0][None].to(device)                     # [1, 3, H, W]
        logits = model(image).float()                                          # [1, K, h, w]
        if logits.shape[-2:] != image.shape[-2:]:
            logits = F.interpolate(logits, size=image.shape[-2:], mode="bilinear",
                                   align_corners=False)
        mask = logits[0].argmax(dim=0).cpu().numpy().astype(
            np.uint8 if self.num_classes <= 255 else np.int32)
        height, width = mask.shape
        return ImagePrediction(width, height, mask=mask)

    def draw_selection(self, units: np.ndarray, scores: np.ndarray, path: Path,
                       model: nn.Module | None = None) -> None:
        from .overlay import draw_selection

        draw_selection(self, units, scores, path, model=model)
