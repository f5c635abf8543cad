"""The points of a cycle's report map: ``embeddings/cycle_XX.npz`` in the run folder.

After each cycle's choice the runner embeds a bounded, seeded sample of the pool, as core-set
embeds it (``adapter.embedding``, one row per unit: the mean of its samples'), and saves it with
each point's status (labeled / chosen / unlabeled) and, where the task has one class per image,
its class (the file's format: ``files/embeddings.py``). The report draws the t-SNE map and the
class histogram from it, as the TSNEPlotter of the AL-CV project colours its points "newly
sampled / previously sampled / un-sampled" and by class.

The sample: every chosen unit (a seeded ``2 x per_status`` of them when more are chosen, e.g. a
round ranking everything), and a seeded uniform ``per_status`` of the labeled units and of the
cycle's other candidates. One forward pass over at most ``4 x per_status`` items, whatever the
pool's size; under ``torchrun`` each process embeds its shard and rank 0 gathers.

Classes: the labeled units' true class (the label the model trained on) and, for the chosen and
unlabeled ones, the model's predicted class (a round knows no other; a simulation keeps the two
comparable). Tasks without one class per image (segmentation, detection, pose) save none, and
the file says why.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from active_learning.adapter import TaskAdapter
from active_learning.distributed import (
    gather_objects,
    is_distributed,
    rank,
    shard_range,
    world_size,
)
from active_learning.files.embeddings import write_embeddings_file
from active_learning.loop.config import LoopConfig, derive_seed
from active_learning.loop.inference import forward, make_loader, progress
from active_learning.loop.units import SelectionUnits
from active_learning.precision import full_precision, memory_format
from active_learning.strategies import (
    BOX_DISTRIBUTIONS,
    CLASS_DISTRIBUTIONS,
    HEATMAPS,
    PIXEL_DISTRIBUTIONS,
)

__all__ = ["MAP_POINTS", "MapPoints", "adapter_class_names", "map_points", "map_refusal",
           "map_sample", "write_map_file"]

# Points of each status in a cycle's map (chosen: up to twice as many). 500 + 500 + a budget of
# 100 is about 1,100 items: one short pass beside the cycle's scoring of its candidates.
MAP_POINTS = 500
# The seed stage of the map's sample, apart from config.py's stages (0..6), so that drawing it
# never shifts a random choice the protocol makes.
STAGE_REPORT_MAP = 100

NO_CLASS_REASONS = {
    PIXEL_DISTRIBUTIONS: "segmentation labels pixels, and an image holds several classes",
    BOX_DISTRIBUTIONS: "detection labels objects, and an image holds several classes",
    HEATMAPS: "pose estimation labels joints, not classes",
}


@dataclass
class MapPoints:
    """One cycle's map points, on rank 0.

    Attributes:
        units: int64 [M] unit ids.
        status: str [M] ``"labeled"``, ``"chosen"`` or ``"unlabeled"``.
        embeddings: float32 [M, D] one row per unit.
        classes: int64 [M] class per point (-1 unknown), or ``None`` (no class per image).
        predicted: bool [M] True where the class is the model's prediction, or ``None``.
        totals: ``{status: how many units of that status there were}``, before sampling.
        note: why there are no classes ("" when there are).
    """

    units: np.ndarray
    status: np.ndarray
    embeddings: np.ndarray
    classes: np.ndarray | None
    predicted: np.ndarray | None
    totals: dict[str, int]
    note: str = ""


def map_refusal(units: SelectionUnits) -> str | None:
    """Why these units have no map (one embedding per unit), or None when they have one.

    Asked of the units' own ``unit_rows`` (superpixels refuse: a region is part of an image
    and has no embedding of its own), so the loop does not ask which kind of units it holds.
    """
    try:
        units.unit_rows(np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.float32))
    except ValueError as error:
        return str(error)
    return None


def map_sample(labeled: np.ndarray, candidates: np.ndarray, chosen: np.ndarray,
               per_status: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Which units the map shows.

    Args:
        labeled: int [L] the units labeled before this choice.
        candidates: int [U] the cycle's candidates (the chosen among them).
        chosen: int [K] the units chosen.
        per_status: the most labeled and unlabeled points; chosen: twice as many.
        seed: the draw's seed.

    Returns:
        (unit ids int64 [M], status str [M], totals ``{status: count before sampling}``), the
        points grouped labeled, unlabeled, chosen, each group in ascending unit order.
    """
    rng = np.random.default_rng(seed)
    chosen = np.unique(np.asarray(chosen, dtype=np.int64))
    groups = {"labeled": np.unique(np.asarray(labeled, dtype=np.int64)),
              "unlabeled": np.setdiff1d(np.asarray(candidates, dtype=np.int64), chosen),
              "chosen": chosen}
    limits = {"labeled": per_status, "unlabeled": per_status, "chosen": 2 * per_status}
    ids, status = [], []
    for kind, members in groups.items():
        if len(members) > limits[kind]:
            members = np.sort(rng.choice(members, size=limits[kind], replace=False))
        ids.append(members)
        status.append(np.full(len(members), kind))
    totals = {kind: int(len(members)) for kind, members in groups.items()}
    return np.concatenate(ids), np.concatenate(status).astype(str), totals


def _has_classes(adapter: TaskAdapter, units: SelectionUnits) -> str:
    """"" when each point has one class (one class distribution per image, one image per unit),
    else why not."""
    if adapter.output_kind != CLASS_DISTRIBUTIONS:
        reason = NO_CLASS_REASONS.get(adapter.output_kind,
                                      f"the model's outputs are {adapter.output_kind}")
        return f"No classes: {reason}; there is no one class per image."
    if not units.one_sample_per_unit:
        return "No classes: each image holds several samples, each with its own class."
    return ""


@torch.inference_mode()
def _embed_with_classes(adapter: TaskAdapter, model: nn.Module, samples: np.ndarray,
                        config: LoopConfig, device: torch.device, classes: bool
                        ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None:
    """This process's (embeddings [S, D], predicted classes [S], true classes [S]) of
    ``pool_set[samples]``; the classes are None without ``classes`` or when the outputs are not
    one distribution per image after all. None without samples."""
    if not len(samples):
        return None
    model.eval()
    loader = make_loader(adapter, Subset(adapter.pool_set, samples),  # type: ignore[arg-type]
                         config.eval_batch_size, config)
    rows: list[torch.Tensor] = []
    predicted: list[torch.Tensor] | None = [] if classes else None
    true: list[torch.Tensor] = []
    for batch in progress(loader, config.progress, desc="report map"):
        inputs, targets = adapter.split_batch(batch, device)
        inputs = memory_format(inputs, config.channels_last)
        outputs, features = forward(adapter, model, inputs, device, config.amp)
        embedding = adapter.embedding(outputs, features).float().cpu()            # [B, D]
        rows.append(embedding)
        if predicted is None:
            continue
        with full_precision(device):
            probs = adapter.probabilities(outputs)                                # [B, C]
        if probs.ndim != 2 or len(probs) != len(embedding):
            predicted = None   # declared one distribution per image, but it is not
            continue
        predicted.append(probs.argmax(dim=1).cpu().long())
        # A labeled image's target is its class index; an image to rank has none (-1).
        valid = (torch.is_tensor(targets) and targets.shape == (len(embedding),)
                 and not torch.is_floating_point(targets))
        true.append(targets.cpu().long() if valid
                    else torch.full((len(embedding),), -1, dtype=torch.int64))
    if predicted is None:
        return torch.cat(rows), None, None
    return torch.cat(rows), torch.cat(predicted), torch.cat(true)


def map_points(adapter: TaskAdapter, model: nn.Module, units: SelectionUnits,
               labeled: np.ndarray, candidates: np.ndarray, chosen: np.ndarray,
               config: LoopConfig, device: torch.device, cycle: int,
               per_status: int = MAP_POINTS) -> MapPoints | None:
    """Embed the cycle's map sample (:func:`map_sample`); the points on rank 0, None elsewhere.

    Every process must call it: each embeds its contiguous shard of the sample's samples, and
    rank 0 gathers them in order (as ``scoring.embed``) and pools them per unit.
    """
    seed = derive_seed(config.seed, cycle, STAGE_REPORT_MAP)
    ids, status, totals = map_sample(labeled, candidates, chosen, per_status, seed)
    note = _has_classes(adapter, units)
    samples = units.samples_of(ids)                       # sorted; every unit's samples
    start, stop = (shard_range(len(samples), rank(), world_size()) if is_distributed()
                   else (0, len(samples)))
    mine = _embed_with_classes(adapter, model, samples[start:stop], config, device, not note)
    gathered = gather_objects(mine, dst=0) if is_distributed() else [mine]
    if gathered is None:
        return None
    parts: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = [
        part for part in gathered if part is not None]
    if not parts:
        return None
    rows = torch.cat([part[0] for part in parts]).numpy()
    unit_ids, pooled = units.unit_rows(samples, rows)                         # ascending ids
    # Back to the sample's order (labeled, unlabeled, chosen); a unit without samples drops out.
    position = np.searchsorted(unit_ids, ids)
    found = (position < len(unit_ids)) & (unit_ids[np.minimum(position, len(unit_ids) - 1)]
                                          == ids)
    ids, status, position = ids[found], status[found], position[found]
    embeddings = np.asarray(pooled, dtype=np.float32)[position]
    classes = is_predicted = None
    if not note and any(part[1] is None for part in parts):
        note = ("No classes: the model's outputs are not one class distribution per image "
                f"(its adapter declares {adapter.output_kind!r}).")
    if not note:   # one sample per unit: row i of ``samples`` is unit ``unit_ids[i]``
        predicted = torch.cat([part[1] for part in parts if part[1] is not None]).numpy()
        true = torch.cat([part[2] for part in parts if part[2] is not None]).numpy()
        is_predicted = status != "labeled"
        classes = np.where(is_predicted, predicted[position], true[position]).astype(np.int64)
    return MapPoints(ids, status, embeddings, classes, is_predicted, totals, note)


def write_map_file(points: MapPoints, path: str | Path,
                   class_names: Sequence[str] = (),
                   item_name: Callable[[int], str] | None = None) -> None:
    """Save ``points`` as ``write_embeddings_file`` does (atomically), with the class names
    and, given ``item_name`` (unit id -> name), the points' names."""
    names = None if item_name is None or points.units is None else \
        [item_name(int(unit)) for unit in points.units]
    write_embeddings_file(path, points.embeddings, points.status, points.classes,
                          units=points.units, predicted=points.predicted,
                          class_names=class_names, totals=points.totals, note=points.note,
                          names=names)


def adapter_class_names(adapter: Any) -> list[str]:
    """The adapter's ``class_names`` (``TaskAdapter``), or [] when it names none (an adapter
    written before the report read them)."""
    names = getattr(adapter, "class_names", None)
    return [str(name) for name in names] if names is not None else []
