"""Proposals: the chosen images in the formats annotation tools import.

One call, :func:`write_proposals`, writes every format for one selection; each writer is also
usable alone. Every file is written atomically (``active_learning.files.atomic``).

- ``priority.csv``: the ``name,entropy_value`` CSV of the original project, which SuperAnnotate
  imports as "priority scores" (:func:`active_learning.files.export.write_entropies_csv`).
- ``label_studio_tasks.json``: Label Studio tasks in its "Basic Label Studio JSON format" with a
  ``predictions`` list (labelstud.io/guide/predictions; labelstud.io/guide/task_format). Each
  task has one prediction whose ``score`` and ``model_version`` (the round) sit at the
  prediction's root, where Label Studio reads them (api.labelstud.io predictions/create:
  "Prediction score. Can be used in Data Manager to sort task by model confidence"). Label
  Studio takes that score for the model's *confidence*: its "Uncertainty sampling" serves the
  task with the lowest score first (``projects/functions/next_task.py`` orders by
  ``predictions__score`` ascending). So the score written there is not our acquisition score
  but :func:`label_studio_score`, a confidence in (0, 1) that rises with the rank: the task
  first in ``order.txt`` has the lowest, and Label Studio's sampling, or its Data Manager
  sorted by "Prediction score" ascending, serves the tasks in our order. The acquisition score
  (higher = label first, the priority CSV's value) and the rank (1 = label first) are the
  task's ``al_score`` and ``al_rank`` data fields. The prediction's ``result`` carries the
  model's output as pre-annotations, written by the label kind's :class:`LabelStudioTags`
  (``labels.kinds.LabelKind.label_studio``; a task with a kind of its own brings its own),
  per the tag documentation at labelstud.io/tags/...:

  * :data:`CHOICES` (class labels): a ``choices`` result (``<Choices>``) with the predicted
    class;
  * :data:`RECTANGLES` (boxes): ``rectanglelabels`` (``x``, ``y``, ``width``, ``height`` in
    percent of the image size, ``rotation`` 0, ``original_width`` / ``original_height`` in
    pixels);
  * :data:`BRUSHES` (masks): ``brushlabels``, one result per predicted class, the class's mask
    in Label Studio's RLE (``value.format = "rle"``; see :func:`brush_rle`);
  * :data:`KEYPOINT_LABELS` (keypoints): one ``rectanglelabels`` person box per person and one
    ``keypointlabels`` point per confident joint whose ``parentID`` is its person's box, as
    Label Studio's own YOLO backend writes them (HumanSignal/label-studio-ml-backend,
    label_studio_ml/examples/yolo/control_models/keypoint_labels.py).

  ``data.image`` is ``image_url_prefix`` + the URL-quoted item name: by default Label Studio's
  local-files URL ``/data/local-files/?d=NAME``, served when Label Studio runs with
  ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` set to the images folder (labelstud.io/guide/storage,
  "Local storage"); give another prefix for images served elsewhere.
- ``label_studio_config.xml``: the labeling configuration whose tag names (``from_name`` /
  ``to_name``) the results use, so the import works as is (paste it in Settings -> Labeling
  Interface -> Code).
- ``order.txt``: the names best first, one per line, for tools that take an order instead of a
  score: CVAT's ``sorting_method=predefined`` keeps "the order provided in the input file list"
  when no manifest is given (docs.cvat.ai, Dataset Manifest, "The predefined sorting method").

Superpixel selections keep their ``regions/cycle_XX.csv`` and region maps, written by
``RegionUnits.write_selection``; nothing here replaces them.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import numpy as np

from active_learning.files.atomic import atomic_open, atomic_write_text
from active_learning.files.export import write_entropies_csv
from active_learning.files.predictions import KEYPOINT_THRESHOLD, ImagePrediction

# Tag names of the labeling configuration; results refer to them as from_name / to_name.
IMAGE_TAG = "image"
# The control tags' names (from_name) of the built-in label kinds.
CHOICE_TAG, BOX_TAG, MASK_TAG, KEYPOINT_TAG = "class", "label", "mask", "keypoints"
PERSON_TAG = "keypoints_bbox"     # pose: the person boxes (the YOLO backend's "<name>_bbox")
PERSON_LABEL = "person"
DEFAULT_IMAGE_URL_PREFIX = "/data/local-files/?d="
KEYPOINT_SIZE_PX = 4.0     # the drawn point's size; Label Studio stores it in percent of width

FILE_NAMES = {"priority_csv": "priority.csv", "label_studio_tasks": "label_studio_tasks.json",
              "label_studio_config": "label_studio_config.xml", "order": "order.txt"}


Predictions = Mapping[str, ImagePrediction] | Callable[[str], ImagePrediction | None]


def _ranked(names: Sequence[str], scores: Sequence[float] | np.ndarray
            ) -> tuple[list[str], np.ndarray]:
    """The names and scores best first (highest score; ties keep the given order)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(names) != len(scores):
        raise ValueError(f"names ({len(names)}) and scores ({len(scores)}) differ in length")
    if scores.size and not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if len(set(names)) != len(names):
        raise ValueError("item names must be unique")
    for name in names:
        if not name or "\n" in name or "\r" in name:
            raise ValueError(f"invalid item name {name!r}")
    order = np.argsort(-scores, kind="stable")
    return [names[index] for index in order], scores[order]


def write_order_list(names: Sequence[str], scores: Sequence[float] | np.ndarray,
                     path: str | os.PathLike) -> None:
    """Write the names best first (highest score), one per line, nothing else.

    Args:
        names: [K] unique item names (paths relative to the images folder).
        scores: float [K] higher = label first.
        path: the text file, written atomically.
    """
    ranked, _ = _ranked(names, scores)
    atomic_write_text(path, "".join(f"{name}\n" for name in ranked))


# --------------------------------------------------------------------------- Label Studio

@dataclass
class Results:
    """The ``result`` list of one Label Studio prediction, as a :class:`LabelStudioTags`' writer
    fills it.

    Attributes:
        class_names: [C] names of the label indices.
        keypoint_names: [J] names of the joints.
        common: the keys every image result carries (``to_name``, the image size in pixels).
        keypoint_threshold: joints at or below this confidence are left out.
        id_prefix: result ids are ``{id_prefix}-{k}`` (unique within a task; a keypoint's
            ``parentID`` names its person box's id).
        results: the results so far.
    """

    class_names: Sequence[str]
    keypoint_names: Sequence[str]
    common: dict[str, Any]
    keypoint_threshold: float = KEYPOINT_THRESHOLD
    id_prefix: str = "r"
    results: list[dict[str, Any]] = field(default_factory=list)

    def new_id(self) -> str:
        """The id of the next result."""
        return f"{self.id_prefix}-{len(self.results)}"

    def class_name(self, index: int) -> str:
        """The name of class ``index``; ValueError when there is none."""
        if not 0 <= index < len(self.class_names):
            raise ValueError(f"label {index} is outside the {len(self.class_names)} class names")
        return str(self.class_names[index])


@dataclass(frozen=True)
class LabelStudioTags:
    """One label kind's part of Label Studio: its control tags in the labeling configuration
    and its pre-annotations.

    Attributes:
        config: ``(class_names, keypoint_names) -> lines`` of the control tags inside
            ``<View>`` (after the image tag, named :data:`IMAGE_TAG`).
        results: ``(prediction, Results) -> None``: appends the prediction's results.
    """

    config: Callable[[Sequence[str], Sequence[str]], list[str]]
    results: Callable[[ImagePrediction, Results], None]


def _check_kind(kind: object) -> LabelStudioTags:
    if not isinstance(kind, LabelStudioTags):
        raise ValueError(f"unknown label kind {kind!r}: give a LabelStudioTags (a label kind's "
                         "label_studio)")
    return kind


def label_studio_config(kind: LabelStudioTags, class_names: Sequence[str],
                        keypoint_names: Sequence[str] = ()) -> str:
    """The labeling configuration (XML) that the tasks of :func:`label_studio_tasks` fit.

    Args:
        kind: the label kind's tags (:data:`CHOICES`, :data:`RECTANGLES`, :data:`BRUSHES`,
            :data:`KEYPOINT_LABELS`, or a kind's own).
        class_names: [C] the classes (keypoints: ignored, the one class is ``person``).
        keypoint_names: [J] keypoints: the joints, in the model's order (``model_index`` = j,
            as the YOLO backend's configuration writes it).
    """
    lines = ["<View>", f'  <Image name="{IMAGE_TAG}" value="${IMAGE_TAG}" zoom="true"/>']
    lines += _check_kind(kind).config(class_names, keypoint_names)
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _label_tag(tag: str, control: str) -> Callable[[Sequence[str], Sequence[str]], list[str]]:
    """The config of one ``<tag>`` of the class names (RectangleLabels, BrushLabels)."""
    def config(class_names: Sequence[str], keypoint_names: Sequence[str]) -> list[str]:
        return [f'  <{tag} name="{control}" toName="{IMAGE_TAG}">',
                *(f"    <Label value={quoteattr(str(name))}/>" for name in class_names),
                f"  </{tag}>"]
    return config


def _choices_config(class_names: Sequence[str], keypoint_names: Sequence[str]) -> list[str]:
    return [f'  <Choices name="{CHOICE_TAG}" toName="{IMAGE_TAG}" choice="single" '
            'showInline="true">',
            *(f"    <Choice value={quoteattr(str(name))}/>" for name in class_names),
            "  </Choices>"]


def _keypoints_config(class_names: Sequence[str], keypoint_names: Sequence[str]) -> list[str]:
    if not keypoint_names:
        raise ValueError("pose needs keypoint_names for its KeyPointLabels")
    return [f'  <RectangleLabels name="{PERSON_TAG}" toName="{IMAGE_TAG}">',
            f'    <Label value="{PERSON_LABEL}"/>',
            "  </RectangleLabels>",
            f'  <KeyPointLabels name="{KEYPOINT_TAG}" toName="{IMAGE_TAG}">',
            *(f"    <Label value={quoteattr(str(name))} predicted_values=\"{PERSON_LABEL}\" "
              f'model_index="{index}"/>' for index, name in enumerate(keypoint_names)),
            "  </KeyPointLabels>"]


def brush_rle(mask: np.ndarray) -> list[int]:
    """Encode a binary mask as Label Studio's brush RLE (``brushlabels`` ``value.rle``).

    The format is thi.ng's rle-pack over the RGBA bytes of the mask image, as Label Studio's
    converter writes it (label_studio_sdk/converter/brush.py, ``mask2rle`` / ``encode_rle``):
    a bit stream of a 32-bit value count (4 x H x W), the word size minus 1 (5 bits: 8-bit
    words), four run-length field widths minus 1 (4 bits each: 3, 4, 8, 16), then one chunk per
    run: a repeat flag (1 bit), the index of its length field (2 bits), the run length minus 1
    in that field's width, and the 8-bit value; a run longer than 2^16 is split. Single values
    are written as literal chunks of one (flag 0, field 0, length 0). Pixels are 255 inside
    the mask and 0 outside, in all four channels (Label Studio reads the alpha channel).

    Args:
        mask: bool or int [H, W]; nonzero = inside.

    Returns:
        The bytes of the bit stream (zero-padded to a whole byte) as ints 0..255.
    """
    flat = np.asarray(mask).reshape(-1) != 0
    count = 4 * int(flat.size)                           # RGBA: each pixel's byte four times
    # Runs of equal pixels; over the RGBA bytes each run is four times as long.
    if flat.size:
        starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
        lengths = 4 * np.diff(np.r_[starts, flat.size])
        run_values = flat[starts].astype(np.int64) * 255
    else:
        lengths = run_values = np.zeros(0, dtype=np.int64)
    # Split runs longer than 2^16 into pieces of 2^16 (the widest length field) plus the rest.
    pieces = -(-lengths // 2**16)
    run_values = np.repeat(run_values, pieces)
    piece_lengths = np.full(int(pieces.sum()), 2**16, dtype=np.int64)
    last = np.cumsum(pieces) - 1
    piece_lengths[last] = lengths - (pieces - 1) * 2**16
    widths = np.array([3, 4, 8, 16])
    field = np.searchsorted(2**widths, piece_lengths)    # the narrowest field that holds it
    repeat = (piece_lengths > 1).astype(np.int64)
    # Each chunk as (value, bit width) fields: flag, field index, length - 1, value.
    field_values = np.stack([repeat, field, piece_lengths - 1, run_values], axis=1).reshape(-1)
    field_widths = np.stack([np.ones_like(field), np.full_like(field, 2), widths[field],
                             np.full_like(field, 8)], axis=1).reshape(-1)
    header_values = np.array([count, 7, 2, 3, 7, 15], dtype=np.int64)
    header_widths = np.array([32, 5, 4, 4, 4, 4], dtype=np.int64)
    all_values = np.r_[header_values, field_values]
    all_widths = np.r_[header_widths, field_widths]
    # Expand every field into its bits, most significant first.
    total = int(all_widths.sum())
    owner = np.repeat(np.arange(all_values.size), all_widths)
    position = np.arange(total) - np.repeat(np.cumsum(all_widths) - all_widths, all_widths)
    shift = all_widths[owner] - 1 - position
    bits = ((all_values[owner] >> shift) & 1).astype(np.uint8)
    return np.packbits(bits).astype(int).tolist()


def _percent(value: float, size: int) -> float:
    return float(value) / size * 100.0


def _clip_box(box: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    return x1, y1, x2, y2


def _choice_results(prediction: ImagePrediction, out: Results) -> None:
    if prediction.label is None:
        return
    result: dict[str, Any] = {"id": out.new_id(), "type": "choices", "from_name": CHOICE_TAG,
                              "to_name": IMAGE_TAG,
                              "value": {"choices": [out.class_name(int(prediction.label))]}}
    if prediction.confidence is not None:
        result["score"] = float(prediction.confidence)
    out.results.append(result)


def _box_results(prediction: ImagePrediction, out: Results) -> None:
    if prediction.boxes is None:
        return
    width, height = prediction.width, prediction.height
    boxes = np.asarray(prediction.boxes, dtype=np.float64)
    if prediction.labels is None:
        raise ValueError("detection boxes need labels")
    for k, box in enumerate(boxes):
        x1, y1, x2, y2 = _clip_box(box, width, height)
        if x2 <= x1 or y2 <= y1:
            continue      # nothing of it inside the image
        result = {"id": out.new_id(), "type": "rectanglelabels", "from_name": BOX_TAG,
                  **out.common,
                  "value": {"x": _percent(x1, width), "y": _percent(y1, height),
                            "width": _percent(x2 - x1, width),
                            "height": _percent(y2 - y1, height), "rotation": 0,
                            "rectanglelabels": [out.class_name(int(prediction.labels[k]))]}}
        if prediction.box_scores is not None:
            result["score"] = float(prediction.box_scores[k])
        out.results.append(result)


def _brush_results(prediction: ImagePrediction, out: Results) -> None:
    if prediction.mask is None:
        return
    mask = np.asarray(prediction.mask)
    for index in np.unique(mask):
        if not 0 <= index < len(out.class_names):
            continue      # ignore label
        out.results.append({"id": out.new_id(), "type": "brushlabels", "from_name": MASK_TAG,
                            **out.common,
                            "value": {"format": "rle", "rle": brush_rle(mask == index),
                                      "brushlabels": [out.class_name(int(index))]}})


def _keypoint_results(prediction: ImagePrediction, out: Results) -> None:
    if prediction.keypoints is None:
        return
    width, height = prediction.width, prediction.height
    points = np.asarray(prediction.keypoints, dtype=np.float64)
    if len(out.keypoint_names) != points.shape[1]:
        raise ValueError(f"{points.shape[1]} joints but {len(out.keypoint_names)} keypoint "
                         "names")
    persons = (np.asarray(prediction.boxes, dtype=np.float64)
               if prediction.boxes is not None else None)
    for person, joints in enumerate(points):
        parent = None
        if persons is not None:
            x1, y1, x2, y2 = _clip_box(persons[person], width, height)
            if x2 > x1 and y2 > y1:
                parent = out.new_id()
                result = {"id": parent, "type": "rectanglelabels", "from_name": PERSON_TAG,
                          **out.common,
                          "value": {"x": _percent(x1, width), "y": _percent(y1, height),
                                    "width": _percent(x2 - x1, width),
                                    "height": _percent(y2 - y1, height), "rotation": 0,
                                    "rectanglelabels": [PERSON_LABEL]}}
                if prediction.box_scores is not None:
                    result["score"] = float(prediction.box_scores[person])
                out.results.append(result)
        for joint, (x, y, confidence) in enumerate(joints):
            if not (confidence > out.keypoint_threshold and 0 <= x <= width
                    and 0 <= y <= height):
                continue
            result = {"id": out.new_id(), "type": "keypointlabels", "from_name": KEYPOINT_TAG,
                      **out.common,
                      "value": {"x": _percent(x, width), "y": _percent(y, height),
                                "width": _percent(KEYPOINT_SIZE_PX, width),
                                "keypointlabels": [str(out.keypoint_names[joint])]},
                      "score": float(confidence)}
            if parent is not None:
                result["parentID"] = parent
            out.results.append(result)


# The built-in label kinds' tags (``labels.kinds`` gives each kind its own).
CHOICES = LabelStudioTags(_choices_config, _choice_results)
RECTANGLES = LabelStudioTags(_label_tag("RectangleLabels", BOX_TAG), _box_results)
BRUSHES = LabelStudioTags(_label_tag("BrushLabels", MASK_TAG), _brush_results)
KEYPOINT_LABELS = LabelStudioTags(_keypoints_config, _keypoint_results)


def prediction_results(kind: LabelStudioTags, prediction: ImagePrediction,
                       class_names: Sequence[str], keypoint_names: Sequence[str] = (), *,
                       id_prefix: str = "r",
                       keypoint_threshold: float = KEYPOINT_THRESHOLD) -> list[dict[str, Any]]:
    """The ``result`` list of one Label Studio prediction for one image (see the module doc).

    Args:
        kind: the label kind's tags (as in :func:`label_studio_config`).
        prediction: the model's output on the image.
        class_names: [C] names of the label indices.
        keypoint_names: [J] keypoints: names of the joints.
        id_prefix: result ids are ``{id_prefix}-{k}``; Label Studio wants them unique within a
            task, and a keypoint's ``parentID`` names its person box's id.
        keypoint_threshold: keypoints: joints at or below this confidence are left out.
    """
    tags = _check_kind(kind)
    common = {"to_name": IMAGE_TAG, "original_width": int(prediction.width),
              "original_height": int(prediction.height), "image_rotation": 0}
    out = Results(class_names, keypoint_names, common, keypoint_threshold, id_prefix)
    tags.results(prediction, out)
    return out.results


def _lookup(predictions: Predictions | None) -> Callable[[str], ImagePrediction | None]:
    if predictions is None:
        return lambda name: None
    if callable(predictions):
        return predictions
    mapping = predictions
    return lambda name: mapping.get(name)


def label_studio_score(rank: int, count: int) -> float:
    """The prediction ``score`` of the task ranked ``rank`` (1 = label first) of ``count``:
    ``rank / (count + 1)``, a confidence in (0, 1) whose ascending order is the rank's.

    Label Studio reads the score as the model's confidence and its uncertainty sampling serves
    the lowest first, so the rank (not the acquisition score, which may be negative, above 1,
    or tied) sets it: the first task gets the lowest, distinct from every other's."""
    if not 1 <= rank <= count:
        raise ValueError(f"rank {rank} is outside 1..{count}")
    return rank / (count + 1)


def label_studio_task(kind: LabelStudioTags, name: str, score: float, rank: int,
                      prediction: ImagePrediction | None, class_names: Sequence[str],
                      keypoint_names: Sequence[str] = (), *, count: int | None = None,
                      image_url_prefix: str = DEFAULT_IMAGE_URL_PREFIX,
                      model_version: str = "active-learning") -> dict[str, Any]:
    """One Label Studio task: ``data`` (the image URL, the name, ``al_rank`` = ``rank`` and
    ``al_score`` = the acquisition ``score``) and one prediction whose ``score`` is
    :func:`label_studio_score` (``rank`` of ``count`` tasks; ``count`` defaults to ``rank``)
    with, when given, the model's output as pre-annotations."""
    results = (prediction_results(kind, prediction, class_names, keypoint_names,
                                  id_prefix=f"p{rank}") if prediction is not None else [])
    confidence = label_studio_score(rank, rank if count is None else count)
    return {"data": {IMAGE_TAG: image_url_prefix + quote(name), "name": name, "al_rank": rank,
                     "al_score": float(score)},
            "predictions": [{"model_version": model_version, "score": confidence,
                             "result": results}]}


def write_label_studio_tasks(path: str | os.PathLike, kind: LabelStudioTags,
                             names: Sequence[str], scores: Sequence[float] | np.ndarray,
                             class_names: Sequence[str], *,
                             predictions: Predictions | None = None,
                             keypoint_names: Sequence[str] = (),
                             image_url_prefix: str = DEFAULT_IMAGE_URL_PREFIX,
                             model_version: str = "active-learning") -> None:
    """Write the Label Studio tasks JSON (a list of tasks, best first) atomically.

    Tasks are written one at a time, so a long list (``--budget all``) with brush masks never
    holds more than one task's JSON; ``predictions`` may compute each image's output when asked.

    Args:
        path: the ``.json`` file.
        kind: the label kind's tags (as in :func:`label_studio_config`).
        names: [K] unique item names (paths relative to the images folder).
        scores: float [K] higher = label first; finite.
        class_names: [C] the label names (classification, detection, segmentation).
        predictions: name -> :class:`ImagePrediction`, as a mapping or a callable (``None`` or a
            missing name: the task has the score and no pre-annotation).
        keypoint_names: [J] pose: the joint names.
        image_url_prefix: ``data.image`` = prefix + URL-quoted name.
        model_version: the predictions' ``model_version`` (e.g. the round's name).
    """
    _check_kind(kind)
    ranked, ranked_scores = _ranked(names, scores)
    prediction_of = _lookup(predictions)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("[")
        for rank, (name, score) in enumerate(zip(ranked, ranked_scores, strict=True), start=1):
            task = label_studio_task(kind, name, float(score), rank, prediction_of(name),
                                     class_names, keypoint_names, count=len(ranked),
                                     image_url_prefix=image_url_prefix,
                                     model_version=model_version)
            handle.write(("\n" if rank == 1 else ",\n")
                         + json.dumps(task, allow_nan=False, separators=(",", ":")))
        handle.write("\n]\n")


@dataclass(frozen=True)
class ProposalFiles:
    """The files :func:`write_proposals` wrote."""

    priority_csv: Path
    label_studio_tasks: Path
    label_studio_config: Path
    order: Path


def write_proposals(folder: str | os.PathLike, kind: LabelStudioTags, names: Sequence[str],
                    scores: Sequence[float] | np.ndarray, class_names: Sequence[str], *,
                    predictions: Predictions | None = None, keypoint_names: Sequence[str] = (),
                    image_url_prefix: str = DEFAULT_IMAGE_URL_PREFIX,
                    model_version: str = "active-learning") -> ProposalFiles:
    """Write every proposal format for one selection into ``folder`` (see the module doc).

    Args:
        folder: created if missing; the files are named as in :data:`FILE_NAMES`.
        kind, names, scores, class_names, predictions, keypoint_names, image_url_prefix,
            model_version: as in :func:`write_label_studio_tasks`; ``scores`` float [K].

    Returns:
        The paths written.
    """
    _check_kind(kind)
    folder = Path(folder)
    paths = ProposalFiles(**{key: folder / name for key, name in FILE_NAMES.items()})
    for value in np.asarray(scores, dtype=np.float64).reshape(-1):
        if not math.isfinite(value):
            raise ValueError("scores contain NaN or infinite values")
    write_entropies_csv(list(names), np.arange(len(names)), scores, paths.priority_csv)
    write_order_list(names, scores, paths.order)
    atomic_write_text(paths.label_studio_config,
                      label_studio_config(kind, class_names, keypoint_names))
    write_label_studio_tasks(paths.label_studio_tasks, kind, names, scores, class_names,
                             predictions=predictions, keypoint_names=keypoint_names,
                             image_url_prefix=image_url_prefix, model_version=model_version)
    return paths
