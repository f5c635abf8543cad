"""Strategy comparison on hand-made run folders: AUBC, labels to reach, wins, protocol checks, CLI."""
from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from active_learning.files.export import write_metrics_csv
from active_learning.loop.config import LoopConfig
from active_learning.reports.compare import (
    ProtocolMismatchError,
    aubc,
    compare_runs,
    labels_to_reach,
    load_runs,
    main,
    win_tie_loss,
    write_comparison,
)

# Accuracy per cycle at 10, 20, 30 labels. Hand values:
#   AUBC  random 0.6 / 0.5, entropy 0.6667 / 0.6, margin 0.6 / 0.4 (seed 0 / seed 1)
#   mean curves: random [0.4, 0.55, 0.7], entropy [0.4, 0.7, 0.8], margin [0.35, 0.5, 0.65]
CURVES = {
    ("random", 0): [0.5, 0.6, 0.7],
    ("random", 1): [0.3, 0.5, 0.7],
    ("entropy", 0): [0.5, 0.7, 0.8],
    ("entropy", 1): [0.3, 0.7, 0.8],
    ("margin", 0): [0.5, 0.6, 0.7],
    ("margin", 1): [0.2, 0.4, 0.6],
}


def write_run(root, strategy, seed, accuracies, *, counts=None, dataset="toy", **loop_overrides):
    """A run folder as the loop writes it: runs/<task>/<dataset>/<strategy>/seed<k>/."""
    config = LoopConfig(strategy=strategy, seed=seed, cycles=len(accuracies), initial_size=10,
                        budget=10, subset_size=None, subset_factor=10, epochs=3)
    config = dataclasses.replace(config, **loop_overrides)
    counts = counts or [config.initial_size + c * config.budget for c in range(len(accuracies))]
    run_dir = root / "toy_task" / dataset / strategy / f"seed{seed}"
    run_dir.mkdir(parents=True)
    record = {"loop": dataclasses.asdict(config), "task": {"dataset": dataset, "width": 8}}
    (run_dir / "args.json").write_text(json.dumps(record), encoding="utf-8")
    rows = [{"cycle": c, "n_labeled": n, "accuracy": a, "train_loss": 1.0, "n_selected": config.budget,
             "train_seconds": 0.1, "eval_seconds": 0.1, "select_seconds": 0.1, "seconds": 0.3}
            for c, (n, a) in enumerate(zip(counts, accuracies))]
    write_metrics_csv(rows, run_dir / "metrics.csv")
    return run_dir


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    for (strategy, seed), accuracies in CURVES.items():
        write_run(root, strategy, seed, accuracies)
    return root


def test_aubc_is_the_mean_over_cycles():
    assert aubc([0.5, 0.6, 0.7]) == pytest.approx(0.6)
    assert aubc([0.3, 0.7, 0.8]) == pytest.approx(1.8 / 3)
    assert aubc([0.25]) == 0.25
    with pytest.raises(ValueError, match="values"):
        aubc([])
    with pytest.raises(ValueError, match="finite"):
        aubc([0.5, float("nan")])


def test_labels_to_reach_by_hand():
    counts, values = [10, 20, 30], [0.4, 0.7, 0.65]
    assert labels_to_reach(counts, values, 0.7) == 20   # first count at or above the target
    assert labels_to_reach(counts, values, 0.6) == 20
    assert labels_to_reach(counts, values, 0.3) == 10
    assert labels_to_reach(counts, values, 0.71) is None  # never reached
    with pytest.raises(ValueError, match="differ in length"):
        labels_to_reach([10, 20], [0.1], 0.5)


def test_win_tie_loss_by_hand_three_seeds():
    per_seed = {"a": {0: 0.700, 1: 0.800, 2: 0.500},
                "b": {0: 0.7005, 1: 0.790, 2: 0.510, 3: 0.900},   # seed 3 has no partner: ignored
                "c": {0: 0.701, 1: 0.800}}
    totals, pairwise = win_tie_loss(per_seed, tolerance=0.001)
    # a vs b: seed 0 |diff| 0.0005 tie, seed 1 a wins, seed 2 a loses.
    assert pairwise[("a", "b")] == (1, 1, 1) and pairwise[("b", "a")] == (1, 1, 1)
    # a vs c: seed 0 differs by exactly the tolerance -> tie; seed 1 equal -> tie.
    assert pairwise[("a", "c")] == (0, 2, 0)
    # b vs c: seed 0 0.7005 vs 0.701 tie, seed 1 0.79 vs 0.80 loss.
    assert pairwise[("b", "c")] == (0, 1, 1) and pairwise[("c", "b")] == (1, 1, 0)
    assert totals == {"a": {"wins": 1, "ties": 3, "losses": 1},
                      "b": {"wins": 1, "ties": 2, "losses": 2},
                      "c": {"wins": 1, "ties": 3, "losses": 0}}
    _, loose = win_tie_loss(per_seed, tolerance=0.02)
    assert loose[("a", "b")] == (0, 3, 0)
    with pytest.raises(ValueError, match="tolerance"):
        win_tie_loss(per_seed, tolerance=-0.1)


def test_compare_runs_by_hand(runs_root):
    runs = load_runs([runs_root])
    assert len(runs) == 6
    comparison = compare_runs(runs, metric="accuracy")
    assert comparison.counts == [10, 20, 30]
    assert comparison.strategies == ["entropy", "random", "margin"]  # best AUBC first
    assert comparison.warnings == []
    summary = comparison.summary
    assert summary.at["random", "aubc_mean"] == pytest.approx(0.55)
    assert summary.at["random", "aubc_std"] == pytest.approx(0.05)  # population std over seeds
    assert summary.at["entropy", "aubc_mean"] == pytest.approx((0.2 / 3 + 1.2) / 2)
    assert summary.at["margin", "aubc_mean"] == pytest.approx(0.5)
    assert comparison.curve_mean["random"].tolist() == pytest.approx([0.4, 0.55, 0.7])
    assert comparison.curve_std.at[10, "margin"] == pytest.approx(0.15)
    assert comparison.random_target == pytest.approx(0.7)
    reach = summary["labels_to_reach_random"]
    assert reach["entropy"] == 20 and reach["random"] == 30 and reach["margin"] is None
    # Per seed: entropy beats both; random ties margin on seed 0 (same AUBC) and wins seed 1.
    assert comparison.pairwise[("entropy", "random")] == (2, 0, 0)
    assert comparison.pairwise[("random", "margin")] == (1, 1, 0)
    assert comparison.pairwise[("margin", "random")] == (0, 1, 1)
    assert summary.loc["entropy", ["wins", "ties", "losses"]].tolist() == [4, 0, 0]
    assert summary.loc["random", ["wins", "ties", "losses"]].tolist() == [1, 1, 2]
    assert summary.loc["margin", ["wins", "ties", "losses"]].tolist() == [0, 1, 3]


def test_no_random_group_omits_labels_to_reach(runs_root):
    runs = [run for run in load_runs(runs_root) if run.strategy != "random"]
    comparison = compare_runs(runs)
    assert comparison.random_target is None
    assert "labels_to_reach_random" not in comparison.summary.columns
    assert comparison.pairwise[("entropy", "margin")] == (2, 0, 0)


@pytest.mark.parametrize("overrides, field", [
    (dict(budget=20), "budget"),
    (dict(initial_size=5), "initial_size"),
    (dict(epochs=7), "epochs"),
    (dict(subset_size=50), "subset"),
    (dict(dataset="other"), "dataset"),
])
def test_protocol_mismatch_is_refused(runs_root, overrides, field):
    odd = write_run(runs_root / "odd", "badge", 0, [0.5, 0.6, 0.7], **overrides)
    with pytest.raises(ProtocolMismatchError, match=field) as info:
        compare_runs(load_runs(runs_root))
    assert str(odd) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_same_resolved_subset_size_is_accepted(runs_root):
    # subset_factor 10 x budget 10 is the same protocol as an explicit subset_size of 100.
    write_run(runs_root / "explicit", "badge", 0, [0.5, 0.6, 0.7], subset_size=100)
    assert "badge" in compare_runs(load_runs(runs_root)).strategies


def test_label_counts_that_do_not_line_up_are_refused(runs_root):
    write_run(runs_root / "odd", "badge", 0, [0.5, 0.6, 0.7], counts=[10, 20, 35])
    with pytest.raises(ProtocolMismatchError, match="label counts"):
        compare_runs(load_runs(runs_root))


def test_shorter_run_compares_on_common_counts_with_a_warning(runs_root):
    short = write_run(runs_root / "short", "badge", 0, [0.5, 0.9])
    with pytest.warns(UserWarning, match="first 2 cycle"):
        comparison = compare_runs(load_runs(runs_root))
    assert comparison.counts == [10, 20]
    assert str(short) in comparison.warnings[0]
    assert comparison.summary.at["random", "aubc_mean"] == pytest.approx((0.55 + 0.4) / 2)
    assert comparison.random_target == pytest.approx(0.55)  # random's last *common* point
    assert comparison.summary.at["badge", "labels_to_reach_random"] == 20


def test_bad_inputs_name_the_problem(runs_root, tmp_path):
    runs = load_runs(runs_root)
    with pytest.raises(ValueError, match="'miou'"):
        compare_runs(runs, metric="miou")
    with pytest.raises(ValueError, match="tolerance"):
        compare_runs(runs, tolerance=-1)
    write_run(tmp_path / "copy", "random", 0, [0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="seed 0"):
        compare_runs(load_runs([runs_root, tmp_path / "copy"]))
    with pytest.raises(FileNotFoundError):
        load_runs([tmp_path / "missing"])


def test_cli_end_to_end(runs_root, tmp_path, capsys):
    # Mix a parent folder and a run folder given twice: each run is used once.
    out = tmp_path / "report" / "cmp"
    code = main([str(runs_root), str(runs_root / "toy_task" / "toy" / "random" / "seed0"),
                 "--output", str(out), "--metric", "accuracy"])
    assert code == 0
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "| entropy | — | 2/0/0 | 2/0/0 |" in markdown   # pairwise matrix, row against column
    assert "| margin | 0/0/2 | 0/1/1 | — |" in markdown
    assert "| 20 | 0.7000 ± 0.0000 | 0.5500 ± 0.0500 | 0.5000 ± 0.1000 |" in markdown
    assert "not reached" in markdown
    with open(out.with_suffix(".csv"), newline="", encoding="utf-8") as handle:
        table = {row["strategy"]: row for row in csv.DictReader(handle)}
    assert list(table) == ["entropy", "random", "margin"]
    assert float(table["random"]["mean@30"]) == pytest.approx(0.7)
    assert float(table["margin"]["std@20"]) == pytest.approx(0.1)
    assert float(table["random"]["aubc_mean"]) == pytest.approx(0.55)
    assert [table[s]["labels_to_reach_random"] for s in table] == ["20", "30", "not reached"]
    assert [(table[s]["wins"], table[s]["ties"], table[s]["losses"]) for s in table] == [
        ("4", "0", "0"), ("1", "1", "2"), ("0", "1", "3")]
    assert "wrote" in capsys.readouterr().out


def test_cli_refuses_mismatched_protocols_with_exit_code_2(runs_root, tmp_path, capsys):
    odd = write_run(runs_root / "odd", "badge", 0, [0.5, 0.6, 0.7], budget=20)
    code = main([str(runs_root), "--output", str(tmp_path / "cmp")])
    assert code == 2
    error = capsys.readouterr().err
    assert "budget" in error and str(odd) in error
    assert not (tmp_path / "cmp.md").exists()


def test_write_comparison_api_takes_a_prefix_or_a_file_name(runs_root, tmp_path):
    comparison = compare_runs(load_runs(runs_root))
    paths = write_comparison(comparison, tmp_path / "out" / "report.md")  # suffix dropped
    assert {key: path.name for key, path in paths.items()} == {
        "png": "report.png", "md": "report.md", "csv": "report.csv"}
    assert all(path.stat().st_size > 0 for path in paths.values())
    assert "![learning curves](report.png)" in paths["md"].read_text(encoding="utf-8")
