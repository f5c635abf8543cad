"""Model-based outliers, HDBSCAN's condensed tree, GLOSH and the cluster-outlier sampling.

GLOSH and the condensed tree are checked against the hdbscan package (an independent
implementation, run on the same points); the model-based outlier ranks against a plain
transcription of Munro's ``get_rank`` loop; the cluster-outlier sampling on hand cases.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from active_learning import choose_new_labeled_indices
from active_learning.strategies.outliers import (
    activation_ranks,
    cluster_outlier_sample,
    condensed_tree,
    glosh_scores,
    hdbscan_glosh,
    model_outlier_scores,
)

hdbscan = pytest.importorskip("hdbscan")


# ----------------------------------------------------------------------------------------------
# model-based outliers
# ----------------------------------------------------------------------------------------------
def munro_rank(value: float, rankings: list[float]) -> float:
    """Munro's get_rank (pytorch_active_learning, diversity_sampling.py), as a plain loop."""
    index = 0
    for ranked in rankings:
        if value < ranked:
            break
        index += 1
    if index >= len(rankings):
        index = len(rankings)
    elif index > 0:
        index = index - 1 + (value - rankings[index - 1]) / (rankings[index] - rankings[index - 1])
    return index / len(rankings)


def test_activation_ranks_match_munros_loop_with_ties_and_values_outside_the_range():
    rng = np.random.default_rng(0)
    reference = np.round(rng.normal(size=(5, 9)), 1)            # rounded: repeated values
    reference[0, :4] = 0.0                                       # a ReLU neuron: many zeros
    values = np.concatenate([np.round(rng.normal(size=(5, 30)) * 1.5, 1), reference[:, :3],
                             np.full((5, 1), -9.0), np.full((5, 1), 9.0)], axis=1)
    got = activation_ranks(torch.sort(torch.as_tensor(reference), dim=1).values,
                           torch.as_tensor(values)).numpy()
    expected = [[munro_rank(v, sorted(reference[d])) for v in values[d]] for d in range(5)]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_model_outlier_scores_by_hand():
    labeled = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]])
    # a: ranks 1.5/4 and 1.5/4; b: above every labeled value on neuron 0, below on neuron 1
    candidates = np.array([[1.5, 25.0], [5.0, 0.0]])
    np.testing.assert_allclose(model_outlier_scores(candidates, labeled, "mean"), [0.625, 0.5])
    np.testing.assert_allclose(model_outlier_scores(candidates, labeled, "max"), [0.625, 0.0])
    # against the labeled set, not the raw activations (fsdl's lowest mean activation picks b)
    indices, scores = choose_new_labeled_indices("mb_outliers_mean", [7, 9], 1,
                                                 inputs={"embedding": candidates},
                                                 labeled_embeddings=labeled)
    assert indices.tolist() == [7] and scores.tolist() == [0.625]
    indices, _ = choose_new_labeled_indices("mb_outliers_max", [7, 9], 1,
                                            inputs={"embedding": candidates}, labeled_embeddings=labeled)
    assert indices.tolist() == [7]


def test_model_outlier_scores_do_not_depend_on_the_chunk_size():
    rng = np.random.default_rng(1)
    labeled, candidates = rng.normal(size=(20, 6)), rng.normal(size=(37, 6)) * 2
    whole = model_outlier_scores(candidates, labeled, "mean", chunk_size=1000)
    np.testing.assert_allclose(model_outlier_scores(candidates, labeled, "mean", chunk_size=5), whole,
                               rtol=1e-14)
    # ranked against the labeled items: the other candidates do not matter
    np.testing.assert_allclose(model_outlier_scores(candidates[:9], labeled, "mean"), whole[:9], rtol=1e-14)


# ----------------------------------------------------------------------------------------------
# condensed tree and GLOSH against the hdbscan package
# ----------------------------------------------------------------------------------------------
def _blobs(seed: int, duplicates: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = [rng.normal(loc, scale, size=(count, 3)) for loc, scale, count in
             [(0.0, 0.3, 60), (4.0, 0.5, 45), (-4.0, 0.2, 30)]]
    parts.append(rng.uniform(-8, 8, size=(15, 3)))                  # scattered noise
    x = np.concatenate(parts)
    if duplicates:
        x[5:11] = x[4]                              # seven copies of one point: a cluster of its own
    return x


def _sklearn_linkage(x, min_cluster_size):
    from sklearn.cluster import HDBSCAN

    tree = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1, copy=True).fit(x)._single_linkage_tree_
    return np.column_stack([tree["left_node"], tree["right_node"], tree["value"], tree["cluster_size"]])


@pytest.mark.parametrize("seed, min_cluster_size", [(0, 5), (1, 10), (2, 25), (3, 60)])
def test_condensed_tree_matches_hdbscans(seed, min_cluster_size):
    x = _blobs(seed)
    reference = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1).fit(x)
    theirs = reference.condensed_tree_.to_numpy()
    ours = condensed_tree(_sklearn_linkage(x, min_cluster_size), min_cluster_size)
    n = len(x)
    for tree in (theirs, ours):   # every point leaves exactly once
        assert sorted(tree["child"][tree["child"] < n].tolist()) == list(range(n))
    lam = {int(c): v for c, v in zip(ours["child"], ours["lambda_val"]) if c < n}
    lam_ref = {int(c): v for c, v in zip(theirs["child"], theirs["lambda_val"]) if c < n}
    np.testing.assert_allclose([lam[i] for i in range(n)], [lam_ref[i] for i in range(n)], rtol=1e-9)
    # the same clusters: their sizes and birth lambdas, whatever their labels
    def clusters(tree):
        rows = tree[tree["child"] >= n]
        return sorted(zip(rows["child_size"].tolist(), np.round(rows["lambda_val"], 9).tolist()))
    assert clusters(ours) == clusters(theirs)


@pytest.mark.parametrize("seed, min_cluster_size", [(0, 5), (1, 10), (2, 25), (4, 8)])
def test_glosh_scores_match_hdbscans(seed, min_cluster_size):
    x = _blobs(seed)
    reference = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1).fit(x)
    labels, scores, used = hdbscan_glosh(x, min_cluster_size=min_cluster_size)
    assert used == min_cluster_size
    np.testing.assert_allclose(scores, reference.outlier_scores_, rtol=1e-9, atol=1e-12)
    # the same partition (labels may be numbered otherwise)
    pairs = set(zip(labels.tolist(), reference.labels_.tolist()))
    assert len(pairs) == len(set(labels.tolist())) == len(set(reference.labels_.tolist()))
    assert all((a == -1) == (b == -1) for a, b in pairs)


def test_glosh_with_exact_duplicates_is_zero_where_hdbscan_gives_nan():
    x = _blobs(5, duplicates=True)
    reference = hdbscan.HDBSCAN(min_cluster_size=5, min_samples=1).fit(x)
    _, scores, _ = hdbscan_glosh(x, min_cluster_size=5)
    theirs = reference.outlier_scores_
    finite = np.isfinite(theirs)
    assert not finite.all()                                 # the case this test is about
    np.testing.assert_allclose(scores[finite], theirs[finite], rtol=1e-9, atol=1e-12)
    assert (scores[~finite] == 0).all() and (scores[4:11] == 0).all()


def test_glosh_of_a_hand_built_tree():
    # points 0..3; cluster 4 (root) splits at lambda 1 into clusters 5 = {0, 1} and 6 = {2, 3};
    # 0 leaves 5 at lambda 4, 1 at lambda 2; 2 and 3 leave 6 at lambda 3; 4's deepest point: 4
    tree = np.array([(4, 5, 1.0, 2), (4, 6, 1.0, 2), (5, 0, 4.0, 1), (5, 1, 2.0, 1), (6, 2, 3.0, 1),
                     (6, 3, 3.0, 1)], dtype=[("parent", np.intp), ("child", np.intp), ("lambda_val", float),
                                             ("child_size", np.intp)])
    np.testing.assert_allclose(glosh_scores(tree, 4), [0.0, 0.5, 0.0, 0.0])


def _first_size_with_a_cluster(x, size=100):
    """fsdl's halving, with the hdbscan package."""
    while hdbscan.HDBSCAN(min_cluster_size=size, min_samples=1).fit(x).labels_.max() < 0:
        size //= 2
    return size


def test_hdbscan_glosh_halves_the_cluster_size_until_a_cluster_appears():
    x = _blobs(0)[:135]                            # 135 points, clusters of 60, 45 and 30
    labels, _, used = hdbscan_glosh(x, min_cluster_size=100)
    assert used == _first_size_with_a_cluster(x) < 100 and labels.max() >= 0
    labels, scores, used = hdbscan_glosh(np.zeros((1, 3)))
    assert labels.tolist() == [-1] and scores.tolist() == [0.0]


def test_glosh_strategy_picks_hdbscans_highest_outlier_scores():
    x = _blobs(6)
    reference = hdbscan.HDBSCAN(min_cluster_size=_first_size_with_a_cluster(x), min_samples=1).fit(x)
    candidates = np.arange(len(x)) + 1000
    indices, scores = choose_new_labeled_indices("mb_outliers_glosh", candidates, 10,
                                                 inputs={"embedding": torch.as_tensor(x).float()})
    expected = np.argsort(-reference.outlier_scores_, kind="stable")[:10]
    assert sorted(indices.tolist()) == sorted((expected + 1000).tolist())
    np.testing.assert_allclose(scores, np.sort(reference.outlier_scores_)[::-1][:10], rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# cluster-outlier sampling (mb_clustering)
# ----------------------------------------------------------------------------------------------
def test_cluster_outlier_sample_spreads_the_budget_evenly_with_a_fifth_from_the_outliers():
    labels = np.repeat([0, 1], 50)
    scores = np.tile(np.linspace(0.0, 0.99, 50), 2)     # each cluster's top 5 are its outliers
    picked = cluster_outlier_sample(labels, scores, 10, np.random.default_rng(0))
    assert len(set(picked.tolist())) == 10
    for cluster in (0, 1):
        mine = picked[labels[picked] == cluster]
        assert len(mine) == 5
        threshold = np.quantile(scores[labels == cluster], 0.9)
        assert (scores[mine] >= threshold).sum() == 1    # int(5 * 0.2) outliers, 4 regular


def test_cluster_outlier_sample_gives_the_remainder_to_the_first_clusters():
    labels = np.repeat([0, 1, 2], 40)
    scores = np.tile(np.linspace(0.0, 1.0, 40), 3)
    picked = cluster_outlier_sample(labels, scores, 7, np.random.default_rng(1))
    assert np.bincount(labels[picked], minlength=3).tolist() == [3, 2, 2]


def test_cluster_outlier_sample_passes_a_shortfall_on_and_fills_from_noise():
    labels = np.array([0] * 3 + [1] * 30 + [-1] * 10)
    scores = np.linspace(0.0, 1.0, len(labels))
    picked = cluster_outlier_sample(labels, scores, 20, np.random.default_rng(2))
    counts = {c: int((labels[picked] == c).sum()) for c in (0, 1, -1)}
    assert counts[0] == 3 and counts[1] == 17 and counts[-1] == 0   # cluster 0's shortfall goes to 1
    picked = cluster_outlier_sample(labels, scores, 40, np.random.default_rng(2))
    assert len(set(picked.tolist())) == 40 and (labels[picked] == -1).sum() == 7   # 33 in clusters
    assert len(cluster_outlier_sample(np.full(8, -1), np.zeros(8), 5, np.random.default_rng(0))) == 5


def test_cluster_outlier_sample_splits_a_cluster_without_outlier_structure_at_random():
    labels, scores = np.zeros(50, dtype=int), np.zeros(50)        # every GLOSH score 0
    picked = cluster_outlier_sample(labels, scores, 10, np.random.default_rng(3))
    assert len(set(picked.tolist())) == 10


def test_mb_clustering_returns_distinct_candidates_and_is_seeded():
    x = torch.as_tensor(_blobs(7)).float()
    candidates = np.arange(len(x)) * 3
    first, scores = choose_new_labeled_indices("mb_clustering", candidates, 12, inputs={"embedding": x},
                                               seed=4)
    again, _ = choose_new_labeled_indices("mb_clustering", candidates, 12, inputs={"embedding": x}, seed=4)
    other, _ = choose_new_labeled_indices("mb_clustering", candidates, 12, inputs={"embedding": x}, seed=5)
    assert len(set(first.tolist())) == 12 and set(first.tolist()) <= set(candidates.tolist())
    assert first.tolist() == again.tolist() and first.tolist() != other.tolist()
    assert (np.diff(scores) < 0).all()
