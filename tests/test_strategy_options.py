"""Strategies declare their options and their training companion (strategies/options.py).

A strategy registered here, with an option, is run from the command line by its generated flag:
nothing outside the test (and the strategy's own declaration) is edited for it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from active_learning import arguments, cli, run_setup, strategies
from active_learning.errors import ConfigError
from active_learning.loop.config import LoopConfig, protocol_options, recorded_options
from active_learning.strategies import (
    CLASS_DISTRIBUTIONS,
    EMBEDDING,
    LOSS_PRED,
    Strategy,
    get_strategy,
    register_strategy,
)
from active_learning.strategies.options import StrategyOption
from cli_toys import ARGV
from toy_adapters import ToyClassificationAdapter


@pytest.fixture
def registry(monkeypatch):
    """A copy of the registry for the test: what it registers is gone afterwards."""
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))


def _toy_command() -> cli.TaskCommand:
    return cli.TaskCommand(name="toy", description="toy task", output_kind=CLASS_DISTRIBUTIONS,
                           add_arguments=lambda arguments: None,
                           build=lambda args: cli.BuiltTask(adapter=ToyClassificationAdapter(),
                                                            dataset="toyset", summary="toy"),
                           reference={"kth_offset": 1})   # the flag's key, as any reference value


# ---- a new set strategy with an option, from the command line ------------------------------


def _register_every_kth(received: list) -> Strategy:
    def every_kth(inputs, labeled_embeddings, budget, seed, *, stride, stride_offset):
        """Every ``stride``-th candidate from ``stride_offset`` on (then the rest)."""
        received.append((stride, stride_offset))
        count = len(inputs[EMBEDDING])
        order = [*range(stride_offset, count, stride)]
        order += [position for position in range(count) if position not in order]
        return np.asarray(order[:budget]), np.ones(budget)

    return register_strategy(Strategy(
        "every_kth", frozenset({EMBEDDING}), "every k-th candidate", select_set=every_kth,
        options=(StrategyOption("stride", int, 2, "take every K-th candidate", metavar="K",
                                check=lambda value: value >= 1, requirement="must be >= 1"),
                 StrategyOption("stride_offset", int, 0, "the first candidate taken",
                                flags=("--kth-offset", "--kth-start")))))


def test_a_strategy_registered_with_an_option_runs_from_the_command_line(registry, tmp_path,
                                                                          capsys):
    received: list = []
    _register_every_kth(received)
    command = _toy_command()

    help_text = " ".join(arguments.build_parser(command).format_help().split())
    assert "options of --strategy every_kth:" in help_text
    assert "--stride K take every K-th candidate (default: 2)" in help_text
    # the task's reference value is the flag's default; the first spelling names the key
    assert "--kth-offset KTH_OFFSET, --kth-start KTH_OFFSET the first candidate taken " \
           "(default: 1)" in help_text

    run_dir = cli.run(command, ARGV + ["--strategy", "every_kth", "--stride", "3",
                                       "--output-dir", str(tmp_path)])
    assert received == [(3, 1)]                  # the flag and the task's reference value
    record = json.loads((run_dir / "args.json").read_text())
    assert record["loop"]["options"] == {"stride": 3, "stride_offset": 1}
    assert "stride" not in record["task"]        # the strategy's, not the task's

    # the hidden snake_case twin, the other spelling, and the same run resumed (1 -> 2 cycles)
    argv = ARGV + ["--strategy", "every_kth", "--output-dir", str(tmp_path), "--cycles", "2"]
    cli.run(command, [*argv, "--stride", "3", "--kth_start", "1"])
    assert received == [(3, 1), (3, 1)]
    # another value is another protocol: refused, naming the option
    with pytest.raises(SystemExit):
        cli.run(command, [*argv, "--cycles", "3", "--stride", "4"])
    assert "every_kth option stride: 3 -> 4" in capsys.readouterr().err


def test_a_declared_check_refuses_a_value_with_one_line(registry, tmp_path, capsys):
    _register_every_kth([])
    with pytest.raises(SystemExit) as exit_info:
        cli.run(_toy_command(), ARGV + ["--strategy", "every_kth", "--stride", "0",
                                        "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: --stride must be >= 1, got 0\n"
    assert not (tmp_path / "toy").exists()


def test_an_option_flag_of_another_strategy_is_warned_about_and_not_recorded(registry):
    _register_every_kth([])
    args = arguments.parse_args(_toy_command(), ARGV + ["--strategy", "entropy", "--stride", "5"])
    with pytest.warns(UserWarning, match="--stride only apply to --strategy every_kth; "
                                         "ignored for entropy"):
        config = run_setup.loop_config(args, "cpu")
    assert config.options == {} and "options" not in config.protocol()


def test_flags_of_two_strategies_must_not_collide(registry):
    with pytest.raises(ValueError, match="spells a flag of 'discriminative'"):
        register_strategy(Strategy("other", frozenset({EMBEDDING}), "x", select_set=print,
                                   options=(StrategyOption("epochs", int, 1, "x",
                                                           flags=("--epochs-x",
                                                                  "--dal-max-epochs")),)))
    # the same flag (the same key) is one option two strategies read
    shared = StrategyOption("sub_queries", int, 4, "x", flags=("--dal-sub-queries",))
    register_strategy(Strategy("dal_variant", frozenset({EMBEDDING}), "x", select_set=print,
                               options=(shared,)))
    assert arguments.declared_options()["dal_sub_queries"][1] == ["discriminative", "dal_variant"]
    with pytest.raises(ValueError, match="the default --width must be >= 1"):
        register_strategy(Strategy("other", frozenset({EMBEDDING}), "x", select_set=print,
                                   options=(StrategyOption("width", int, 0, "x",
                                                           check=lambda value: value >= 1,
                                                           requirement="must be >= 1"),)))


# ---- LoopConfig and args.json ---------------------------------------------------------------


def test_loop_config_fills_the_declared_defaults_and_checks_the_values():
    config = LoopConfig(strategy="discriminative", options={"n_sub_queries": 3})
    assert config.options == {"max_epochs": 500, "n_sub_queries": 3}
    assert config.strategy_options() == {"max_epochs": 500, "n_sub_queries": 3}
    assert LoopConfig(strategy="loss_prediction").strategy_options() == {}   # not select_set's
    with pytest.raises(ConfigError, match=r"'coreset' has no option\(s\) \['max_epochs'\]"):
        LoopConfig(strategy="coreset", options={"max_epochs": 3}).validate(100_000)
    with pytest.raises(ConfigError, match="--probcover-delta must be > 0, got -1"):
        LoopConfig(strategy="probcover", options={"delta": -1}).validate(100_000)


def test_a_run_recorded_before_options_were_declared_is_read_through_the_legacy_fields():
    old_loop = {"strategy": "loss_prediction", "epochs": 210, "lamda": 1e-4, "margin": 1.0,
                "detach_epoch": 157, "loss_width": 128, "loss_pool_size": 1,
                "dal_max_epochs": 500, "dal_sub_queries": 10}
    learning_loss = get_strategy("loss_prediction")
    old = protocol_options(learning_loss, recorded_options(learning_loss, old_loop), 210)
    # pose now: detached at 75% of the epochs, given as a share rather than an epoch
    new = LoopConfig(strategy="loss_prediction", epochs=210,
                     options={"lamda": 1e-4, "detach_fraction": 0.75})
    assert new.protocol()["options"] == old == {"lamda": 1e-4, "margin": 1.0,
                                               "detach_epoch": 157, "loss_width": 128,
                                               "loss_pool_size": 1}
    # an old default (None: 60% of the epochs) is the new default
    old_loop["detach_epoch"] = None
    assert protocol_options(learning_loss, recorded_options(learning_loss, old_loop), 210) \
        == LoopConfig(strategy="loss_prediction", epochs=210,
                      options={"lamda": 1e-4}).protocol()["options"]
    dal = get_strategy("discriminative")
    assert recorded_options(dal, old_loop) == {"max_epochs": 500, "n_sub_queries": 10}


# ---- a training companion ---------------------------------------------------------------------


class _PooledLinear(nn.Module):
    """feature maps -> [B, 1]: a linear layer on the last map, averaged over its positions."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 1)

    def forward(self, features):
        return self.linear(features[-1].mean(dim=(2, 3))).squeeze(1)               # [B]


class _MeanLossHead:
    """A companion that regresses each sample's loss from the pooled last feature map, its
    squared error weighted by the strategy's ``weight`` option."""

    stat = "head_loss"

    def __init__(self, module: nn.Module, weight: float, calls: list) -> None:
        self.module, self.weight, self.calls = module, weight, calls

    def train(self) -> None:
        self.module.train()

    def forward(self, features, epoch):
        self.calls.append(epoch)
        return self.module(features)                                               # [B]

    def loss(self, output, sample_losses):
        error = ((output.float() - sample_losses.detach()) ** 2).mean()
        return self.weight * error, error

    def wrapped(self, module):
        return _MeanLossHead(module, self.weight, self.calls)


def test_a_strategy_trains_its_companion_through_the_declared_interface(registry, tmp_path):
    calls: list[int] = []
    built: list[_MeanLossHead] = []
    initial: list[torch.Tensor] = []

    def companion(adapter, config):
        head = _MeanLossHead(_PooledLinear().to(config.device), config.options["weight"],
                             calls)
        built.append(head)
        initial.append(head.module.linear.weight.detach().clone())
        return head

    def head_scores(inputs, reduction="mean"):
        return inputs[LOSS_PRED].reshape(-1).float()

    register_strategy(Strategy("head_loss", frozenset({LOSS_PRED}), "a regressed loss",
                               score_batch=head_scores, companion=companion,
                               options=(StrategyOption("weight", float, 0.5, "its weight"),)))
    config = LoopConfig(strategy="head_loss", cycles=1, initial_size=10, budget=5, epochs=2,
                        batch_size=8, progress=False, save_checkpoints=True, subset_size=0)
    from active_learning.loop.runner import run_active_learning

    rows = run_active_learning(ToyClassificationAdapter(), config, tmp_path)
    assert calls and set(calls) == {0, 1}              # every training batch of both epochs
    head = built[0].module
    saved = torch.load(tmp_path / "checkpoints" / "cycle_00.pt", weights_only=False)
    torch.testing.assert_close(saved["companion"]["linear.weight"], head.linear.weight)   # saved
    assert not torch.equal(initial[0], head.linear.weight)   # the optimizer holds its parameters
    assert rows[0]["n_selected"] == 5
    assert "ranking_accuracy" in rows[0]               # a loss_pred head is ranked on the test set


def test_a_strategy_module_of_the_package_registers_itself(registry, tmp_path, monkeypatch):
    """What a new file in active_learning/strategies/ does: ``STRATEGIES`` lists its strategies
    (here a package of its own, registered as the registry registers its package)."""
    package = tmp_path / "more_strategies"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("VALUE = 1\n")      # no STRATEGIES: only imported
    (package / "farthest.py").write_text('''
from active_learning.strategies import EMBEDDING, Strategy
from active_learning.strategies.options import StrategyOption

def _farthest(inputs, labeled_embeddings, budget, seed, *, spread):
    raise AssertionError("not run here")

STRATEGIES = (Strategy("farthest", frozenset({EMBEDDING}), "the farthest candidates",
                       select_set=_farthest,
                       options=(StrategyOption("spread", float, 0.5, "how far"),)),)
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert strategies.register_modules("more_strategies", [str(package)]) == ["farthest"]
    assert get_strategy("farthest").option_defaults() == {"spread": 0.5}
    args = arguments.parse_args(_toy_command(), ["--strategy", "farthest", "--spread", "2"])
    assert run_setup.loop_config(args, "cpu").options == {"spread": 2.0}
