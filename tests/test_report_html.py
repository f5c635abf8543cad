"""The static report: thumbnails, the class histogram, the t-SNE map, the page and its files,
and the command line that builds it for a run folder."""
from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from active_learning.drawing.palette import palette
from active_learning.drawing.predictions import Style
from active_learning.files.predictions import ImagePrediction
from active_learning.reports.class_histogram import class_counts
from active_learning.reports.embedding_map import subsample_points, tsne_coordinates
from active_learning.reports.html import main
from active_learning.reports.page import ChosenImage, Selection, write_report
from active_learning.reports.thumbnails import render_thumbnail
from report_fixtures import CLASSES, make_run_folder, round_selection, write_round_report


class PageParser(HTMLParser):
    """Collects the page's image sources, link targets, grid cards and table rows."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.cards, self.scripts, self.styles = [], [], [], [], []
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "figure":
            self.cards.append(attrs)
        elif tag == "script":
            self.scripts.append(attrs.get("src"))
        elif tag == "link" and attrs.get("rel") == "stylesheet":
            self.styles.append(attrs["href"])

    def handle_data(self, data):
        self.text.append(data)


def parse(index: Path) -> PageParser:
    parser = PageParser()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


def test_the_map_keeps_every_chosen_point_and_the_others_in_proportion():
    status = np.array(["chosen"] * 30 + ["labeled"] * 300 + ["unlabeled"] * 900)
    kept = subsample_points(status, max_points=230, seed=1)
    assert len(kept) == 230 and np.all(np.diff(kept) > 0)
    assert (status[kept] == "chosen").sum() == 30
    assert (status[kept] == "labeled").sum() == 50          # 200 x 300 / 1200
    assert (status[kept] == "unlabeled").sum() == 150
    np.testing.assert_array_equal(kept, subsample_points(status, 230, seed=1))
    assert len(subsample_points(status, 10_000)) == len(status)
    assert set(status[subsample_points(status, 12)]) == {"chosen"}


def test_class_counts_by_hand():
    classes = np.array([0, 1, 1, 2, -1, 2, 0, 1])
    status = np.array(["labeled", "labeled", "chosen", "chosen", "chosen", "unlabeled", "labeled",
                       "labeled"])
    counts = class_counts(classes, status, 3)
    np.testing.assert_array_equal(counts["labeled"], [2, 2, 0])
    np.testing.assert_array_equal(counts["chosen"], [0, 1, 1])


def test_a_thumbnail_scales_the_prediction_to_its_size():
    black = np.zeros((100, 200, 3), dtype=np.uint8)
    prediction = ImagePrediction(400, 200, boxes=np.array([[40.0, 40.0, 200.0, 160.0]]),
                                 labels=np.array([1]))
    # The prediction is in pixels of a 400 x 200 image; the file is 200 x 100: half the scale.
    picture = np.asarray(render_thumbnail(black, prediction=prediction,
                                          style=Style(class_names=CLASSES), max_side=200))
    colour = palette(3)[1]
    assert tuple(picture[50, 20]) == colour                  # left edge at x = 40 / 2
    assert tuple(picture[50, 100]) == colour                 # right edge at x = 200 / 2
    assert tuple(picture[50, 60]) == (0, 0, 0)               # inside stays as it was
    assert tuple(picture[50, 150]) == (0, 0, 0)
    # Enlarged to max_side: a 20 x 10 image becomes 200 x 100, its box with it.
    small = render_thumbnail(np.zeros((10, 20, 3), dtype=np.uint8), max_side=200,
                             prediction=ImagePrediction(20, 10, boxes=np.array([[2.0, 2, 10, 8]])))
    assert small.size == (200, 100) and tuple(np.asarray(small)[50, 20]) == palette(1)[0]


def test_a_thumbnails_superpixels_are_scaled_to_it():
    grey = np.full((20, 40, 3), 200, dtype=np.uint8)
    region_map = np.repeat(np.arange(4), 5)[None, :].repeat(10, axis=0)        # [10, 20]
    picture = np.asarray(render_thumbnail(grey, region_map=region_map, regions=np.array([1]),
                                          region_scores=np.array([1.0]), max_side=40))
    assert tuple(picture[10, 2]) == (140, 140, 140)         # region 0: dimmed
    assert tuple(picture[10, 15]) != (140, 140, 140)        # region 1 (x 10..19): coloured


def test_tsne_keeps_two_clusters_apart():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    points = np.r_[rng.normal(0, 1, (25, 60)), rng.normal(8, 1, (25, 60))]    # D > 50: PCA first
    coordinates = tsne_coordinates(points, seed=0)
    assert coordinates.shape == (50, 2)
    group = np.r_[np.zeros(25), np.ones(25)]
    distances = np.linalg.norm(coordinates[:, None] - coordinates[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert (group[distances.argmin(axis=1)] == group).all()  # each point's neighbour: its group
    np.testing.assert_allclose(coordinates, tsne_coordinates(points, seed=0))
    assert tsne_coordinates(points[:4]).shape == (4, 2)


def test_the_round_page_and_every_file_it_names(tmp_path):
    pytest.importorskip("sklearn")
    index = write_round_report(tmp_path)
    page = parse(index)
    folder = index.parent
    assert page.styles == ["assets/report.css"] and page.scripts == ["assets/report.js"]
    for source in page.images + page.styles + [s for s in page.scripts if s]:
        assert (folder / unquote(source)).is_file(), source
    for target in page.links:
        assert (folder / unquote(target)).exists(), target
    # Five thumbnails (one item has no image), in the given order, each with rank and score.
    assert [card["data-name"] for card in page.cards] == ["det/a <1>.jpg", "pose.png", "seg.png",
                                                          "sp.png", "cls.png"]
    assert [float(card["data-score"]) for card in page.cards] == [0.9, 0.3, 0.7, 0.5, 0.1]
    assert [card["data-rank"] for card in page.cards] == ["1", "2", "3", "4", "5"]
    for name in ("learning_curve.png", "s00_classes.png", "s00_map.png"):
        assert f"img/{name}" in page.images
    with Image.open(folder / "img" / "s00_00001.jpg") as thumbnail:
        assert max(thumbnail.size) == 320
    text = "".join(page.text)
    assert "a round <2>" in text and "bird <&>" in text      # names reach the page as text
    assert "<2>" not in index.read_text().replace("&lt;2&gt;", "")   # ... escaped
    assert "predicted: dog (0.60)" in text and "2 superpixel(s) chosen" in text
    assert "no image.png" in text                            # listed in the table


def test_thumbnails_are_capped_and_the_table_lists_all(tmp_path):
    images = tmp_path / "images"
    selection = round_selection(images)
    selection.embedding_map = None
    index = write_report(tmp_path / "r", title="t", selections=[selection], max_thumbnails=2,
                         class_names=CLASSES)
    page = parse(index)
    assert len(page.cards) == 2 and "the first 2 of 6 by rank" in "".join(page.text)
    assert "cls.png" in "".join(page.text)


def test_a_folded_section_and_a_picture_shown_as_it_is(tmp_path):
    picture = tmp_path / "selection.png"
    Image.new("RGB", (30, 20), "red").save(picture)
    index = write_report(tmp_path / "r", title="t", selections=[
        Selection("cycle 00", chosen=[ChosenImage("a.png", 1.0)], pictures=[picture], open=False)])
    html = index.read_text()
    assert "<details><summary>cycle 00</summary>" in html
    copied = index.parent / "img" / "s00_picture0.png"
    assert copied.read_bytes() == picture.read_bytes()


def test_the_command_line_builds_the_page_of_a_run_folder(tmp_path, capsys):
    pytest.importorskip("sklearn")
    images = tmp_path / "pool"
    run = make_run_folder(tmp_path / "runs", images)
    assert main([str(run), "--images", str(images), "--max-map-points", "30"]) == 0
    index = run / "report" / "index.html"
    assert capsys.readouterr().out.strip() == f"wrote {index}"
    page = parse(index)
    for source in page.images:
        assert (index.parent / unquote(source)).is_file(), source
    hrefs = {unquote(target) for target in page.links}
    assert {"../metrics.csv", "../args.json", "../priorities/cycle_00.csv",
            "../regions/cycle_01.csv"} <= hrefs
    # Each cycle's two images, drawn with their chosen superpixels; the CSV values as scores.
    assert [card["data-name"] for card in page.cards] == ["img0_0.png", "img0_1.png",
                                                          "img1_0.png", "img1_1.png"]
    assert [float(card["data-score"]) for card in page.cards[:2]] == [0.8, 0.4]
    text = "".join(page.text)
    assert "2 superpixel(s) chosen" in text and "1 superpixel(s) chosen" in text
    assert "img/s01_map.png" in page.images and "img/s01_classes.png" in page.images
    assert "img/learning_curve.png" in page.images
    assert "entropy" in text and "miou" in text
    assert "<details><summary>cycle 00" in index.read_text()     # older cycles folded


def test_without_images_the_run_pictures_are_shown(tmp_path):
    run = make_run_folder(tmp_path / "runs", tmp_path / "pool")
    (run / "embeddings" / "cycle_01.npz").unlink()
    out = tmp_path / "elsewhere"
    assert main([str(run), "--output", str(out)]) == 0
    page = parse(out / "index.html")
    assert not page.cards
    assert {"img/s00_picture0.png", "img/s01_picture0.png"} <= set(page.images)
    assert "../runs/segmentation/toy/entropy/seed0/metrics.csv" in {unquote(t) for t in page.links}


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a run folder" in err and err.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_class_counts_must_match_the_class_names(tmp_path):
    selection = Selection("r", class_counts={"labeled": [1, 2]})
    with pytest.raises(ValueError, match="have 2 entries for 3 classes"):
        write_report(tmp_path / "r", title="t", selections=[selection], class_names=CLASSES)


def test_every_name_reaches_the_page_escaped(tmp_path):
    attack = "<script>alert('x')</script>"
    image = tmp_path / "a.png"
    Image.new("RGB", (16, 16), "white").save(image)
    chosen = [ChosenImage(f"{attack}.png", 0.5, image, ImagePrediction(16, 16, label=0),
                          note=attack)]
    selection = Selection(attack, chosen=chosen, class_counts={"labeled": [1, 2]},
                          class_note=attack, links={attack: image})
    index = write_report(tmp_path / "r", title=attack, selections=[selection],
                         summary={attack: attack}, class_names=[attack, "dog"],
                         metrics_rows=[{"cycle": 0, "n_labeled": 1, "note": attack}])
    html = index.read_text(encoding="utf-8")
    assert "<script>alert" not in html and html.count("<script") == 1     # the page's own
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    page = parse(index)
    text = "".join(page.text)
    # title, heading, summary key and value, section, name, alt, predicted class, note, class
    # note, class table, cycle table, item table, link text
    assert text.count(attack) >= 10
    assert page.cards[0]["data-name"] == f"{attack}.png"                  # an attribute too


def test_without_scikit_learn_the_page_is_written_and_says_why_the_map_is_missing(
        tmp_path, monkeypatch):
    # what an install without the report extra looks like: the page, not a traceback
    for name in ("sklearn", "sklearn.manifold", "sklearn.decomposition"):
        monkeypatch.setitem(sys.modules, name, None)
    index = write_round_report(tmp_path)
    text = index.read_text()
    assert "Left out: the t-SNE map needs scikit-learn" in text
    assert not list((index.parent / "img").glob("*_map.png"))


def test_the_page_keys_the_mask_colours_and_says_when_scores_tie_or_no_box_is_shown(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 6), "gray").save(image)
    mask = np.zeros((6, 8), dtype=np.int64)
    mask[:, 4:] = 2                                  # classes 0 and 2 drawn, 1 absent, 255 ignored
    mask[0, 0] = 255
    style_colours = palette(3)
    masked = Selection("masks", chosen=[
        ChosenImage("a.png", 0.5, image=image, prediction=ImagePrediction(8, 6, mask=mask)),
        ChosenImage("b.png", 0.4, image=image, prediction=ImagePrediction(8, 6, mask=mask))])
    index = write_report(tmp_path / "m", title="t", selections=[masked], class_names=["road", "car", "sky"])
    html = index.read_text()
    key = html[html.index('class="key"'):html.index("</p>", html.index('class="key"'))]
    expected = ["#{:02x}{:02x}{:02x}".format(*style_colours[label]) for label in (0, 2)]
    assert key == ('class="key">Mask colours: '
                   f'<span class="swatch" style="background: {expected[0]}"></span>road · '
                   f'<span class="swatch" style="background: {expected[1]}"></span>sky')
    assert "same score" not in html and "clears the minimum" not in html
    empty_boxes = ImagePrediction(8, 6, boxes=np.zeros((0, 4)), labels=np.zeros(0, dtype=int),
                                  box_scores=np.zeros(0))
    tied = Selection("boxes", chosen=[ChosenImage(f"{n}.png", 0.25, image=image, prediction=empty_boxes)
                                      for n in "xyz"])
    html = write_report(tmp_path / "b", title="t", selections=[tied]).read_text()
    assert "Every chosen item has the same score (0.25)" in html
    assert "No box on any of the 3 images shown clears the minimum prediction score" in html
    assert html.count("no box clears the minimum score") == 3 and 'class="key"' not in html
    one_box = ImagePrediction(8, 6, boxes=np.array([[1.0, 1, 4, 4]]), labels=np.array([0]),
                              box_scores=np.array([0.9]))
    mixed = Selection("boxes", chosen=[ChosenImage("x.png", 0.3, image=image, prediction=empty_boxes),
                                       ChosenImage("y.png", 0.2, image=image, prediction=one_box)])
    html = write_report(tmp_path / "c", title="t", selections=[mixed], class_names=["car"]).read_text()
    assert "No box on any" not in html and "same score" not in html
    assert html.count("no box clears the minimum score") == 1
