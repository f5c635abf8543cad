"""What an annotation tool's export says, once read: :class:`Labels`, and the checksum that
tells one export from another. A leaf of the ``labels`` package: every reader builds these."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Labels:
    """What an export says, per image.

    Attributes:
        kind: the label kind the targets are (``labels.kinds``: ``class``, ``boxes``, ...).
        format: the export's format (a key of ``labels.formats.FORMATS``).
        source: the export as given, for messages.
        images_dir: the folder the names are relative to (``--images``, or the one the
            export's layout gives).
        targets: image name -> its target (see the module doc), in the export's order.
        categories: the category names, in the order the targets' class indices use (the
            workspace's when it gave them).
        files: the export's files that were read (what :attr:`checksum` covers); empty for
            class folders, whose labels are their listing.
        checksum: sha256 of the labels as read (file contents, or the class folders' listing):
            a new export gives a new checksum, the same export the same.
        unannotated: images the export lists without any label (left out of ``targets``).
    """

    kind: str
    format: str
    source: str
    images_dir: Path
    targets: dict[str, Any]
    categories: list[str]
    files: list[Path]
    checksum: str
    unannotated: list[str] = field(default_factory=list)


def checksum(files: Sequence[Path], root: Path, listing: Sequence[str] = ()) -> str:
    """sha256 over each file's path relative to ``root`` and its contents' digest, in path
    order, then over ``listing`` (lines that carry labels by themselves, such as
    ``class/image`` paths)."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.as_posix()):
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:
            relative = path.name
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for line in listing:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()
