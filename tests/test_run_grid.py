"""bench/run_grid.py on a tiny grid: digits, width 2, 2 cycles, random/entropy x seeds 0/1 plus bald
with --dropout 0, which fails before training and must not stop the other runs."""
from __future__ import annotations

import contextlib
import csv
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from active_learning import list_strategies
from active_learning.files.export import read_metrics_csv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import run_grid  # noqa: E402

TINY = ["--no-report-map", "--dataset", "digits", "--width", "2", "--cycles", "2", "--initial-size", "40",
        "--images-per-cycle", "12", "--subset", "60", "--epochs", "1", "--batch-size", "20",
        "--no-progress", "--device", "cpu", "--dropout", "0"]
GOOD = ("random", "entropy")


def _grid(out: Path, strategies, seeds=("0", "1")) -> tuple[int, str]:
    """Run the grid in-process; returns (exit code, everything it printed)."""
    argv = ["--task", "classification", "--strategies", *strategies, "--seeds", *seeds,
            "--output-dir", str(out), "--threads", "1", "--", *TINY]
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
        code = run_grid.main(argv)
    return code, text.getvalue()


def _run_dir(out: Path, strategy: str, seed: int) -> Path:
    return out / "classification" / "digits" / strategy / f"seed{seed}"


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    from classification.task import ClassificationTask

    out = tmp_path_factory.mktemp("grid")
    with pytest.MonkeyPatch.context() as patch:
        # No selection pictures: nothing here reads them, and drawing them was half the grid's
        # time (test_classification_train's runs draw them).
        patch.setattr(ClassificationTask, "draw_selection", lambda self, *args, **kwargs: None)
        code, text = _grid(out, ["random", "bald", "entropy"])  # bald in the middle: the rest still runs
    return out, code, text


def test_failed_run_is_reported_and_the_others_finish(grid):
    out, code, text = grid
    assert code == 1
    assert "## Grid: 4 done, 2 failed" in text
    for seed in (0, 1):
        assert f"FAILED bald seed {seed}: error: --strategy bald samples MC dropout" in text
        assert not _run_dir(out, "bald", seed).exists()
        for strategy in GOOD:
            rows = read_metrics_csv(_run_dir(out, strategy, seed) / "metrics.csv")
            assert [row["n_labeled"] for row in rows] == [40, 52]


def test_comparison_files_match_the_runs(grid):
    out, _, text = grid
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "# Strategy comparison: accuracy" in (out / "comparison.md").read_text()
    with open(out / "comparison.csv", newline="") as handle:
        table = {row["strategy"]: row for row in csv.DictReader(handle)}
    assert set(table) == set(GOOD)
    for strategy in GOOD:
        # AUBC by hand: mean over cycles of each run's accuracy, then mean over the two seeds.
        per_seed = [np.mean([row["accuracy"] for row in
                             read_metrics_csv(_run_dir(out, strategy, seed) / "metrics.csv")])
                    for seed in (0, 1)]
        assert float(table[strategy]["aubc_mean"]) == pytest.approx(np.mean(per_seed), abs=1e-5)
        assert table[strategy]["seeds"] == "2"
        assert f"| {strategy} | 2 | {np.mean(per_seed):.4f} ± {np.std(per_seed):.4f}" in text
    assert f"wrote {out / 'comparison.md'}" in text


def test_rerun_resumes_without_retraining(grid):
    out, _, _ = grid
    files = [_run_dir(out, s, k) / name for s in GOOD for k in (0, 1) for name in ("metrics.csv", "pool.npz")]
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files}
    code, text = _grid(out, list(GOOD))
    assert code == 0
    assert "## Grid: 4 done, 0 failed" in text
    assert text.count("has finished all 2 cycle(s) already") == 4
    assert "cycle 0:" not in text  # no cycle was trained again
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files} == before


def test_no_finished_run_means_no_comparison(tmp_path):
    code, text = _grid(tmp_path, ["bald"], seeds=["3"])
    assert code == 1
    assert "## Grid: 0 done, 1 failed" in text
    assert "no run finished" in text
    assert not (tmp_path / "comparison.md").exists()


def test_compare_output_prefix_is_used(grid, tmp_path):
    out, _, _ = grid
    prefix = tmp_path / "reports" / "cmp"
    argv = ["--strategies", "random", "--seeds", "0", "--output-dir", str(out),  # resumes the run
            "--compare-output", str(prefix), "--", *TINY]
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_grid.main(argv) == 0
    assert all((prefix.parent / f"cmp.{ext}").is_file() for ext in ("md", "csv", "png"))


def test_split_and_strategy_resolution():
    assert run_grid.split_extra(["--seeds", "0", "--", "--epochs", "2"]) == (["--seeds", "0"], ["--epochs", "2"])
    assert run_grid.split_extra(["--seeds", "0"]) == (["--seeds", "0"], [])
    image_level = [name for name in list_strategies() if not name.endswith("_superpixels")]
    assert run_grid.resolve_strategies(["all"]) == [name for name in image_level if name != "heatmap_uncertainty"]
    pose = run_grid.resolve_strategies(["all"], run_grid.load_task("human_pose_estimation"))
    assert pose == ["random", "mc_variance", "heatmap_uncertainty", "loss_prediction", "coreset", "discriminative",
                    "typiclust", "probcover", "mb_outliers_mean", "mb_outliers_max", "mb_outliers_glosh",
                    "mb_clustering"]
    detection = run_grid.resolve_strategies(["all"], run_grid.load_task("object_detection"))
    assert "badge" not in detection and "entropy" in detection
    assert run_grid.resolve_strategies(["entropy", "random", "entropy"]) == ["entropy", "random"]


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "nope"], "unknown nope"),
    (["--strategies", "all", "random"], "not both"),
    (["--", "--strategy", "entropy"], "sets --strategy"),
    (["--", "--output-dir=elsewhere"], "--output-dir=elsewhere"),
    (["--task", "no_such_task"], "cannot import no_such_task.train"),
    (["--threads", "0"], "--threads"),
])
def test_bad_grid_arguments_exit_with_one_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_grid.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_run_one_turns_exceptions_and_exits_into_failures(tmp_path, capsys):
    def crash(argv):
        raise RuntimeError(f"boom {argv[0]}")

    def usage_error(argv):
        raise SystemExit(2)  # what argparse does after printing its message

    failed = run_grid.run_one(crash, ["x"], "entropy", 3)
    assert (failed.ok, failed.error, failed.run_dir) == (False, "RuntimeError: boom x", None)
    assert "Traceback" in capsys.readouterr().err  # the traceback is shown, the grid goes on
    assert run_grid.run_one(usage_error, [], "a", 0).error == "exited with code 2"
    assert "not a run folder" in run_grid.run_one(lambda argv: tmp_path, [], "a", 0).error
    (tmp_path / "metrics.csv").write_text("cycle\n")
    assert run_grid.run_one(lambda argv: tmp_path, [], "a", 0).run_dir == tmp_path
