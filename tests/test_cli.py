"""The shared command line: devices, errors, Ctrl-C, exhaustion, and the newcomer's defaults."""
from __future__ import annotations

import warnings

import pytest

from active_learning import arguments, cli, run_setup
from active_learning.distributed import resolve_device
from active_learning.strategies import PIXEL_DISTRIBUTIONS
from classification.train import get_args_parser, main, parse_args

TINY = ["--no-report-map", "--dataset", "digits", "--width", "2", "--epochs", "1", "--batch-size", "16", "--cycles", "2",
        "--initial-size", "40", "--images-per-cycle", "10", "--subset", "30", "--no-progress"]


@pytest.mark.parametrize("name, message", [
    ("gpu", "is not a device"),
    ("cuda:x", "is not a device"),
    ("cuda", "CUDA is not available"),
])
def test_a_bad_device_is_one_message(name, message):
    import torch

    if torch.cuda.is_available() and name == "cuda":
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=message):
        resolve_device(name)
    assert resolve_device("cpu") == "cpu"


def test_bad_device_from_the_command_line_exits_2_before_writing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(TINY + ["--device", "gpu", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: --device 'gpu' is not a device")
    assert not any(tmp_path.iterdir())


def test_ctrl_c_says_the_run_resumes_and_exits_130(tmp_path, monkeypatch, capsys):
    from classification.task import ClassificationTask

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ClassificationTask, "evaluate", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main(TINY + ["--output-dir", str(tmp_path)])
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted: the finished cycles in" in err and "run the same command again to resume" in err
    assert "Traceback" not in err


def test_cycles_that_exhaust_the_pool_are_refused_before_training(tmp_path, capsys):
    # digits: 1,500 training images; 40 + 10 per cycle labels them all by cycle 146.
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY[:-11], "--cycles", "200", "--initial-size", "40", "--images-per-cycle", "10",
              "--subset", "30", "--no-progress", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "use at most 147 cycles" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_help_shows_the_real_defaults():
    text = get_args_parser().format_help()
    for flag, default in (("--epochs", "200"), ("--lr", "0.1"), ("--batch-size", "128"), ("--width", "64")):
        entry = text[text.index("\n  " + flag + " ") + 3:]                 # the options section
        entry = entry[:entry.index("\n  --")].replace("\n", " ")
        assert f"(default: {default})" in " ".join(entry.split()), flag


def test_boolean_flags_accept_false():
    assert parse_args(["--use_active_learning=False"]).strategy == "random"
    assert parse_args(["--use_active_learning"]).strategy == "loss_prediction"
    assert parse_args(["--mc-dropout", "--use-variance-as-uncertainty"]).strategy == "mc_variance"


def _toy_command(**fields) -> cli.TaskCommand:
    values = dict(name="toy", description="toy", output_kind=PIXEL_DISTRIBUTIONS,
                  add_arguments=lambda arguments: None, build=lambda args: None)
    return cli.TaskCommand(**{**values, **fields})


def test_a_task_adds_its_own_aliases_and_defaults():
    command = _toy_command(name="segmentation", reference=dict(lamda=0.01, epochs=250, subset_factor=5),
                           aliases={"entropy_superpixels": "mc_entropy"})
    args = arguments.parse_args(command, ["--entropy_superpixels"])
    assert (args.strategy, args.lamda, args.epochs, args.subset) == ("mc_entropy", 0.01, 250, 5000)
    assert run_setup.run_folder(args, command.name, "cityscapes").parts[-4:] == (
        "segmentation", "cityscapes", "mc_entropy", "seed0")


def _loss_module_settings(config):
    from active_learning.strategies.loss_prediction import detach_epoch

    options = config.options
    return options["loss_pool_size"], options["loss_width"], options["margin"], detach_epoch(options, config.epochs)


def test_loss_module_flags_reach_the_loop_config():
    args = parse_args(["--strategy", "loss_prediction", "--loss-pool-size", "3", "--loss-width", "64", "--margin", "0.5",
                       "--detach-epoch", "0"])
    assert _loss_module_settings(run_setup.loop_config(args, "cpu")) == (3, 64, 0.5, 0)
    default = run_setup.loop_config(parse_args(["--strategy", "loss_prediction"]), "cpu")
    assert _loss_module_settings(default) == (1, 128, 1.0, 120)  # Learning Loss: GAP, 60% of 200
    # a task's reference value (segmentation pools to 6x6) is its flag's default
    command = _toy_command(reference=dict(loss_pool_size=6, detach_fraction=0.75))
    config = run_setup.loop_config(arguments.parse_args(command, ["--strategy", "loss_prediction"]), "cpu")
    assert _loss_module_settings(config)[::3] == (6, 150)
    given = arguments.parse_args(command, ["--strategy", "loss_prediction", "--loss-pool-size", "2"])
    assert run_setup.loop_config(given, "cpu").options["loss_pool_size"] == 2
    # a preset's value is a default too, not a flag given: no warning for another strategy
    command = _toy_command(presets={"quick": dict(detach_epoch=0, epochs=3)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_setup.loop_config(arguments.parse_args(command, ["--preset", "quick"]), "cpu").options == {}
    config = run_setup.loop_config(arguments.parse_args(command, ["--preset", "quick", "--strategy", "loss_prediction"]), "cpu")
    assert _loss_module_settings(config)[3] == 0


def test_abbreviations_are_refused_and_snake_case_spellings_are_hidden_aliases(capsys):
    with pytest.raises(SystemExit):                       # --ep is not --epochs
        parse_args(["--ep", "3"])
    assert "unrecognized arguments: --ep" in capsys.readouterr().err
    args = parse_args(["--batch_size", "8", "--eval-batch-size", "4", "--weight_decay", "0.01"])
    assert (args.batch_size, args.eval_batch_size, args.weight_decay) == (8, 4, 0.01)
    text = get_args_parser().format_help()
    assert "--batch-size" in text and "--batch_size" not in text


def test_help_lists_only_the_strategies_the_task_runs():
    from human_pose_estimation.train import get_args_parser as pose_parser

    text = " ".join(pose_parser().format_help().split())
    start = "--strategy STRATEGY one of: "
    listed = text[text.index(start) + len(start):].split(" (default")[0].split(", ")
    assert listed == ["random", "mc_variance", "heatmap_uncertainty", "loss_prediction", "coreset",
                      "discriminative", "typiclust", "probcover", "mb_outliers_mean",
                      "mb_outliers_max", "mb_outliers_glosh", "mb_clustering"]


@pytest.mark.parametrize("where, message", [
    ("file", "is a file, not a folder"),
    ("file/below", "is a file, not a folder"),
])
def test_an_output_dir_that_cannot_hold_runs_is_one_message(tmp_path, capsys, where, message):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(TINY + ["--output-dir", str(tmp_path / where)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: --output-dir") and message in err
    assert "Traceback" not in err and sorted(path.name for path in tmp_path.iterdir()) == ["file"]


def test_a_run_folder_that_cannot_be_created_is_one_message(tmp_path, monkeypatch):
    from pathlib import Path

    from active_learning.errors import ConfigError

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", denied)
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.runner import run_active_learning
    from toy_adapters import ToyClassificationAdapter

    with pytest.raises(ConfigError, match="cannot create the run folder .*: Permission denied"):
        run_active_learning(ToyClassificationAdapter(), LoopConfig(cycles=1, initial_size=20, budget=5,
                                                                   epochs=1, progress=False), tmp_path / "x")


def test_an_unwritable_cache_costs_a_warning_not_the_run(tmp_path, monkeypatch, caplog):
    import logging

    from PIL import Image

    from active_learning.files.images import check_images

    Image.new("RGB", (4, 3)).save(tmp_path / "a.png")
    (tmp_path / "file").write_text("in the way")
    with caplog.at_level(logging.WARNING, logger="active_learning"):
        check_images([(tmp_path / "a.png", (4, 3))], ValueError, cache=tmp_path / "file" / "c.json")
    assert "cannot remember the checked images" in caplog.text


def test_a_damaged_metrics_file_is_one_message(tmp_path, capsys):
    args = TINY + ["--output-dir", str(tmp_path), "--cycles", "1"]
    run_dir = main(args)
    (run_dir / "metrics.csv").write_text("cycle,n_labeled\nnot a number,3\n")
    with pytest.raises(SystemExit) as exit_info:
        main([*args[:-2], "--cycles", "2"])
    assert exit_info.value.code == 2 and "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [(["--weights", "WEIGHTS"], "w.pt: not a PyTorch checkpoint"),
                                            (["--epochs", "0"], "epochs must be >= 1")])
def test_weights_and_settings_are_refused_before_the_data_is_read(tmp_path, monkeypatch, capsys, extra, message):
    import classification.build as build

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before the flags were checked")

    monkeypatch.setattr(build, "load_classification_data", no_data)
    (tmp_path / "w.pt").write_text("text")
    with pytest.raises(SystemExit) as exit_info:
        main(TINY + ["--output-dir", str(tmp_path)] + [str(tmp_path / "w.pt") if item == "WEIGHTS" else item
                                                       for item in extra])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_mc_dropout_alone_selects_an_mc_strategy_the_task_runs():
    from human_pose_estimation.train import parse_args as pose_args

    assert parse_args(["--mc-dropout"]).strategy == "mc_entropy"
    assert pose_args(["--mc-dropout"]).strategy == "mc_variance"      # pose outputs heatmaps


@pytest.mark.parametrize("extra, message", [
    (["--strategy", "entropy", "--diversity-factor", "5"], "--diversity-factor sizes"),
    (["--strategy", "random", "--diversity", "coreset"], "scores nothing"),
    (["--strategy", "entropy", "--random-fraction", "1"], "--random-fraction must be in"),
])
def test_a_mix_that_cannot_run_is_one_message_before_anything_is_read(tmp_path, capsys, extra,
                                                                        message):
    with pytest.raises(SystemExit) as exit_info:
        main(TINY + ["--output-dir", str(tmp_path), *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
