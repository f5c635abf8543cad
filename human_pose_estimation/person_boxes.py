"""Person boxes for images nobody labeled: top-down pose estimation scores persons in their boxes.

Two sources:

* a COCO detections JSON (``--person-boxes FILE``): a list of ``{"image_id" or "file_name",
  "bbox": [x, y, w, h], "score", "category_id"}``, what a person detector writes (HRNet reads
  ``COCO_val2017_detections_AP_H_56_person.json``, the same format); :func:`read_detections`;
* a person detector run here (``--person-boxes auto``): a COCO-trained torchvision detector
  named by its weights (``--person-detector FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1``),
  found in torch.hub's cache or downloaded there as ``--weights`` names are
  (``active_learning.files.pretrained``); :func:`detect_persons`. Its boxes of COCO's
  ``person`` category are kept in the round's workspace (``person_boxes/<detector>.json``), so
  each image is detected once over all rounds. This project's own detector writes the JSON of
  the first source: ``python -m object_detection.detect`` (task folders do not import each
  other, so pose reads its file rather than its model).

:func:`persons_of_boxes` turns boxes into the pool's unlabeled persons (``Person`` without
keypoints), at most the ``max_persons`` best-scored of an image above ``min_score``.
"""
from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import ConfigError, DataError
from active_learning.files.atomic import atomic_write_text

from .coco import Person, PoseData, PoseImage

logger = logging.getLogger("active_learning")

# name -> that image's person boxes: (x, y, w, h, score) each, in pixels of the image file.
Boxes = dict[str, list[tuple[float, float, float, float, float]]]

AUTO = "auto"
DEFAULT_DETECTOR = "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1"
AUTO_MIN_SCORE = 0.5          # --min-box-score's default with auto (a file's is 0: every box)
CACHE_FOLDER = "person_boxes"
SAVE_EVERY = 200              # images detected between two saves of the cache (a long run
                              # that stops keeps what it found)


def read_detections(boxes_file: str | Path, folder: Path, names: Sequence[str], *,
                    min_score: float = 0.0) -> tuple[Boxes, dict[str, int]]:
    """The person boxes of a COCO detections JSON, by image name.

    ``names``: the images under ``folder`` (paths relative to it). An entry finds its image by
    a ``"file_name"`` (relative to ``folder``) if it has one, else by COCO's naming: the image
    whose file stem is the id (``000000391895.jpg`` for 391895). Boxes of other categories than
    1 (COCO's person), scored below ``min_score`` or of zero size are left out. A ``{"annotations":
    [...]}`` document is read as its list.

    Returns (name -> boxes (x, y, w, h, score), in the file's order of first appearance;
    name -> the entry's ``image_id`` where it gave one).

    Raises:
        DataError: a missing or malformed file, an entry for an image not under ``folder``.
    """
    boxes_file = Path(boxes_file)
    if not boxes_file.is_file():
        raise DataError(f"--person-boxes file not found: {boxes_file} (top-down pose estimation "
                        "scores persons: give a COCO detections JSON of person boxes for "
                        "the unlabeled images)")
    try:
        entries = json.loads(boxes_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{boxes_file} is not JSON: {error}") from None
    if isinstance(entries, dict) and "annotations" in entries:
        entries = entries["annotations"]
    if not isinstance(entries, list):
        raise DataError(f"{boxes_file} must be a list of detections (image_id, bbox, score)")
    known = set(names)
    by_id: dict[int, str] = {}
    for name in names:
        stem = Path(name).stem
        if stem.isdigit():
            by_id.setdefault(int(stem), name)
    boxes: Boxes = {}
    image_ids: dict[str, int] = {}
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or "bbox" not in entry or len(entry["bbox"]) != 4:
            raise DataError(f"{boxes_file}: entry {number} has no 'bbox' of 4 numbers")
        score = float(entry.get("score", 1.0))
        if entry.get("category_id", 1) != 1 or score < min_score:
            continue
        x, y, w, h = (float(v) for v in entry["bbox"])
        if w <= 0 or h <= 0:
            continue
        name = entry.get("file_name")
        if name is None:
            if "image_id" not in entry:
                raise DataError(f"{boxes_file}: entry {number} has neither "
                                "'file_name' nor 'image_id'")
            name = by_id.get(int(entry["image_id"]))
            if name is None:
                raise DataError(f"{boxes_file}: entry {number}: no image for image_id "
                                f"{entry['image_id']} under {folder} (expected a file named "
                                f"{int(entry['image_id']):012d}.jpg)")
        if name not in known:
            raise DataError(f"{boxes_file}: entry {number}: image {name} not found under {folder}")
        boxes.setdefault(name, []).append((x, y, w, h, score))
        if "image_id" in entry:
            image_ids.setdefault(name, entry["image_id"])
    return boxes, image_ids


def persons_of_boxes(folder: Path, names: Iterable[str], boxes: Mapping[str, Sequence[Any]], *,
                     min_score: float = 0.0, max_persons: int = 0,
                     image_ids: Mapping[str, int] | None = None) -> PoseData:
    """The images of ``names`` (in that order) that have a person box, each with its persons
    (keypoints None): the boxes (x, y, w, h, score) scored at least ``min_score``, the
    ``max_persons`` best of each image (0: all; the best first, ties in the given order)."""
    images: list[PoseImage] = []
    persons: list[Person] = []
    for name in names:
        kept = [box for box in boxes.get(name, ()) if box[4] >= min_score]
        if max_persons:
            kept = sorted(kept, key=lambda box: -box[4])[:max_persons]
        if not kept:
            continue
        for x, y, w, h, score in kept:
            persons.append(Person(len(images), (x, y, w, h), None, score=float(score)))
        images.append(PoseImage(folder / name, name, (image_ids or {}).get(name)))
    return PoseData(images, persons)


def warn_without_boxes(without: int, total: int, where: str) -> None:
    """One warning for the images that no person box makes rankable."""
    if without:
        warnings.warn(f"{without} of the {total} images have no person box {where} and are not "
                      "ranked", stacklevel=3)


# ---- a torchvision detector ------------------------------------------------------------------


def cache_path(workspace: str | Path, detector: str) -> Path:
    """Where the workspace keeps ``detector``'s boxes: ``person_boxes/<detector>.json``."""
    return Path(workspace) / CACHE_FOLDER / (re.sub(r"[^A-Za-z0-9_.-]+", "_", detector) + ".json")


def read_cache(path: Path, detector: str) -> Boxes:
    """The boxes a workspace kept for ``detector`` (empty when there are none yet)."""
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved["detector"] != detector:
            return {}
        return {name: [tuple(float(v) for v in box) for box in found]  # type: ignore[misc]
                for name, found in saved["images"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("%s cannot be read: the images are detected again", path)
        return {}


def write_cache(path: Path, detector: str, boxes: Boxes) -> None:
    atomic_write_text(path, json.dumps({"detector": detector, "category": "person",
                                        "box": "x, y, w, h, score", "images": boxes}) + "\n")


def detector_builder(spec: str, flag: str = "--person-detector") -> tuple[str, list[str]]:
    """The torchvision builder of the detector whose weights ``spec`` names, and the weights'
    categories; ConfigError for a name that is not a COCO-trained torchvision detector's
    (checked before any data is read; nothing is loaded)."""
    from torchvision import models
    from torchvision.models import detection

    from active_learning.files.pretrained import TORCHVISION_NAME

    if not TORCHVISION_NAME.match(spec):
        raise ConfigError(f"{flag} {spec}: not a torchvision weights name (e.g. "
                          f"{DEFAULT_DETECTOR}); for this project's own detector write its "
                          "boxes with python -m object_detection.detect and give "
                          "--person-boxes FILE")
    try:
        weights = models.get_weight(spec)
    except (ValueError, KeyError, AttributeError):
        raise ConfigError(f"{flag} {spec}: torchvision has no such weights") from None
    builders = [name for name in models.list_models(module=detection)
                if models.get_model_weights(name) is type(weights)]
    categories = list(weights.meta.get("categories", ()))
    if not builders or "person" not in categories:
        raise ConfigError(f"{flag} {spec}: not the weights of a torchvision detector of "
                          "COCO's categories (person among them)")
    return builders[0], categories


# What an offline run without the detector's weights can do instead.
DETECTOR_ADVICE = ("or give the boxes themselves: --person-boxes FILE, a COCO detections JSON "
                   "(python -m object_detection.detect writes one with this project's detector)")


class TorchvisionDetector:
    """A COCO-trained torchvision detector named by its weights (``FasterRCNN_ResNet50_FPN_V2_
    Weights.COCO_V1``), its ``person`` boxes per image.

    The model is built by torchvision's builder of those weights with random weights and
    loaded from the weights file (``load_named_state``: torch.hub's cache, downloaded there
    when allowed), so it needs nothing but the file. It keeps torchvision's own
    post-processing (score threshold, NMS, detections per image).
    """

    def __init__(self, spec: str, device: str, flag: str = "--person-detector") -> None:
        import torch
        from torchvision import models

        from active_learning.files.pretrained import load_named_state
        from active_learning.files.weights import load_state_dict_checked

        builder, categories = detector_builder(spec, flag)
        self.person = categories.index("person")
        model = models.get_model(builder, weights=None, weights_backbone=None,
                                 num_classes=len(categories))
        # --from-scratch would not help: the detector has no random start to fall back on
        state = load_named_state(spec, flag=flag, advice=DETECTOR_ADVICE)
        load_state_dict_checked(model, state, path=spec, flag=flag)
        self.model = model.to(device).eval()
        self.device = device
        self._torch = torch

    def __call__(self, path: Path) -> list[tuple[float, float, float, float, float]]:
        """The person boxes (x, y, w, h, score) of the image file at ``path``, best first."""
        from PIL import Image

        torch = self._torch
        try:
            with Image.open(path) as opened:
                pixels = np.asarray(opened.convert("RGB"))
        except Exception as error:   # PIL raises many types for damaged files
            raise DataError(f"cannot read image {path}: {error}") from None
        image = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255)
        with torch.inference_mode():
            found = self.model([image.to(self.device)])[0]
        keep = found["labels"] == self.person
        boxes = found["boxes"][keep].cpu().double().numpy()
        scores = found["scores"][keep].cpu().double().numpy()
        return [(float(x1), float(y1), float(x2 - x1), float(y2 - y1), float(score))
                for (x1, y1, x2, y2), score in zip(boxes, scores, strict=True)
                if x2 > x1 and y2 > y1]


def detect_persons(folder: Path, names: Sequence[str], detector: str, device: str,
                   workspace: str | Path, *, progress: bool = True) -> Boxes:
    """The person boxes of the images ``names`` under ``folder`` by the torchvision detector
    ``detector`` (see :class:`TorchvisionDetector`): those the workspace kept from an earlier
    round, the others detected now and added to the workspace's file. Returns name -> boxes
    (x, y, w, h, score), every name present (an empty list: no person found)."""
    path = cache_path(workspace, detector)
    boxes = read_cache(path, detector)
    missing = [name for name in names if name not in boxes]
    if missing:
        logger.info("detecting persons in %d images with %s (%d kept from earlier rounds in %s)",
                    len(missing), detector, len(names) - len(missing), path)
        model = TorchvisionDetector(detector, device)
        todo: Iterable[str] = missing
        if progress:
            from tqdm.auto import tqdm

            todo = tqdm(missing, desc="person boxes", leave=False, dynamic_ncols=True)
        for done, name in enumerate(todo, start=1):
            boxes[name] = model(folder / name)
            if done % SAVE_EVERY == 0:
                write_cache(path, detector, boxes)
        write_cache(path, detector, boxes)
    return {name: boxes[name] for name in names}
