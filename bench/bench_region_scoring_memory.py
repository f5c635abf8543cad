"""Host memory that superpixel scoring (``score_candidates``, ``RegionUnits``) holds above
the model's own use.

    python bench/bench_region_scoring_memory.py --quick   # 8 images of 256x512, seconds
    python bench/bench_region_scoring_memory.py           # 476 of 1024x2048 (~8 GiB, minutes)
    python bench/bench_region_scoring_memory.py --strategy bald_superpixels \\
        --json region_memory.json

The default is the reference Cityscapes superpixel protocol's scoring pass: 4,755 superpixels
per cycle, a scored subset of 10x that, ~100 superpixels per image -> 476 images of 1024x2048.
A toy dense adapter makes its images on the fly (one deterministic random [3, H, W] tensor per
index, never stored; targets are a dummy [H, W] long map) and its model is a Dropout2d and a
1x1 conv from 3 to 19 classes, so that the model's own memory is small and known. Every image
has the same grid of regions (``--grid`` rows x columns of blocks, 10 x 10 = 100 regions of
~103x205 px by default); ``RegionUnits.region_map`` computes an image's map when asked, so no
per-image map is held.

Each measurement runs in a fresh process (peak resident memory is a per-process high-water
mark, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``): (a) the model's own use: imports, the
adapter and ``score_candidates`` on one batch of images; (b) one full ``score_candidates`` call
over all the images, as ``select_next`` makes it. Printed: both peaks, their difference (memory
held above the model's own use, which grows with the number of images scored) and the seconds
of the ``score_candidates`` call alone. For reference the float64 score maps of all the images
take images x H x W x 8 bytes. Each child checks that its result covers every region of every
scored image and that the scores are finite.

Peak RSS also counts what the allocator cannot give back: with glibc's default (dynamic) mmap
threshold, score arrays kept on the heap between each batch's freed temporaries fragment it, and
the held memory can exceed the score maps (4.2x at 476 images of 256x512, 1.5x at 1024x2048).
``MALLOC_MMAP_THRESHOLD_=1048576 python bench/...`` (inherited by the measurements) fixes the
threshold and leaves the score maps alone (1.0x).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FULL = {"images": 476, "height": 1024, "width": 2048}
QUICK = {"images": 8, "height": 256, "width": 512}
GIB = 2**30


def _peak_rss_bytes() -> int:
    """The process's peak resident set size (ru_maxrss: KiB on Linux, bytes on macOS)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _grid_map(height: int, width: int, rows: int, cols: int):
    """int [H, W] region ids 0..rows*cols-1: a grid of rows x cols blocks (a
    fresh array each call)."""
    import numpy as np

    row_ids = np.arange(height, dtype=np.intp) * rows // height          # [H]
    col_ids = np.arange(width, dtype=np.intp) * cols // width            # [W]
    return row_ids[:, None] * cols + col_ids[None, :]                    # [H, W]


def build(images: int, height: int, width: int, rows: int, cols: int, classes: int = 19):
    """(adapter, units, model) of the toy dense task; nothing per image is held."""
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from active_learning.adapter import BaseTaskAdapter
    from active_learning.loop.units import RegionUnits
    from active_learning.strategies import PIXEL_DISTRIBUTIONS

    class OnTheFlyImages(Dataset):
        """``images`` deterministic [3, H, W] float32 images, made when
        indexed; [H, W] long targets."""

        def __len__(self) -> int:
            return images

        def __getitem__(self, index: int):
            generator = torch.Generator().manual_seed(int(index))
            image = torch.rand(3, height, width, generator=generator)           # [3, H, W]
            return image, torch.zeros(height, width, dtype=torch.long)          # [H, W]

    class TinyDenseNet(nn.Module):
        """Dropout2d, then a 1x1 conv from RGB to per-pixel class logits."""

        def __init__(self) -> None:
            super().__init__()
            self.dropout = nn.Dropout2d(0.2)
            self.classifier = nn.Conv2d(3, classes, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.dropout(x))                             # [B, C, H, W]

    class RegionScoringAdapter(BaseTaskAdapter):
        name = "region_scoring_bench"
        primary_metric = "pixel_accuracy"
        feature_info: list[dict] = []      # no loss module: only probability strategies
        output_kind = PIXEL_DISTRIBUTIONS

        def __init__(self) -> None:
            self.pool_set = self.train_set = self.test_set = OnTheFlyImages()
            pixels = np.bincount(_grid_map(height, width, rows, cols).ravel())  # [R], same for all
            self.units = RegionUnits([pixels] * images,
                                     lambda index: _grid_map(height, width, rows, cols))

        def selection_units(self):
            return self.units

        def build_model(self) -> nn.Module:
            return TinyDenseNet()

        def build_optimizer(self, parameters, epochs: int):
            return torch.optim.SGD(parameters, lr=0.01), None

        def forward_intermediates(self, model, inputs):
            return model(inputs), [inputs]

        def per_sample_loss(self, outputs, targets):
            return nn.functional.cross_entropy(outputs, targets,
                                               reduction="none").flatten(1).mean(dim=1)

        def evaluate(self, model, loader, device):
            raise NotImplementedError("scoring benchmark only")

    torch.manual_seed(0)
    adapter = RegionScoringAdapter()
    return adapter, adapter.units, adapter.build_model()


def child(scored: int, args: argparse.Namespace) -> dict:
    """Peak RSS and seconds of one ``score_candidates`` call over the first ``scored`` images."""
    import numpy as np
    import torch

    from active_learning.loop.compatibility import check_strategy_fits
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.scoring import score_candidates
    from active_learning.strategies import get_strategy

    torch.set_num_threads(args.threads)
    adapter, units, model = build(args.images, args.height, args.width, *args.grid)
    config = LoopConfig(strategy=args.strategy, mc_samples=args.mc_samples,
                        eval_batch_size=args.batch_size, progress=False, device="cpu")
    strategy = get_strategy(config.strategy)
    check_strategy_fits(strategy, adapter, units)
    if not strategy.needs:
        raise SystemExit(f"strategy {strategy.name!r} scores nothing: pick one "
                         "that needs model outputs")
    samples = np.arange(scored)
    before = _peak_rss_bytes()
    start = time.perf_counter()
    result = score_candidates(adapter, model, None, strategy, samples, config, torch.device("cpu"),
                              units=units, description="benchmark")
    seconds = time.perf_counter() - start
    peak = _peak_rss_bytes()
    regions = int(units.offsets[scored])
    unit_ids, scores = result["unit_ids"], result["scores"]
    assert len(unit_ids) == regions and np.array_equal(np.sort(unit_ids), np.arange(regions)), \
        f"{len(unit_ids)} unit ids returned for {regions} regions of {scored} images"
    assert scores.shape == (regions,) and np.isfinite(scores).all(), "non-finite region scores"
    return {"images_scored": scored, "regions": regions, "peak_rss_bytes": peak,
            "peak_rss_before_call_bytes": before, "seconds": seconds,
            "score_mean": float(scores.mean()), "score_std": float(scores.std())}


def _run_child(scored: int, common: list[str]) -> dict:
    output = subprocess.run([sys.executable, os.path.abspath(__file__), *common, "--child",
                             str(scored)], capture_output=True, text=True)
    if output.returncode != 0:
        sys.stderr.write(output.stderr)
        raise SystemExit(f"the measurement of {scored} images failed (exit {output.returncode})")
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['images']} images of "
                             f"{QUICK['height']}x{QUICK['width']} (explicit "
                             "--images/--height/--width still win)")
    parser.add_argument("--images", type=int, default=None,
                        help=f"images scored (default {FULL['images']})")
    parser.add_argument("--height", type=int, default=None, help=f"default {FULL['height']}")
    parser.add_argument("--width", type=int, default=None, help=f"default {FULL['width']}")
    parser.add_argument("--grid", type=int, nargs=2, default=[10, 10], metavar=("ROWS", "COLS"),
                        help="regions per image: a grid of ROWS x COLS blocks (default 10 10)")
    parser.add_argument("--batch-size", type=int, default=2, help="LoopConfig.eval_batch_size")
    parser.add_argument("--mc-samples", type=int, default=2, help="LoopConfig.mc_samples")
    parser.add_argument("--strategy", default="mc_entropy_superpixels",
                        help="a per-pixel strategy (MC-dropout or entropy-like)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each measurement")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the numbers here")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for key in sizes:
        if getattr(args, key) is None:
            setattr(args, key, sizes[key])
    if args.child is not None:
        print(json.dumps(child(args.child, args)))
        return
    if args.batch_size > args.images:
        parser.error(f"--batch-size ({args.batch_size}) is larger than --images ({args.images})")

    common = ["--images", str(args.images), "--height", str(args.height), "--width",
              str(args.width), "--grid", *map(str, args.grid), "--batch-size", str(args.batch_size),
              "--mc-samples", str(args.mc_samples), "--strategy", args.strategy, "--threads",
              str(args.threads)]
    maps_bytes = args.images * args.height * args.width * 8
    import torch

    print(f"{args.images} images of {args.height}x{args.width}, {args.grid[0] * args.grid[1]} "
          f"regions each ({args.images * args.grid[0] * args.grid[1]} superpixels), strategy "
          f"{args.strategy}, T = {args.mc_samples}, eval batch {args.batch_size}; model "
          "Dropout2d + 1x1 conv 3 -> 19")
    print(f"torch {torch.__version__}, {args.threads} thread(s), python "
          f"{platform.python_version()}, {platform.machine()}; float64 score maps of every image: "
          f"{maps_bytes / GIB:.2f} GiB\n", flush=True)
    one_batch = _run_child(args.batch_size, common)     # (a) the model's own use
    full = _run_child(args.images, common)              # (b) the whole scoring pass
    held = full["peak_rss_bytes"] - one_batch["peak_rss_bytes"]
    print("| measurement | images scored | peak RSS (GiB) | score_candidates s |")
    print("|---|---|---|---|")
    print(f"| (a) one batch: the model's own use | {one_batch['images_scored']} | "
          f"{one_batch['peak_rss_bytes'] / GIB:.2f} | {one_batch['seconds']:.1f} |")
    print(f"| (b) full pass | {full['images_scored']} | {full['peak_rss_bytes'] / GIB:.2f} | "
          f"{full['seconds']:.1f} |")
    print(f"| (b) - (a): held above the model's own use | | **{held / GIB:.2f}** | |")
    print(f"\nchecked: {full['regions']} region scores, all finite (mean "
          f"{full['score_mean']:.4f}); held / float64 score maps = {held / maps_bytes:.2f}")
    if args.json is not None:
        numbers = {"images": args.images, "height": args.height, "width": args.width,
                   "regions_per_image": args.grid[0] * args.grid[1], "strategy": args.strategy,
                   "mc_samples": args.mc_samples, "eval_batch_size": args.batch_size,
                   "threads": args.threads, "torch": torch.__version__,
                   "score_maps_float64_bytes": maps_bytes, "one_batch": one_batch, "full": full,
                   "held_above_model_bytes": held, "held_above_model_gib": held / GIB}
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
