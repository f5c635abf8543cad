"""The classification task adapter: ResNet-18 (CIFAR variant) plugged into the shared loop."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from active_learning.adapter import BaseTaskAdapter, PartwiseEvaluation
from active_learning.files.predictions import ImagePrediction

from .datasets import ClassificationData
from .model import build_model, feature_info


class ClassificationTask(PartwiseEvaluation, BaseTaskAdapter):
    """Adapter for image classification (see ``active_learning.loop.runner.TaskAdapter``).

    Outputs are logits ``[B, C]``; the loss-prediction taps are the four stage outputs; the
    embedding for core-set / BADGE / DAL is the pooled ``[B, 8*width]`` vector (the default
    ``BaseTaskAdapter.embedding`` of the deepest map).
    """

    name = "classification"
    primary_metric = "accuracy"

    def __init__(self, data: ClassificationData, *, width: int = 64, dropout: float = 0.0,
                 lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 milestones: Sequence[int] = (160,), weights_path: str | None = None) -> None:
        self.data = data
        self.train_set = data.train
        self.pool_set = data.train_eval
        self.test_set = data.test
        self.width = width
        self.dropout = dropout
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.milestones = list(milestones)
        self.weights_path = weights_path
        self.feature_info = feature_info(width)

    @property
    def class_names(self) -> list[str]:
        """[C] the names of the class indices (the report's histogram and map)."""
        return list(self.data.class_names)

    def build_model(self) -> nn.Module:
        return build_model(self.data.num_classes, self.data.in_channels, width=self.width,
                           dropout=self.dropout, weights_path=self.weights_path)

    def build_optimizer(self, parameters: Iterable[nn.Parameter], epochs: int):
        """SGD with step decay (x0.1 at each milestone), as in Learning Loss's CIFAR-10 protocol."""
        optimizer = torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.milestones,
                                                         gamma=0.1)
        return optimizer, scheduler

    def forward_intermediates(self, model: nn.Module, inputs: torch.Tensor):
        logits, features, _ = model.forward_intermediates(inputs)  # [B, C], 4 maps
        return logits, features

    def per_sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets, reduction="none")  # [B]

    @torch.inference_mode()
    def evaluation_part(self, model: nn.Module, loader: Iterable,
                        device: torch.device) -> tuple[int, int, float]:
        """(correct predictions, test images, summed cross-entropy) of ``loader``'s images."""
        model.eval()
        correct = 0
        total = 0
        loss_sum = 0.0
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            logits = model(inputs).float()                           # [B, C]
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
            correct += (logits.argmax(dim=1) == targets).sum().item()
            total += targets.numel()
        return correct, total, loss_sum

    def metrics_from_parts(self, parts: Sequence[tuple[int, int, float]]) -> dict[str, float]:
        """Top-1 accuracy and mean cross-entropy on the test set."""
        correct = sum(part[0] for part in parts)
        total = sum(part[1] for part in parts)
        loss_sum = sum(part[2] for part in parts)
        return {"accuracy": correct / max(total, 1), "test_loss": loss_sum / max(total, 1)}

    def item_name(self, index: int) -> str:
        return self.data.names[index]

    def item_file(self, index: int) -> Path | None:
        samples = getattr(self.data.train, "samples", None)   # image folders; arrays have none
        return None if samples is None else Path(samples[index][0])

    @torch.inference_mode()
    def prediction(self, model: nn.Module, index: int, size: tuple[int, int]) -> ImagePrediction:
        """The model's class of pool image ``index`` and its softmax probability, for an image
        file of ``size`` (width, height) pixels (round mode's pre-annotation)."""
        model.eval()
        device = next(model.parameters()).device
        image = self.pool_set[index][0]                                   # [C, S, S]
        probabilities = torch.softmax(model(image[None].to(device)).float(), dim=1)[0]
        confidence, label = probabilities.max(dim=0)
        return ImagePrediction(int(size[0]), int(size[1]), label=int(label),
                               confidence=float(confidence))

    def draw_selection(self, units: np.ndarray, scores: np.ndarray, path: Path,
                       model: torch.nn.Module | None = None, count: int = 16) -> None:
        """The first ``count`` chosen images, best first, with their names, classes and scores."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from active_learning.files.atomic import atomic_open

        shown = list(zip(units[:count], scores[:count], strict=True))
        columns = min(8, len(shown))
        rows = -(-len(shown) // columns)
        figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.9 * rows),
                                    squeeze=False, dpi=100)
        for axis in axes.ravel():
            axis.axis("off")
        for axis, (index, score) in zip(axes.ravel(), shown, strict=False):
            image = self.pool_set[int(index)][0].float()              # [C, H, W], normalised
            image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-6)
            axis.imshow(image.permute(1, 2, 0).squeeze(-1).numpy(),
                        cmap="gray" if image.shape[0] == 1 else None)
            target = int(self.data.targets[int(index)])
            label = (self.data.class_names[target] if 0 <= target < len(self.data.class_names)
                     else "unlabeled")
            axis.set_title(f"{self.item_name(int(index))[:18]}\n{label[:14]} {score:.3f}",
                           fontsize=6)
        figure.suptitle("chosen to label next (best first): name, true class, score", fontsize=8)
        with atomic_open(path, "wb") as handle:
            figure.savefig(handle, format="png")
        plt.close(figure)
