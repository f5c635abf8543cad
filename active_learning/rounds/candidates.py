"""What a round scores: the project's images, less the labeled ones and those out for
labeling (how many it proposes is ``run_setup.size_run``'s, as for every run)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from active_learning.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "candidates_for_round", "find_images"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def find_images(folder: Path) -> list[str]:
    """Every image under ``folder`` (any depth, links followed), as paths relative to it with
    ``/``, sorted."""
    if not folder.is_dir():
        raise DataError(f"--images {folder} is not a folder")
    found = sorted(Path(root, name).relative_to(folder).as_posix()
                   for root, _, names in os.walk(folder, followlinks=True) for name in names
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise DataError(f"no image files under {folder}")
    return found


def candidates_for_round(images: Sequence[str], labeled: set[str], out_for_labeling: set[str],
                         repropose: bool) -> list[str]:
    """The images a round scores: neither labeled nor (unless ``repropose``) out for
    labeling, in ``images``' order."""
    skipped = set(labeled) | (set() if repropose else set(out_for_labeling))
    return [name for name in images if name not in skipped]
