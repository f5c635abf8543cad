"""Crops, heatmap targets, decoding and flipping (human_pose_estimation/heatmaps.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from human_pose_estimation.heatmaps import (
    FLIP_PAIRS,
    box_to_centre_size,
    crop_to_heatmap,
    crop_transform,
    decode,
    encode,
    flip_back,
    flip_permutation,
    to_image,
)


def test_box_to_centre_size_pads_to_the_aspect_then_enlarges():
    centre, size = box_to_centre_size((10, 20, 30, 80))            # tall: width grows to 60
    np.testing.assert_allclose(centre, [25, 60])
    np.testing.assert_allclose(size, [60 * 1.25, 80 * 1.25])
    _, size = box_to_centre_size((0, 0, 90, 40))                    # wide: height grows to 120
    np.testing.assert_allclose(size, [90 * 1.25, 120 * 1.25])


def test_crop_transform_maps_the_region_onto_the_crop():
    centre, size = np.array([100.0, 50.0]), np.array([60.0, 80.0])
    matrix = crop_transform(centre, size, (192, 256))
    corners = np.array([[70.0, 10.0], [130.0, 90.0], [100.0, 50.0]])
    mapped = corners @ matrix[:, :2].T + matrix[:, 2]
    # 60 image pixels span the 192-pixel crop: 3.2 crop pixels per image pixel, centre to centre.
    np.testing.assert_allclose(mapped[2], [95.5, 127.5])
    np.testing.assert_allclose(mapped[1] - mapped[0], [192, 256])
    rotated = crop_transform(centre, size, (192, 256), rotation=90)
    up = np.array([100.0, 40.0]) @ rotated[:, :2].T + rotated[:, 2]  # 10 px above the centre
    np.testing.assert_allclose(up, [95.5 - 32, 127.5], atol=1e-9)   # turns to 32 px left of it


def test_encode_peaks_at_the_joint_with_sigma_and_zero_weight_outside():
    joints = np.array([[5.0, 3.0], [2.5, 7.0], [30.0, 3.0], [4.0, 4.0]])
    heatmaps, weight = encode(joints, np.array([2, 1, 2, 0]), (12, 16), sigma=2.0)
    assert heatmaps.shape == (4, 16, 12)
    np.testing.assert_array_equal(weight, [1, 1, 0, 0])       # out of the map; unlabeled
    assert heatmaps[0, 3, 5] == pytest.approx(1.0)
    assert heatmaps[0, 3, 7] == pytest.approx(np.exp(-4 / 8))   # two cells away, sigma 2
    assert heatmaps[1, 7, 2] == pytest.approx(np.exp(-0.25 / 8))
    assert not heatmaps[2].any() and not heatmaps[3].any()


def test_decode_moves_a_quarter_cell_toward_the_higher_neighbour():
    heatmaps = torch.zeros(1, 3, 8, 10)
    heatmaps[0, 0, 3, 5], heatmaps[0, 0, 3, 6], heatmaps[0, 0, 3, 4] = 1.0, 0.6, 0.2     # right is higher
    heatmaps[0, 0, 2, 5], heatmaps[0, 0, 4, 5] = 0.5, 0.1                              # up is higher
    heatmaps[0, 1, 0, 9] = 0.7                                                          # on the border: no shift
    heatmaps[0, 2] = -0.1                                                               # nothing found
    coordinates, maxima = decode(heatmaps)
    np.testing.assert_allclose(coordinates[0].numpy(), [[5.25, 2.75], [9, 0], [0, 0]])
    np.testing.assert_allclose(maxima[0].numpy(), [1.0, 0.7, -0.1], rtol=1e-6)


def test_encode_then_decode_back_to_the_image_within_a_pixel():
    rng = np.random.default_rng(0)
    for _ in range(20):
        box = (rng.uniform(0, 200), rng.uniform(0, 100), rng.uniform(20, 120), rng.uniform(40, 200))
        centre, size = box_to_centre_size(box)
        matrix = crop_transform(centre, size, (192, 256), rotation=rng.uniform(-30, 30))
        joints = centre + (rng.uniform(-0.3, 0.3, (17, 2)) * box[2:])     # inside the crop at any rotation
        in_cells = crop_to_heatmap(joints @ matrix[:, :2].T + matrix[:, 2], 4)
        heatmaps, weight = encode(in_cells, np.full(17, 2), (48, 64), sigma=2.0)
        assert weight.all()
        coordinates, _ = decode(torch.from_numpy(heatmaps)[None])
        # the arg-max and its quarter shift land within half a cell of the true position
        assert np.abs(coordinates[0].numpy() - in_cells).max() <= 0.5 + 1e-6
        back = to_image(coordinates[0].numpy().astype(np.float64), matrix, stride=4)
        cell = 4 * size[0] / 192                                           # image pixels per heatmap cell
        assert np.linalg.norm(back - joints, axis=1).max() <= cell / np.sqrt(2) + 1e-6


def test_flip_permutation_swaps_every_left_right_pair():
    order = flip_permutation()
    assert order[0] == 0 and sorted(order) == list(range(17))
    for left, right in FLIP_PAIRS:
        assert (order[left], order[right]) == (right, left)


def test_flip_back_swaps_the_joints_and_mirrors_the_maps():
    heatmaps = torch.zeros(1, 17, 4, 6)
    heatmaps[0, 9, 1, 1] = 1.0                                   # left wrist at x = 1 in the flipped crop
    restored = flip_back(heatmaps)
    assert restored[0, 10, 1, 4] == 1.0 and restored.sum() == 1  # right wrist at x = 6 - 1 - 1


def test_a_flipped_crop_gives_exactly_the_flipped_targets(tmp_path):
    """The alignment of heatmap cells to crop pixels makes flipping the crop and flipping the
    heatmaps the same operation: no one-pixel shift as in HRNet's SHIFT_HEATMAP."""
    from human_pose_estimation.coco import read_split
    from human_pose_estimation.data import PoseSet
    from pose_fixtures import write_tiny_coco

    data = read_split(write_tiny_coco(tmp_path / "coco", train=3, val=1), "train2017")
    plain, flipped = PoseSet(data), PoseSet(data, flip=True)
    for index in range(len(plain)):
        image, target = plain[index]
        image_f, target_f = flipped[index]
        torch.testing.assert_close(image_f, image.flip(-1))
        torch.testing.assert_close(flip_back(target_f["heatmaps"][None])[0], target["heatmaps"], atol=1e-5, rtol=0)
        torch.testing.assert_close(target_f["weight"][flip_permutation()], target["weight"])
