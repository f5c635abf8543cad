"""Crops, heatmap targets, decoding and flipping (human_pose_estimation/heatmaps.py), in HRNet's
convention (the default; values derived here from deep-high-resolution-net.pytorch's formulas)
and in the aligned option."""
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
    shift_right,
    to_image,
)

G = lambda d2: np.exp(-d2 / 8.0)  # noqa: E731  the target's value d2 squared cells from its centre, sigma 2


def test_box_to_centre_size_pads_to_the_aspect_then_enlarges():
    centre, size = box_to_centre_size((10, 20, 30, 80))            # tall: width grows to 60
    np.testing.assert_allclose(centre, [25, 60])
    np.testing.assert_allclose(size, [60 * 1.25, 80 * 1.25])
    _, size = box_to_centre_size((0, 0, 90, 40))                    # wide: height grows to 120
    np.testing.assert_allclose(size, [90 * 1.25, 120 * 1.25])


def _hrnet_affine(centre, width, rotation, output_size):
    """HRNet's get_affine_transform from its definition: the centre goes to (W/2, H/2) and the
    point half a width above it, turned by the rotation, to the point half a crop width above."""
    import cv2

    angle = np.deg2rad(rotation)
    up = np.array([0.5 * width * np.sin(angle), -0.5 * width * np.cos(angle)])
    out = np.array([output_size[0] / 2, output_size[1] / 2])

    def third(a, b):
        return b + np.array([-(a - b)[1], (a - b)[0]])

    src = np.array([centre, centre + up, third(centre, centre + up)], np.float32)
    dst = np.array([out, out + [0, -0.5 * output_size[0]], third(out, out + [0, -0.5 * output_size[0]])],
                   np.float32)
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rotation", [0.0, 30.0, -70.0])
def test_the_crop_is_hrnets_affine_transform(rotation):
    centre, size = np.array([100.0, 50.0]), np.array([60.0, 80.0])
    np.testing.assert_allclose(crop_transform(centre, size, (192, 256), rotation),
                               _hrnet_affine(centre, 60.0, rotation, (192, 256)), atol=1e-4)


def test_crop_transform_maps_the_region_onto_the_crop():
    centre, size = np.array([100.0, 50.0]), np.array([60.0, 80.0])
    corners = np.array([[70.0, 10.0], [130.0, 90.0], [100.0, 50.0]])
    for convention, middle in (("hrnet", [96, 128]), ("aligned", [95.5, 127.5])):
        matrix = crop_transform(centre, size, (192, 256), convention=convention)
        mapped = corners @ matrix[:, :2].T + matrix[:, 2]
        # 60 image pixels span the 192-pixel crop: 3.2 crop pixels per image pixel.
        np.testing.assert_allclose(mapped[2], middle)
        np.testing.assert_allclose(mapped[1] - mapped[0], [192, 256])
    rotated = crop_transform(centre, size, (192, 256), rotation=90)
    up = np.array([100.0, 40.0]) @ rotated[:, :2].T + rotated[:, 2]  # 10 px above the centre
    np.testing.assert_allclose(up, [96 - 32, 128], atol=1e-9)       # turns to 32 px left of it


def test_crop_to_heatmap_in_each_convention():
    points = np.array([[8.0, 12.0]])
    np.testing.assert_allclose(crop_to_heatmap(points, 4), [[2.0, 3.0]])                  # x / 4
    np.testing.assert_allclose(crop_to_heatmap(points, 4, "aligned"), [[1.625, 2.625]])   # (x - 1.5) / 4


def test_hrnet_targets_sit_on_the_nearest_cell_cut_to_three_sigma():
    """generate_target: mu = int(x + 0.5), the Gaussian on cells int(mu - 6) .. int(mu + 7) - 1,
    weight 1 for a labeled joint unless that window lies wholly off the 12 x 16 map."""
    joints = np.array([
        [5.4, 3.6],    # 0: centre cell (5, 4)
        [2.0, 3.0],    # 1: window cells 0 .. 8 in x
        [-0.6, 5.0],   # 2: int(-0.1) = 0 (toward zero, not floor): the peak on cell 0
        [-5.0, 3.0],   # 3: mu = int(-4.5) = -4: off the map, its window reaches cells 0 .. 2
        [-8.0, 3.0],   # 4: mu = -7: window ends at int(0) = 0 (exclusive): weight 1, empty map
        [-9.0, 3.0],   # 5: mu = -8: window end int(-1) < 0: weight 0
        [17.0, 3.0],   # 6: mu = int(17.5) = 17: window starts at 11 < 12: weight 1
        [18.0, 3.0],   # 7: window starts at 12: weight 0
        [4.0, 4.0],    # 8: unlabeled
    ])
    heatmaps, weight = encode(joints, np.array([2, 1, 2, 2, 2, 2, 2, 2, 0]), (12, 16), sigma=2.0)
    assert heatmaps.shape == (9, 16, 12)
    np.testing.assert_array_equal(weight, [1, 1, 1, 1, 1, 0, 1, 0, 0])
    assert heatmaps[0, 4, 5] == pytest.approx(1.0)
    assert heatmaps[0, 4, 7] == pytest.approx(G(4))
    assert heatmaps[0, 4, 11] == pytest.approx(G(36))             # 6 cells away: still in the window
    assert heatmaps[0, 10, 5] == pytest.approx(G(36)) and heatmaps[0, 11, 5] == 0   # 7 cells: cut
    assert heatmaps[1, 3, 8] == pytest.approx(G(36)) and heatmaps[1, 3, 9] == 0
    assert heatmaps[2, 5, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(heatmaps[3, 3, :4], [G(16), G(25), G(36), 0], rtol=1e-6)
    assert not heatmaps[4].any()
    assert heatmaps[6, 3, 11] == pytest.approx(G(36)) and heatmaps[6, 3, :11].sum() == 0
    assert not heatmaps[5].any() and not heatmaps[7].any() and not heatmaps[8].any()


def test_aligned_targets_peak_at_the_joint_with_zero_weight_outside():
    joints = np.array([[5.0, 3.0], [2.5, 7.0], [30.0, 3.0], [4.0, 4.0], [-0.6, 3.0]])
    heatmaps, weight = encode(joints, np.array([2, 1, 2, 0, 2]), (12, 16), sigma=2.0, convention="aligned")
    np.testing.assert_array_equal(weight, [1, 1, 0, 0, 0])       # off the map; unlabeled; off by 0.6 cell
    assert heatmaps[0, 3, 5] == pytest.approx(1.0)
    assert heatmaps[0, 3, 11] == pytest.approx(G(36)) and heatmaps[0, 12, 5] == pytest.approx(G(81))   # uncut
    assert heatmaps[1, 7, 2] == pytest.approx(G(0.25))
    assert not heatmaps[2].any() and not heatmaps[3].any()


def test_hrnet_decode_moves_a_quarter_cell_only_when_1_lt_x_lt_w_minus_1_and_1_lt_y_lt_h_minus_1():
    heatmaps = torch.zeros(1, 5, 8, 10)
    heatmaps[0, 0, 3, 5], heatmaps[0, 0, 3, 6], heatmaps[0, 0, 3, 4] = 1.0, 0.6, 0.2   # right is higher
    heatmaps[0, 0, 2, 5], heatmaps[0, 0, 4, 5] = 0.5, 0.1                              # up is higher
    heatmaps[0, 1, 3, 1], heatmaps[0, 1, 3, 2], heatmaps[0, 1, 2, 1] = 0.9, 0.5, 0.4   # x = 1: no move
    heatmaps[0, 2, 1, 5], heatmaps[0, 2, 1, 6], heatmaps[0, 2, 2, 5] = 0.9, 0.5, 0.4   # y = 1: no move
    heatmaps[0, 3, 6, 2], heatmaps[0, 3, 6, 3], heatmaps[0, 3, 5, 2] = 0.9, 0.5, 0.4   # x = 2, y = 6: moves
    heatmaps[0, 4] = -0.1                                                              # nothing found
    coordinates, maxima = decode(heatmaps)
    np.testing.assert_allclose(coordinates[0].numpy(), [[5.25, 2.75], [1, 3], [5, 1], [2.25, 5.75], [0, 0]])
    np.testing.assert_allclose(maxima[0].numpy(), [1.0, 0.9, 0.9, 0.9, -0.1], rtol=1e-6)
    # the aligned option moves on each axis that has both neighbours
    aligned, _ = decode(heatmaps, "aligned")
    np.testing.assert_allclose(aligned[0, :3].numpy(), [[5.25, 2.75], [1.25, 2.75], [5.25, 1.25]])


@pytest.mark.parametrize("convention", ["hrnet", "aligned"])
def test_encode_then_decode_back_to_the_image_within_a_pixel(convention):
    rng = np.random.default_rng(0)
    for _ in range(20):
        box = (rng.uniform(0, 200), rng.uniform(0, 100), rng.uniform(20, 120), rng.uniform(40, 200))
        centre, size = box_to_centre_size(box)
        matrix = crop_transform(centre, size, (192, 256), rotation=rng.uniform(-30, 30), convention=convention)
        joints = centre + (rng.uniform(-0.3, 0.3, (17, 2)) * box[2:])     # inside the crop at any rotation
        in_cells = crop_to_heatmap(joints @ matrix[:, :2].T + matrix[:, 2], 4, convention)
        heatmaps, weight = encode(in_cells, np.full(17, 2), (48, 64), sigma=2.0, convention=convention)
        assert weight.all()
        coordinates, _ = decode(torch.from_numpy(heatmaps)[None], convention)
        # the arg-max (and its quarter move) lands within half a cell of the true position
        assert np.abs(coordinates[0].numpy() - in_cells).max() <= 0.5 + 1e-6
        back = to_image(coordinates[0].numpy().astype(np.float64), matrix, 4, convention)
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


def test_shift_heatmap_moves_columns_right_and_keeps_the_first():
    heatmaps = torch.arange(4.0).reshape(1, 1, 1, 4)
    np.testing.assert_array_equal(shift_right(heatmaps).flatten().numpy(), [0, 0, 1, 2])


LEVEL = 1.01 / 255 / 0.224    # one 8-bit level after normalisation: the warp's fixed-point rounding


def _sets(tmp_path, convention):
    from human_pose_estimation.coco import read_split
    from human_pose_estimation.data import PoseSet
    from pose_fixtures import write_tiny_coco

    data = read_split(write_tiny_coco(tmp_path / "coco", train=3, val=1), "train2017")
    return (PoseSet(data, convention=convention), PoseSet(data, flip=True, convention=convention))


def test_an_aligned_flipped_crop_gives_exactly_the_flipped_targets(tmp_path):
    """With cells aligned to crop pixels, flipping the crop and flipping the heatmaps are the same
    operation: no one-cell shift as in HRNet's SHIFT_HEATMAP."""
    plain, flipped = _sets(tmp_path, "aligned")
    for index in range(len(plain)):
        image, target = plain[index]
        image_f, target_f = flipped[index]
        torch.testing.assert_close(image_f, image.flip(-1), atol=LEVEL, rtol=0)
        torch.testing.assert_close(flip_back(target_f["heatmaps"][None])[0], target["heatmaps"], atol=1e-5, rtol=0)
        torch.testing.assert_close(target_f["weight"][flip_permutation()], target["weight"])


def test_an_hrnet_flip_maps_crop_x_to_w_minus_x(tmp_path):
    """HRNet flips the image before cropping around the flipped centre: crop x becomes W - x (its
    fliplr_joints and c[0] = width - c[0] - 1), one pixel off the mirrored array."""
    plain, flipped = _sets(tmp_path, "hrnet")
    width = plain.input_size[0]
    for index in range(len(plain)):
        image, target = plain[index]
        image_f, target_f = flipped[index]
        expected = np.array([[-1.0, 0, width], [0, 1, 0]]) @ np.vstack([target["matrix"].numpy(), [0, 0, 1]])
        np.testing.assert_allclose(target_f["matrix"].numpy(), expected, atol=1e-9)
        torch.testing.assert_close(image_f[..., 1:], image.flip(-1)[..., :-1], atol=LEVEL, rtol=0)
        torch.testing.assert_close(target_f["weight"][flip_permutation()], target["weight"])
