"""The HRNet pose model (timm backbone, heatmap head, weights) and the synthetic stick-figure scenes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from active_learning.errors import WeightsError
from active_learning.labels.keypoints import NUM_JOINTS
from human_pose_estimation.coco import COCO_SKELETON
from human_pose_estimation.model import build_model
from synthetic.coco_keypoints import KeypointSceneConfig, annotation, compose_keypoint_scene


def test_hrnet_w32_has_the_papers_branches_and_64x48_heatmaps():
    model = build_model("hrnet_w32").eval()
    assert [(info["channels"], info["stride"]) for info in model.feature_info] == \
        [(64, 2), (32, 4), (64, 8), (128, 16), (256, 32)]
    with torch.no_grad():
        heatmaps, features = model.forward_intermediates(torch.zeros(1, 3, 256, 192))
    assert heatmaps.shape == (1, NUM_JOINTS, 64, 48)
    assert [tuple(f.shape[-2:]) for f in features] == [(128, 96), (64, 48), (32, 24), (16, 12), (8, 6)]
    assert model.final_layer.kernel_size == (1, 1) and model.final_layer.in_channels == 32
    assert 28e6 < sum(p.numel() for p in model.parameters()) < 30e6   # the paper: 28.5M


def test_weights_load_from_local_files(tmp_path):
    source = build_model("hrnet_w18_small")
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "whole.pth")
    torch.save(source.backbone.state_dict(), tmp_path / "backbone.pth")
    whole = build_model("hrnet_w18_small", weights=str(tmp_path / "whole.pth"))
    backbone = build_model("hrnet_w18_small", pretrained=str(tmp_path / "backbone.pth"))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(whole.state_dict()[key], value)
        if key.startswith("backbone."):
            torch.testing.assert_close(backbone.state_dict()[key], value)
    with pytest.raises(WeightsError, match="is it a hrnet_w32 pose model"):
        build_model("hrnet_w32", weights=str(tmp_path / "whole.pth"))
    with pytest.raises(WeightsError, match="--weights-backbone file .*none.pth: no such file"):
        build_model("hrnet_w18_small", pretrained=str(tmp_path / "none.pth"))


def test_dropout_is_only_before_the_final_layer():
    model = build_model("hrnet_w18_small", dropout=0.5).eval()
    dropouts = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Dropout2d)]
    assert dropouts == ["dropout"]


def test_scenes_follow_cocos_visibility_rules():
    config = KeypointSceneConfig(height=96, width=128, min_persons=2, max_persons=4)
    items = np.full((4, 28, 28), 200, dtype=np.uint8)
    seen = {0: 0, 1: 0, 2: 0}
    for seed in range(40):
        image, figures = compose_keypoint_scene(np.random.default_rng(seed), items, config)
        assert image.shape == (96, 128, 3)
        for figure in figures:
            x, y, w, h = figure.box
            assert x >= 0 and y >= 0 and x + w <= 128 and y + h <= 96 and w > 0 and h > 0
            labeled = figure.visibility > 0
            assert labeled.any()
            np.testing.assert_array_equal(figure.joints[~labeled], 0)          # v = 0 is (0, 0, 0)
            inside = figure.joints[labeled]
            assert (inside >= 0).all() and (inside[:, 0] <= 127).all() and (inside[:, 1] <= 95).all()
            for v in (0, 1, 2):
                seen[v] += int((figure.visibility == v).sum())
            note = annotation(figure, 1, 1)
            assert len(note["keypoints"]) == 51 and note["num_keypoints"] == int(labeled.sum())
            assert note["area"] == pytest.approx(0.5 * w * h, abs=0.01)
    assert all(count > 0 for count in seen.values())      # out of frame, occluded and visible all occur
    again, _ = compose_keypoint_scene(np.random.default_rng(3), items, config)
    np.testing.assert_array_equal(again, compose_keypoint_scene(np.random.default_rng(3), items, config)[0])


def test_a_figures_left_joints_are_on_the_image_right_when_upright():
    from synthetic.coco_keypoints import random_pose

    rng = np.random.default_rng(0)
    for _ in range(20):
        joints, _ = random_pose(rng, 140.0, np.array([100.0, 100.0]))
        for left, right in ((5, 6), (11, 12)):                  # shoulders, hips face the camera
            assert joints[left, 0] > joints[right, 0]
        assert joints[0, 1] < joints[5, 1] < joints[11, 1]     # nose above shoulders above hips
        assert max(a for pair in COCO_SKELETON for a in pair) == NUM_JOINTS
