"""What a strategy declares about its settings and its training: typed options and a companion.

A strategy's **options** (:class:`StrategyOption`) are the settings only it reads, e.g. DAL's
sub-queries or Learning Loss's ranking-loss weight. Declaring them is all it takes for:

* the command line to offer a flag for each (``--dal-sub-queries``, with its hidden
  ``--dal_sub_queries`` twin), listed by ``--help`` with the task's default;
* a task's reference values and presets to set its default (the option's ``key``, e.g.
  segmentation's ``lamda=0.01``);
* ``LoopConfig.options`` to hold the chosen strategy's values, checked by the declarations,
  and ``args.json`` to record them as that strategy's options (``loop.options``);
* a set strategy's ``select_set`` to receive them as keyword arguments, and a training
  companion's factory to read them.

A **training companion** (:class:`TrainingCompanion`) is a module a strategy trains beside the
model, on the same batches, with the same optimizer (Learning Loss's loss prediction module).
The runner builds it after the model (``Strategy.companion``), hands its parameters to the
optimizer after the model's, passes it to ``train_one_epoch``, checkpoints its state and wraps
it for ``torchrun``; it never needs to know which strategy asked for it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

__all__ = ["StrategyOption", "TrainingCompanion", "resolve_options",
           "option_errors"]


@dataclass(frozen=True)
class StrategyOption:
    """One typed setting of a strategy.

    Attributes:
        name: the strategy's own name for it: the key in ``LoopConfig.options`` and
            ``args.json``, and the keyword ``select_set`` receives (DAL's ``max_epochs``).
        type: parses a flag's text (``int``, ``float``, ``str``, or any callable).
        default: the value when neither a flag nor a task's reference or preset gives one;
            None may mean "derived" (the help says from what).
        help: the flag's help text; ``--help`` appends the task's default, and ``{key}``
            names another option's (``{detach_fraction:.0%}``), so a literal brace is doubled.
        check: ``value -> bool``, True when the value is valid (None passes when the default
            is None); ``requirement`` says what it demands, for the error: ``must be >= 1``.
        requirement: the condition ``check`` tests, in words.
        flags: command-line spellings; None: ``--<name with dashes>``; empty: no flag (a task's
            reference or preset, or a library caller, sets it).
        metavar: the flag's value placeholder in ``--help``.
        legacy_field: the ``LoopConfig`` field that held this setting before strategies declared
            their options (``dal_max_epochs``): an older run's ``args.json`` is read through it.
        in_protocol: part of the run's identity (resuming with another value is refused).
            False for a setting whose effect another option's ``protocol_value`` records.
        protocol_value: ``(options, epochs) -> value`` compared when a run resumes, instead
            of the raw value (Learning Loss's detach epoch: the same epoch given as an epoch or
            as a share of the epochs is the same protocol).
    """

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    check: Callable[[Any], bool] | None = None
    requirement: str = ""
    flags: tuple[str, ...] | None = None
    metavar: str | None = None
    legacy_field: str | None = None
    in_protocol: bool = True
    protocol_value: Callable[[Mapping[str, Any], int], Any] | None = None

    @property
    def spellings(self) -> tuple[str, ...]:
        """The command-line spellings (empty: no flag)."""
        if self.flags is None:
            return (f"--{self.name.replace('_', '-')}",)
        return self.flags

    @property
    def key(self) -> str:
        """The flag's destination (``--dal-max-epochs`` -> ``dal_max_epochs``): the name a
        task's reference values and presets give it, and the parsed namespace's attribute;
        the option's name when it has no flag."""
        if not self.spellings:
            return self.name
        return self.spellings[0].lstrip("-").replace("-", "_")

    def error(self, value: Any) -> str | None:
        """Why ``value`` is invalid, or None."""
        if value is None and self.default is None:
            return None
        try:
            ok = value is not None and (self.check is None or bool(self.check(value)))
        except (TypeError, ValueError):
            ok = False
        if ok:
            return None
        label = self.spellings[0] if self.spellings else self.name
        requirement = self.requirement or "is invalid"
        return f"{label} {requirement}, got {value!r}"


def resolve_options(declared: Sequence[StrategyOption],
                    given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared option, in declaration order: the given value, else its default. Names
    not declared are kept after them (``option_errors`` reports them)."""
    names = {option.name for option in declared}
    resolved = {option.name: given.get(option.name, option.default) for option in declared}
    resolved.update({name: value for name, value in given.items() if name not in names})
    return resolved


def option_errors(strategy: str, declared: Sequence[StrategyOption],
                  values: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``values`` as ``strategy``'s options: unknown names, invalid values."""
    names = [option.name for option in declared]
    unknown = sorted(set(values) - set(names))
    errors = [f"strategy {strategy!r} has no option(s) {unknown} (its options: "
              f"{', '.join(names) or 'none'})"] if unknown else []
    errors += [message for option in declared if option.name in values
               for message in [option.error(values[option.name])] if message]
    return errors


class TrainingCompanion(Protocol):
    """A module a strategy trains beside the model (Learning Loss's loss prediction module).

    ``module`` holds its parameters (they join the optimizer after the model's), its state
    (checkpointed with the model's) and, in evaluation, maps the model's feature maps to one
    prediction per sample ``[B]`` (the ``loss_pred`` need; ``train_one_epoch`` calls
    :meth:`forward` instead).
    """

    module: nn.Module

    def train(self) -> None:
        """Put the module in training mode (each epoch)."""

    def forward(self, features: Sequence[torch.Tensor], epoch: int) -> torch.Tensor:
        """The module's output on one batch's feature maps (each ``[B, C_i, H_i, W_i]``),
        under the forward pass's autocast; ``epoch`` decides e.g. whether the features are
        detached first."""

    def loss(self, output: torch.Tensor,
             sample_losses: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(the term added to the task loss, or None; the value reported as
        stat)`` for one batch: ``output`` from :meth:`forward`, ``sample_losses [B]`` the
        task's per-sample losses."""

    @property
    def stat(self) -> str:
        """The name ``train_one_epoch`` reports the second value of :meth:`loss` under."""

    def wrapped(self, module: nn.Module) -> TrainingCompanion:
        """The same companion computing through ``module`` (its DDP wrapper under torchrun)."""
