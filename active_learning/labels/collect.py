"""Targets gathered entry by entry, refusing an image labeled twice with different labels."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from active_learning.errors import DataError
from active_learning.labels.exported import Labels, checksum


class Collected:
    """The targets of an export as its entries are read.

    An image that two entries label (two COCO image entries resolving to one file, two XML
    files, two CSV rows, two class folders) keeps one target when both say the same and is
    refused otherwise, naming both entries.
    """

    def __init__(self) -> None:
        self.targets: dict[str, Any] = {}
        self._keys: dict[str, Hashable] = {}
        self._where: dict[str, str] = {}
        self._unannotated: dict[str, None] = {}

    def add(self, name: str, target: Any, key: Hashable, where: str) -> None:
        """Label image ``name`` with ``target``; ``key`` compares targets, ``where`` names the
        entry (a file, and an annotation, line or path in it)."""
        if name in self.targets:
            if key != self._keys[name]:
                raise DataError(f"{where}: image {name} is labeled twice with different labels "
                                f"(also by {self._where[name]})")
            return
        self.targets[name] = target
        self._keys[name] = key
        self._where[name] = where

    def unlabeled(self, name: str) -> None:
        """The export lists image ``name`` without a label."""
        self._unannotated[name] = None

    def labels(self, kind: str, labels_format: str, source: str, images_dir: Path,
               categories: Sequence[str], files: Sequence[Path], root: Path,
               listing: Sequence[str] = ()) -> Labels:
        """The :class:`Labels` of what was collected; ``files`` (read) and ``listing`` make the
        checksum, their paths taken relative to ``root``."""
        return Labels(kind=kind, format=labels_format, source=source, images_dir=images_dir,
                      targets=self.targets, categories=list(categories), files=list(files),
                      checksum=checksum(files, root, listing),
                      unannotated=[name for name in self._unannotated
                                   if name not in self.targets])
