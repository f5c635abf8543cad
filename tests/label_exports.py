"""Annotation tools' exports, written by the tests in the shapes the tools write them.

Each writer follows its tool's exporter (cited in ``active_learning/labels``):

* CVAT COCO 1.0 / COCO Keypoints 1.0: Datumaro's ``CocoExporter`` -- ``annotations/
  instances_default.json``, images under ``images/default/``, ids from 1, every label listed as
  a category (``supercategory: ""``), every frame listed, ``segmentation: []`` for a box, masks
  as uncompressed RLE with ``iscrowd: 1``, ``attributes`` on every annotation, licenses and info.
* Label Studio COCO: ``result.json`` with ids from 0, categories from 0 in name order, file
  names ``images/<8 hex>-<upload name>``, whole-pixel boxes, ``ignore: 0``, only annotated tasks.
* Roboflow COCO: ``<split>/_annotations.coco.json`` beside ``<name>_<ext>.rf.<hash>.jpg`` images,
  a root category 0 that the classes name as supercategory.
* CVAT PASCAL VOC: ``Annotations/<id>.xml`` with 0-based float boxes, ``<occluded>``,
  ``<attributes>``, ``labelmap.txt``; Label Studio VOC: ``<filename>`` without extension.
* CVAT segmentation masks: ``SegmentationClass/<id>.png`` in labelmap colours + ``labelmap.txt``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A small RGB image of noise (JPEG or PNG by its suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_images(folder: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    """``sizes``: name -> (width, height)."""
    for seed, (name, (width, height)) in enumerate(sizes.items()):
        write_image(folder / name, width, height, seed)
    return folder


def _write_json(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def cvat_coco(root: Path, labels: Sequence[str], images: Sequence[dict],
              annotations: Sequence[dict], *, keypoints: Sequence[str] = ()) -> Path:
    """CVAT's COCO 1.0 (or, with ``keypoints``, COCO Keypoints 1.0) export under ``root``.

    ``images``: dicts with ``file_name``, ``width``, ``height`` (ids given here from 1);
    ``annotations``: dicts with ``image`` (index into ``images``), ``label`` (a name) and the
    COCO fields the test sets (``bbox``, ``segmentation``, ``keypoints``, ``iscrowd``).
    """
    categories = []
    for number, name in enumerate(labels):
        category = {"id": number + 1, "name": name, "supercategory": ""}
        if keypoints:
            category.update({"keypoints": list(keypoints), "skeleton": []})
        categories.append(category)
    entries = [{"id": number + 1, "width": image["width"], "height": image["height"],
                "file_name": image["file_name"], "license": 0, "flickr_url": "", "coco_url": "",
                "date_captured": 0} for number, image in enumerate(images)]
    notes = []
    for number, note in enumerate(annotations):
        segmentation = note.get("segmentation", [])
        bbox = note.get("bbox", [0, 0, 0, 0])
        entry = {"id": number + 1, "image_id": note["image"] + 1,
                 "category_id": labels.index(note["label"]) + 1, "segmentation": segmentation,
                 "area": float(bbox[2] * bbox[3]), "bbox": [float(v) for v in bbox],
                 "iscrowd": int(note.get("iscrowd", isinstance(segmentation, dict))),
                 "attributes": {"occluded": False, **note.get("attributes", {})}}
        if "keypoints" in note:
            entry["keypoints"] = note["keypoints"]
            entry["num_keypoints"] = int(sum(1 for v in note["keypoints"][2::3] if v > 0))
        notes.append(entry)
    document = {"licenses": [{"name": "", "id": 0, "url": ""}],
                "info": {"contributor": "", "date_created": "", "description": "", "url": "",
                         "version": "", "year": ""},
                "categories": categories, "images": entries, "annotations": notes}
    task = "person_keypoints" if keypoints else "instances"
    return _write_json(root / "annotations" / f"{task}_default.json", document)


def upload_name(name: str) -> str:
    """Label Studio's name of an uploaded file: 8 hex digits, ``-``, the file name."""
    return f"{hashlib.md5(name.encode()).hexdigest()[:8]}-{name}"


def label_studio_coco(folder: Path, labels: Sequence[str], images: Sequence[dict],
                      annotations: Sequence[dict]) -> Path:
    """Label Studio's COCO export: ``folder/result.json``. ``images[i]["file_name"]`` is the
    uploaded file's name (written as ``images/<8 hex>-<name>``); only annotated images are
    listed, ids from 0; boxes are truncated to whole pixels as its converter does."""
    names = sorted(labels)
    categories = [{"id": number, "name": name} for number, name in enumerate(names)]
    annotated = sorted({note["image"] for note in annotations})
    position = {image: number for number, image in enumerate(annotated)}
    entries = [{"width": images[i]["width"], "height": images[i]["height"], "id": position[i],
                "file_name": f"images/{upload_name(images[i]['file_name'])}"} for i in annotated]
    notes = []
    for number, note in enumerate(annotations):
        x, y, w, h = (int(v) for v in note["bbox"])
        notes.append({"id": number, "image_id": position[note["image"]],
                      "category_id": names.index(note["label"]), "segmentation": [],
                      "bbox": [x, y, w, h], "ignore": 0, "iscrowd": 0, "area": w * h})
    return _write_json(folder / "result.json", {
        "images": entries, "categories": categories, "annotations": notes,
        "info": {"year": 2026, "version": "1.0", "description": "", "contributor": "Label Studio",
                 "url": "", "date_created": "2026-11-27 10:00:00"}})


def roboflow_name(name: str) -> str:
    """Roboflow's name of an exported image: dots to underscores, ``.rf.<32 hex>.jpg``."""
    return f"{name.replace('.', '_')}.rf.{hashlib.md5(name.encode()).hexdigest()}.jpg"


def roboflow_coco(split_dir: Path, project: str, labels: Sequence[str], images: Sequence[dict],
                  annotations: Sequence[dict], *, write_images: bool = True) -> Path:
    """Roboflow's COCO JSON for one split: ``split_dir/_annotations.coco.json`` beside the
    renamed images (written when ``write_images``)."""
    categories = [{"id": 0, "name": project, "supercategory": "none"}]
    categories += [{"id": number, "name": name, "supercategory": project}
                   for number, name in enumerate(labels, start=1)]
    entries = [{"id": number, "license": 1, "file_name": roboflow_name(image["file_name"]),
                "height": image["height"], "width": image["width"],
                "date_captured": "2026-11-27T10:00:00+00:00"}
               for number, image in enumerate(images)]
    if write_images:
        for seed, entry in enumerate(entries):
            write_image(split_dir / entry["file_name"], entry["width"], entry["height"], seed)
    notes = [{"id": number, "image_id": note["image"],
              "category_id": labels.index(note["label"]) + 1, "bbox": list(note["bbox"]),
              "area": note["bbox"][2] * note["bbox"][3], "segmentation": [], "iscrowd": 0}
             for number, note in enumerate(annotations)]
    return _write_json(split_dir / "_annotations.coco.json", {
        "info": {"year": "2026", "version": "1", "description": "Exported from roboflow.com"},
        "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/",
                      "name": "CC BY 4.0"}],
        "categories": categories, "images": entries, "annotations": notes})


def voc_xml(filename: str, size: tuple[int, int] | None, objects: Sequence[tuple],
            *, style: str = "cvat") -> str:
    """One VOC XML as CVAT (Datumaro) or Label Studio writes it. ``objects``: (name, x1, y1, x2,
    y2) in the tool's 0-based coordinates, optionally a 6th item ``difficult``."""
    parts = ["<annotation>", "<folder></folder>" if style == "cvat" else "<folder>images</folder>",
             f"<filename>{filename}</filename>",
             "<source><database>Unknown</database><annotation>Unknown</annotation>"
             "<image>Unknown</image></source>"]
    if size is not None:
        depth = "" if style == "cvat" else "3"
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height>"
                     f"<depth>{depth}</depth></size>")
    parts.append("<segmented>0</segmented>")
    for entry in objects:
        name, x1, y1, x2, y2 = entry[:5]
        difficult = int(entry[5]) if len(entry) > 5 else 0
        occluded = "<occluded>0</occluded>" if style == "cvat" else ""
        attributes = ("<attributes><attribute><name>color</name><value>red</value></attribute>"
                      "</attributes>") if style == "cvat" else ""
        parts.append(f"<object><name>{name}</name><pose>Unspecified</pose>"
                     f"<truncated>0</truncated>{occluded}<difficult>{difficult}</difficult>"
                     f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
                     f"<ymax>{y2}</ymax></bndbox>{attributes}</object>")
    parts.append("</annotation>")
    return "\n".join(parts)


def label_map(path: Path, entries: Sequence[tuple[str, tuple[int, int, int]]]) -> Path:
    """Datumaro's ``labelmap.txt``."""
    lines = ["# label:color_rgb:parts:actions"]
    lines += [f"{name}:{r},{g},{b}::" for name, (r, g, b) in entries]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def paint(classes: np.ndarray, colors: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """Class ids [H, W] -> RGB uint8 [H, W, 3], class k in ``colors[k]``."""
    return np.asarray(colors, dtype=np.uint8)[classes]


def rle_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of a binary mask [H, W]: run lengths in column-major order,
    starting with a run of zeros (written out here, not with pycocotools)."""
    flat = mask.T.reshape(-1).astype(np.uint8)
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    counts.append(run)
    return counts
