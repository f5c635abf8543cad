"""What identifies an export: the labels it holds, not its file name or row order.

Label Studio stamps every export's file name with the time, and a tool may write the same
labels in another order: neither is new work for the loop, so neither may start a round. A
round is keyed by :func:`labels_digest`, a sha256 over the label kind, the category names (in
order: the targets index them) and, per image name in sorted order, its target taken apart
field by field: numbers, strings, arrays (dtype, shape, bytes), and a file a target points to
by its contents (a mask PNG). Fields that number entries in the tool's own way (annotation
and image ids) or only serve messages are left out.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.labels.exported import Labels

__all__ = ["labels_digest", "used_categories"]

# Target fields that are not labels: the tool's numbering, and references kept for messages
# or for reading (the COCO object a mask is rasterised from).
IGNORED_FIELDS = frozenset({"id", "image_id", "annotation_id", "coco", "image", "filename"})


def _feed(digest: Any, value: Any) -> None:
    """Add ``value`` to ``digest``, each kind of value tagged so that different structures
    never feed the same bytes."""
    if value is None or isinstance(value, (bool, int, float, str)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        digest.update(f"array:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    elif isinstance(value, np.generic):
        _feed(digest, value.item())
    elif isinstance(value, Path):
        digest.update(b"file:")
        digest.update(hashlib.sha256(value.read_bytes()).digest() if value.is_file()
                      else b"missing")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(f"{type(value).__name__}{{".encode())
        for item in dataclasses.fields(value):
            if item.name not in IGNORED_FIELDS:
                digest.update(f"{item.name}=".encode())
                _feed(digest, getattr(value, item.name))
        digest.update(b"}")
    elif isinstance(value, Mapping):
        digest.update(b"map{")
        for key in sorted(value, key=repr):
            if key not in IGNORED_FIELDS:
                _feed(digest, key)
                _feed(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"seq[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:   # a target type of a task's own kind that none of the above covers
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def labels_digest(labels: Labels) -> str:
    """sha256 (hex) of what ``labels`` say (see the module doc)."""
    digest = hashlib.sha256()
    _feed(digest, labels.kind)
    _feed(digest, list(labels.categories))
    for name in sorted(labels.targets):
        _feed(digest, name)
        _feed(digest, labels.targets[name])
    return digest.hexdigest()


def used_categories(labels: Labels) -> list[str] | None:
    """The category names some label uses, sorted: a class index (class kind) or a box's
    label 1..K (boxes); None when the targets do not say without decoding (masks, persons)."""
    from active_learning.labels.voc import Annotation

    used: set[int] = set()
    for target in labels.targets.values():
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            used.add(int(target))
        elif isinstance(target, Annotation):
            used.update(int(label) - 1 for label in target.labels)
        else:
            return None
    return sorted(labels.categories[index] for index in used
                  if 0 <= index < len(labels.categories))
