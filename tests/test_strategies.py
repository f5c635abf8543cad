"""The strategy registry and choose_new_labeled_indices: exact rankings, absolute indices."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from active_learning import choose_new_labeled_indices, get_strategy, list_strategies
from active_learning.strategies import Strategy, register_strategy

DESIGN_NAMES = ["random", "least_confidence", "margin", "ratio", "entropy", "mc_entropy", "bald",
                "variation_ratio", "mc_variance", "loss_prediction", "discriminative", "coreset", "badge"]

# Six candidates with absolute dataset indices that are NOT positions 0..5.
CANDIDATES = np.array([100, 205, 307, 411, 512, 618])
PROBS = torch.tensor([
    [0.30, 0.20, 0.25, 0.25],   # 100: flat             LC .70  margin .95  ratio .833  H 1.376
    [0.55, 0.45, 0.00, 0.00],   # 205: two-way          LC .45  margin .90  ratio .818  H 0.688
    [0.40, 0.32, 0.28, 0.00],   # 307: three-way        LC .60  margin .92  ratio .800  H 1.088
    [0.70, 0.10, 0.10, 0.10],   # 411: confident, tail  LC .30  margin .40  ratio .143  H 0.940
    [0.85, 0.15, 0.00, 0.00],   # 512: confident        LC .15  margin .30  ratio .176  H 0.423
    [0.50, 0.50, 0.00, 0.00],   # 618: coin flip        LC .50  margin 1.0  ratio 1.00  H 0.693
])  # [N=6, C=4]


def _brute_force(name: str, p: np.ndarray) -> np.ndarray:
    """Independent per-row formulas (plain Python loops over classes) for p: [N, C]."""
    out = []
    for row in p.tolist():
        top1, top2 = sorted(row, reverse=True)[:2]
        out.append({
            "least_confidence": 1 - top1,
            "margin": 1 - (top1 - top2),
            "ratio": top2 / top1,
            "entropy": -sum(q * np.log(q) for q in row if q > 0),
        }[name])
    return np.array(out)


@pytest.mark.parametrize("name, expected", [
    ("least_confidence", [100, 307, 618, 205, 411, 512]),
    ("margin", [618, 100, 307, 205, 411, 512]),
    ("ratio", [618, 100, 205, 307, 512, 411]),
    ("entropy", [100, 307, 411, 618, 205, 512]),
])
def test_probability_strategies_rank_exactly(name, expected):
    indices, scores = choose_new_labeled_indices(name, CANDIDATES, 6, inputs={"probs": PROBS})
    assert indices.dtype == np.int64 and scores.dtype == np.float64
    assert indices.tolist() == expected
    reference = dict(zip(CANDIDATES.tolist(), _brute_force(name, PROBS.numpy().astype(np.float64))))
    np.testing.assert_allclose(scores, [reference[i] for i in expected], atol=1e-6)
    # A smaller budget is the head of the same ranking.
    top3, _ = choose_new_labeled_indices(name, CANDIDATES, 3, inputs={"probs": PROBS})
    assert top3.tolist() == expected[:3]


# Four candidates, T=3 MC samples, C=2.
MC_CANDIDATES = np.array([40, 41, 90, 7])
MC_PROBS = torch.tensor([
    # 40: confident, slightly wobbly   41: constant 55/45   90: confident but disagree   7: unsure, disagree
    [[0.9, 0.1], [0.55, 0.45], [0.9, 0.1], [0.60, 0.40]],
    [[0.8, 0.2], [0.55, 0.45], [0.1, 0.9], [0.40, 0.60]],
    [[0.9, 0.1], [0.55, 0.45], [0.9, 0.1], [0.45, 0.55]],
])  # [T=3, N=4, C=2]


def _mc_brute_force(name: str, mc: np.ndarray) -> np.ndarray:
    """Independent formulas for mc: [T, N, C]."""
    def h(p):
        return -sum(q * np.log(q) for q in p if q > 0)

    out = []
    for n in range(mc.shape[1]):
        samples = mc[:, n]  # [T, C]
        mean = samples.mean(axis=0)
        votes = [int(np.argmax(s)) for s in samples]
        out.append({
            "mc_entropy": h(mean),
            "bald": max(h(mean) - np.mean([h(s) for s in samples]), 0.0),
            "variation_ratio": 1 - max(votes.count(c) for c in set(votes)) / len(votes),
            "mc_variance": np.mean(((samples - mean) ** 2).mean(axis=0)),
        }[name])
    return np.array(out)


@pytest.mark.parametrize("name, expected", [
    ("mc_entropy", [7, 41, 90, 40]),
    ("bald", [90, 7, 40, 41]),
    # 90 and 7 tie at 1/3, 40 and 41 at 0: ties keep candidate order.
    ("variation_ratio", [90, 7, 40, 41]),
    ("mc_variance", [90, 7, 40, 41]),
])
def test_mc_strategies_rank_exactly(name, expected):
    indices, scores = choose_new_labeled_indices(name, MC_CANDIDATES, 4, inputs={"mc_probs": MC_PROBS})
    assert indices.tolist() == expected
    reference = dict(zip(MC_CANDIDATES.tolist(), _mc_brute_force(name, MC_PROBS.numpy().astype(np.float64))))
    np.testing.assert_allclose(scores, [reference[i] for i in expected], atol=1e-6)


def test_dense_probabilities_follow_the_reduction():
    # Two images of 2 pixels each, C=2. Image 10: one very unsure pixel, one sure pixel.
    # Image 20: two moderately unsure pixels. "max" prefers 10, "mean" prefers 20.
    probs = torch.tensor([
        [[0.5, 1.0], [0.5, 0.0]],   # image 10: pixel LC .5 and 0 -> mean .25, max .5
        [[0.65, 0.65], [0.35, 0.35]],  # image 20: LC .35 twice -> mean .35, max .35
    ]).reshape(2, 2, 1, 2)  # [N=2, C=2, H=1, W=2]
    mean_pick, mean_scores = choose_new_labeled_indices("least_confidence", [10, 20], 1, inputs={"probs": probs})
    max_pick, max_scores = choose_new_labeled_indices("least_confidence", [10, 20], 1, inputs={"probs": probs},
                                                      reduction="max")
    assert mean_pick.tolist() == [20] and max_pick.tolist() == [10]
    np.testing.assert_allclose(mean_scores, [0.35], atol=1e-6)
    np.testing.assert_allclose(max_scores, [0.5], atol=1e-6)


def test_loss_prediction_picks_highest_predicted_loss():
    loss_pred = torch.tensor([0.3, -1.2, 2.5, 0.9, 2.4])  # [U]
    candidates = [1000, 1001, 1002, 1003, 1004]
    indices, scores = choose_new_labeled_indices("loss_prediction", candidates, 3,
                                                 inputs={"loss_pred": loss_pred})
    assert indices.tolist() == [1002, 1004, 1003]
    np.testing.assert_allclose(scores, [2.5, 2.4, 0.9], atol=1e-6)
    # Precomputed scores give the same answer and need no inputs; [U, 1] predictions work too.
    same, _ = choose_new_labeled_indices("loss_prediction", candidates, 3, scores=loss_pred.numpy())
    assert same.tolist() == [1002, 1004, 1003]
    column, _ = choose_new_labeled_indices("loss_prediction", candidates, 3,
                                           inputs={"loss_pred": loss_pred[:, None]})
    assert column.tolist() == [1002, 1004, 1003]
    assert get_strategy("loss_prediction").companion is not None   # the loss module trains beside the model


def test_ties_keep_candidate_order():
    scores = np.array([0.2, 0.7, 0.7, 0.2, 0.7, 0.1])
    indices, chosen = choose_new_labeled_indices("entropy", [9, 3, 8, 1, 5, 0], 5, scores=scores)
    assert indices.tolist() == [3, 8, 5, 9, 1]
    np.testing.assert_array_equal(chosen, [0.7, 0.7, 0.7, 0.2, 0.2])


def test_registry_has_every_design_name():
    names = list_strategies()
    assert set(DESIGN_NAMES) <= set(names)
    assert len(set(names)) == len(names)
    for name in DESIGN_NAMES:
        strategy = get_strategy(name)
        assert strategy.name == name and strategy.description
        assert get_strategy(strategy) is strategy
    set_strategies = {name for name in DESIGN_NAMES if get_strategy(name).is_set_strategy}
    assert set_strategies == {"coreset", "badge", "discriminative"}


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown strategy 'entropyy'") as info:
        get_strategy("entropyy")
    for name in DESIGN_NAMES:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="known strategies"):
        choose_new_labeled_indices("nope", [1, 2], 1, scores=[0.1, 0.2])


def test_registering_a_duplicate_name_is_refused():
    with pytest.raises(ValueError, match="registered already"):
        register_strategy(Strategy("entropy", frozenset({"probs"}), "again", score_batch=lambda i, r: i))
    with pytest.raises(ValueError, match="unknown inputs"):
        register_strategy(Strategy("needs_magic", frozenset({"magic"}), "x", score_batch=lambda i, r: i))
    assert "needs_magic" not in list_strategies()


def test_budget_larger_than_candidates_warns_and_returns_all():
    with pytest.warns(UserWarning, match="larger than the 6 unlabeled"):
        indices, _ = choose_new_labeled_indices("entropy", CANDIDATES, 50, inputs={"probs": PROBS})
    assert sorted(indices.tolist()) == sorted(CANDIDATES.tolist())
    with pytest.warns(UserWarning):
        indices, _ = choose_new_labeled_indices("random", CANDIDATES, 7)
    assert sorted(indices.tolist()) == sorted(CANDIDATES.tolist())


@pytest.mark.parametrize("name", ["random", "entropy", "coreset"])
def test_empty_candidates_is_an_error(name):
    with pytest.raises(ValueError, match="empty"):
        choose_new_labeled_indices(name, np.array([], dtype=np.int64), 3, scores=np.array([]),
                                   inputs={"embedding": np.zeros((0, 2))}, labeled_embeddings=np.zeros((1, 2)))


@pytest.mark.parametrize("budget", [0, -2])
def test_non_positive_budget_is_an_error(budget):
    with pytest.raises(ValueError, match="budget"):
        choose_new_labeled_indices("entropy", CANDIDATES, budget, inputs={"probs": PROBS})


def test_bad_scores_and_missing_inputs_are_errors():
    with pytest.raises(ValueError, match="got 2 scores for 6 candidates"):
        choose_new_labeled_indices("entropy", CANDIDATES, 2, scores=[0.1, 0.2])
    with pytest.raises(ValueError, match="NaN or infinite"):
        choose_new_labeled_indices("entropy", [1, 2], 1, scores=[0.1, float("nan")])
    with pytest.raises(ValueError, match="needs inputs.*probs"):
        choose_new_labeled_indices("entropy", CANDIDATES, 2)
    with pytest.raises(ValueError, match="needs inputs.*mc_probs"):
        choose_new_labeled_indices("bald", CANDIDATES, 2, inputs={"probs": PROBS})
    with pytest.raises(ValueError, match="needs labeled_embeddings"):
        choose_new_labeled_indices("coreset", CANDIDATES, 2, inputs={"embedding": np.zeros((6, 2))})


def test_random_is_seeded_distinct_and_from_the_candidates():
    candidates = np.arange(50) * 3 + 1000  # [50] absolute indices 1000, 1003, ...
    first, scores = choose_new_labeled_indices("random", candidates, 10, seed=4)
    again, _ = choose_new_labeled_indices("random", candidates, 10, seed=4)
    other, _ = choose_new_labeled_indices("random", candidates, 10, seed=5)
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()
    assert len(set(first.tolist())) == 10 and set(first.tolist()) <= set(candidates.tolist())
    np.testing.assert_allclose(scores, np.arange(10, 0, -1) / 10)  # rank scores, best first


def test_coreset_returns_the_farthest_points_1d():
    # Labeled point at 0. Candidates on a line; k-center greedy picks the point farthest from
    # everything chosen so far: 10 (distance 10), then 5.5 (4.5 from 10 and 5.5 from 0),
    # then 4 (1.5 from 5.5, 4 from 0); 9.5 and 1 stay close to chosen points.
    positions = np.array([[1.0], [10.0], [4.0], [5.5], [9.5]])  # [U=5, D=1]
    candidates = [100, 205, 307, 411, 512]
    indices, scores = choose_new_labeled_indices("coreset", candidates, 3, inputs={"embedding": positions},
                                                 labeled_embeddings=np.array([[0.0]]))
    assert indices.tolist() == [205, 411, 307]
    np.testing.assert_allclose(scores, [1.0, 2 / 3, 1 / 3])


def test_badge_returns_distinct_candidates_starting_with_the_largest_gradient():
    rng = np.random.default_rng(0)
    grad = rng.normal(size=(20, 6))  # [U=20, C*D=6]
    candidates = np.arange(20) * 3 + 1000
    indices, scores = choose_new_labeled_indices("badge", candidates, 5, inputs={"grad_embedding": grad}, seed=2)
    assert len(set(indices.tolist())) == 5 and set(indices.tolist()) <= set(candidates.tolist())
    assert indices[0] == candidates[np.argmax((grad ** 2).sum(axis=1))]
    again, _ = choose_new_labeled_indices("badge", candidates, 5, inputs={"grad_embedding": grad}, seed=2)
    assert again.tolist() == indices.tolist()
    assert np.all(np.diff(scores) < 0)


def test_badge_from_probabilities_and_embeddings_equals_badge_on_gradient_embeddings():
    from active_learning.strategies.diversity import gradient_embedding

    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=30)          # [U=30, C=4]
    embeddings = rng.normal(size=(30, 5))               # [U, D=5]
    candidates = np.arange(30) + 500
    factored, _ = choose_new_labeled_indices("badge", candidates, 8, seed=3,
                                             inputs={"probs": probs, "embedding": embeddings})
    full = gradient_embedding(torch.as_tensor(probs), torch.as_tensor(embeddings)).numpy()  # [U, 20]
    direct, _ = choose_new_labeled_indices("badge", candidates, 8, seed=3, inputs={"grad_embedding": full})
    assert factored.tolist() == direct.tolist()


@pytest.fixture
def one_thread():
    # The discriminator is a tiny MLP: on a busy 2-core machine two intra-op threads make each
    # step ~10x slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_discriminative_returns_distinct_candidates(one_thread):
    rng = np.random.default_rng(0)
    labeled = rng.normal(-3.0, 0.5, size=(10, 2))     # [L, D]
    unlabeled = rng.normal(3.0, 1.0, size=(120, 2))   # [U, D], far from the labeled set
    candidates = np.arange(120) * 7 + 100
    indices, scores = choose_new_labeled_indices("discriminative", candidates, 3,
                                                 inputs={"embedding": unlabeled}, labeled_embeddings=labeled,
                                                 seed=1)
    assert len(indices) == 3 and len(set(indices.tolist())) == 3
    assert set(indices.tolist()) <= set(candidates.tolist())
    np.testing.assert_allclose(scores, [1.0, 2 / 3, 1 / 3])  # rank scores: the CSV keeps the pick order


def test_discriminative_options_reach_the_selector(one_thread):
    from active_learning.strategies.discriminative import DiscriminativeActiveLearning

    rng = np.random.default_rng(3)
    labeled = rng.normal(0.0, 1.0, size=(12, 4))     # [L, D]
    unlabeled = rng.normal(0.5, 1.0, size=(60, 4))   # [U, D]
    candidates = np.arange(60) + 1000
    options = {"max_epochs": 2, "n_sub_queries": 3}
    indices, scores = choose_new_labeled_indices("discriminative", candidates, 6, seed=5, options=options,
                                                 inputs={"embedding": unlabeled}, labeled_embeddings=labeled)
    direct = DiscriminativeActiveLearning(seed=5, **options)
    positions, direct_scores = direct.select(labeled, unlabeled, 6)
    assert direct.epochs_trained_ == [2, 2, 2]  # the options took effect: 3 rounds of 2 epochs
    np.testing.assert_array_equal(indices, candidates[positions])
    np.testing.assert_allclose(scores, [6 / 6, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])  # pick order kept
    assert np.all((direct_scores > 0) & (direct_scores < 1))  # P(unlabeled), one discriminator per round


@pytest.mark.parametrize("strategy, options", [("discriminative", {"epochs": 3}), ("entropy", {"max_epochs": 3})])
def test_an_option_the_strategy_lacks_is_an_error(strategy, options):
    with pytest.raises(ValueError, match="has no option"):
        choose_new_labeled_indices(strategy, np.arange(5), 2, options=options,
                                   inputs={"embedding": np.zeros((5, 2)), "probs": np.full((5, 2), 0.5)},
                                   labeled_embeddings=np.zeros((3, 2)))
