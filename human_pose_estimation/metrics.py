"""OKS average precision with pycocotools' ``COCOeval(iouType="keypoints")``.

Each evaluated person becomes one COCO result: its 17 decoded joints in image coordinates, each
with its heatmap maximum as the third value, and the score HRNet gives it: the mean of the
maxima above ``in_vis_thre`` (0.2) times the box score (1 for ground-truth boxes). With ground-
truth boxes, every person is one result and no OKS non-maximum suppression is needed.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

# COCOeval's keypoint stats, in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")


def person_score(maxima: np.ndarray, box_score: float = 1.0, in_vis_thre: float = 0.2) -> float:
    """HRNet's rescoring: the mean heatmap maximum over joints above
    ``in_vis_thre``, x box score."""
    maxima = np.asarray(maxima, dtype=np.float64)
    confident = maxima[maxima > in_vis_thre]
    return float(confident.mean() * box_score) if len(confident) else 0.0


class KeypointEvaluator:
    """Collects results per person, then ``compute()`` runs COCOeval on the ground truth.

    Args:
        coco_gt: pycocotools ``COCO`` of the ground-truth keypoints file.
        image_ids: the images to evaluate (default: every image with a result).
    """

    def __init__(self, coco_gt, image_ids: Sequence[int] | None = None,
                 in_vis_thre: float = 0.2) -> None:
        self.coco_gt = coco_gt
        self.image_ids = None if image_ids is None else sorted({int(i) for i in image_ids})
        self.in_vis_thre = in_vis_thre
        self.results: list[dict] = []

    def add(self, image_id: int, joints: np.ndarray, maxima: np.ndarray,
            box_score: float = 1.0) -> None:
        """One person: joints float [J, 2] image (x, y), maxima [J] heatmap maxima."""
        keypoints = np.concatenate([np.asarray(joints, dtype=np.float64).reshape(-1, 2),
                                    np.asarray(maxima, dtype=np.float64).reshape(-1, 1)], axis=1)
        self.results.append({"image_id": int(image_id), "category_id": 1,
                             "keypoints": keypoints.reshape(-1).round(3).tolist(),
                             "score": person_score(maxima, box_score, self.in_vis_thre)})

    def compute(self) -> dict[str, float]:
        """AP (OKS 0.50:0.95), AP50, AP75, AP_M, AP_L and the matching ARs; 0 without results."""
        from pycocotools.cocoeval import COCOeval

        if not self.results:
            return {name: 0.0 for name in STAT_NAMES}
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = self.coco_gt.loadRes(self.results)
            evaluation = COCOeval(self.coco_gt, coco_dt, iouType="keypoints")
            evaluation.params.imgIds = (self.image_ids
                                        or sorted({r["image_id"] for r in self.results}))
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        # -1 marks "no ground truth in this area range"; reported as NaN, not as a score.
        return {name: (float(value) if value >= 0 else float("nan"))
                for name, value in zip(STAT_NAMES, evaluation.stats, strict=True)}
