"""Scores written to disk as a scoring pass makes them, so that an interrupted pass resumes.

A pool of millions of images takes hours to score. :class:`ScoreStore` keeps the pass's scores in
a memory-mapped ``float64`` array on disk (``scores.npy``, one slot per sample or per region
unit, NaN until scored) and, in ``progress.json``, how many candidate samples the pass has
finished and which trained model it scores with (``token``). The pass writes each batch's scores
into their slots and records its progress every ``commit_seconds``: after a crash, the pass
with the same model and candidates starts at the first unrecorded sample. Nothing in it holds a
Python list of the pool's names or scores; memory is one batch plus what the caller reads back.

The progress record is written after the array is flushed, so it never claims scores that are
not on disk; a crash between the two only costs the batches since the last record.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from active_learning.files.atomic import atomic_write_text

__all__ = ["ScoreStore"]

logger = logging.getLogger("active_learning")


class ScoreStore:
    """The on-disk scores of one scoring pass (``folder/scores.npy`` and ``progress.json``).

    Args:
        folder: where the pass keeps its files (created).
        slots: the size of the score array: samples, or region units, of the pool.
        key: what the pass must agree with to be resumed: the trained model's token, the
            candidates and the strategy (any JSON-able value; compared for equality).
        commit_seconds: how often ``advance`` records progress (it always does at the end);
            ``COMMIT_SECONDS`` by default.
    """

    COMMIT_SECONDS = 30.0   # a crash costs at most this much scoring, plus one batch

    def __init__(self, folder: Path, slots: int, key: object,
                 commit_seconds: float | None = None) -> None:
        self.folder = Path(folder)
        self.commit_seconds = self.COMMIT_SECONDS if commit_seconds is None else commit_seconds
        self._key = json.loads(json.dumps(key, default=str))   # as progress.json gives it back
        self.done = 0
        self._last_commit = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self._read_progress()
        scores_path = self.folder / "scores.npy"
        if previous is not None and previous.get("key") == self._key \
                and previous.get("slots") == slots and scores_path.exists():
            self.scores = np.load(scores_path, mmap_mode="r+")
            self.done = int(previous["done"])
            logger.info("scoring resumes after %d scored sample(s) (%s)", self.done, self.folder)
        else:
            self.scores = np.lib.format.open_memmap(scores_path, mode="w+", dtype=np.float64,
                                                    shape=(slots,))
            self.scores[:] = np.nan
            self._write_progress()

    def _read_progress(self) -> dict | None:
        try:
            return json.loads((self.folder / "progress.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):   # none yet, or torn by a crash: start over
            return None

    def _write_progress(self) -> None:
        self.scores.flush()
        atomic_write_text(self.folder / "progress.json", json.dumps(
            {"key": self._key, "slots": len(self.scores), "done": self.done}))
        self._last_commit = time.monotonic()

    def write(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Scores ``values`` float [V] of the slots ``slots`` int [V] (not yet recorded)."""
        self.scores[np.asarray(slots, dtype=np.int64)] = np.asarray(values, dtype=np.float64)

    def advance(self, samples: int, *, final: bool = False) -> None:
        """``samples`` more candidate samples are scored; record it when ``commit_seconds``
        have passed since the last record, or when ``final``."""
        self.done += int(samples)
        if final or time.monotonic() - self._last_commit >= self.commit_seconds:
            self._write_progress()

    def read(self, slots: np.ndarray) -> np.ndarray:
        """float64 [V]: the stored scores of ``slots`` (int [V]); NaN where none is."""
        return np.asarray(self.scores[np.asarray(slots, dtype=np.int64)], dtype=np.float64)

    def remove(self) -> None:
        """Delete the pass's files (its cycle committed)."""
        del self.scores
        shutil.rmtree(self.folder, ignore_errors=True)
