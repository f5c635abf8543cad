"""OKS average precision with pycocotools' ``COCOeval(iouType="keypoints")``, after HRNet's
rescoring and OKS non-maximum suppression (deep-high-resolution-net.pytorch, lib/dataset/coco.py
``evaluate`` and lib/nms/nms.py ``oks_nms``).

Each evaluated person becomes one COCO result: its 17 decoded joints in image coordinates, each
with its heatmap maximum as the third value, and the score HRNet gives it: the mean of the
maxima above ``in_vis_thre`` (TEST.IN_VIS_THRE, 0.2) times the box score (1 for ground-truth
boxes). Then, image by image, OKS-NMS at ``oks_threshold`` (TEST.OKS_THRE, 0.9): the best-scored
person is kept and every other whose OKS with it exceeds the threshold is dropped, and so on.
With ground-truth boxes this still drops a person whose predicted skeleton repeats a
better-scored one (two boxes around the same figure in a crowd). As in HRNet, COCOeval runs over
every image of the ground-truth file.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

# COCO's per-joint OKS constants (the keypoint sigmas of pycocotools and of HRNet's oks_iou).
OKS_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                       .89, .89]) / 10.0
# COCOeval's keypoint stats, in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")


def person_score(maxima: np.ndarray, box_score: float = 1.0, in_vis_thre: float = 0.2) -> float:
    """HRNet's rescoring: the mean heatmap maximum over joints above
    ``in_vis_thre``, x box score."""
    maxima = np.asarray(maxima, dtype=np.float64)
    confident = maxima[maxima > in_vis_thre]
    return float(confident.mean() * box_score) if len(confident) else 0.0


def oks(reference: np.ndarray, others: np.ndarray, reference_area: float,
        areas: np.ndarray, sigmas: np.ndarray = OKS_SIGMAS) -> np.ndarray:
    """HRNet's ``oks_iou``: the OKS of each of ``others`` [N, J, 2+] with ``reference`` [J, 2+].

    Per joint ``e = d^2 / (2 sigma)^2 / ((a_ref + a_other) / 2) / 2`` (``d`` the distance, ``a``
    the two persons' areas), OKS the mean of ``exp(-e)`` over every joint (visibility is not
    read, as in HRNet's call at evaluation). Returns float [N].
    """
    reference = np.asarray(reference, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64).reshape(-1, *reference.shape)
    variances = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    squared = ((others[:, :, :2] - reference[None, :, :2]) ** 2).sum(-1)
    mean_area = (reference_area + np.asarray(areas, dtype=np.float64)) / 2 + np.spacing(1)
    e = squared / variances[None, :] / mean_area[:, None] / 2
    return np.exp(-e).mean(axis=1)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray,
            threshold: float) -> list[int]:
    """HRNet's greedy ``oks_nms``: the indices kept, best score first.

    keypoints [N, J, 2+] (x, y, ...), scores [N], areas [N]. The best remaining person is kept and
    every remaining one whose OKS with it is above ``threshold`` is dropped (OKS == threshold
    stays). Ties in score go to the later index, as HRNet's ``argsort()[::-1]`` orders them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    order = np.argsort(scores, kind="stable")[::-1]
    keep: list[int] = []
    while order.size:
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        overlap = oks(keypoints[best], keypoints[rest], areas[best], areas[rest])
        order = rest[overlap <= threshold]
    return keep


class KeypointEvaluator:
    """Collects results per person, then ``compute()`` runs COCOeval on the ground truth.

    Args:
        coco_gt: pycocotools ``COCO`` of the ground-truth keypoints file.
        image_ids: the images to evaluate (default: every image of ``coco_gt``, as HRNet).
        in_vis_thre: TEST.IN_VIS_THRE of the rescoring. oks_threshold: TEST.OKS_THRE of the
            OKS-NMS (None: no suppression).
    """

    def __init__(self, coco_gt, image_ids: Sequence[int] | None = None,
                 in_vis_thre: float = 0.2, oks_threshold: float | None = 0.9) -> None:
        self.coco_gt = coco_gt
        self.image_ids = (sorted(coco_gt.getImgIds()) if image_ids is None
                          else sorted({int(i) for i in image_ids}))
        self.in_vis_thre, self.oks_threshold = in_vis_thre, oks_threshold
        self.results: list[dict] = []
        self.keypoints: list[np.ndarray] = []   # unrounded [J, 3], what HRNet's NMS reads
        self.areas: list[float] = []

    def add(self, image_id: int, joints: np.ndarray, maxima: np.ndarray,
            box_score: float = 1.0, area: float = 1.0) -> None:
        """One person: joints float [J, 2] image (x, y), maxima [J] heatmap maxima; ``area`` the
        OKS-NMS scale: the crop's width x height in image pixels (HRNet's ``prod(scale * 200)``)."""
        keypoints = np.concatenate([np.asarray(joints, dtype=np.float64).reshape(-1, 2),
                                    np.asarray(maxima, dtype=np.float64).reshape(-1, 1)], axis=1)
        self.results.append({"image_id": int(image_id), "category_id": 1,
                             "keypoints": keypoints.reshape(-1).round(3).tolist(),
                             "score": person_score(maxima, box_score, self.in_vis_thre)})
        self.keypoints.append(keypoints)
        self.areas.append(float(area))

    def part(self) -> tuple[list[dict], list[np.ndarray], list[float]]:
        """What was added, per person in order: (results, keypoints, areas); picklable, for
        combining slices of a test set evaluated apart (``extend``)."""
        return list(self.results), list(self.keypoints), list(self.areas)

    def extend(self, part: tuple[list[dict], list[np.ndarray], list[float]]) -> None:
        """Add the persons of another evaluator's ``part``, after those added so far."""
        results, keypoints, areas = part
        self.results.extend(results)
        self.keypoints.extend(keypoints)
        self.areas.extend(areas)

    def kept_results(self) -> list[dict]:
        """The results left by OKS-NMS within each image (all of them without a threshold)."""
        if self.oks_threshold is None:
            return list(self.results)
        by_image: dict[int, list[int]] = {}
        for position, result in enumerate(self.results):
            by_image.setdefault(result["image_id"], []).append(position)
        kept: list[dict] = []
        for positions in by_image.values():
            keypoints = np.stack([self.keypoints[p] for p in positions])
            scores = np.array([self.results[p]["score"] for p in positions])
            areas = np.array([self.areas[p] for p in positions])
            kept += [self.results[positions[k]]
                     for k in oks_nms(keypoints, scores, areas, self.oks_threshold)]
        return kept

    def compute(self) -> dict[str, float]:
        """AP (OKS 0.50:0.95), AP50, AP75, AP_M, AP_L and the matching ARs; 0 without results."""
        from pycocotools.cocoeval import COCOeval

        if not self.results:
            return {name: 0.0 for name in STAT_NAMES}
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = self.coco_gt.loadRes(self.kept_results())
            evaluation = COCOeval(self.coco_gt, coco_dt, iouType="keypoints")
            evaluation.params.imgIds = self.image_ids
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        # -1 marks "no ground truth in this area range"; reported as NaN, not as a score.
        return {name: (float(value) if value >= 0 else float("nan"))
                for name, value in zip(STAT_NAMES, evaluation.stats, strict=True)}
