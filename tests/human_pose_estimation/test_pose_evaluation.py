"""Evaluation as HRNet's: boxes sanitised as its COCO reader, rescoring, OKS-NMS per image,
COCOeval over every image of the ground-truth file (values computed here from its formulas)."""
from __future__ import annotations

import numpy as np
import pytest
from pycocotools.coco import COCO

from active_learning.labels.keypoints import clean_box
from human_pose_estimation.coco import read_split
from human_pose_estimation.metrics import OKS_SIGMAS, KeypointEvaluator, oks, oks_nms
from pose_fixtures import read_json, write_json, write_tiny_coco


@pytest.mark.parametrize("box, expected", [
    ((-10, 5, 50, 30), (0, 5, 49, 29)),     # x1 clipped to 0; x2 = x1 + w - 1 from the clipped x1
    ((90, 70, 30, 20), (90, 70, 9, 9)),     # x2, y2 clipped to the last pixel (99, 79)
    ((10, 10, 0, 20), (10, 10, 0, 19)),     # no width: kept, as HRNet keeps it (crop from h)
    ((10.5, 3.25, 20.5, 8), (10.5, 3.25, 19.5, 7)),
    ((120, 10, 5, 5), None),                # right of the image: x2 = 99 < x1
    ((10, 90, 5, 5), None),                 # below it
    ((10, 10, 1, 1), None),                 # nothing left to crop
])
def test_boxes_are_sanitised_as_hrnets_coco_reader(box, expected):
    cleaned = clean_box(box, width=100, height=80)
    if expected is None:
        assert cleaned is None
    else:
        np.testing.assert_allclose(cleaned, expected)


def test_the_reader_keeps_the_sanitised_box_and_skips_zero_areas(tmp_path):
    root = write_tiny_coco(tmp_path / "coco", train=4, val=1)
    path = root / "annotations" / "person_keypoints_train2017.json"
    document = read_json(path)
    notes = document["annotations"]
    size = {image["id"]: (image["width"], image["height"]) for image in document["images"]}
    width, height = size[notes[0]["image_id"]]
    notes[0]["bbox"] = [-7.0, 2.0, 40.0, height + 10.0]
    notes[1]["area"] = 0
    write_json(path, document)
    with pytest.warns(UserWarning, match=r"skipped 1 person\(s\) \(zero area\)"):
        data = read_split(root, "train2017")
    by_id = {person.annotation_id: person for person in data.persons}
    np.testing.assert_allclose(by_id[notes[0]["id"]].box, (0, 2, 39, height - 1 - 2))
    assert notes[1]["id"] not in by_id


def _person(offset: float = 0.0, joint: int = 5) -> np.ndarray:
    keypoints = np.stack([np.linspace(10, 90, 17), np.linspace(20, 180, 17), np.ones(17)], axis=1)
    keypoints[joint, 0] += offset
    return keypoints


def test_oks_is_hrnets_formula():
    reference, moved = _person(), _person(offset=3.0, joint=5)
    area_a, area_b = 4000.0, 6000.0
    variance = (2 * OKS_SIGMAS[5]) ** 2
    expected = (16 + np.exp(-9.0 / variance / ((area_a + area_b) / 2 + np.spacing(1)) / 2)) / 17
    np.testing.assert_allclose(oks(reference, moved[None], area_a, np.array([area_b])), [expected])
    assert expected < 1


def test_oks_nms_keeps_the_best_and_drops_repeats_above_the_threshold():
    a, near, far = _person(), _person(offset=3.0), _person(offset=0.0) + [100, 0, 0]
    keypoints = np.stack([near, a, far])
    areas = np.full(3, 4000.0)
    overlap = oks(a, near[None], 4000.0, areas[:1])[0]
    assert 0.9 < overlap < 1
    # a (score 0.9) beats its repeat `near` (0.8); `far` does not overlap: kept, best first
    assert oks_nms(keypoints, np.array([0.8, 0.9, 0.7]), areas, 0.9) == [1, 2]
    # an OKS equal to the threshold stays (HRNet keeps oks <= thresh)
    assert oks_nms(keypoints, np.array([0.8, 0.9, 0.7]), areas, overlap) == [1, 0, 2]
    # equal scores: the later index first, as HRNet's argsort()[::-1]
    assert oks_nms(keypoints, np.array([0.5, 0.5, 0.1]), areas, 0.9) == [1, 2]


def _ground_truth(persons: list[np.ndarray]) -> COCO:
    """One image per person, 200 x 200, the person's keypoints all visible."""
    coco = COCO()
    coco.dataset = {
        "images": [{"id": k + 1, "width": 200, "height": 200, "file_name": f"{k + 1}.jpg"}
                   for k in range(len(persons))],
        "annotations": [{"id": k + 1, "image_id": k + 1, "category_id": 1, "iscrowd": 0,
                         "area": 4000.0, "bbox": [5.0, 15.0, 100.0, 170.0], "num_keypoints": 17,
                         "keypoints": np.concatenate([p[:, :2], np.full((17, 1), 2.0)], 1).reshape(-1).tolist()}
                        for k, p in enumerate(persons)],
        "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}
    coco.createIndex()
    return coco


def test_oks_nms_removes_a_repeated_person_that_would_count_as_a_false_positive():
    first, second = _person(), _person() + [50, 0, 0]
    coco = _ground_truth([first, second])
    stats = {}
    for threshold in (0.9, None):
        evaluator = KeypointEvaluator(coco, oks_threshold=threshold)
        evaluator.add(1, first[:, :2], np.full(17, 1.0), area=4000.0)     # score 1.0, right
        evaluator.add(1, first[:, :2], np.full(17, 0.9), area=4000.0)     # the same person again: 0.9
        evaluator.add(2, second[:, :2], np.full(17, 0.5), area=4000.0)    # score 0.5, right
        assert len(evaluator.kept_results()) == (2 if threshold else 3)
        stats[threshold] = evaluator.compute()
    assert stats[0.9]["AP"] == pytest.approx(1.0)
    # without NMS the repeat is a false positive ranked above the second person: precision 2/3 at
    # recall 1, so AP = (1 x 51 recall points at 0.5 + 2/3 x 50) / 101
    assert stats[None]["AP"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-6)


def test_every_image_of_the_ground_truth_is_evaluated():
    first, second = _person(), _person() + [50, 0, 0]
    coco = _ground_truth([first, second])
    evaluator = KeypointEvaluator(coco)
    evaluator.add(1, first[:, :2], np.full(17, 1.0), area=4000.0)
    assert evaluator.compute()["AR"] == pytest.approx(0.5)     # the second image's person is missed
    only_first = KeypointEvaluator(coco, image_ids=[1])
    only_first.add(1, first[:, :2], np.full(17, 1.0), area=4000.0)
    assert only_first.compute()["AR"] == pytest.approx(1.0)


def test_the_task_gives_the_nms_the_crops_area_and_the_configured_thresholds(tmp_path, monkeypatch):
    import torch

    from human_pose_estimation.heatmaps import box_to_centre_size
    from human_pose_estimation.metrics import KeypointEvaluator as Evaluator
    from human_pose_estimation.task import PoseTask

    root = write_tiny_coco(tmp_path / "coco", train=2, val=2)
    train, test = read_split(root, "train2017"), read_split(root, "val2017")
    task = PoseTask(train, test, arch="hrnet_w18_small", input_size=(64, 96), flip_test=False,
                    oks_threshold=0.7, in_vis_threshold=0.1, progress=False)
    seen: list[tuple] = []
    original_add = Evaluator.add

    def record(self, image_id, joints, maxima, box_score=1.0, area=1.0):
        seen.append((self.oks_threshold, self.in_vis_thre, area))
        original_add(self, image_id, joints, maxima, box_score, area)

    monkeypatch.setattr(Evaluator, "add", record)
    loader = torch.utils.data.DataLoader(task.test_set, batch_size=8, collate_fn=task.collate_fn)
    task.evaluate(task.build_model(), loader, torch.device("cpu"))
    expected = [float(np.prod(box_to_centre_size(person.box, 64 / 96)[1])) for person in test.persons]
    assert [area for *_, area in seen] == pytest.approx(expected)
    assert {(o, v) for o, v, _ in seen} == {(0.7, 0.1)}
