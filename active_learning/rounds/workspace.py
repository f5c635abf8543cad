"""The labeling loop's memory: one folder per round, and what each round proposed.

A user runs ``train.py round`` after each export from the annotation tool. The workspace
remembers, across those runs::

    workspace.json          the task, the label categories, and one entry per round: the
                            digest of the labels it read, its status, what it proposed
    workspace.lock          while a round runs: its pid and host (``lock.py``)
    checked_images.json     the images that decoded, by size and time (decoded once)
    round_001/
        labels/             a copy of the export the round read
        labeled.txt         the images it read labeled, one a line (labels only grow)
        run/                the round's training and scoring (a one-cycle run of the runner:
                            in-cycle checkpoints, resumable)
        proposals/          what the round proposes, in the formats annotation tools import
    round_002/ ...

A round is identified by the labels it read (``identity.labels_digest``: the image names, their
targets and the category names, not the export's file name or row order): running again with
the same labels continues (or, once done, repeats) the same round and changes nothing; new
labels start the next round. An image proposed by an earlier round that the new export does
not label yet is still out for labeling, and is not proposed again unless asked
(``repropose``). The category list only grows: a class first labeled in a later round is
appended (the model of that round has one more output); a class that disappears or is renamed
is refused by the label readers, since the earlier rounds' labels would no longer mean the same
thing. Workspaces written before the digest was recorded match a round by its export's
checksum, as they did.

``workspace.json`` is replaced atomically, and only when a round starts or finishes: an
interrupted round leaves the entry ``"status": "running"`` and resumes from its ``run/``.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from active_learning.errors import ConfigError, DataError
from active_learning.files.atomic import atomic_write_text
from active_learning.files.images import CHECKED_IMAGES
from active_learning.rounds.lock import LOCK_FILE

__all__ = ["Round", "Workspace"]

WORKSPACE_FILE = "workspace.json"
RUNNING, DONE = "running", "done"


def _common_folder(files: Sequence[Path]) -> str:
    import os

    return os.path.commonpath([str(path.parent) for path in files])


@dataclass
class Round:
    """One round's entry in ``workspace.json`` and its folder."""

    number: int
    labels_checksum: str
    folder: Path
    status: str = RUNNING
    proposed: list[str] = field(default_factory=list)   # image names, best first
    labeled: int = 0                                     # images labeled when it ran
    labels_digest: str = ""                              # identity.labels_digest ("": older)
    classes: int = 0                                     # categories it trained on (0: older)
    used: list[str] | None = None                        # categories its labels use (None:
                                                         # not known without decoding)

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def proposals_dir(self) -> Path:
        return self.folder / "proposals"

    @property
    def done(self) -> bool:
        return self.status == DONE

    @property
    def labeled_file(self) -> Path:
        return self.folder / "labeled.txt"

    def labeled_images(self) -> set[str] | None:
        """The images this round read labeled (None: a round written before they were kept)."""
        try:
            return set(self.labeled_file.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return None

    def read(self, labels_digest: str, labels_checksum: str) -> bool:
        """Whether these are the labels this round read (by content; by the export's checksum
        for a round recorded before the content digest was)."""
        if self.labels_digest:
            return self.labels_digest == labels_digest
        return self.labels_checksum == labels_checksum

    def entry(self) -> dict[str, Any]:
        return {"number": self.number, "labels_checksum": self.labels_checksum,
                "labels_digest": self.labels_digest, "classes": self.classes,
                "used": self.used,
                "status": self.status, "proposed": self.proposed, "labeled": self.labeled}


class Workspace:
    """A labeling loop's folder (see the module doc). ``task`` is checked against the folder's:
    one workspace serves one task."""

    def __init__(self, folder: str | Path, task: str) -> None:
        self.folder = Path(folder)
        self.task = task
        self.categories: list[str] | None = None
        self.rounds: list[Round] = []
        path = self.folder / WORKSPACE_FILE
        if path.exists():
            self._load(path)
        elif self.folder.is_file():
            raise ConfigError(f"--workspace {self.folder} is a file; give a folder (new or a "
                              "workspace)")
        elif self.folder.exists() and any(path.name not in (LOCK_FILE, CHECKED_IMAGES)
                                          for path in self.folder.iterdir()):
            raise ConfigError(f"--workspace {self.folder} is a folder of other files (no "
                              f"{WORKSPACE_FILE}); give a new or empty folder")

    def _load(self, path: Path) -> None:
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved["task"] != self.task:
                raise ConfigError(f"{self.folder} is a workspace of the {saved['task']} task, "
                                  f"not {self.task}; give another --workspace")
            self.categories = saved.get("categories")
            self.rounds = [Round(int(entry["number"]), str(entry["labels_checksum"]),
                                 self._round_folder(int(entry["number"])), str(entry["status"]),
                                 list(entry.get("proposed", [])), int(entry.get("labeled", 0)),
                                 str(entry.get("labels_digest", "")),
                                 int(entry.get("classes", 0)), entry.get("used"))
                           for entry in saved["rounds"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"cannot read {path}: {error}") from None

    def _round_folder(self, number: int) -> Path:
        return self.folder / f"round_{number:03d}"

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / WORKSPACE_FILE, json.dumps(
            {"task": self.task, "categories": self.categories,
             "rounds": [round_.entry() for round_ in self.rounds]}, indent=2) + "\n")

    def check_categories(self, categories: Sequence[str] | None, source: str) -> None:
        """Refuse an export whose category names do not start with the workspace's, in order
        (the label readers append a new class; they never drop or reorder one)."""
        if categories is None:
            return
        if self.categories is not None and \
                list(categories)[:len(self.categories)] != list(self.categories):
            added = sorted(set(categories) - set(self.categories))
            removed = sorted(set(self.categories) - set(categories))
            change = "; ".join(part for part in (
                f"new: {', '.join(added)}" if added else "",
                f"gone: {', '.join(removed)}" if removed else "",
                "" if added or removed else "the same names in another order") if part)
            raise DataError(f"{source}: the categories changed since round 1 ({change}); a "
                            "class may be added, not removed, renamed or reordered: restore "
                            "the names in the tool, or start a new --workspace")

    def used_before(self) -> tuple[Round, list[str]] | None:
        """The last finished round that knows which categories its labels use, and those."""
        for round_ in reversed(self.rounds):
            if round_.done and round_.used is not None:
                return round_, round_.used
        return None

    def labeled_before(self) -> tuple[Round, set[str]] | None:
        """The last finished round that kept its labeled images, and those images."""
        for round_ in reversed(self.rounds):
            labeled = round_.labeled_images() if round_.done else None
            if labeled is not None:
                return round_, labeled
        return None

    def round_for(self, labels_checksum: str, categories: Sequence[str] | None,
                  labels: Sequence[Path], source: str, labels_digest: str = "",
                  labeled: Sequence[str] = (), used: Sequence[str] | None = None) -> Round:
        """The round these labels belong to: the last one when it read the same labels (to
        resume, or to repeat when done), else a new round, recorded as running, with a copy of
        ``labels`` in its ``labels/`` folder and the ``labeled`` image names in its
        ``labeled.txt``."""
        self.check_categories(categories, source)
        if self.rounds and self.rounds[-1].read(labels_digest, labels_checksum):
            return self.rounds[-1]
        if self.rounds and not self.rounds[-1].done:
            # the labels changed while a round was unfinished: that round is abandoned
            shutil.rmtree(self.rounds[-1].folder, ignore_errors=True)
            self.rounds.pop()
        number = self.rounds[-1].number + 1 if self.rounds else 1
        round_ = Round(number, labels_checksum, self._round_folder(number),
                       labels_digest=labels_digest,
                       classes=len(categories) if categories is not None else 0,
                       used=None if used is None else list(used))
        copy = round_.folder / "labels"
        shutil.rmtree(round_.folder, ignore_errors=True)
        copy.mkdir(parents=True)
        root = Path(_common_folder(labels)) if len(labels) > 1 else None
        for path in labels:
            target = copy / (path.relative_to(root) if root else Path(path.name))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        atomic_write_text(round_.labeled_file, "".join(f"{name}\n" for name in labeled))
        if categories is not None:
            self.categories = list(categories)
        self.rounds.append(round_)
        self.save()
        return round_

    def out_for_labeling(self, labeled: Iterable[str], before: int) -> set[str]:
        """Images proposed by rounds before ``before`` and still not labeled."""
        proposed = {name for round_ in self.rounds if round_.number < before
                    for name in round_.proposed}
        return proposed - set(labeled)

    def finish(self, round_: Round, proposed: Sequence[str], labeled: int) -> None:
        """Record the round's proposals (best first): the round is done."""
        round_.proposed, round_.labeled, round_.status = list(proposed), labeled, DONE
        self.save()
