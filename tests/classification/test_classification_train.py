"""End-to-end tests of classification/train.py: two short cycles through main([...])."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from active_learning import PoolState
from active_learning.files.export import read_metrics_csv
from active_learning.strategies import get_strategy
from classification.data import load_classification_data
from classification.train import main, parse_args
from task_contract import *  # noqa: F403  the end-to-end contract, run on this task
from task_contract import check_priorities

TASK = "classification"
# every strategy of whole images: its own selection code end to end on the cheapest task
# (superpixel strategies select regions, which whole images do not have: segmentation runs them)
STRATEGIES = [name for name in every_strategy_but("heatmap_uncertainty")  # noqa: F405
              if not get_strategy(name).region_level]

TINY = ["--no-report-map", "--dataset", "digits", "--width", "2", "--cycles", "2", "--initial-size", "40",
        "--images-per-cycle", "12", "--subset", "60", "--epochs", "2", "--batch-size", "16",
        "--mc-samples", "3", "--no-progress", "--device", "cpu"]


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _check_run(run_dir, names, initial=40, budget=12, cycles=2):
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["cycle"] for row in rows] == list(range(cycles))
    assert [row["n_labeled"] for row in rows] == [initial + budget * c for c in range(cycles)]
    assert all(0 <= row["accuracy"] <= 1 for row in rows)
    state = PoolState.load(run_dir / "pool.npz")
    labeled = state.labeled_indices
    assert len(labeled) == initial + budget * cycles == len(np.unique(labeled))
    check_priorities(run_dir, names, state, cycles, budget)
    return state


@pytest.fixture(scope="module")
def digit_names():
    return load_classification_data("digits", None).names


def test_rerun_resumes_and_extends(tmp_path, digit_names, capsys):
    args = TINY + ["--strategy", "entropy", "--output-dir", str(tmp_path)]
    run_dir = main(args)
    first = PoolState.load(run_dir / "pool.npz").labeled_at.copy()
    main(args)  # finished already: nothing changes
    np.testing.assert_array_equal(PoolState.load(run_dir / "pool.npz").labeled_at, first)
    main([*args, "--cycles", "3"])  # one more cycle on top
    assert "resuming" in capsys.readouterr().out
    state = _check_run(run_dir, digit_names, cycles=3)
    assert (state.labeled_at[first >= 0] == first[first >= 0]).all()


def test_original_flags_are_aliases():
    assert parse_args(["--use_active_learning"]).strategy == "loss_prediction"
    assert parse_args(["--use_active_learning=True"]).strategy == "loss_prediction"
    assert parse_args(["--use_active_learning=False"]).strategy == "random"
    assert parse_args(["--use_loss_prediction_al", "true"]).strategy == "loss_prediction"
    assert parse_args(["--use_discriminative_al"]).strategy == "discriminative"
    assert parse_args([]).strategy == "random"
    assert parse_args(["--mc-dropout"]).strategy == "mc_entropy"
    assert parse_args(["--mc-dropout", "--use-variance-as-uncertainty"]).strategy == "mc_variance"
    assert parse_args(["--strategy", "loss_prediction", "--use_active_learning"]).strategy == "loss_prediction"
    assert parse_args(["--lamda", "0.5"]).lamda == 0.5


def test_help_states_defaults_without_none():
    from classification.train import get_args_parser

    text = " ".join(get_args_parser().format_help().split())  # undo the line wrapping
    assert "--margin MARGIN ranking loss margin (default: 1.0)" in text
    assert "default: None" not in text         # flags whose default depends on others explain it
    assert "80% of --epochs" in text


def test_dal_flags_set_the_loop_config():
    from active_learning.run_setup import loop_config

    default = loop_config(parse_args(["--strategy", "discriminative"]), "cpu")
    assert default.options == {"max_epochs": 500, "n_sub_queries": 10}  # the paper's
    args = parse_args(["--strategy", "discriminative", "--dal-max-epochs", "50", "--dal_sub_queries", "4"])
    config = loop_config(args, "cpu")
    assert config.strategy_options() == {"max_epochs": 50, "n_sub_queries": 4}


def test_dal_flags_with_another_strategy_are_ignored_with_a_warning():
    from active_learning.run_setup import loop_config

    args = parse_args(["--strategy", "entropy", "--dal-max-epochs", "5"])
    with pytest.warns(UserWarning, match="only apply to --strategy discriminative"):
        config = loop_config(args, "cpu")
    assert config.options == {}  # not recorded: resuming without the flag is not refused


def test_probcover_flags_set_its_options_and_are_part_of_its_protocol_only():
    from active_learning.run_setup import loop_config

    default = loop_config(parse_args(["--strategy", "probcover"]), "cpu")
    assert default.strategy_options() == {"delta": None, "purity_clusters": 10}  # purity-based
    config = loop_config(parse_args(["--strategy", "probcover", "--probcover-delta", "0.6",
                                     "--probcover-clusters", "100"]), "cpu")
    assert config.strategy_options() == {"delta": 0.6, "purity_clusters": 100}
    assert config.protocol()["options"] == {"delta": 0.6, "purity_clusters": 100}
    args = parse_args(["--strategy", "typiclust", "--probcover-delta", "0.6"])
    with pytest.warns(UserWarning, match="only apply to --strategy probcover"):
        other = loop_config(args, "cpu")
    assert other.strategy_options() == {} and "options" not in other.protocol()


def test_loss_module_flags_with_another_strategy_are_ignored_with_a_warning():
    from active_learning.run_setup import loop_config

    args = parse_args(["--strategy", "entropy", "--lambda", "0.5", "--loss-width", "8"])
    with pytest.warns(UserWarning, match="--lamda and --loss-width only apply to --strategy loss_prediction"):
        assert loop_config(args, "cpu").options == {}
    config = loop_config(parse_args(["--strategy", "loss_prediction", "--lambda", "0.5"]), "cpu")
    assert (config.options["lamda"], config.options["loss_width"]) == (0.5, 128)


def test_milestones_and_subset_follow_epochs_and_budget_by_default():
    reference = parse_args([])
    assert (reference.milestones, reference.subset) == ([160], 10000)  # Learning Loss's values
    short = parse_args(["--epochs", "50", "--images-per-cycle", "200"])
    assert (short.milestones, short.subset) == ([40], 2000)
    explicit = parse_args(["--epochs", "50", "--milestones", "30", "45", "--subset", "0"])
    assert (explicit.milestones, explicit.subset) == ([30, 45], 0)


def test_a_damaged_run_folder_is_one_clear_error(tmp_path, capsys):
    args = TINY + ["--strategy", "random", "--output-dir", str(tmp_path), "--cycles", "1"]
    run_dir = main(args)
    (run_dir / "pool.npz").write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exit_info:
        main([*args[:-2], "--cycles", "2"])
    assert exit_info.value.code == 2
    assert "cannot read pool state" in capsys.readouterr().err


def test_preset_values_yield_to_explicit_flags():
    args = parse_args(["--preset", "fmnist-demo", "--cycles", "3"])
    assert (args.dataset, args.strategy, args.width, args.cycles) == ("fashion_mnist", "loss_prediction", 8, 3)


@pytest.mark.parametrize("argv, message", [
    (["--strategy", "nope"], "known strategies"),
    (["--use_active_learning", "--use_discriminative_al"], "incompatible flags"),
    (["--strategy", "entropy", "--use_active_learning"], "incompatible flags"),
    (["--use_active_learning=maybe"], "boolean"),
])
def test_bad_flags_exit_with_one_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--images-per-cycle", "5000"], "larger than the unlabeled pool"),
    (["--strategy", "loss_prediction", "--batch-size", "15"], "must be even"),
    (["--strategy", "bald", "--dropout", "0"], "--dropout > 0"),
    (["--initial-size", "1500"], "leaves nothing"),
    (["--weights", "/nonexistent/weights.pt"], "no such file"),
    (["--strategy", "discriminative", "--dal-sub-queries", "0"], "--dal-sub-queries must be >= 1, got 0"),
    (["--strategy", "probcover", "--probcover-delta", "0"], "--probcover-delta must be > 0"),
    (["--strategy", "probcover", "--probcover-clusters", "1"], "--probcover-clusters must be >= 2"),
    (["--strategy", "loss_prediction", "--margin", "-1"], "--margin must be >= 0, got -1.0"),
    (["--strategy", "loss_prediction", "--loss-width", "0"], "--loss-width must be >= 1, got 0"),
    (["--eval-batch-size", "0"], "evaluation batch size"),
    (["--workers", "-1"], "workers must be >= 0"),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--width", "0"], "--width must be >= 1"),
])
def test_bad_protocols_fail_before_anything_is_written(tmp_path, extra, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(TINY + ["--output-dir", str(tmp_path)] + extra)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_missing_data_folder_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "nowhere" in capsys.readouterr().err


def test_changed_protocol_on_rerun_keeps_the_run(tiny_run, capsys):
    run_dir = tiny_run("--strategy", "margin")              # the end-to-end test's run
    args = TINY + ["--strategy", "margin", "--output-dir", str(run_dir.parents[3])]
    before = (run_dir / "pool.npz").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--epochs", "3"])
    assert exit_info.value.code == 2
    assert "epochs" in capsys.readouterr().err
    assert (run_dir / "pool.npz").read_bytes() == before


def _write_image_folder(root, per_class=12):
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", 4)):
        for label, color in (("cats", 40), ("dogs", 200)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = np.clip(rng.normal(color, 20, (10, 10, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{label}_{split}_{index:03d}.png")
    (root / "train" / "cats" / "broken.png").write_bytes(b"not an image at all")


def test_image_folder_end_to_end_names_the_files(tmp_path):
    data_dir = tmp_path / "pets"
    _write_image_folder(data_dir)
    with pytest.warns(UserWarning, match="broken.png"):
        run_dir = main(["--dataset", "image_folder", "--data-dir", str(data_dir), "--image-size", "8",
                        "--width", "2", "--cycles", "2", "--initial-size", "6", "--images-per-cycle",
                        "4", "--subset", "0", "--epochs", "1", "--batch-size", "4", "--strategy",
                        "entropy", "--no-progress", "--output-dir", str(tmp_path / "runs")])
    names = [row[0] for row in _read_csv(run_dir / "priorities" / "cycle_00.csv")[1:]]
    assert len(names) == 4
    assert all(name.endswith(".png") and name.split("_")[0] in ("cats", "dogs") for name in names)
    assert "broken.png" not in names


def test_a_resumed_run_refuses_an_image_replaced_under_its_name_even_with_its_mtime_restored(
        tmp_path, capsys):
    import os

    data_dir = tmp_path / "pets"
    _write_image_folder(data_dir)
    (data_dir / "train" / "cats" / "broken.png").unlink()
    for image in (data_dir / "train").rglob("*.png"):   # one size for all: PNG readers ignore
        image.write_bytes(image.read_bytes().ljust(2048, b"\0"))   # bytes after IEND
    args = ["--dataset", "image_folder", "--data-dir", str(data_dir), "--image-size", "8", "--width",
            "2", "--initial-size", "6", "--images-per-cycle", "4", "--subset", "0", "--epochs", "1",
            "--batch-size", "4", "--strategy", "random", "--no-progress", "--no-report-map",
            "--output-dir", str(tmp_path / "runs")]
    main([*args, "--cycles", "1"])
    victim = data_dir / "train" / "dogs" / "dogs_train_003.png"
    donor = data_dir / "train" / "dogs" / "dogs_train_004.png"
    before = victim.stat()
    victim.write_bytes(donor.read_bytes())   # another picture, the same size, the same name
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert victim.stat().st_size == before.st_size and victim.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--cycles", "2"])
    assert exit_info.value.code == 2
    assert "the content of 1 image(s) changed since this run read them (dogs_train_003.png)" \
        in capsys.readouterr().err


def test_a_last_training_batch_of_one_image_is_dropped(tmp_path):
    # digits are 8x8, so layer4 maps are 1x1: a batch of one would break BatchNorm in training.
    run_dir = main(TINY + ["--initial-size", "33", "--strategy", "loss_prediction",
                           "--output-dir", str(tmp_path)])
    assert [row["n_labeled"] for row in read_metrics_csv(run_dir / "metrics.csv")] == [33, 45]


def test_a_run_folder_recorded_before_units_and_metrics_resumes(tmp_path, capsys):
    """Runs made before args.json named its metric and units (and before the loop had
    unit_reduction / checkpoint_every) resume unchanged and still compare on accuracy."""
    import json

    from active_learning.reports.compare import compare_runs, load_runs

    args = [*TINY[:TINY.index("--cycles")], *TINY[TINY.index("--cycles") + 2:], "--strategy", "margin",
            "--output-dir", str(tmp_path)]
    run_dir = main([*args, "--cycles", "1"])
    record = json.loads((run_dir / "args.json").read_text())
    for key in ("metric", "units", "adapter"):
        del record[key]
    for key in ("unit_reduction", "checkpoint_every", "reduction"):
        del record["loop"][key]
    (run_dir / "args.json").write_text(json.dumps(record))
    main([*args, "--cycles", "2"])
    assert "resuming" in capsys.readouterr().out
    assert [row["cycle"] for row in read_metrics_csv(run_dir / "metrics.csv")] == [0, 1]
    assert compare_runs(load_runs(run_dir)).metric == "accuracy"


def test_a_run_recorded_by_the_earlier_flag_vocabulary_resumes(tmp_path):
    import json

    args = TINY + ["--strategy", "random", "--output-dir", str(tmp_path)]
    run_dir = main(args)
    record = json.loads((run_dir / "args.json").read_text())
    task = record["task"]
    task["milestones"] = ",".join(str(epoch) for epoch in task["milestones"])   # a comma string then
    task["resume"] = task.pop("weights")                                       # the whole model's old name
    task.pop("dropout")                                                        # a key added since
    (run_dir / "args.json").write_text(json.dumps(record))
    main([*args, "--cycles", "3"])
    assert len(read_metrics_csv(run_dir / "metrics.csv")) == 3
    record = json.loads((run_dir / "args.json").read_text())
    record["task"]["resume"] = "old_weights.pt"                                # made with other weights
    (run_dir / "args.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--cycles", "4"])
    assert exit_info.value.code == 2


def test_a_mix_runs_end_to_end_in_its_own_folder_and_compares_as_its_own_strategy(
        tmp_path, digit_names, tiny_run):
    from active_learning.reports.compare import compare_runs, load_runs

    mixed = main(TINY + ["--strategy", "entropy", "--diversity", "coreset", "--random-fraction",
                         "0.25", "--output-dir", str(tmp_path)])
    assert mixed == tmp_path / "classification" / "digits" / "entropy+coreset+random0.25" / "seed0"
    _check_run(mixed, digit_names)
    plain = tiny_run("--strategy", "entropy")                # the end-to-end test's run
    comparison = compare_runs(load_runs([mixed, plain]))
    assert sorted(comparison.strategies) == ["entropy", "entropy+coreset+random0.25"]
