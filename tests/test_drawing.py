"""The one renderer of predictions (``active_learning.drawing.predictions``) and the score
overlays (``drawing.scores``): each kind draws where it should, in the colour the task gives."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from active_learning.drawing.palette import palette
from active_learning.drawing.predictions import (
    MASK_ALPHA,
    Style,
    draw_prediction,
    prediction_kinds,
)
from active_learning.drawing.scores import (
    draw_pixel_scores,
    draw_region_scores,
    region_boundaries,
)
from active_learning.errors import ConfigError
from active_learning.files.predictions import ImagePrediction

NAMES = ["cat", "dog", "bird"]


def blank(height: int, width: int, value: int = 0) -> torch.Tensor:
    return torch.full((3, height, width), value, dtype=torch.uint8)


def rgb(image: torch.Tensor, y: int, x: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in image[:, y, x])


def test_the_kind_is_what_the_prediction_holds():
    assert prediction_kinds(ImagePrediction(4, 4, mask=np.zeros((4, 4)))) == ["mask"]
    assert prediction_kinds(ImagePrediction(4, 4, boxes=np.zeros((1, 4)))) == ["boxes"]
    assert prediction_kinds(ImagePrediction(4, 4, boxes=np.zeros((1, 4)),
                                            keypoints=np.zeros((1, 2, 3)))) == ["boxes",
                                                                                 "keypoints"]
    assert prediction_kinds(ImagePrediction(4, 4, label=1)) == ["class"]
    empty = ImagePrediction(4, 4)
    assert prediction_kinds(empty) == []
    image = blank(4, 4, 7)
    assert torch.equal(draw_prediction(image, empty), image)


def test_a_boxs_edge_takes_its_class_colour_and_its_inside_stays():
    prediction = ImagePrediction(100, 50, boxes=np.array([[10.0, 10.0, 60.0, 40.0]]),
                                 labels=np.array([2]))
    drawn = draw_prediction(blank(50, 100), prediction, Style(class_names=NAMES, box_text=False,
                                                              line_width=1))
    colour = palette(3)[2]
    assert rgb(drawn, 25, 10) == colour and rgb(drawn, 25, 60) == colour      # left, right
    assert rgb(drawn, 10, 35) == colour and rgb(drawn, 40, 35) == colour      # top, bottom
    assert rgb(drawn, 25, 35) == (0, 0, 0) and rgb(drawn, 5, 5) == (0, 0, 0)
    # The task's own colours win over the palette (one colour: every class).
    lime = draw_prediction(blank(50, 100), prediction, Style(colours=["lime"], line_width=1))
    assert rgb(lime, 25, 10) == (0, 255, 0)


def test_a_boxs_text_is_written_inside_it_and_a_persons_box_has_none():
    boxes = np.array([[10.0, 10.0, 90.0, 45.0]])
    named = draw_prediction(blank(50, 100), ImagePrediction(
        100, 50, boxes=boxes, labels=np.array([1]), box_scores=np.array([0.5])),
        Style(class_names=NAMES, line_width=1))
    plain = draw_prediction(blank(50, 100), ImagePrediction(100, 50, boxes=boxes,
                                                            labels=np.array([1])),
                            Style(line_width=1))
    label_area = (slice(11, 25), slice(11, 60))
    assert (named[:, label_area[0], label_area[1]] == 255).any()             # white text
    assert not torch.equal(named, plain)
    person = draw_prediction(blank(50, 100), ImagePrediction(
        100, 50, boxes=boxes, box_scores=np.array([0.5]), keypoints=np.zeros((1, 1, 3))),
        Style(class_names=NAMES, line_width=1))
    assert torch.equal(person, plain)


def test_a_mask_tints_each_class_at_the_images_scale_and_leaves_the_ignore_label():
    grey = blank(20, 20, 100)
    mask = np.full((10, 10), 255)
    mask[:, :5] = 2                                  # the left half, at half the image's size
    drawn = draw_prediction(grey, ImagePrediction(10, 10, mask=mask), Style(class_names=NAMES))
    expected = (1 - MASK_ALPHA) * 100 + MASK_ALPHA * np.array(palette(3)[2])
    np.testing.assert_allclose(rgb(drawn, 10, 3), expected, atol=1)
    np.testing.assert_allclose(rgb(drawn, 10, 9), expected, atol=1)
    assert rgb(drawn, 10, 10) == (100, 100, 100) and rgb(drawn, 3, 17) == (100, 100, 100)


def test_a_keypoint_is_drawn_where_it_is_and_limbs_join_the_sure_ones():
    points = np.array([[[10.0, 10.0, 0.9], [40.0, 10.0, 0.9], [25.0, 40.0, 0.1]]])
    limb = (0, 0, 255)
    drawn = draw_prediction(blank(50, 50), ImagePrediction(50, 50, keypoints=points),
                            Style(skeleton=[(0, 1), (1, 2)], limb_colours=[limb],
                                  joint_colour=(255, 0, 0), line_width=1))
    assert rgb(drawn, 10, 10) == (255, 0, 0) and rgb(drawn, 10, 40) == (255, 0, 0)  # joints
    assert rgb(drawn, 10, 25) == limb                                      # the limb 0-1
    assert rgb(drawn, 40, 25) == (0, 0, 0)                                 # joint 2: unsure
    assert rgb(drawn, 30, 28) == (0, 0, 0)                                 # no limb 1-2
    # In pixels of a 100 x 100 image: the joint moves with the scale.
    scaled = draw_prediction(blank(50, 50), ImagePrediction(
        100, 100, keypoints=points * np.array([2.0, 2.0, 1.0])), Style(joint_colour=(255, 0, 0)))
    assert rgb(scaled, 10, 10) == (255, 0, 0)


def test_one_class_for_the_image_frames_it_in_the_class_colour():
    drawn = draw_prediction(blank(40, 60), ImagePrediction(60, 40, label=1, confidence=0.7),
                            Style(class_names=NAMES, box_text=False, line_width=1))
    colour = palette(3)[1]
    assert rgb(drawn, 20, 0) == colour and rgb(drawn, 20, 59) == colour
    assert rgb(drawn, 0, 30) == colour and rgb(drawn, 39, 30) == colour
    assert rgb(drawn, 20, 30) == (0, 0, 0)


def test_only_uint8_rgb_images_are_drawn_on():
    with pytest.raises(ValueError, match="uint8"):
        draw_prediction(torch.zeros(3, 4, 4), ImagePrediction(4, 4, label=0))


def test_without_torchvision_the_extra_is_asked_for_by_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.utils", None)       # import fails
    with pytest.raises(ConfigError, match=r"needs torchvision, which is not installed: pip "
                                          r"install 'active-learning-cv\[vision\]'"):
        draw_prediction(blank(4, 4), ImagePrediction(4, 4, label=0))


def test_chosen_superpixels_are_coloured_and_the_rest_dimmed():
    grey = blank(20, 40, 200)
    region_map = np.repeat(np.arange(4)[None, :], 10, axis=1).repeat(20, axis=0)   # 4 columns
    drawn = draw_region_scores(grey, region_map, np.array([1, 3]), np.array([1.0, 0.0]))
    inside_high, inside_low, other = rgb(drawn, 10, 15), rgb(drawn, 10, 35), rgb(drawn, 10, 5)
    assert other == (140, 140, 140)                          # 0.7 x 200: not chosen
    assert inside_high != inside_low                         # the score sets the colour
    assert rgb(drawn, 10, 10) == (51, 255, 51)               # a chosen region's border: green
    with pytest.raises(ValueError, match="2 regions but 1 region scores"):
        draw_region_scores(grey, region_map, np.array([1, 3]), np.array([1.0]))


def test_region_borders_are_skimages_thick_boundaries():
    segmentation = pytest.importorskip("skimage.segmentation")
    region_map = np.random.default_rng(0).integers(0, 4, (30, 40))
    region_map[5:20, 5:30] = 9
    np.testing.assert_array_equal(region_boundaries(region_map),
                                  segmentation.find_boundaries(region_map, connectivity=1,
                                                               mode="thick"))


def test_a_pixel_score_is_a_heat_map_over_the_image():
    import matplotlib

    values = np.zeros((4, 6))
    values[:, 3:] = 2.0
    drawn = draw_pixel_scores(blank(4, 6), values, 0.0, 2.0)
    top = np.array(matplotlib.colormaps["magma"](1.0)[:3]) * 255 * 0.6
    bottom = np.array(matplotlib.colormaps["magma"](0.0)[:3]) * 255 * 0.6
    np.testing.assert_allclose(rgb(drawn, 2, 5), top, atol=1)
    np.testing.assert_allclose(rgb(drawn, 2, 0), bottom, atol=1)
