"""Functions run in each process of a small ``torch.distributed`` group (gloo, CPU) by the tests.

``spawn(worker, world, folder, *args)`` starts ``world`` processes that join one group through a
rendezvous file in ``folder`` and call ``worker(rank, folder, *args)``; a worker writes what it
found to ``folder`` for the test to compare.

The processes are forked from a server that imported torch and the core once per test process
(``forkserver``): a freshly spawned interpreter spends seconds importing them, for each process
of each test.
"""
from __future__ import annotations

import multiprocessing
import os
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# What the fork server imports before it forks a process: the slow imports of every worker.
PRELOAD = ["numpy", "torch", "torch.distributed", "torch.nn.parallel", "active_learning.loop.runner",
           "active_learning.loop.selection", "active_learning.strategies"]


def _join(rank: int, world: int, folder: str, worker, args, environment: dict,
          timeout_seconds: float) -> None:
    # the server's environment is that of the test that started it: take this test's
    os.environ.clear()
    os.environ.update(environment)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world, timeout=timedelta(seconds=timeout_seconds))
    from active_learning.distributed import finish

    worker(rank, folder, *args)
    finish()   # wait for every process before leaving: one that leaves early is aborted


def spawn(worker, world: int, folder: Path, *args, timeout_seconds: float = 1800) -> None:
    """Run ``worker(rank, folder, *args)`` in ``world`` processes of one gloo group, whose
    collectives fail after ``timeout_seconds`` of waiting (a test of a hang sets it short)."""
    multiprocessing.set_forkserver_preload(PRELOAD)   # read when the server starts, once
    mp.start_processes(_join, args=(world, str(folder), worker, args, dict(os.environ),
                                    timeout_seconds),
                       nprocs=world, join=True, start_method="forkserver")


def sharded_k_center(rank: int, folder: str, cases: list) -> None:
    """For each case ``(features, labeled, budget, cuts)``, rank r holds rows cuts[r]:cuts[r+1]
    of ``features``; writes its picks of case k to picks-<k>-<r>.npy."""
    from active_learning.strategies.distributed_coreset import k_center_greedy_sharded

    for case, (features, labeled, budget, cuts) in enumerate(cases):
        start, stop = cuts[rank], cuts[rank + 1]
        mine = labeled[(labeled >= start) & (labeled < stop)] - start
        picks = k_center_greedy_sharded(features[start:stop], mine, budget, offset=start,
                                        total=len(features), seed=3, chunk_size=16)
        np.save(Path(folder) / f"picks-{case}-{rank}.npy", picks)


def _toy_adapter(kind: str):
    """The toy classifier with one unit per image, or per 3 images ("grouped"), or the toy
    dense task with 4 quadrant superpixels per image ("regions")."""
    from active_learning.loop.units import GroupedUnits, RegionUnits
    from toy_adapters import ToyClassificationAdapter, ToyDenseAdapter

    if kind == "regions":
        adapter = ToyDenseAdapter(n_train=30)
        quadrants = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 4, axis=0), 4, axis=1)
        regions = RegionUnits.from_maps([quadrants] * 30)
        adapter.selection_units = lambda: regions
        return adapter
    adapter = ToyClassificationAdapter(n_train=45)
    if kind == "grouped":
        grouped = GroupedUnits(np.arange(45) // 3, n_units=15)
        adapter.selection_units = lambda: grouped
    return adapter


def score_toy(kind: str, strategy: str, sharded: bool):
    """The toy task ``kind`` scored with a seeded model over every sample: by ``score_sharded``
    (each process its shard) or by ``score_candidates`` in this process alone."""
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.scoring import score_candidates, score_sharded
    from active_learning.strategies import get_strategy

    adapter = _toy_adapter(kind)
    torch.manual_seed(0)
    model = adapter.build_model()
    units = adapter.selection_units()
    config = LoopConfig(strategy=strategy, eval_batch_size=4, progress=False)
    arguments = (adapter, model, None, get_strategy(strategy), np.arange(units.n_samples), config,
                 torch.device("cpu"))
    if sharded:
        return score_sharded(*arguments, units)
    return score_candidates(*arguments, units=units)


def score_everywhere(rank: int, folder: str, cases: list) -> None:
    """For each case ``(kind, strategy)``, ``score_toy(..., sharded=True)``; rank 0 writes the
    result to scores-<k>.pt, the other ranks get None."""
    for case, (kind, strategy) in enumerate(cases):
        computed = score_toy(kind, strategy, sharded=True)
        if rank == 0:
            torch.save(computed, Path(folder) / f"scores-{case}.pt")
        else:
            assert computed is None


def run_everywhere(rank: int, folder: str, strategy: str, cycles: int) -> None:
    """Two short cycles of the toy classifier; each process records the units it marks
    labeled (marks-<rank>.json) and the metrics rows it returns (rows-<rank>.json)."""
    import json

    from active_learning.loop.config import LoopConfig
    from active_learning.loop.pool import PoolState
    from active_learning.loop.runner import run_active_learning

    marks: list = []
    original = PoolState.mark_labeled

    def recording(self, indices, cycle):
        marks.append([int(cycle), [int(index) for index in indices]])
        return original(self, indices, cycle)

    PoolState.mark_labeled = recording
    replaced: list = []
    rename = os.replace

    def recording_replace(source, target, *args, **kwargs):
        replaced.append(str(target))
        return rename(source, target, *args, **kwargs)

    os.replace = recording_replace
    import active_learning.loop.runner as runner

    train = runner._train
    trained: list = []

    def recording_train(run, cycle, labeled):   # the model every process goes on with
        model, loss_module, stats, seconds = train(run, cycle, labeled)
        trained.append({key: value.clone() for key, value in model.state_dict().items()})
        return model, loss_module, stats, seconds

    runner._train = recording_train
    config = LoopConfig(strategy=strategy, cycles=cycles, initial_size=20, budget=8,
                        subset_size=0, epochs=2, batch_size=8, eval_batch_size=16,
                        mc_samples=3, progress=False)
    rows = run_active_learning(_toy_adapter("images"), config, Path(folder) / "run",
                               report_map=500)
    os.replace = rename
    runner._train = train
    torch.save(trained, Path(folder) / f"models-{rank}.pt")
    (Path(folder) / f"marks-{rank}.json").write_text(json.dumps(marks))
    (Path(folder) / f"replaced-{rank}.json").write_text(json.dumps(replaced))
    (Path(folder) / f"rows-{rank}.json").write_text(json.dumps(
        [{"cycle": row["cycle"], "n_labeled": row["n_labeled"], "accuracy": row["accuracy"]}
         for row in rows]))


def run_without_forward(rank: int, folder: str) -> None:
    """A run of a toy adapter whose train_one_epoch predates DDP (no ``forward=``); each process
    writes the ConfigError it got to refusal-<rank>.txt."""
    from active_learning.errors import ConfigError
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.runner import run_active_learning

    adapter = _toy_adapter("images")
    train = adapter.train_one_epoch

    def old_style(model, loss_module, loader, optimizer, *, epoch, config, device):
        return train(model, loss_module, loader, optimizer, epoch=epoch, config=config,
                     device=device)

    adapter.train_one_epoch = old_style
    config = LoopConfig(strategy="random", cycles=1, initial_size=20, budget=8, subset_size=0,
                        epochs=1, batch_size=8, progress=False)
    try:
        run_active_learning(adapter, config, Path(folder) / "run")
    except ConfigError as error:
        (Path(folder) / f"refusal-{rank}.txt").write_text(str(error))


def select_toy(strategy: str, labeled: int = 20):
    """select_next on the toy classifier with a seeded model and its first ``labeled`` samples
    labeled: (unit indices, scores)."""
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.pool import PoolState
    from active_learning.loop.selection import select_next

    adapter = _toy_adapter("images")
    torch.manual_seed(0)
    model = adapter.build_model()
    state = PoolState.empty(adapter.selection_units().n_units)
    state.mark_labeled(np.arange(labeled), cycle=0)
    config = LoopConfig(strategy=strategy, budget=min(9, len(state.labeled_at) - labeled),
                        subset_size=0, eval_batch_size=4, progress=False)
    return select_next(adapter, model, None, state, 0, config, torch.device("cpu"))


def select_everywhere(rank: int, folder: str, strategy: str, labeled: int = 20) -> None:
    """``select_toy`` in every process; each writes its choice to choice-<rank>.npz."""
    indices, scores = select_toy(strategy, labeled)
    np.savez(Path(folder) / f"choice-{rank}.npz", indices=indices, scores=scores)


def score_with_stores(rank: int, folder: str) -> None:
    """Sharded entropy scores of the toy classifier through each process's ScoreStore, twice:
    the second pass reads only the store. Rank 0 writes both results and what each pass read."""
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.score_store import ScoreStore
    from active_learning.loop.scoring import score_sharded
    from active_learning.strategies import get_strategy

    adapter = _toy_adapter("grouped")
    torch.manual_seed(0)
    model = adapter.build_model()
    units = adapter.selection_units()
    config = LoopConfig(strategy="margin", eval_batch_size=4, progress=False)
    pool, reads = adapter.pool_set, []

    class Counting(torch.utils.data.Dataset):
        def __len__(self):
            return len(pool)

        def __getitem__(self, index):
            reads.append(int(index))
            return pool[index]

    adapter.pool_set = Counting()
    results = []
    for _ in range(2):
        reads.clear()
        results.append(score_sharded(
            adapter, model, None, get_strategy("margin"), np.arange(units.n_samples), config,
            torch.device("cpu"), units,
            store=lambda slots: ScoreStore(Path(folder) / f"store-{rank}", slots, "key",
                                           commit_seconds=0)))
        (Path(folder) / f"reads-{rank}-{len(results)}.json").write_text(str(len(reads)))
    if rank == 0:
        torch.save(results, Path(folder) / "stored.pt")


def run_main(rank: int, folder: str, module: str, argv: list[str]) -> None:
    """A task's ``main(argv)`` in this process of the group, in the environment torchrun gives
    each process (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``): the command line joins the group
    the test made instead of making one (``init_from_environment``), and goes on as under
    torchrun."""
    import importlib

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(torch.distributed.get_world_size()))
    importlib.import_module(module).main(argv)
    (Path(folder) / f"ran-{rank}").touch()


def previous_model_missing(rank: int, folder: str) -> None:
    """A resumed run whose adapter needs the previous cycle's model, with that cycle's
    checkpoint missing: each process writes the error it got to missing-<rank>.txt."""
    from types import SimpleNamespace

    from active_learning.errors import RunMismatchError
    from active_learning.loop.runner import _previous_model

    adapter = _toy_adapter("images")
    adapter.uses_previous_model = True
    run = SimpleNamespace(adapter=adapter, previous_model=None, run_dir=Path(folder) / "run",
                          device=torch.device("cpu"))
    try:
        _previous_model(run, 1)
    except RunMismatchError as error:
        (Path(folder) / f"missing-{rank}.txt").write_text(str(error))


class _Stop(Exception):
    """The simulated interruption of ``resume_fixed_steps``."""


def _record_batches(adapter, drawn: dict, stop: int | None) -> None:
    """Make ``adapter.train_one_epoch`` keep each pass's batch inputs in ``drawn[epoch]``, and
    raise _Stop at the start of pass ``stop``."""
    train = type(adapter).train_one_epoch

    def recording(model, companion, loader, optimizer, *, epoch, **kwargs):
        if epoch == stop:
            raise _Stop
        batches = drawn.setdefault(epoch, [])

        def kept():
            for batch in loader:
                batches.append(batch[0].clone())
                yield batch

        return train(adapter, model, companion, kept(), optimizer, epoch=epoch, **kwargs)

    adapter.train_one_epoch = recording


def resume_fixed_steps(rank: int, folder: str) -> None:
    """One cycle of 4 passes of 2 steps (steps_per_cycle) with a checkpoint after each pass:
    once straight through (run ``a``), once stopped before pass 2 and resumed (run ``b``), and
    once resumed from a checkpoint without the processes' loader states (run ``c``: one of an
    earlier version). Each process writes the inputs of its batches, per pass, to
    batches-<run>-<rank>.pt."""
    from active_learning.distributed import barrier
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.runner import run_active_learning

    config = LoopConfig(strategy="random", cycles=1, initial_size=20, budget=4, subset_size=0,
                        epochs=4, steps_per_cycle=8, batch_size=4, save_checkpoints=True,
                        checkpoint_every=1, progress=False, seed=5)
    for name, stop in (("a", None), ("b", 2), ("c", 2)):
        adapter = _toy_adapter("images")
        drawn: dict[int, list[torch.Tensor]] = {}
        if stop is not None:
            _record_batches(adapter, drawn, stop)
            try:
                run_active_learning(adapter, config, Path(folder) / name)
            except _Stop:
                pass
            checkpoint = Path(folder) / name / "checkpoints" / "in_progress.pt"
            if name == "c" and rank == 0:
                saved = torch.load(checkpoint, weights_only=False)
                del saved["rng"]["loaders"]
                torch.save(saved, checkpoint)
            barrier()
        _record_batches(adapter, drawn, None)
        run_active_learning(adapter, config, Path(folder) / name)
        torch.save({epoch: torch.cat(batches) for epoch, batches in drawn.items()},
                   Path(folder) / f"batches-{name}-{rank}.pt")
