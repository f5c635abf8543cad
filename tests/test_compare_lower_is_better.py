"""``compare`` on runs whose primary metric is an error (``higher_is_better: false`` in
args.json): wins, the summary's order and labels-to-reach, each checked against hand values."""
from __future__ import annotations

import dataclasses
import json

import pytest

from active_learning.files.export import write_metrics_csv
from active_learning.loop.config import LoopConfig
from active_learning.reports.compare import compare_runs, comparison_table, load_runs

COUNTS = [10, 20, 30, 40]
# Error per cycle at 10, 20, 30, 40 labels (lower is better). Hand values:
#   AUBC (mean over the 4 cycles)   random   entropy
#     seed 0                        0.325    0.2625   entropy lower by 0.0625  -> entropy wins
#     seed 1                        0.425    0.4255   differ by 0.0005 <= 0.001 -> tie
#     seed 2                        0.3      0.275    entropy lower by 0.025   -> entropy wins
#     mean over seeds               0.35     0.321
#   mean curves: random  [0.5, 0.41667, 0.23333, 0.25]         -> random's final error 0.25
#                entropy [0.5, 0.36667, 0.24,    0.17733]          (not its best, 0.23333)
#   labels to reach random's final error (<= 0.25): entropy 30, random 30. Were higher better
#   (>= 0.25) both would "reach" it at 10; against random's best (0.23333) entropy would need 40.
ERRORS = {
    ("random", 0): [0.50, 0.40, 0.20, 0.20],
    ("random", 1): [0.60, 0.50, 0.30, 0.30],
    ("random", 2): [0.40, 0.35, 0.20, 0.25],
    ("entropy", 0): [0.50, 0.30, 0.15, 0.10],
    ("entropy", 1): [0.60, 0.50, 0.37, 0.232],
    ("entropy", 2): [0.40, 0.30, 0.20, 0.20],
}


def _write_run(root, strategy, seed, errors):
    config = LoopConfig(strategy=strategy, seed=seed, cycles=len(errors), initial_size=10,
                        budget=10, subset_size=None, subset_factor=10, epochs=3)
    run_dir = root / "toy_task" / "toy" / strategy / f"seed{seed}"
    run_dir.mkdir(parents=True)
    record = {"loop": dataclasses.asdict(config), "task": {"dataset": "toy"},
              "metric": {"name": "error", "higher_is_better": False}}
    (run_dir / "args.json").write_text(json.dumps(record), encoding="utf-8")
    rows = [{"cycle": cycle, "n_labeled": count, "error": error, "train_loss": 1.0}
            for cycle, (count, error) in enumerate(zip(COUNTS, errors))]
    write_metrics_csv(rows, run_dir / "metrics.csv")


@pytest.fixture
def comparison(tmp_path):
    root = tmp_path / "runs"
    for (strategy, seed), errors in ERRORS.items():
        _write_run(root, strategy, seed, errors)
    return compare_runs(load_runs(root))


def test_the_direction_comes_from_args_json(comparison):
    assert comparison.metric == "error" and comparison.higher_is_better is False
    assert comparison.counts == COUNTS


def test_wins_ties_losses_favour_the_lower_error(comparison):
    assert comparison.aubc_per_seed["random"] == pytest.approx({0: 0.325, 1: 0.425, 2: 0.3})
    assert comparison.aubc_per_seed["entropy"] == pytest.approx({0: 0.2625, 1: 0.4255, 2: 0.275})
    assert comparison.pairwise[("entropy", "random")] == (2, 1, 0)
    assert comparison.pairwise[("random", "entropy")] == (0, 1, 2)
    summary = comparison.summary
    assert [int(summary.at["entropy", key]) for key in ("wins", "ties", "losses")] == [2, 1, 0]
    assert [int(summary.at["random", key]) for key in ("wins", "ties", "losses")] == [0, 1, 2]


def test_the_summary_puts_the_lowest_aubc_first(comparison):
    assert comparison.strategies == ["entropy", "random"]
    assert list(comparison.summary.index) == ["entropy", "random"]
    assert list(comparison.curve_mean.columns) == ["entropy", "random"]
    assert list(comparison_table(comparison)["strategy"]) == ["entropy", "random"]
    summary = comparison.summary
    assert summary.at["entropy", "aubc_mean"] == pytest.approx((0.2625 + 0.4255 + 0.275) / 3)
    assert summary.at["random", "aubc_mean"] == pytest.approx(0.35)
    # population std over seeds: deviations -0.025, 0.075, -0.05 from 0.35
    assert summary.at["random", "aubc_std"] == pytest.approx((0.00875 / 3) ** 0.5)
    assert summary.at["entropy", "final_mean"] == pytest.approx((0.10 + 0.232 + 0.20) / 3)


def test_labels_to_reach_random_means_going_below_its_final_error(comparison):
    assert comparison.random_target == pytest.approx(0.25)
    assert comparison.curve_mean["random"].tolist() == pytest.approx([0.5, 1.25 / 3, 0.7 / 3, 0.25])
    assert comparison.curve_mean["entropy"].tolist() == pytest.approx([0.5, 1.1 / 3, 0.24,
                                                                       0.532 / 3])
    summary = comparison.summary
    assert summary.at["entropy", "labels_to_reach_random"] == 30
    assert summary.at["random", "labels_to_reach_random"] == 30
    table = comparison_table(comparison).set_index("strategy")
    assert table.at["entropy", "labels_to_reach_random"] == "30"
