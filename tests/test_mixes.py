"""Mixes (strategies/mixes.py): a score, a diversity step on its best candidates, a passive share
drawn at random; and expected gradient length, the gradient-based score AL-CV mixes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from active_learning import choose_new_labeled_indices, get_strategy
from active_learning.errors import ConfigError
from active_learning.loop import mixing, selection
from active_learning.loop.config import STAGE_PASSIVE, LoopConfig, derive_seed
from active_learning.loop.pool import PoolState
from active_learning.loop.scoring import score_candidates
from active_learning.loop.selection import select_next
from active_learning.strategies import EMBEDDING, PROBS
from active_learning.strategies.diversity import k_center_greedy
from active_learning.strategies.mixes import (
    knearest_diverse,
    mix_label,
    passive_count,
    score_weights,
    weighted_coreset,
)
from active_learning.strategies.uncertainty import expected_gradient_length
from distributed_workers import spawn
from toy_adapters import ToyClassificationAdapter, ToyGroupedAdapter, outputs_and_embeddings

CPU = torch.device("cpu")


# ---------------------------------------------------------------------------------- the parts
def test_unit_weights_leave_k_center_greedy_unchanged():
    features = torch.randn(60, 5, generator=torch.Generator().manual_seed(0))
    plain = k_center_greedy(features, np.arange(4), 10)
    np.testing.assert_array_equal(k_center_greedy(features, np.arange(4), 10,
                                                  weights=np.ones(60)), plain)


def test_weighted_coreset_multiplies_the_distance_not_its_square_by_the_score():
    # labeled at 0; candidates at 10 (score 0.5), 6 (score 1) and 30 (score 0): normalised
    # weights 0.5, 1, 0. Distance x weight: 5, 6, 0 -> 6 first; squared distance x weight
    # would take 10 (50 > 36), unweighted k-center 30.
    candidates = np.array([[10.0], [6.0], [30.0]])
    picks = weighted_coreset(np.array([0.5, 1.0, 0.0]), candidates, np.array([[0.0]]), 3)
    assert picks.tolist() == [1, 0, 2]   # then 10 (4 x 0.5 = 2 > 0); 30 has weight 0, last
    assert k_center_greedy(np.array([[0.0], [10.0], [6.0], [30.0]]), [0], 1).tolist() == [3]


def test_a_zero_weight_never_turns_a_labeled_row_into_a_pick():
    picks = k_center_greedy(np.array([[0.0], [1.0], [2.0]]), [0, 1], 1, weights=[0.0, 0.0, 0.0])
    assert picks.tolist() == [2]


def test_with_nothing_labeled_the_heaviest_row_comes_first():
    points = np.array([[0.0], [1.0], [5.0], [9.0]])
    assert k_center_greedy(points, [], 2, weights=[0.1, 0.2, 1.0, 0.3]).tolist() == [2, 3]


def test_knearest_skips_the_neighbours_of_each_pick_then_fills_by_score():
    # cluster A (best scores) near the origin, cluster B near (10, 10)
    points = np.array([[0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10]])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    assert knearest_diverse(scores, points, 2, k=2).tolist() == [0, 3]       # top-k: [0, 1]
    # 0 suppresses 1 and 2, 3 suppresses 4: the walk ends, the rest come by score
    assert knearest_diverse(scores, points, 4, k=2).tolist() == [0, 3, 1, 2]
    assert knearest_diverse(scores, points, 2, k=0).tolist() == [0, 1]       # no suppression


def test_score_weights_label_and_passive_share():
    np.testing.assert_allclose(score_weights(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(score_weights(np.array([-7.0, -7.0])), [1.0, 1.0])
    # the range of every scored candidate: the shortlist's last is not weighted 0
    np.testing.assert_allclose(score_weights(np.array([2.0, 4.0]), low=0.0, high=4.0), [0.5, 1])
    with pytest.raises(ValueError, match="NaN"):
        score_weights(np.array([1.0, np.nan]))
    assert mix_label("entropy") == "entropy"
    assert mix_label("entropy", "coreset", 0.2) == "entropy+coreset+random0.2"
    assert mix_label("coreset", None, 0.5) == "coreset+random0.5"
    assert mix_label("margin", "knearest", 0, diversity_factor=5) == "margin+knearest-f5"
    assert mix_label("margin", "knearest", 0, diversity_factor=10) == "margin+knearest"
    assert passive_count(10, 0.2) == 2 and passive_count(7, 0.5) == 4 and passive_count(5, 0) == 0
    assert passive_count(5, 0.5) == 3 and passive_count(3, 0.5) == 2    # half up, not to even


def test_expected_gradient_length_keeps_confident_predictions_apart():
    # p_top = 0.99995 and 0.9998: float32 arithmetic got the first 44% wrong
    logits = torch.tensor([[12.0, 2.0, 0.0], [10.0, 1.5, 0.0]])
    h = torch.ones(2, 4)
    exact = torch.softmax(logits.double(), dim=1)
    expected = [sum(float(exact[row, y]) * float(torch.sqrt(
        ((exact[row] - torch.eye(3, dtype=torch.float64)[y]) ** 2).sum() * 5.0))
        for y in range(3)) for row in range(2)]
    np.testing.assert_allclose(expected_gradient_length(torch.softmax(logits, 1), h).numpy(),
                               expected, rtol=1e-3)


def test_expected_gradient_length_is_the_autograd_expectation():
    generator = torch.Generator().manual_seed(3)
    layer = torch.nn.Linear(6, 4)
    h = torch.randn(5, 6, generator=generator)
    probs = torch.softmax(layer(h), dim=1).detach()
    expected = []
    for row in range(5):
        total = 0.0
        for label in range(4):
            layer.zero_grad()
            torch.nn.functional.cross_entropy(layer(h[row:row + 1]), torch.tensor([label])).backward()
            norm = torch.sqrt(layer.weight.grad.pow(2).sum() + layer.bias.grad.pow(2).sum())
            total += float(probs[row, label]) * float(norm)
        expected.append(total)
    np.testing.assert_allclose(expected_gradient_length(probs, h).numpy(), expected, rtol=1e-5)
    scores = get_strategy("expected_gradient_length").score({PROBS: probs, EMBEDDING: h})
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5)


# ---------------------------------------------------------------------------- the protocol
def test_a_mix_is_refused_where_there_is_no_score_to_diversify():
    for strategy, words in (("random", "scores nothing"), ("coreset", "set of its own"),
                            ("mc_entropy_superpixels", "superpixels")):
        with pytest.raises(ConfigError, match=words):
            LoopConfig(strategy=strategy, diversity="coreset").validate(10**5)
    for fraction in (1.0, -0.1):
        with pytest.raises(ConfigError, match="random-fraction"):
            LoopConfig(random_fraction=fraction).validate(10**5)
    LoopConfig(strategy="coreset", random_fraction=0.5).validate(10**5)   # a passive share fits all


def test_a_run_without_a_mix_keeps_its_protocol():
    plain = LoopConfig(strategy="entropy").protocol()
    assert not {"diversity", "diversity_factor", "random_fraction"} & set(plain)
    mixed = LoopConfig(strategy="entropy", diversity="knearest", random_fraction=0.2)
    assert mixed.protocol()["diversity"] == "knearest" and mixed.strategy_label == \
        "entropy+knearest+random0.2"


# --------------------------------------------------------------------------------- the loop
def _setup(strategy, **mix):
    adapter = ToyClassificationAdapter()
    torch.manual_seed(0)
    model = adapter.build_model()
    state = PoolState.empty(adapter.selection_units().n_units)
    state.mark_labeled(np.arange(30), cycle=0)
    config = LoopConfig(strategy=strategy, budget=6, subset_size=0, eval_batch_size=16,
                        progress=False, **mix)
    return adapter, model, state, config


def _embed(adapter, model, samples):
    return outputs_and_embeddings(adapter, model, samples)[1]


CANDIDATES = np.arange(30, 120)


def _passive(count, config):
    return choose_new_labeled_indices("random", CANDIDATES, count,
                                      seed=derive_seed(config.seed, 0, STAGE_PASSIVE))[0]


RANKS = [1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]   # the pick order, as the priority CSV keeps it


def test_the_passive_share_is_drawn_first_and_the_score_chooses_the_rest(monkeypatch):
    adapter, model, state, config = _setup("entropy", random_fraction=0.5)
    entropy = score_candidates(adapter, model, None, get_strategy("entropy"), CANDIDATES, config,
                               CPU)
    ranked = entropy["unit_ids"][np.argsort(-entropy["scores"], kind="stable")]
    # the draw takes two of the best entropies: the score must choose among the others
    passive = np.array([ranked[0], ranked[2], CANDIDATES[0]])
    monkeypatch.setattr(selection, "draw_passive", lambda candidates, count, seed: passive)
    indices, scores = select_next(adapter, model, None, state, 0, config, CPU)
    assert indices.tolist() == [ranked[1], ranked[3], ranked[4]] + passive.tolist()
    np.testing.assert_allclose(scores, RANKS)


def test_the_passive_draw_is_seeded_apart_from_the_rest_and_may_fill_a_small_budget():
    adapter, model, state, config = _setup("entropy", random_fraction=0.5)
    indices, _ = select_next(adapter, model, None, state, 0, config, CPU)
    assert indices[3:].tolist() == _passive(3, config).tolist()
    for strategy in ("entropy", "coreset", "random"):   # round(0.6 x 1) = 1: all passive
        adapter, model, state, config = _setup(strategy, random_fraction=0.6)
        small = dataclasses.replace(config, budget=1)
        indices, scores = select_next(adapter, model, None, state, 0, small, CPU)
        assert indices.tolist() == _passive(1, config).tolist() and scores.tolist() == [1.0]


@pytest.mark.parametrize("diversity", ["coreset", "knearest"])
def test_the_diversity_step_orders_the_shortlist_of_the_best_scores(diversity):
    adapter, model, state, config = _setup("margin", diversity=diversity, diversity_factor=3)
    indices, scores = select_next(adapter, model, None, state, 0, config, CPU)
    margin = score_candidates(adapter, model, None, get_strategy("margin"), CANDIDATES, config,
                              CPU)
    order = np.argsort(-margin["scores"], kind="stable")[:18]                    # 3 x 6
    shortlist, short_scores = margin["unit_ids"][order], margin["scores"][order]
    rows = _embed(adapter, model, shortlist)
    if diversity == "coreset":   # normalised over every candidate's score
        positions = weighted_coreset(short_scores, rows, _embed(adapter, model, np.arange(30)), 6,
                                     score_range=(margin["scores"].min(), margin["scores"].max()))
    else:
        positions = knearest_diverse(short_scores, rows, 6)
    assert indices.tolist() == shortlist[positions].tolist()
    np.testing.assert_allclose(scores, RANKS)


def test_a_set_strategy_chooses_the_rest_among_the_other_candidates():
    adapter, model, state, config = _setup("coreset", random_fraction=0.5)
    indices, scores = select_next(adapter, model, None, state, 0, config, CPU)
    passive = _passive(3, config)
    rest = np.setdiff1d(CANDIDATES, passive)
    embedded = _embed(adapter, model, np.concatenate([np.arange(30), rest]))
    expected, _ = choose_new_labeled_indices("coreset", rest, 3, inputs={EMBEDDING: embedded[30:]},
                                             labeled_embeddings=embedded[:30])
    assert indices.tolist() == expected.tolist() + passive.tolist()
    np.testing.assert_allclose(scores, RANKS)


@pytest.mark.parametrize("diversity", ["coreset", "knearest"])
def test_images_of_several_samples_are_diversified_by_their_mean_embedding(diversity):
    adapter = ToyGroupedAdapter()
    units = adapter.selection_units()
    labeled = np.flatnonzero(units.selectable())[:15]
    torch.manual_seed(0)
    model = adapter.build_model()
    state = PoolState.empty(units.n_units)
    state.mark_labeled(labeled, cycle=0)
    config = LoopConfig(strategy="entropy", budget=5, subset_size=0, eval_batch_size=16,
                        progress=False, diversity=diversity, diversity_factor=3)
    indices, _ = select_next(adapter, model, None, state, 0, config, CPU)
    candidates = np.setdiff1d(np.flatnonzero(units.selectable()), labeled)
    scored = score_candidates(adapter, model, None, get_strategy("entropy"),
                              units.samples_of(candidates), config, CPU, units=units)
    order = np.argsort(-scored["scores"], kind="stable")[:15]
    shortlist, short_scores = scored["unit_ids"][order], scored["scores"][order]

    def image_means(images):   # every person of an image, averaged
        return torch.stack([_embed(adapter, model, np.flatnonzero(units.unit_of_sample == image))
                            .double().mean(dim=0) for image in images])

    if diversity == "coreset":
        positions = weighted_coreset(short_scores, image_means(shortlist), image_means(labeled),
                                     5, score_range=(scored["scores"].min(),
                                                     scored["scores"].max()))
    else:
        positions = knearest_diverse(short_scores, image_means(shortlist), 5)
    assert indices.tolist() == shortlist[positions].tolist()


# Scores without MC dropout: its masks are drawn per process (BENCHMARKS.md, torchrun).
MIXES = [("entropy", {"diversity": "coreset", "random_fraction": 0.5}),
         ("margin", {"diversity": "knearest", "diversity_factor": 2})]


def _choose(strategy, mix):
    adapter, model, state, config = _setup(strategy, **mix)
    return select_next(adapter, model, None, state, 0, config, CPU)


def choose_everywhere(rank: int, folder: str, mixes: list) -> None:
    for number, (strategy, mix) in enumerate(mixes):
        indices, scores = _choose(strategy, mix)
        np.savez(f"{folder}/{number}-{rank}.npz", indices=indices, scores=scores)


def test_a_sharded_mix_chooses_what_one_process_chooses(tmp_path):
    spawn(choose_everywhere, 2, tmp_path, MIXES)
    for number, (strategy, mix) in enumerate(MIXES):
        expected, expected_scores = _choose(strategy, mix)
        for rank in range(2):
            choice = np.load(tmp_path / f"{number}-{rank}.npz")
            np.testing.assert_array_equal(choice["indices"], expected)
            np.testing.assert_allclose(choice["scores"], expected_scores, rtol=1e-5)


# A pool of 40: 0-29 labeled, all embedded at x = 0; candidates 30-39 at known 1-D positions
# with known scores. 30 is the passive draw and holds the lowest score of all.
POSITIONS = {30: 100.0, 31: 1.0, 32: 2.0, 33: 3.0, 34: 4.0, 35: 5.0, 36: 6.0, 37: 50.0,
             38: 40.0, 39: 7.0}
SCORES = {30: -10.0, 31: 9.0, 32: 8.0, 33: 7.0, 34: 6.0, 35: 5.0, 36: 4.0, 37: 3.0, 38: 2.0,
          39: 0.0}


def _weighted_k_center(shortlist, weights, centers, count):
    """The reference: each step takes the candidate whose distance to the nearest center
    (labeled or chosen), times its weight, is largest."""
    centers, picks = list(centers), []
    for _ in range(count):
        gain = {unit: weights[unit] * min(abs(POSITIONS[unit] - c) for c in centers)
                for unit in shortlist if unit not in picks}
        best = max(gain, key=gain.get)
        picks.append(best)
        centers.append(POSITIONS[best])
    return picks


def test_a_coreset_mix_with_a_passive_share_against_a_hand_built_reference(monkeypatch):
    adapter = ToyClassificationAdapter(n_train=40)
    state = PoolState.empty(40)
    state.mark_labeled(np.arange(30), cycle=0)
    config = LoopConfig(strategy="entropy", budget=4, subset_size=0, progress=False,
                        diversity="coreset", diversity_factor=2, random_fraction=0.25)
    position = np.zeros(40)
    position[list(POSITIONS)] = list(POSITIONS.values())

    def scored(adapter, model, loss_module, strategy, samples, *args, **kwargs):
        return {"unit_ids": np.asarray(samples), "scores": np.array([SCORES[s] for s in samples])}

    def embedded(adapter, model, samples, *args, **kwargs):
        return torch.as_tensor(position[np.asarray(samples)]).reshape(-1, 1)

    monkeypatch.setattr(selection, "score_sharded", scored)
    monkeypatch.setattr(mixing, "embed", embedded)
    monkeypatch.setattr(selection, "draw_passive", lambda candidates, count, seed: np.array([30]))
    indices, ranks = select_next(adapter, None, None, state, 0, config, CPU)

    # budget 4: round(0.25 x 4) = 1 passive, 3 by the score; the shortlist is 2 x (4 - 1) = 6
    # best of the other candidates (not 2 x 4 = 8: 37 at x = 50 would then be picked first)
    shortlist = sorted((unit for unit in SCORES if unit != 30), key=lambda u: -SCORES[u])[:6]
    assert shortlist == [31, 32, 33, 34, 35, 36]
    # weights over every scored candidate, the passive one included: (s + 10) / (9 + 10)
    weights = {unit: (SCORES[unit] + 10) / 19 for unit in shortlist}
    expected = _weighted_k_center(shortlist, weights, [0.0], 3)
    # by hand: x w = 1, 1.89, 2.68, 3.37, 3.95, 4.42 -> 36; to {0, 6}: 1, 1.89, 2.68, 1.68,
    # 0.79 -> 33; to {0, 3, 6}: 1, 0.95, 0.84, 0.79 -> 31
    assert expected == [36, 33, 31]
    assert indices.tolist() == expected + [30]
    np.testing.assert_allclose(ranks, [1, 3 / 4, 2 / 4, 1 / 4])
    # the wrong normalisations choose otherwise: over the shortlist (4..9), over the non-passive
    # scores (0..9)
    assert _weighted_k_center(shortlist, {u: (SCORES[u] - 4) / 5 for u in shortlist}, [0.0],
                              3) != expected
    assert _weighted_k_center(shortlist, {u: SCORES[u] / 9 for u in shortlist}, [0.0],
                              3) != expected
