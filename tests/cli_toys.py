"""Tiny task commands around the toy classifier, for the command line's error boundary.

Used in-process by ``test_cli_boundary.py`` and in a subprocess (``python -c``), where the
interpreter itself decides what reaches stderr and the exit status:

    python -c "import cli_toys; cli_toys.main()" MODE [task flags...]

with ``tests/`` and the repository root on ``PYTHONPATH``. MODE is ``bug`` (the adapter's
``batch_loss`` raises ValueError("deliberate bug") while training) or ``config`` (the command's
``build`` raises a ConfigError before anything runs).
"""
from __future__ import annotations

import sys

from active_learning import cli
from active_learning.errors import ConfigError
from active_learning.strategies import CLASS_DISTRIBUTIONS
from toy_adapters import ToyClassificationAdapter

# One short cycle: 10 labeled, 5 more chosen from the rest of the 120-image pool.
ARGV = ["--cycles", "1", "--initial-size", "10", "--images-per-cycle", "5", "--subset", "0",
        "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--no-progress"]
BUG = "deliberate bug"
REFUSAL = "the toy dataset refuses this run"


class BuggyAdapter(ToyClassificationAdapter):
    """The toy classifier with a bug in one of its methods (named by ``broken``)."""

    def __init__(self, broken: str = "batch_loss") -> None:
        super().__init__()
        self.broken = broken

    def _maybe_fail(self, method: str) -> None:
        if method == self.broken:
            raise ValueError(BUG)

    def batch_loss(self, outputs, targets):
        self._maybe_fail("batch_loss")
        return super().batch_loss(outputs, targets)

    def forward_intermediates(self, model, inputs):
        self._maybe_fail("forward_intermediates")
        return super().forward_intermediates(model, inputs)

    def evaluate(self, model, loader, device):
        self._maybe_fail("evaluate")
        return super().evaluate(model, loader, device)

    def probabilities(self, outputs):
        self._maybe_fail("probabilities")
        return super().probabilities(outputs)


def _command(build) -> cli.TaskCommand:
    return cli.TaskCommand(name="toy", description="toy task", output_kind=CLASS_DISTRIBUTIONS,
                           add_arguments=lambda arguments: None, build=build)


def buggy_command(broken: str = "batch_loss") -> cli.TaskCommand:
    return _command(lambda args: cli.BuiltTask(adapter=BuggyAdapter(broken), dataset="toyset",
                                               summary="120 toy images"))


def refusing_command() -> cli.TaskCommand:
    def build(args):
        raise ConfigError(REFUSAL)

    return _command(build)


def main() -> None:
    mode, argv = sys.argv[1], sys.argv[2:]
    command = buggy_command() if mode == "bug" else refusing_command()
    cli.run(command, argv)
