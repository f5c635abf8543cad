"""One sizing of the initial set, the budget and the subset (``run_setup.size_run``) for every run:
a simulation refuses a budget larger than the pool, a round proposes what is left."""
from __future__ import annotations

import numpy as np
import pytest

from active_learning import arguments, run_setup
from active_learning.errors import ConfigError
from active_learning.loop.units import SelectionUnits
from classification.train import COMMAND

ROUND = ["--images", "x", "--labels", "y", "--workspace", "z", "--no-report-map"]


def _round_args(*flags: str):
    return arguments.parse_args(COMMAND, [*ROUND, *flags], round_mode=True)


@pytest.mark.parametrize("budget, expected", [("3", 3), ("10", 4), ("all", 4)])
def test_a_round_proposes_the_budget_or_what_is_left(budget, expected):
    args = _round_args("--budget", budget)
    config = run_setup.size_run(COMMAND, args, "cpu", SelectionUnits(10), np.arange(6), 6,
                          too_large=None, subset_size=0, cycles=1, save_checkpoints=True)
    assert (config.budget, config.initial_size, config.cycles) == (expected, 6, 1)
    assert config.subset_size == 0 and config.save_checkpoints


def test_a_simulation_refuses_a_budget_larger_than_the_pool_and_sizes_the_subset():
    args = arguments.parse_args(COMMAND, ["--initial-size", "4", "--images-per-cycle", "3",
                                    "--cycles", "2"])
    args.subset, args.subset_factor = None, 2     # no --subset: the factor x the budget
    config = run_setup.size_run(COMMAND, args, "cpu", SelectionUnits(20), None, 4)
    assert (config.budget, config.subset_size, config.initial_size) == (3, 6, 4)
    args.images_per_cycle = 17
    with pytest.raises(ConfigError, match="larger than the unlabeled pool .16 = 20 .* 4 "
                                          "initial.; ranked"):
        run_setup.size_run(COMMAND, args, "cpu", SelectionUnits(20), None, 4, too_large="; ranked")
