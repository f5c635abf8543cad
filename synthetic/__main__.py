"""``python -m synthetic --format cityscapes --output DIR``: write the CPU benchmark scenes."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "synthetic"

from .scenes import SceneConfig, load_fashion_mnist

FORMATS = ("cityscapes",)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m synthetic", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--format", choices=FORMATS, default="cityscapes", help="on-disk layout")
    parser.add_argument("--output", required=True, help="dataset root to write")
    parser.add_argument("--train", type=int, default=2000, help="training scenes (from Fashion-MNIST train)")
    parser.add_argument("--val", type=int, default=500, help="validation scenes (from Fashion-MNIST test)")
    parser.add_argument("--height", type=int, default=128, help="scene height in pixels")
    parser.add_argument("--width", type=int, default=256, help="scene width in pixels")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same files")
    parser.add_argument("--fashion-mnist", default=None, metavar="DIR",
                        help="folder of the Fashion-MNIST idx files (default: the Debian package's "
                             "/usr/share/datasets/fashion-mnist)")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = get_args_parser().parse_args(argv)
    from classification.data import DataError

    from .cityscapes import write_cityscapes

    if args.train < 1 or args.val < 1 or args.height < 32 or args.width < 32:
        sys.exit("error: --train and --val must be >= 1, --height and --width >= 32")
    try:
        items = {"train": load_fashion_mnist(args.fashion_mnist, "train"),
                 "val": load_fashion_mnist(args.fashion_mnist, "t10k")}
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    start = time.perf_counter()
    config = SceneConfig(height=args.height, width=args.width,
                         max_size=max(16, min(args.height, args.width) // 2))
    written = write_cityscapes(args.output, items, {"train": args.train, "val": args.val},
                               config=config, seed=args.seed)
    print(f"wrote {written['train']} train and {written['val']} val scenes of {args.height}x{args.width} "
          f"in the Cityscapes layout to {args.output} in {time.perf_counter() - start:.1f} s")
    return Path(args.output)


if __name__ == "__main__":
    main()
