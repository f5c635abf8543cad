import numpy as np
import pytest
import torch
from torch import nn

from active_learning.strategies.discriminative import (
    DiscriminativeActiveLearning,
    build_discriminator,
    split_budget,
)


def _hidden_widths(model: nn.Module) -> list[int]:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [m.out_features for m in linears]


@pytest.mark.parametrize("dim, width", [(1, 20), (29, 20), (30, 256), (512, 256), (513, 512), (2048, 512)])
def test_discriminator_widths(dim, width):
    model = build_discriminator(dim)
    assert _hidden_widths(model) == [width, width, width, 2]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 3
    assert model(torch.zeros(4, dim)).shape == (4, 2)


def test_build_discriminator_bad_dim():
    with pytest.raises(ValueError, match="input_dim"):
        build_discriminator(0)


def test_split_budget():
    assert split_budget(25, 10) == [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]
    assert split_budget(10, 10) == [1] * 10
    assert split_budget(3, 10) == [1, 1, 1]
    assert split_budget(7, 1) == [7]
    for budget in range(1, 40):
        for parts in range(1, 12):
            sizes = split_budget(budget, parts)
            assert sum(sizes) == budget and min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def _shifted_cluster(seed=0, d=5, n_labeled=60, n_unlabeled=200, n_shifted=12):
    """labeled ~ N(0, I); unlabeled ~ N(0, I) except n_shifted rows ~ N(6, I)."""
    rng = np.random.default_rng(seed)
    labeled = rng.normal(size=(n_labeled, d)).astype(np.float32)
    unlabeled = rng.normal(size=(n_unlabeled, d)).astype(np.float32)
    shifted = rng.choice(n_unlabeled, size=n_shifted, replace=False)
    unlabeled[shifted] += 6.0
    return labeled, unlabeled, set(shifted.tolist())


@pytest.mark.parametrize("seed", [0, 1])
def test_picks_come_from_the_shifted_cluster(seed):
    # The cluster (30 rows) is large next to the budget (10): after the first sub-query its 5 picks
    # count as labeled, and the other 25 must still look "unlabeled" to the second discriminator.
    # (Checked over 30 data/seed draws and 60..150 epochs: no pick outside the cluster.)
    labeled, unlabeled, shifted = _shifted_cluster(seed, n_labeled=200, n_unlabeled=300, n_shifted=30)
    dal = DiscriminativeActiveLearning(n_sub_queries=2, max_epochs=60, seed=seed)
    pos, scores = dal.select(labeled, unlabeled, 10)
    assert set(pos.tolist()) <= shifted
    assert pos.dtype == np.int64 and scores.dtype == np.float64
    assert np.all(scores > 0.5) and np.all(scores <= 1.0)


def test_distinct_positions_budget_split_and_sub_query_count():
    labeled, unlabeled, _ = _shifted_cluster(seed=1)
    dal = DiscriminativeActiveLearning(n_sub_queries=10, max_epochs=3, seed=0)
    pos, scores = dal.select(torch.from_numpy(labeled), torch.from_numpy(unlabeled), 25)
    assert len(pos) == 25 and len(scores) == 25
    assert len(set(pos.tolist())) == 25
    assert pos.min() >= 0 and pos.max() < len(unlabeled)
    assert len(dal.epochs_trained_) == 10  # one fresh discriminator per sub-query
    # within a sub-query the picks are sorted by score (sizes 3,3,3,3,3,2,2,2,2,2)
    start = 0
    for size in split_budget(25, 10):
        block = scores[start:start + size]
        assert np.all(np.diff(block) <= 0)
        start += size


def test_reproducible_under_seed():
    labeled, unlabeled, _ = _shifted_cluster(seed=2)
    def run(seed):
        return DiscriminativeActiveLearning(n_sub_queries=3, max_epochs=5, seed=seed).select(
            labeled, unlabeled, 9)
    (p1, s1), (p2, s2), (p3, _) = run(4), run(4), run(5)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(p1, p3)


def test_global_rng_untouched():
    labeled, unlabeled, _ = _shifted_cluster(seed=3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DiscriminativeActiveLearning(n_sub_queries=2, max_epochs=2).select(labeled, unlabeled, 4)
    torch.testing.assert_close(torch.rand(3), expected)


def test_discriminator_weights_change_and_it_learns():
    # the original project's optimiser held the backbone's parameters; check the discriminator's move
    labeled, unlabeled, shifted = _shifted_cluster(seed=4)
    dal = DiscriminativeActiveLearning(max_epochs=40, lr=3e-3, target_accuracy=1.0)
    model = dal._new_discriminator(labeled.shape[1], 0)
    before = [p.detach().clone() for p in model.parameters()]
    lab = torch.from_numpy(labeled)
    unl = torch.from_numpy(unlabeled[sorted(shifted)])  # only the separable cluster
    epochs = dal._fit(model, lab, unl, 0)
    after = list(model.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after))
    p_unl = dal._predict_unlabeled(model, torch.cat([lab, unl]))
    assert np.mean(p_unl[:len(lab)] < 0.5) > 0.95 and np.mean(p_unl[len(lab):] > 0.5) > 0.95
    assert 1 <= epochs <= 40


def test_early_stop_on_target_accuracy():
    labeled, unlabeled, shifted = _shifted_cluster(seed=5)
    dal = DiscriminativeActiveLearning(max_epochs=500, lr=3e-3, target_accuracy=0.9)
    model = dal._new_discriminator(labeled.shape[1], 0)
    epochs = dal._fit(model, torch.from_numpy(labeled), torch.from_numpy(unlabeled[sorted(shifted)]), 0)
    assert epochs < 500


def test_bad_inputs():
    labeled, unlabeled, _ = _shifted_cluster(seed=6)
    dal = DiscriminativeActiveLearning(max_epochs=1)
    with pytest.raises(ValueError, match="budget"):
        dal.select(labeled, unlabeled, len(unlabeled) + 1)
    with pytest.raises(ValueError, match="labeled_embeddings"):
        dal.select(labeled[:0], unlabeled, 3)
    with pytest.raises(ValueError, match="dim"):
        dal.select(labeled[:, :3], unlabeled, 3)
    with pytest.raises(ValueError, match="unlabeled_embeddings"):
        dal.select(labeled, unlabeled[0], 3)
    with pytest.raises(ValueError, match="n_sub_queries"):
        DiscriminativeActiveLearning(n_sub_queries=0)
    pos, scores = dal.select(labeled, unlabeled, 0)
    assert pos.shape == (0,) and scores.shape == (0,)
    pos, _ = dal.select(labeled, unlabeled, len(unlabeled))  # every unlabeled row
    assert sorted(pos.tolist()) == list(range(len(unlabeled)))
