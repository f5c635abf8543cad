"""Active learning for computer vision: choose which images (or regions) to label next.

The public API, each name importable from here (``docs/design.md`` describes the parts):

Plug a task into the loop
    TaskAdapter, BaseTaskAdapter       -- the adapter contract and its defaults
    LoopConfig, run_active_learning    -- a run's protocol, and the cycle runner
    SelectionUnits, OneToOneUnits, GroupedUnits, RegionUnits -- what the budget counts
Strategies
    Strategy, register_strategy, get_strategy, list_strategies, choose_new_labeled_indices
    ActiveLearning, LossPredictionModule, LossPredictionLoss -- Learning Loss (Yoo & Kweon 2019)
    DiscriminativeActiveLearning       -- DAL (Gissin & Shalev-Shwartz 2019)
Files and state
    write_entropies_csv                -- the priority CSV annotation platforms import
    PoolState                          -- which unit was labeled in which cycle
    read_labels, Labels                -- an annotation tool's export read as a task's labels
Errors
    UserError, ConfigError, DataError, WeightsError, RunMismatchError

Names load on first use, so ``import active_learning`` stays cheap and a task that needs one
part does not import the others.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TaskAdapter": "adapter",
    "BaseTaskAdapter": "adapter",
    "LoopConfig": "loop.config",
    "run_active_learning": "loop.runner",
    "SelectionUnits": "loop.units",
    "OneToOneUnits": "loop.units",
    "GroupedUnits": "loop.units",
    "RegionUnits": "loop.units",
    "PoolState": "loop.pool",
    "Strategy": "strategies",
    "register_strategy": "strategies",
    "get_strategy": "strategies",
    "list_strategies": "strategies",
    "choose_new_labeled_indices": "strategies",
    "ActiveLearning": "strategies.loss_prediction",
    "LossPredictionModule": "strategies.loss_prediction",
    "LossPredictionLoss": "strategies.loss_prediction",
    "DiscriminativeActiveLearning": "strategies.discriminative",
    "write_entropies_csv": "files.export",
    "read_labels": "labels",
    "Labels": "labels.exported",
    "UserError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "WeightsError": "errors",
    "RunMismatchError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
