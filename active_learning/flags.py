"""Flag vocabulary shared by every task's command line: the hidden ``--snake_case`` twin of each
``--kebab-case`` flag, booleans that accept ``--flag=False``, budgets that accept ``all``, epoch
lists, the help formatter, the argument groups that record a task's own flags, and the one-line
checks of a flag's value."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from active_learning.errors import ConfigError

ALL = "all"   # --budget all: rank mode writes every unlabeled unit, best first


class TaskArguments:
    """What ``TaskCommand.add_arguments`` adds flags through: argument groups that remember
    which flags are the task's own, so that the run record needs no hand-kept key list."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.recorded: list[str] = []

    def group(self, title: str) -> RecordingGroup:
        return RecordingGroup(self.parser.add_argument_group(title), self.recorded)


class RecordingGroup:
    def __init__(self, group: Any, recorded: list[str]) -> None:
        self._group, self._recorded = group, recorded

    def add_argument(self, *names: str, recorded: bool = True, **options: Any) -> argparse.Action:
        """``add_argument``, plus the hidden ``--snake_case`` spelling of a ``--kebab-case``
        flag (the original scripts spelled flags both ways). ``recorded=False``: not part of
        the run's identity (a path to data, a cache folder)."""
        action = add_with_spellings(self._group, names, options)
        if recorded and action.dest not in self._recorded:
            self._recorded.append(action.dest)
        return action

    def add_bool(self, *names: str, help: str, default: bool | None = False,
                 recorded: bool = True) -> argparse.Action:
        return self.add_argument(*names, type=str2bool, nargs="?", const=True, default=default,
                                 metavar="BOOL", help=help, recorded=recorded)


def add_with_spellings(group: Any, names: Sequence[str],
                        options: dict[str, Any]) -> argparse.Action:
    action = group.add_argument(*names, **options)
    hidden = [name for name in snake_spellings(names) if name not in names]
    if hidden:
        twin = {key: value for key, value in options.items() if key not in ("help", "dest")}
        group.add_argument(*hidden, dest=action.dest, help=argparse.SUPPRESS, **twin)
    return action


def snake_spellings(names: Sequence[str]) -> list[str]:
    """The hidden ``--snake_case`` twins of the ``--kebab-case`` flags in ``names``."""
    return [name.replace("-", "_").replace("__", "--", 1) for name in names
            if name.startswith("--") and "-" in name[2:]]


def str2bool(text: str | bool) -> bool:
    """``--flag``, ``--flag=True`` and ``--flag=False``."""
    if isinstance(text, bool):
        return text
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {text!r}")


def epochs_list(values: Sequence[Any] | str | int | None, flag: str = "--milestones") -> list[int]:
    """``--milestones 160 200``, ``--milestones 160,200`` (or a preset's list) -> [160, 200]."""
    if values is None:
        return []
    if isinstance(values, (str, int)):
        values = [values]
    try:
        epochs = [int(part) for value in values for part in str(value).split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes epochs separated by spaces or commas, got "
                          f"{' '.join(map(str, values))!r}") from None
    if any(epoch < 1 for epoch in epochs):
        raise ConfigError(f"{flag} must be epochs >= 1, got {epochs}")
    return epochs


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, except None: those flags explain their default in their help."""

    # argparse's documented way to customise help is a formatter class (``formatter_class=``);
    # ``_get_help_string`` is the hook ArgumentDefaultsHelpFormatter itself overrides to add
    # "(default: ...)", so overriding it here is the intended extension point, not a reach into
    # parser internals. tests/test_cli.py checks the help text, so an argparse change shows up.
    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def budget(text: str) -> int | str:
    """A budget flag's value: a number of units, or 'all' (rank mode)."""
    if str(text).strip().lower() == ALL:
        return ALL
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of units or 'all', "
                                         f"got {text!r}") from None


def flag_name(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def require(checks: Sequence[tuple[bool, str]]) -> None:
    """Raise ConfigError with the message of the first check that failed."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def split_extra(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``[own args] -- [task args]`` -> (own args, task args); no ``--`` means no task args.

    For wrappers (``bench/run_grid.py``, ``classification/demo.py``) that pass the arguments after
    ``--`` on to every run of a task's ``train.py``.
    """
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []
