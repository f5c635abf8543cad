"""Unit pooling over batches, the initial and candidate draws, and the region CSV, by hand.

``score_candidates`` hands the units one batch of scores at a time; an image's persons can be
split over two batches, and region units pool each batch of score maps as it comes. Each test
here computes the answer with plain Python loops (or boolean masks) instead of the units' own
``bincount`` / ``np.unique`` arithmetic.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest

from active_learning.files.export import read_entropies_csv, write_region_csv
from active_learning.loop.config import LoopConfig
from active_learning.loop.runner import draw_initial_units
from active_learning.loop.superpixels import load_region_map
from active_learning.loop.units import GroupedUnits, RegionUnits, ScoredBatch, SelectionUnits

# ---- grouped units: an image's persons split over two batches ----------------------------

# Seven images: 0 holds samples 0-2, 1 holds 3-4, 2 holds 5, 3 holds 6-9, 4 none, 5 holds 10-11,
# 6 none.
UNIT_OF_SAMPLE = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 5, 5])
SCORES = np.array([0.3, 0.1, 0.2, 0.2, 0.9, 0.6, 0.1, 0.4, 0.8, 0.3, 0.5, 0.05])
CANDIDATE_IMAGES = [0, 1, 3, 5]       # image 2 is not a candidate: its sample is not scored


def _batches(samples: np.ndarray, values: np.ndarray, size: int):
    """A one-shot generator of (sample indices [B], values [B, ...]) in order, like the loop's."""
    for start in range(0, len(samples), size):
        yield samples[start:start + size], values[start:start + size]


def _by_hand(samples, values, reduction: str) -> dict[int, float]:
    groups: dict[int, list[float]] = {}
    for sample, value in zip(samples.tolist(), values.tolist()):
        groups.setdefault(UNIT_OF_SAMPLE[sample].item(), []).append(value)
    pooled = {}
    for unit, scores in groups.items():
        if reduction == "max":
            best = scores[0]
            for score in scores[1:]:
                best = score if score > best else best
            pooled[unit] = best
        else:
            total = 0.0
            for score in scores:
                total += score
            pooled[unit] = total if reduction == "sum" else total / len(scores)
    return pooled


def test_the_grouped_example_splits_images_over_batches_and_tells_the_reductions_apart():
    units = GroupedUnits(UNIT_OF_SAMPLE, n_units=7)
    samples = units.samples_of(CANDIDATE_IMAGES)
    np.testing.assert_array_equal(samples, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11])
    batches = [batch.tolist() for batch, _ in _batches(samples, SCORES[samples], 4)]
    assert batches == [[0, 1, 2, 3], [4, 6, 7, 8], [9, 10, 11]]
    # images 1 (samples 3 | 4) and 3 (samples 6, 7, 8 | 9) span a batch boundary
    for image in (1, 3):
        owners = {index for index, batch in enumerate(batches)
                  if set(batch) & set(np.flatnonzero(UNIT_OF_SAMPLE == image))}
        assert len(owners) == 2
        pooled = [_by_hand(samples, SCORES[samples], reduction)[image]
                  for reduction in ("max", "mean", "sum")]
        assert len({round(value, 9) for value in pooled}) == 3


@pytest.mark.parametrize("units", [SelectionUnits(12), GroupedUnits(UNIT_OF_SAMPLE, n_units=7)])
def test_a_scored_batch_pools_as_its_samples_and_scores_do(units):
    """What the scoring pass hands the units (a ScoredBatch, slot counts included) pools as a
    plain (samples, scores) pair: units that need no counts ignore them."""
    samples = np.arange(12)
    pairs = units.pool_scores(_batches(samples, SCORES, 5), reduction="mean")
    scored = units.pool_scores((ScoredBatch(batch, values, np.ones(len(batch), dtype=np.int64))
                                for batch, values in _batches(samples, SCORES, 5)),
                               reduction="mean")
    for left, right in zip(pairs, scored):
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize("reduction", ["max", "mean", "sum"])
@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 5, 11])
def test_grouped_pooling_over_batches_matches_loops(reduction, batch_size):
    units = GroupedUnits(UNIT_OF_SAMPLE, n_units=7)
    samples = units.samples_of(CANDIDATE_IMAGES)
    unit_ids, pooled = units.pool_scores(_batches(samples, SCORES[samples], batch_size),
                                         reduction=reduction)
    expected = _by_hand(samples, SCORES[samples], reduction)
    assert unit_ids.dtype == np.int64 and pooled.dtype == np.float64
    assert len(set(unit_ids.tolist())) == len(unit_ids)          # one score per image
    assert set(unit_ids.tolist()) == set(CANDIDATE_IMAGES)
    got = dict(zip(unit_ids.tolist(), pooled.tolist()))
    for unit, value in expected.items():
        assert got[unit] == pytest.approx(value, abs=1e-12), unit


def test_grouped_pooling_does_not_depend_on_where_the_batches_cut():
    units = GroupedUnits(UNIT_OF_SAMPLE, n_units=7)
    samples = units.samples_of(CANDIDATE_IMAGES)
    for reduction in ("max", "mean", "sum"):
        whole = units.unit_scores(samples, SCORES[samples], reduction=reduction)
        for size in (1, 3, 4):
            cut = units.pool_scores(_batches(samples, SCORES[samples], size), reduction=reduction)
            np.testing.assert_array_equal(cut[0], whole[0])
            np.testing.assert_allclose(cut[1], whole[1], rtol=0, atol=1e-12)


def test_grouped_embeddings_are_per_image_means_by_hand():
    units = GroupedUnits(UNIT_OF_SAMPLE, n_units=7)
    samples = units.samples_of(CANDIDATE_IMAGES)
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(len(samples), 3))
    unit_ids, means = units.unit_rows(samples, rows)
    assert len(unit_ids) == len(means) == len(CANDIDATE_IMAGES)
    for unit, mean in zip(unit_ids.tolist(), means):
        members = [row for sample, row in zip(samples.tolist(), rows)
                   if UNIT_OF_SAMPLE[sample] == unit]
        by_hand = [sum(row[d] for row in members) / len(members) for d in range(3)]
        np.testing.assert_allclose(mean, by_hand, rtol=0, atol=1e-12)
    assert sorted(unit_ids.tolist()) == CANDIDATE_IMAGES


def test_one_to_one_pooling_keeps_each_score_with_its_id_over_batches():
    units = SelectionUnits(30)
    samples = np.array([2, 3, 5, 7, 11, 13, 17, 19, 23, 29])
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    unit_ids, pooled = units.pool_scores(_batches(samples, scores, 3))
    np.testing.assert_array_equal(unit_ids, samples)
    np.testing.assert_array_equal(pooled, scores)


# ---- region units: each batch of score maps pooled as it comes ---------------------------


def _region_maps(count: int = 6, shape=(6, 7), seed: int = 0) -> list[np.ndarray]:
    """Maps with 2..5 regions each, every id present, in no spatial pattern."""
    rng = np.random.default_rng(seed)
    maps = []
    for index in range(count):
        regions = 2 + index % 4
        region_map = rng.integers(0, regions, shape)
        region_map.ravel()[:regions] = np.arange(regions)
        maps.append(region_map)
    return maps


def test_region_pooling_over_batches_is_the_boolean_mask_mean_in_batch_order():
    maps = _region_maps()
    log: list[tuple[str, int]] = []

    def region_map(image: int) -> np.ndarray:
        log.append(("map", image))
        return maps[image]

    units = RegionUnits.from_maps(region_map, n_images=len(maps))
    log.clear()
    rng = np.random.default_rng(1)
    score_maps = rng.random((len(maps), 6, 7))
    order = [[3, 0], [5], [1, 4, 2]]                # batches in the order they come, any images

    def batches():                                  # one-shot: a second pass would see nothing
        for number, images in enumerate(order):
            log.append(("batch", number))
            yield np.array(images), score_maps[images]

    unit_ids, pooled = units.pool_scores(batches())
    flat = [image for images in order for image in images]
    np.testing.assert_array_equal(unit_ids, np.concatenate([units.units_of_image(i) for i in flat]))
    expected = [score_maps[image][maps[image] == region].mean()
                for image in flat for region in range(maps[image].max() + 1)]
    np.testing.assert_allclose(pooled, expected, rtol=1e-12)
    # Each batch's maps were pooled before the next batch was asked for.
    for number, images in enumerate(order[:-1]):
        next_batch = log.index(("batch", number + 1))
        for image in images:
            assert log.index(("map", image)) < next_batch, (image, log)


def test_region_pooling_of_nothing_is_empty():
    units = RegionUnits.from_maps(_region_maps(2))
    unit_ids, pooled = units.pool_scores(iter([]))
    assert unit_ids.dtype == np.int64 and len(unit_ids) == len(pooled) == 0


# ---- the initial set: image level and superpixel level start from the same images --------


@pytest.mark.parametrize("seed", range(6))
def test_region_units_label_every_region_of_the_images_one_to_one_units_would_draw(seed):
    maps = _region_maps(count=9)
    regions = RegionUnits.from_maps(maps)
    images = SelectionUnits(len(maps)).draw_initial(4, np.random.default_rng(seed))
    drawn = regions.draw_initial(4, np.random.default_rng(seed))
    expected = sorted(int(regions.offsets[image]) + region for image in images.tolist()
                      for region in range(maps[image].max() + 1))
    assert sorted(drawn.tolist()) == expected
    assert len(drawn) == len(set(drawn.tolist()))
    # and so does the person-grouping kind, when every image holds someone
    grouped = GroupedUnits(np.repeat(np.arange(len(maps)), 2), n_units=len(maps))
    np.testing.assert_array_equal(grouped.draw_initial(4, np.random.default_rng(seed)), images)


def test_the_runners_initial_draw_is_the_same_images_for_every_unit_kind():
    maps = _region_maps(count=9)
    regions = RegionUnits.from_maps(maps)
    for seed in range(4):
        config = LoopConfig(initial_size=3, budget=2, seed=seed, progress=False)
        images = draw_initial_units(SelectionUnits(len(maps)), config)
        drawn = draw_initial_units(regions, config)
        assert sorted(set(regions.unit_image[drawn].tolist())) == sorted(images.tolist())
        assert len(drawn) == sum(maps[image].max() + 1 for image in images.tolist())


# ---- candidates -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_one_to_one_candidates_are_a_sorted_random_subset_of_the_unlabeled(seed):
    unlabeled = np.array([1, 4, 5, 8, 9, 12, 15, 16, 20, 21, 22, 30])
    candidates = SelectionUnits(40).draw_candidates(unlabeled, 5, np.random.default_rng(seed))
    assert len(candidates) == len(set(candidates.tolist())) == 5
    assert set(candidates.tolist()) <= set(unlabeled.tolist())
    assert candidates.tolist() == sorted(candidates.tolist())


@pytest.mark.parametrize("subset_size", [1, 5, 9, 100])
def test_region_candidates_are_whole_images_of_unlabeled_regions(subset_size):
    maps = _region_maps(count=8)
    units = RegionUnits.from_maps(maps)
    labeled = {0, 1, 7, 8, 15}                        # a few regions of images 0, 2 and 3
    unlabeled = np.array([unit for unit in range(units.n_units) if unit not in labeled])
    draws = []
    for seed in range(5):
        candidates = units.draw_candidates(unlabeled, subset_size, np.random.default_rng(seed))
        assert candidates.tolist() == sorted(set(candidates.tolist()))       # ascending, distinct
        assert set(candidates.tolist()) <= set(unlabeled.tolist())
        touched = sorted(set(units.unit_image[candidates].tolist()))
        per_image = {image: [unit for unit in unlabeled.tolist() if units.unit_image[unit] == image]
                     for image in touched}
        # every unlabeled region of each touched image, none of another image
        assert sorted(candidates.tolist()) == sorted(u for units_ in per_image.values() for u in units_)
        if subset_size >= len(unlabeled):
            assert len(candidates) == len(unlabeled)
        else:
            # enough regions, and no whole image more than needed to reach subset_size
            assert len(candidates) >= subset_size
            assert any(len(candidates) - len(regions_) < subset_size
                       for regions_ in per_image.values())
        draws.append(tuple(touched))
    if subset_size < len(unlabeled):
        assert len(set(draws)) > 1                    # random images, not the first ones


# ---- the region CSV: names with commas and quotes --------------------------------------


def _odd_name(index: int) -> str:
    return f'site "north", cam 2/frame,{index:03d} "x".png'


def test_region_selection_files_keep_names_with_commas_and_quotes(tmp_path):
    maps = _region_maps(count=4)
    units = RegionUnits.from_maps(maps)
    chosen = np.array([units.offsets[2] + 1, units.offsets[0], units.offsets[2], units.offsets[3] + 2])
    scores = np.array([0.75, 0.5, 0.25, 0.125])
    written = units.write_selection(tmp_path, 0, chosen, scores, _odd_name)

    with open(tmp_path / "regions" / "cycle_00.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["name", "region_id", "score"]
    assert table[1:] == [[_odd_name(2), "1", "0.75000"], [_odd_name(0), "0", "0.50000"],
                         [_odd_name(2), "0", "0.25000"], [_odd_name(3), "2", "0.12500"]]
    priorities = read_entropies_csv(tmp_path / "priorities" / "cycle_00.csv")
    assert priorities == [(_odd_name(2), 1.0), (_odd_name(0), 0.5), (_odd_name(3), 0.125)]
    for image in (0, 2, 3):
        path = tmp_path / "regions" / "maps" / 'site "north", cam 2' / f'frame,{image:03d} "x".png'
        assert path in written
        np.testing.assert_array_equal(load_region_map(path), maps[image])


def test_write_region_csv_round_trips_awkward_names_through_the_csv_module(tmp_path):
    names = ['a,b.png', 'say "hi".png', '"quoted",and,commas".png', "plain.png", "semi;colon 'single'.png"]
    regions = [0, 3, 12, 7, 65535]
    scores = [5.0, 4.25, 3.0, 0.5, 0.0]
    path = tmp_path / "regions.csv"
    write_region_csv(names, regions, scores, path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["name", "region_id", "score"]
    assert [(name, int(region), float(score)) for name, region, score in rows[1:]] == list(
        zip(names, regions, scores))
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(names) + 1


def test_images_whose_names_differ_only_in_their_extension_keep_their_own_region_maps(tmp_path):
    from active_learning.errors import UserError
    from toy_adapters import halves_map, quadrant_map

    units = RegionUnits.from_maps([quadrant_map(), halves_map()])
    names = ["cam/frame_001.jpg", "cam/frame_001.png"]
    chosen = np.array([units.offsets[0], units.offsets[1], units.offsets[1] + 1])
    try:
        written = units.write_selection(tmp_path, 0, chosen, np.array([0.9, 0.5, 0.4]),
                                        names.__getitem__)
    except (ValueError, UserError) as error:   # refusing the clash, by name, is a fix too
        assert "frame_001" in str(error)
        return
    maps = [path for path in written if "maps" in path.relative_to(tmp_path).parts]
    assert len(maps) == 2                        # one region map file per image
    contents = sorted(load_region_map(path).tolist() for path in maps)
    assert contents == sorted([quadrant_map().tolist(), halves_map().tolist()])
