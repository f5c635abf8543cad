"""The annotation cost model (polygon clicks, pixels) and the dominant-label oracle, by hand."""
from __future__ import annotations

import numpy as np
import pytest

from segmentation.costs import dominant_classes, dominant_labels, polygon_clicks

IGNORE = 255


def test_a_square_on_a_background_is_two_rectangles_and_the_hole_is_not_counted():
    mask = np.zeros((10, 10), dtype=np.int64)
    mask[3:7, 3:7] = 1
    # class 1: its square's 4 corners; class 0: the image border's 4 corners, its hole (the
    # square, drawn by class 1's polygon) not counted again (counting holes would give 12)
    assert polygon_clicks(mask) == 8


def test_a_region_in_a_hole_of_another_class_in_a_hole_of_its_own_class_is_counted():
    # a class-1 ring (the image border) around a class-2 square (7 x 7) around a class-1
    # island (3 x 3): class 1 = the border's 4 corners + the island's 4 corners, class 2 = its
    # square's 4 corners (its hole, the island, not counted). Only the outermost contours of
    # each class (cv2.RETR_EXTERNAL) would drop the island: 8.
    mask = np.ones((12, 12), dtype=np.int64)
    mask[2:9, 2:9] = 2
    mask[4:7, 4:7] = 1
    assert polygon_clicks(mask) == 4 + 4 + 4
    mask[4:7, 4:7] = 2                              # no island: the ring and the square
    assert polygon_clicks(mask) == 4 + 4


def test_each_connected_region_of_a_class_is_its_own_polygon():
    mask = np.zeros((10, 12), dtype=np.int64)
    mask[1:4, 1:4] = 2
    mask[6:9, 7:10] = 2
    assert polygon_clicks(mask) == 4 + 4 + 4      # two squares of class 2, the background


def test_an_l_shape_costs_its_six_corners_and_ignore_pixels_cost_nothing():
    mask = np.full((12, 12), IGNORE, dtype=np.int64)
    mask[:, :4] = 1
    mask[8:, :] = 1
    assert polygon_clicks(mask) == 6
    assert polygon_clicks(np.full((5, 5), IGNORE)) == 0


def test_a_single_pixel_is_one_click():
    mask = np.zeros((5, 5), dtype=np.int64)
    mask[2, 2] = 3
    assert polygon_clicks(mask) == 1 + 4


def test_the_dominant_oracle_gives_each_chosen_region_its_majority_class():
    # region 0 = columns 0-1, region 1 = columns 2-3, region 2 = columns 4-5 (2 rows each)
    regions = np.repeat(np.array([[0, 0, 1, 1, 2, 2]]), 2, axis=0)
    mask = np.array([[1, 1, 2, IGNORE, IGNORE, IGNORE],
                     [1, 0, 2, 0, IGNORE, 1]])
    # region 0: class 1 x3, class 0 x1 -> 1; region 1: 2 x2, 0 x1, ignore x1 -> 2;
    # region 2: ignore x3, class 1 x1 -> void
    np.testing.assert_array_equal(dominant_classes(mask, regions, n_classes=3), [1, 2, IGNORE])
    labels = dominant_labels(mask, regions, np.array([True, True, True]), n_classes=3)
    np.testing.assert_array_equal(labels, [[1, 1, 2, IGNORE, IGNORE, IGNORE],
                                           [1, 1, 2, 2, IGNORE, IGNORE]])
    # an unchosen region stays ignored; the ground truth's 0 in region 0 became 1 (the one-click
    # annotator's error, as in Cai et al.)
    only_first = dominant_labels(mask, regions, np.array([True, False, False]), n_classes=3)
    np.testing.assert_array_equal(only_first, [[1, 1] + [IGNORE] * 4, [1, 1] + [IGNORE] * 4])


def test_a_tie_goes_to_the_smallest_class_and_a_class_beats_void_on_a_tie():
    regions = np.zeros((1, 4), dtype=np.int64)
    assert dominant_classes(np.array([[2, 2, 1, 1]]), regions, 3)[0] == 1
    assert dominant_classes(np.array([[IGNORE, IGNORE, 2, 2]]), regions, 3)[0] == 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from seg_fixtures import write_tiny_cityscapes

    return write_tiny_cityscapes(tmp_path_factory.mktemp("data") / "cs")


def _task(tiny, region_label: str, superpixels: bool = True):
    from active_learning.labels.cityscapes_ids import CITYSCAPES_CLASSES
    from segmentation.data import CITYSCAPES_MEAN, CITYSCAPES_STD, find_samples
    from segmentation.task import SegmentationTask

    samples = find_samples(tiny, "train", "cityscapes", need_instances=True)
    return SegmentationTask(samples, [], data_format="cityscapes", num_classes=19,
                            class_names=CITYSCAPES_CLASSES, mean=CITYSCAPES_MEAN,
                            std=CITYSCAPES_STD, superpixels=superpixels, superpixels_per_image=12,
                            region_label=region_label, progress=False)


def test_the_cost_columns_of_image_and_superpixel_units(tiny):
    images = _task(tiny, "exact", superpixels=False)
    cost = images.selection_units().cost(np.array([0, 2]))
    full = [images.full_mask(index) for index in (0, 2)]
    assert cost["n_pixels"] == sum(int((mask != IGNORE).sum()) for mask in full)
    assert cost["n_clicks"] == sum(polygon_clicks(mask) for mask in full)

    for label in ("exact", "dominant"):
        task = _task(tiny, label)
        units = task.selection_units()
        whole = units.units_of_image(0)                 # every region of image 0: a whole image
        some = units.units_of_image(1)[:3]              # three regions of image 1
        cost = units.cost(np.concatenate([whole, some]))
        partial = task.partial_mask(1, units.membership(some))
        clicks = 3 if label == "dominant" else polygon_clicks(partial)
        assert cost["n_clicks"] == task.image_cost(0)[1] + clicks, label
        assert cost["n_pixels"] == task.image_cost(0)[0] + int((partial != IGNORE).sum())
        if label == "dominant":
            ground = task.full_mask(1)
            regions = task.region_map(1)
            chosen = np.isin(regions, [0, 1, 2]) & (ground != IGNORE)
            # every non-void pixel of a region holds the region's majority (the ignore label a
            # candidate of the vote, counted as class 19 so that a tie goes to a class): void
            # when void wins
            named = 0
            for region in range(3):
                inside = regions == region
                votes = np.bincount(np.where(ground[inside] == IGNORE, 19, ground[inside]),
                                    minlength=20)
                majority = int(votes.argmax())
                expected = IGNORE if majority == 19 else majority
                np.testing.assert_array_equal(
                    partial[inside & (ground != IGNORE)], expected)
                named += expected != IGNORE
            assert named >= 1                   # the fixture's regions are not all void
            assert (partial[~chosen] == IGNORE).all()


def test_a_whole_images_cost_is_computed_once(tiny, monkeypatch):
    import segmentation.task as task_module

    task = _task(tiny, "exact", superpixels=False)
    calls = []
    original = task_module.polygon_clicks
    monkeypatch.setattr(task_module, "polygon_clicks", lambda mask: calls.append(1) or original(mask))
    units = task.selection_units()
    units.cost(np.array([0, 1]))
    units.cost(np.array([0, 1, 2]))
    assert len(calls) == 3                              # images 0 and 1 were not redone


class _StripsTask:
    """A task stub for :class:`SuperpixelUnits`: image 0 is 8 x 24 pixels of class 0 cut into six
    4-column strips (regions 0-5, units 0-5); image 1 is 8 x 8 of class 0, one region (unit 6).
    A partial mask is the ground truth where the labeled regions reach."""

    def __init__(self, region_label: str) -> None:
        self.region_label = region_label
        self.truth = [np.zeros((8, 24), dtype=np.int64), np.zeros((8, 8), dtype=np.int64)]
        self.maps = [np.repeat(np.arange(24)[None] // 4, 8, axis=0), np.zeros((8, 8), dtype=int)]
        self.offsets = [0, 6, 7]

    def region_map(self, index):
        return self.maps[index]

    def image_cost(self, index):
        return int(self.truth[index].size), polygon_clicks(self.truth[index])

    def partial_mask(self, index, member):
        own = member[self.offsets[index]:self.offsets[index + 1]]
        return np.where(own[self.maps[index]], self.truth[index], IGNORE)

    def annotated_pixel_count(self):
        return 8 * 24 + 8 * 8


@pytest.mark.parametrize("label, expected", [
    # image 1 whole in cycle 0: its square's 4 clicks. exact: strip 0 alone is a rectangle (4);
    # strip 2 a second one (+4); strip 1 merges them into one rectangle (4 - 8 < 0: +0, where
    # recounting the union gave 4, a decrease); strip 4 a new rectangle (+4); strips 3 and 5
    # merge everything (+0). dominant: one click per strip, also for the one that completes the
    # image (recharging the completed image as a whole gave its 4 polygon clicks: 9 -> 8).
    ("exact", [4, 8, 12, 12, 16, 16, 16]),
    ("dominant", [4, 5, 6, 7, 8, 9, 10]),
])
def test_clicks_are_paid_cycle_by_cycle_and_never_decrease(label, expected):
    from segmentation.task import SuperpixelUnits

    task = _StripsTask(label)
    units = SuperpixelUnits(task, [np.full(6, 32), np.array([64])])
    picks = [[6], [0], [2], [1], [4], [3], [5]]          # units labeled in cycles 0..6
    labeled_at = np.full(7, -1)
    clicks, pixels = [], []
    for cycle, chosen in enumerate(picks):
        labeled_at[chosen] = cycle
        labeled = np.flatnonzero(labeled_at >= 0)
        cost = units.cost(labeled, labeled_at[labeled])
        clicks.append(cost["n_clicks"])
        pixels.append(cost["n_pixels"])
    assert clicks == expected
    assert pixels == [64 + 32 * count for count in range(7)]
    # labeled all at once (no cycles): one drawing of the union, the whole image's 4 clicks
    assert units.cost(np.arange(7))["n_clicks"] == 4 + 4
    # strips 0, 1, 2 in one cycle: exact pays the one rectangle they make; dominant 3 clicks
    assert units.cost(np.array([0, 1, 2]), np.array([1, 1, 1]))["n_clicks"] == \
        (4 if label == "exact" else 3)
