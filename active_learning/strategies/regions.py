"""Choosing superpixels from per-region statistics: class balance, impurity, spreading.

The region units pool each candidate image's per-pixel scores into one mean per region. The
strategies here read more of the image than that mean (:class:`RegionCandidates`): how many of
a region's pixels the model predicts as each class, and which regions touch (adjacency from
the region map). They choose with :func:`choose_regions`, and every region score strategy takes
the per-image quota :data:`MAX_REGIONS_PER_IMAGE`.

* **Class-balanced ratio** (:func:`class_balanced_ratio`; Cai et al., CVPR 2021, "Revisiting
  superpixels for active learning in semantic segmentation with realistic annotation costs",
  their code's ``scripts/region_selection_using_al.py``, as read in the project's reference
  notes): a region's uncertainty is its pixels' mean best-vs-second-best ratio ``p2 / p1``,
  min-max normalised over the candidates; its weight is ``exp(-share_c)``, ``share_c`` the
  fraction of candidate regions whose dominant predicted class is ``c`` (the region's own
  dominant predicted class): regions of classes the model predicts often weigh less.
* **RIPU on superpixels** (:func:`ripu`; Xie et al., CVPR 2022, "Towards fewer annotations:
  active learning via region impurity and prediction uncertainty for domain adaptive semantic
  segmentation", ``core/active/floating_region.py``): over a region and its adjacent regions,
  impurity = entropy of the predicted-class histogram / log C, uncertainty = mean pixel entropy
  / log C; score = impurity x uncertainty. Chosen best first with neighbour suppression: a
  chosen region's neighbours are skipped until every candidate has been passed once, so one
  image's budget spreads over its boundaries (RIPU suppresses a window around each pick).
* **Class-balanced random** (:func:`class_balanced_random`): a class drawn uniformly among the
  dominant predicted classes of the candidates left, then a region uniformly among that class's;
  repeated without replacement (the class-aware random baseline nnActive asks for).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from active_learning.strategies.options import StrategyOption

MAX_REGIONS_PER_IMAGE = StrategyOption(
    "max_regions_per_image", int, 0,
    "region strategies: at most this many superpixels of one image per cycle (0 = no cap; "
    "when the cap leaves too few candidates the rest of the budget ignores it, with a warning)",
    check=lambda value: value >= 0, requirement="must be >= 0", metavar="K")


@dataclass
class RegionCandidates:
    """The regions one choice sees: every region of the scored images, candidates or not.

    Attributes:
        unit_ids: int64 [V] the regions' unit ids.
        images: int64 [V] the image (sample) of each region.
        scores: float64 [V] each region's mean pixel score.
        candidate: bool [V] may be chosen (not labeled yet, drawn this cycle).
        pixels: int64 [V] pixels per region (None: not pooled).
        class_counts: int64 [V, C] pixels of each predicted class per region (None: not pooled).
        neighbours: int64 [E, 2] positions (into V) of adjacent regions, each pair once
            (None: not pooled).
    """

    unit_ids: np.ndarray
    images: np.ndarray
    scores: np.ndarray
    candidate: np.ndarray
    pixels: np.ndarray | None = None
    class_counts: np.ndarray | None = None
    neighbours: np.ndarray | None = None

    def adjacency(self) -> list[np.ndarray]:
        """For each region, the positions of its neighbours: V arrays of int64."""
        count = len(self.unit_ids)
        pairs = np.zeros((0, 2), dtype=np.int64) if self.neighbours is None else self.neighbours
        both = np.concatenate([pairs, pairs[:, ::-1]])                        # [2E, 2]
        order = np.argsort(both[:, 0], kind="stable")
        starts = np.searchsorted(both[order, 0], np.arange(count + 1))
        targets = both[order, 1]
        return [targets[starts[i]:starts[i + 1]] for i in range(count)]

    def dominant_classes(self) -> np.ndarray:
        """int64 [V]: each region's most predicted class (ties: the smallest)."""
        if self.class_counts is None:
            raise ValueError("the regions' predicted classes were not pooled")
        return np.asarray(self.class_counts).argmax(axis=1).astype(np.int64)


def pick_in_order(order: np.ndarray, images: np.ndarray, budget: int, cap: int = 0,
                  adjacency: list[np.ndarray] | None = None) -> np.ndarray:
    """Walk ``order`` (positions, best first) and pick ``budget`` of them: int64 [K], in pick order.

    A position is skipped when its image already holds ``cap`` picks (``cap`` > 0), or, with
    ``adjacency``, when it touches a region picked in the same pass over ``order``; passes
    repeat over what is left (suppression reset) until the budget is met. When the cap alone
    leaves too few, the rest of the budget is taken in order without it, with a warning.
    """
    order = np.asarray(order, dtype=np.int64)
    images = np.asarray(images, dtype=np.int64)
    budget = min(int(budget), len(order))
    taken = np.zeros(len(images), dtype=bool)
    per_image: dict[int, int] = {}
    picks: list[int] = []
    while len(picks) < budget:
        suppressed = np.zeros(len(images), dtype=bool)
        before = len(picks)
        for position in order:
            if len(picks) == budget:
                break
            if taken[position] or suppressed[position]:
                continue
            image = int(images[position])
            if cap and per_image.get(image, 0) >= cap:
                continue
            picks.append(int(position))
            taken[position] = True
            per_image[image] = per_image.get(image, 0) + 1
            if adjacency is not None:
                suppressed[adjacency[position]] = True
        if len(picks) == before:   # only the cap stops the rest
            rest = [int(p) for p in order if not taken[p]][:budget - len(picks)]
            warnings.warn(f"--max-regions-per-image {cap} leaves {len(picks)} candidates for a "
                          f"budget of {budget}; the other {len(rest)} ignore the cap",
                          stacklevel=3)
            picks += rest
    return np.asarray(picks, dtype=np.int64)


def _ranked(scores: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Positions of the candidates, best score first (ties: the earlier position)."""
    positions = np.flatnonzero(candidate)
    return positions[np.argsort(-scores[positions], kind="stable")]


def top_regions(regions: RegionCandidates, budget: int, seed: int, *,
                max_regions_per_image: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The plain region score's choice: the best means, at most the cap per image.

    Returns (positions into the regions int64 [K] best first, their scores float64 [K]).
    """
    order = _ranked(regions.scores, regions.candidate)
    if not max_regions_per_image:
        picks = order[:budget]
    else:
        picks = pick_in_order(order, regions.images, budget, max_regions_per_image)
    return picks, regions.scores[picks]


def class_weights(dominant: np.ndarray, n_classes: int) -> np.ndarray:
    """Cai et al.'s class weights ``exp(-share_c)``: float64 [C], ``share_c`` the fraction of
    the given regions (their dominant predicted classes, int [V]) predicted as ``c``."""
    dominant = np.asarray(dominant, dtype=np.int64)
    share = np.bincount(dominant, minlength=n_classes) / max(len(dominant), 1)
    return np.exp(-share)


def class_balanced_ratio(regions: RegionCandidates, budget: int, seed: int, *,
                         max_regions_per_image: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cai et al.'s score: min-max normalised mean ratio x ``exp(-share of its class)``.

    ``regions.scores`` are the mean ``p2 / p1`` of each region's pixels; the normalisation and
    the shares are over the candidates. Returns (positions [K] best first, scores [K]).
    """
    candidate = regions.candidate
    dominant = regions.dominant_classes()
    assert regions.class_counts is not None
    weights = class_weights(dominant[candidate], regions.class_counts.shape[1])
    uncertainty = np.asarray(regions.scores, dtype=np.float64)
    low, high = uncertainty[candidate].min(), uncertainty[candidate].max()
    # a constant uncertainty leaves the class weights to decide
    normalised = (uncertainty - low) / (high - low) if high > low else np.ones_like(uncertainty)
    scores = normalised * weights[dominant]
    order = _ranked(scores, candidate)
    picks = pick_in_order(order, regions.images, budget, max_regions_per_image)
    return picks, scores[picks]


def ripu_scores(regions: RegionCandidates) -> np.ndarray:
    """RIPU's region score over each region and its neighbours: float64 [V].

    impurity = entropy of the summed predicted-class histogram / log C; uncertainty = the
    neighbourhood's mean pixel score (``regions.scores``: mean pixel entropy) / log C.
    """
    if regions.class_counts is None or regions.pixels is None:
        raise ValueError("RIPU needs the regions' predicted classes and pixel counts")
    counts = np.asarray(regions.class_counts, dtype=np.float64)               # [V, C]
    pixels = np.asarray(regions.pixels, dtype=np.float64)                     # [V]
    sums = np.asarray(regions.scores, dtype=np.float64) * pixels              # [V] entropy sums
    pairs = np.zeros((0, 2), dtype=np.int64) if regions.neighbours is None else regions.neighbours
    window_counts, window_sums, window_pixels = counts.copy(), sums.copy(), pixels.copy()
    for a, b in ((0, 1), (1, 0)):   # each pair adds each side to the other's window
        np.add.at(window_counts, pairs[:, a], counts[pairs[:, b]])
        np.add.at(window_sums, pairs[:, a], sums[pairs[:, b]])
        np.add.at(window_pixels, pairs[:, a], pixels[pairs[:, b]])
    log_c = math.log(counts.shape[1]) if counts.shape[1] > 1 else 1.0
    share = window_counts / np.maximum(window_counts.sum(axis=1, keepdims=True), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        impurity = -np.where(share > 0, share * np.log(share), 0.0).sum(axis=1) / log_c
    uncertainty = window_sums / np.maximum(window_pixels, 1.0) / log_c
    return impurity * uncertainty


def ripu(regions: RegionCandidates, budget: int, seed: int, *,
         max_regions_per_image: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RIPU on superpixels: best :func:`ripu_scores` first, a pick's neighbours suppressed
    until the next pass. Returns (positions [K] in pick order, scores [K])."""
    scores = ripu_scores(regions)
    order = _ranked(scores, regions.candidate)
    picks = pick_in_order(order, regions.images, budget, max_regions_per_image,
                          adjacency=regions.adjacency())
    return picks, scores[picks]


def class_balanced_random(regions: RegionCandidates, budget: int, seed: int, *,
                          max_regions_per_image: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform over the candidates' dominant predicted classes, then uniform within the class,
    without replacement: (positions [K] in draw order, rank scores [K]).

    Each draw picks a class uniformly among those with a candidate left, then one of its
    candidates uniformly; a candidate of an image already at the cap is dropped and drawn again.
    """
    rng = np.random.default_rng(seed)
    positions = np.flatnonzero(regions.candidate)
    dominant = regions.dominant_classes()[positions]
    # a uniformly shuffled queue per class: popping its head is a uniform draw without replacement
    queues = {int(c): list(rng.permutation(positions[dominant == c])) for c in np.unique(dominant)}
    budget = min(int(budget), len(positions))
    per_image: dict[int, int] = {}
    skipped: list[int] = []
    picks: list[int] = []
    while len(picks) < budget and queues:
        classes = sorted(queues)
        chosen = classes[int(rng.integers(len(classes)))]
        position = int(queues[chosen].pop(0))
        if not queues[chosen]:
            del queues[chosen]
        image = int(regions.images[position])
        if max_regions_per_image and per_image.get(image, 0) >= max_regions_per_image:
            skipped.append(position)
            continue
        picks.append(position)
        per_image[image] = per_image.get(image, 0) + 1
    if len(picks) < budget:   # only the cap stops the rest
        warnings.warn(f"--max-regions-per-image {max_regions_per_image} leaves {len(picks)} "
                      f"candidates for a budget of {budget}; the other "
                      f"{budget - len(picks)} ignore the cap", stacklevel=2)
        picks += skipped[:budget - len(picks)]
    count = len(picks)
    return np.asarray(picks, dtype=np.int64), (count - np.arange(count)) / max(count, 1)


def choose_regions(select: Any, regions: RegionCandidates, budget: int, seed: int,
                   options: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A region strategy's choice: ``select`` (a strategy's ``select_regions``, or None for
    :func:`top_regions`) over ``regions`` with the strategy's ``options``.

    Returns (unit ids int64 [K] best first, scores float64 [K]).
    """
    available = int(np.asarray(regions.candidate).sum())
    if available <= 0:
        raise ValueError("the unlabeled pool is empty: there is nothing left to select")
    if budget > available:
        warnings.warn(f"budget {budget} is larger than the {available} unlabeled items left; "
                      f"selecting all {available}", stacklevel=3)
        budget = available
    if not np.isfinite(np.asarray(regions.scores)[regions.candidate]).all():
        raise ValueError("scores contain NaN or infinite values")
    picks, scores = (select or top_regions)(regions, budget, seed, **options)
    picks = np.asarray(picks, dtype=np.int64)
    return regions.unit_ids[picks].astype(np.int64), np.asarray(scores, dtype=np.float64)
