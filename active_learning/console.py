"""The command line's console: messages to stdout, warnings as ``warning:`` lines, and the error
boundary (a user's error is one line and exit 2, Ctrl-C one line and exit 130, a bug keeps its
traceback)."""
from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from active_learning.errors import UserError

logger = logging.getLogger("active_learning")


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a message comes (a test harness swaps it)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Send the ``active_learning`` logger's messages to stdout, once (the command line's choice;
    a library user configures logging as they like)."""
    if not any(isinstance(handler, _CurrentStdout) for handler in logger.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Each warning raised inside (a dataset reader's note on what it left out) becomes one
    ``warning: <message>`` line on stderr once the block finishes (not after an error), each
    time it was raised, without the file and line ``warnings`` would print: what a reader says
    to a user, not a developer's notice. The tasks' ``build`` functions read their data in it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    # Only when the block finished: a failed read ends with its one error line alone.
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)


@contextmanager
def cli_errors(resumable: Path | None = None, rank: bool = False) -> Iterator[None]:
    """A UserError -> one ``error:`` line on stderr and exit 2; Ctrl-C -> one line, exit 130.

    Any other exception is a bug and propagates with its traceback. ``resumable`` is the run
    folder an interrupted simulation resumes from; ``rank`` says it was a ranking instead.
    """
    try:
        yield
    except KeyboardInterrupt:
        if rank:
            message = "the previous ranking, if any, is kept; run the same command again"
        elif resumable is not None:
            message = (f"the finished cycles in {resumable} are kept; run the same command again "
                       "to resume")
        else:
            message = "nothing was written"
        print(f"\ninterrupted: {message}", file=sys.stderr)
        raise SystemExit(130) from None
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
