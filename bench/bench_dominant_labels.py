"""What the one-click annotator gets wrong: the dominant-label oracle's pixel error on a dataset.

    python bench/bench_dominant_labels.py --data-dir data/fmnist_cityscapes_64x128 --images 300
    python bench/bench_dominant_labels.py --data-dir data/fmnist_cityscapes_64x128 \
        --runs runs/seg_screen/segmentation/fmnist_cityscapes_64x128/*_superpixels/seed*

For every superpixel of the first ``--images`` training images (the runs' watershed superpixels,
``--superpixels-per-image`` markers), the oracle of ``--region-label dominant`` gives every pixel
the superpixel's majority class. This counts, over the pixels that carry a class, the share that
get a wrong class, per true class (so the objects that superpixels cut are seen apart from the
large stuff regions), and the superpixels that hold more than one class. It explains what a
superpixel strategy trains on: measured, not a strategy result. Prints Markdown tables.

With ``--runs``: the same counts over the superpixels each superpixel run *chose* after its
initial images (``pool.npz``: units labeled in cycle 1 or later; a region unit's id is its
image's offset plus its region id), one row per run: what the strategy's picks cost in wrong
labels.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from active_learning.labels.cityscapes_ids import CITYSCAPES_CLASSES  # noqa: E402
from active_learning.loop.superpixels import superpixels  # noqa: E402
from segmentation.costs import dominant_classes  # noqa: E402
from segmentation.data import find_samples, read_image, read_label  # noqa: E402

IGNORE = 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data/fmnist_cityscapes_64x128")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--superpixels-per-image", type=int, default=100)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--runs", nargs="*", default=(),
                        help="superpixel run folders: count their chosen superpixels only")
    args = parser.parse_args()
    if args.runs:
        chosen_errors(args)
        return
    samples = find_samples(args.data_dir, "train", "cityscapes")[:args.images]
    classes = args.classes
    total = np.zeros(classes, dtype=np.int64)       # labeled pixels per true class
    wrong = np.zeros(classes, dtype=np.int64)       # ... that the oracle gives another class
    lost = np.zeros(classes, dtype=np.int64)        # ... that it leaves void (void won the vote)
    mixed = regions = 0
    areas = []
    for sample in samples:
        image = read_image(sample.image)
        mask = read_label(sample, "cityscapes", image.shape[:2], classes)   # (H, W)
        region_map = superpixels(image, "watershed", args.superpixels_per_image)
        majority = dominant_classes(mask, region_map, classes)[region_map]      # [H, W]
        valid = mask != IGNORE
        truth = mask[valid]
        total += np.bincount(truth, minlength=classes)
        given = majority[valid]
        wrong += np.bincount(truth[(given != truth) & (given != IGNORE)], minlength=classes)
        lost += np.bincount(truth[given == IGNORE], minlength=classes)
        for region in np.unique(region_map):
            inside = mask[region_map == region]
            inside = inside[inside != IGNORE]
            regions += 1
            mixed += int(len(np.unique(inside)) > 1)
        areas.append(region_map.size / (int(region_map.max()) + 1))
    labeled = total.sum()
    print(f"{len(samples)} images, {regions} superpixels of {np.mean(areas):.0f} pixels on "
          f"average; {mixed / regions:.1%} of them hold more than one class")
    print(f"pixels given a wrong class: {wrong.sum() / labeled:.2%}; left void: "
          f"{lost.sum() / labeled:.2%}\n")
    print("| true class | share of the labeled pixels | given a wrong class | left void |")
    print("|---|---|---|---|")
    for label in np.flatnonzero(total):
        name = CITYSCAPES_CLASSES[label] if label < len(CITYSCAPES_CLASSES) else str(label)
        print(f"| {name} | {total[label] / labeled:.1%} | {wrong[label] / total[label]:.1%} | "
              f"{lost[label] / total[label]:.1%} |")


def chosen_errors(args: argparse.Namespace) -> None:
    """One row per run: its chosen superpixels' share holding several classes, and the share of
    their labeled pixels that the dominant label gets wrong (objects and stuff apart)."""
    samples = {sample.name: sample for sample in find_samples(args.data_dir, "train", "cityscapes")}
    stuff = {0, 2, 10}   # road, building, sky: the scenes' stuff classes (everything else objects)
    print("| run | chosen superpixels | holding several classes | labeled pixels wrong | "
          "object pixels wrong | object share of the labeled pixels |")
    print("|---|---|---|---|---|---|")
    for run in map(Path, args.runs):
        with np.load(run / "pool.npz") as pool:
            labeled_at, names, units = pool["labeled_at"], pool["item_names"], pool["item_units"]
        offsets = np.concatenate([[0], np.cumsum(units)])
        chosen = mixed = wrong = total = object_wrong = object_total = 0
        for index, name in enumerate(names.tolist()):
            picked = np.flatnonzero(labeled_at[offsets[index]:offsets[index + 1]] > 0)
            if len(picked) == 0 or len(picked) == units[index]:
                continue   # not chosen, or an initial (whole) image
            sample = samples[name]
            image = read_image(sample.image)
            mask = read_label(sample, "cityscapes", image.shape[:2], args.classes)   # (H, W)
            region_map = superpixels(image, "watershed", args.superpixels_per_image)
            majority = dominant_classes(mask, region_map, args.classes)
            for region in picked:
                inside = mask[region_map == region]
                inside = inside[inside != IGNORE]
                chosen += 1
                mixed += int(len(np.unique(inside)) > 1)
                given = majority[region]
                wrong += int((inside != given).sum())
                total += len(inside)
                objects = ~np.isin(inside, list(stuff))
                object_wrong += int((inside[objects] != given).sum())
                object_total += int(objects.sum())
        print(f"| {run.parent.name}/{run.name} | {chosen} | {mixed / max(chosen, 1):.1%} | "
              f"{wrong / max(total, 1):.1%} | {object_wrong / max(object_total, 1):.1%} | "
              f"{object_total / max(total, 1):.1%} |")


if __name__ == "__main__":
    main()
