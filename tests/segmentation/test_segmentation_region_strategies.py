"""The region strategies on a 3-superpixel map, worked out by hand: the best-vs-second-best ratio,
Cai et al.'s class weight, RIPU's impurity and neighbour suppression, the click cost; the
class-balanced random baseline's distribution; the per-image quota; each strategy end to end."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from active_learning.loop.units import RegionUnits, ScoredBatch
from active_learning.strategies import PROBS, get_strategy
from active_learning.strategies.regions import (
    RegionCandidates,
    choose_regions,
    class_balanced_random,
    class_weights,
    pick_in_order,
    ripu_scores,
    top_regions,
)
from segmentation.costs import polygon_clicks

# One image of 2 x 6 pixels: region 0 = columns 0-1, region 1 = columns 2-3, region 2 = columns
# 4-5; regions 0-1 and 1-2 touch. Three classes.
REGIONS = np.repeat(np.array([[0, 0, 1, 1, 2, 2]]), 2, axis=0)
A = [0.5, 0.45, 0.05]    # ratio 0.9, class 0, entropy 0.855691
B = [0.5, 0.4, 0.1]      # ratio 0.8, class 0, entropy 0.943348
C = [0.2, 0.7, 0.1]      # ratio 2/7, class 1, entropy 0.801819
D = [0.1, 0.4, 0.5]      # ratio 0.8, class 2, entropy 0.943348
PIXELS = [[A, A, B, C, D, D],
          [A, A, C, B, D, D]]


def _regions(strategy: str) -> RegionCandidates:
    """The map's regions as the scoring pass pools them for ``strategy`` (all candidates)."""
    probs = torch.tensor(PIXELS, dtype=torch.float64).permute(2, 0, 1)[None]     # [1, 3, 2, 6]
    scores = get_strategy(strategy).score({PROBS: probs}, reduction="none").double().numpy()
    units = RegionUnits.from_maps([REGIONS])
    pooled = units.pool_regions([ScoredBatch(np.array([0]), scores,
                                             classes=probs.argmax(dim=1).numpy(), n_classes=3)])
    return RegionCandidates(unit_ids=pooled["unit_ids"], images=np.zeros(3, dtype=np.int64),
                            scores=pooled["scores"], candidate=np.ones(3, dtype=bool),
                            pixels=pooled["pixels"], class_counts=pooled["class_counts"],
                            neighbours=pooled["neighbours"])


def test_the_pass_pools_mean_ratio_class_counts_and_adjacency():
    regions = _regions("cb_ratio_superpixels")
    # region 1: two pixels of ratio 0.8 and two of 0.2 / 0.7
    np.testing.assert_allclose(regions.scores, [0.9, (0.8 + 2 / 7) / 2, 0.8])
    np.testing.assert_array_equal(regions.class_counts, [[4, 0, 0], [2, 2, 0], [0, 0, 4]])
    np.testing.assert_array_equal(regions.neighbours, [[0, 1], [1, 2]])
    np.testing.assert_array_equal(regions.pixels, [4, 4, 4])
    np.testing.assert_array_equal(regions.dominant_classes(), [0, 0, 2])   # tie 2/2: class 0


def test_the_pass_pools_a_later_image_under_its_own_unit_ids():
    # image 0: 3 regions (units 0-2); image 1: the same map flipped left-right (units 3-5, its
    # region 0 = columns 4-5 holding D). Pooled alone, image 1's regions and pairs carry ids
    # 3-5, not its local 0-2.
    probs = torch.tensor(PIXELS, dtype=torch.float64).permute(2, 0, 1)[None]     # [1, 3, 2, 6]
    scores = get_strategy("cb_ratio_superpixels").score({PROBS: probs},
                                                        reduction="none").double().numpy()
    units = RegionUnits.from_maps([REGIONS, REGIONS[:, ::-1].copy()])
    classes = probs.argmax(dim=1).numpy()
    pooled = units.pool_regions([ScoredBatch(np.array([1]), scores, classes=classes,
                                             n_classes=3)])
    np.testing.assert_array_equal(pooled["unit_ids"], [3, 4, 5])
    np.testing.assert_array_equal(pooled["neighbours"], [[3, 4], [4, 5]])
    np.testing.assert_allclose(pooled["scores"], [0.8, (0.8 + 2 / 7) / 2, 0.9])
    np.testing.assert_array_equal(pooled["class_counts"], [[0, 0, 4], [2, 2, 0], [4, 0, 0]])
    both = units.pool_regions([ScoredBatch(np.array([0, 1]), np.concatenate([scores, scores]),
                                           classes=np.concatenate([classes, classes]),
                                           n_classes=3)])
    np.testing.assert_array_equal(both["unit_ids"], np.arange(6))
    np.testing.assert_array_equal(both["neighbours"], [[0, 1], [1, 2], [3, 4], [4, 5]])


def test_cai_class_weight_is_exp_minus_the_share_of_predicted_dominant_classes():
    np.testing.assert_allclose(class_weights(np.array([0, 0, 2]), 3),
                               [math.exp(-2 / 3), 1.0, math.exp(-1 / 3)])


def test_class_balanced_ratio_prefers_the_rare_class_over_a_slightly_more_uncertain_common_one():
    regions = _regions("cb_ratio_superpixels")
    # mean ratios 0.9, 0.542857, 0.8 -> min-max 1, 0, 0.72; x weights exp(-2/3), exp(-2/3),
    # exp(-1/3): 0.513417, 0, 0.515902. Unweighted, region 0 would come first.
    strategy = get_strategy("cb_ratio_superpixels")
    units, scores = choose_regions(strategy.select_regions, regions, 3, 0, {})
    np.testing.assert_array_equal(units, [2, 0, 1])
    np.testing.assert_allclose(scores, [0.72 * math.exp(-1 / 3), math.exp(-2 / 3), 0.0],
                               atol=1e-9)
    assert scores[0] == pytest.approx(0.515902, abs=1e-6)


def test_class_balanced_ratio_normalises_and_counts_over_the_candidates_only():
    # the three regions above, and a labeled region (not a candidate) of class 1 whose ratio
    # 0.0 is far below the candidates' 0.542857: min-max over all regions would give
    # 0.9 -> 1, 0.542857 -> 0.603175, 0.8 -> 0.888889, and shares over all four regions
    # (class 0: 1/2, 1: 1/4, 2: 1/4) other weights; over the candidates the choice is the one
    # above, to the digit.
    regions = _regions("cb_ratio_superpixels")
    labeled = RegionCandidates(
        unit_ids=np.arange(4), images=np.zeros(4, dtype=np.int64),
        scores=np.append(regions.scores, 0.0), candidate=np.array([True, True, True, False]),
        pixels=np.append(regions.pixels, 4),
        class_counts=np.vstack([regions.class_counts, [[0, 4, 0]]]),
        neighbours=np.vstack([regions.neighbours, [[2, 3]]]))
    strategy = get_strategy("cb_ratio_superpixels")
    units, scores = choose_regions(strategy.select_regions, labeled, 3, 0, {})
    np.testing.assert_array_equal(units, [2, 0, 1])
    np.testing.assert_allclose(scores, [0.72 * math.exp(-1 / 3), math.exp(-2 / 3), 0.0],
                               atol=1e-9)


def test_ripu_windows_weigh_pixels_and_take_in_a_labeled_neighbour():
    # two classes (log C = ln 2); unequal regions in a row, 0 - 1 - 2 adjacent:
    #   region 0 (labeled, not a candidate): 6 pixels, mean entropy 0.4, predicted [6, 0]
    #   region 1: 2 pixels, mean entropy 0.2, predicted [0, 2]
    #   region 2: 4 pixels, mean entropy 0.6, predicted [1, 3]
    regions = RegionCandidates(
        unit_ids=np.array([10, 11, 12]), images=np.zeros(3, dtype=np.int64),
        scores=np.array([0.4, 0.2, 0.6]), candidate=np.array([False, True, True]),
        pixels=np.array([6, 2, 4]), class_counts=np.array([[6, 0], [0, 2], [1, 3]]),
        neighbours=np.array([[0, 1], [1, 2]]))
    ln2 = math.log(2)

    def bits(*shares):
        return -sum(share * math.log2(share) for share in shares)

    # windows: {0, 1} [6, 2]; {0, 1, 2} [7, 5]; {1, 2} [1, 5]. Uncertainty = the window's
    # pixel-weighted mean entropy: (6 x 0.4 + 2 x 0.2) / 8, (2.4 + 0.4 + 2.4) / 12, (0.4 + 2.4) / 6
    expected = [bits(0.75, 0.25) * (2.8 / 8) / ln2,              # 0.811278 x 0.504943
                bits(7 / 12, 5 / 12) * (5.2 / 12) / ln2,         # 0.979869 x 0.625168
                bits(1 / 6, 5 / 6) * (2.8 / 6) / ln2]            # 0.650022 x 0.673258
    np.testing.assert_allclose(ripu_scores(regions), expected, rtol=1e-9)
    np.testing.assert_allclose(expected, [0.409649, 0.612582, 0.437633], atol=1e-6)
    # a mean of region means over region 1's window would give 0.979869 x 0.4 / ln 2 = 0.565461;
    # leaving the labeled neighbour out, 0.437633 (region 2's window)
    strategy = get_strategy("ripu_superpixels")
    units, scores = choose_regions(strategy.select_regions, regions, 2, 0, {})
    np.testing.assert_array_equal(units, [11, 12])               # never the labeled region
    np.testing.assert_allclose(scores, [0.612582, 0.437633], atol=1e-6)


def test_ripu_impurity_times_uncertainty_over_each_region_and_its_neighbours():
    regions = _regions("ripu_superpixels")
    h_a, h_b, h_c = 0.855691, 0.943348, 0.801819            # pixel entropies (nats)
    h_1 = (h_b + h_c) / 2                                      # region 1's mean entropy
    log3 = math.log(3)
    # windows: {0, 1} -> classes [6, 2, 0]; {0, 1, 2} -> [6, 2, 4]; {1, 2} -> [2, 2, 4]
    impurity = [-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / log3,      # 0.511856
                -(0.5 * math.log(0.5) + (1 / 6) * math.log(1 / 6)
                  + (1 / 3) * math.log(1 / 3)) / log3,                         # 0.920620
                -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5)) / log3]     # 0.946395
    uncertainty = [(h_a + h_1) / 2 / log3, (h_a + h_1 + h_b) / 3 / log3, (h_1 + h_b) / 2 / log3]
    expected = np.array(impurity) * np.array(uncertainty)
    np.testing.assert_allclose(ripu_scores(regions), expected, rtol=1e-5)
    np.testing.assert_allclose(expected, [0.402611, 0.746260, 0.782163], atol=1e-5)
    # region 2 first; its neighbour 1 is suppressed, so 0 comes before 1 despite a lower score
    strategy = get_strategy("ripu_superpixels")
    units, _ = choose_regions(strategy.select_regions, regions, 2, 0, {})
    np.testing.assert_array_equal(units, [2, 0])
    units, _ = choose_regions(strategy.select_regions, regions, 3, 0, {})
    np.testing.assert_array_equal(units, [2, 0, 1])           # the next pass takes the rest


def test_the_click_cost_of_the_map():
    truth = np.array([[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]])
    # contours run through the boundary pixels' centres: a 2 x 2 square is a 2-point segment
    # within epsilon = 1 px, so each region costs 2 clicks at this size ...
    assert polygon_clicks(truth) == 3 * 2
    # ... and 4 (its corners) once each pixel is a 4 x 4 block (regions of 8 x 8)
    assert polygon_clicks(np.kron(truth, np.ones((4, 4), dtype=np.int64))) == 3 * 4
    # dominant labels: one click per superpixel, whatever its shape (see test_segmentation_costs)


def _two_images() -> RegionCandidates:
    # image 0 holds the three best regions
    return RegionCandidates(unit_ids=np.arange(5), images=np.array([0, 0, 0, 1, 1]),
                            scores=np.array([0.9, 0.8, 0.7, 0.6, 0.5]),
                            candidate=np.ones(5, dtype=bool))


def test_the_per_image_quota_spreads_a_plain_region_score():
    regions = _two_images()
    assert top_regions(regions, 3, 0)[0].tolist() == [0, 1, 2]
    assert top_regions(regions, 3, 0, max_regions_per_image=2)[0].tolist() == [0, 1, 3]
    assert top_regions(regions, 2, 0, max_regions_per_image=1)[0].tolist() == [0, 3]
    with pytest.warns(UserWarning, match="ignore the cap"):
        picks, scores = top_regions(regions, 4, 0, max_regions_per_image=1)
    assert picks.tolist() == [0, 3, 1, 2] and scores.tolist() == [0.9, 0.6, 0.8, 0.7]


def test_the_quota_applies_to_the_class_balanced_choices_too():
    regions = _two_images()
    regions.class_counts = np.array([[3, 0], [3, 0], [0, 3], [3, 0], [0, 3]])
    picks, _ = class_balanced_random(regions, 2, 7, max_regions_per_image=1)
    assert sorted(regions.images[picks].tolist()) == [0, 1]
    assert pick_in_order(np.array([0, 1, 2, 3, 4]), regions.images, 2, 1).tolist() == [0, 3]


def test_class_balanced_random_is_uniform_over_classes_then_within_the_class():
    # 6 candidates of class 0, 2 of class 1, 1 of class 2, and a labeled region of class 2
    classes = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    regions = RegionCandidates(unit_ids=np.arange(10), images=np.arange(10),
                               scores=np.zeros(10), candidate=np.arange(10) < 9,
                               class_counts=np.eye(3, dtype=np.int64)[classes] * 5)
    draws = 6000
    first = np.array([class_balanced_random(regions, 1, seed)[0][0] for seed in range(draws)])
    frequency = np.bincount(first, minlength=10) / draws
    # each class 1/3, then uniform inside it: 1/18 each of class 0, 1/6 of class 1, 1/3 class 2
    expected = np.array([1 / 18] * 6 + [1 / 6] * 2 + [1 / 3, 0])
    np.testing.assert_allclose(frequency, expected, atol=0.025)   # ~4 binomial std at 6000
    # without replacement: the whole budget takes every candidate once, never the labeled one
    picks, scores = class_balanced_random(regions, 9, 3)
    assert sorted(picks.tolist()) == list(range(9)) and scores[0] == 1.0
    # two draws: class 2's only region is among them with 1/3 + 2/3 x 1/3 = 5/9 (classes with
    # a candidate left stay equally likely), not the 2/9 of uniform draws over regions
    pairs = [class_balanced_random(regions, 2, seed)[0] for seed in range(3000)]
    assert np.mean([8 in pair for pair in pairs]) == pytest.approx(5 / 9, abs=0.035)


def test_the_processes_region_statistics_join_when_one_process_scored_no_image():
    # torchrun: rank 1 had no image to score, so its class counts are [0, 0] (no class seen);
    # ranks 0 and 2 pooled image 0 and image 1 of the same map
    from active_learning.loop.scoring import join_region_parts

    probs = torch.tensor(PIXELS, dtype=torch.float64).permute(2, 0, 1)[None]     # [1, 3, 2, 6]
    scores = get_strategy("cb_ratio_superpixels").score({PROBS: probs},
                                                        reduction="none").double().numpy()
    units = RegionUnits.from_maps([REGIONS, REGIONS])
    classes = probs.argmax(dim=1).numpy()
    parts = [units.pool_regions([ScoredBatch(np.array([image]), scores, classes=classes,
                                             n_classes=3)]) for image in (0, 1)]
    empty = units.pool_regions([])
    assert empty["class_counts"].shape == (0, 0)
    joined = join_region_parts([parts[0], empty, parts[1]])
    np.testing.assert_array_equal(joined["unit_ids"], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(joined["class_counts"], [[4, 0, 0], [2, 2, 0], [0, 0, 4]] * 2)
    np.testing.assert_array_equal(joined["neighbours"], [[0, 1], [1, 2], [3, 4], [4, 5]])
    np.testing.assert_allclose(joined["scores"], [0.9, (0.8 + 2 / 7) / 2, 0.8] * 2)
    np.testing.assert_array_equal(joined["pixels"], [4] * 6)
    # every process empty: an empty result, not an error
    nothing = join_region_parts([empty, empty])
    assert {key: value.shape for key, value in nothing.items()} == {
        "unit_ids": (0,), "scores": (0,), "pixels": (0,), "class_counts": (0, 0),
        "neighbours": (0, 2)}
