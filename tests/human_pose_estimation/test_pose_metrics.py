"""OKS AP with pycocotools, person rescoring, per-person loss, heatmap uncertainty, image pooling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from active_learning.loop.units import GroupedUnits
from active_learning.strategies.uncertainty import heatmap_uncertainty
from human_pose_estimation.coco import read_split
from human_pose_estimation.metrics import KeypointEvaluator, person_score
from human_pose_estimation.task import person_losses
from pose_fixtures import write_tiny_coco


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    root = write_tiny_coco(tmp_path_factory.mktemp("coco"), train=2, val=6)
    return read_split(root, "val2017")


def _evaluate(val, shift: float, confidence: float = 1.0) -> dict:
    evaluator = KeypointEvaluator(val.coco, [image.image_id for image in val.images])
    for person in val.persons:
        joints = person.keypoints[:, :2] + shift
        evaluator.add(val.images[person.image].image_id, joints, np.full(17, confidence))
    return evaluator.compute()


def test_oks_ap_is_one_for_the_ground_truth_and_falls_as_joints_move(val):
    exact = _evaluate(val, 0.0)
    assert exact["AP"] == pytest.approx(1.0) and exact["AR"] == pytest.approx(1.0)
    near, far = _evaluate(val, 2.0), _evaluate(val, 8.0)
    assert 0 <= far["AP"] < near["AP"] < 1.0


def test_no_result_is_ap_zero(val):
    assert KeypointEvaluator(val.coco).compute()["AP"] == 0.0


def test_person_score_is_the_mean_confident_maximum_times_the_box_score():
    assert person_score(np.array([0.9, 0.1, 0.5, 0.2]), box_score=0.5) == pytest.approx(0.5 * (0.9 + 0.5) / 2)
    assert person_score(np.array([0.1, 0.2])) == 0.0


def test_person_losses_match_a_hand_computation():
    heatmaps = torch.zeros(2, 2, 2, 2)
    target = torch.zeros(2, 2, 2, 2)
    heatmaps[0, 0, 0, 0] = 1.0           # person 0, joint 0: one cell off by 1
    heatmaps[0, 1] = 3.0                 # joint 1 is unlabeled: weight 0, ignored
    target[1, 1, 1, 1] = 1.0             # person 1 misses its joint 1 peak
    weight = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    losses = person_losses(heatmaps, target, weight)
    # 0.5 x mean over 2 joints x 4 cells of the squared weighted error
    np.testing.assert_allclose(losses.numpy(), [0.5 * 1 / 8, 0.5 * 1 / 8])
    assert losses.mean() == pytest.approx(0.5 * torch.nn.functional.mse_loss(
        heatmaps * weight[:, :, None, None], target * weight[:, :, None, None]).item())   # HRNet's batch loss


def test_heatmap_uncertainty_is_one_minus_the_mean_peak():
    heatmaps = torch.zeros(2, 3, 4, 4)
    heatmaps[0, 0, 1, 1], heatmaps[0, 1, 2, 2], heatmaps[0, 2, 0, 0] = 0.9, 0.6, 1.4   # clamped to 1
    heatmaps[1] = -0.2
    np.testing.assert_allclose(heatmap_uncertainty(heatmaps).numpy(), [1 - (0.9 + 0.6 + 1.0) / 3, 1.0], rtol=1e-6)


def test_an_image_scores_as_its_most_uncertain_person_by_default():
    units = GroupedUnits(np.array([0, 0, 0, 2, 2]), n_units=3, sample_label="person")
    scores = np.array([0.1, 0.7, 0.4, 0.2, 0.3])
    ids, pooled = units.unit_scores(np.arange(5), scores)
    np.testing.assert_array_equal(ids, [0, 2])
    np.testing.assert_allclose(pooled, [0.7, 0.3])
    np.testing.assert_allclose(units.unit_scores(np.arange(5), scores, "mean")[1], [0.4, 0.25])
    np.testing.assert_allclose(units.unit_scores(np.arange(5), scores, "sum")[1], [1.2, 0.5])
    assert units.cost(np.array([0, 2])) == {"n_persons": 5}
    assert not units.selectable()[1]
