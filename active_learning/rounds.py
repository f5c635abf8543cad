"""``train.py round``: one round of the labeling loop with people in it.

    python -m classification.train round --images photos/ --labels export.csv --workspace al/

reads the labels the annotation tool exported, checks them against the images, trains on the
labeled images (from the previous round's model with ``--warm-start``), scores every image that
is neither labeled nor still out for labeling from an earlier round, and writes the round's
proposals (``workspace.py`` keeps the rounds). The training and scoring are one cycle of the
shared runner in ``round_NNN/run/`` with in-cycle checkpoints, so an interrupted round resumes;
a second run with the same export changes nothing.

A task takes part by giving its ``TaskCommand`` a ``build_round(args, labels, candidates)``:
the adapter over the labeled images (the pool's first items) followed by the candidates, and
where it can, a ``predict(model, name)`` that turns the round's trained model's output on a
proposed image into pre-annotations (``model_predictions`` loads that model from the round's
checkpoint). Superpixel rounds (segmentation) also get the chosen regions: the region CSV and
the region maps are copied beside the proposals, and the report draws them.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import ConfigError, DataError
from active_learning.loop.workspace import Round, Workspace

__all__ = ["add_round_flags", "candidates_for_round", "find_images", "load_trained_model",
           "model_predictions", "round_budget", "run_round", "write_proposals"]

logger = logging.getLogger("active_learning")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def find_images(folder: Path) -> list[str]:
    """Every image under ``folder`` (any depth, links followed), as paths relative to it with
    ``/``, sorted."""
    import os

    if not folder.is_dir():
        raise DataError(f"--images {folder} is not a folder")
    found = sorted(Path(root, name).relative_to(folder).as_posix()
                   for root, _, names in os.walk(folder, followlinks=True) for name in names
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise DataError(f"no image files under {folder}")
    return found


def add_round_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``train.py round`` (beside the task's training and model flags)."""
    group = parser.add_argument_group("round")
    group.add_argument("--images", required=True, metavar="DIR",
                       help="every image of the project, labeled or not (any depth)")
    group.add_argument("--labels", required=True, metavar="EXPORT",
                       help="what the annotation tool exported (a file or a folder)")
    group.add_argument("--labels-format", default="auto",
                       help="the export's format; auto: from its file name and content")
    group.add_argument("--workspace", required=True, metavar="DIR",
                       help="the loop's folder: one subfolder per round")
    group.add_argument("--repropose", action="store_true",
                       help="also propose images an earlier round proposed and that are not "
                            "labeled yet (by default they are out for labeling)")
    group.add_argument("--warm-start", action="store_true",
                       help="start from the previous round's trained model instead of the "
                            "task's initial weights")


def candidates_for_round(images: Sequence[str], labeled: set[str], out_for_labeling: set[str],
                         repropose: bool) -> list[str]:
    """The images a round scores: neither labeled nor (unless ``repropose``) out for
    labeling, in ``images``' order."""
    skipped = set(labeled) | (set() if repropose else set(out_for_labeling))
    return [name for name in images if name not in skipped]


def run_round(task: str, args: argparse.Namespace,
              build_round: Callable[[argparse.Namespace, Any, list[str]], Any],
              run_cycle: Callable[[Any, Round, int], Path]) -> Round:
    """One round (see the module doc); returns it, done.

    The export is read with ``labels.read_labels`` (its categories matched to the workspace's
    by name); ``build_round(args, labels, candidates)`` builds the task
    (a ``BuiltTask`` whose pool is the labeled images, in ``labels.targets``' order, then the
    candidates; ``args.round_folder`` is set to the round's folder first, for files the task
    derives from the labels, e.g. segmentation's class-id PNGs); ``run_cycle(built, round,
    n_labeled)`` trains and scores in ``round.run_dir`` and returns it. The proposals are
    written from its priority CSV (``write_proposals``), with the trained model's
    pre-annotations where the built task has a ``predict(model, name)``.
    """
    workspace = Workspace(args.workspace, task)
    images_dir = Path(args.images)
    images = find_images(images_dir)
    from active_learning.labels import read_labels

    labels = read_labels(task, args.labels, images_dir, workspace.categories,
                         labels_format=args.labels_format)
    unknown = sorted(set(labels.targets) - set(images))
    if unknown:   # read_labels checks against --images; this guards the names' spelling
        raise DataError(f"{labels.source}: {len(unknown)} labeled image(s) are not under "
                        f"--images {images_dir}, e.g. {unknown[0]}")
    if not labels.targets:
        raise DataError(f"{labels.source}: no labeled image; label some in the tool first")
    round_ = workspace.round_for(labels.checksum, labels.categories, labels.files,
                                 labels.source)
    if round_.done:
        logger.info("round %d read these labels already: its %d proposals are in %s; label "
                    "them and export again", round_.number, len(round_.proposed),
                    round_.proposals_dir)
        return round_
    out = workspace.out_for_labeling(labels.targets, before=round_.number)
    candidates = candidates_for_round(images, set(labels.targets), out, args.repropose)
    if not candidates:
        raise ConfigError(f"nothing to propose: of {len(images)} images, {len(labels.targets)} "
                          f"are labeled and {len(out)} out for labeling"
                          + ("" if args.repropose else " (--repropose proposes those again)"))
    logger.info("round %d: %d labeled, %d out for labeling%s, %d candidates", round_.number,
                len(labels.targets), len(out), " (proposed again)" if args.repropose else "",
                len(candidates))
    if getattr(args, "warm_start", False):
        previous = previous_model(workspace.folder, round_)
        if previous is not None:
            args.weights = str(previous)
            if getattr(args, "weights_backbone", None):   # the whole model replaces it
                args.weights_backbone = None
            logger.info("round %d starts from round %d's model", round_.number,
                        round_.number - 1)
        else:
            logger.info("round %d: no earlier round's model to start from; the task's initial "
                        "weights are used", round_.number)
    args.round_folder = str(round_.folder)
    built = build_round(args, labels, candidates)
    run_dir = run_cycle(built, round_, len(labels.targets))
    from active_learning.cli import resolve_device

    proposed = write_proposals(round_, run_dir, task, images_dir, labels.categories,
                               model_predictions(built, run_dir, resolve_device(args.device)),
                               keypoint_names=getattr(built, "keypoint_names", ()),
                               skeleton=getattr(built, "skeleton", ()))
    workspace.finish(round_, proposed, len(labels.targets))
    logger.info("round %d: %d proposals in %s", round_.number, len(proposed),
                round_.proposals_dir)
    return round_


def round_budget(value: int | str, candidates: int) -> int:
    """The budget flag's value (``--budget`` / ``--images-per-cycle``: a number or ``all``),
    at most the candidates: a round proposes what is left when fewer remain."""
    return candidates if value == "all" else min(int(value), candidates)


def previous_model(workspace_dir: Path, round_: Round) -> Path | None:
    """The trained model of the round before ``round_`` (``--warm-start``), if it has one."""
    path = workspace_dir / f"round_{round_.number - 1:03d}" / "run" / "checkpoints" / \
        "cycle_00.pt"
    return path if path.exists() else None


def load_trained_model(adapter: Any, checkpoint: Path, device: str) -> Any:
    """The model a round trained: ``adapter.build_model()`` with the state of ``checkpoint``
    (``run/checkpoints/cycle_00.pt``, which the round's run saves), on ``device``, in eval
    mode (no dropout)."""
    from active_learning.files.weights import load_weights_file

    model = adapter.build_model()
    load_weights_file(model, checkpoint, flag="the round's model")
    return model.to(device).eval()


def model_predictions(built: Any, run_dir: Path, device: str
                      ) -> Callable[[str], Any] | None:
    """``built.predict`` bound to the round's trained model: ``name -> ImagePrediction | None``
    (None when the task has no ``predict``). The model is loaded from the run's
    ``checkpoints/cycle_00.pt`` on the first call, once; each call runs without gradients."""
    predict = getattr(built, "predict", None)
    if predict is None:
        return None
    checkpoint = Path(run_dir) / "checkpoints" / "cycle_00.pt"
    loaded: list[Any] = []

    def prediction(name: str) -> Any:
        import torch

        if not loaded:
            loaded.append(load_trained_model(built.adapter, checkpoint, device))
        with torch.inference_mode():
            return predict(loaded[0], name)

    return prediction


def _read_regions(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``regions/cycle_00.csv`` (``name,region_id,score``) -> name -> (region ids, scores)."""
    import csv

    per_image: dict[str, tuple[list[int], list[float]]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for name, region, score in list(csv.reader(handle))[1:]:
            regions, scores = per_image.setdefault(name, ([], []))
            regions.append(int(region))
            scores.append(float(score))
    return per_image


def write_proposals(round_: Round, run_dir: Path, kind: str, images_dir: Path,
                    class_names: Sequence[str], predict: Callable[[str], Any] | None = None, *,
                    keypoint_names: Sequence[str] = (),
                    skeleton: Sequence[tuple[int, int]] = ()) -> list[str]:
    """The round's proposals, from the run's priority CSV (best first), in the formats
    annotation tools import (``files/proposals.py``: ``priority.csv`` for SuperAnnotate,
    ``order.txt``, Label Studio's tasks and labeling config, with ``predict(name)``'s
    pre-annotations where the task gives them; pose: ``keypoint_names`` name the joints), and
    the round's page (``proposals/report/index.html``, the pose ``skeleton`` drawn). A
    superpixel round's chosen regions are copied too: ``proposals/regions.csv``
    (``name,region_id,score``, best first) and ``proposals/region_maps/`` (the 16-bit maps the
    ids refer to), and the page draws them; the page's t-SNE map and class histogram come
    from the run's ``embeddings/cycle_00.npz`` (``reports.html.map_fields``). Returns the
    names, best first."""
    import shutil

    from active_learning.files.export import read_entropies_csv
    from active_learning.files.proposals import write_proposals as write_files
    from active_learning.loop.superpixels import load_region_map
    from active_learning.loop.units import region_map_path
    from active_learning.reports.html import (
        MAX_THUMBNAILS,
        ChosenImage,
        Selection,
        map_fields,
        write_report,
    )

    chosen = read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")
    names = [name for name, _ in chosen]
    scores = [score for _, score in chosen]
    shown = chosen[:MAX_THUMBNAILS]
    # Each image is predicted once: the report's first ones are kept for the Label Studio file.
    kept: dict[str, Any] = {}
    if predict is not None:
        logger.info("round %d: the model's predictions on the %d proposed images (the "
                    "pre-annotations)", round_.number, len(names))
        kept = {name: predict(name) for name, _ in shown}
    predictions = None if predict is None else (
        lambda name: kept[name] if name in kept else predict(name))
    files = write_files(round_.proposals_dir, kind, names, scores, class_names,
                        predictions=predictions, keypoint_names=keypoint_names,
                        model_version=f"round_{round_.number:03d}")
    links: dict[str, Path] = {
        "priority CSV": files.priority_csv, "order": files.order,
        "Label Studio tasks": files.label_studio_tasks,
        "Label Studio labeling config": files.label_studio_config}
    regions: dict[str, tuple[list[int], list[float]]] = {}
    region_csv = run_dir / "regions" / "cycle_00.csv"
    if region_csv.is_file():   # superpixel units: the chosen regions and their maps
        regions = _read_regions(region_csv)
        shutil.copyfile(region_csv, round_.proposals_dir / "regions.csv")
        maps = round_.proposals_dir / "region_maps"
        shutil.rmtree(maps, ignore_errors=True)
        shutil.copytree(run_dir / "regions" / "maps", maps)
        links["superpixels (name,region_id,score)"] = round_.proposals_dir / "regions.csv"
    items = []
    for name, score in shown:
        item = ChosenImage(name, score, image=images_dir / name, prediction=kept.get(name))
        if name in regions:
            item.region_map = load_region_map(run_dir / "regions" / "maps" /
                                              region_map_path(name))
            item.regions = np.asarray(regions[name][0], dtype=np.int64)
            item.region_scores = np.asarray(regions[name][1], dtype=np.float64)
        items.append(item)
    folder = round_.proposals_dir / "report"
    # The run's map points (embeddings/cycle_00.npz): the t-SNE map of the labeled, proposed
    # and other candidate images, and the classes of the proposals against the labeled set.
    selection = Selection(f"Round {round_.number}", chosen=items,
                          **map_fields(run_dir, 0, class_names=class_names))
    write_report(folder, title=f"Round {round_.number}: {len(names)} images to label next",
                 selections=[selection], links=links, class_names=class_names,
                 skeleton=skeleton)
    return names
