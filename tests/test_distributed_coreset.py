"""Sharded k-center greedy picks exactly what the one-process k-center greedy picks."""
from __future__ import annotations

import numpy as np
import pytest

from active_learning.distributed import is_distributed, rank, shard_range, world_size
from active_learning.strategies.distributed_coreset import k_center_greedy_sharded
from active_learning.strategies.diversity import k_center_greedy
from distributed_workers import sharded_k_center, spawn


@pytest.mark.parametrize("n, shards", [(10, 3), (2, 4), (0, 2), (12, 1)])
def test_shards_tile_the_range_in_order_and_differ_by_at_most_one(n, shards):
    ranges = [shard_range(n, k, shards) for k in range(shards)]
    assert [i for start, stop in ranges for i in range(start, stop)] == list(range(n))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert shard_range(10, 0, 3) == (0, 4) and shard_range(10, 2, 3) == (7, 10)


def test_without_a_process_group_it_is_one_process_of_one():
    assert (rank(), world_size(), is_distributed()) == (0, 1, False)


def features_and_labeled(n=200, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, dim))            # float64: distances exact enough to compare
    return features, rng.choice(n, size=15, replace=False)


@pytest.mark.parametrize("with_labeled", [True, False])
def test_one_process_equals_the_unsharded_algorithm(with_labeled):
    features, labeled = features_and_labeled()
    labeled = labeled if with_labeled else np.zeros(0, dtype=np.int64)
    expected = k_center_greedy(features, labeled, 25, seed=3, chunk_size=16)
    picks = k_center_greedy_sharded(features, labeled, 25, offset=0, total=len(features), seed=3,
                                    chunk_size=16)
    np.testing.assert_array_equal(picks, expected)


def test_two_processes_pick_what_one_process_picks(tmp_path):
    features, labeled = features_and_labeled()
    none = np.zeros(0, dtype=np.int64)
    # rows 1 and 4 are both 5 away from the labeled row 0 and in different shards; rows 2 and 3
    # tie next, within one shard: the lowest position wins each tie.
    line = np.array([[0.0], [5.0], [2.0], [-2.0], [-5.0]])
    cases = [(features, labeled, 25, [0, 137, 200]),      # uneven shards, labeled rows in both
             (features, none, 25, [0, 137, 200]),         # no labeled row: a seeded first pick
             (features, labeled, 25, [0, 200, 200]),      # one process holds no row
             (line, np.array([0]), 4, [0, 3, 5])]
    expected = [k_center_greedy(x, lab, budget, seed=3, chunk_size=16)
                for x, lab, budget, _ in cases]
    np.testing.assert_array_equal(expected[3], [1, 4, 2, 3])
    spawn(sharded_k_center, 2, tmp_path, cases)
    for case, picks in enumerate(expected):
        for worker in (0, 1):
            np.testing.assert_array_equal(np.load(tmp_path / f"picks-{case}-{worker}.npy"), picks)


def test_shards_that_do_not_tile_the_pool_are_refused():
    features = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="do not tile the pool"):
        k_center_greedy_sharded(features, None, 2, offset=3, total=10)
    with pytest.raises(ValueError, match="exceeds the number of unlabeled rows"):
        k_center_greedy_sharded(features, np.arange(9), 2, offset=0, total=10)
