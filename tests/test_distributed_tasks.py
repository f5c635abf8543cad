"""Every task's train.py in two processes of one gloo group on the CPU, each in the environment
torchrun gives it: two cycles (DistributedDataParallel, sharded evaluation and scoring), then a
third cycle resumed with one plain process. (torchrun itself launches the classification runs
of tests/test_distributed_run.py.)"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from active_learning.files.export import read_entropies_csv, read_metrics_csv
from active_learning.loop.pool import PoolState
from distributed_workers import run_main, spawn


def _segmentation(root: Path) -> tuple[str, list[str]]:
    from seg_fixtures import TINY_ARGS, write_tiny_cityscapes

    return "segmentation.train", ["-d", str(write_tiny_cityscapes(root / "cs")), *TINY_ARGS,
                                  "--threads", "1"]


def _detection(root: Path) -> tuple[str, list[str]]:
    from det_fixtures import TINY_ARGS, write_tiny_voc

    return "object_detection.train", ["--dataset_root", str(write_tiny_voc(root / "voc")),
                                      *TINY_ARGS]


def _pose(root: Path) -> tuple[str, list[str]]:
    from pose_fixtures import TINY_ARGS, write_tiny_coco

    return "human_pose_estimation.train", ["--dataset-root", str(write_tiny_coco(root / "coco")),
                                           *TINY_ARGS]


# (data, metric, strategy, extra flags): the loss module (DDP around it, its ranking over the
# sharded test set), the sharded core-set, and pose without a loss module: HRNet's lower
# branches then get no gradient, over several steps (--batch-size 2)
TASKS = {"segmentation": (_segmentation, "mIoU", "loss_prediction", []),
         "detection": (_detection, "mAP", "coreset", []),
         "pose": (_pose, "AP", "heatmap_uncertainty", ["--batch-size", "2", "--epochs", "2"])}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_two_processes_run_two_cycles_and_one_resumes_the_third(tmp_path, task):
    make, metric, strategy, extra = TASKS[task]
    module, args = make(tmp_path)
    args = [*args, "--strategy", strategy, *extra, "--output-dir", str(tmp_path / "runs")]
    spawn(run_main, 2, tmp_path, module, [*args, "--cycles", "2"])
    assert (tmp_path / "ran-0").exists() and (tmp_path / "ran-1").exists()
    run_dir = next((tmp_path / "runs").rglob("pool.npz")).parent
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["cycle"] for row in rows] == [0, 1]
    # rank 0 combined every process's slice of the test set, and of the loss ranking
    assert all(0 <= row[metric] <= 1 for row in rows)
    assert all("kendall_tau" in row for row in rows) == (strategy == "loss_prediction")
    importlib.import_module(module).main([*args, "--cycles", "3"])     # this process alone
    state = PoolState.load(run_dir / "pool.npz")
    assert state.finished_cycles == 3
    assert [row["cycle"] for row in read_metrics_csv(run_dir / "metrics.csv")] == [0, 1, 2]
    for cycle in range(3):   # each cycle's choice is marked in the pool, as its CSV lists it
        csv = run_dir / "priorities" / f"cycle_{cycle:02d}.csv"
        names = [name for name, _ in read_entropies_csv(csv)]
        chosen = np.flatnonzero(state.labeled_at == cycle + 1)
        assert len(names) == len(set(names)) == len(chosen) == 2
        assert sorted(names) == sorted(state.item_names[chosen])
    assert not (run_dir / ".pending").exists()
