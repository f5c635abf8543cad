"""Which item of the dataset was labeled in which cycle, saved atomically as ``pool.npz``."""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from active_learning.errors import RunMismatchError
from active_learning.files.atomic import atomic_open

UNLABELED = -1


@dataclass
class PoolState:
    """Labeling history of a dataset of ``N`` items.

    ``labeled_at[i]`` is the cycle in which item ``i`` joined the labeled set (0 for the initial
    set), or -1 while it is unlabeled. ``finished_cycles`` counts the cycles whose training,
    evaluation and selection are complete: a resumed run starts at cycle ``finished_cycles``.
    Indices are always absolute dataset indices.
    """

    labeled_at: np.ndarray  # int16 [N]
    finished_cycles: int = 0
    item_names: np.ndarray | None = None   # str [I]: the pool's items (images), in pool order
    item_units: np.ndarray | None = None   # int64 [I]: units each item holds (sum = N)
    item_contents: np.ndarray | None = None   # str [I]: each item's file fingerprint ("" none)

    def __post_init__(self) -> None:
        self.labeled_at = np.asarray(self.labeled_at, dtype=np.int16)
        if self.labeled_at.ndim != 1:
            raise ValueError(f"labeled_at must be 1-D, got shape {self.labeled_at.shape}")
        if (self.labeled_at < UNLABELED).any():
            raise ValueError("labeled_at holds values below -1")

    @classmethod
    def empty(cls, size: int) -> PoolState:
        """A pool of ``size`` items, none labeled."""
        if size <= 0:
            raise ValueError(f"the pool is empty (size={size}): there is nothing to label")
        return cls(np.full(size, UNLABELED, dtype=np.int16))

    def __len__(self) -> int:
        return len(self.labeled_at)

    @property
    def labeled_indices(self) -> np.ndarray:
        """int64 [L] dataset indices of every labeled item, ascending."""
        return np.flatnonzero(self.labeled_at != UNLABELED)

    @property
    def unlabeled_indices(self) -> np.ndarray:
        """int64 [U] dataset indices of every unlabeled item, ascending."""
        return np.flatnonzero(self.labeled_at == UNLABELED)

    def labeled_up_to(self, cycle: int) -> np.ndarray:
        """int64 dataset indices labeled in cycles ``0..cycle``."""
        return np.flatnonzero((self.labeled_at != UNLABELED) & (self.labeled_at <= cycle))

    def added_in(self, cycle: int) -> np.ndarray:
        """int64 dataset indices that joined the labeled set in ``cycle``."""
        return np.flatnonzero(self.labeled_at == cycle)

    def mark_labeled(self, indices: np.ndarray, cycle: int) -> None:
        """Record ``indices`` as labeled in ``cycle``; they must be distinct and unlabeled."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(np.unique(indices)) != len(indices):
            raise ValueError("indices to label contain repeats")
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise ValueError(f"indices to label fall outside the pool of {len(self)} items")
        already = indices[self.labeled_at[indices] != UNLABELED]
        if len(already):
            raise ValueError(f"{len(already)} indices are labeled already, e.g. "
                             f"{already[:5].tolist()}")
        if not 0 <= cycle <= np.iinfo(np.int16).max:
            raise ValueError(f"cycle must be in [0, 32767], got {cycle}")
        self.labeled_at[indices] = cycle

    def save(self, path: str | os.PathLike) -> None:
        """Write ``pool.npz`` atomically."""
        with atomic_open(path, "wb") as handle:
            arrays: dict[str, np.ndarray] = {"labeled_at": self.labeled_at,
                                             "finished_cycles": np.array(self.finished_cycles)}
            if self.item_names is not None:
                arrays["item_names"] = np.asarray(self.item_names, dtype=str)
            if self.item_units is not None:
                arrays["item_units"] = np.asarray(self.item_units, dtype=np.int64)
            if self.item_contents is not None:
                arrays["item_contents"] = np.asarray(self.item_contents, dtype=str)
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle

    @classmethod
    def load(cls, path: str | os.PathLike) -> PoolState:
        """Read a ``pool.npz`` written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path) as data:   # item names, units, contents: absent in older runs
                return cls(data["labeled_at"], int(data["finished_cycles"]),
                           item_names=data["item_names"] if "item_names" in data else None,
                           item_units=data["item_units"] if "item_units" in data else None,
                           item_contents=(data["item_contents"] if "item_contents" in data
                                          else None))
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise RunMismatchError(f"cannot read pool state {path}: {error}") from error
