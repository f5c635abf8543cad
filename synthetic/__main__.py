"""``python -m synthetic --format {cityscapes,voc,coco-keypoints} --output DIR``:
write the CPU benchmark scenes.

cityscapes: 128x256 scenes, leftImg8bit/ + gtFine/ (train / val).
voc: 300x300 scenes, VOC2007/ JPEGImages + Annotations + ImageSets/Main (trainval / test).
coco-keypoints: 192x256 stick-figure scenes, images/{train,val}2017 +
annotations/person_keypoints_*.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "synthetic"

from .scenes import SceneConfig, load_fashion_mnist

FORMATS = ("cityscapes", "voc", "coco-keypoints")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m synthetic",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--format", choices=FORMATS, default="cityscapes", help="on-disk layout")
    parser.add_argument("--output", required=True, help="dataset root to write")
    parser.add_argument("--train", type=int, default=2000,
                        help="training (VOC: trainval) scenes, items from Fashion-MNIST train")
    parser.add_argument("--val", "--test", dest="val", type=int, default=500,
                        help="validation (VOC: test) scenes, items from Fashion-MNIST test")
    parser.add_argument("--height", type=int, default=None,
                        help="scene height (cityscapes 128, voc 300, coco-keypoints 192)")
    parser.add_argument("--width", type=int, default=None,
                        help="scene width (cityscapes 256, voc 300, coco-keypoints 256)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same files")
    parser.add_argument("--fashion-mnist", default=None, metavar="DIR",
                        help="folder of the Fashion-MNIST idx files (default: the Debian package's "
                             "/usr/share/datasets/fashion-mnist)")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = get_args_parser().parse_args(argv)
    from active_learning.errors import DataError

    from .cityscapes import write_cityscapes
    from .voc import VOC_SCENES, write_voc

    voc, keypoints = args.format == "voc", args.format == "coco-keypoints"
    args.height = args.height or (VOC_SCENES.height if voc else 192 if keypoints else 128)
    args.width = args.width or (VOC_SCENES.width if voc else 256)
    if args.train < 1 or args.val < 1 or args.height < 32 or args.width < 32:
        sys.exit("error: --train and --val must be >= 1, --height and --width >= 32")
    try:
        items = {"train": load_fashion_mnist(args.fashion_mnist, "train"),
                 "val": load_fashion_mnist(args.fashion_mnist, "t10k")}
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    start = time.perf_counter()
    if keypoints:
        from .coco_keypoints import KeypointSceneConfig, write_coco_keypoints

        config = KeypointSceneConfig(height=args.height, width=args.width,
                                     min_person_height=max(24, args.height * 60 // 192),
                                     max_person_height=max(32, args.height * 170 // 192))
        written = write_coco_keypoints(args.output,
                                       {"train": items["train"][0], "val": items["val"][0]},
                                       {"train": args.train, "val": args.val}, config=config,
                                       seed=args.seed)
        counts = (f"{written['train']['images']} train ({written['train']['persons']} persons) and "
                  f"{written['val']['images']} val ({written['val']['persons']} persons)")
    elif voc:
        side = min(args.height, args.width)
        config = dataclasses.replace(VOC_SCENES, height=args.height, width=args.width,
                                     min_size=max(12, side * VOC_SCENES.min_size // 300),
                                     max_size=max(16, side * VOC_SCENES.max_size // 300))
        written = write_voc(args.output, {"trainval": items["train"], "test": items["val"]},
                            {"trainval": args.train, "test": args.val}, config=config,
                            seed=args.seed)
        counts = f"{written['trainval']} trainval and {written['test']} test"
    else:
        config = SceneConfig(height=args.height, width=args.width,
                             max_size=max(16, min(args.height, args.width) // 2))
        written = write_cityscapes(args.output, items, {"train": args.train, "val": args.val},
                                   config=config, seed=args.seed)
        counts = f"{written['train']} train and {written['val']} val"
    layout = "VOC" if voc else "COCO keypoints" if keypoints else "Cityscapes"
    print(f"wrote {counts} scenes of {args.height}x{args.width} in the {layout} layout to "
          f"{args.output} in {time.perf_counter() - start:.1f} s")
    return Path(args.output)


if __name__ == "__main__":
    main()
