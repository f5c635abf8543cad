"""What every format shares: how a tool's image reference finds an image, the category rules,
the checksum, and that reading an export writes nothing."""
from __future__ import annotations

import os

import pytest

from active_learning.errors import DataError
from active_learning.labels import detect_format, read_labels
from active_learning.labels.categories import drop_grouping_categories, match_categories
from active_learning.labels.images import ImageIndex
from label_exports import cvat_coco, roboflow_name, upload_name, write_images

NAMES = ["a/x.jpg", "b/x.jpg", "c/photo.JPG", "d.e/f.g.png", "top.png"]


@pytest.fixture
def index(tmp_path):
    return ImageIndex(tmp_path, NAMES)


@pytest.mark.parametrize("reference, expected", [
    ("a/x.jpg", "a/x.jpg"),                                 # the name itself
    ("./a/x.jpg", "a/x.jpg"),
    ("images/default/a/x.jpg", "a/x.jpg"),                  # leading folders dropped
    ("https://bucket.example/data/c/photo.JPG?x=1", "c/photo.JPG"),
    ("/data/local-files/?d=mnt/pics/top.png", "top.png"),   # Label Studio local storage
    ("photo.JPG", "c/photo.JPG"),                           # unique file name
    (f"images/{upload_name('top.png')}", "top.png"),         # Label Studio upload prefix
    (roboflow_name("photo.JPG"), "c/photo.JPG"),            # Roboflow's rename
    (roboflow_name("f.g.png"), "d.e/f.g.png"),
    ("missing.jpg", None),
    ("", None),
])
def test_references_as_tools_write_them_find_their_image(index, reference, expected):
    assert index.resolve(reference, "export.json") == expected


def test_an_absolute_path_under_images_and_layout_prefixes(tmp_path, index):
    assert index.resolve(str(tmp_path / "top.png"), "x") == "top.png"
    assert index.resolve("x.jpg", "x", prefixes=["b"]) == "b/x.jpg"


def test_a_file_name_two_images_share_is_refused_not_guessed(index):
    with pytest.raises(DataError, match=r"export.json: image 'somewhere/x.jpg' could be any of 2 images "
                                        r".*\(a/x.jpg, b/x.jpg\)"):
        index.resolve("somewhere/x.jpg", "export.json")
    assert index.resolve_stem("a/x", "w") == "a/x.jpg"
    assert index.resolve_stem("photo", "w") == "c/photo.JPG"
    with pytest.raises(DataError, match="could be any of 2"):
        index.resolve_stem("x", "w")


def test_category_rules():
    assert match_categories(["b", "a"], None, "s", complete=True) == ["b", "a"]
    assert match_categories(["b", "a"], ["a", "b"], "s", complete=True) == ["a", "b"]
    assert match_categories(["a"], ["a", "b"], "s", complete=False) == ["a", "b"]
    # a new name is appended after the workspace's, new ones in the export's order
    assert match_categories(["b", "z", "a", "c"], ["a", "b"], "s", complete=True) == \
        ["a", "b", "z", "c"]
    with pytest.raises(DataError, match="gone: b"):
        match_categories(["a"], ["a", "b"], "s", complete=True)
    with pytest.raises(DataError, match="'a' is listed twice"):
        match_categories(["a", "a"], None, "s", complete=True)
    roboflow = [{"id": 0, "name": "proj", "supercategory": "none"},
                {"id": 1, "name": "cat", "supercategory": "proj"}]
    assert [c["name"] for c in drop_grouping_categories(roboflow, {1})] == ["cat"]
    # a parent that labels something, or COCO's own "person" of supercategory "person", stays
    assert len(drop_grouping_categories(roboflow, {0, 1})) == 2
    person = [{"id": 1, "name": "person", "supercategory": "person"}]
    assert drop_grouping_categories(person, set()) == person


def test_checksum_follows_the_export_and_reading_writes_nothing(tmp_path):
    photos = write_images(tmp_path / "photos", {"a.jpg": (10, 10)})
    image = [{"file_name": "a.jpg", "width": 10, "height": 10}]
    path = cvat_coco(tmp_path / "cvat", ["car"], image,
                     [{"image": 0, "label": "car", "bbox": [1, 1, 2, 2]}])

    def snapshot():
        return {(root, name, os.stat(os.path.join(root, name)).st_mtime_ns)
                for folder in (tmp_path,) for root, _, names in os.walk(folder) for name in names}

    before = snapshot()
    first = read_labels("boxes", path, photos)
    assert snapshot() == before
    assert read_labels("boxes", path, photos).checksum == first.checksum
    cvat_coco(tmp_path / "cvat", ["car"], image,
              [{"image": 0, "label": "car", "bbox": [1, 1, 3, 2]}])
    assert read_labels("boxes", path, photos).checksum != first.checksum


def test_formats_told_from_the_path(tmp_path):
    (tmp_path / "e.json").write_text("{}")
    (tmp_path / "l.csv").write_text("a,b\n")
    assert detect_format("boxes", tmp_path / "e.json") == "coco"
    assert detect_format("class", tmp_path / "l.csv") == "csv"
    roboflow = tmp_path / "rf" / "train"
    roboflow.mkdir(parents=True)
    (roboflow / "_annotations.coco.json").write_text("{}")
    assert detect_format("boxes", roboflow) == "coco"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="found no coco or voc export"):
        detect_format("boxes", empty)
    with pytest.raises(DataError, match="--labels not found"):
        read_labels("boxes", tmp_path / "nothing.json", tmp_path)
    with pytest.raises(DataError, match=r"e.json has no 'images' list|is not in the COCO format"):
        read_labels("boxes", tmp_path / "e.json",
                    write_images(tmp_path / "p", {"a.png": (4, 4)}))
