"""The weak annotator (``--pseudo-labels knn``, Belharbi et al. 2020): the kNN pick, the weight
in the loss, and that a pseudo-labeled image stays unlabeled and its mask is never written."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from active_learning import PoolState
from active_learning.files.export import read_metrics_csv
from seg_fixtures import TINY_ARGS, write_tiny_cityscapes
from segmentation.pseudo import PSEUDO_OFFSET, knn_pick, weighted_pixel_losses
from segmentation.train import main


def test_knn_pick_against_a_hand_computation():
    # points on a line: labeled 0 (x=0) and 5 (x=10); candidates at x = 1, 2, 4, 9, 7
    embeddings = np.array([[0.0], [1.0], [2.0], [4.0], [9.0], [10.0], [7.0]])
    # k=1: nearest of 0 is 1 (d=1), of 5 is 4 (d=1)      -> {1, 4}
    assert knn_pick(embeddings, [0, 5], [1, 2, 3, 4, 6], 1).tolist() == [1, 4]
    # k=2: 0 -> 1, 2 (d=1, 2); 5 -> 4, 6 (d=1, 3)          -> {1, 2, 4, 6}; 3 (x=4) is no one's
    assert knn_pick(embeddings, [0, 5], [1, 2, 3, 4, 6], 2).tolist() == [1, 2, 4, 6]
    # a tie (x=1 and x=-1 both at d=1 from 0) goes to the lower index; k beyond the pool: all
    tie = np.array([[0.0], [1.0], [-1.0]])
    assert knn_pick(tie, [0], [2, 1], 1).tolist() == [1]
    assert knn_pick(tie, [0], [1, 2], 5).tolist() == [1, 2]
    assert knn_pick(tie, [], [1, 2], 1).tolist() == []


def test_a_pseudo_pixel_weighs_the_given_weight_in_the_loss():
    # one image of 3 pixels, 2 classes: logits favour class 0 by log(3) everywhere
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, 0] = math.log(3.0)
    # pixel 0 labeled class 0 (CE = log(4/3)), pixel 1 pseudo class 1 (CE = log 4), pixel 2 ignored
    targets = torch.tensor([[[0, PSEUDO_OFFSET + 1, 255]]])
    sums, weights = weighted_pixel_losses(logits, targets, 0.25)
    assert weights.tolist() == [1.25]
    assert sums.item() == pytest.approx(math.log(4 / 3) + 0.25 * math.log(4))
    # the task's training loss is their ratio: the weighted mean over the batch's pixels
    from segmentation.task import SegmentationTask

    task = SegmentationTask.__new__(SegmentationTask)
    task.pseudo_labels, task.pseudo_weight = "knn", 0.25
    loss, per_image = task.batch_loss(logits, targets)
    expected = (math.log(4 / 3) + 0.25 * math.log(4)) / 1.25
    assert loss.item() == pytest.approx(expected) and per_image.tolist() == pytest.approx([expected])
    # without pseudo-labels in the batch: the plain mean over labeled pixels, as before
    plain, _ = task.batch_loss(logits, torch.tensor([[[0, 1, 255]]]))
    assert plain.item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_cityscapes(tmp_path_factory.mktemp("data") / "cs", train=12, val=4)


def _run(dataset, out, *extra):
    args = [arg for arg in TINY_ARGS]
    args[args.index("--cycles") + 1] = "3"
    return main(["-d", str(dataset), *args, "--output-dir", str(out), "--strategy", "random",
                 *extra])


def test_pseudo_labeled_images_stay_unlabeled_and_their_masks_are_never_written(dataset,
                                                                                tmp_path):
    from segmentation.task import SegmentationTask

    seen: list[dict[int, np.ndarray]] = []
    original = SegmentationTask.training_set

    def recording(self, labeled_units):
        seen.append({index: mask.copy() for index, mask in self.pseudo_masks.items()})
        return original(self, labeled_units)

    SegmentationTask.training_set = recording
    try:
        weak = _run(dataset, tmp_path / "weak", "--pseudo-labels", "knn", "--pseudo-k", "2")
    finally:
        SegmentationTask.training_set = original
    plain = _run(dataset, tmp_path / "plain")
    rows, plain_rows = read_metrics_csv(weak / "metrics.csv"), read_metrics_csv(plain / "metrics.csv")
    state = PoolState.load(weak / "pool.npz")
    # the same labeled set, counts and cost as without the weak annotator (random draws alike)
    np.testing.assert_array_equal(state.labeled_at, PoolState.load(plain / "pool.npz").labeled_at)
    for key in ("n_labeled", "n_images", "labeled_pixel_fraction"):
        assert [row[key] for row in rows] == [row[key] for row in plain_rows]
    # cycle 0 has no model to pseudo-label with; later cycles do, only unlabeled images
    assert rows[0]["n_pseudo"] == 0 and rows[0]["pseudo_miou"] in ("", None)   # NaN: empty
    assert [row["n_pseudo"] for row in rows[1:]] == [len(masks) for masks in seen[1:]]
    for cycle, masks in enumerate(seen[1:], start=1):
        assert 0 < len(masks) <= 2 * rows[cycle]["n_labeled"]
        labeled_now = set(state.labeled_up_to(cycle).tolist())
        assert not labeled_now & set(masks)                 # never an image already labeled
        assert 0.0 <= rows[cycle]["pseudo_miou"] <= 1.0
    # still candidates: after cycle 1, 6 of the 12 images are unlabeled and 5 of them pseudo-
    # labeled (cycle 1's n_pseudo), so the 2 chosen next hold at least one of them; they count
    # once labeled (cycle 2: 6 + 2), not before
    assert rows[1]["n_labeled"] == 6 and rows[1]["n_pseudo"] == 5
    assert set(state.added_in(2).tolist()) & set(seen[1])
    assert rows[2]["n_labeled"] == 8
    # nothing of a pseudo-mask is written: the same files as the plain run, plus the models
    # the weak annotator needs to resume
    files = {str(path.relative_to(weak)) for path in weak.rglob("*") if path.is_file()}
    plain_files = {str(path.relative_to(plain)) for path in plain.rglob("*") if path.is_file()}
    assert files - plain_files == {f"checkpoints/cycle_{cycle:02d}.pt" for cycle in range(3)}


def test_a_resumed_weak_annotator_run_reads_the_last_model_back(dataset, tmp_path):
    straight = _run(dataset, tmp_path / "a", "--pseudo-labels", "knn", "--pseudo-k", "2")
    args = [arg for arg in TINY_ARGS]
    args[args.index("--cycles") + 1] = "2"
    main(["-d", str(dataset), *args, "--output-dir", str(tmp_path / "b"), "--strategy", "random",
          "--pseudo-labels", "knn", "--pseudo-k", "2"])
    resumed = _run(dataset, tmp_path / "b", "--pseudo-labels", "knn", "--pseudo-k", "2")
    expected = read_metrics_csv(straight / "metrics.csv")
    got = read_metrics_csv(resumed / "metrics.csv")
    assert [row["n_pseudo"] for row in got] == [row["n_pseudo"] for row in expected]
    assert got[2]["pseudo_miou"] == pytest.approx(expected[2]["pseudo_miou"])
    assert got[2]["mIoU"] == pytest.approx(expected[2]["mIoU"])
