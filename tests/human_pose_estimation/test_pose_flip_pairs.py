"""The pose task's left/right flip pairs are COCO's, by joint name (written out here, not read
from the library), and its flip function swaps exactly those heatmap channels."""
from __future__ import annotations

import torch

from active_learning.labels.keypoints import COCO_KEYPOINT_NAMES
from human_pose_estimation import heatmaps as heatmaps_module
from human_pose_estimation import task as task_module

# COCO's 17 person keypoints in their annotation order (person_keypoints_*.json "keypoints").
COCO_ORDER = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO_LEFT_RIGHT = {("left_eye", "right_eye"), ("left_ear", "right_ear"),
                   ("left_shoulder", "right_shoulder"), ("left_elbow", "right_elbow"),
                   ("left_wrist", "right_wrist"), ("left_hip", "right_hip"),
                   ("left_knee", "right_knee"), ("left_ankle", "right_ankle")}
# Where each joint goes under a horizontal flip, by name (the nose stays).
MIRROR = {"nose": "nose", **{left: right for left, right in COCO_LEFT_RIGHT},
          **{right: left for left, right in COCO_LEFT_RIGHT}}


def test_the_library_keeps_cocos_keypoint_order():
    assert tuple(COCO_KEYPOINT_NAMES) == COCO_ORDER
    assert len(MIRROR) == 17


def test_flip_pairs_are_cocos_left_right_pairs_by_name():
    pairs = heatmaps_module.FLIP_PAIRS
    named = {(COCO_ORDER[a], COCO_ORDER[b]) for a, b in pairs}
    # Each pair once, left joint first, and exactly COCO's eight.
    assert len(pairs) == 8 and named == COCO_LEFT_RIGHT
    # The permutation the data pipeline and the flip test use, by name.
    order = heatmaps_module.flip_permutation(17)
    assert [COCO_ORDER[j] for j in order] == [MIRROR[name] for name in COCO_ORDER]


def test_the_tasks_flip_back_swaps_exactly_the_left_right_channels_and_mirrors_the_width():
    flip_back = task_module.flip_back          # what the task's flip test calls
    batch, height, width = 2, 3, 5
    heatmaps = torch.arange(batch * 17 * height * width, dtype=torch.float32).reshape(
        batch, 17, height, width)              # every value distinct
    restored = flip_back(heatmaps)
    assert restored.shape == heatmaps.shape
    for b in range(batch):
        for j, name in enumerate(COCO_ORDER):
            source = COCO_ORDER.index(MIRROR[name])
            for y in range(height):
                for x in range(width):
                    assert restored[b, j, y, x] == heatmaps[b, source, y, width - 1 - x], (
                        b, name, y, x)
    # Flipping twice is the identity.
    torch.testing.assert_close(flip_back(restored), heatmaps)
