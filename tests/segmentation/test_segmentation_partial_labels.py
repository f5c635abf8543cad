"""Superpixel labeling and the per-image loss of the segmentation task, against masks and
cross-entropies written out by hand (no table of the library's is looped over)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from active_learning.labels.cityscapes_ids import CITYSCAPES_CLASSES
from active_learning.loop.superpixels import save_region_map
from segmentation.data import IGNORE, SegmentationSample
from segmentation.task import SegmentationTask

X = IGNORE  # short name for the hand-written masks

# One 4 x 6 Cityscapes image. Label ids (cityscapesScripts' labels.py): 7 road, 11 building,
# 23 sky, 24 person, 26 car; their train ids: road 0, building 2, sky 10, person 11, car 13.
LABEL_IDS = np.array([[23, 23, 23, 11, 11, 11],
                      [26, 26, 7, 7, 24, 24],
                      [26, 26, 7, 26, 24, 24],
                      [7, 7, 7, 26, 7, 7]])
# instanceIds: labelId * 1000 + k for object instances (car A 26000, car B 26001, a person
# 24000), the bare label id (< 1000) for stuff.
INSTANCE_IDS = np.array([[23, 23, 23, 11, 11, 11],
                         [26000, 26000, 7, 7, 24000, 24000],
                         [26000, 26000, 7, 26001, 24000, 24000],
                         [7, 7, 7, 26001, 7, 7]])
# Four superpixels (ids 0..3).
REGIONS = np.array([[0, 0, 0, 1, 1, 1],
                    [0, 0, 2, 2, 1, 1],
                    [3, 2, 2, 3, 3, 3],
                    [3, 3, 3, 3, 3, 3]])


def _make_task(tmp_path, data_format: str, labels: np.ndarray, instances: np.ndarray,
               regions: np.ndarray, num_classes: int, class_names) -> SegmentationTask:
    """A one-image superpixel task on hand-written files; its region map sits in the task's own
    on-disk cache, so ``region_map`` reads it rather than running watershed."""
    height, width = labels.shape
    paths = {kind: tmp_path / f"{kind}.png" for kind in ("image", "label", "instances")}
    Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(paths["image"])
    Image.fromarray(labels.astype(np.uint8)).save(paths["label"])
    Image.fromarray(instances.astype(np.uint16)).save(paths["instances"])
    sample = SegmentationSample(image=paths["image"], label=paths["label"],
                                instances=paths["instances"], name="city/a.png")
    cache = tmp_path / "cache"
    save_region_map(regions, cache / "watershed_100" / "city" / "a.png")
    task = SegmentationTask([sample], [], data_format=data_format, num_classes=num_classes,
                            class_names=class_names, mean=(0.5,) * 3, std=(0.25,) * 3,
                            superpixels=True, superpixel_method="watershed",
                            superpixels_per_image=100, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(task.region_map(0), regions)  # the hand-written map is used
    return task


def _membership(task: SegmentationTask, regions) -> np.ndarray:
    units = task.selection_units()
    assert units.n_units == 4
    return units.membership(np.asarray(regions, dtype=np.int64))  # image 0: unit id = region id


def test_partial_mask_labels_touched_instances_whole_and_stuff_inside_the_superpixels(tmp_path):
    task = _make_task(tmp_path, "cityscapes", LABEL_IDS, INSTANCE_IDS, REGIONS, 19,
                      CITYSCAPES_CLASSES)
    # Superpixels 1 and 2 chosen. Superpixel 2 touches car A at (2, 1) only, superpixel 1 touches
    # the person at (1, 4), (1, 5) only; car B and the stuff of superpixels 0 and 3 are untouched.
    mask = task.partial_mask(0, _membership(task, [1, 2]))
    expected = np.array([[X, X, X, 2, 2, 2],        # sky of superpixel 0: no; building of 1: yes
                         [13, 13, 0, 0, 11, 11],    # car A whole (also its pixels in superpixel 0)
                         [13, 13, 0, X, 11, 11],    # car A in superpixel 3, the person's lower half
                         [X, X, X, X, X, X]])       # road of superpixel 3 and car B: no
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype.kind == "i"

    # No superpixel: nothing labeled. Every superpixel: the full mask, 255 nowhere.
    np.testing.assert_array_equal(task.partial_mask(0, _membership(task, [])),
                                  np.full((4, 6), X))
    full = np.array([[10, 10, 10, 2, 2, 2],
                     [13, 13, 0, 0, 11, 11],
                     [13, 13, 0, 13, 11, 11],
                     [0, 0, 0, 13, 0, 0]])
    np.testing.assert_array_equal(task.partial_mask(0, _membership(task, [0, 1, 2, 3])), full)

    # What the cost counts is the same mask: 14 labeled pixels of the 24 annotated ones.
    cost = task.selection_units().cost(np.array([1, 2]))
    assert cost["labeled_pixel_fraction"] == pytest.approx(14 / 24)


def test_partial_mask_of_the_folder_format_takes_instance_ids_from_1(tmp_path):
    """The folder format: class ids in the mask, instance ids 1.. (0 = no instance)."""
    labels = np.array([[0, 1, 1, 0],
                       [0, 1, 2, 2],
                       [0, 0, 2, 2]])
    instances = np.array([[0, 1, 1, 0],
                          [0, 1, 2, 2],
                          [0, 0, 2, 2]])
    regions = np.array([[0, 0, 1, 1],
                        [0, 0, 1, 1],
                        [2, 2, 2, 3]])
    task = _make_task(tmp_path, "folder", labels, instances, regions, 3, ["bg", "a", "b"])
    # Superpixel 0 touches instance 1 at (0, 1), (1, 1); instance 1's pixel (0, 2) lies in
    # superpixel 1. Instance 2 is untouched; the stuff (class 0) only inside superpixel 0.
    mask = task.partial_mask(0, _membership(task, [0]))
    expected = np.array([[0, 1, 1, X],
                         [0, 1, X, X],
                         [X, X, X, X]])
    np.testing.assert_array_equal(mask, expected)


def _log_softmax(values) -> list[float]:
    peak = max(values)
    log_sum = peak + math.log(sum(math.exp(v - peak) for v in values))
    return [v - log_sum for v in values]


def test_per_sample_loss_averages_over_each_images_labeled_pixels_only():
    task = SegmentationTask([], [], data_format="folder", num_classes=3, class_names="abc",
                            mean=(0.5,) * 3, std=(0.25,) * 3, progress=False)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 2, 3, generator=generator, dtype=torch.float64) * 2  # [B, C, H, W]
    targets = torch.tensor([[[2, X, X],
                             [X, 0, 1]],          # image 0: 3 labeled pixels
                            [[0, 1, 2],
                             [2, 2, 0]]])         # image 1: every pixel labeled
    losses = task.per_sample_loss(logits, targets)

    def nll(image, row, col, target):
        column = [float(logits[image, c, row, col]) for c in range(3)]
        return -_log_softmax(column)[target]

    image0 = (nll(0, 0, 0, 2) + nll(0, 1, 1, 0) + nll(0, 1, 2, 1)) / 3
    image1 = (nll(1, 0, 0, 0) + nll(1, 0, 1, 1) + nll(1, 0, 2, 2)
              + nll(1, 1, 0, 2) + nll(1, 1, 1, 2) + nll(1, 1, 2, 0)) / 6
    assert losses.shape == (2,)
    assert losses[0].item() == pytest.approx(image0, rel=1e-9)
    assert losses[1].item() == pytest.approx(image1, rel=1e-9)
    # A mean over all 6 pixels would give image 0 half of it; a batch-wide mean over the 9
    # labeled pixels would give both images the same value.
    assert abs(image0 - image0 * 3 / 6) > 0.1 and abs(image0 - image1) > 0.1


def test_training_loss_weighs_pixels_and_the_loss_module_still_sees_each_image():
    """One fully labeled 3 x 4 image and one with a single labeled 1 x 2 region: the training
    loss is the mean over the 14 labeled pixels of the batch (fyu/drn's NLLLoss with
    ignore_index), not the mean of the two images' means; the per-image values stay per image."""
    task = SegmentationTask([], [], data_format="folder", num_classes=3, class_names="abc",
                            mean=(0.5,) * 3, std=(0.25,) * 3, progress=False)
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 3, 4, generator=generator, dtype=torch.float64) * 2
    full = torch.tensor([[0, 1, 2, 0],
                         [1, 1, 2, 2],
                         [0, 2, 1, 0]])
    region = torch.full((3, 4), X)
    region[1, 1:3] = torch.tensor([2, 0])               # image 1: two labeled pixels
    targets = torch.stack([full, region])

    def nll(image, row, col, target):
        column = [float(logits[image, c, row, col]) for c in range(3)]
        return -_log_softmax(column)[target]

    full_sum = sum(nll(0, r, c, int(full[r, c])) for r in range(3) for c in range(4))
    region_sum = nll(1, 1, 1, 2) + nll(1, 1, 2, 0)
    loss, per_image = task.batch_loss(logits, targets)
    assert loss.item() == pytest.approx((full_sum + region_sum) / 14, rel=1e-9)
    # the image-weighted mean (the old loss) differs here by about a third
    assert loss.item() != pytest.approx((full_sum / 12 + region_sum / 2) / 2, rel=1e-3)
    assert per_image.shape == (2,)
    assert per_image[0].item() == pytest.approx(full_sum / 12, rel=1e-9)
    assert per_image[1].item() == pytest.approx(region_sum / 2, rel=1e-9)
    torch.testing.assert_close(per_image, task.per_sample_loss(logits, targets))
    # Gradients: each labeled pixel's logits get 1/14 of its own cross-entropy gradient.
    leaf = logits.clone().requires_grad_(True)
    task.batch_loss(leaf, targets)[0].backward()
    probabilities = torch.softmax(logits[1, :, 1, 1], dim=0)
    expected = (probabilities - torch.nn.functional.one_hot(torch.tensor(2), 3)) / 14
    torch.testing.assert_close(leaf.grad[1, :, 1, 1], expected)
    assert (leaf.grad[1, :, 0] == 0).all()              # unlabeled pixels: no gradient


def test_a_batch_without_labeled_pixels_has_zero_loss():
    task = SegmentationTask([], [], data_format="folder", num_classes=3, class_names="abc",
                            mean=(0.5,) * 3, std=(0.25,) * 3, progress=False)
    logits = torch.randn(2, 3, 2, 2, requires_grad=True)
    loss, per_image = task.batch_loss(logits, torch.full((2, 2, 2), X))
    assert loss.item() == 0.0 and per_image.tolist() == [0.0, 0.0]
    loss.backward()
    assert (logits.grad == 0).all()


def test_the_loss_module_joins_after_two_warm_up_epochs_and_reads_ten_maps():
    """As the original's train(): the ranking loss only for epoch > 1; the network trains alone
    before. Core-set's embedding is stage 8's map, not one of the two class maps."""
    from active_learning.loop.config import LoopConfig
    from active_learning.strategies.loss_prediction import (
        LossPredictionCompanion,
        LossPredictionModule,
    )

    task = SegmentationTask([], [], data_format="folder", num_classes=3, class_names="abc",
                            mean=(0.5,) * 3, std=(0.25,) * 3, width=0.125, dropout=0.0,
                            progress=False)
    torch.manual_seed(0)
    model = task.build_model()
    loss_module = LossPredictionModule([info["channels"] for info in task.feature_info])
    optimizer = torch.optim.SGD([*model.parameters(), *loss_module.parameters()], lr=0.1)
    batch = (torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16)))
    config = LoopConfig(epochs=4, batch_size=2)
    companion = LossPredictionCompanion(loss_module, lamda=1.0, margin=1.0, detach_from=2)
    for epoch, joins in [(0, False), (1, False), (2, True)]:
        before = [p.detach().clone() for p in loss_module.parameters()]
        stats = task.train_one_epoch(model, companion, [batch], optimizer, epoch=epoch,
                                     config=config, device=torch.device("cpu"))
        changed = any(not torch.equal(a, b) for a, b in zip(before, loss_module.parameters(),
                                                            strict=True))
        assert changed == joins, epoch
        assert (stats.get("ranking_loss", 0.0) > 0) == joins, epoch
    outputs, features = task.forward_intermediates(model.eval(), batch[0])
    torch.testing.assert_close(task.embedding(outputs, features), features[7].mean(dim=(2, 3)))
