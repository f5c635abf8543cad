"""The loop under torch.distributed (2 gloo processes on the CPU): sharded scoring returns what
one process returns, every process ends with the same labeled set, rank 0 alone writes the run,
and a run started with 2 processes resumes with 1."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from distributed_workers import (
    previous_model_missing,
    resume_fixed_steps,
    run_everywhere,
    run_without_forward,
    score_everywhere,
    score_toy,
    score_with_stores,
    select_everywhere,
    select_toy,
    spawn,
)

ROOT = Path(__file__).resolve().parent.parent
CASES = [("images", "entropy"), ("grouped", "margin"), ("regions", "entropy"),
         ("images", "coreset")]


def test_sharded_scoring_returns_what_one_process_returns(tmp_path):
    spawn(score_everywhere, 2, tmp_path, CASES)
    for case, (kind, strategy) in enumerate(CASES):
        expected = score_toy(kind, strategy, sharded=False)
        sharded = torch.load(tmp_path / f"scores-{case}.pt", weights_only=False)
        assert sorted(sharded) == sorted(expected), kind
        for key, value in expected.items():
            # the same samples in the same order; the values up to float rounding only (the
            # shards' batches are cut elsewhere)
            np.testing.assert_allclose(np.asarray(sharded[key]), np.asarray(value), rtol=1e-5,
                                       atol=1e-7, err_msg=f"{kind} {strategy} {key}")
        if "unit_ids" in expected:
            np.testing.assert_array_equal(sharded["unit_ids"], expected["unit_ids"])


@pytest.mark.parametrize("strategy", ["entropy", "coreset"])
def test_every_process_marks_the_same_units_and_rank_0_alone_writes(tmp_path, strategy):
    spawn(run_everywhere, 2, tmp_path, strategy, 2)
    marks = [json.loads((tmp_path / f"marks-{rank}.json").read_text()) for rank in (0, 1)]
    rows = [json.loads((tmp_path / f"rows-{rank}.json").read_text()) for rank in (0, 1)]
    # rank 0 draws the initial set and the others take its state; every selection is marked
    # on every process
    assert marks[0][1:] == marks[1] and rows[0] == rows[1]
    assert [cycle for cycle, _ in marks[0]] == [0, 1, 2]          # initial set, two selections
    assert [len(units) for _, units in marks[0]] == [20, 8, 8]
    run = tmp_path / "run"
    saved = np.load(run / "pool.npz")["labeled_at"]
    for cycle, units in marks[0]:
        assert set(np.flatnonzero(saved == cycle)) == set(units)
    written = sorted(str(path.relative_to(run)) for path in run.rglob("*") if path.is_file())
    assert written == ["args.json", "embeddings/cycle_00.npz", "embeddings/cycle_01.npz",
                       "learning_curve.png", "metrics.csv", "pool.npz",
                       "priorities/cycle_00.csv", "priorities/cycle_01.csv",
                       "scores/cycle_00.csv", "scores/cycle_01.csv"]
    # the report's map points: both processes embedded their shard, rank 0 wrote them all, in
    # order: each unit's row is the trained model's embedding of it
    points = np.load(run / "embeddings" / "cycle_01.npz")
    assert (points["status"] == "chosen").sum() == 8 and (points["status"] == "labeled").sum() == 28
    from distributed_workers import _toy_adapter
    from toy_adapters import outputs_and_embeddings

    adapter = _toy_adapter("images")
    model = adapter.build_model()
    model.load_state_dict(torch.load(tmp_path / "models-0.pt")[1])
    _, expected = outputs_and_embeddings(adapter, model, points["units"])
    np.testing.assert_allclose(points["embeddings"], expected.numpy(), rtol=1e-4, atol=1e-5)
    # every file is written by renaming a temporary file into place: rank 1 renamed none
    replaced = [json.loads((tmp_path / f"replaced-{rank}.json").read_text()) for rank in (0, 1)]
    assert replaced[1] == [] and "pool.npz" in {Path(name).name for name in replaced[0]}
    # every process evaluates and scores the same model: parameters (DDP) and BatchNorm's
    # running statistics (each process updated them with its own batches; rank 0's are sent)
    models = [torch.load(tmp_path / f"models-{rank}.pt") for rank in (0, 1)]
    assert len(models[0]) == 2
    for mine, theirs in zip(*models, strict=True):
        assert any("running_mean" in key for key in mine)
        for key in mine:
            assert torch.equal(mine[key], theirs[key]), key


def _train(output: Path, cycles: int, processes: int) -> Path:
    """classification/train.py under ``torchrun`` (processes > 1), or in this process."""
    args = ["--dataset", "digits", "--width", "2", "--epochs", "1", "--batch-size", "16",
            "--initial-size", "40", "--images-per-cycle", "10", "--subset", "60", "--strategy",
            "random", "--no-progress", "--threads", "1", "--cycles", str(cycles),
            "--output-dir", str(output)]
    if processes == 1:
        from classification.train import main

        return main(args)
    # The script itself, as a user launches it: it ends its processes without the teardown that
    # gloo's DDP sometimes aborts (cli.exit_without_teardown).
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
              "--standalone", "-m", "classification.train"]
    result = subprocess.run([*launch, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return output / "classification" / "digits" / "random" / "seed0"


def test_a_torchrun_run_equals_one_process_and_resumes_with_one(tmp_path):
    two = _train(tmp_path / "two", cycles=2, processes=2)
    one = _train(tmp_path / "one", cycles=2, processes=1)
    # random selection does not depend on the model: the protocol makes the runs comparable
    np.testing.assert_array_equal(np.load(two / "pool.npz")["labeled_at"],
                                  np.load(one / "pool.npz")["labeled_at"])
    resumed = _train(tmp_path / "two", cycles=3, processes=1)
    lines = (resumed / "metrics.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("cycle,")
    assert sorted(path.name for path in (resumed / "priorities").iterdir()) == \
        ["cycle_00.csv", "cycle_01.csv", "cycle_02.csv"]


def test_an_adapter_that_cannot_take_the_ddp_forward_is_refused_on_every_process(tmp_path):
    spawn(run_without_forward, 2, tmp_path)
    refusals = [(tmp_path / f"refusal-{rank}.txt").read_text() for rank in (0, 1)]
    assert refusals[0] == refusals[1] and "takes no forward= argument" in refusals[0]
    assert not (tmp_path / "run" / "pool.npz").exists()


def test_sharded_coreset_picks_what_one_process_picks(tmp_path):
    # each process holds only its shard of the labeled and candidate embeddings
    # (k_center_greedy_sharded): the same picks, in the same order, as one process
    spawn(select_everywhere, 3, tmp_path, "coreset")
    expected, _ = select_toy("coreset")
    for rank in range(3):
        choice = np.load(tmp_path / f"choice-{rank}.npz")
        np.testing.assert_array_equal(choice["indices"], expected)


def test_a_crash_of_one_process_stops_the_others_with_its_error(tmp_path):
    args = ["--dataset", "digits", "--width", "2", "--epochs", "1", "--batch-size", "16",
            "--initial-size", "40", "--images-per-cycle", "10", "--subset", "60", "--strategy",
            "entropy", "--no-progress", "--threads", "1", "--output-dir", str(tmp_path)]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                             "2", "--standalone", str(ROOT / "tests" / "torchrun_crash.py"),
                             *args], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode != 0
    # rank 0, waiting for rank 1 in the gather of the scores, is stopped by torchrun, whose
    # summary names rank 1's error as the root cause
    root_cause = result.stderr.split("Root Cause")[-1]
    assert "rank      : 1" in root_cause and "simulated crash of rank 1" in root_cause
    assert not list(tmp_path.rglob("pool.npz"))      # the cycle did not commit


def test_sharded_coreset_with_fewer_candidates_than_processes(tmp_path):
    # 45 samples, 43 labeled: two candidates for three processes, one of them with none
    spawn(select_everywhere, 3, tmp_path, "coreset", 43)
    expected, _ = select_toy("coreset", 43)
    for rank in range(3):
        np.testing.assert_array_equal(np.load(tmp_path / f"choice-{rank}.npz")["indices"],
                                      expected)


def test_each_process_resumes_its_shard_of_the_scores_from_its_own_store(tmp_path):
    spawn(score_with_stores, 2, tmp_path)
    first, second = torch.load(tmp_path / "stored.pt", weights_only=False)
    expected = score_toy("grouped", "margin", sharded=False)
    for result in (first, second):
        np.testing.assert_array_equal(result["unit_ids"], expected["unit_ids"])
        np.testing.assert_allclose(result["scores"], expected["scores"], rtol=1e-6)
    reads = {(rank, n): int((tmp_path / f"reads-{rank}-{n}.json").read_text())
             for rank in (0, 1) for n in (1, 2)}
    assert reads[(0, 1)] > 0 and reads[(1, 1)] > 0
    assert reads[(0, 2)] == reads[(1, 2)] == 0            # the second pass read only the stores


def test_a_missing_previous_model_on_resume_stops_every_process_with_rank_0s_error(tmp_path):
    # rank 0 alone reads the run folder: it sends the error instead of the model, and the
    # others raise it too instead of waiting for the model (a short timeout fails a hang)
    spawn(previous_model_missing, 2, tmp_path, timeout_seconds=20)
    errors = [(tmp_path / f"missing-{rank}.txt").read_text() for rank in (0, 1)]
    assert errors[0] == errors[1] and "cycle_00.pt is missing" in errors[0]


def test_a_run_of_fixed_steps_resumed_in_its_cycle_draws_each_process_s_own_batches(tmp_path):
    # steps_per_cycle: each process's loader generator draws its batches from the whole
    # labeled set; resumed at pass 2, every process draws what it drew without the stop (its
    # own saved generator state, not rank 0's)
    spawn(resume_fixed_steps, 2, tmp_path)
    straight = [torch.load(tmp_path / f"batches-a-{rank}.pt") for rank in (0, 1)]
    resumed = [torch.load(tmp_path / f"batches-b-{rank}.pt") for rank in (0, 1)]
    for rank in (0, 1):
        assert sorted(straight[rank]) == [0, 1, 2, 3] and sorted(resumed[rank]) == [0, 1, 2, 3]
        for epoch in range(4):   # 2 steps of 4 samples a pass; passes 0-1 before the stop
            assert straight[rank][epoch].shape == (8, 1, 8, 8)
            assert torch.equal(resumed[rank][epoch], straight[rank][epoch]), (rank, epoch)
    for epoch in (2, 3):         # the processes draw different batches
        assert not torch.equal(resumed[0][epoch], resumed[1][epoch])
    # without the processes' loader states (a checkpoint of an earlier version, or of another
    # process count), each process reseeds its own: other batches, but not the same everywhere
    reseeded = [torch.load(tmp_path / f"batches-c-{rank}.pt") for rank in (0, 1)]
    for epoch in (2, 3):
        assert reseeded[0][epoch].shape == reseeded[1][epoch].shape == (8, 1, 8, 8)
        assert not torch.equal(reseeded[0][epoch], reseeded[1][epoch])
