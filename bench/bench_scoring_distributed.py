"""Benchmark: sharded scoring throughput with 1 and 2 processes (``scoring.score_sharded``).

    python bench/bench_scoring_distributed.py --images 2048 --width 16 --strategy entropy

Each world size runs in fresh processes of one gloo group (``torch.multiprocessing.spawn``, one
torch thread each, as ``torchrun`` sets ``OMP_NUM_THREADS=1``). Every process builds the same
CIFAR ResNet-18 (``--width`` channels in the first stage; 64 is the reference) and the same pool
of ``--images`` random 32x32 images, scores its shard of the pool with ``--strategy`` (the
loop's own ``score_sharded``: the forward passes, the scores, the gather of every shard's scores
on rank 0), after one warm-up batch. Printed per world size: the wall time of the pass (the
slowest process, between two barriers) and the pool's images per second; rank 0 checks that the
gathered scores equal the 1-process scores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _task(images: int, width: int):
    import numpy as np
    import torch

    from classification.datasets import ArrayImageDataset, ClassificationData
    from classification.task import ClassificationTask

    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.integers(0, 256, size=(images, 3, 32, 32), dtype=np.uint8))
    targets = rng.integers(0, 10, size=images).astype(np.int64)
    pool = ArrayImageDataset(pixels, targets, lambda image: image.float() / 255)
    data = ClassificationData(train=pool, train_eval=pool, test=pool, num_classes=10,
                              in_channels=3, image_size=32,
                              names=[f"{index}.png" for index in range(images)],
                              targets=targets, class_names=[str(k) for k in range(10)])
    task = ClassificationTask(data, width=width, dropout=0.3)
    torch.manual_seed(0)
    return task, task.build_model().eval()


def _rank_main(rank: int, world: int, folder: str, args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    from active_learning.loop.config import LoopConfig
    from active_learning.loop.scoring import score_sharded
    from active_learning.strategies import get_strategy

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world)
    task, model = _task(args.images, args.width)
    config = LoopConfig(strategy=args.strategy, eval_batch_size=args.batch_size,
                        mc_samples=args.mc_samples, progress=False)
    strategy = get_strategy(args.strategy)
    units = task.selection_units()
    device = torch.device("cpu")
    score_sharded(task, model, None, strategy, np.arange(args.batch_size * world), config,
                  device, units)   # warm-up: one batch per process
    dist.barrier()
    start = time.perf_counter()
    result = score_sharded(task, model, None, strategy, np.arange(args.images), config, device,
                           units)
    dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        np.save(Path(folder) / f"scores-{world}.npy", result["scores"])
        (Path(folder) / f"time-{world}.json").write_text(json.dumps({"seconds": seconds}))
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--mc-samples", type=int, default=5)
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    import numpy as np
    import torch.multiprocessing as mp

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"ResNet-18 width {args.width}, {args.images} images 32x32, {args.strategy}, "
          f"batch {args.batch_size}, 1 thread per process")
    with tempfile.TemporaryDirectory() as folder:
        for world in args.worlds:
            mp.spawn(_rank_main, args=(world, folder, args), nprocs=world, join=True)
            seconds = json.loads((Path(folder) / f"time-{world}.json").read_text())["seconds"]
            print(f"processes {world}: {seconds:7.2f} s, {args.images / seconds:8.1f} images/s")
        scores = [np.load(Path(folder) / f"scores-{world}.npy") for world in args.worlds]
        deterministic = not args.strategy.startswith(("mc_", "bald"))
        for world, values in zip(args.worlds[1:], scores[1:], strict=True):
            if deterministic:
                np.testing.assert_allclose(values, scores[0], rtol=1e-5, atol=1e-7)
                print(f"processes {world}: scores equal the first world size's (rtol 1e-5)")


if __name__ == "__main__":
    main()
