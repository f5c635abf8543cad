"""Scores streamed to disk (``ScoreStore``): the pass gives what the in-memory pass gives, an
interrupted pass resumes at its first unscored sample, and a run interrupted in its scoring pass
resumes without training again."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from active_learning.loop.config import LoopConfig
from active_learning.loop.runner import SCORING, run_active_learning
from active_learning.loop.score_store import ScoreStore
from active_learning.loop.scoring import score_candidates
from active_learning.strategies import get_strategy
from distributed_workers import _toy_adapter


def test_a_store_reopened_with_its_key_keeps_what_was_recorded(tmp_path):
    store = ScoreStore(tmp_path / "s", 6, {"model": "a"}, commit_seconds=0)
    store.write(np.array([4, 1]), np.array([0.5, 0.25]))
    store.advance(2)
    store.write(np.array([0]), np.array([9.0]))
    store.advance(1)
    again = ScoreStore(tmp_path / "s", 6, {"model": "a"})
    assert again.done == 3
    np.testing.assert_array_equal(again.read(np.array([0, 1, 4])), [9.0, 0.25, 0.5])
    assert np.isnan(again.read(np.array([2, 3, 5]))).all()
    # another model, another size, or a torn progress record: the pass starts over
    assert ScoreStore(tmp_path / "s", 6, {"model": "b"}).done == 0
    store = ScoreStore(tmp_path / "t", 4, "k", commit_seconds=0)
    store.advance(2)
    assert ScoreStore(tmp_path / "t", 5, "k").done == 0
    store = ScoreStore(tmp_path / "u", 4, "k", commit_seconds=0)
    store.advance(2)
    (tmp_path / "u" / "progress.json").write_text('{"key": "k", "sl')
    assert ScoreStore(tmp_path / "u", 4, "k").done == 0


def test_progress_is_recorded_only_every_commit_seconds_and_at_the_end(tmp_path):
    store = ScoreStore(tmp_path / "s", 4, "k", commit_seconds=3600)
    store.write(np.array([0, 1]), np.array([1.0, 2.0]))
    store.advance(2)
    assert json.loads((tmp_path / "s" / "progress.json").read_text())["done"] == 0
    store.advance(0, final=True)
    assert json.loads((tmp_path / "s" / "progress.json").read_text())["done"] == 2


class _Counting(Dataset):
    """``dataset`` that records the samples read, and raises after ``fail_after`` reads."""

    def __init__(self, dataset, fail_after: int | None = None):
        self.dataset, self.fail_after, self.read = dataset, fail_after, []

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        if self.fail_after is not None and len(self.read) == self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.read.append(int(index))
        return self.dataset[index]


@pytest.mark.parametrize("kind, strategy", [("images", "entropy"), ("grouped", "margin"),
                                            ("regions", "entropy"), ("images", "mc_entropy")])
def test_an_interrupted_pass_resumes_and_equals_one_pass_in_memory(tmp_path, kind, strategy):
    adapter = _toy_adapter(kind)
    torch.manual_seed(0)
    model = adapter.build_model()
    units = adapter.selection_units()
    samples = np.arange(3, adapter.selection_units().n_samples)     # not every sample
    config = LoopConfig(strategy=strategy, eval_batch_size=4, mc_samples=2, progress=False)

    def score(store=None):
        torch.manual_seed(1)   # MC dropout's masks
        return score_candidates(adapter, model, None, get_strategy(strategy), samples, config,
                                torch.device("cpu"), units=units, store=store)

    expected = score()
    pool = adapter.pool_set
    adapter.pool_set = _Counting(pool, fail_after=10)   # dies in the third batch
    opened = lambda slots: ScoreStore(tmp_path / "s", slots, "key", commit_seconds=0)  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        score(opened)
    adapter.pool_set = _Counting(pool)
    resumed = score(opened)
    assert adapter.pool_set.read == samples[8:].tolist()            # the first two batches kept
    np.testing.assert_array_equal(resumed["unit_ids"], expected["unit_ids"])
    if strategy.startswith("mc_"):   # fresh dropout masks for the samples scored again
        np.testing.assert_allclose(resumed["scores"][:2], expected["scores"][:2])
    else:
        np.testing.assert_allclose(resumed["scores"], expected["scores"], rtol=1e-12)


def test_a_run_interrupted_in_scoring_resumes_without_training_again(tmp_path, monkeypatch):
    adapter = _toy_adapter("images")
    config = LoopConfig(strategy="entropy", cycles=1, initial_size=20, budget=8, subset_size=0,
                        epochs=2, batch_size=8, eval_batch_size=4, progress=False,
                        save_checkpoints=True)
    monkeypatch.setattr(ScoreStore, "COMMIT_SECONDS", 0.0)   # record every batch
    expected = run_active_learning(_toy_adapter("images"), config, tmp_path / "whole")
    pool = adapter.pool_set
    adapter.pool_set = _Counting(pool, fail_after=12)   # dies in the fourth batch
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(adapter, config, tmp_path / "run")
    assert json.loads((tmp_path / "run" / SCORING / "progress.json").read_text())["done"] == 12
    adapter.pool_set = _Counting(pool)
    trained = []
    original = type(adapter).train_one_epoch
    monkeypatch.setattr(type(adapter), "train_one_epoch",
                        lambda self, *a, **k: trained.append(1) or original(self, *a, **k))
    rows = run_active_learning(adapter, config, tmp_path / "run")
    assert trained == []                                    # the trained model was saved
    unlabeled = np.flatnonzero(np.load(tmp_path / "whole" / "pool.npz")["labeled_at"] != 0)
    assert adapter.pool_set.read == np.sort(unlabeled)[12:].tolist()   # only the rest scored
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "pool.npz")["labeled_at"],
                                  np.load(tmp_path / "whole" / "pool.npz")["labeled_at"])
    assert rows[0]["accuracy"] == expected[0]["accuracy"]
    assert not (tmp_path / "run" / SCORING).exists()


@pytest.mark.parametrize("key", [{"model": "a", "shape": (3, 4)}, {"folder": Path("runs") / "x"},
                                 ("model", ("a", 1)), [Path("p"), {"inner": (1.5, "b")}]])
def test_a_key_with_a_tuple_or_a_path_resumes_after_its_json_round_trip(tmp_path, key):
    # progress.json gives a tuple back as a list and a Path as its string: the key is compared
    # as JSON gives it back, so the same key finds its scores again (not recomputed, not refused)
    store = ScoreStore(tmp_path / "s", 4, key, commit_seconds=0)
    store.write(np.array([2]), np.array([0.75]))
    store.advance(1, final=True)
    again = ScoreStore(tmp_path / "s", 4, key)
    assert again.done == 1 and again.read(np.array([2])).tolist() == [0.75]
    # and another key still starts over
    assert ScoreStore(tmp_path / "s", 4, {"model": "other"}).done == 0
