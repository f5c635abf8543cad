"""Every task's command line end to end on a CUDA device, on the tests' tiny datasets.

    python bench/gpu_smoke.py                 # --device cuda; prints one line per run and a table
    python bench/gpu_smoke.py --device cpu    # the same runs on the CPU (what CI covers)
    python bench/gpu_smoke.py --extra "--amp --channels-last"   # every run in bf16, NHWC

The test suite runs on the CPU only. This script runs the same tiny datasets the tests write
(Cityscapes, VOC and COCO keypoints formats, and scikit-learn's digits) through each task's
``main`` with the device given, for the strategies that exercise different parts of the loop on
a GPU: plain scoring, MC dropout (streamed statistics), the loss module, embeddings (core-set),
superpixels (region maps pooled per batch) and the in-cycle checkpoint resume (its CUDA RNG
state). A run passes when it exits normally and its ``metrics.csv`` has a row per cycle with a
finite primary metric. Not a benchmark: the seconds only show where time goes.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from active_learning.files.export import read_metrics_csv  # noqa: E402

RUNS = {
    "classification": ["random", "entropy", "bald", "loss_prediction", "coreset", "badge"],
    "segmentation": ["entropy", "mc_entropy", "loss_prediction", "mc_entropy_superpixels"],
    "object_detection": ["entropy", "mc_variance", "loss_prediction", "coreset"],
    "human_pose_estimation": ["heatmap_uncertainty", "mc_variance", "loss_prediction"],
}


def task_argv(task: str, data: Path) -> list[str]:
    """The task's tiny arguments (the tests' own), over a dataset written under ``data``."""
    if task == "classification":
        return ["--dataset", "digits", "--width", "4", "--epochs", "2", "--batch-size", "16",
                "--cycles", "2", "--initial-size", "40", "--images-per-cycle", "10",
                "--subset", "60", "--no-progress"]
    if task == "segmentation":
        from seg_fixtures import TINY_ARGS, write_tiny_cityscapes

        return ["-d", str(write_tiny_cityscapes(data / "cs")), *TINY_ARGS]
    if task == "object_detection":
        from det_fixtures import TINY_ARGS, write_tiny_voc

        return ["--dataset_root", str(write_tiny_voc(data / "voc")), *TINY_ARGS]
    from pose_fixtures import TINY_ARGS, write_tiny_coco

    return ["--dataset-root", str(write_tiny_coco(data / "coco")), *TINY_ARGS]


def run_one(task: str, strategy: str, argv: list[str], output: Path, device: str,
            extra: list[str]) -> tuple[bool, str, float]:
    import importlib

    main = importlib.import_module(f"{task}.train").main
    start = time.perf_counter()
    try:
        run_dir = main([*argv, "--strategy", strategy, "--device", device,
                        "--output-dir", str(output), *extra])
        rows = read_metrics_csv(run_dir / "metrics.csv")
        metric = rows[-1][next(iter(k for k in ("accuracy", "mIoU", "mAP", "AP") if k in rows[-1]))]
        ok = len(rows) >= 1 and math.isfinite(float(metric))
        return ok, f"{len(rows)} cycle(s), last {metric:.4f}", time.perf_counter() - start
    except BaseException as error:  # noqa: BLE001 - a smoke test reports every failure
        return False, "".join(traceback.format_exception_only(type(error), error)).strip(), \
            time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tasks", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--extra", default="",
                        help="flags added to every run, e.g. '--amp fp16 --channels-last'")
    args = parser.parse_args()
    extra = args.extra.split()
    import torch

    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    results = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for task in args.tasks:
            argv = task_argv(task, root / "data")
            for strategy in RUNS[task]:
                ok, note, seconds = run_one(task, strategy, argv, root / "runs", args.device,
                                            extra)
                results.append((task, strategy, ok, note, seconds))
                print(f"{'ok  ' if ok else 'FAIL'} {task} {strategy}: {note} ({seconds:.1f} s)",
                      flush=True)
        # the in-cycle checkpoint (with the CUDA RNG state) written and resumed on this device
        argv = task_argv("classification", root / "data")
        resume = ["--save-checkpoints", "--checkpoint-every", "1", "--cycles", "1"]
        ok, note, seconds = run_one("classification", "loss_prediction", argv, root / "ckpt",
                                    args.device, [*extra, *resume])
        results.append(("classification", "checkpoints", ok, note, seconds))
        print(f"{'ok  ' if ok else 'FAIL'} classification checkpoints: {note} ({seconds:.1f} s)")
    failed = [row for row in results if not row[2]]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
