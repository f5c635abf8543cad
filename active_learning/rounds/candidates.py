"""What a round scores: the project's images, less the labeled ones and those out for
labeling (how many it proposes is ``run_setup.size_run``'s, as for every run)."""
from __future__ import annotations

from collections.abc import Sequence


def candidates_for_round(images: Sequence[str], labeled: set[str], out_for_labeling: set[str],
                         repropose: bool) -> list[str]:
    """The images a round scores: neither labeled nor (unless ``repropose``) out for
    labeling, in ``images``' order."""
    skipped = set(labeled) | (set() if repropose else set(out_for_labeling))
    return [name for name in images if name not in skipped]
