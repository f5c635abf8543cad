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

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from active_learning.files.export import (
    csv_values,
    write_entropies_csv,
    write_region_csv,
    write_scores_csv,
)
from active_learning.strategies import GRAD_EMBEDDING, MC_PROBS, PROBS, Strategy

UNIT_REDUCTIONS = ("max", "mean", "sum")


class ScoredBatch(NamedTuple):
    """One batch of scores on its way to the units, with everything the units need to pool it
    (nothing is read from elsewhere, so batches can be pooled in any order).

    Attributes:
        samples: int [B] the batch's sample indices.
        scores: float [B] one score per sample, or ``[B, *dense]`` per location (pixels, boxes).
        slot_counts: int [B] how many of each sample's leading score slots are filled (an
            image's detections, the rest padding), or None when every slot is.
        classes: int [B, *dense] the predicted class of each location (a region-context
            strategy's, ``Strategy.region_context``), or None.
        n_classes: how many classes ``classes`` counts (0 without them).
    """

    samples: np.ndarray
    scores: Any
    slot_counts: np.ndarray | None = None
    classes: np.ndarray | None = None
    n_classes: int = 0


class SelectionUnits:
    """One unit per sample (the default). Subclasses change how units map to samples.

    The loop and the selection never ask what kind of units they hold: everything that differs
    between unit kinds is a method here (drawing the initial set and the candidates, pooling
    scores and embeddings, the cost columns, the files a selection writes, the learning curve's
    x axis). ``kind`` only names the class in ``args.json``.
    """

    kind = "samples"
    dense_scores = False        # True: the loop scores pixels (reduction="none") and the units
                                # pool them
    one_sample_per_unit = True  # unit i is sample i: a sample's embedding is its unit's
    x_axis = "n_labeled"        # the learning curve's x axis (a metrics.csv column)
    item_label = "images"       # what an initial-set size counts, in messages
    unit_label = "images"       # what a budget counts, in messages

    def __init__(self, n_samples: int) -> None:
        self.n_samples = int(n_samples)
        self.n_units = int(n_samples)

    # ---- which units hold which samples ------------------------------------------------

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

    def selectable_items(self) -> np.ndarray:
        """bool [items]: the items (images) an initial set can be drawn from; the units here."""
        return self.selectable()

    @property
    def n_items(self) -> int:
        """How many items (images) an initial-set size can draw from."""
        return int(self.selectable_items().sum())

    def units_of_items(self, items: np.ndarray) -> np.ndarray:
        """int64 [K] every unit of the given items (images): the units themselves here."""
        return np.asarray(items, dtype=np.int64)

    @property
    def item_count(self) -> int:
        """How many items (images) the pool holds, selectable or not: what ``item_name`` names."""
        return self.n_units

    def units_per_item(self) -> np.ndarray:
        """int64 [item_count]: how many units each item holds; one each here."""
        return np.ones(self.n_units, dtype=np.int64)

    # ---- drawing -----------------------------------------------------------------------

    def draw_initial(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """The units of ``count`` random selectable items (images): the initial labeled set.

        Every unit kind draws its items with the same ``rng`` calls, so image-level and
        superpixel-level runs of one seed start from the same images.
        """
        selectable = self.selectable_items()
        if selectable.all():
            return self.units_of_items(rng.choice(len(selectable), size=count, replace=False))
        return self.units_of_items(rng.choice(np.flatnonzero(selectable), size=count,
                                              replace=False))

    def draw_candidates(self, unlabeled: np.ndarray, subset_size: int,
                        rng: np.random.Generator) -> np.ndarray:
        """A random subset of about ``subset_size`` of the ``unlabeled`` units, ascending."""
        return np.sort(rng.choice(unlabeled, size=subset_size, replace=False))

    # ---- strategies --------------------------------------------------------------------

    @classmethod
    def refusal(cls, strategy: Strategy) -> str | None:
        """Why ``strategy`` cannot select units of this class, or None when it can."""
        if strategy.region_level:
            return (f"strategy {strategy.name!r} selects superpixels; this task selects whole "
                    f"{cls.item_label}")
        return None

    def pool_scores(self, batches: Iterable[ScoredBatch | tuple[np.ndarray, Any]],
                    reduction: str = "max") -> tuple[np.ndarray, np.ndarray]:
        """Per-sample scores, batch by batch -> (unit ids int64 [V], unit scores float64 [V]).

        ``batches`` yields :class:`ScoredBatch` (or ``(sample indices int [B], scores [B])``
        pairs); it is consumed lazily, so a subclass can pool each batch as it comes and hold no
        more than one batch of it.
        """
        ids, values = [], []
        for samples, scores, *_ in map(scored_batch, batches):
            ids.append(np.asarray(samples, dtype=np.int64).reshape(-1))
            values.append(np.asarray(scores, dtype=np.float64).reshape(-1))
            if len(ids[-1]) != len(values[-1]):   # a bug upstream, not bad input
                raise RuntimeError(f"a batch of {len(ids[-1])} samples came with "
                                   f"{len(values[-1])} scores")
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return self._pool(np.concatenate(ids), np.concatenate(values), reduction)

    def _pool(self, samples: np.ndarray, scores: np.ndarray,
              reduction: str) -> tuple[np.ndarray, np.ndarray]:
        """Scores of samples [S] -> scores of their units; one unit per sample here."""
        return samples, scores

    def pool_regions(self, batches: Iterable[ScoredBatch]) -> dict[str, np.ndarray]:
        """Per-pixel scores and predicted classes -> per-region statistics (region units
        only: ``RegionUnits.pool_regions``)."""
        raise ValueError(f"{self.unit_label} are not regions: a region context needs "
                         "superpixel units")

    def items_of(self, units: np.ndarray) -> np.ndarray:
        """int64 [K]: the item (image) each unit belongs to; the unit itself here."""
        return np.asarray(units, dtype=np.int64)

    def unit_scores(self, samples: np.ndarray, scores: np.ndarray | Sequence[np.ndarray],
                    reduction: str = "max") -> tuple[np.ndarray, np.ndarray]:
        """Scores of the scored samples -> (unit ids int64 [V], unit scores float64 [V])."""
        return self.pool_scores([(np.asarray(samples), scores)], reduction)

    def unit_rows(self, samples: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample rows ``[S, D]`` (embeddings) -> (unit ids [V], per-unit mean rows [V, D])."""
        return np.asarray(samples, dtype=np.int64), np.asarray(rows)

    # ---- what a labeled set costs, what a selection writes -----------------------------

    def cost(self, labeled_units: np.ndarray,
             labeled_at: np.ndarray | None = None) -> dict[str, float]:
        """Annotation cost of a labeled set, for ``metrics.csv`` (beyond the unit count).

        ``labeled_at`` (int [L], optional) is the cycle each of ``labeled_units`` was labeled
        in (``pool.npz``'s ``labeled_at``), for a cost that depends on the order of labeling
        (an annotator pays each cycle's additions); None: all labeled at once.
        """
        return {}

    def write_selection(self, run_dir: Path, cycle: int, units: np.ndarray, scores: np.ndarray,
                        item_name: Callable[[int], str]) -> list[Path]:
        """Write the files an annotator needs for the chosen units (best first, int64 [K]).

        Returns the paths written: here the priority CSV ``priorities/cycle_XX.csv``.
        """
        path = run_dir / "priorities" / f"cycle_{cycle:02d}.csv"
        write_entropies_csv(item_name, units, scores, path)
        return [path]

    def write_scores(self, run_dir: Path, cycle: int, units: np.ndarray, scores: np.ndarray,
                     scored: Mapping[str, np.ndarray],
                     item_name: Callable[[int], str]) -> list[Path]:
        """Write ``scores/cycle_XX.csv``: every scored candidate's ``name,score,rank,chosen``
        (``files.export.write_scores_csv``), the chosen ``units`` (best first, int64 [K],
        their selection ``scores`` float [K]) first. ``scored``: the strategy's ``unit_ids``
        int64 [N] and ``scores`` float [N] (empty: a strategy that scores no candidate, and
        the file lists the chosen). Returns the paths written."""
        path = run_dir / "scores" / f"cycle_{cycle:02d}.csv"
        write_scores_csv(item_name, units, scores, scored.get("unit_ids"), scored.get("scores"),
                         path)
        return [path]

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

    one_sample_per_unit = False

    kind = "grouped"
    sample_label = "sample"

    def __init__(self, unit_of_sample: np.ndarray, n_units: int,
                 sample_label: str = "sample") -> None:
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

    @classmethod
    def refusal(cls, strategy: Strategy) -> str | None:
        if GRAD_EMBEDDING in strategy.needs:
            return (f"strategy {strategy.name!r} needs one gradient embedding per image; images "
                    f"that group several {cls.sample_label}s have none (use coreset)")
        if strategy.is_set_strategy and strategy.needs & {PROBS, MC_PROBS}:
            # only embeddings are pooled per image: a set choice over distributions would get
            # one row per sample, not per image
            return (f"strategy {strategy.name!r} needs one class distribution per image; images "
                    f"that group several {cls.sample_label}s have none")
        return super().refusal(strategy)

    def _pool(self, samples, scores, reduction):
        """An image's score from its samples': their max, mean or sum."""
        if reduction not in UNIT_REDUCTIONS:
            raise ValueError(f"unit reduction must be one of {UNIT_REDUCTIONS}, got {reduction!r}")
        unit_ids, local = np.unique(self.unit_of_sample[samples], return_inverse=True)
        if reduction == "max":
            pooled = np.full(len(unit_ids), -np.inf)
            np.maximum.at(pooled, local, scores)
        else:
            pooled = np.bincount(local, weights=scores, minlength=len(unit_ids))
            if reduction == "mean":
                pooled = pooled / np.bincount(local, minlength=len(unit_ids))
        return unit_ids, pooled

    def unit_rows(self, samples, rows):
        samples = np.asarray(samples, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.float64)
        unit_ids, local = np.unique(self.unit_of_sample[samples], return_inverse=True)
        sums = np.zeros((len(unit_ids), rows.shape[1]))
        np.add.at(sums, local, rows)
        return unit_ids, sums / np.bincount(local, minlength=len(unit_ids))[:, None]

    def cost(self, labeled_units, labeled_at=None):
        labeled = np.asarray(labeled_units, dtype=np.int64)
        return {f"n_{self.sample_label}s": int(self._sizes[labeled].sum())}

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

    one_sample_per_unit = False

    kind = "regions"
    dense_scores = True
    x_axis = "labeled_pixel_fraction"
    unit_label = "superpixels"

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
                  n_images: int | None = None) -> RegionUnits:
        """Build from region maps (a list, or a callable with ``n_images``); ids 0..R-1 each."""
        get: Callable[[int], np.ndarray]
        if callable(maps):
            if n_images is None:
                raise ValueError("from_maps needs n_images when maps is a callable")
            get, count = maps, n_images
        else:
            get, count = maps.__getitem__, (len(maps) if n_images is None else n_images)
        pixels = []
        for index in range(count):
            region_map = np.asarray(get(index))
            if region_map.min() < 0:
                raise ValueError(f"region map {index} has negative ids")
            pixels.append(np.bincount(region_map.ravel()))
            if (pixels[-1] == 0).any():
                raise ValueError(f"region map {index} skips region ids "
                                 f"{np.flatnonzero(pixels[-1] == 0)[:5].tolist()}: "
                                 "relabel to 0..R-1")
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

    def selectable_items(self):
        """Every image: each has at least one region."""
        return np.ones(self.n_samples, dtype=bool)

    @property
    def item_count(self):
        return self.n_samples

    def units_per_item(self):
        return np.diff(self.offsets)

    def units_of_items(self, items):
        """Every region of the given images."""
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        if not len(items):
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.units_of_image(int(image)) for image in items])

    def draw_candidates(self, unlabeled, subset_size, rng):
        """Every unlabeled region of random images, until ``subset_size`` regions.

        Scoring costs a forward pass per image, whatever number of its regions are candidates,
        and training costs a pass per image with any labeled region: drawing regions one by one
        would touch nearly every image of the pool for both.
        """
        images = self.unit_image[unlabeled]                                   # [U]
        order = rng.permutation(np.unique(images))
        per_image = np.bincount(images, minlength=self.n_samples)[order]     # unlabeled regions
        taken = order[: int(np.searchsorted(np.cumsum(per_image), subset_size)) + 1]
        return unlabeled[np.isin(images, taken)]

    @classmethod
    def refusal(cls, strategy):
        pixel_level = not strategy.needs or (not strategy.is_set_strategy
                                             and strategy.needs <= {PROBS, MC_PROBS})
        if not pixel_level:
            return (f"strategy {strategy.name!r} scores whole images; superpixel selection needs "
                    "a per-pixel score (random, entropy-like or MC-dropout strategies)")
        return None

    def pool_scores(self, batches, reduction="mean"):
        """Per-pixel score maps ``[B, H, W]`` of each batch -> every region's mean score.

        Each batch is pooled as it comes (one ``bincount`` per image), so scoring holds one
        batch of maps, never the candidates' maps all at once. ``reduction`` does not apply: a
        region's score is its pixels' mean.
        """
        from active_learning.loop.superpixels import region_means

        unit_ids, pooled = [], []
        for samples, score_maps, *_ in map(scored_batch, batches):
            for image, score_map in zip(np.asarray(samples, dtype=np.int64), score_maps,
                                        strict=True):
                units = self.units_of_image(int(image))
                pooled.append(region_means(np.asarray(score_map), self.region_map(int(image)),
                                           n_regions=len(units), counts=self.region_pixels[units]))
                unit_ids.append(units)
            del score_maps   # this batch's maps are pooled: let them go before the next batch
        if not unit_ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(unit_ids), np.concatenate(pooled)

    def items_of(self, units):
        return self.unit_image[np.asarray(units, dtype=np.int64)]

    def pool_regions(self, batches):
        """Per-pixel score maps and predicted classes ``[B, H, W]`` of each batch -> every
        region's statistics, one batch at a time (never the candidates' maps at once).

        Returns ``unit_ids`` int64 [V], ``scores`` float64 [V] (mean pixel score), ``pixels``
        int64 [V], ``class_counts`` int64 [V, C] (pixels predicted as each class) and
        ``neighbours`` int64 [E, 2] (unit ids of 4-adjacent regions, each pair once, the
        smaller id first).
        """
        from active_learning.loop.superpixels import region_adjacency, region_means

        parts: dict[str, list[np.ndarray]] = {"unit_ids": [], "scores": [], "pixels": [],
                                              "class_counts": [], "neighbours": []}
        n_classes = 0
        for batch in batches:
            if batch.classes is None:
                raise RuntimeError("a region context needs the batch's predicted classes")
            n_classes = batch.n_classes
            for image, score_map, classes in zip(np.asarray(batch.samples, dtype=np.int64),
                                                 batch.scores, batch.classes, strict=True):
                units = self.units_of_image(int(image))
                region_map = self.region_map(int(image))
                counts = self.region_pixels[units]
                parts["unit_ids"].append(units)
                parts["pixels"].append(counts)
                parts["scores"].append(region_means(np.asarray(score_map), region_map,
                                                    n_regions=len(units), counts=counts))
                labels = np.asarray(region_map).ravel().astype(np.int64) * n_classes
                parts["class_counts"].append(np.bincount(
                    labels + np.asarray(classes).ravel(),
                    minlength=len(units) * n_classes).reshape(len(units), n_classes))
                parts["neighbours"].append(region_adjacency(region_map) + units[0])
        if not parts["unit_ids"]:
            empty = np.zeros(0, dtype=np.int64)
            return {"unit_ids": empty, "scores": np.zeros(0), "pixels": empty,
                    "class_counts": np.zeros((0, n_classes), dtype=np.int64),
                    "neighbours": np.zeros((0, 2), dtype=np.int64)}
        return {key: np.concatenate(values) for key, values in parts.items()}

    def unit_rows(self, samples, rows):
        raise ValueError("region units have no per-region embedding: core-set, BADGE and "
                         "discriminative select images, not superpixels")

    def labeled_mask(self, image: int, labeled_units: np.ndarray | None = None,
                     labeled: np.ndarray | None = None) -> np.ndarray:
        """bool [H, W]: the pixels of ``image`` in labeled regions.

        ``labeled`` is a bool [n_units] membership vector (fast path for many images).
        """
        if labeled is None:
            if labeled_units is None:
                raise ValueError("labeled_mask needs labeled_units or labeled")
            labeled = self.membership(labeled_units)
        region_labeled = labeled[self.offsets[image]:self.offsets[image + 1]]   # [R_i]
        return region_labeled[self.region_map(int(image))]

    def cost(self, labeled_units, labeled_at=None):
        labeled_units = np.asarray(labeled_units, dtype=np.int64)
        return {"n_images": int(len(np.unique(self.unit_image[labeled_units]))),
                "labeled_pixel_fraction": float(self.region_pixels[labeled_units].sum()
                                                / self.region_pixels.sum())}

    def write_scores(self, run_dir, cycle, units, scores, scored, item_name):
        """Nothing: a region's score is in ``regions/cycle_XX.csv``, and a name per region
        would not say which region."""
        return []

    def write_selection(self, run_dir, cycle, units, scores, item_name):
        """The priority CSV of the touched images, the region CSV and each image's region map.

        An image's priority is the sum of its chosen regions' scores (more useful regions
        first); ``regions/cycle_XX.csv`` lists ``name,region_id,score`` best first and
        ``regions/maps/`` holds the 16-bit region map that the ids refer to
        (:func:`region_map_path`).
        """
        from active_learning.loop.superpixels import save_region_map

        images, regions = self.image_and_region(units)
        values = csv_values(scores)
        touched, local = np.unique(images, return_inverse=True)
        priorities = run_dir / "priorities" / f"cycle_{cycle:02d}.csv"
        write_entropies_csv(item_name, touched, np.bincount(local, weights=values), priorities)
        order = np.argsort(-values, kind="stable")
        region_csv = run_dir / "regions" / f"cycle_{cycle:02d}.csv"
        write_region_csv([item_name(int(images[i])) for i in order], regions[order],
                         values[order], region_csv)
        written = [priorities, region_csv]
        for image in touched:
            # Written every time: a map left by another image of the same path must not stay.
            path = run_dir / "regions" / "maps" / region_map_path(item_name(int(image)))
            save_region_map(self.region_map(int(image)), path)
            written.append(path)
        return written


def scored_batch(batch: ScoredBatch | tuple[np.ndarray, Any]) -> ScoredBatch:
    """``batch`` as a :class:`ScoredBatch` (a ``(samples, scores)`` pair has no slot counts)."""
    return batch if isinstance(batch, ScoredBatch) else ScoredBatch(*batch)


def region_map_path(name: str) -> Path:
    """Where the region map of image ``name`` goes under ``regions/maps/``: the name itself for a
    PNG, else the name with ``.png`` appended (``cam/a.jpg`` -> ``cam/a.jpg.png``), so that
    ``a.jpg`` and ``a.png`` never share a map file."""
    return Path(name if name.lower().endswith(".png") else f"{name}.png")
