"""One-to-one units end to end: the ids the loop chooses and the values written beside them.

The loop scores a random candidate subset in batches of ``eval_batch_size`` and matches each
batch's scores to its sample ids. If a batch's scores were reversed or permuted on the way (or
the ids of one batch paired with another's scores), the run would still write a plausible
``pool.npz`` and priority CSV. These tests compute, independently of the loop, what each sample's
score must be, and check both the chosen set and every CSV value against that.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from active_learning import PoolState
from active_learning.files.export import read_entropies_csv
from active_learning.loop.config import LoopConfig
from active_learning.loop.runner import run_active_learning
from active_learning.loop.units import SelectionUnits
from toy_adapters import ToyClassificationAdapter

N_POOL = 60
INITIAL, BUDGET, SUBSET, EVAL_BATCH = 10, 6, 25, 7   # 25 candidates: batches of 7, 7, 7, 4


class RecordingUnits(SelectionUnits):
    """One unit per sample that remembers the candidates each cycle drew."""

    def __init__(self, n_samples: int) -> None:
        super().__init__(n_samples)
        self.drawn: list[np.ndarray] = []
        self.unlabeled_seen: list[np.ndarray] = []

    def draw_candidates(self, unlabeled, subset_size, rng):
        candidates = super().draw_candidates(unlabeled, subset_size, rng)
        self.unlabeled_seen.append(np.array(unlabeled))
        self.drawn.append(np.array(candidates))
        return candidates


def index_logit(index: np.ndarray) -> np.ndarray:
    """The logit of class 0 of sample ``index`` (classes 1 and 2 have logit 0).

    ``(37 i) mod 61`` differs for every ``i`` in 0..60 (61 is prime), so every sample of the pool
    gets its own value, and the order of the values has nothing to do with the order of the
    indices: a score that lands on a neighbour's id is a different score.
    """
    return ((37 * np.asarray(index, dtype=np.int64)) % 61) / 10.0


def expected_score(strategy: str, index: np.ndarray) -> np.ndarray:
    """The score of sample ``index`` by hand (float64): softmax([a, 0, 0]) with a = index_logit."""
    a = index_logit(index)
    p0 = np.exp(a) / (np.exp(a) + 2.0)
    p_other = 1.0 / (np.exp(a) + 2.0)
    if strategy == "entropy":
        return -(p0 * np.log(p0) + 2 * p_other * np.log(p_other))
    if strategy == "least_confidence":
        return 1.0 - np.maximum(p0, p_other)
    raise AssertionError(strategy)


class RecordingClassifier(ToyClassificationAdapter):
    """The toy classifier on a pool of N_POOL images, with units that record the candidates."""

    def __init__(self) -> None:
        super().__init__(n_train=N_POOL, n_test=20)
        self.units = RecordingUnits(N_POOL)

    def selection_units(self) -> RecordingUnits:
        return self.units


class IndexScoredAdapter(RecordingClassifier):
    """A classifier whose prediction for each pool sample is a known function of its index.

    Pixel (0, 0) of image ``i`` holds ``i``; the logits are ``[index_logit(i), 0, 0]`` (plus
    0 x the model's logits, so that training still has a graph to run backward through).
    """

    def __init__(self) -> None:
        super().__init__()
        images, _ = self.train_set.tensors
        images[:, 0, 0, 0] = torch.arange(N_POOL, dtype=images.dtype)   # pool_set is train_set

    def forward_intermediates(self, model, inputs):
        logits, features = model.forward_intermediates(inputs)
        index = inputs[:, 0, 0, 0].round().long()                        # [B]
        a = ((37 * index) % 61).to(logits.dtype) / 10.0                  # index_logit
        fixed = torch.stack([a, torch.zeros_like(a), torch.zeros_like(a)], dim=1)   # [B, 3]
        return fixed + 0.0 * logits, features


def _config(strategy: str, **overrides) -> LoopConfig:
    values = dict(strategy=strategy, cycles=1, initial_size=INITIAL, budget=BUDGET,
                  subset_size=SUBSET, epochs=1, batch_size=16, eval_batch_size=EVAL_BATCH,
                  progress=False, seed=11)
    values.update(overrides)
    return LoopConfig(**values)


def _name_to_index(adapter) -> dict[str, int]:
    return {adapter.item_name(index): index for index in range(N_POOL)}


def _check_candidates(units: RecordingUnits, state: PoolState, cycle: int) -> np.ndarray:
    """Cycle ``cycle``'s candidates: a random strict subset of the units unlabeled then."""
    candidates = units.drawn[cycle]
    unlabeled = np.flatnonzero(~np.isin(np.arange(N_POOL), state.labeled_up_to(cycle)))
    np.testing.assert_array_equal(units.unlabeled_seen[cycle], unlabeled)
    assert len(candidates) == SUBSET < len(unlabeled)
    assert len(candidates) % EVAL_BATCH != 0                 # a short last batch
    assert set(candidates.tolist()) <= set(unlabeled.tolist())
    return candidates


def _check_selection(run_dir, adapter, candidates: np.ndarray, expected: dict[int, float],
                     cycle: int) -> None:
    """pool.npz adds the top BUDGET candidates by ``expected``; each CSV row holds its value."""
    state = PoolState.load(run_dir / "pool.npz")
    values = np.array([expected[int(index)] for index in candidates])
    order = np.argsort(-values, kind="stable")
    # The test would be fragile if the budget's cut fell between two (nearly) equal scores.
    assert values[order[BUDGET - 1]] - values[order[BUDGET]] > 1e-4
    top = candidates[order[:BUDGET]]
    assert sorted(state.added_in(cycle + 1).tolist()) == sorted(top.tolist())

    rows = read_entropies_csv(run_dir / "priorities" / f"cycle_{cycle:02d}.csv")
    index_of = _name_to_index(adapter)
    chosen = [index_of[name] for name, _ in rows]
    assert chosen == top.tolist()                                    # best first
    # The CSV shifts negative values (a predicted loss) so that the smallest written is 0.
    shift = min(0.0, min(expected[index] for index in chosen))
    for index, (name, value) in zip(chosen, rows):
        assert value == pytest.approx(expected[index] - shift, abs=2e-5), name


@pytest.mark.parametrize("strategy", ["entropy", "least_confidence"])
def test_chosen_ids_and_csv_values_match_each_samples_own_score(tmp_path, strategy):
    adapter = IndexScoredAdapter()
    run_active_learning(adapter, _config(strategy, cycles=2), tmp_path)
    state = PoolState.load(tmp_path / "pool.npz")
    expected = dict(zip(range(N_POOL), expected_score(strategy, np.arange(N_POOL)).tolist()))
    assert len(adapter.units.drawn) == 2
    for cycle in (0, 1):
        candidates = _check_candidates(adapter.units, state, cycle)
        # Sanity of the construction: the candidates' scores are all different.
        assert len({round(expected[int(i)], 9) for i in candidates}) == SUBSET
        _check_selection(tmp_path, adapter, candidates, expected, cycle)


def test_loss_prediction_writes_the_loss_modules_own_prediction_beside_each_id(tmp_path, monkeypatch):
    from active_learning.loop import runner

    captured = {}
    original = runner.select_next

    def recording(adapter_, model, loss_module, state, cycle, config_, device, **options):
        captured.update(model=model, loss_module=loss_module)
        return original(adapter_, model, loss_module, state, cycle, config_, device, **options)

    monkeypatch.setattr(runner, "select_next", recording)
    adapter = RecordingClassifier()
    run_active_learning(adapter, _config("loss_prediction", epochs=2), tmp_path)
    state = PoolState.load(tmp_path / "pool.npz")
    assert len(adapter.units.drawn) == 1
    candidates = _check_candidates(adapter.units, state, 0)

    # The loss module's prediction for each candidate, one sample at a time (in eval mode every
    # layer of the model and of the module treats each sample on its own).
    model, loss_module = captured["model"].eval(), captured["loss_module"].eval()
    images = adapter.pool_set.tensors[0]
    expected = {}
    with torch.inference_mode():
        for index in candidates.tolist():
            _, features = adapter.forward_intermediates(model, images[index:index + 1])
            expected[index] = float(loss_module(features)[0])
    assert all(math.isfinite(value) for value in expected.values())
    _check_selection(tmp_path, adapter, candidates, expected, 0)

