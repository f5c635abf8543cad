"""Per-superpixel mean scores: one ``bincount`` per image against ``skimage.measure.regionprops``.

    python bench/bench_region_scores.py   # 512x1024 maps, ~100 watershed superpixels
    python bench/bench_region_scores.py --segments 400 --method slic

The score maps are random per-pixel uncertainties; the region maps are superpixels of
scikit-image's astronaut photograph resized to the map size (``active_learning.loop.superpixels``).
Three ways to get each region's mean score are timed (best of ``--repeat``) and checked equal:
``region_means`` (what the loop uses: one weighted ``bincount``, with the pixel counts that
``RegionUnits`` computes once per map), regionprops' ``intensity_mean``, and a Python loop of
one boolean mask per region.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from active_learning.loop.superpixels import region_means, superpixels  # noqa: E402


def _best_of(repeat: int, function) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--segments", type=int, default=100, help="superpixels asked for (markers)")
    parser.add_argument("--method", choices=("watershed", "slic"), default="watershed")
    parser.add_argument("--images", type=int, default=4, help="score maps per measurement")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    from skimage import data
    from skimage.measure import regionprops
    from skimage.transform import resize

    photo = resize(data.astronaut(), (args.height, args.width), anti_aliasing=True)
    region_map = superpixels(photo, method=args.method, n_segments=args.segments)   # [H, W]
    n_regions = int(region_map.max()) + 1
    # What RegionUnits holds per image: the map as intp and its pixel counts, computed once.
    labels = region_map.astype(np.intp)
    counts = np.bincount(labels.ravel(), minlength=n_regions)
    rng = np.random.default_rng(0)
    maps = [rng.random((args.height, args.width)) for _ in range(args.images)]

    def ours():
        return [region_means(scores, labels, n_regions, counts) for scores in maps]

    def skimage_props():
        return [np.array([prop.intensity_mean
                          for prop in regionprops(region_map + 1, intensity_image=scores)])
                for scores in maps]

    def mask_loop():
        return [np.array([scores[region_map == r].mean() for r in range(n_regions)])
                for scores in maps]

    timings = {}
    results = {}
    for name, function in (("bincount (region_means)", ours),
                           ("skimage regionprops", skimage_props),
                           ("loop of boolean masks", mask_loop)):
        seconds, result = _best_of(args.repeat, function)
        timings[name] = seconds / args.images
        results[name] = result
    for result in results.values():
        for got, expected in zip(result, results["bincount (region_means)"], strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-9)
    print(f"{args.height}x{args.width} score maps, {n_regions} {args.method} superpixels; "
          f"time per image (best of {args.repeat})\n")
    print("| method | ms per image | slower than bincount |")
    print("|---|---|---|")
    base = timings["bincount (region_means)"]
    for name, seconds in timings.items():
        print(f"| {name} | {1000 * seconds:.2f} | {seconds / base:.1f}x |")


if __name__ == "__main__":
    main()
