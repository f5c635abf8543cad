"""The cycle runner and its parts: train -> evaluate -> score -> select -> repeat.

* ``runner``: :func:`run_active_learning`, the run folder, resuming;
* ``config``: :class:`LoopConfig`, the protocol of a run, and the per-stage seeds;
* ``units``: what an annotator labels and the budget counts (images, images of persons,
  superpixels), with everything that differs between those kinds;
* ``candidates``: a cycle's candidates, drawn once;
* ``selection``: the order of one choice (presample, fit, score, choose or mix), with
  ``scoring`` (the pass whose batches carry what the units need), ``inference`` (loaders and
  the forward pass), ``fitting``, ``mixing``, ``compatibility`` and ``loss_ranking``;
* ``pool``: :class:`PoolState`, which unit was labeled in which cycle (``pool.npz``);
* ``superpixels``: region maps and per-region means of per-pixel scores.

The task adapter contract the runner calls is ``active_learning.adapter``.
"""
from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: the parts import each other, and a task that only needs a unit class
# should not pay for the runner.
_EXPORTS = {"run_active_learning": "runner", "draw_initial_units": "runner", "LoopConfig": "config"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
