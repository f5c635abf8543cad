"""Active transfer learning: the error head, and the labeled units held out of training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from active_learning.loop.config import LoopConfig
from active_learning.loop.holdout import (
    held_out_split,
    held_out_units,
    hold_out,
    training_units,
    unit_draws,
)
from active_learning.strategies.labeled import LabeledFeatures
from active_learning.strategies.transfer import fit_error_head, fit_transfer_head, transfer_scores


def test_the_head_learns_where_the_model_is_wrong():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 6)).astype(np.float32)
    incorrect = features[:, 2] > 0.5                      # wrong on one region of the features
    head = fit_error_head(features, incorrect, seed=1)
    probe = rng.normal(size=(200, 6)).astype(np.float32)
    p_wrong = transfer_scores({"hidden": torch.as_tensor(probe)}, head=head).detach().numpy()
    truth = probe[:, 2] > 0.5
    # every wrong-region probe above nearly every right-region one (AUROC)
    auroc = (p_wrong[truth][:, None] > p_wrong[~truth][None, :]).mean()
    assert auroc > 0.95


def test_the_head_is_seeded_and_leaves_the_global_rng_alone():
    rng = np.random.default_rng(1)
    features, incorrect = rng.normal(size=(60, 4)).astype(np.float32), rng.random(60) < 0.3
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = fit_error_head(features, incorrect, seed=5)
    assert torch.equal(torch.rand(1), before)             # the global stream did not move
    second = fit_error_head(features, incorrect, seed=5)
    probe = {"hidden": torch.as_tensor(features)}
    assert torch.equal(transfer_scores(probe, head=first), transfer_scores(probe, head=second))


def test_per_pixel_scores_are_reduced_per_image():
    head = fit_error_head(np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32),
                          np.arange(50) % 3 == 0, seed=0)
    maps = torch.randn(2, 3, 4, 4)
    rows = maps.permute(0, 2, 3, 1).reshape(-1, 3)
    per_row = torch.softmax(head(rows), dim=1)[:, 1].reshape(2, 16)
    torch.testing.assert_close(transfer_scores({"hidden": maps}, "mean", head=head), per_row.mean(1))
    torch.testing.assert_close(transfer_scores({"hidden": maps}, "max", head=head), per_row.max(1).values)


def test_the_head_learns_from_the_held_out_rows_mistakes():
    features = np.random.default_rng(3).normal(size=(40, 2)).astype(np.float32)
    labels = np.zeros(40, dtype=np.int64)
    predicted = (features[:, 0] > 0).astype(np.int64)     # wrong exactly where x0 > 0
    head = fit_transfer_head(LabeledFeatures(features, labels, predicted, np.array([40, 0])), seed=0)
    scores = transfer_scores({"hidden": torch.tensor([[2.0, 0.0], [-2.0, 0.0]])}, head=head)
    assert scores[0] > scores[1]
    empty = LabeledFeatures(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                            np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="held-out"):
        fit_transfer_head(empty)


# ----------------------------------------------------------------------------------------------
# the held-out split
# ----------------------------------------------------------------------------------------------
def test_held_out_units_are_a_seeded_fifth_of_the_labeled_units():
    labeled = np.arange(0, 300, 3)
    held = held_out_units(labeled, seed=0, fraction=0.2)
    assert len(held) == 20 and set(held.tolist()) <= set(labeled.tolist())
    assert np.array_equal(held, held_out_units(labeled, seed=0, fraction=0.2))      # deterministic
    assert not np.array_equal(held, held_out_units(labeled, seed=1, fraction=0.2))  # seeded
    assert np.array_equal(held, held_out_units(labeled[::-1], 0, 0.2)[::-1])       # order-free
    train = training_units(labeled, 0, 0.2)
    assert sorted(np.concatenate([held, train]).tolist()) == labeled.tolist()
    assert len(held_out_units(np.array([4, 9]), 0, 0.2)) == 1     # at least one, once two exist
    assert len(held_out_units(np.array([4]), 0, 0.2)) == 0        # and one always trains


def test_a_units_draw_does_not_depend_on_the_pool():
    small = unit_draws(np.array([3, 50, 7]), seed=2)
    assert np.array_equal(small, unit_draws(np.array([3, 50, 7, 100_000]), seed=2)[:3])
    assert not np.array_equal(small, unit_draws(np.array([3, 50, 7]), seed=3))
    # held out: the labeled units with the smallest draws
    labeled = np.arange(10, 60)
    held = held_out_units(labeled, 2, 0.2)
    assert sorted(held.tolist()) == sorted(labeled[np.argsort(unit_draws(labeled, 2))[:10]].tolist())


def test_hold_out_makes_the_adapter_train_without_the_held_out_units():
    from toy_adapters import ToyClassificationAdapter

    adapter = ToyClassificationAdapter()
    assert held_out_split(adapter) is None
    assert hold_out(adapter, 0.2, 7) is adapter and held_out_split(adapter) == (0.2, 7)
    labeled = np.arange(40)
    training = adapter.training_set(labeled)
    expected = training_units(labeled, 7, 0.2)
    assert len(training) == 32 and training.indices == expected.tolist()
    hold_out(adapter, 0.2, 7)                                  # again: nothing changes
    assert len(adapter.training_set(labeled)) == 32
    with pytest.raises(ValueError, match="already"):
        hold_out(adapter, 0.3, 7)


def test_a_run_refuses_active_transfer_learning_on_an_adapter_that_holds_nothing_out(tmp_path):
    from active_learning import run_active_learning
    from active_learning.errors import ConfigError
    from toy_adapters import ToyClassificationAdapter

    config = LoopConfig(strategy="active_transfer_learning", cycles=1, initial_size=20, budget=5,
                        epochs=1, batch_size=8, progress=False)
    with pytest.raises(ConfigError, match="hold_out"):
        run_active_learning(ToyClassificationAdapter(), config, tmp_path / "run")
    assert not (tmp_path / "run" / "pool.npz").exists()
