"""A round's proposals: the files annotation tools import, and the round's page."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.files.coco_predictions import COCO_PREDICTIONS_FILE, CocoPredictions
from active_learning.files.proposals import LabelStudioTags
from active_learning.rounds.workspace import Round

__all__ = ["REGIONS_FILE", "SCORES_FILE", "write_proposals"]

SCORES_FILE = "scores.csv"
REGIONS_FILE = "regions.csv"   # a superpixel round's chosen regions (name,region_id,score)

logger = logging.getLogger("active_learning")


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


def write_proposals(round_: Round, run_dir: Path, kind: LabelStudioTags, images_dir: Path,
                    class_names: Sequence[str], predict: Callable[[str], Any] | None = None, *,
                    keypoint_names: Sequence[str] = (),
                    skeleton: Sequence[tuple[int, int]] = (),
                    unreadable: Mapping[str, str] | None = None) -> list[str]:
    """The round's proposals, from the run's priority CSV (best first), in the formats
    annotation tools import (``files/proposals.py``: ``priority.csv`` for SuperAnnotate,
    ``order.txt``, Label Studio's tasks and labeling config, with ``predict(name)``'s
    pre-annotations where the task gives them; pose: ``keypoint_names`` name the joints),
    ``scores.csv`` (every scored candidate's ``name,score,rank,chosen``, the run's
    ``scores/cycle_00.csv``; none for superpixel units), ``predictions_coco.json`` (the
    pre-annotations as COCO annotations with scores, ``files/coco_predictions.py``, for CVAT,
    Roboflow and FiftyOne; none for classes), and
    the round's page (``proposals/report/index.html``, the pose ``skeleton`` drawn). A
    superpixel round's chosen regions are copied too: ``proposals/regions.csv``
    (``name,region_id,score``, best first) and ``proposals/region_maps/`` (the 16-bit maps the
    ids refer to), and the page draws them; the page's t-SNE map and class histogram come
    from the run's ``embeddings/cycle_00.npz`` (``reports.run_folder.map_fields``). ``unreadable``
    (name -> why): images left out because they cannot be decoded, listed in
    ``proposals/unreadable.txt`` and on the page. Returns the names, best first."""
    import shutil

    from active_learning.files.atomic import atomic_copy_file
    from active_learning.files.export import read_entropies_csv
    from active_learning.files.proposals import write_proposals as write_files
    from active_learning.loop.superpixels import load_region_map
    from active_learning.loop.units import region_map_path
    from active_learning.reports.page import MAX_THUMBNAILS, ChosenImage, Selection, write_report
    from active_learning.reports.run_folder import map_fields

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
    # The COCO pre-annotations gather each prediction as the Label Studio file asks for it:
    # every image is predicted once, and only its COCO annotations are kept.
    coco = CocoPredictions(class_names, keypoint_names, skeleton)

    def predicted(name: str) -> Any:
        assert predict is not None
        prediction = kept[name] if name in kept else predict(name)
        coco.add(name, prediction)
        return prediction

    files = write_files(round_.proposals_dir, kind, names, scores, class_names,
                        predictions=None if predict is None else predicted,
                        keypoint_names=keypoint_names,
                        model_version=f"round_{round_.number:03d}")
    links: dict[str, Path] = {
        "priority CSV": files.priority_csv, "order": files.order,
        "Label Studio tasks": files.label_studio_tasks,
        "Label Studio labeling config": files.label_studio_config}
    coco_file = round_.proposals_dir / COCO_PREDICTIONS_FILE
    if coco.write(coco_file):   # boxes, masks, persons: CVAT's and Roboflow's COCO import
        links["pre-annotations (COCO, with scores)"] = coco_file
    else:
        coco_file.unlink(missing_ok=True)
    scores_csv = run_dir / "scores" / "cycle_00.csv"
    if scores_csv.is_file():   # every scored candidate (not for superpixel units)
        atomic_copy_file(scores_csv, round_.proposals_dir / SCORES_FILE)
        links["every candidate's score (name,score,rank,chosen)"] = \
            round_.proposals_dir / SCORES_FILE
    else:
        (round_.proposals_dir / SCORES_FILE).unlink(missing_ok=True)
    regions: dict[str, tuple[list[int], list[float]]] = {}
    region_csv = run_dir / "regions" / "cycle_00.csv"
    if region_csv.is_file():   # superpixel units: the chosen regions and their maps
        regions = _read_regions(region_csv)
        atomic_copy_file(region_csv, round_.proposals_dir / REGIONS_FILE)
        maps = round_.proposals_dir / "region_maps"
        shutil.rmtree(maps, ignore_errors=True)
        shutil.copytree(run_dir / "regions" / "maps", maps)
        links["superpixels (name,region_id,score)"] = round_.proposals_dir / REGIONS_FILE
    items = []
    for name, score in shown:
        item = ChosenImage(name, score, image=images_dir / name, prediction=kept.get(name))
        if name in regions:
            item.region_map = load_region_map(run_dir / "regions" / "maps" /
                                              region_map_path(name))
            item.regions = np.asarray(regions[name][0], dtype=np.int64)
            item.region_scores = np.asarray(regions[name][1], dtype=np.float64)
        items.append(item)
    summary: dict[str, Any] = {}
    listed = round_.proposals_dir / "unreadable.txt"
    if unreadable:
        listed.write_text("".join(f"{name}\t{why}\n" for name, why in unreadable.items()),
                          encoding="utf-8")
        links["unreadable images (left out)"] = listed
        summary[f"{len(unreadable)} unreadable image(s) left out"] = ", ".join(unreadable)
    else:
        listed.unlink(missing_ok=True)
    folder = round_.proposals_dir / "report"
    # The run's map points (embeddings/cycle_00.npz): the t-SNE map of the labeled, proposed
    # and other candidate images, and the classes of the proposals against the labeled set.
    selection = Selection(f"Round {round_.number}", chosen=items,
                          **map_fields(run_dir, 0, class_names=class_names))
    write_report(folder, title=f"Round {round_.number}: {len(names)} images to label next",
                 selections=[selection], links=links, class_names=class_names,
                 summary=summary or None,
                 skeleton=skeleton)
    return names
