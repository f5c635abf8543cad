import numpy as np
import pytest
import torch
import torch.nn.functional as F

from active_learning.strategies.diversity import (
    badge,
    badge_factored,
    gradient_embedding,
    k_center_greedy,
)


# ----------------------------------------------------------------------------------------------
# k-center greedy
# ----------------------------------------------------------------------------------------------
def brute_force_k_center(x: np.ndarray, labeled: np.ndarray, budget: int, first: int | None = None):
    """Reference: full N x N distance matrix, then the textbook greedy loop."""
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))  # [N, N]
    centers = list(labeled)
    picks = []
    if not centers:
        picks.append(first)
        centers.append(first)
    while len(picks) < budget:
        nearest = dist[:, centers].min(axis=1)  # [N]
        nearest[centers] = -1.0
        nxt = int(np.argmax(nearest))
        picks.append(nxt)
        centers.append(nxt)
    return np.asarray(picks)


@pytest.mark.parametrize("chunk_size", [16384, 7, 3, 1])
@pytest.mark.parametrize("n_labeled", [0, 1, 12])
def test_k_center_matches_brute_force(chunk_size, n_labeled):
    rng = np.random.default_rng(chunk_size * 100 + n_labeled)
    x = rng.normal(size=(40, 5))  # float64: the reference uses exact subtraction
    labeled = rng.choice(40, size=n_labeled, replace=False)
    first = int(np.random.default_rng(3).integers(40)) if n_labeled == 0 else None
    got = k_center_greedy(x, labeled, 15, chunk_size=chunk_size, seed=3)
    expected = brute_force_k_center(x, labeled, 15, first)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_k_center_float32_tensor_and_bool_mask_agree_with_index_array():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    labeled_idx = rng.choice(300, size=30, replace=False)
    mask = np.zeros(300, dtype=bool)
    mask[labeled_idx] = True
    a = k_center_greedy(torch.from_numpy(x), labeled_idx, 50, chunk_size=64)
    b = k_center_greedy(x, torch.from_numpy(mask), 50, chunk_size=1000)
    np.testing.assert_array_equal(a, b)
    expected = brute_force_k_center(x.astype(np.float64), labeled_idx, 50)
    np.testing.assert_array_equal(a, expected)


def test_k_center_distinct_not_labeled_with_duplicates():
    # 5 distinct points repeated 4 times each: after 5 picks all distances are 0.
    base = np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    x = np.tile(base, (4, 1))  # [20, 3]
    labeled = np.array([0, 7])
    got = k_center_greedy(x, labeled, 18)
    assert len(got) == 18
    assert len(set(got.tolist())) == 18
    assert not set(got.tolist()) & {0, 7}
    # row i holds value i % 5; rows 0 and 7 (values 0 and 2) are labeled, so the first three picks
    # cover the three values not yet represented before any duplicate is taken
    values = x[got[:3], 0]
    assert set(values.tolist()) == {1.0, 3.0, 4.0}


def test_k_center_known_line():
    # points on a line 0..10, labeled {0}: farthest is 10, then 5, then 2 or 3 / 7 or 8 (ties -> lowest)
    x = np.arange(11, dtype=np.float64)[:, None]
    got = k_center_greedy(x, [0], 3)
    np.testing.assert_array_equal(got, [10, 5, 2])


def test_k_center_no_labeled_first_pick_is_seeded():
    x = np.random.default_rng(1).normal(size=(50, 4))
    a = k_center_greedy(x, np.zeros(50, dtype=bool), 5, seed=11)
    b = k_center_greedy(x, [], 5, seed=11)
    np.testing.assert_array_equal(a, b)
    assert a[0] == np.random.default_rng(11).integers(50)


def test_k_center_budget_checks():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="budget"):
        k_center_greedy(x, [0, 1, 2], 8)
    assert k_center_greedy(x, [0], 0).shape == (0,)
    assert k_center_greedy(x, [0], -3).shape == (0,)
    assert len(k_center_greedy(x, [0, 1, 2], 7)) == 7  # exactly all unlabeled rows is allowed


def test_k_center_bad_input():
    with pytest.raises(ValueError, match="features"):
        k_center_greedy(np.zeros(10), [], 2)
    with pytest.raises(ValueError, match="labeled"):
        k_center_greedy(np.zeros((10, 2)), [10], 2)
    with pytest.raises(ValueError, match="labeled"):
        k_center_greedy(np.zeros((10, 2)), np.zeros(9, dtype=bool), 2)
    with pytest.raises(ValueError, match="features"):
        k_center_greedy(np.full((10, 2), np.nan), [], 2)
    with pytest.raises(ValueError, match="chunk_size"):
        k_center_greedy(np.zeros((10, 2)), [], 2, chunk_size=0)


# ----------------------------------------------------------------------------------------------
# gradient embedding
# ----------------------------------------------------------------------------------------------
def test_gradient_embedding_hand_computed():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    emb = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    got = gradient_embedding(probs, emb)
    # row 0: argmax 0 -> residual (-0.3, 0.2, 0.1); row 1: argmax 2 -> (0.1, 0.3, -0.4)
    expected = torch.tensor([
        [-0.3, -0.6, 0.2, 0.4, 0.1, 0.2],
        [0.3, -0.1, 0.9, -0.3, -1.2, 0.4],
    ])
    assert got.shape == (2, 6)
    torch.testing.assert_close(got, expected)


def test_gradient_embedding_matches_autograd():
    torch.manual_seed(0)
    n, d, c = 6, 5, 4
    h = torch.randn(n, d, dtype=torch.float64)
    layer = torch.nn.Linear(d, c).double()
    logits = layer(h)  # [N, C]
    probs = logits.softmax(dim=1).detach()
    got = gradient_embedding(probs, h)
    for i in range(n):
        layer.zero_grad()
        target = probs[i].argmax().reshape(1)
        F.cross_entropy(layer(h[i:i + 1]), target).backward()
        torch.testing.assert_close(got[i], layer.weight.grad.reshape(-1))


def test_gradient_embedding_bad_shapes():
    with pytest.raises(ValueError, match="probs"):
        gradient_embedding(torch.rand(3), torch.rand(3, 2))
    with pytest.raises(ValueError, match="rows"):
        gradient_embedding(torch.rand(3, 2), torch.rand(4, 2))


# ----------------------------------------------------------------------------------------------
# BADGE
# ----------------------------------------------------------------------------------------------
def test_badge_first_pick_largest_norm_distinct_reproducible():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(200, 12)).astype(np.float32)
    g[137] *= 10.0
    a = badge(g, 30, seed=5)
    b = badge(torch.from_numpy(g), 30, seed=5, chunk_size=17)
    c = badge(g, 30, seed=6)
    assert a.dtype == np.int64 and a[0] == 137
    assert len(set(a.tolist())) == 30
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_badge_second_pick_follows_d2_distribution():
    # the first pick is the largest norm (rows 0, 2, 3, 4 tie; the lowest wins); rows 2..4 coincide
    # with row 0 (squared distance 0) and row 1 is at 125 -> the second pick is always row 1.
    g = np.array([[10.0, 0.0], [0.0, 5.0], [10.0, 0.0], [10.0, 0.0], [10.0, 0.0]])
    for seed in range(5):
        assert badge(g, 2, seed=seed).tolist() == [0, 1]


def test_badge_second_pick_is_drawn_proportionally_to_squared_distance():
    # The first pick is row 2 (largest norm). Rows 0 and 1 are at distances 2 and 1 from it:
    # D^2 sampling picks row 0 with probability 4/5; sampling by D would give 2/3.
    g = np.array([[10.0, 0.0], [11.0, 0.0], [12.0, 0.0]])
    n = 600
    second = [badge(g, 2, seed=seed)[1] for seed in range(n)]
    frequency = second.count(0) / n
    assert abs(frequency - 0.8) < 0.05  # binomial std 0.016


def test_badge_duplicates_and_zero_rows_never_repeat_positions():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(3, 4))
    g = np.concatenate([np.tile(base, (5, 1)), np.zeros((6, 4))])  # [21, 4], all rows duplicated
    for seed in range(4):
        got = badge(g, 21, seed=seed)
        assert sorted(got.tolist()) == list(range(21))


def test_badge_budget_checks():
    g = np.ones((4, 2))
    with pytest.raises(ValueError, match="budget"):
        badge(g, 5)
    assert badge(g, 0).shape == (0,)


def test_badge_factored_equals_badge_on_gradient_embedding():
    torch.manual_seed(0)
    n, c, d = 120, 5, 7
    probs = torch.randn(n, c, dtype=torch.float64).softmax(dim=1)
    emb = torch.randn(n, d, dtype=torch.float64)
    full = gradient_embedding(probs, emb)  # [N, C*D]
    residuals = probs - F.one_hot(probs.argmax(1), c).double()
    for seed in range(3):
        expected = badge(full, 25, seed=seed, chunk_size=50)
        got = badge_factored(residuals, emb, 25, seed=seed, chunk_size=33)
        np.testing.assert_array_equal(got, expected)
