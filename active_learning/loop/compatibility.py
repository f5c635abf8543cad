"""Which strategies a task can run: the rule the loop checks before any training and that every
``--help`` list uses. A strategy is refused for the task's outputs (``Strategy.output_refusal``)
or for its units (``SelectionUnits.refusal``), for a missing optional package, or for an adapter
that does not hold out the labeled units it learns from."""
from __future__ import annotations

from active_learning.adapter import TaskAdapter
from active_learning.errors import ConfigError
from active_learning.extras import check_installed
from active_learning.loop.holdout import held_out_split
from active_learning.loop.units import SelectionUnits
from active_learning.strategies import Strategy, get_strategy, list_strategies


def check_strategy_fits(strategy: Strategy, adapter: TaskAdapter, units: SelectionUnits) -> None:
    """Refuse, before any training, a strategy the task's units or outputs cannot serve.

    Raises ConfigError naming the strategies that would fit: a superpixel strategy for image
    units, an image-level score for superpixels, entropy on pose heatmaps, BADGE on one
    distribution per default box, a strategy that needs held-out labeled units on an adapter
    that trains on all of them.
    """
    refusal = strategy_refusal(strategy, adapter.output_kind, type(units))
    if refusal is not None:
        fitting = strategies_for(adapter.output_kind, type(units))
        raise ConfigError(f"{refusal}; strategies for it: {', '.join(fitting)}")
    for module in strategy.requires:
        check_installed(module, f"strategy {strategy.name!r}")
    if strategy.held_out_fraction:   # active transfer learning: see loop/holdout.py
        split = held_out_split(adapter)
        if split is None or split[0] != strategy.held_out_fraction:
            raise ConfigError(f"strategy {strategy.name!r} learns from labeled units the model "
                              "is not trained on: call active_learning.loop.holdout.hold_out("
                              f"adapter, {strategy.held_out_fraction}, seed) before running it "
                              "(the command line does)")


def strategy_refusal(strategy: Strategy, output_kind: str,
                     *unit_classes: type[SelectionUnits]) -> str | None:
    """Why ``strategy`` cannot run on outputs of ``output_kind`` with any of ``unit_classes``
    (the rule every check and every ``--help`` list uses), or None when it can."""
    refusal = strategy.output_refusal(output_kind)
    if refusal is not None:
        return refusal
    refusals = [units.refusal(strategy) for units in unit_classes]
    return refusals[0] if all(refusals) else None


def strategies_for(output_kind: str, *unit_classes: type[SelectionUnits]) -> list[str]:
    """The registered strategies that can run on outputs of ``output_kind`` with one of
    ``unit_classes``, in registration order."""
    return [name for name in list_strategies()
            if strategy_refusal(get_strategy(name), output_kind, *unit_classes) is None]
