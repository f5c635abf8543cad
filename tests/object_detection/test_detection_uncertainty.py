"""Detection uncertainty per image from the detector's output boxes, by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from active_learning.loop.config import LoopConfig
from active_learning.loop.scoring import ScoringPass, score_candidates
from active_learning.loop.units import ScoredBatch
from active_learning.strategies import get_strategy
from det_fixtures import write_tiny_voc
from object_detection.model import build_model, detections
from object_detection.task import DetectionTask, DetectionUnits, pool_box_scores
from object_detection.voc import read_class_names, read_split


def test_pool_box_scores_by_hand():
    # image 0: detections scoring 0.5 and 0 (a certain box) and one empty slot; image 1: one
    # detection (0.25); image 2: none
    scores = np.array([[0.5, 0.0, 0.0], [0.25, 0.0, 0.0], [0.0, 0.0, 0.0]])
    counts = np.array([2, 1, 0])
    np.testing.assert_allclose(pool_box_scores(scores, counts, "max"), [0.5, 0.25, 0.0])
    np.testing.assert_allclose(pool_box_scores(scores, counts, "sum"), [0.5, 0.25, 0.0])
    # the certain box counts in the mean (0.5 / 2, not 0.5 / 1); no detection: 0
    np.testing.assert_allclose(pool_box_scores(scores, counts, "mean"), [0.25, 0.25, 0.0])
    with pytest.raises(RuntimeError, match="empty detection slot"):
        pool_box_scores(scores, np.array([0, 1, 0]), "max")      # counts of another batch
    with pytest.raises(RuntimeError, match="do not belong"):
        pool_box_scores(scores, np.array([1, 1]), "max")


def _outputs() -> dict[str, torch.Tensor]:
    """Two images over 10 disjoint default boxes (zero regression, so detections are the boxes).

    Image 0: box 3 is class 1 at 0.6 and class 2 at 0.3 (two detections: NMS is per class),
    box 7 class 3 at 0.8 (class 1 at 0.005: below 0.01); every other box background at 0.999 (classes below 0.01).
    Image 1: background 0.999 everywhere: no detection.
    """
    anchors = torch.tensor([[20.0 * k, 0, 20.0 * k + 10, 10] for k in range(10)])
    probs = torch.full((2, 10, 4), 0.001 / 3)
    probs[..., 0] = 0.999
    probs[0, 3] = torch.tensor([0.1, 0.6, 0.3, 0.0])
    probs[0, 7] = torch.tensor([0.195, 0.005, 0.0, 0.8])
    return {"cls_logits": probs.clamp_min(1e-30).log(), "bbox_regression": torch.zeros(2, 10, 4),
            "anchors": anchors}


def _entropy(p) -> float:
    return -sum(v * math.log(v) for v in p if v > 0)


def test_probabilities_are_the_detections_posteriors():
    task = DetectionTask([], [], class_names=["a", "b", "c"])
    outputs = _outputs()
    found = detections(outputs)
    assert found[0]["anchor"].tolist() == [7, 3, 3] and found[0]["labels"].tolist() == [3, 1, 2]
    assert len(found[1]["anchor"]) == 0
    probs, counts = task.probabilities_and_slots(outputs)
    torch.testing.assert_close(task.probabilities(outputs), probs, rtol=0, atol=0)
    assert probs.shape == (2, 4, 3)                 # D = 3 slots: the most detections of an image
    torch.testing.assert_close(probs[0, :, 0], torch.tensor([0.195, 0.005, 0.0, 0.8]), atol=1e-6, rtol=0)
    torch.testing.assert_close(probs[0, :, 1], torch.tensor([0.1, 0.6, 0.3, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(probs[0, :, 2], probs[0, :, 1])
    assert probs[1].tolist() == [[1.0] * 3, [0.0] * 3, [0.0] * 3, [0.0] * 3]   # empty slots
    assert counts.tolist() == [3, 0]                 # the detections of each image
    # the loop's path: per-slot entropy ("none"), pooled per image by the unit reduction
    entropies = get_strategy("entropy").score({"probs": probs}, reduction="none").numpy()
    units = task.selection_units()
    assert isinstance(units, DetectionUnits)
    h3, h7 = _entropy([0.1, 0.6, 0.3]), _entropy([0.195, 0.005, 0.8])
    expected = {"max": [max(h3, h7), 0.0], "mean": [(h7 + 2 * h3) / 3, 0.0], "sum": [h7 + 2 * h3, 0.0]}
    for reduction, values in expected.items():
        ids, pooled = units.pool_scores([ScoredBatch(np.array([5, 9]), entropies, counts.numpy())],
                                        reduction)
        assert ids.tolist() == [5, 9]
        np.testing.assert_allclose(pooled, values, rtol=1e-5)
    # margin: 1 - (top1 - top2) per box
    margins = get_strategy("margin").score({"probs": probs}, reduction="none").numpy()
    _, pooled = units.pool_scores([ScoredBatch(np.array([5, 9]), margins, counts.numpy())], "mean")
    np.testing.assert_allclose(pooled, [(0.395 + 2 * 0.7) / 3, 0.0], rtol=1e-5)
    # the anchor-level option: every default box, [B, C, 10]
    anchors = DetectionTask([], [], class_names=["a", "b", "c"], scored_boxes="anchors")
    assert anchors.probabilities(outputs).shape == (2, 4, 10)
    assert anchors.probabilities_and_slots(outputs)[1] is None     # every box is scored
    assert not isinstance(anchors.selection_units(), DetectionUnits)


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    root = write_tiny_voc(tmp_path_factory.mktemp("voc"))
    names = read_class_names(root / "classes.txt")
    samples = read_split(root, [("2007", "trainval")], names)
    return lambda **kwargs: DetectionTask(samples, [], class_names=names, width=0.0625, **kwargs)


def _by_hand(model, task, reduction: str) -> np.ndarray:
    """Each image's detections (model.detect), the entropy of the posterior of the default box
    each came from, pooled by hand."""
    scores = []
    for index in range(len(task.samples)):
        image = task.pool_set[index][0][None]
        with torch.no_grad():
            outputs = model(image)
        (found,) = model.postprocess(outputs)
        posterior = torch.softmax(outputs["cls_logits"][0, found["anchor"]], dim=-1)
        values = [_entropy(p.tolist()) for p in posterior]
        pool = {"max": max, "sum": sum, "mean": lambda v: sum(v) / len(v)}[reduction]
        scores.append(pool(values) if values else 0.0)
    return np.array(scores)


@pytest.mark.parametrize("reduction", ["max", "mean"])
def test_the_loop_scores_detections_per_image(tiny_task, reduction):
    torch.manual_seed(0)
    task = tiny_task()
    model = task.build_model().eval()
    config = LoopConfig(strategy="entropy", eval_batch_size=4, unit_reduction=reduction, progress=False)
    samples = np.arange(len(task.samples))
    got = score_candidates(task, model, None, get_strategy("entropy"), samples, config, torch.device("cpu"))
    assert got["unit_ids"].tolist() == samples.tolist()
    np.testing.assert_allclose(got["scores"], _by_hand(model, task, reduction), rtol=1e-4)


def test_per_box_scores_without_their_counts_are_refused():
    units = DetectionUnits(4)
    with pytest.raises(RuntimeError, match="detection counts"):
        units.pool_scores([(np.array([0, 1]), np.zeros((2, 3)))])
    # image-level scores (loss prediction) pass through without counts
    ids, pooled = units.pool_scores([(np.array([0, 1]), np.array([0.5, 0.25]))])
    assert pooled.tolist() == [0.5, 0.25]


@pytest.mark.parametrize("strategy", ["entropy", "mc_entropy"])
def test_each_batch_carries_its_own_detection_counts(tiny_task, strategy):
    """The units pool a batch with the counts that came with it, not with what the adapter
    computed last: every batch's probabilities computed first, then the batches pooled in
    reverse order, give the scores of the pass that pools each batch as it comes (with counts
    left on the adapter, each batch would be pooled with the last batch's counts and raise)."""
    torch.manual_seed(0)
    task = tiny_task(dropout=1e-9)
    model = task.build_model().eval()
    config = LoopConfig(strategy=strategy, eval_batch_size=3, mc_samples=2, unit_reduction="mean",
                        progress=False)
    samples = np.arange(len(task.samples))
    cpu = torch.device("cpu")
    streamed = score_candidates(task, model, None, get_strategy(strategy), samples, config, cpu)
    with torch.inference_mode():
        batches = list(ScoringPass(task, model, None, get_strategy(strategy), config, cpu)
                       .scored(samples, reduction="none"))
    assert len(batches) > 1 and len({batch.scores.shape[1] for batch in batches}) > 1
    counts = np.concatenate([batch.slot_counts for batch in batches])
    assert counts.shape == samples.shape and counts.max() > 0
    units = task.selection_units()
    pooled = {}
    for batch in reversed(batches):
        ids, values = units.pool_scores([batch], reduction="mean")
        pooled.update(zip(ids.tolist(), values.tolist()))
    assert streamed["unit_ids"].tolist() == samples.tolist()
    np.testing.assert_allclose([pooled[i] for i in samples.tolist()], streamed["scores"], rtol=0, atol=0)


def test_mc_strategies_score_the_same_detections(tiny_task):
    # dropout so rare that the T passes equal the deterministic one: mc_entropy is then the
    # entropy of each detection, and BALD 0; empty slots stay 0 through the streamed statistics
    torch.manual_seed(0)
    task = tiny_task(dropout=1e-9)
    model = task.build_model().eval()
    samples = np.arange(len(task.samples))
    config = LoopConfig(strategy="mc_entropy", eval_batch_size=4, mc_samples=3, unit_reduction="sum",
                        progress=False)
    got = score_candidates(task, model, None, get_strategy("mc_entropy"), samples, config, torch.device("cpu"))
    np.testing.assert_allclose(got["scores"], _by_hand(model, task, "sum"), rtol=1e-4)
    got = score_candidates(task, model, None, get_strategy("bald"), samples, config, torch.device("cpu"))
    np.testing.assert_allclose(got["scores"], 0.0, atol=1e-4)


def test_an_untrained_detector_still_ranks_images_apart(tiny_task):
    """Over all 8,732 default boxes the max entropy saturates at ln C for an untrained model
    (every image ties); the mean over its output boxes tells the images apart (their max
    saturates too: an untrained detector's boxes above 0.01 are near-uniform)."""
    torch.manual_seed(0)
    model = build_model(11, width=0.0625).eval()
    samples = np.arange(len(tiny_task().samples))
    config = LoopConfig(strategy="entropy", eval_batch_size=4, reduction="max", progress=False)
    entropy = get_strategy("entropy")
    anchors = score_candidates(tiny_task(scored_boxes="anchors"), model, None, entropy, samples, config,
                               torch.device("cpu"))["scores"]
    config.unit_reduction = "mean"
    boxes = score_candidates(tiny_task(), model, None, entropy, samples, config, torch.device("cpu"))["scores"]
    np.testing.assert_allclose(anchors, math.log(11), atol=1e-5)
    assert np.ptp(boxes) > 1e-3


def test_every_uncertainty_strategy_rates_an_empty_slot_zero():
    """DetectionUnits relies on it: an empty slot (one-hot background) scores exactly 0."""
    from active_learning.loop.compatibility import strategies_for
    from active_learning.strategies import BOX_DISTRIBUTIONS, MC_PROBS, PROBS
    from active_learning.strategies.mc_statistics import MCAccumulator

    empty = torch.zeros(2, 5, 3)
    empty[:, 0] = 1.0                                              # [B, C, D]
    checked = []
    for name in strategies_for(BOX_DISTRIBUTIONS, DetectionUnits):
        strategy = get_strategy(name)
        if strategy.is_set_strategy or not strategy.reads_outputs:
            continue
        if MC_PROBS in strategy.needs:
            samples = empty.expand(4, -1, -1, -1)
            if strategy.mc_statistics:
                accumulator = MCAccumulator(strategy.mc_statistics)
                for sample in samples:
                    accumulator.update(sample)
                samples = accumulator.result()
            scores = strategy.score({MC_PROBS: samples}, reduction="none")
        else:
            assert PROBS in strategy.needs
            scores = strategy.score({PROBS: empty}, reduction="none")
        assert scores.shape == (2, 3) and (scores == 0).all(), name
        checked.append(name)
    assert {"entropy", "least_confidence", "margin", "ratio", "mc_entropy", "bald", "mc_variance"} <= set(checked)
