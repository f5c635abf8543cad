"""BatchBALD, TypiClust, ProbCover and Cluster-Margin: against independent implementations
(scikit-activeml, brute force on the same inputs) and hand cases a plausible wrong
version fails."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from active_learning import choose_new_labeled_indices, get_strategy
from active_learning.loop.compatibility import strategy_refusal
from active_learning.loop.units import GroupedUnits, RegionUnits, SelectionUnits
from active_learning.strategies import (
    BOX_DISTRIBUTIONS,
    CLASS_DISTRIBUTIONS,
    HEATMAPS,
    OUTPUT_KINDS,
    PIXEL_DISTRIBUTIONS,
)
from active_learning.strategies.batchbald import (
    batchbald,
    conditional_entropies,
    sample_configurations,
    sampled_joint_entropies,
)
from active_learning.strategies.cluster_margin import cluster_margin, hac_clusters, nearest_rows
from active_learning.strategies.typicality import (
    mean_knn_distances,
    probcover,
    purity_delta,
    typiclust,
)

NEW = ["typiclust", "probcover", "cluster_margin", "batchbald"]


def _first_max(utilities, random_state=None, **_):
    """scikit-activeml's rand_argmax breaks ties at random; the first maximum makes it
    deterministic, as ours (the lowest position)."""
    return np.array([int(np.nanargmax(utilities))])


def _mc(seed: int, k: int, u: int, c: int, concentration: float = 0.5) -> np.ndarray:
    """[K, U, C] MC samples: each a Dirichlet draw (diverse, so that BALD scores differ)."""
    return np.random.default_rng(seed).dirichlet(np.full(c, concentration), size=(k, u))


def _mixture(seed: int, sizes, dim: int = 8, spread: float = 1.0) -> np.ndarray:
    """Rows of well-separated Gaussian clusters, L2-normalised: [sum(sizes), dim]."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes)])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------
# BatchBALD
# ------------------------------------------------------------------------------------------
def _brute_force_mi(p: np.ndarray, batch: list[int]) -> float:
    """I(y_batch; w) by enumerating every label configuration: p [K, U, C]."""
    k, _, c = p.shape
    joint = 0.0
    for labels in itertools.product(range(c), repeat=len(batch)):
        prob = np.mean([np.prod([p[m, i, y] for i, y in zip(batch, labels)]) for m in range(k)])
        joint -= prob * np.log(prob) if prob > 0 else 0.0
    conditional = sum(-np.sum(p[:, i] * np.log(p[:, i])) / k for i in batch)
    return joint - conditional


def test_batchbald_exact_mutual_information_matches_enumeration():
    p = _mc(0, k=6, u=12, c=3)
    picks, values = batchbald(p, 4, joint_samples=10**6)
    chosen: list[int] = []
    for value, pick in zip(values, picks):
        best = max((i for i in range(12) if i not in chosen),
                   key=lambda i: _brute_force_mi(p, chosen + [i]))
        chosen.append(best)
        assert pick == best and value == pytest.approx(_brute_force_mi(p, chosen), abs=1e-9)


def test_batchbald_matches_scikit_activeml_exact_joint_entropy():
    from skactiveml.pool._bald import batch_bald

    p = _mc(3, k=8, u=25, c=4)
    picks, values = batchbald(p, 4, joint_samples=4**3)        # exact throughout
    utilities = batch_bald(p.copy(), 4, n_MC_samples=4**3, random_state=0)    # [B, U]
    np.testing.assert_array_equal(picks, np.nanargmax(utilities, axis=1))
    np.testing.assert_allclose(values, np.nanmax(utilities, axis=1), atol=1e-5)


def test_the_sampled_estimator_matches_scikit_activeml_on_the_same_samples():
    from skactiveml.pool._bald import _SampledJointEntropy

    p = _mc(4, k=5, u=9, c=3)
    probs = torch.as_tensor(p).permute(1, 0, 2).double()               # [U, K, C]
    samples = sample_configurations(probs[[2, 7, 4]], 40, torch.Generator().manual_seed(1))
    ours = sampled_joint_entropies(samples, probs).numpy()             # [U]
    reference = _SampledJointEntropy(samples.numpy()).compute_batch(np.log(probs.numpy()))
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_conditional_entropies_are_each_candidates_mean_entropy_over_the_samples():
    p = _mc(1, k=10, u=30, c=4, concentration=0.3)                    # [K, U, C]
    expected = np.mean([[-np.sum(p[k, u] * np.log(p[k, u])) for u in range(30)] for k in range(10)], axis=0)
    ours = conditional_entropies(torch.as_tensor(p).permute(1, 0, 2).double()).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_the_sampled_estimate_is_close_to_the_exact_value():
    p = _mc(5, k=10, u=20, c=3)
    exact_picks, exact = batchbald(p, 4, joint_samples=10**6)
    sampled_picks, sampled = batchbald(p, 4, joint_samples=20000, max_exact=1, seed=0)
    np.testing.assert_array_equal(sampled_picks[:2], exact_picks[:2])
    np.testing.assert_allclose(sampled, exact, atol=0.02)      # ~1/sqrt(M) noise, not a bias


def test_batchbald_skips_a_duplicate_that_top_k_bald_takes():
    # 4 MC samples, each certain of its label: the labels disagree across samples. Image 0 and
    # its copy 1 split the samples {0,1} | {2,3}; image 2 splits {0,2} | {1,3} a bit less surely.
    certain = np.eye(2)
    p = np.zeros((4, 3, 2))
    for k in range(4):
        p[k, 0] = p[k, 1] = certain[k // 2]
        p[k, 2] = [0.9, 0.1] if k % 2 == 0 else [0.1, 0.9]
    bald = get_strategy("bald").score({"mc_probs": torch.as_tensor(p)})
    assert torch.topk(bald, 2).indices.tolist() == [0, 1]                 # the copy
    picks, values = batchbald(p, 2)
    assert picks.tolist() == [0, 2]     # the copy adds nothing: I(y0, y1; w) = I(y0; w)
    assert values[1] > values[0]


def test_batchbald_through_the_registry_returns_absolute_indices_in_pick_order():
    p = _mc(6, k=5, u=6, c=3)
    candidates = np.array([100, 205, 307, 411, 512, 618])
    indices, scores = choose_new_labeled_indices("batchbald", candidates, 3,
                                                 inputs={"mc_probs": torch.as_tensor(p)})
    picks, _ = batchbald(p, 3)
    np.testing.assert_array_equal(indices, candidates[picks])
    assert list(scores) == sorted(scores, reverse=True)


# ------------------------------------------------------------------------------------------
# TypiClust
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_labeled, budget", [(0, 3), (6, 4)])
def test_typiclust_matches_scikit_activeml(monkeypatch, n_labeled, budget):
    import skactiveml.pool._typi_clust as reference
    from skactiveml.pool import TypiClust

    monkeypatch.setattr(reference, "rand_argmax", _first_max)
    x = _mixture(0, [15, 22, 30, 38, 45, 27])
    y = np.full(len(x), np.nan)
    y[:n_labeled] = 0
    expected = TypiClust(random_state=3, k=5).query(x, y, batch_size=budget)
    picks, _ = typiclust(x[:n_labeled], x[n_labeled:], budget, k_neighbors=5,
                         min_cluster_size=0, normalize=False, seed=3)
    np.testing.assert_array_equal(picks + n_labeled, expected)


def test_typiclust_skips_the_covered_cluster_and_picks_the_densest_point():
    # Cluster A (12 points) holds the labeled point; cluster B (8 points) is uncovered. In B a
    # tight clump of 5 sits at one end: the most typical point is in it, not at the centroid.
    rng = np.random.default_rng(0)
    a = np.array([10.0, 0.0]) + 0.3 * rng.normal(size=(12, 2))
    clump = np.array([0.0, 0.0]) + 0.01 * rng.normal(size=(5, 2))
    sparse = np.array([[0.0, 1.0], [0.0, 1.6], [0.0, 2.2]])
    labeled, candidates = a[:1], np.concatenate([a[1:], clump, sparse])
    picks, _ = typiclust(labeled, candidates, 1, k_neighbors=2, normalize=False, seed=0)
    assert picks[0] in range(11, 16)                               # the clump of B
    # nothing labeled, two clusters: the larger, A, comes first
    picks, _ = typiclust(None, candidates, 2, k_neighbors=2, normalize=False, seed=0)
    assert picks[0] < 11 and picks[1] in range(11, 16)


def test_typiclust_visits_the_clusters_round_robin_beyond_the_uncovered_ones():
    x = _mixture(1, [20, 20, 20])
    picks, _ = typiclust(x[:2], x[2:], 7, k_neighbors=3, max_clusters=3, normalize=False)
    labels = np.repeat([0, 1, 2], 20)[2:][picks]
    assert len(set(picks.tolist())) == 7 and sorted(np.bincount(labels)) == [2, 2, 3]


def test_mean_knn_distances_match_brute_force_in_blocks(monkeypatch):
    import active_learning.strategies.typicality as typicality

    x = torch.as_tensor(np.random.default_rng(2).normal(size=(30, 5)))
    full = np.linalg.norm(x.numpy()[:, None] - x.numpy()[None], axis=2)
    np.fill_diagonal(full, np.inf)                                  # a row is not its neighbour
    expected = np.sort(full, axis=1)[:, :4].mean(axis=1)
    monkeypatch.setattr(typicality, "_BLOCK_ELEMENTS", 70)         # blocks of 2 rows
    np.testing.assert_allclose(mean_knn_distances(x, 4).numpy(), expected, atol=1e-9)


# ------------------------------------------------------------------------------------------
# ProbCover
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("max_edges, small_blocks", [(1 << 25, False), (0, False), (1 << 25, True),
                                                     (0, True)])   # kept graph / lazy greedy
def test_probcover_matches_scikit_activeml(monkeypatch, delta, max_edges, small_blocks):
    import skactiveml.pool._prob_cover as reference
    from skactiveml.pool import ProbCover

    import active_learning.strategies.typicality as typicality

    monkeypatch.setattr(reference, "rand_argmax", _first_max)
    if small_blocks:   # blocks of a few rows and columns: the same picks
        monkeypatch.setattr(typicality, "_BLOCK_ELEMENTS", 600)
        monkeypatch.setattr(typicality, "_COLUMN_ROWS", 16)
    x = _mixture(0, [15, 22, 30, 38, 45, 27])
    y = np.full(len(x), np.nan)
    y[:5] = 0
    with pytest.warns(UserWarning):   # one delta given: no purity to reach
        expected = ProbCover(deltas=[delta], random_state=0).query(x, y, batch_size=4)
    picks, gains, used = probcover(x[:5], x[5:], 4, delta=delta, normalize=False,
                                   max_edges=max_edges)
    assert gains.min() > 0               # still covering: no picks at random to compare
    np.testing.assert_array_equal(picks + 5, expected)
    assert used == delta and list(gains) == sorted(gains, reverse=True)


def test_purity_delta_matches_scikit_activeml():
    from skactiveml.pool import ProbCover

    x = _mixture(0, [15, 22, 30, 38, 45, 27])
    y = np.full(len(x), np.nan)
    deltas = np.round(np.arange(0.05, 2.0, 0.05), 2)
    reference = ProbCover(n_classes=6, deltas=deltas, random_state=0)
    reference.query(x, y, batch_size=1)
    assert purity_delta(torch.as_tensor(x), 6, deltas=deltas, seed=0) == reference.delta_max_


def test_probcover_counts_only_what_the_labeled_balls_leave_uncovered():
    # 1-D points; with delta 0.15 the balls are {0, .1}, {0, .1, .2}, {.1, .2}, {5, 5.1} x 2, {10}
    points = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [10.0]])
    picks, gains, _ = probcover(None, points, 3, delta=0.15, normalize=False)
    assert picks.tolist() == [1, 3, 5] and gains.tolist() == [3, 2, 1]
    # labeled at 0.1 covers 0, .1, .2: candidate 0's ball adds nothing, 5's adds two
    picks, gains, _ = probcover(points[1:2], points[[0, 2, 3, 4, 5]], 2, delta=0.15,
                                normalize=False)
    assert picks.tolist() == [2, 4] and gains.tolist() == [2, 1]


def test_probcover_picks_distinct_candidates_once_everything_is_covered():
    points = np.array([[0.0], [0.1], [5.0], [5.1]])
    picks, gains, _ = probcover(None, points, 4, delta=0.5, normalize=False, seed=3)
    assert sorted(picks.tolist()) == [0, 1, 2, 3] and gains.tolist() == [2, 2, 0, 0]


# ------------------------------------------------------------------------------------------
# Cluster-Margin (no reference implementation: hand cases)
# ------------------------------------------------------------------------------------------
def _groups(sizes, seed=0):
    """Embeddings of tight, far apart groups [sum(sizes), 2] and each row's group."""
    rng = np.random.default_rng(seed)
    rows = [np.array([20.0 * g, 0.0]) + 0.1 * rng.normal(size=(n, 2)) for g, n in enumerate(sizes)]
    return np.concatenate(rows), np.repeat(np.arange(len(sizes)), sizes)


def test_cluster_margin_keeps_only_the_smallest_margins():
    x, _ = _groups([10, 10])
    probs = np.random.default_rng(1).dirichlet(np.ones(3), size=20)
    top = np.sort(probs, axis=1)[:, ::-1]
    smallest = np.argsort(top[:, 0] - top[:, 1], kind="stable")[:4]
    picks, margins = cluster_margin(probs, x, 4, margin_factor=1, cluster_size=10)
    assert sorted(picks.tolist()) == sorted(smallest.tolist())
    np.testing.assert_allclose(margins, (top[:, 0] - top[:, 1])[picks])


def test_cluster_margin_serves_the_smallest_cluster_first_then_round_robin():
    x, group = _groups([1, 3, 5])                   # HAC into 9 // 3 = 3 clusters: the groups
    probs = np.full((9, 2), 0.5)
    picks, _ = cluster_margin(probs, x, 5, cluster_size=3)
    assert group[picks].tolist()[:3] == [0, 1, 2]   # one from each, smallest cluster first
    assert sorted(group[picks].tolist()) == [0, 1, 1, 2, 2]


def test_cluster_margin_picks_at_random_inside_a_cluster():
    x, _ = _groups([12])
    probs = np.column_stack([np.linspace(0.5, 0.9, 12), 1 - np.linspace(0.5, 0.9, 12)])
    firsts = {int(cluster_margin(probs, x, 1, cluster_size=12, seed=s)[0][0]) for s in range(8)}
    assert len(firsts) > 1                          # not always the smallest margin (0)
    again = cluster_margin(probs, x, 3, cluster_size=12, seed=5)[0]
    np.testing.assert_array_equal(again, cluster_margin(probs, x, 3, cluster_size=12, seed=5)[0])


def test_hac_is_average_linkage():
    from scipy.cluster.hierarchy import cut_tree, linkage

    x = np.random.default_rng(4).normal(size=(40, 3))
    ours = hac_clusters(x, 6)
    for method, same in (("average", True), ("ward", False), ("single", False)):
        theirs = cut_tree(linkage(x, method=method), n_clusters=6).ravel()
        # same partition: each of our clusters is one of theirs
        pairs = len(set(zip(ours.tolist(), theirs.tolist())))
        assert (pairs == 6) == same, method


def test_candidates_outside_the_hac_sample_join_their_nearest_sampled_point():
    x, group = _groups([30, 30, 30])
    probs = np.full((90, 2), 0.5)
    picks, _ = cluster_margin(probs, x, 3, margin_factor=30, cluster_size=3, hac_sample=9, seed=2)
    assert sorted(group[picks].tolist()) == [0, 1, 2]
    reference = torch.as_tensor(x[::7])
    brute = np.linalg.norm(x[:, None] - reference.numpy()[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(nearest_rows(torch.as_tensor(x), reference), brute)


# ------------------------------------------------------------------------------------------
# The registry's rules: which tasks and units each strategy fits
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_registered_as_set_strategies_with_their_needs(name):
    strategy = get_strategy(name)
    assert strategy.is_set_strategy and strategy.description
    assert strategy.needs_labeled_embeddings == (name in ("typiclust", "probcover"))


def test_embedding_strategies_fit_every_task_and_the_others_one_distribution_per_image():
    for kind in OUTPUT_KINDS:
        for units in (SelectionUnits, GroupedUnits):
            for name in ("typiclust", "probcover"):
                assert strategy_refusal(get_strategy(name), kind, units) is None
        assert strategy_refusal(get_strategy("typiclust"), kind, RegionUnits) is not None
    for name in ("cluster_margin", "batchbald"):
        strategy = get_strategy(name)
        assert strategy_refusal(strategy, CLASS_DISTRIBUTIONS, SelectionUnits) is None
        for kind in (PIXEL_DISTRIBUTIONS, BOX_DISTRIBUTIONS, HEATMAPS):
            assert "reads" in strategy_refusal(strategy, kind, SelectionUnits)
        # images that group several samples have no one distribution per image
        assert "per image" in strategy_refusal(strategy, CLASS_DISTRIBUTIONS, GroupedUnits)


def test_the_loop_gathers_mc_samples_sample_major_and_hands_them_back_as_t_u_c():
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.scoring import score_candidates
    from active_learning.loop.selection import choose
    from active_learning.strategies import MC_PROBS, Strategy
    from toy_adapters import ToyClassificationAdapter

    adapter = ToyClassificationAdapter(n_train=30)
    torch.manual_seed(0)
    model = adapter.build_model()
    model.dropout.p = 0.0              # every MC sample is the deterministic prediction
    config = LoopConfig(strategy="batchbald", mc_samples=3, eval_batch_size=4, progress=False)
    samples = np.array([29, 3, 17, 8, 0, 21, 12, 5, 26, 14])     # batches of 4, 4, 2
    computed = score_candidates(adapter, model, None, get_strategy("batchbald"), samples, config,
                                torch.device("cpu"))
    inputs = torch.stack([adapter.train_set[i][0] for i in samples])
    model.eval()
    with torch.inference_mode():
        expected = torch.softmax(model(inputs), dim=1)                            # [S, C]
    assert computed[MC_PROBS].shape == (10, 3, 3)                               # [S, T, C]
    for t in range(3):
        torch.testing.assert_close(computed[MC_PROBS][:, t], expected)
    seen = {}

    def record(inputs, labeled_embeddings, budget, seed):
        seen["mc_probs"] = inputs[MC_PROBS]
        return np.arange(budget), np.ones(budget)

    recording = Strategy("recording", frozenset({MC_PROBS}), "records", select_set=record)
    chosen, _ = choose(recording, SelectionUnits(30), samples, samples, computed, None, 2, 0,
                        config)
    assert seen["mc_probs"].shape == (3, 10, 3) and chosen.tolist() == [29, 3]   # [T, S, C]
    torch.testing.assert_close(seen["mc_probs"][1], expected)
