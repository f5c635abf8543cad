"""The errors a user can cause, as opposed to bugs.

The command line (``active_learning.cli``) turns a :class:`UserError` into one ``error:`` line
and exit status 2. Every other exception is a bug in this code or in an adapter: it keeps its
traceback and exits 1, so a shape mismatch inside a model never looks like bad input.

A library user catches :class:`UserError` to tell the two apart. The subclasses that are also
``ValueError`` are so for callers that caught ``ValueError`` before this family existed.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input: an argument, a data file, a weights file or a run folder. One message."""


class ConfigError(UserError, ValueError):
    """An impossible protocol or argument combination (a flag out of range, a strategy that
    cannot work for the task's outputs or units)."""


class DataError(UserError):
    """A dataset file is missing, unreadable or inconsistent; the message names the file."""


class WeightsError(UserError, ValueError):
    """A weights file is missing, is not a checkpoint, or does not fit the model."""


class RunMismatchError(UserError, ValueError):
    """The run folder cannot be resumed: it holds a run made with other arguments or on another
    dataset, or its files are damaged."""
