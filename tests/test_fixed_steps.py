"""A fixed number of optimisation steps per cycle and the same initial weights every cycle
(``LoopConfig.steps_per_cycle``, ``LoopConfig.same_init``: issue 32's quiet protocol)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from active_learning.errors import ConfigError
from active_learning.loop.config import LoopConfig
from active_learning.loop.inference import make_loader
from active_learning.loop.runner import run_active_learning
from toy_adapters import ToyClassificationAdapter


def _config(**overrides) -> LoopConfig:
    values = dict(strategy="random", cycles=3, initial_size=5, budget=20, subset_size=40,
                  epochs=2, batch_size=4, eval_batch_size=32, progress=False, seed=3)
    values.update(overrides)
    return LoopConfig(**values)


class _Recording(ToyClassificationAdapter):
    """Counts the batches of each training pass and keeps each cycle's initial weights."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []        # per pass: the batch sizes
        self.initial_weights: list[torch.Tensor] = []

    def build_model(self):
        model = super().build_model()
        self.initial_weights.append(model.head.weight.detach().clone())
        return model

    def train_one_epoch(self, model, companion, loader, optimizer, **kwargs):
        sizes = []

        def counted():
            for batch in loader:
                sizes.append(len(batch[1]))
                yield batch

        stats = super().train_one_epoch(model, companion, counted(), optimizer, **kwargs)
        self.batches.append(sizes)
        return stats


def test_every_cycle_trains_the_same_number_of_steps_whatever_its_labeled_set(tmp_path):
    adapter = _Recording()
    run_active_learning(adapter, _config(steps_per_cycle=6), tmp_path)
    # 3 cycles x 2 passes of 6 / 2 = 3 full batches, on 5, 25 and 45 labeled images alike
    assert adapter.batches == [[4, 4, 4]] * 6


def test_without_steps_a_pass_goes_once_over_the_labeled_set(tmp_path):
    adapter = _Recording()
    run_active_learning(adapter, _config(), tmp_path)
    # 5 images: 4 + 1 (a lone last sample is dropped), 25: 6 x 4 + 1 dropped, 45: 11 x 4 + 1
    assert [len(sizes) for sizes in adapter.batches] == [1, 1, 6, 6, 11, 11]


def test_a_pass_of_fixed_steps_draws_every_sample_equally_often():
    dataset = TensorDataset(torch.arange(3))
    loader = make_loader(ToyClassificationAdapter(), dataset, 4, _config(), shuffle=True, seed=0,
                         samples_per_epoch=8)
    drawn = torch.cat([batch[0] for batch in loader])
    assert len(drawn) == 8                                  # two batches of 4
    counts = np.bincount(drawn.numpy(), minlength=3)
    # two whole permutations (each index twice), then 2 of a third one: 3, 3, 2 in some order
    assert sorted(counts.tolist()) == [2, 3, 3]
    again = torch.cat([batch[0] for batch in make_loader(
        ToyClassificationAdapter(), dataset, 4, _config(), shuffle=True, seed=0,
        samples_per_epoch=8)])
    assert torch.equal(drawn, again)                        # seeded by the loader's seed


def test_same_init_starts_every_cycle_from_cycle_0s_weights(tmp_path):
    same, seeded = _Recording(), _Recording()
    run_active_learning(same, _config(same_init=True), tmp_path / "same")
    run_active_learning(seeded, _config(), tmp_path / "seeded")
    assert all(torch.equal(weights, same.initial_weights[0]) for weights in same.initial_weights)
    assert torch.equal(same.initial_weights[0], seeded.initial_weights[0])   # cycle 0 as before
    assert not torch.equal(seeded.initial_weights[1], seeded.initial_weights[0])


def test_steps_and_same_init_enter_the_protocol_only_when_set():
    plain = _config().protocol()
    assert "steps_per_cycle" not in plain and "same_init" not in plain   # older runs resume
    fixed = _config(steps_per_cycle=6, same_init=True).protocol()
    assert fixed["steps_per_cycle"] == 6 and fixed["same_init"] is True


def test_a_resumed_run_of_fixed_steps_refuses_another_step_count(tmp_path):
    from active_learning.errors import RunMismatchError

    run_active_learning(ToyClassificationAdapter(), _config(cycles=1, steps_per_cycle=4), tmp_path)
    with pytest.raises(RunMismatchError, match="steps_per_cycle: 4 -> 6"):
        run_active_learning(ToyClassificationAdapter(), _config(cycles=2, steps_per_cycle=6),
                            tmp_path)


@pytest.mark.parametrize("steps", [3, 1])
def test_steps_must_split_into_the_passes(steps):
    with pytest.raises(ConfigError, match="multiple of --epochs"):
        _config(steps_per_cycle=steps).validate(100)
