"""A run's pool identity: the names of its items, so that a resumed run labels the same images.

``pool.npz`` records which *index* was labeled in which cycle. If the dataset changes but keeps
its size (one image added, another deleted), every index after the change names another image,
and a resumed run would silently put the labels on the wrong images. So the run also records
the item names in pool order (``PoolState.item_names``) and, per item, how many units it holds
(``PoolState.item_units``: 1, or its superpixels), and, for items read from files, a fingerprint
of each file's content (``PoolState.item_contents``, ``files/fingerprint.py``). A resumed run
compares them with the dataset as it is now: equal, it goes on; different, it stops naming the
first items that differ (an image replaced under the same name included, whatever its
modification time says); with ``allow_new_items`` a pool that only gained items is remapped by
name (the labels stay on the same images, the new ones are unlabeled).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from active_learning.errors import ConfigError, RunMismatchError
from active_learning.files.fingerprint import file_fingerprint
from active_learning.loop.pool import UNLABELED, PoolState
from active_learning.loop.units import SelectionUnits

SHOWN = 3   # names listed per kind of difference


def item_names(units: SelectionUnits, item_name: Callable[[int], str]) -> np.ndarray:
    """str [I]: the name of every item (image) of the pool, in pool order.

    Raises ConfigError when two items share a name: the CSV could not tell them apart, and a
    resumed run could not map its labels back onto them."""
    names = [str(item_name(index)) for index in range(units.item_count)]
    if len(set(names)) != len(names):
        from collections import Counter

        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        raise ConfigError(f"{len(repeated)} item name(s) are used by more than one image, e.g. "
                          f"{', '.join(repeated[:SHOWN])}: names must be unique (use relative "
                          "paths as names)")
    return np.array(names, dtype=str)


def item_contents(adapter: object, count: int) -> np.ndarray | None:
    """str [I]: the fingerprint of each item's file ("" for an item without one or one that
    cannot be read: reading it reports that), or None when no item is a file (in-memory data).

    ``adapter.item_file(index)`` gives the files; an adapter without that method has none."""
    item_file = getattr(adapter, "item_file", None)
    if item_file is None:
        return None
    fingerprints, any_file = [], False
    for index in range(count):
        path = item_file(index)
        if path is None:
            fingerprints.append("")
            continue
        any_file = True
        try:
            fingerprints.append(file_fingerprint(path))
        except OSError:
            fingerprints.append("")
    return np.array(fingerprints, dtype=str) if any_file else None


def changed_contents(old: np.ndarray, new: np.ndarray, names: np.ndarray) -> list[str]:
    """Names of the items whose fingerprints differ, both known (old, new, names: str [I])."""
    differ = (old != new) & (old != "") & (new != "")
    return names[differ].tolist()


def describe_difference(old: np.ndarray, new: np.ndarray) -> str:
    """What changed between two name lists, for a message: gone, new, or reordered names."""
    old_set, new_set = set(old.tolist()), set(new.tolist())
    gone = [name for name in old.tolist() if name not in new_set]
    added = [name for name in new.tolist() if name not in old_set]
    parts = []
    if gone:
        parts.append(f"{len(gone)} gone ({', '.join(gone[:SHOWN])}"
                     f"{', ...' if len(gone) > SHOWN else ''})")
    if added:
        parts.append(f"{len(added)} new ({', '.join(added[:SHOWN])}"
                     f"{', ...' if len(added) > SHOWN else ''})")
    if not parts:
        first = int(np.flatnonzero(old != new)[0])
        parts.append(f"the same names in another order (item {first} was {old[first]}, is "
                     f"{new[first]})")
    return "; ".join(parts)


def check_pool(state: PoolState, names: np.ndarray, counts: np.ndarray, where: str,
               allow_new_items: bool = False, contents: np.ndarray | None = None) -> PoolState:
    """The state to resume for a pool that is now ``names`` (with ``counts`` units each, and
    file fingerprints ``contents``, or None).

    Returns ``state`` itself when the pool is the run's, the remapped state when it only gained
    items and ``allow_new_items`` is set. Raises RunMismatchError naming the differences
    otherwise. A run recorded before item names (or contents) were kept is accepted as it is
    (its unit count is still checked) and records them from now on.
    """
    state = _check_names(state, names, counts, where, allow_new_items)
    if state.item_contents is not None and contents is not None:
        changed = changed_contents(state.item_contents, contents, names)
        if changed:
            raise RunMismatchError(
                f"{where}: the content of {len(changed)} image(s) changed since this run read "
                f"them ({', '.join(changed[:SHOWN])}{', ...' if len(changed) > SHOWN else ''}): "
                "their labels would be someone else's; use another output folder, or give the "
                "images new names")
    state.item_contents = contents
    return state


def _check_names(state: PoolState, names: np.ndarray, counts: np.ndarray, where: str,
                 allow_new_items: bool) -> PoolState:
    """``check_pool`` for the names and unit counts (the contents are compared after)."""
    if state.item_names is None:
        if len(state) != int(counts.sum()):
            raise RunMismatchError(f"{where} describes a pool of {len(state)} units, but the "
                                   f"dataset has {int(counts.sum())}")
        logging.getLogger("active_learning").warning(
            "%s was recorded without its items' names: the dataset cannot be checked against it "
            "this time (only its size matched); the names are recorded from now on", where)
        state.item_names, state.item_units = names, counts
        return state
    old, old_counts = state.item_names, state.item_units
    if len(old) == len(names) and np.array_equal(old, names):
        if old_counts is not None and not np.array_equal(old_counts, counts):
            changed = int(np.flatnonzero(old_counts != counts)[0])
            raise RunMismatchError(f"{where}: image {names[changed]} had {old_counts[changed]} "
                                   f"units in this run and has {counts[changed]} now; use "
                                   "another output folder")
        return state
    difference = describe_difference(old, names)
    gone = set(old.tolist()) - set(names.tolist())
    if not allow_new_items or gone:
        advice = ("use another output folder, or --allow-new-images when images were only "
                  "added" if not gone else "use another output folder: labeled images are "
                  "named by their place in the pool, and images of this run are gone")
        raise RunMismatchError(f"{where} was made on another dataset: {difference}; resuming would "
                               f"put the labels on other images; {advice}")
    return _extend(state, old, old_counts, names, counts, where)


def _extend(state: PoolState, old: np.ndarray, old_counts: np.ndarray | None, names: np.ndarray,
            counts: np.ndarray, where: str) -> PoolState:
    """The run's labels moved onto a pool that holds every old item and some new ones."""
    if old_counts is None:
        old_counts = np.ones(len(old), dtype=np.int64)
    old_offsets = np.concatenate([[0], np.cumsum(old_counts)])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    position = {name: index for index, name in enumerate(names.tolist())}
    labeled_at = np.full(int(offsets[-1]), UNLABELED, dtype=np.int16)
    for old_index, name in enumerate(old.tolist()):
        index = position[name]
        if counts[index] != old_counts[old_index]:
            raise RunMismatchError(f"{where}: image {name} had {old_counts[old_index]} units in "
                                   f"this run and has {counts[index]} now")
        labeled_at[offsets[index]:offsets[index + 1]] = \
            state.labeled_at[old_offsets[old_index]:old_offsets[old_index + 1]]
    contents = None
    if state.item_contents is not None:   # the recorded fingerprints, moved with their items
        recorded = dict(zip(old.tolist(), state.item_contents.tolist(), strict=True))
        contents = np.array([recorded.get(name, "") for name in names.tolist()], dtype=str)
    return PoolState(labeled_at, state.finished_cycles, item_names=names, item_units=counts,
                     item_contents=contents)
