"""Classification labels from class folders and CSV files (a plain name,label CSV and Label
Studio's CSV export), checked against --images."""
from __future__ import annotations

import pytest

from active_learning.errors import DataError
from active_learning.labels import detect_format, read_labels
from label_exports import upload_name, write_image, write_images


@pytest.fixture
def photos(tmp_path):
    return write_images(tmp_path / "photos", {"x/1.jpg": (8, 8), "2.png": (8, 8), "3.jpg": (8, 8)})


def test_class_folders_with_and_without_images(tmp_path, photos):
    export = tmp_path / "sorted"
    write_image(export / "dog" / "x" / "1.jpg", 8, 8)
    write_image(export / "cat" / "2.png", 8, 8)
    (export / "fox").mkdir()                           # an empty class folder still names a class
    assert detect_format("class", export) == "folders"
    labels = read_labels("class", export, photos)
    assert labels.categories == ["cat", "dog", "fox"]   # sorted, as ImageFolder
    assert labels.targets == {"2.png": 0, "x/1.jpg": 1}
    assert labels.files == []
    # without --images the export holds the images, named <class>/<path>
    inside = read_labels("class", export)
    assert inside.targets == {"cat/2.png": 0, "dog/x/1.jpg": 1}
    assert inside.images_dir == export
    # the listing is the labels: moving an image to another class changes the checksum
    (export / "dog" / "x" / "1.jpg").rename(export / "fox" / "1.jpg")
    assert read_labels("class", export).checksum != inside.checksum


def test_one_image_in_two_class_folders_is_refused(tmp_path, photos):
    export = tmp_path / "sorted"
    write_image(export / "dog" / "2.png", 8, 8)
    write_image(export / "cat" / "2.png", 8, 8)
    with pytest.raises(DataError, match=r"dog/2.png: image 2.png is labeled twice with different "
                                        r"labels \(also by .*cat/2.png\)"):
        read_labels("class", export, photos)


def test_csv_with_and_without_header(tmp_path, photos):
    plain = tmp_path / "labels.csv"
    plain.write_text("x/1.jpg,dog\n2.png,cat\n3.jpg,\n")
    labels = read_labels("class", plain, photos)
    assert labels.categories == ["cat", "dog"] and labels.targets == {"x/1.jpg": 1, "2.png": 0}
    assert labels.unannotated == ["3.jpg"]                  # no label yet
    headed = tmp_path / "headed.csv"
    headed.write_text("score,label,name\n0.5,dog,x/1.jpg\n0.1,dog,x/1.jpg\n")
    assert read_labels("class", headed, photos).targets == {"x/1.jpg": 0}
    # the workspace's categories may hold more names than the labels use; a new name is
    # appended after them (a class first labeled in a later round)
    wider = read_labels("class", plain, photos, categories=["dog", "cat", "fox"])
    assert wider.categories == ["dog", "cat", "fox"] and wider.targets["2.png"] == 1
    grown = read_labels("class", plain, photos, categories=["cat", "fox"])
    assert grown.categories == ["cat", "fox", "dog"]
    assert grown.targets["2.png"] == 0 and set(grown.targets.values()) == {0, 2}


def test_label_studio_csv_export(tmp_path, photos):
    csv = tmp_path / "result.csv"
    csv.write_text("image,id,choice,annotator,annotation_id,created_at,updated_at,lead_time\n"
                   f"/data/upload/3/{upload_name('2.png')},7,cat,1,11,2026,2026,3.5\n"
                   "/data/local-files/?d=photos/x/1.jpg,8,dog,1,12,2026,2026,2.0\n")
    labels = read_labels("class", csv, photos)
    assert labels.targets == {"2.png": 0, "x/1.jpg": 1}


@pytest.mark.parametrize("rows, message", [
    ("x/1.jpg,dog\nnope.jpg,cat\n", r"labels.csv: line 2: image 'nope.jpg' is not under --images"),
    ("x/1.jpg,dog\nx/1.jpg,cat\n", r"labels.csv: line 2: image x/1.jpg is labeled twice with "
                                   r"different labels \(also by .*labels.csv: line 1\)"),
    ("x/1.jpg\n", r"labels.csv: line 1 has 1 column\(s\)"),
])
def test_bad_csv_rows_name_the_line(tmp_path, photos, rows, message):
    path = tmp_path / "labels.csv"
    path.write_text(rows)
    with pytest.raises(DataError, match=message):
        read_labels("class", path, photos)
