"""HRNet's half-body crop (JointsDataset.half_body_transform and the condition in __getitem__) and
its SHIFT_HEATMAP flip test, with values computed here from the reference's formulas."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from human_pose_estimation.coco import Person, PoseData, PoseImage
from human_pose_estimation.data import (
    HRNET_UPPER_BODY_PROBABILITY,
    Augmentation,
    PoseSet,
    half_body,
)
from human_pose_estimation.heatmaps import box_to_centre_size, crop_transform

UPPER = {0: (10, 10), 5: (30, 40), 6: (20, 60), 9: (0, 70)}          # 4 labeled upper-body joints
LOWER = {11: (15, 100), 12: (25, 100), 13: (15, 150), 15: (20, 200)}   # 4 labeled lower-body joints


def _keypoints(labeled: dict) -> np.ndarray:
    keypoints = np.zeros((17, 3), np.float32)
    for joint, (x, y) in labeled.items():
        keypoints[joint] = (x, y, 2)
    return keypoints


def test_the_upper_body_is_drawn_as_hrnets_randn_below_a_half():
    assert HRNET_UPPER_BODY_PROBABILITY == pytest.approx(0.5 * (1 + math.erf(0.5 / math.sqrt(2))))
    assert HRNET_UPPER_BODY_PROBABILITY == pytest.approx(0.6915, abs=1e-4)
    assert Augmentation().upper_body_probability == HRNET_UPPER_BODY_PROBABILITY


def test_half_body_centres_on_the_joints_mean_and_pads_their_extent_1_5x():
    keypoints = _keypoints({**UPPER, **LOWER})
    centre, size = half_body(keypoints, 0.75, upper_first=True)
    np.testing.assert_allclose(centre, [15, 45])           # the mean, not the extent's middle (15, 40)
    np.testing.assert_allclose(size, [45 * 1.5, 60 * 1.5])  # 30 x 60 padded to 3:4 -> 45 x 60
    centre, size = half_body(keypoints, 0.75, upper_first=False)
    np.testing.assert_allclose(centre, [18.75, 137.5])
    np.testing.assert_allclose(size, [75 * 1.5, 100 * 1.5])


def test_half_body_falls_back_to_the_other_part_below_three_joints():
    two_upper = {0: UPPER[0], 5: UPPER[5]}
    centre, _ = half_body(_keypoints({**two_upper, **LOWER}), 0.75, upper_first=True)
    np.testing.assert_allclose(centre, [18.75, 137.5])                    # the lower body instead
    two_lower = {11: LOWER[11], 12: LOWER[12]}
    centre, _ = half_body(_keypoints({**UPPER, **two_lower}), 0.75, upper_first=False)
    np.testing.assert_allclose(centre, [15, 45])                          # the upper body instead
    centre, size = half_body(_keypoints({**two_upper, **two_lower}), 0.75, upper_first=False)
    np.testing.assert_allclose(centre, [20, 25])                          # 2 upper joints still crop
    np.testing.assert_allclose(size, [22.5 * 1.5, 30 * 1.5])           # 20 x 30 padded to 22.5 x 30
    assert half_body(_keypoints({0: UPPER[0], 11: LOWER[11]}), 0.75, upper_first=True) is None


@pytest.mark.parametrize("labeled, expect_half", [(8, False), (9, True)])
def test_a_half_body_crop_needs_more_than_8_labeled_joints(tmp_path, labeled, expect_half):
    path = tmp_path / "person.png"
    Image.fromarray(np.zeros((240, 120, 3), np.uint8)).save(path)
    joints = {**UPPER, **LOWER, 7: (25, 50), 14: (25, 150)}               # 10 labeled joints
    kept = dict(list(joints.items())[:labeled])
    box = (0.0, 0.0, 60.0, 220.0)
    data = PoseData([PoseImage(path, "person.png", 1, 120, 240)], [Person(0, box, _keypoints(kept))])
    augmentation = Augmentation(scale_factor=0.0, rotation_factor=0.0, flip=False,
                                half_body_probability=1.0, upper_body_probability=1.0)
    sample = PoseSet(data, input_size=(48, 64), augmentation=augmentation)[0]
    if expect_half:
        centre, size = half_body(_keypoints(kept), 0.75, upper_first=True)
    else:
        centre, size = box_to_centre_size(box, 0.75)
    np.testing.assert_allclose(sample[1]["matrix"].numpy(), crop_transform(centre, size, (48, 64)), atol=1e-9)


@pytest.mark.parametrize("convention", ["hrnet", "aligned"])
def test_the_flip_test_shifts_the_flipped_heatmaps_one_cell_in_hrnets_convention(convention):
    from human_pose_estimation.task import PoseTask

    class Channel(torch.nn.Module):       # heatmaps: the image's first channel, for every joint
        def forward(self, images):
            return images[:, :1].repeat(1, 17, 1, 1)

    images = torch.rand(2, 3, 4, 5)
    task = SimpleNamespace(flip_test=True, convention=convention)
    heatmaps = PoseTask.predict_heatmaps(task, Channel(), images)
    plain = images[:, :1].repeat(1, 17, 1, 1)
    if convention == "hrnet":   # the flipped view, flipped back, is the plain one: shifted right
        expected = (plain + torch.cat([plain[..., :1], plain[..., :-1]], dim=-1)) / 2
    else:
        expected = plain
    torch.testing.assert_close(heatmaps, expected)
