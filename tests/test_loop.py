"""The cycle runner on two toy adapters: a classifier and a dense per-pixel task."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from active_learning import PoolState, get_strategy, list_strategies
from active_learning.errors import RunMismatchError
from active_learning.files.export import read_entropies_csv, read_metrics_csv
from active_learning.loop.config import LoopConfig
from active_learning.loop.holdout import hold_out
from active_learning.loop.runner import run_active_learning
from active_learning.strategies import CLASS_DISTRIBUTIONS, HEATMAPS
from toy_adapters import ToyClassificationAdapter, ToyDenseAdapter


def _config(strategy: str = "random", **overrides) -> LoopConfig:
    values = dict(strategy=strategy, cycles=2, initial_size=20, budget=10, subset_size=40, epochs=2,
                  batch_size=16, eval_batch_size=32, mc_samples=4, progress=False, seed=7)
    values.update(overrides)
    return LoopConfig(**values)


def _check_run(run_dir, adapter, config) -> PoolState:
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["cycle"] for row in rows] == list(range(config.cycles))
    assert [row["n_labeled"] for row in rows] == [config.initial_size + c * config.budget
                                                  for c in range(config.cycles)]
    assert all(0.0 <= row[adapter.primary_metric] <= 1.0 for row in rows)
    state = PoolState.load(run_dir / "pool.npz")
    assert state.finished_cycles == config.cycles
    for cycle in range(config.cycles):
        selected = read_entropies_csv(run_dir / "priorities" / f"cycle_{cycle:02d}.csv")
        assert len(selected) == config.budget
        names = [name for name, _ in selected]
        assert len(set(names)) == len(names)
        added = state.added_in(cycle + 1)
        assert sorted(names) == sorted(adapter.item_name(int(i)) for i in added)
        values = [value for _, value in selected]
        assert values == sorted(values, reverse=True) and min(values) >= 0
    assert len(state.labeled_indices) == config.initial_size + config.cycles * config.budget
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    return state


# The end-to-end runs check that discriminative fits the loop, not how its discriminator trains:
# tests/test_discriminative.py covers that (early stop before 500 epochs), and
# test_the_loop_passes_dal_options_to_the_selector that the options reach it. Up to 500 epochs
# per sub-query only made these runs slow.
_FEW_DAL_EPOCHS = {"discriminative": dict(options={"max_epochs": 3})}


@pytest.mark.parametrize("strategy", [name for name in list_strategies()
                                      if not get_strategy(name).region_level
                                      and get_strategy(name).fits_outputs(CLASS_DISTRIBUTIONS)])
def test_every_strategy_runs_two_cycles_on_a_classifier(tmp_path, strategy):
    adapter = ToyClassificationAdapter()
    config = _config(strategy, **_FEW_DAL_EPOCHS.get(strategy, {}))
    if get_strategy(strategy).held_out_fraction:   # active transfer learning, as a library user
        hold_out(adapter, get_strategy(strategy).held_out_fraction, config.seed)
    run_active_learning(adapter, config, tmp_path)
    _check_run(tmp_path, adapter, config)


@pytest.mark.parametrize("strategy", ["random", "entropy", "bald", "mc_variance", "loss_prediction",
                                      "coreset", "discriminative"])
def test_dense_task_fits_the_same_loop(tmp_path, strategy):
    adapter = ToyDenseAdapter()
    config = _config(strategy, reduction="max" if strategy == "entropy" else "mean",
                     **_FEW_DAL_EPOCHS.get(strategy, {}))
    run_active_learning(adapter, config, tmp_path)
    _check_run(tmp_path, adapter, config)


@pytest.mark.parametrize("strategy", ["loss_prediction", "bald"])
def test_interrupted_run_resumes_to_the_same_labeled_set(tmp_path, strategy, caplog):
    config = _config(strategy, cycles=3)
    run_active_learning(ToyClassificationAdapter(), config, tmp_path / "straight")
    expected = PoolState.load(tmp_path / "straight" / "pool.npz").labeled_at

    crashing = ToyClassificationAdapter()
    crashing.fail_in_cycle = 1  # dies while evaluating cycle 1, after cycle 0 committed
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(crashing, config, tmp_path / "resumed")
    assert PoolState.load(tmp_path / "resumed" / "pool.npz").finished_cycles == 1
    with caplog.at_level(logging.INFO, logger="active_learning"):
        run_active_learning(ToyClassificationAdapter(), config, tmp_path / "resumed")
    assert "resuming" in caplog.text
    np.testing.assert_array_equal(PoolState.load(tmp_path / "resumed" / "pool.npz").labeled_at, expected)
    rows = read_metrics_csv(tmp_path / "resumed" / "metrics.csv")
    assert [row["cycle"] for row in rows] == [0, 1, 2]


def test_more_cycles_extend_a_finished_run(tmp_path):
    run_active_learning(ToyClassificationAdapter(), _config("entropy", cycles=3), tmp_path / "a")
    run_active_learning(ToyClassificationAdapter(), _config("entropy", cycles=2), tmp_path / "b")
    run_active_learning(ToyClassificationAdapter(), _config("entropy", cycles=3), tmp_path / "b")
    np.testing.assert_array_equal(PoolState.load(tmp_path / "a" / "pool.npz").labeled_at,
                                  PoolState.load(tmp_path / "b" / "pool.npz").labeled_at)


def test_resume_with_another_protocol_is_refused_and_keeps_the_run(tmp_path):
    run_active_learning(ToyClassificationAdapter(), _config("random"), tmp_path)
    before = (tmp_path / "pool.npz").read_bytes(), (tmp_path / "metrics.csv").read_bytes()
    with pytest.raises(RunMismatchError, match="budget"):
        run_active_learning(ToyClassificationAdapter(), _config("random", budget=5), tmp_path)
    assert ((tmp_path / "pool.npz").read_bytes(), (tmp_path / "metrics.csv").read_bytes()) == before


def test_a_run_recorded_before_a_new_protocol_field_still_resumes(tmp_path):
    import json

    dal = {"max_epochs": 2, "n_sub_queries": 1}
    run_active_learning(ToyClassificationAdapter(), _config("discriminative", cycles=1, options=dal), tmp_path)
    record = json.loads((tmp_path / "args.json").read_text())
    del record["loop"]["unit_reduction"]  # as written before the field existed
    (tmp_path / "args.json").write_text(json.dumps(record))
    rows = run_active_learning(ToyClassificationAdapter(), _config("discriminative", cycles=2, options=dal), tmp_path)
    assert [row["cycle"] for row in rows] == [0, 1]
    with pytest.raises(RunMismatchError, match="discriminative option max_epochs: 2 -> 7"):
        run_active_learning(ToyClassificationAdapter(),
                            _config("discriminative", cycles=3, options={**dal, "max_epochs": 7}), tmp_path)


def test_the_loop_passes_dal_options_to_the_selector(tmp_path, monkeypatch):
    from active_learning.strategies import discriminative

    trained = []
    original_select = discriminative.DiscriminativeActiveLearning.select

    def recording_select(self, *args, **kwargs):
        result = original_select(self, *args, **kwargs)
        trained.append(list(self.epochs_trained_))
        return result

    monkeypatch.setattr(discriminative.DiscriminativeActiveLearning, "select", recording_select)
    config = _config("discriminative", options={"max_epochs": 1, "n_sub_queries": 2})
    run_active_learning(ToyClassificationAdapter(), config, tmp_path)
    assert trained == [[1, 1], [1, 1]]  # selection after cycles 0 and 1: 2 rounds of 1 epoch each


def test_budget_larger_than_the_pool_takes_what_is_left(tmp_path):
    adapter = ToyClassificationAdapter(n_train=40)
    config = _config("entropy", initial_size=30, budget=8, subset_size=0, cycles=3)
    with pytest.warns(UserWarning, match="larger than the 2 unlabeled"):
        rows = run_active_learning(adapter, config, tmp_path)
    assert [row["n_labeled"] for row in rows] == [30, 38, 40]
    assert [row["n_selected"] for row in rows] == [8, 2, 0]


@pytest.mark.parametrize("overrides, message", [
    (dict(batch_size=15), "even"),
    (dict(initial_size=500), "larger than the pool"),
    (dict(subset_size=5), "smaller than the budget"),
    (dict(strategy="nope"), "known strategies"),
    (dict(strategy="discriminative", options={"max_epochs": 0}), "--dal-max-epochs must be >= 1"),
    (dict(strategy="discriminative", options={"n_sub_queries": 0}), "--dal-sub-queries must be >= 1"),
    (dict(options={"lamda": -1.0}), "--lamda must be >= 0"),
    (dict(options={"loss_width": 0}), "--loss-width must be >= 1"),
    (dict(strategy="entropy", options={"lamda": 1.0}), r"'entropy' has no option\(s\) \['lamda'\]"),
])
def test_impossible_protocols_fail_before_training(tmp_path, overrides, message):
    overrides = {"strategy": "loss_prediction", **overrides}
    config = _config(**overrides)
    with pytest.raises(ValueError, match=message):
        run_active_learning(ToyClassificationAdapter(), config, tmp_path)
    assert not (tmp_path / "pool.npz").exists()


def test_initial_labeled_replaces_the_random_initial_choice(tmp_path):
    chosen = np.array([5, 3, 117, 0, 64, 42, 99, 7, 8, 9])  # any order; absolute indices
    config = _config("entropy", cycles=1, initial_size=len(chosen), budget=6, subset_size=0)
    rows = run_active_learning(ToyClassificationAdapter(), config, tmp_path,
                               initial_labeled=chosen)
    state = PoolState.load(tmp_path / "pool.npz")
    np.testing.assert_array_equal(state.labeled_up_to(0), np.sort(chosen))
    added = state.added_in(1)
    assert len(added) == 6 and not set(added.tolist()) & set(chosen.tolist())
    assert rows[0]["n_labeled"] == 10

    # A rerun from the same set resumes; from another set it is refused, the run kept.
    before = (tmp_path / "pool.npz").read_bytes()
    run_active_learning(ToyClassificationAdapter(), config, tmp_path,
                        initial_labeled=chosen[::-1])
    with pytest.raises(RunMismatchError, match="initial labeled set"):
        run_active_learning(ToyClassificationAdapter(), config, tmp_path,
                            initial_labeled=np.arange(10))
    assert (tmp_path / "pool.npz").read_bytes() == before


@pytest.mark.parametrize("initial, message", [
    (np.arange(9), "holds 9 indices but config.initial_size is 10"),
    (np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 8]), "repeated"),
    (np.arange(115, 125), "outside the pool of 120"),
    (np.arange(10.0), "integer"),
])
def test_bad_initial_labeled_fails_before_anything_is_written(tmp_path, initial, message):
    config = _config("entropy", cycles=1, initial_size=10, budget=6, subset_size=0)
    with pytest.raises(ValueError, match=message):
        run_active_learning(ToyClassificationAdapter(), config, tmp_path / "run",
                            initial_labeled=initial)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("max_norm", [None, 1e-3])
def test_train_one_epoch_clips_the_gradient_norm_when_the_adapter_asks(max_norm):
    """Plain SGD (lr 1, no momentum): one step moves the parameters by exactly the clipped gradient."""
    from torch.utils.data import DataLoader

    from toy_adapters import ToyClassificationAdapter

    torch.manual_seed(0)
    adapter = ToyClassificationAdapter()
    adapter.max_grad_norm = max_norm
    model = adapter.build_model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    loader = DataLoader(adapter.train_set, batch_size=len(adapter.train_set))
    adapter.train_one_epoch(model, None, loader, optimizer, epoch=0,
                    config=LoopConfig(epochs=1, progress=False), device=torch.device("cpu"))
    moved = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm().item()
    if max_norm is None:
        assert moved > 1e-2
    else:
        assert moved == pytest.approx(max_norm, rel=1e-3)


@pytest.mark.parametrize("strategy, reads", [("heatmap_uncertainty", "heatmaps"),
                                             ("entropy", "class distributions")])
def test_a_strategy_for_other_outputs_is_refused_before_training(tmp_path, strategy, reads):
    adapter = ToyClassificationAdapter()
    if reads == "class distributions":
        adapter.output_kind = HEATMAPS     # as the pose task declares
    with pytest.raises(ValueError, match=f"reads {reads}, but this task's outputs are"):
        run_active_learning(adapter, _config(strategy), tmp_path)
    assert not any(tmp_path.iterdir())               # nothing trained, nothing written


def test_ctrl_c_between_the_selection_and_the_commit_leaves_no_file_of_that_cycle(tmp_path, monkeypatch):
    from active_learning.loop import runner

    straight = run_active_learning(ToyClassificationAdapter(), _config("entropy"), tmp_path / "straight")
    original = runner.write_metrics_csv
    calls = []

    def interrupted(rows, path):
        calls.append(len(rows))
        if len(rows) == 2:            # cycle 1 selected and wrote its files; not committed yet
            raise KeyboardInterrupt
        original(rows, path)

    monkeypatch.setattr(runner, "write_metrics_csv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(ToyClassificationAdapter(), _config("entropy"), tmp_path / "run")
    run_dir = tmp_path / "run"
    assert calls == [1, 2] and PoolState.load(run_dir / "pool.npz").finished_cycles == 1
    assert (run_dir / "priorities" / "cycle_00.csv").exists()
    assert not (run_dir / "priorities" / "cycle_01.csv").exists()
    assert len(read_metrics_csv(run_dir / "metrics.csv")) == 1
    monkeypatch.setattr(runner, "write_metrics_csv", original)
    rows = run_active_learning(ToyClassificationAdapter(), _config("entropy"), run_dir)   # resumes
    assert [row["n_labeled"] for row in rows] == [row["n_labeled"] for row in straight]
    assert (run_dir / "priorities" / "cycle_01.csv").read_bytes() == (
        tmp_path / "straight" / "priorities" / "cycle_01.csv").read_bytes()
    assert not (run_dir / ".pending").exists()


def test_tie_warning_counts_the_chosen_units_that_share_a_score():
    from active_learning.loop.selection import tie_warning

    assert tie_warning(np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])) is None
    # one tied pair among 20: a tenth, not more than a tenth
    assert tie_warning(np.r_[0.95, 0.95, np.linspace(0.9, 0.0, 18)]) is None
    assert tie_warning(np.r_[0.95, 0.95, 0.95, np.linspace(0.9, 0.0, 17)]).startswith("3 of the 20")
    message = tie_warning(np.array([3.0, 3.0, 3.0, 1.0, 0.5, 0.5]))
    assert message.startswith("5 of the 6 chosen units tie on their score (most often 3)")


def test_a_model_that_scores_every_item_the_same_is_reported(tmp_path, caplog):
    adapter = ToyClassificationAdapter()
    adapter.probabilities = lambda outputs: torch.full((outputs.shape[0], outputs.shape[1]), 1.0 / outputs.shape[1])
    with caplog.at_level(logging.WARNING, logger="active_learning"):
        run_active_learning(adapter, _config("entropy", cycles=1), tmp_path)
    assert "10 of the 10 chosen units tie on their score" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="active_learning"):
        run_active_learning(ToyClassificationAdapter(), _config("random", cycles=1), tmp_path / "random")
    assert "tie on their score" not in caplog.text


def test_files_of_a_cycle_that_did_not_commit_are_removed_when_the_run_resumes(tmp_path):
    from active_learning.loop import runner

    run_active_learning(ToyClassificationAdapter(), _config("entropy", cycles=1), tmp_path)
    stray = tmp_path / "priorities" / "cycle_01.csv"      # moved into place, then a crash
    stray.write_text("name,entropy_value\nx,1.0\n")
    (tmp_path / "selections").mkdir(exist_ok=True)
    (tmp_path / "selections" / "cycle_03.png").write_bytes(b"png")
    runner._remove_uncommitted(tmp_path, 1)
    assert not stray.exists() and not (tmp_path / "selections" / "cycle_03.png").exists()
    assert (tmp_path / "priorities" / "cycle_00.csv").exists()


def test_ties_count_scores_equal_up_to_float_noise():
    from active_learning.loop.selection import tie_warning

    message = tie_warning(np.array([1e-12, 0.0, 3e-13, 0.5, 0.9]))
    assert message.startswith("3 of the 5 chosen units tie")


def test_two_items_of_one_name_are_refused_up_front():
    from active_learning.errors import ConfigError
    from active_learning.loop.identity import item_names
    from active_learning.loop.units import SelectionUnits

    with pytest.raises(ConfigError, match="1 item name.*a.png"):
        item_names(SelectionUnits(3), ["a.png", "b.png", "a.png"].__getitem__)
