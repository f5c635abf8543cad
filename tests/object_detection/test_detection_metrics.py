"""VOC AP: a hand-built case with known precision / recall, and agreement with pycocotools."""
from __future__ import annotations

import numpy as np
import pytest

from object_detection.metrics import DetectionEvaluator, average_precision, box_iou

A, B, C = 1, 2, 3


def _hand_case() -> DetectionEvaluator:
    """Class A: 3 boxes (+1 difficult) in two images; B: 1 box; C: no ground truth.

    A's detections by score: TP (A1), TP (A3), duplicate of A1 (FP), on the difficult box
    (ignored), nowhere (FP); A2 is never found. Recall 1/3, 2/3, 2/3, -, 2/3; precision 1, 1,
    2/3, -, 1/2. B: an FP ranked above a TP: recall 0, 1 with precision 0, 1/2.
    """
    evaluator = DetectionEvaluator(["a", "b", "c"])
    gt1 = (np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]), np.array([A, A, A]),
           np.array([False, False, True]))
    gt2 = (np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([A, B]), np.array([False, False]))
    det1 = (np.array([[0, 0, 10, 10], [0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 30], [60, 60, 70, 70]]),
            np.array([0.9, 0.7, 0.6, 0.95, 0.3]), np.array([A, A, A, B, C]))
    det2 = (np.array([[0, 0, 10, 10.5], [50, 50, 60, 60], [21, 21, 31, 31]]),
            np.array([0.8, 0.5, 0.4]), np.array([A, A, B]))
    evaluator.add(det1, gt1)
    evaluator.add(det2, gt2)
    return evaluator


def test_hand_built_case():
    results = _hand_case().compute()
    # A: 11-point: recall >= t reaches precision 1 up to t = 0.6 (7 of 11 points), 0 above 2/3.
    assert results["AP_a"] == pytest.approx(7 / 11)
    assert results["AP_b"] == pytest.approx(0.5)
    assert np.isnan(results["AP_c"])             # no ground truth: undefined, not 0
    assert results["mAP"] == pytest.approx((7 / 11 + 0.5) / 2)
    # area: A's envelope is 1 up to recall 2/3; B's is 1/2 up to recall 1
    assert results["mAP_area"] == pytest.approx((2 / 3 + 0.5) / 2)


def test_average_precision_formulas():
    recall = np.array([0.2, 0.45, 0.45, 0.65])
    precision = np.array([1.0, 1.0, 2 / 3, 0.75])
    # envelope: 1 up to 0.45, then 0.75 up to 0.65: area 0.45 + 0.2 * 0.75
    assert average_precision(recall, precision, eleven_point=False) == pytest.approx(0.6)
    # t = 0..0.4: 1 (5 points); t = 0.5, 0.6: 0.75; t >= 0.7: 0
    assert average_precision(recall, precision, eleven_point=True) == pytest.approx((5 + 1.5) / 11)


def test_iou_uses_continuous_coordinates():
    assert box_iou(np.array([0, 0, 10, 10.0]), np.array([[5, 0, 15, 10.0]]))[0] == pytest.approx(50 / 150)


def test_a_perfect_detector_scores_one_and_no_detection_zero():
    evaluator = DetectionEvaluator(["a"])
    gt = (np.array([[0, 0, 10, 10], [20, 20, 40, 40]]), np.array([A, A]), np.array([False, False]))
    evaluator.add((gt[0], np.array([0.9, 0.8]), gt[1]), gt)
    assert evaluator.compute()["mAP"] == pytest.approx(1.0)
    empty = DetectionEvaluator(["a"])
    empty.add((np.zeros((0, 4)), np.zeros(0), np.zeros(0)), gt)
    assert empty.compute()["mAP"] == 0.0 and empty.compute()["mAP_area"] == 0.0


def _random_case(seed: int):
    """Ground truth in separate grid cells, jittered detections, duplicates, false positives,
    difficult boxes, arranged where VOC's and COCO's matching rules agree: a detection overlaps
    at most one box (VOC takes the best box even if taken, COCO the best free one), and a
    difficult box has at most one detection (VOC ignores every detection of it, COCO only one)."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(6):
        gt_boxes, gt_labels, difficult, boxes, scores, labels = [], [], [], [], [], []
        for cell in range(9):
            x, y = 100 * (cell % 3), 100 * (cell // 3)
            if rng.random() < 0.6:
                box = np.array([x + rng.uniform(0, 20), y + rng.uniform(0, 20), 0, 0])
                box[2:] = box[:2] + rng.uniform(30, 60, 2)
                label = int(rng.integers(1, 4))
                hard = rng.random() < 0.15
                gt_boxes.append(box), gt_labels.append(label), difficult.append(hard)
                for _ in range(int(rng.integers(0, 2 if hard else 3))):   # 0-2 detections of it
                    boxes.append(box + rng.normal(0, 6, 4)), labels.append(label if rng.random() < 0.85 else 1)
                    scores.append(rng.random())
            if rng.random() < 0.3:                                 # a false positive in the cell
                corner = np.array([x + 60, y + 60])
                boxes.append(np.concatenate([corner, corner + 30])), labels.append(int(rng.integers(1, 4)))
                scores.append(rng.random())
        images.append(((np.array(boxes).reshape(-1, 4), np.array(scores), np.array(labels, dtype=int)),
                       (np.array(gt_boxes).reshape(-1, 4), np.array(gt_labels, dtype=int), np.array(difficult))))
    return images


def _pycocotools_ap(images, recall_thresholds: np.ndarray) -> dict[int, float]:
    """Per-class AP at IoU 0.5 from pycocotools, with difficult boxes as its "ignore" boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class DifficultAsIgnored(COCOeval):
        def _prepare(self):
            super()._prepare()
            for gts in self._gts.values():
                for gt in gts:
                    gt["ignore"] = int(gt["difficult"])

    annotations, detections = [], []
    for image_id, ((boxes, scores, labels), (gt_boxes, gt_labels, difficult)) in enumerate(images, start=1):
        for box, label, hard in zip(gt_boxes, gt_labels, difficult):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": [float(box[0]), float(box[1]), float(w), float(h)], "area": float(w * h),
                                "iscrowd": 0, "difficult": int(hard)})
        for box, score, label in zip(boxes, scores, labels):
            detections.append({"image_id": image_id, "category_id": int(label), "score": float(score),
                               "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    gt = COCO()
    gt.dataset = {"images": [{"id": i} for i in range(1, len(images) + 1)],
                  "categories": [{"id": k} for k in (1, 2, 3)], "annotations": annotations}
    gt.createIndex()
    evaluation = DifficultAsIgnored(gt, gt.loadRes(detections), iouType="bbox")
    evaluation.params.iouThrs = np.array([0.5])
    evaluation.params.recThrs = recall_thresholds
    evaluation.params.maxDets = [10_000]
    evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, 0]          # [R, K]
    return {k: float(precision[:, index].mean()) for index, k in enumerate((1, 2, 3))}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pycocotools(seed):
    images = _random_case(seed)
    evaluator = DetectionEvaluator(["a", "b", "c"])
    for detections, ground_truth in images:
        evaluator.add(detections, ground_truth)
    # COCO's precision at recall threshold r is the envelope's value at the first recall >= r:
    # with the 11 thresholds 0, 0.1, ..., 1 that is VOC2007's 11-point AP exactly ...
    coco_11 = _pycocotools_ap(images, np.linspace(0, 1, 11))
    # ... and with a fine grid, its mean is the area under the envelope (to the grid's step).
    coco_area = _pycocotools_ap(images, np.linspace(0, 1, 10_001))
    for label in (1, 2, 3):
        ap11, area = evaluator.class_ap(label)
        assert ap11 == pytest.approx(coco_11[label], abs=1e-9)
        assert area == pytest.approx(coco_area[label], abs=2e-4)


def test_a_false_detection_on_an_image_without_objects_lowers_ap():
    """Image 1: one box of A, found (0.9). Image 2: no object, one detection of A (0.95).

    Without image 2: AP 1. With it: the FP ranks first: recall 0, 1 at precision 0, 1/2, so
    every 11-point precision is 1/2 and the area is 1/2.
    """
    gt = (np.array([[0, 0, 10, 10]]), np.array([A]), np.array([False]))
    found = (np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([A]))
    alone = DetectionEvaluator(["a"])
    alone.add(found, gt)
    assert alone.compute()["mAP"] == pytest.approx(1.0)
    both = DetectionEvaluator(["a"])
    both.add(found, gt)
    both.add((np.array([[5, 5, 20, 20]]), np.array([0.95]), np.array([A])),
             (np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)))
    results = both.compute()
    assert results["mAP"] == pytest.approx(0.5) and results["mAP_area"] == pytest.approx(0.5)
