"""One round at a time on a workspace: ``workspace.lock``.

Two rounds on one workspace at once would interleave their writes (one round's ``labels/``
with the other's ``workspace.json`` and ``run/``), so a round holds the workspace's lock file
while it runs. The file is created exclusively (``O_CREAT | O_EXCL``: of two processes, one
wins) and holds its holder's pid, host and start time as JSON. A lock left by a process that
died (killed, machine rebooted) is stale: on the same host a pid that no longer runs is taken
over, with a warning. On another host the pid cannot be checked, so the message says which
machine holds it and how to remove it by hand.

Taking the lock is also the round's first write: a workspace that cannot be written (read-only,
or a path under a file) is refused here with one line, before any other file is touched.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from active_learning.errors import ConfigError

__all__ = ["LOCK_FILE", "workspace_lock"]

LOCK_FILE = "workspace.lock"

logger = logging.getLogger("active_learning")


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it runs, as another user
        return True
    except OSError:
        return False
    return True


def _holder(path: Path) -> dict[str, object] | None:
    """The lock's record, or None when it is unreadable (a holder killed while writing it)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _unwritable(folder: Path, error: OSError) -> ConfigError:
    return ConfigError(f"--workspace {folder}: cannot write there "
                       f"({error.strerror or error}); give a folder you can write to")


def _create(path: Path) -> bool:
    """Create the lock file with this process's record; False when it exists already.

    The record is written to a file of this process's own first and then hard-linked to the
    lock's name: the lock appears whole or not at all, so no other round ever reads an empty
    lock (which it would take for a stale one)."""
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    draft = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    draft.write_text(json.dumps(record) + "\n", encoding="utf-8")
    try:
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink(missing_ok=True)
    return True


def _take_over(path: Path, stale: dict[str, object] | None) -> bool:
    """Move the stale lock ``stale`` (its record; None: unreadable) out of the way; False when
    the file at ``path`` is no longer that lock (another round took it over first, and its
    fresh lock is put back)."""
    moved = path.with_name(f".{path.name}.stale.{uuid.uuid4().hex}")
    try:
        os.rename(path, moved)
    except FileNotFoundError:   # another round removed it: try to create ours
        return True
    if _holder(moved) != stale:   # not the lock we judged stale: give it back
        try:
            os.link(moved, path)
        except FileExistsError:
            pass
        moved.unlink(missing_ok=True)
        return False
    moved.unlink(missing_ok=True)
    return True


@contextmanager
def workspace_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s lock (creating the folder) for the ``with`` block; ConfigError (one
    line) when another live round holds it, or the folder cannot be a writable workspace. A
    folder this call created and left empty is removed again, so a refused round leaves
    nothing behind."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--workspace {folder} is a file; give a folder (new or a workspace)")
    created = not folder.exists()
    path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        taken = _create(path)
        if not taken:
            holder = _holder(path)
            host = socket.gethostname()
            pid = holder.get("pid") if holder else None
            if holder is not None and (holder.get("host") != host or not isinstance(pid, int)
                                       or _running(pid)):
                where = "this machine" if holder.get("host") == host else holder.get("host")
                raise ConfigError(
                    f"--workspace {folder} is in use by another round (pid {pid} on {where}, "
                    f"since {holder.get('since')}); wait for it to finish, or delete {path} if "
                    "that process is gone")
            logger.warning("--workspace %s: taking over a stale lock (%s)", folder,
                           f"pid {pid} no longer runs" if holder else "unreadable lock file")
            if not _take_over(path, holder) or not _create(path):   # another round was first
                raise ConfigError(f"--workspace {folder} is in use by another round; wait for "
                                  f"it to finish, or delete {path} if that process is gone")
    except OSError as error:
        if created:
            _remove_if_empty(folder)
        raise _unwritable(folder, error) from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        if created:
            _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()   # only succeeds when empty
    except OSError:
        pass
