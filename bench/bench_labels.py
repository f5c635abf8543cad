"""How long reading an annotation tool's export takes (``active_learning.labels.read_labels``).

    python bench/bench_labels.py --quick          # 2,000 images, seconds
    python bench/bench_labels.py                  # 20,000 images, 5 boxes each
    python bench/bench_labels.py --images 100000 --json labels.json

Writes a CVAT-style COCO 1.0 export (``annotations/instances_default.json``: ids from 1, every
frame listed, ``attributes`` on each annotation) over ``--images`` image files of
``--size`` pixels (one JPEG's bytes copied, so writing them is cheap; the reader reads every
labeled image's header), ``--boxes`` boxes per labeled image and one polygon each, with 10% of
the frames left unlabeled. Times, each in this process after the files are written and cached
by the OS:

* ``read_labels`` for object detection (boxes), segmentation (polygons, nothing painted yet),
  and the detection read again without ``--images`` (the images found from the layout);
* painting the segmentation label maps (``CocoMask.train_ids``) and writing them as the class-id
  PNGs a round trains on (``write_label_maps``), over the first ``--paint`` images.

Printed as JSON (and written to ``--json``): seconds, and images per second.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_export(root: Path, images: int, boxes: int, size: tuple[int, int]) -> Path:
    """The export and its images under ``root``; returns the COCO file."""
    import numpy as np
    from PIL import Image

    width, height = size
    folder = root / "images" / "default"
    folder.mkdir(parents=True)
    template = root / "template.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3),
                                                       dtype=np.uint8)).save(template)
    rng = np.random.default_rng(1)
    entries, notes = [], []
    for number in range(images):
        name = f"{number // 1000:03d}/{number:07d}.jpg"
        (folder / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(template, folder / name)
        entries.append({"id": number + 1, "width": width, "height": height, "file_name": name,
                        "license": 0, "flickr_url": "", "coco_url": "", "date_captured": 0})
        if number % 10 == 9:          # a frame nobody labeled yet
            continue
        for _ in range(boxes):
            w, h = rng.uniform(4, width / 2), rng.uniform(4, height / 2)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            polygon = [x, y, x + w, y, x + w / 2, y + h]
            notes.append({"id": len(notes) + 1, "image_id": number + 1,
                          "category_id": int(rng.integers(1, 6)), "segmentation": [polygon],
                          "area": w * h / 2, "bbox": [x, y, w, h], "iscrowd": 0,
                          "attributes": {"occluded": False}})
    document = {"licenses": [{"name": "", "id": 0, "url": ""}], "info": {},
                "categories": [{"id": k, "name": f"class{k}", "supercategory": ""}
                               for k in range(1, 6)],
                "images": entries, "annotations": notes}
    path = root / "annotations" / "instances_default.json"
    path.parent.mkdir()
    path.write_text(json.dumps(document))
    return path


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--boxes", type=int, default=5)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--paint", type=int, default=500, help="images whose masks are painted")
    parser.add_argument("--quick", action="store_true", help="2,000 images, 200 painted")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.paint = 2000, 200
    from active_learning.labels import read_labels
    from active_learning.labels.masks import write_label_maps

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "export"
        path, written_s = timed(lambda: write_export(root, args.images, args.boxes,
                                                     tuple(args.size)))
        images = root / "images" / "default"
        detection, detection_s = timed(lambda: read_labels("boxes", path, images))
        _, layout_s = timed(lambda: read_labels("boxes", root))
        segmentation, segmentation_s = timed(lambda: read_labels("mask", path, images))
        first = dict(list(segmentation.targets.items())[: args.paint])
        _, paint_s = timed(lambda: [target.train_ids() for target in first.values()])
        _, write_s = timed(lambda: write_label_maps(first, Path(folder) / "maps",
                                                    len(segmentation.categories)))
    labeled = len(detection.targets)
    result = {
        "machine": platform.processor() or platform.machine(), "images": args.images,
        "labeled": labeled, "boxes_per_image": args.boxes, "size": list(args.size),
        "write_export_s": round(written_s, 2),
        "read_detection_s": round(detection_s, 2),
        "read_detection_images_per_s": round(args.images / detection_s),
        "read_detection_from_layout_s": round(layout_s, 2),
        "read_segmentation_s": round(segmentation_s, 2),
        "paint_ms_per_image": round(1000 * paint_s / len(first), 2),
        "write_label_maps_ms_per_image": round(1000 * write_s / len(first), 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
