"""classification/demo.py: several strategies as subprocesses, then one comparison of them."""
from __future__ import annotations

import contextlib
import csv
import io
import shutil
from pathlib import Path

import pytest

from active_learning.files.export import read_metrics_csv
from classification import demo
from classification.train import PRESETS

TINY = ["--no-report-map", "--dataset", "digits", "--width", "2", "--cycles", "2", "--initial-size", "40",
        "--images-per-cycle", "12", "--subset", "60", "--epochs", "2", "--batch-size", "16",
        "--mc-samples", "3", "--device", "cpu"]


# Two of the demo's strategies (each run is a process of its own: its start costs more than its
# tiny run): the demo's headline one and the one the resume test copies.
STRATEGIES = ("loss_prediction", "random")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One demo of two strategies (each a subprocess), shared by the tests that read it."""
    out = tmp_path_factory.mktemp("demo")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = demo.main(["--strategies", *STRATEGIES, "--jobs", "2", "--output-dir", str(out),
                          "--", *TINY])
    return out, code, stdout.getvalue()


def test_demo_runs_each_strategy_and_compares_them(demo_run):
    tmp_path, code, out = demo_run
    assert code == 0
    base = tmp_path / "classification" / "digits"
    aubc = {}
    for strategy in STRATEGIES:
        rows = read_metrics_csv(base / strategy / "seed0" / "metrics.csv")
        assert [row["n_labeled"] for row in rows] == [40, 52]
        aubc[strategy] = sum(row["accuracy"] for row in rows) / len(rows)
        assert f"[{strategy}] " in out  # each run's output is prefixed with its strategy
    with open(base / "demo_comparison.csv", newline="") as handle:
        table = {row["strategy"]: row for row in csv.DictReader(handle)}
    assert set(table) == set(aubc)
    for strategy, value in aubc.items():  # the comparison reads the runs it just made
        assert float(table[strategy]["aubc_mean"]) == pytest.approx(value, abs=1e-5)
    assert (base / "demo_comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "demo_comparison.png" in out


def test_demo_resumes_finished_runs_without_training_again(demo_run, tmp_path, capsys):
    # A copy of the shared demo's random run: the demo of that one strategy finds it finished.
    shared, code, _ = demo_run
    assert code == 0
    relative = Path("classification") / "digits" / "random" / "seed0"
    shutil.copytree(shared / relative, tmp_path / relative)
    argv = ["--strategies", "random", "--output-dir", str(tmp_path), "--", *TINY]
    metrics = tmp_path / relative / "metrics.csv"
    before = metrics.read_bytes(), (tmp_path / relative / "pool.npz").read_bytes()
    assert demo.main(argv) == 0
    out = capsys.readouterr().out
    assert "has finished all 2 cycle(s) already" in out
    assert "cycle 0:" not in out  # no cycle was trained again
    assert (metrics.read_bytes(), (tmp_path / relative / "pool.npz").read_bytes()) == before
    assert (tmp_path / "classification" / "digits" / "demo_comparison.csv").exists()


def test_demo_reports_a_failed_run(tmp_path, capsys):
    # the flags parse, but the weights file is missing: the run stops before training
    code = demo.main(["--strategies", "variation_ratio", "--output-dir", str(tmp_path), "--", *TINY,
                      "--weights", str(tmp_path / "missing.pt")])
    captured = capsys.readouterr()
    assert code == 1
    assert "no such file" in captured.out and "variation_ratio failed" in captured.err
    assert not (tmp_path / "classification" / "digits" / "demo_comparison.csv").exists()


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "random", "random"], "twice"),
    (["--jobs", "0"], "--jobs"),
    (["--strategies", "nope"], "known strategies"),
])
def test_demo_bad_arguments_exit_before_running(tmp_path, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv + ["--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_demo_preset_is_the_cpu_protocol_up_to_600_labels():
    demo_preset, cpu = PRESETS["fmnist-demo"], PRESETS["fmnist-cpu"]
    def protocol(preset):
        return {key: value for key, value in preset.items() if key not in ("strategy", "cycles")}

    assert protocol(demo_preset) == protocol(cpu)
    assert demo_preset["strategy"] == "loss_prediction"
    assert cpu["initial_size"] + (demo_preset["cycles"] - 1) * cpu["images_per_cycle"] == 600
    assert cpu["detach_epoch"] == 0  # the finding of BENCHMARKS.md, "Learning loss"
