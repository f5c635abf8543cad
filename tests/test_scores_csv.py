"""scores.csv: every scored candidate's score and rank, the chosen first as in the priority CSV."""
from __future__ import annotations

import numpy as np
import pytest

from active_learning.files.export import (
    csv_values,
    read_entropies_csv,
    read_scores_csv,
    scores_table,
    write_scores_csv,
)
from active_learning.loop.config import LoopConfig
from active_learning.loop.runner import run_active_learning
from toy_adapters import ToyClassificationAdapter

NAMES = [f"img{i}.png" for i in range(8)]


def test_the_chosen_come_first_in_the_priority_csvs_order_then_the_rest_by_score():
    # chosen in selection order 5, 2, 7 with selection scores 0.5, 0.9, 0.5: the priority CSV
    # puts 2 first, then 5 and 7 (a tie keeps the selection order); the unchosen 0, 1, 3 follow
    # by score, the tie between 1 and 3 by index. 4 and 6 were not scored: absent.
    rows = scores_table([5, 2, 7], [0.5, 0.9, 0.5], [0, 1, 2, 3, 5, 7],
                        [0.1, 0.3, 0.9, 0.3, 0.5, 0.5])
    assert rows == [(2, 0.9, 1, True), (5, 0.5, 2, True), (7, 0.5, 3, True),
                    (1, 0.3, 4, False), (3, 0.3, 5, False), (0, 0.1, 6, False)]


def test_a_mix_keeps_the_strategys_score_and_the_pick_order():
    # a mix's selection scores are its pick order (1, 2/3, 1/3); the strategy's scores differ
    rows = scores_table([3, 0, 1], [1.0, 2 / 3, 1 / 3], [0, 1, 2, 3], [0.8, 0.2, 0.6, 0.4])
    assert [(index, score, rank) for index, score, rank, _ in rows] == \
        [(3, 0.4, 1), (0, 0.8, 2), (1, 0.2, 3), (2, 0.6, 4)]


def test_a_set_strategy_lists_its_choice_with_its_selection_scores():
    assert scores_table([4, 1], [1.0, 0.5]) == [(4, 1.0, 1, True), (1, 0.5, 2, True)]
    with pytest.raises(ValueError, match="one score"):
        scores_table([4, 1], [1.0])


def test_the_file_round_trips_with_nine_digits_and_unmapped_negative_scores(tmp_path):
    path = tmp_path / "scores.csv"
    write_scores_csv(NAMES, [6], [-0.25], [0, 6], [-1.123456789123, -0.25], path)
    assert path.read_text().splitlines() == ["name,score,rank,chosen", "img6.png,-0.25,1,1",
                                             "img0.png,-1.12345679,2,0"]
    assert read_scores_csv(path) == [("img6.png", -0.25, 1, True),
                                     ("img0.png", -1.12345679, 2, False)]
    with pytest.raises(ValueError, match="NaN"):
        write_scores_csv(NAMES, [1], [float("nan")], None, None, tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()
    (tmp_path / "other.csv").write_text("name,entropy_value\n")
    with pytest.raises(ValueError, match="header"):
        read_scores_csv(tmp_path / "other.csv")


def _config(strategy: str, **overrides) -> LoopConfig:
    values = dict(strategy=strategy, cycles=2, initial_size=20, budget=6, subset_size=30,
                  epochs=1, batch_size=16, eval_batch_size=32, mc_samples=3, progress=False,
                  seed=3)
    values.update(overrides)
    return LoopConfig(**values)


def _check_cycle(run_dir, cycle: int, candidates: int, budget: int) -> list:
    rows = read_scores_csv(run_dir / "scores" / f"cycle_{cycle:02d}.csv")
    priority = read_entropies_csv(run_dir / "priorities" / f"cycle_{cycle:02d}.csv")
    assert len(rows) == candidates and len({name for name, *_ in rows}) == candidates
    assert [rank for _, _, rank, _ in rows] == list(range(1, candidates + 1))
    chosen = [row for row in rows if row[3]]
    assert chosen == rows[:budget]
    assert [name for name, *_ in chosen] == [name for name, _ in priority]
    return rows


def test_every_simulated_cycle_writes_every_candidates_score(tmp_path):
    run_active_learning(ToyClassificationAdapter(n_train=60), _config("entropy"), tmp_path)
    for cycle in range(2):
        rows = _check_cycle(tmp_path, cycle, 30, 6)
        priority = read_entropies_csv(tmp_path / "priorities" / f"cycle_{cycle:02d}.csv")
        # top-k: the chosen rows are the priority CSV's rows, value for value
        assert csv_values(np.array([score for _, score, _, _ in rows[:6]])) == \
            pytest.approx([value for _, value in priority], abs=5e-6)
        rest = [score for _, score, _, chosen in rows[6:]]
        assert rest == sorted(rest, reverse=True) and max(rest) <= rows[5][1]
        assert all(0.0 <= score <= np.log(3) + 1e-6 for _, score, _, _ in rows)   # 3 classes


def test_a_mix_and_a_set_strategy_write_their_files_too(tmp_path):
    run_active_learning(ToyClassificationAdapter(n_train=60),
                        _config("margin", cycles=1, diversity="coreset", diversity_factor=2),
                        tmp_path / "mix")
    rows = _check_cycle(tmp_path / "mix", 0, 30, 6)
    # the chosen carry the strategy's scores, not the pick order's 1 .. 1/6
    assert {score for _, score, _, _ in rows[:6]} != {1.0}
    run_active_learning(ToyClassificationAdapter(n_train=60), _config("coreset", cycles=1),
                        tmp_path / "set")
    _check_cycle(tmp_path / "set", 0, 6, 6)   # no candidate scores: the choice alone
