"""Pascal VOC detection AP at IoU 0.5: the VOC2007 11-point metric and the area metric (VOC2010+).

Matching follows the VOC devkit: per class, detections in descending score order; each takes the
ground-truth box of its image with the highest IoU; at IoU >= 0.5 it is a true positive if that
box is not difficult and not yet taken, a false positive if it was taken (a duplicate), and
ignored (neither) if the box is difficult. Below 0.5: a false positive. Difficult boxes do not
count in the recall's denominator. Boxes are continuous (see ``voc.py``), so IoU has no "+1".

A class with no (non-difficult) ground truth in the test set has no defined AP: it is reported
as NaN and left out of the mean.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box [4] with boxes [M, 4] (x1, y1, x2, y2 continuous) -> [M]."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, np.finfo(np.float64).eps)


def average_precision(recall: np.ndarray, precision: np.ndarray, *, eleven_point: bool) -> float:
    """AP from the recall / precision after each detection (in score order).

    11-point: the mean over r in {0, 0.1, ..., 1} of the highest precision at recall >= r.
    Area: the area under the precision envelope (precision made non-increasing in recall).
    """
    if eleven_point:
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0.0, 1.0, 11)]))
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([0.0], precision, [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]                 # envelope: max precision to the right
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


@dataclass
class DetectionEvaluator:
    """Accumulates detections and ground truth image by image, then computes VOC AP per class.

    Labels run 1..K (``class_names[label - 1]``).
    """

    class_names: Sequence[str]
    iou_threshold: float = 0.5
    _gt: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, detections: tuple[np.ndarray, np.ndarray, np.ndarray],
            ground_truth: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """One image: detections (boxes [D, 4], scores [D], labels [D]) and ground truth
        (boxes [G, 4], labels [G], difficult bool [G]), in the same image coordinates."""
        boxes, scores, labels = (np.asarray(a) for a in detections)
        self._detections.append((boxes.reshape(-1, 4).astype(np.float64),
                                 scores.astype(np.float64).reshape(-1),
                                 labels.astype(np.int64).reshape(-1)))
        gt_boxes, gt_labels, difficult = (np.asarray(a) for a in ground_truth)
        self._gt.append((gt_boxes.reshape(-1, 4).astype(np.float64),
                         gt_labels.astype(np.int64).reshape(-1),
                         difficult.astype(bool).reshape(-1)))

    def part(self) -> tuple[list, list]:
        """What was added, per image in order: (detections, ground truth); picklable, for
        combining slices of a test set evaluated apart (``merged``)."""
        return list(self._detections), list(self._gt)

    @classmethod
    def merged(cls, class_names: Sequence[str], parts: Sequence[tuple[list, list]],
               iou_threshold: float = 0.5) -> DetectionEvaluator:
        """One evaluator holding the images of ``parts`` in order: the AP it computes is the
        AP of one evaluator fed every image in that order."""
        evaluator = cls(class_names, iou_threshold)
        for detections, ground_truth in parts:
            evaluator._detections.extend(detections)
            evaluator._gt.extend(ground_truth)
        return evaluator

    def class_ap(self, label: int) -> tuple[float, float]:
        """(11-point AP, area AP) of class ``label``; NaN without non-difficult ground truth."""
        records = []                                              # (score, image, box)
        for image, (boxes, scores, labels) in enumerate(self._detections):
            for index in np.flatnonzero(labels == label):
                records.append((scores[index], image, boxes[index]))
        positives = sum(int(((labels == label) & ~difficult).sum())
                        for _, labels, difficult in self._gt)
        if positives == 0:
            return float("nan"), float("nan")
        records.sort(key=lambda record: -record[0])
        taken = {image: np.zeros(int((labels == label).sum()), dtype=bool)
                 for image, (_, labels, _) in enumerate(self._gt)}
        true_positive = np.zeros(len(records))
        false_positive = np.zeros(len(records))
        for rank, (_, image, box) in enumerate(records):
            gt_boxes, gt_labels, difficult = self._gt[image]
            mine = gt_labels == label
            overlaps = box_iou(box, gt_boxes[mine]) if mine.any() else np.zeros(0)
            if overlaps.size == 0 or overlaps.max() < self.iou_threshold:
                false_positive[rank] = 1
                continue
            best = int(overlaps.argmax())
            if difficult[mine][best]:
                continue                                          # ignored: neither TP nor FP
            if taken[image][best]:
                false_positive[rank] = 1                          # a duplicate detection
            else:
                taken[image][best] = True
                true_positive[rank] = 1
        tp, fp = np.cumsum(true_positive), np.cumsum(false_positive)
        recall = tp / positives
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        if len(records) == 0:
            return 0.0, 0.0
        return (average_precision(recall, precision, eleven_point=True),
                average_precision(recall, precision, eleven_point=False))

    def compute(self) -> dict[str, float]:
        """``mAP`` (VOC2007 11-point), ``mAP_area``, and ``AP_<class>`` (11-point) per class."""
        results: dict[str, float] = {}
        eleven, area = [], []
        for label, name in enumerate(self.class_names, start=1):
            ap11, ap_area = self.class_ap(label)
            results[f"AP_{name}"] = ap11
            if not np.isnan(ap11):
                eleven.append(ap11)
                area.append(ap_area)
        results["mAP"] = float(np.mean(eleven)) if eleven else float("nan")
        results["mAP_area"] = float(np.mean(area)) if area else float("nan")
        return {"mAP": results.pop("mAP"), "mAP_area": results.pop("mAP_area"), **results}
