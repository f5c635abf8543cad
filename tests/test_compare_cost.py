"""AUBC against a cost and the cost to reach a metric, by hand; compare --x n_clicks end to end."""
from __future__ import annotations

import json

import pytest

from active_learning.files.export import write_metrics_csv
from active_learning.reports.compare import (
    ProtocolMismatchError,
    aubc_over_cost,
    common_cost_range,
    compare_runs,
    cost_to_reach,
    load_runs,
    main,
)


def test_the_common_cost_range_is_every_curves_share():
    assert common_cost_range([[0, 10, 20], [5, 15, 30]]) == (5.0, 20.0)
    with pytest.raises(ValueError, match="share no cost range"):
        common_cost_range([[0, 4], [5, 9]])


def test_aubc_over_a_cost_is_the_trapezoid_area_over_the_range_divided_by_it():
    # from 5 to 20: the curve is 0.5 at 5 (interpolated), 1 at 10 and 20:
    # 5 x (0.5 + 1) / 2 + 10 x 1 = 13.75 over a range of 15. (The mean over cycles would give
    # 0.667; only the points inside, 1.0.)
    assert aubc_over_cost([0, 10, 20], [0.0, 1.0, 1.0], 5, 20) == pytest.approx(13.75 / 15)
    # the range's upper end interpolated too: 0 -> 0.2 at 0 and 10, then 0.4 at 20; up to 15:
    # 10 x 0.2 + 5 x (0.2 + 0.3) / 2 = 3.25 over 15
    assert aubc_over_cost([0, 10, 20], [0.2, 0.2, 0.4], 0, 15) == pytest.approx(3.25 / 15)
    assert aubc_over_cost([0, 10], [0.2, 0.4], 5, 5) == pytest.approx(0.3)   # one point
    with pytest.raises(ValueError, match="not inside"):
        aubc_over_cost([0, 10], [0.2, 0.4], 5, 12)


def test_the_cost_to_reach_a_value_is_interpolated_on_the_crossing_segment():
    assert cost_to_reach([0, 10, 20], [0.2, 0.4, 0.6], 0.5) == pytest.approx(15.0)
    assert cost_to_reach([0, 10, 20], [0.2, 0.4, 0.6], 0.1) == 0.0
    assert cost_to_reach([0, 10, 20], [0.2, 0.4, 0.6], 0.7) is None
    # a curve that dips below the target again: the first crossing counts
    assert cost_to_reach([0, 10, 20, 30], [0.2, 0.6, 0.3, 0.8], 0.4) == pytest.approx(5.0)
    # lower is better: an error falling from 0.6 through 0.5 at half the first segment
    assert cost_to_reach([0, 10], [0.6, 0.4], 0.5, higher_is_better=False) == pytest.approx(5.0)


def _run(root, strategy, seed, budget, clicks, miou):
    loop = {"strategy": strategy, "seed": seed, "initial_size": 4, "budget": budget,
            "subset_size": None, "subset_factor": 10, "epochs": 3}
    run_dir = root / strategy / f"seed{seed}"
    run_dir.mkdir(parents=True)
    (run_dir / "args.json").write_text(json.dumps({
        "loop": loop, "task": {"dataset": "toy"},
        "metric": {"name": "mIoU", "higher_is_better": True}}), encoding="utf-8")
    rows = [{"cycle": c, "n_labeled": 4 + c * budget, "n_clicks": n, "mIoU": m}
            for c, (n, m) in enumerate(zip(clicks, miou))]
    write_metrics_csv(rows, run_dir / "metrics.csv")


def test_compare_against_clicks_takes_arms_of_other_units_and_integrates_over_the_shared_range(
        tmp_path, capsys):
    root = tmp_path / "runs"
    # random images: 3 images a cycle; superpixels: 50 a cycle; costs in clicks differ per seed
    _run(root, "random", 0, 3, [100, 200, 300], [0.2, 0.3, 0.4])
    _run(root, "random", 1, 3, [100, 220, 340], [0.2, 0.32, 0.38])
    _run(root, "ripu_superpixels", 0, 50, [100, 150, 200], [0.2, 0.35, 0.45])
    _run(root, "ripu_superpixels", 1, 50, [100, 160, 220], [0.2, 0.3, 0.4])
    runs = load_runs(root)
    with pytest.raises(ProtocolMismatchError):      # against labels they do not line up
        compare_runs(runs)
    with pytest.warns(UserWarning, match="budget per cycle"):
        comparison = compare_runs(runs, x="n_clicks")
    assert comparison.cost_range == (100.0, 200.0)
    # random seed 0 from 100 to 200: (0.2 + 0.3) / 2 = 0.25; seed 1: 0.2 -> 0.32 at 220, so
    # 0.3 at 200: (0.2 + 0.3) / 2 = 0.25
    assert comparison.aubc_per_seed["random"] == pytest.approx({0: 0.25, 1: 0.25})
    # ripu seed 0: 50 x (0.2 + 0.35) / 2 + 50 x (0.35 + 0.45) / 2 = 33.75 -> 0.3375; seed 1:
    # 60 x 0.25 + 40 x (0.3 + 0.3667) / 2 = 15 + 13.333 = 28.333 -> 0.28333
    assert comparison.aubc_per_seed["ripu_superpixels"] == pytest.approx(
        {0: 0.3375, 1: 0.28333333}, abs=1e-6)
    summary = comparison.summary
    # random's final mean mIoU 0.39; ripu's mean curve: clicks 100, 155, 210 and mIoU 0.2,
    # 0.325, 0.425 -> 0.39 at 155 + 55 x (0.065 / 0.1) = 190.75
    assert summary.at["ripu_superpixels", "labels_to_reach_random"] == pytest.approx(190.75)
    assert summary.at["ripu_superpixels", "wins"] == 2
    assert main([str(root), "--output", str(tmp_path / "cmp"), "--x", "n_clicks"]) == 0
    markdown = (tmp_path / "cmp.md").read_text()
    assert "n_clicks to reach random's final mIoU" in markdown and "190.75" in markdown
    assert "over [100, 200]" in markdown
    assert "n_clicks@cycle2" in (tmp_path / "cmp.csv").read_text()
