"""The loop's side of the outlier, transfer and hidden-uncertainty strategies: a presample
before the choice, strategies fitted on the labeled items (their held-out share, for active
transfer learning), and the same choice under torch.distributed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from active_learning import choose_new_labeled_indices, get_strategy
from active_learning.loop import fitting
from active_learning.loop.config import LoopConfig
from active_learning.loop.holdout import held_out_units, hold_out
from active_learning.loop.pool import PoolState
from active_learning.loop.scoring import score_candidates
from active_learning.loop.selection import select_next
from active_learning.strategies import PIXEL_DISTRIBUTIONS
from distributed_workers import spawn
from toy_adapters import ToyClassificationAdapter, ToyDenseAdapter, outputs_and_embeddings

CPU = torch.device("cpu")


def _setup(strategy, adapter=None, labeled=30, budget=6):
    adapter = adapter or ToyClassificationAdapter()
    torch.manual_seed(0)
    model = adapter.build_model()
    state = PoolState.empty(adapter.selection_units().n_units)
    state.mark_labeled(np.arange(labeled), cycle=0)
    config = LoopConfig(strategy=strategy, budget=budget, subset_size=0, eval_batch_size=16,
                        progress=False)
    return adapter, model, state, config


@pytest.mark.parametrize("first", ["least_confidence", "entropy"])
def test_outliers_are_chosen_among_the_most_uncertain_four_times_the_budget(first):
    adapter, model, state, config = _setup(f"mb_outliers_mean_{first}")
    indices, scores = select_next(adapter, model, None, state, 0, config, CPU)
    candidates = np.arange(30, 120)
    uncertainty = score_candidates(adapter, model, None, get_strategy(first), candidates, config, CPU)
    top = candidates[np.argsort(-uncertainty["scores"], kind="stable")[:24]]          # 4 x 6
    _, embedded = outputs_and_embeddings(adapter, model, np.concatenate([np.arange(30), np.sort(top)]))
    expected, expected_scores = choose_new_labeled_indices(
        "mb_outliers_mean", np.sort(top), 6, inputs={"embedding": embedded[30:]},
        labeled_embeddings=embedded[:30])
    assert indices.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
    # without the presample the outliers of the whole pool would be others
    everywhere, _ = choose_new_labeled_indices("mb_outliers_mean", candidates, 6,
                                               inputs={"embedding": outputs_and_embeddings(adapter, model, candidates)[1]},
                                               labeled_embeddings=embedded[:30])
    assert everywhere.tolist() != indices.tolist()


def test_hidden_uncertainty_is_fitted_on_the_labeled_items_and_their_true_classes():
    from active_learning.strategies.labeled import LabeledFeatures
    from test_hidden_uncertainty import _expected_uncertainty

    adapter, model, state, config = _setup("hidden_uncertainty", labeled=45)
    indices, scores = select_next(adapter, model, None, state, 0, config, CPU)
    labels = np.array([int(adapter.pool_set[i][1]) for i in range(45)])
    outputs, labeled = outputs_and_embeddings(adapter, model, np.arange(45))
    rows = LabeledFeatures(labeled.numpy(), labels, outputs.argmax(1).numpy(),
                           np.bincount(labels, minlength=3))
    candidates = np.arange(45, 120)
    uncertainty = _expected_uncertainty(rows, outputs_and_embeddings(adapter, model, candidates)[1].numpy())
    order = np.argsort(-uncertainty, kind="stable")[:6]
    assert indices.tolist() == candidates[order].tolist()
    np.testing.assert_allclose(scores, uncertainty[order], rtol=1e-5)
    # fitted on the predicted classes instead, the choice differs (the model is untrained)
    predicted = LabeledFeatures(rows.features, rows.predicted, rows.predicted,
                                np.bincount(rows.predicted, minlength=3))
    if (np.bincount(rows.predicted, minlength=3) > 1).sum() >= 1:
        other = _expected_uncertainty(predicted, outputs_and_embeddings(adapter, model, candidates)[1].numpy())
        assert np.argsort(-other, kind="stable")[:6].tolist() != order.tolist()


def test_active_transfer_learning_learns_from_the_held_out_units_only(monkeypatch):
    adapter, model, state, config = _setup("active_transfer_learning", labeled=40)
    hold_out(adapter, 0.2, config.seed)
    seen = []
    original = fitting.labeled_features

    def recording(adapter, model, samples, *args, **kwargs):
        seen.append(np.asarray(samples).copy())
        return original(adapter, model, samples, *args, **kwargs)

    monkeypatch.setattr(fitting, "labeled_features", recording)
    indices, scores = select_next(adapter, model, None, state, 0, config, CPU)
    expected = held_out_units(np.arange(40), config.seed, 0.2)
    assert len(seen) == 1 and seen[0].tolist() == expected.tolist() and len(expected) == 8
    assert len(set(indices.tolist())) == 6 and min(indices) >= 40
    assert ((0 <= scores) & (scores <= 1)).all()


class PixelToy(ToyDenseAdapter):
    output_kind = PIXEL_DISTRIBUTIONS     # its default hidden features: the per-pixel logits


def test_fitted_strategies_score_per_pixel_outputs():
    adapter, model, state, config = _setup("hidden_uncertainty", adapter=PixelToy(n_train=40),
                                           labeled=12, budget=4)
    indices, _ = select_next(adapter, model, None, state, 0, config, CPU)
    assert len(set(indices.tolist())) == 4 and min(indices) >= 12
    # per-pixel rows: the labeled images' pixels, each with its class
    rows = fitting.labeled_features(adapter, model, np.arange(12), config, CPU, seed=0)
    assert len(rows) == 12 * 64 and rows.features.shape[1] == 2 and rows.class_counts.sum() == 12 * 64


# ----------------------------------------------------------------------------------------------
# under torch.distributed: every process takes rank 0's choice, the one process's choice
# ----------------------------------------------------------------------------------------------
STRATEGIES = ["hidden_uncertainty", "mb_outliers_mean_entropy"]


def _choose(strategy):
    adapter, model, state, config = _setup(strategy)
    return select_next(adapter, model, None, state, 0, config, CPU)


def choose_everywhere(rank: int, folder: str, strategies: list[str]) -> None:
    for strategy in strategies:
        indices, scores = _choose(strategy)
        np.savez(f"{folder}/{strategy}-{rank}.npz", indices=indices, scores=scores)


def test_a_sharded_run_chooses_what_one_process_chooses(tmp_path):
    spawn(choose_everywhere, 2, tmp_path, STRATEGIES)
    for strategy in STRATEGIES:
        expected, expected_scores = _choose(strategy)
        for rank in range(2):
            choice = np.load(tmp_path / f"{strategy}-{rank}.npz")
            np.testing.assert_array_equal(choice["indices"], expected)
            np.testing.assert_allclose(choice["scores"], expected_scores, rtol=1e-5)


def test_each_strategy_runs_where_its_outputs_fit_and_is_refused_elsewhere():
    from active_learning.loop.compatibility import strategy_refusal
    from active_learning.loop.units import GroupedUnits, RegionUnits, SelectionUnits
    from active_learning.strategies import BOX_DISTRIBUTIONS, CLASS_DISTRIBUTIONS, HEATMAPS

    tasks = {"classification": (CLASS_DISTRIBUTIONS, SelectionUnits),
             "segmentation": (PIXEL_DISTRIBUTIONS, SelectionUnits),
             "detection": (BOX_DISTRIBUTIONS, SelectionUnits), "pose": (HEATMAPS, GroupedUnits),
             "superpixels": (PIXEL_DISTRIBUTIONS, RegionUnits)}
    runs = {name: [task for task, (kind, units) in tasks.items()
                   if strategy_refusal(get_strategy(name), kind, units) is None]
            for name in ["mb_outliers_mean", "mb_outliers_max", "mb_outliers_glosh", "mb_clustering",
                         "mb_outliers_mean_least_confidence", "mb_outliers_mean_entropy",
                         "active_transfer_learning", "hidden_uncertainty"]}
    embedding_tasks = ["classification", "segmentation", "detection", "pose"]
    assert runs == {"mb_outliers_mean": embedding_tasks, "mb_outliers_max": embedding_tasks,
                    "mb_outliers_glosh": embedding_tasks, "mb_clustering": embedding_tasks,
                    "mb_outliers_mean_least_confidence": ["classification", "segmentation", "detection"],
                    "mb_outliers_mean_entropy": ["classification", "segmentation", "detection"],
                    "active_transfer_learning": ["classification", "segmentation"],
                    "hidden_uncertainty": ["classification", "segmentation"]}
    assert "heatmaps" in strategy_refusal(get_strategy("hidden_uncertainty"), HEATMAPS, GroupedUnits)


def test_a_strategy_whose_library_is_missing_is_refused_before_training(monkeypatch):
    import importlib.util

    from active_learning.errors import ConfigError
    from active_learning.loop.compatibility import check_strategy_fits

    adapter = ToyClassificationAdapter()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    for name in ("mb_clustering", "hidden_uncertainty", "typiclust", "probcover"):
        with pytest.raises(ConfigError, match=rf"^strategy '{name}' needs scikit-learn, which is not installed: pip install 'active-learning-cv\[strategies\]'"):
            check_strategy_fits(get_strategy(name), adapter, adapter.selection_units())
    check_strategy_fits(get_strategy("mb_outliers_mean"), adapter, adapter.selection_units())
