"""Selection units: grouped samples and superpixel regions, against hand computations."""
from __future__ import annotations

import numpy as np
import pytest

from active_learning.loop.superpixels import (
    load_region_map,
    region_means,
    save_region_map,
    slic_superpixels,
    superpixels,
    watershed_superpixels,
)
from active_learning.loop.units import GroupedUnits, RegionUnits, SelectionUnits
from toy_adapters import PartialMaskDataset, halves_map, quadrant_map

# Five images holding 2, 0, 3, 1, 0 samples.
UNIT_OF_SAMPLE = np.array([0, 0, 2, 2, 2, 3])


def test_grouped_units_map_images_to_their_samples():
    units = GroupedUnits(UNIT_OF_SAMPLE, n_units=5)
    np.testing.assert_array_equal(units.samples_of([2, 3]), [2, 3, 4, 5])
    np.testing.assert_array_equal(units.samples_of([1, 4]), [])
    np.testing.assert_array_equal(units.selectable(), [True, False, True, True, False])
    assert units.cost([0, 1, 2]) == {"n_samples": 5}
    assert GroupedUnits(UNIT_OF_SAMPLE, 5, sample_label="person").cost([3]) == {"n_persons": 1}


@pytest.mark.parametrize("reduction, expected", [
    ("max", [0.9, 0.7, 0.2]),
    ("mean", [0.5, (0.3 + 0.7 + 0.5) / 3, 0.2]),
    ("sum", [1.0, 1.5, 0.2]),
])
def test_grouped_scores_pool_each_images_samples(reduction, expected):
    units = GroupedUnits(UNIT_OF_SAMPLE, n_units=5)
    samples = np.arange(6)
    scores = np.array([0.9, 0.1, 0.3, 0.7, 0.5, 0.2])
    unit_ids, pooled = units.unit_scores(samples, scores, reduction=reduction)
    np.testing.assert_array_equal(unit_ids, [0, 2, 3])
    np.testing.assert_allclose(pooled, expected)


def test_grouped_embeddings_are_the_mean_of_the_images_samples():
    units = GroupedUnits(UNIT_OF_SAMPLE, n_units=5)
    rows = np.arange(12, dtype=np.float64).reshape(6, 2)
    unit_ids, pooled = units.unit_rows(np.arange(6), rows)
    np.testing.assert_array_equal(unit_ids, [0, 2, 3])
    np.testing.assert_allclose(pooled, [[1, 2], [6, 7], [10, 11]])


def test_grouped_units_refuse_samples_outside_the_images():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        GroupedUnits(np.array([0, 3]), n_units=3)


def test_one_unit_per_sample_is_the_identity():
    units = SelectionUnits(4)
    np.testing.assert_array_equal(units.samples_of([3, 1]), [1, 3])
    ids, scores = units.unit_scores(np.array([1, 3]), np.array([0.5, 0.25]))
    np.testing.assert_array_equal(ids, [1, 3])
    np.testing.assert_allclose(scores, [0.5, 0.25])
    assert units.cost([0]) == {} and units.selectable().all()


def _regions() -> RegionUnits:
    return RegionUnits.from_maps([quadrant_map(), halves_map(), quadrant_map()])


def test_region_units_are_laid_out_image_after_image():
    units = _regions()
    assert units.n_units == 10 and units.n_samples == 3
    images, regions = units.image_and_region(np.array([0, 3, 4, 5, 6, 9]))
    np.testing.assert_array_equal(images, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(regions, [0, 3, 0, 1, 0, 3])
    np.testing.assert_array_equal(units.samples_of([9, 5, 4]), [1, 2])


def test_region_scores_are_the_mean_inside_each_region():
    units = _regions()
    rng = np.random.default_rng(0)
    maps = [rng.random((8, 8)) for _ in range(2)]
    unit_ids, pooled = units.unit_scores(np.array([1, 2]), maps)
    np.testing.assert_array_equal(unit_ids, [4, 5, 6, 7, 8, 9])
    # Independent computation: a boolean mask per region.
    expected = [maps[0][halves_map() == r].mean() for r in range(2)]
    expected += [maps[1][quadrant_map() == r].mean() for r in range(4)]
    np.testing.assert_allclose(pooled, expected)


def test_region_means_match_regionprops():
    from skimage.measure import regionprops

    rng = np.random.default_rng(1)
    image = rng.random((40, 60))
    region_map = slic_superpixels(rng.random((40, 60, 3)), n_segments=30)
    ours = region_means(image, region_map)
    props = regionprops(region_map + 1, intensity_image=image)   # regionprops skips label 0
    np.testing.assert_allclose(ours, [prop.intensity_mean for prop in props])


def test_region_means_refuse_maps_of_another_size():
    with pytest.raises(ValueError, match="differ in size"):
        region_means(np.zeros((4, 4)), np.zeros((4, 5), dtype=int))


def test_labeled_pixels_and_cost_of_chosen_regions():
    units = _regions()
    mask = units.labeled_mask(0, labeled_units=np.array([1, 3, 5]))
    expected = np.zeros((8, 8), dtype=bool)
    expected[:4, 4:] = True   # region 1: top right
    expected[4:, 4:] = True   # region 3: bottom right
    np.testing.assert_array_equal(mask, expected)
    cost = units.cost(np.array([1, 3, 5]))
    assert cost["n_images"] == 2
    assert cost["labeled_pixel_fraction"] == pytest.approx((16 + 16 + 32) / (3 * 64))


def test_partial_masks_built_from_the_pool_state():
    import torch

    units = _regions()
    images = torch.zeros(3, 1, 8, 8)
    masks = torch.arange(3 * 64).reshape(3, 8, 8) % 2                     # classes 0 / 1
    dataset = PartialMaskDataset(images, masks, units, np.array([2, 5]))  # image 0 r2, image 1 r1
    assert len(dataset) == 2                                              # image 2: nothing labeled
    _, first = dataset[0]
    assert (first[4:, :4] == masks[0, 4:, :4]).all() and (first[:4] == 255).all() and (first[4:, 4:] == 255).all()
    _, second = dataset[1]
    assert (second[:, 4:] == masks[1, :, 4:]).all() and (second[:, :4] == 255).all()


def test_region_maps_must_number_regions_consecutively():
    with pytest.raises(ValueError, match="skips region ids"):
        RegionUnits.from_maps([np.array([[0, 2], [2, 0]])])


@pytest.mark.parametrize("method", ["watershed", "slic"])
def test_superpixels_cover_the_image_with_consecutive_ids(method):
    from skimage import data

    image = data.astronaut()[::4, ::4]                                    # [128, 128, 3]
    region_map = superpixels(image, method=method, n_segments=100)
    assert region_map.shape == image.shape[:2] and region_map.dtype == np.int32
    ids = np.unique(region_map)
    np.testing.assert_array_equal(ids, np.arange(len(ids)))
    assert 50 <= len(ids) <= 200                                          # about the markers asked


def test_watershed_on_a_grey_image_and_a_map_round_trip(tmp_path):
    image = np.zeros((20, 20))
    image[:, 10:] = 1.0
    region_map = watershed_superpixels(image, n_markers=4)
    save_region_map(region_map, tmp_path / "maps" / "a.png")
    np.testing.assert_array_equal(load_region_map(tmp_path / "maps" / "a.png"), region_map)
