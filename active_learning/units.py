"""Selection units: what an annotator labels, what the budget counts and what ``pool.npz`` records.

A task's training samples and its units need not be the same thing:

* :class:`OneToOneUnits` (classification, detection, image-level segmentation): unit = sample =
  image.
* :class:`GroupedUnits` (pose): unit = image, samples = the persons in it
  (``unit_of_sample: int64 [S]``); an image's score aggregates its persons' (max, mean or sum).
  An image with no sample gives nothing to train on, so it is never a candidate.
* :class:`RegionUnits` (segmentation with superpixels): unit = (image, region id); the samples
  are the images. Unit ids are laid out image after image: image ``i`` owns the units
  ``offsets[i] .. offsets[i + 1] - 1``, region ``r`` of image ``i`` is unit ``offsets[i] + r``.
  Scores are per pixel and are averaged per region with one ``bincount`` per image.

Every index here is absolute: sample indices into the task's ``pool_set`` / ``train_set``,
unit indices into ``pool.npz``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

UNIT_REDUCTIONS = ("max", "mean", "sum")


class SelectionUnits:
    """One unit per sample (the default). Subclasses change how units map to samples."""

    kind = "samples"
    dense_scores = False     # True: the loop scores pixels (reduction="none") and the units pool them

    def __init__(self, n_samples: int) -> None:
        self.n_samples = int(n_samples)
        self.n_units = int(n_samples)

    def samples_of(self, units: np.ndarray) -> np.ndarray:
        """int64 sorted sample indices that the ``units`` hold."""
        return np.unique(np.asarray(units, dtype=np.int64))

    def membership(self, units: np.ndarray) -> np.ndarray:
        """bool [n_units]: True for the given units."""
        member = np.zeros(self.n_units, dtype=bool)
        member[np.asarray(units, dtype=np.int64)] = True
        return member

    def selectable(self) -> np.ndarray:
        """bool [n_units]: units with something to label (and to train on)."""
        return np.ones(self.n_units, dtype=bool)

    def unit_scores(self, samples: np.ndarray, scores: np.ndarray | Sequence[np.ndarray],
                    reduction: str = "max") -> tuple[np.ndarray, np.ndarray]:
        """Scores of the scored samples -> (unit ids int64 [V], unit scores float64 [V])."""
        return np.asarray(samples, dtype=np.int64), np.asarray(scores, dtype=np.float64)

    def unit_rows(self, samples: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample rows ``[S, D]`` (embeddings) -> (unit ids [V], per-unit mean rows [V, D])."""
        return np.asarray(samples, dtype=np.int64), np.asarray(rows)

    def cost(self, labeled_units: np.ndarray) -> dict[str, float]:
        """Annotation cost of a labeled set, for ``metrics.csv`` (beyond the unit count)."""
        return {}

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "n_units": self.n_units, "n_samples": self.n_samples}


OneToOneUnits = SelectionUnits


class GroupedUnits(SelectionUnits):
    """Units that each hold 0..n samples, e.g. images holding persons.

    Args:
        unit_of_sample: int [S], the unit (image) of each sample (person).
        n_units: how many units there are (units without samples included).
        sample_label: what a sample is called in ``metrics.csv`` (``n_<label>s`` column).
    """

    kind = "grouped"

    def __init__(self, unit_of_sample: np.ndarray, n_units: int, sample_label: str = "sample") -> None:
        unit_of_sample = np.asarray(unit_of_sample, dtype=np.int64).reshape(-1)
        if len(unit_of_sample) and (unit_of_sample.min() < 0 or unit_of_sample.max() >= n_units):
            raise ValueError(f"unit_of_sample must lie in [0, {n_units}), got values in "
                             f"[{unit_of_sample.min()}, {unit_of_sample.max()}]")
        self.unit_of_sample = unit_of_sample
        self.n_samples = len(unit_of_sample)
        self.n_units = int(n_units)
        self.sample_label = sample_label
        self._sizes = np.bincount(unit_of_sample, minlength=self.n_units)   # samples per unit

    def samples_of(self, units: np.ndarray) -> np.ndarray:
        return np.flatnonzero(self.membership(units)[self.unit_of_sample])

    def selectable(self) -> np.ndarray:
        return self._sizes > 0

    def unit_scores(self, samples, scores, reduction: str = "max"):
        if reduction not in UNIT_REDUCTIONS:
            raise ValueError(f"unit reduction must be one of {UNIT_REDUCTIONS}, got {reduction!r}")
        samples = np.asarray(samples, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        unit_ids, local = np.unique(self.unit_of_sample[samples], return_inverse=True)
        if reduction == "max":
            pooled = np.full(len(unit_ids), -np.inf)
            np.maximum.at(pooled, local, scores)
        else:
            pooled = np.bincount(local, weights=scores, minlength=len(unit_ids))
            if reduction == "mean":
                pooled /= np.bincount(local, minlength=len(unit_ids))
        return unit_ids, pooled

    def unit_rows(self, samples, rows):
        samples = np.asarray(samples, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.float64)
        unit_ids, local = np.unique(self.unit_of_sample[samples], return_inverse=True)
        sums = np.zeros((len(unit_ids), rows.shape[1]))
        np.add.at(sums, local, rows)
        return unit_ids, sums / np.bincount(local, minlength=len(unit_ids))[:, None]

    def cost(self, labeled_units):
        return {f"n_{self.sample_label}s": int(self._sizes[np.asarray(labeled_units, dtype=np.int64)].sum())}

    def describe(self):
        return {**super().describe(), "sample_label": self.sample_label}


class RegionUnits(SelectionUnits):
    """Units that are regions (superpixels) of images; the samples are the images.

    Args:
        region_pixels: for each image ``i``, int [R_i] pixel count of each of its regions
            (region ids ``0..R_i-1``; a region map's ``np.bincount``).
        region_map: ``image index -> int [H, W]`` region ids of that image, at the resolution of
            the score maps the adapter computes on ``pool_set``.
    """

    kind = "regions"
    dense_scores = True

    def __init__(self, region_pixels: Sequence[np.ndarray],
                 region_map: Callable[[int], np.ndarray]) -> None:
        counts = np.array([len(pixels) for pixels in region_pixels], dtype=np.int64)
        if len(counts) == 0 or (counts == 0).any():
            raise ValueError("every image needs at least one region")
        self.offsets = np.concatenate([[0], np.cumsum(counts)])            # [I + 1]
        self.region_pixels = np.concatenate([np.asarray(p, dtype=np.int64) for p in region_pixels])
        self.unit_image = np.repeat(np.arange(len(counts)), counts)        # [n_units]
        self.region_map = region_map
        self.n_samples = len(counts)
        self.n_units = int(self.offsets[-1])

    @classmethod
    def from_maps(cls, maps: Sequence[np.ndarray] | Callable[[int], np.ndarray],
                  n_images: int | None = None) -> "RegionUnits":
        """Build from region maps (a list, or a callable with ``n_images``); ids 0..R-1 each."""
        get = maps if callable(maps) else (lambda index: maps[index])
        count = len(maps) if n_images is None else n_images
        pixels = []
        for index in range(count):
            region_map = np.asarray(get(index))
            if region_map.min() < 0:
                raise ValueError(f"region map {index} has negative ids")
            pixels.append(np.bincount(region_map.ravel()))
            if (pixels[-1] == 0).any():
                raise ValueError(f"region map {index} skips region ids "
                                 f"{np.flatnonzero(pixels[-1] == 0)[:5].tolist()}: relabel to 0..R-1")
        return cls(pixels, get)

    def image_and_region(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit ids -> (image indices, region ids), each int64 [K]."""
        units = np.asarray(units, dtype=np.int64)
        images = self.unit_image[units]
        return images, units - self.offsets[images]

    def units_of_image(self, image: int) -> np.ndarray:
        return np.arange(self.offsets[image], self.offsets[image + 1])

    def samples_of(self, units):
        return np.unique(self.unit_image[np.asarray(units, dtype=np.int64)])

    def unit_scores(self, samples, scores, reduction: str = "mean"):
        """Per-pixel score maps ``[H, W]`` of ``samples`` -> every region's mean score.

        One ``bincount`` per image (weights = the score map) instead of a loop over regions.
        """
        from .superpixels import region_means

        unit_ids, pooled = [], []
        for image, score_map in zip(np.asarray(samples, dtype=np.int64), scores):
            units = self.units_of_image(int(image))
            pooled.append(region_means(np.asarray(score_map), self.region_map(int(image)),
                                       n_regions=len(units), counts=self.region_pixels[units]))
            unit_ids.append(units)
        return np.concatenate(unit_ids), np.concatenate(pooled)

    def unit_rows(self, samples, rows):
        raise ValueError("region units have no per-region embedding: core-set, BADGE and "
                         "discriminative select images, not superpixels")

    def labeled_mask(self, image: int, labeled_units: np.ndarray | None = None,
                     labeled: np.ndarray | None = None) -> np.ndarray:
        """bool [H, W]: the pixels of ``image`` in labeled regions.

        ``labeled`` is a bool [n_units] membership vector (fast path for many images).
        """
        if labeled is None:
            labeled = self.membership(labeled_units)
        region_labeled = labeled[self.offsets[image]:self.offsets[image + 1]]   # [R_i]
        return region_labeled[self.region_map(int(image))]

    def cost(self, labeled_units):
        labeled_units = np.asarray(labeled_units, dtype=np.int64)
        return {"n_images": int(len(np.unique(self.unit_image[labeled_units]))),
                "labeled_pixel_fraction": float(self.region_pixels[labeled_units].sum()
                                                / self.region_pixels.sum())}
