"""Two tiny task adapters for the loop tests: an image classifier and a dense per-pixel task.

Both run in well under a second per cycle on the CPU. The dense one returns [B, C, H, W]
probabilities and a per-image loss (mean of its pixel losses), like segmentation will.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from active_learning.adapter import BaseTaskAdapter


class ToyConvNet(nn.Module):
    """conv(1->8) -> conv(8->16, stride 2) -> dropout -> pooled linear."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(16, num_classes)

    def forward_intermediates(self, x: torch.Tensor):
        f1 = self.stage1(x)                      # [B, 8, 8, 8]
        f2 = self.stage2(f1)                     # [B, 16, 4, 4]
        logits = self.head(self.dropout(f2.mean(dim=(2, 3))))
        return logits, [f1, f2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(x)[0]


def make_blobs(n: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, 1, 8, 8] images whose class sets the brightness of one quadrant, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    images = rng.normal(0, 0.5, (n, 1, 8, 8)).astype(np.float32)
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[index, 0, row * 4:(row + 1) * 4, col * 4:(col + 1) * 4] += 1.5
    return torch.from_numpy(images), torch.from_numpy(labels)


class ToyClassificationAdapter(BaseTaskAdapter):
    name = "toy_classification"
    primary_metric = "accuracy"
    feature_info = [{"name": "stage1", "channels": 8, "stride": 1},
                    {"name": "stage2", "channels": 16, "stride": 2}]

    def __init__(self, n_train: int = 120, n_test: int = 60, num_classes: int = 3) -> None:
        self.num_classes = num_classes
        self.train_set = TensorDataset(*make_blobs(n_train, num_classes, seed=1))
        self.pool_set = self.train_set
        self.test_set = TensorDataset(*make_blobs(n_test, num_classes, seed=2))
        self.fail_in_cycle: int | None = None   # raise in evaluate, to simulate a crash
        self.cycles_evaluated = 0

    def build_model(self) -> nn.Module:
        return ToyConvNet(self.num_classes)

    def build_optimizer(self, parameters, epochs: int):
        return torch.optim.SGD(parameters, lr=0.05, momentum=0.9), None

    def forward_intermediates(self, model, inputs):
        return model.forward_intermediates(inputs)

    def per_sample_loss(self, outputs, targets):
        return nn.functional.cross_entropy(outputs, targets, reduction="none")

    def evaluate(self, model, loader, device):
        if self.fail_in_cycle is not None and self.cycles_evaluated == self.fail_in_cycle:
            raise KeyboardInterrupt("simulated crash")
        self.cycles_evaluated += 1
        model.eval()
        correct = total = 0
        with torch.inference_mode():
            for inputs, targets in loader:
                correct += (model(inputs).argmax(1) == targets).sum().item()
                total += len(targets)
        return {"accuracy": correct / total}

    def item_name(self, index: int) -> str:
        return f"train_{index:05d}.png"


class ToyDenseNet(nn.Module):
    """Per-pixel classifier: two conv stages, dropout2d, 1x1 conv to class maps."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.dropout = nn.Dropout2d(0.2)
        self.classifier = nn.Conv2d(8, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.stage2(self.stage1(x))))


class ToyDenseAdapter(BaseTaskAdapter):
    """Segment bright pixels: target = (clean image > 0.5); per-image loss = mean pixel CE."""

    name = "toy_dense"
    primary_metric = "pixel_accuracy"
    feature_info = [{"name": "stage1", "channels": 8, "stride": 1},
                    {"name": "stage2", "channels": 8, "stride": 1}]

    def __init__(self, n_train: int = 80, n_test: int = 30) -> None:
        self.train_set = TensorDataset(*self._make(n_train, seed=3))
        self.pool_set = self.train_set
        self.test_set = TensorDataset(*self._make(n_test, seed=4))

    @staticmethod
    def _make(n: int, seed: int):
        rng = np.random.default_rng(seed)
        clean = rng.random((n, 1, 8, 8)).astype(np.float32)
        noisy = clean + rng.normal(0, 0.3, clean.shape).astype(np.float32)
        return torch.from_numpy(noisy), torch.from_numpy((clean[:, 0] > 0.5).astype(np.int64))

    def build_model(self) -> nn.Module:
        return ToyDenseNet()

    def build_optimizer(self, parameters, epochs: int):
        return torch.optim.Adam(parameters, lr=0.01), None

    def forward_intermediates(self, model, inputs):
        f1 = model.stage1(inputs)
        f2 = model.stage2(f1)
        return model.classifier(model.dropout(f2)), [f1, f2]

    def per_sample_loss(self, outputs, targets):
        pixel_losses = nn.functional.cross_entropy(outputs, targets, reduction="none")  # [B, H, W]
        return pixel_losses.flatten(1).mean(dim=1)                                       # [B]

    def evaluate(self, model, loader, device):
        model.eval()
        correct = total = 0
        with torch.inference_mode():
            for inputs, targets in loader:
                correct += (model(inputs).argmax(1) == targets).sum().item()
                total += targets.numel()
        return {"pixel_accuracy": correct / total}

    def item_name(self, index: int) -> str:
        return f"image_{index:04d}"


class ToyGroupedAdapter(ToyClassificationAdapter):
    """Pose-like units: images holding 0..3 samples each (the samples are the blob crops).

    The budget and ``pool.npz`` count images; an image's score pools its samples'.
    """

    name = "toy_grouped"

    def __init__(self, n_images: int = 60, n_test: int = 40, num_classes: int = 3, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        self.samples_per_image = rng.integers(0, 4, n_images)                  # 0..3 each
        unit_of_sample = np.repeat(np.arange(n_images), self.samples_per_image)
        super().__init__(n_train=len(unit_of_sample), n_test=n_test, num_classes=num_classes)
        from active_learning.loop.units import GroupedUnits

        self.units = GroupedUnits(unit_of_sample, n_images, sample_label="person")

    def selection_units(self):
        return self.units

    def item_name(self, index: int) -> str:
        return f"image_{index:04d}.jpg"


def quadrant_map(size: int = 8) -> np.ndarray:
    """Four regions: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right."""
    half = size // 2
    region_map = np.zeros((size, size), dtype=np.int64)
    region_map[:half, half:] = 1
    region_map[half:, :half] = 2
    region_map[half:, half:] = 3
    return region_map


def halves_map(size: int = 8) -> np.ndarray:
    """Two regions: 0 the left half, 1 the right half."""
    region_map = np.zeros((size, size), dtype=np.int64)
    region_map[:, size // 2:] = 1
    return region_map


class PartialMaskDataset(torch.utils.data.Dataset):
    """(image, mask) of the images with a labeled region; pixels of unlabeled regions are 255."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, units, labeled_units: np.ndarray) -> None:
        self.images, self.masks, self.units = images, masks, units
        self.member = units.membership(labeled_units)
        self.image_indices = units.samples_of(labeled_units)               # images with a label

    def __len__(self) -> int:
        return len(self.image_indices)

    def __getitem__(self, position: int):
        image = int(self.image_indices[position])
        keep = torch.from_numpy(self.units.labeled_mask(image, labeled=self.member))
        mask = torch.where(keep, self.masks[image], torch.full_like(self.masks[image], 255))
        return self.images[image], mask


class ToyRegionAdapter(ToyDenseAdapter):
    """Superpixel-like units: even images have 4 quadrant regions, odd ones 2 halves."""

    name = "toy_regions"

    def __init__(self, n_train: int = 40, n_test: int = 20) -> None:
        super().__init__(n_train=n_train, n_test=n_test)
        from active_learning.loop.units import RegionUnits

        self.maps = [quadrant_map() if index % 2 == 0 else halves_map() for index in range(n_train)]
        self.units = RegionUnits.from_maps(self.maps)

    def selection_units(self):
        return self.units

    def training_set(self, labeled_units):
        images, masks = self.train_set.tensors
        return PartialMaskDataset(images, masks, self.units, np.asarray(labeled_units))

    def per_sample_loss(self, outputs, targets):
        pixel_losses = nn.functional.cross_entropy(outputs, targets, reduction="none",
                                                   ignore_index=255)            # [B, H, W], 0 at 255
        labeled = (targets != 255).flatten(1).sum(dim=1)                         # [B]
        return pixel_losses.flatten(1).sum(dim=1) / labeled.clamp_min(1)        # [B]

    def item_name(self, index: int) -> str:
        return f"city/image_{index:04d}_leftImg8bit.png"


def outputs_and_embeddings(adapter, model, samples) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's outputs and ``adapter.embedding`` ``[len(samples), D]`` of
    ``pool_set[samples]``, in eval mode (what the loop computes for a strategy's inputs)."""
    with torch.inference_mode():
        model.eval()
        inputs = torch.stack([adapter.pool_set[int(i)][0] for i in samples])
        outputs, features = adapter.forward_intermediates(model, inputs)
        return outputs, adapter.embedding(outputs, features)
