"""The pose task adapter: top-down HRNet on COCO person keypoints; sample = person, unit = image.

What the strategies see (per person, then pooled per image by ``--unit-reduction``, max by
default: an image is worth labeling when any one of its persons is hard, and a max does not
favour crowded images the way a sum does, nor hide one hard person among easy ones as a mean):

* ``loss_prediction``: the module reads the stem and the four HRNet branches; it ranks the
  per-person heatmap loss.
* ``heatmap_uncertainty``: 1 - the mean of the per-joint heatmap maxima (``strategies.py``
  says why).
* ``mc_variance`` (with ``--dropout``): the variance of the heatmaps over T dropout passes,
  averaged over joints and pixels.
* ``coreset`` / ``discriminative``: the four branches, pooled and concatenated; an image's
  embedding is the mean of its persons'.

The per-person loss is HRNet's JointsMSELoss for one person: 0.5 x the mean over joints and
heatmap pixels of ``(w_j (predicted - target))^2``; its batch mean is HRNet's loss.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from active_learning.adapter import BaseTaskAdapter, PartwiseEvaluation
from active_learning.files.images import check_images, image_size
from active_learning.files.predictions import ImagePrediction
from active_learning.files.pretrained import PublishedCheckpoint
from active_learning.loop.units import GroupedUnits
from active_learning.strategies import HEATMAPS

from .coco import DataError, PoseData
from .data import Augmentation, PoseSet, collate
from .heatmaps import box_to_centre_size, decode, flip_back, shift_right, to_image
from .model import build_model, feature_info


def person_losses(heatmaps: torch.Tensor, target: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
    """[B]: 0.5 x mean over (J, H, W) of (w (heatmaps - target))^2; heatmaps, target
    [B, J, H, W], weight [B, J]."""
    difference = (heatmaps.float() - target.float()) * weight.float()[:, :, None, None]
    return 0.5 * difference.pow(2).mean(dim=(1, 2, 3))


class PoseTask(PartwiseEvaluation, BaseTaskAdapter):
    """Adapter for top-down pose estimation (see ``active_learning.adapter.TaskAdapter``).

    Args:
        pool: the pool's images and persons (plus unlabeled images' person boxes in rank mode).
        test: the evaluation persons (ground-truth boxes); ``test.coco`` is the ground truth.
        arch: timm HRNet name. input_size: crop (W, H). sigma: heatmap Gaussian, in cells.
        dropout: Dropout2d before the final 1 x 1 convolution (MC strategies need > 0).
        optimizer: "adam" (the reference, no weight decay) or "sgd"; lr, momentum, weight_decay,
            milestones, gamma: the step schedule (x gamma at each milestone epoch).
        pretrained, weights: the backbone's and the whole model's weights, by name (see
            ``model.build_model``); published: the files the references publish.
        augmentation: training augmentation. flip_test: average with the flipped crop's heatmaps.
        oks_threshold: OKS-NMS threshold of the evaluation (HRNet's TEST.OKS_THRE; None: none).
        in_vis_threshold: joints above it make a person's score (HRNet's TEST.IN_VIS_THRE).
        heatmap_convention: how heatmap cells sit on the crop, for targets, decoding and the flip
            test (``heatmaps.CONVENTIONS``: ``"hrnet"``, the reference's, or ``"aligned"``).
    """

    name = "pose"
    primary_metric = "AP"
    output_kind = HEATMAPS   # not class distributions: entropy-like strategies are refused

    def __init__(self, pool: PoseData, test: PoseData, *, arch: str = "hrnet_w32",
                 input_size: Sequence[int] = (192, 256), sigma: float = 2.0, dropout: float = 0.0,
                 optimizer: str = "adam", lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0, milestones: Sequence[int] = (170, 200),
                 gamma: float = 0.1, pretrained: str | None = None, weights: str | None = None,
                 augmentation: Augmentation | None = None, flip_test: bool = True,
                 oks_threshold: float | None = 0.9, in_vis_threshold: float = 0.2,
                 heatmap_convention: str = "hrnet",
                 published: Sequence[PublishedCheckpoint] = (), progress: bool = True) -> None:
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, got {optimizer!r}")
        self.pool, self.test = pool, test
        self.arch, self.dropout = arch, dropout
        self.input_size = tuple(int(v) for v in input_size)
        self.sigma = sigma
        self.optimizer, self.lr = optimizer, lr
        self.momentum, self.weight_decay = momentum, weight_decay
        self.milestones, self.gamma = list(milestones), gamma
        self.pretrained, self.weights = pretrained, weights
        self.published = tuple(published)
        self.augmentation = augmentation if augmentation is not None else Augmentation()
        self.flip_test, self.progress = flip_test, progress
        self.oks_threshold, self.in_vis_threshold = oks_threshold, in_vis_threshold
        self.convention = heatmap_convention
        self.feature_info = feature_info(arch)
        crops = dict(input_size=self.input_size, sigma=sigma, convention=heatmap_convention)
        self.pool_set = PoseSet(pool, **crops)
        self.train_set = PoseSet(pool, augmentation=self.augmentation, **crops)
        self.test_set = PoseSet(test, **crops)
        self.collate_fn = collate
        self._units = GroupedUnits(pool.unit_of_sample, len(pool.images), sample_label="person")

    # ---- data --------------------------------------------------------------------------

    def selection_units(self) -> GroupedUnits:
        return self._units

    def check_files(self, jobs: int = 1, cache: Path | None = None) -> None:
        """Decode every image: a missing, unreadable or truncated image, or one whose size
        differs from its annotation's, stops the run here (DataError naming it), before any
        training (``jobs`` threads decode; ``cache`` remembers the images that decoded)."""
        sizes = ((image.path, None if image.width is None else (image.width, image.height))
                 for image in [*self.pool.images, *self.test.images])
        check_images(sizes, DataError, self.progress, jobs=jobs, cache=cache)

    def training_set(self, labeled_units: np.ndarray) -> Dataset:
        persons = self._units.samples_of(labeled_units)
        unlabeled = [int(i) for i in persons if self.pool.persons[int(i)].keypoints is None]
        if unlabeled:
            image = self.pool.images[self.pool.persons[unlabeled[0]].image]
            raise ValueError(f"image {image.name} has no keypoints to train on")
        return self.train_set.with_indices(persons)

    def split_batch(self, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict]:
        images, targets = batch
        moved = {key: value.to(device, non_blocking=True) for key, value in targets.items()
                 if key in ("heatmaps", "weight")}
        return images.to(device, non_blocking=True), {**targets, **moved}

    # ---- model -------------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        return build_model(self.arch, dropout=self.dropout, pretrained=self.pretrained,
                           weights=self.weights, published=self.published)

    def build_optimizer(self, parameters, epochs: int):
        """Adam (the reference: lr 1e-3, no weight decay) or SGD, x ``gamma`` at each milestone."""
        if self.optimizer == "adam":
            optimizer = torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)
        else:
            optimizer = torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum,
                                        weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.milestones,
                                                         gamma=self.gamma)
        return optimizer, scheduler

    def forward_intermediates(self, model: nn.Module, inputs: torch.Tensor):
        return model.forward_intermediates(inputs)

    def per_sample_loss(self, outputs: torch.Tensor, targets: dict) -> torch.Tensor:
        """HRNet's heatmap MSE of each person: [B] (see :func:`person_losses`)."""
        return person_losses(outputs, targets["heatmaps"], targets["weight"])

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """The heatmaps themselves, [B, J, H, W] (what heatmap strategies read)."""
        return outputs.float()

    def embedding(self, outputs: Any, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """The four branches, averaged over space and concatenated: [B, sum of their channels]."""
        return torch.cat([feature.float().mean(dim=(2, 3)) for feature in features[1:]], dim=1)

    # ---- prediction and evaluation -----------------------------------------------------

    @torch.inference_mode()
    def predict_heatmaps(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Heatmaps [B, J, h, w] of crops [B, 3, H, W], averaged with the
        flipped crop's (flip test; in HRNet's convention shifted one cell right first, its
        SHIFT_HEATMAP)."""
        model.eval()
        heatmaps = model(images).float()   # fp32 under autocast: OKS reads these
        if self.flip_test:
            flipped = flip_back(model(images.flip(-1)).float())
            if self.convention == "hrnet":
                flipped = shift_right(flipped)
            heatmaps = (heatmaps + flipped) / 2
        return heatmaps

    def keypoints(self, heatmaps: torch.Tensor,
                  matrices: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps [B, J, h, w] and crop matrices [B, 2, 3] -> (image joints
        [B, J, 2], maxima [B, J])."""
        coordinates, maxima = decode(heatmaps.cpu(), self.convention)
        stride = self.input_size[0] // heatmaps.shape[-1]
        joints = np.stack([to_image(c.numpy().astype(np.float64), m.numpy(), stride,
                                    self.convention)
                           for c, m in zip(coordinates, matrices, strict=True)])
        return joints, maxima.numpy()

    def predict_persons(self, model: nn.Module,
                        persons: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Image joints [P, J, 2] and maxima [P, J] of pool persons (for pictures)."""
        device = next(model.parameters()).device
        view = self.pool_set.with_indices(persons)
        images, targets = collate([view[k] for k in range(len(view))])
        return self.keypoints(self.predict_heatmaps(model, images.to(device)), targets["matrix"])

    def _evaluator(self) -> Any:
        from .metrics import KeypointEvaluator

        # every image of the ground-truth file, as HRNet's COCOeval (its imgIds left as loaded)
        return KeypointEvaluator(self.test.coco, in_vis_thre=self.in_vis_threshold,
                                 oks_threshold=self.oks_threshold)

    def evaluation_part(self, model: nn.Module, loader: Iterable, device: torch.device) -> Any:
        """The keypoints of ``loader``'s persons (``KeypointEvaluator.part``)."""
        evaluator = self._evaluator()
        for batch in loader:
            images, targets = self.split_batch(batch, device)
            joints, maxima = self.keypoints(self.predict_heatmaps(model, images), targets["matrix"])
            for index, person_joints, person_maxima in zip(targets["index"].tolist(), joints,
                                                           maxima, strict=True):
                person = self.test.persons[index]
                # OKS-NMS's scale: the crop's area, HRNet's prod(scale * 200)
                _, size = box_to_centre_size(person.box, self.test_set.aspect)
                evaluator.add(self.test.images[person.image].image_id, person_joints, person_maxima,
                              person.score, area=float(size[0] * size[1]))
        return evaluator.part()

    def metrics_from_parts(self, parts: Sequence[Any]) -> dict[str, float]:
        """OKS AP / AR on the test persons with ground-truth boxes (pycocotools COCOeval)."""
        evaluator = self._evaluator()
        for part in parts:
            evaluator.extend(part)
        return evaluator.compute()

    def item_name(self, index: int) -> str:
        return self.pool.images[index].name

    def item_file(self, index: int) -> Path | None:
        return Path(self.pool.images[index].path)

    def prediction(self, model: nn.Module, index: int) -> ImagePrediction:
        """The model's keypoints of each person of pool image ``index`` (round mode's
        pre-annotation): boxes [P, 4] x1, y1, x2, y2 (the persons' boxes), box_scores [P] (their
        detector's scores), keypoints [P, 17, 3] (x, y in pixels of the image file, and the
        heatmap maximum as the joint's confidence), as the evaluation decodes them."""
        image = self.pool.images[index]
        width, height = image_size(image.path, DataError)
        persons = np.flatnonzero(self.pool.unit_of_sample == index)
        if not len(persons):
            return ImagePrediction(width, height)
        joints, maxima = self.predict_persons(model, persons.tolist())      # [P, J, 2], [P, J]
        boxes = np.array([self.pool.persons[int(k)].box for k in persons], dtype=np.float64)
        boxes[:, 2:] += boxes[:, :2]                                  # x, y, w, h -> x1 .. y2
        return ImagePrediction(
            width, height, boxes=boxes,
            box_scores=np.array([self.pool.persons[int(k)].score for k in persons]),
            keypoints=np.concatenate([joints, maxima[..., None]], axis=2).astype(np.float64))

    def draw_selection(self, units: np.ndarray, scores: np.ndarray, path: Path,
                       model: nn.Module | None = None) -> None:
        from .overlay import draw_selection

        draw_selection(self, units, scores, path, model=model)
