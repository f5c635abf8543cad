"""bench/parallel_grid.py: the order runs start in, and what stopping early leaves."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import parallel_grid  # noqa: E402


def test_runs_start_seed_by_seed_then_grid_by_grid():
    jobs = parallel_grid.plan_jobs([("segmentation", "out/seg", "random mc_entropy", "0 1", "-a"),
                                    ("classification", "out/c", "entropy", "1 0", "--x 1")])
    assert [job.name for job in jobs] == [
        "segmentation-random-seed0", "segmentation-mc_entropy-seed0", "classification-entropy-seed0",
        "segmentation-random-seed1", "segmentation-mc_entropy-seed1", "classification-entropy-seed1"]
    assert jobs[2].extra == ["--x", "1"]
    mixed = parallel_grid.plan_jobs([("c", "o", "entropy", "0", "--diversity coreset "
                                                              "--random-fraction 0.2")])
    assert mixed[0].name == "c-entropy+coreset+random0.2-seed0"   # logs of two mixes apart
    command = jobs[0].command(threads=1)
    assert command[1:4] == ["-m", "segmentation.train", "-a"]
    assert command[-7:] == ["--seed", "0", "--output-dir", "out/seg", "--threads", "1",
                            "--no-progress"]


def test_stopping_early_leaves_finished_failed_and_stopped_runs(tmp_path, monkeypatch):
    scripts = {"done": "import time; time.sleep(1)", "failed": "raise SystemExit(3)",
               "slow": "import time; time.sleep(60)"}
    monkeypatch.setattr(parallel_grid.Job, "command", lambda job, threads: [
        sys.executable, "-c", scripts[job.strategy]])
    jobs = parallel_grid.plan_jobs([("t", str(tmp_path), "done failed slow done", "0", "")])
    parallel_grid.run_jobs(jobs, workers=2, threads=1, log_dir=tmp_path / "logs",
                           stop_starting_after=0.5, kill_after=3.0, poll_seconds=0.1)
    assert [job.status for job in jobs] == ["done", "failed", "stopped", "stopped"]
    # the slow run was ended at 3 s; the last one never started (no worker was free before 0.5 s)
    assert jobs[1].returncode == 3 and jobs[3].returncode is None


def test_compare_against_counts_wins_per_baseline_and_leaves_unfinished_runs_out(tmp_path,
                                                                                 capsys):
    import compare_against
    from test_compare import write_run

    for seed, (mine, base) in enumerate([(0.6, 0.5), (0.4, 0.5), (0.7, 0.5)]):
        write_run(tmp_path, "random", seed, [0.3, base])
        write_run(tmp_path, "entropy", seed, [0.3, mine])
    write_run(tmp_path, "margin", 0, [0.3])                 # unfinished: one of two cycles
    assert compare_against.main([str(tmp_path), "--against", "random"]) == 0
    out = capsys.readouterr().out
    assert "left out (unfinished: 1 of 2 cycles)" in out
    assert not any(line.startswith("| margin ") for line in out.splitlines())
    entropy_row = next(line for line in out.splitlines() if line.startswith("| entropy "))
    assert entropy_row.endswith("| 2/0/1 |")                # two seeds above random, one below
