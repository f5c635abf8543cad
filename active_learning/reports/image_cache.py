"""The report's slow images (the t-SNE map takes seconds) are kept between rewrites of a page:
each PNG names what it was drawn from in a text entry, and is drawn again only when that
changed, so rewriting a run's page after each cycle redraws only the new cycle's."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from active_learning.files.embeddings import EmbeddingMap

PNG_KEY = "al-report-key"      # the PNG text entry naming what a kept image was drawn from


def content_key(facts: Mapping[str, Any]) -> str:
    """A hash of ``facts`` (JSON-serialisable): what an image shows."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def map_key(points: EmbeddingMap, max_points: int, seed: int,
            class_names: Sequence[str]) -> str | None:
    """What a map image depends on, hashed: its points file (path, size, modification time)
    and the drawing's settings; None for points that come from no file (never kept)."""
    if points.source is None or not Path(points.source).is_file():
        return None
    stat = Path(points.source).stat()
    return content_key({"source": str(Path(points.source).resolve()), "size": stat.st_size,
                        "mtime_ns": stat.st_mtime_ns, "max_points": max_points, "seed": seed,
                        "class_names": [str(name) for name in class_names], "version": 1})


def is_cached(path: Path, key: str | None, source: Path | None = None) -> bool:
    """True when ``path`` is the image drawn for ``key`` (its PNG text entry), and not older
    than ``source``, the file it was drawn from."""
    if key is None or not path.is_file():
        return False
    if source is not None and path.stat().st_mtime_ns < Path(source).stat().st_mtime_ns:
        return False
    from PIL import Image

    try:
        with Image.open(path) as image:
            return dict(getattr(image, "text", {})).get(PNG_KEY) == key
    except OSError:   # a torn or foreign file: draw it again
        return False
