"""The command line's error boundary with a task adapter of its own.

A bug inside an adapter (a shape mismatch, a typo) must keep its traceback and exit 1: turned
into one tidy ``error:`` line it would look like bad input. A UserError (here a ConfigError
from the command's ``build``) is the opposite: one ``error:`` line, exit 2, no traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from active_learning import cli
from active_learning.errors import UserError
from cli_toys import ARGV, BUG, REFUSAL, buggy_command, refusing_command

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


@pytest.mark.parametrize("broken", ["batch_loss", "forward_intermediates", "evaluate",
                                    "probabilities"])
def test_a_bug_in_the_adapter_propagates_in_process(tmp_path, broken, capsys):
    # entropy: the adapter's probabilities are used while scoring, after the cycle's training
    argv = ARGV + ["--strategy", "entropy", "--output-dir", str(tmp_path)]
    with pytest.raises(ValueError, match=BUG) as error:
        cli.run(buggy_command(broken), argv)
    assert not isinstance(error.value, UserError)
    assert error.type is ValueError
    assert "error:" not in capsys.readouterr().err
    run_dir = tmp_path / "toy" / "toyset" / "entropy" / "seed0"
    assert not (run_dir / "pool.npz").exists()      # nothing committed


def test_a_config_error_from_build_exits_2_in_process(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(refusing_command(), ARGV + ["--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {REFUSAL}\n"
    assert not any(tmp_path.iterdir())


def _run_toy(mode: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]))
    return subprocess.run([sys.executable, "-c", "import cli_toys; cli_toys.main()", mode, *ARGV,
                           "--output-dir", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_a_bug_in_the_adapter_keeps_its_traceback_and_exits_1(tmp_path):
    result = _run_toy("bug", tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert f"ValueError: {BUG}" in result.stderr
    assert "in batch_loss" in result.stderr             # the frame of the adapter's bug
    assert not any(line.startswith("error:") for line in result.stderr.splitlines())


def test_a_config_error_is_one_error_line_and_exits_2(tmp_path):
    result = _run_toy("config", tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: {REFUSAL}"]
    assert "Traceback" not in result.stderr + result.stdout


def test_ctrl_c_while_the_final_page_is_written_is_one_line_and_keeps_the_run(
        tmp_path, capsys, monkeypatch):
    import active_learning.reports.run_folder as run_folder

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_folder, "report_for_run", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        cli.run(buggy_command(None), ARGV + ["--output-dir", str(tmp_path)])
    run_dir = tmp_path / "toy" / "toyset" / "random" / "seed0"
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 130
    assert err == [f"interrupted: the finished cycles in {run_dir} are kept; run the same "
                   "command again to resume"]
    assert (run_dir / "pool.npz").exists() and not (run_dir / ".pending").exists()
