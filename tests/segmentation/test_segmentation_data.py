"""Segmentation data, metrics, labeling and model, against hand computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from active_learning.labels.cityscapes_ids import LABEL_TO_TRAIN
from seg_fixtures import write_tiny_cityscapes
from segmentation.data import (
    IGNORE,
    DataError,
    find_samples,
    joint_augment,
    read_label,
    superpixel_labels,
)
from segmentation.metrics import confusion_matrix, scores_from_confusion
from segmentation.model import DRNSegmentation, feature_info


def test_train_id_table():
    expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    for label_id in range(34):
        assert LABEL_TO_TRAIN[label_id] == expected.get(label_id, IGNORE), label_id
    assert (LABEL_TO_TRAIN[34:] == -1).all()  # not Cityscapes ids


def test_miou_against_a_hand_computed_confusion_matrix():
    targets = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    predictions = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])
    confusion = confusion_matrix(predictions, targets, num_classes=4)
    # rows = truth, columns = prediction; the 255 pixel is skipped
    assert confusion.tolist() == [[1, 1, 0, 0], [0, 3, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    scores = scores_from_confusion(confusion, ["a", "b", "c", "d"])
    iou = {"a": 1 / 3, "b": 3 / 4, "c": 1 / 2}                 # TP / (TP + FP + FN)
    for name, value in iou.items():
        assert scores[f"iou_{name}"] == pytest.approx(value)
    assert np.isnan(scores["iou_d"])                            # absent everywhere: not averaged
    assert scores["mIoU"] == pytest.approx(sum(iou.values()) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(5 / 7)


def test_instances_overlapping_a_chosen_superpixel_are_labeled_whole():
    train_ids = np.array([[0, 0, 13, 13],
                          [0, 0, 13, 13],
                          [10, 10, 11, 0]])
    instances = np.array([[7, 7, 26000, 26000],
                          [7, 7, 26000, 26000],
                          [23, 23, 24000, 7]])
    chosen = np.zeros((3, 4), dtype=bool)
    chosen[1, 1:3] = True      # a superpixel over one road pixel and one car pixel
    labels = superpixel_labels(train_ids, chosen, instances)
    expected = np.full((3, 4), IGNORE)
    expected[1, 1] = 0                       # stuff: only the superpixel's own pixel
    expected[:2, 2:] = 13                    # the car instance, whole
    np.testing.assert_array_equal(labels, expected)
    # Without instance maps only the superpixel's own pixels are labeled.
    np.testing.assert_array_equal(superpixel_labels(train_ids, chosen, None),
                                  np.where(chosen, train_ids, IGNORE))


def test_joint_augmentation_keeps_image_and_mask_aligned():
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(60), indexing="ij")
    mask = (yy // 8) * 6 + xx // 10                             # 8 x 10 blocks, ids 0..29
    image = mask[None].float().repeat(3, 1, 1)                  # the image encodes its mask
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        out_image, out_mask = joint_augment(image, mask, crop=32, scale=0.3, generator=generator)
        assert out_image.shape == (3, 32, 32) and out_mask.shape == (32, 32)
        valid = out_mask != IGNORE
        # Bilinear resizing blends neighbours at label edges; away from them the values agree.
        agree = (out_image[0][valid].round() == out_mask[valid].float()).float().mean()
        assert agree > 0.8


def test_crop_pads_small_images_with_ignore():
    image, mask = torch.ones(3, 10, 12), torch.zeros(10, 12, dtype=torch.long)
    out_image, out_mask = joint_augment(image, mask, crop=16, scale=0.0)
    assert (out_mask == IGNORE).sum() == 16 * 16 - 10 * 12
    assert out_image.sum() == 3 * 10 * 12


def test_drn_d_22_taps_and_dropout_only_when_sampling():
    model = DRNSegmentation(num_classes=5, width=0.25).eval()
    x = torch.randn(2, 3, 64, 96)
    logits, features = model.forward_intermediates(x)
    assert logits.shape == (2, 5, 64, 96)
    info = feature_info(0.25, num_classes=5)
    assert len(features) == len(info) == 10       # 8 stages + logits + log-softmax (original's)
    assert [f.shape[1] for f in features] == [entry["channels"] for entry in info]
    assert [64 // f.shape[2] for f in features] == [entry["stride"] for entry in info]
    assert [entry["stride"] for entry in info] == [1, 2, 4, 8, 8, 8, 8, 8, 8, 1]
    coarse, log_probabilities = features[8], features[9]
    torch.testing.assert_close(model.classifier(features[7]), coarse)
    torch.testing.assert_close(log_probabilities, torch.log_softmax(logits, dim=1))
    torch.testing.assert_close(model(x), logits)
    # The original's dropout: element-wise, p = 0.5, at the end of residual stages 3-6.
    drops = [(name, m) for name, m in model.named_modules()
             if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    assert [name for name, _ in drops] == ["stage3.1", "stage4.1", "stage5.1", "stage6.1"]
    assert all(type(m) is torch.nn.Dropout and m.p == 0.5 for _, m in drops)
    torch.testing.assert_close(model(x), model(x))  # validation: no dropout
    head_only = DRNSegmentation(num_classes=5, width=0.25, dropout_at="classifier",
                                dropout_type="channel")
    drops = [m for m in head_only.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    assert len(drops) == 1 and type(drops[0]) is torch.nn.Dropout2d
    assert not any(isinstance(m, torch.nn.modules.dropout._DropoutNd)
                   for m in DRNSegmentation(num_classes=5, dropout=0.0).modules())
    full = DRNSegmentation(num_classes=19)
    assert [m.out_channels for m in (full.stage1[0], full.stage8[0])] == [16, 512]


def test_element_dropout_drops_single_activations_and_channel_dropout_whole_maps():
    torch.manual_seed(0)
    x = torch.ones(1, 8, 6, 6)
    element = DRNSegmentation(num_classes=3, width=0.125).stage3[1].train()(x)
    channel = DRNSegmentation(num_classes=3, width=0.125,
                              dropout_type="channel").stage3[1].train()(x)
    # a whole map is either all kept (x2) or all dropped; element-wise mixes within a map
    per_map = (channel == 0).flatten(2).float().mean(dim=2)
    assert set(per_map.flatten().tolist()) <= {0.0, 1.0}
    mixed = (element == 0).flatten(2).float().mean(dim=2)
    assert ((mixed > 0) & (mixed < 1)).any()


@pytest.fixture()
def tiny(tmp_path):
    return write_tiny_cityscapes(tmp_path / "cs")


def _first(tiny, suffix):
    return sorted(tiny.rglob(f"*{suffix}"))[0]


def test_cityscapes_reader_finds_images_labels_and_instances(tiny):
    samples = find_samples(tiny, "train", "cityscapes", need_instances=True)
    assert len(samples) == 12 and all(s.instances is not None for s in samples)
    label = read_label(samples[0], "cityscapes", (32, 64), 19)
    assert label.dtype == np.int64 and set(np.unique(label)) <= set(range(19)) | {IGNORE}


@pytest.mark.parametrize("damage, message", [
    ("size", "is 10x10 but its image"),
    ("ids", "outside the Cityscapes table"),
    ("unreadable", "cannot read"),
])
def test_bad_label_maps_name_the_file(tiny, damage, message):
    path = _first(tiny, "_gtFine_labelIds.png")
    if damage == "size":
        Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(path)
    elif damage == "ids":
        Image.fromarray(np.full((32, 64), 40, dtype=np.uint8)).save(path)
    else:
        path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    sample = next(s for s in find_samples(tiny, "train", "cityscapes") if s.label == path)
    with pytest.raises(DataError, match=message) as error:
        read_label(sample, "cityscapes", (32, 64), 19)
    assert path.name in str(error.value)


def test_missing_instances_in_superpixel_mode_and_a_city_without_masks(tiny):
    path = _first(tiny, "_gtFine_instanceIds.png")
    path.unlink()
    find_samples(tiny, "train", "cityscapes")  # image mode does not need them
    with pytest.raises(DataError, match="no instance map"):
        find_samples(tiny, "train", "cityscapes", need_instances=True)
    city = sorted((tiny / "gtFine" / "train").iterdir())[0]
    for file in city.iterdir():
        file.unlink()
    city.rmdir()
    with pytest.raises(DataError, match=f"city {city.name} has images .* but no masks"):
        find_samples(tiny, "train", "cityscapes")
