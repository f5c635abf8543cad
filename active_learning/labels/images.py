"""The images a round labels (``--images``), and how an export's image reference finds one.

An image is named by its path relative to ``--images`` with ``/`` separators, the name the
priority CSV writes. Tools refer to images in their own ways, so a reference is tried, in
this order, as:

1. the path itself (an absolute path under ``--images`` counts by its relative part; a URL by
   its path; Label Studio's local-storage URL ``/data/local-files/?d=<path>`` by ``<path>``);
2. under each layout prefix the format gives (COCO's official ``train2017/`` and HRNet's
   ``images/train2017/`` for a ``*_train2017.json``; CVAT's ``images/default/``);
3. with its leading folders dropped one by one (Label Studio's COCO writes ``images/<file>``,
   relative to its own export folder);
4. by its file name alone, when exactly one image under ``--images`` has it;
5. by the file name a tool renamed: Label Studio prefixes uploads with 8 hex digits and ``-``
   (``/data/upload/1/8f3a2b1c-photo.jpg``; label-studio-converter ``utils.download`` keeps
   that name), Roboflow re-encodes every image as
   ``<name with '.' as '_'>.rf.<32 hex digits>.jpg`` (``photo_jpg.rf.4d5e...jpg``).

A file name that several images share (step 4 or 5) is refused with both paths named, rather
than guessed.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from active_learning.errors import DataError
from active_learning.files.images import image_names

LABEL_STUDIO_UPLOAD = re.compile(r"^[0-9a-f]{8}-(.+)$")
ROBOFLOW_NAME = re.compile(r"^(.+)\.rf\.[0-9a-f]{32}\.[A-Za-z0-9]+$")


def _flat(name: str) -> str:
    """Roboflow's rename of a file name: dots become underscores (``a.b.jpg`` -> ``a_b_jpg``)."""
    return name.replace(".", "_")


class ImageIndex:
    """The image files under ``folder``, by name, file name and Roboflow's rename.

    ``names``: the paths relative to ``folder`` (``/`` separators), sorted. Image sizes are read
    from the files' headers (no pixel is decoded) the first time they are asked for.
    """

    def __init__(self, folder: str | Path, names: Iterable[str]) -> None:
        self.folder = Path(folder)
        self.names = sorted(names)
        self._known = set(self.names)
        self._by_file: dict[str, list[str]] = defaultdict(list)
        self._by_stem: dict[str, list[str]] = defaultdict(list)
        self._by_file_stem: dict[str, list[str]] = defaultdict(list)
        self._by_flat: dict[str, list[str]] = defaultdict(list)
        for name in self.names:
            path = PurePosixPath(name)
            self._by_file[path.name].append(name)
            self._by_stem[str(path.with_suffix(""))].append(name)
            self._by_file_stem[path.stem].append(name)
            self._by_flat[_flat(path.name)].append(name)
        self._sizes: dict[str, tuple[int, int]] = {}
        self._resolved: Path | None = None    # the folder's absolute path, once needed

    @classmethod
    def of_folder(cls, folder: str | Path, flag: str = "--images") -> ImageIndex:
        """Every image under ``folder`` (any depth); DataError if there is none."""
        return cls(folder, image_names(folder, DataError, flag=flag))

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __len__(self) -> int:
        return len(self.names)

    def path(self, name: str) -> Path:
        return self.folder / name

    def size(self, name: str) -> tuple[int, int]:
        """(width, height) of the image ``name``, from its header; DataError if unreadable."""
        if name not in self._sizes:
            from PIL import Image

            try:
                with Image.open(self.path(name)) as image:
                    self._sizes[name] = image.size
            except Exception as error:  # PIL raises many types for damaged files
                raise DataError(f"cannot read image {self.path(name)}: {error}") from None
        return self._sizes[name]

    def _relative(self, reference: str, decode: bool = True) -> str:
        """``reference`` as a relative posix path: URLs by their path, Label Studio's local-files
        URL by its ``d`` parameter, an absolute path under the folder by its relative part;
        percent-escapes decoded unless ``decode`` is False."""
        text = reference.strip()
        if "?d=" in text:                       # /data/local-files/?d=dir/photo.jpg
            text = text.split("?d=", 1)[1]
        elif "://" in text:
            text = urlparse(text).path
        text = (unquote(text) if decode else text).replace("\\", "/")
        if os.path.isabs(text):
            if self._resolved is None:
                self._resolved = self.folder.resolve()
            try:
                return Path(text).resolve().relative_to(self._resolved).as_posix()
            except ValueError:
                return text.lstrip("/")
        text = str(PurePosixPath(text)) if text else ""
        return "" if text == "." else text

    def _unique(self, candidates: Sequence[str], reference: str, where: str) -> str | None:
        if len(candidates) > 1:
            shown = ", ".join(candidates[:3]) + (", ..." if len(candidates) > 3 else "")
            raise DataError(f"{where}: image {reference!r} could be any of {len(candidates)} "
                            f"images under {self.folder} ({shown}); give the path relative to "
                            "--images in the export, or images with distinct names")
        return candidates[0] if candidates else None

    def resolve(self, reference: str, where: str, prefixes: Sequence[str] = ()) -> str | None:
        """The name of the image ``reference`` means (see the module doc), or None when no image
        under the folder matches. DataError (naming ``where``) when several do."""
        # A file may be named with a literal escape (``a%20b.png``): its name as written wins
        # over the decoded one (tools escape URLs, never a plain path to a real file).
        verbatim = self._relative(reference, decode=False)
        if verbatim in self._known:
            return verbatim
        relative = self._relative(reference)
        if not relative:
            return None
        if relative in self._known:
            return relative
        for prefix in prefixes:
            candidate = f"{prefix.strip('/')}/{relative}"
            if candidate in self._known:
                return candidate
        parts = PurePosixPath(relative).parts
        for start in range(1, len(parts)):
            candidate = "/".join(parts[start:])
            if candidate in self._known:
                return candidate
        file = parts[-1] if parts else relative
        found = self._unique(self._by_file.get(file, []), reference, where)
        if found is not None:
            return found
        upload = LABEL_STUDIO_UPLOAD.match(file)
        if upload:
            found = self._unique(self._by_file.get(upload.group(1), []), reference, where)
            if found is not None:
                return found
        renamed = ROBOFLOW_NAME.match(file)
        if renamed:   # photo_jpg.rf.<hash>.jpg was photo.jpg
            return self._unique(self._by_flat.get(renamed.group(1), []), reference, where)
        return None

    def resolve_stem(self, stem: str, where: str) -> str | None:
        """The image whose name without its extension is ``stem`` (``a/b`` for ``a/b.jpg``), or
        whose file name without extension is ``stem``'s last part when only one has it."""
        stem = stem.strip("/")
        found = self._unique(self._by_stem.get(stem, []), stem, where)
        if found is not None:
            return found
        return self._unique(self._by_file_stem.get(PurePosixPath(stem).name, []), stem, where)
