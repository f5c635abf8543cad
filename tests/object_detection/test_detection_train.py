"""object_detection/train.py end to end on a tiny VOC-format dataset the tests write."""
from __future__ import annotations

import shlex
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from active_learning import PoolState, run_setup
from active_learning.errors import ConfigError
from active_learning.files.export import read_entropies_csv, read_metrics_csv
from det_fixtures import TINY_ARGS, write_tiny_voc
from interrupts import interrupt_on_call
from object_detection.train import main, parse_args
from task_contract import *  # noqa: F403  the end-to-end contract, run on this task

TASK = "object_detection"
# one strategy of each kind of request the task accepts (task_contract.request_kind): every
# strategy runs end to end on classification
STRATEGIES = ["random", "loss_prediction", "entropy", "mc_entropy", "mc_variance", "variation_ratio", "bald", "coreset",
              "mb_outliers_glosh", "mb_outliers_mean_least_confidence"]

ORIGINAL_COMMANDS = {  # the original README's detection commands, as written (from object_detection/)
    "python3 train.py": "random",
    "python3 train.py --use_active_learning=True": "loss_prediction",
}


@pytest.mark.parametrize("command, strategy", ORIGINAL_COMMANDS.items())
def test_the_original_commands_parse_with_the_reference_protocol(command, strategy):
    args = parse_args(shlex.split(command)[2:])
    assert args.strategy == strategy
    assert (args.cycles, args.initial_size, args.images_per_cycle, args.subset) == (10, 1000, 1000, 10000)
    assert (args.batch_size, args.lr, args.momentum, args.weight_decay) == (32, 1e-3, 0.9, 5e-4)
    assert (args.epochs, args.milestones, args.gamma, args.lamda) == (300, [240], 0.1, 1.0)
    assert args.train_sets == "2007:trainval,2012:trainval" and args.test_set == "2007:test"
    assert args.dropout == 0.0 and args.reduction == "max"


def test_the_original_flags():
    args = parse_args(["--dataset", "VOC", "--dataset_root", "/data/VOCdevkit", "--basenet", "vgg16_reducedfc.pth",
                       "--batch_size", "8", "--weights", "ssd.pth", "--num_workers", "2", "--cuda=False",
                       "--lr", "0.002", "--momentum", "0.8", "--weight_decay", "1e-4", "--save_folder", "out",
                       "--output_superannotate_csv_file", "up.csv", "--use_active_learning=True", "--lamda", "0.5"])
    assert (args.dataset_root, args.weights_backbone, args.weights, args.batch_size, args.workers) == \
        ("/data/VOCdevkit", "vgg16_reducedfc.pth", "ssd.pth", 8, 2)
    assert (args.device, args.lr, args.momentum, args.weight_decay, args.output_dir) == ("cpu", 0.002, 0.8, 1e-4, "out")
    assert (args.superannotate_csv, args.strategy, args.lamda) == ("up.csv", "loss_prediction", 0.5)
    assert parse_args(["--strategy", "bald"]).dropout == 0.1        # MC strategies get head dropout
    assert parse_args(["--use_active_learning=False"]).strategy == "random"
    preset = parse_args(["--preset", "synthetic-cpu", "--lr", "0.01"])
    assert (preset.width, preset.batch_norm, preset.clip_grad_norm, preset.lr) == (0.0625, True, 10.0, 0.01)
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "COCO"])
    with pytest.raises(ConfigError, match="a run resumes by itself"):   # weights are --weights
        parse_args(["--resume", "ssd.pth"])


def test_the_commands_run_as_written_and_explain_missing_data(tmp_path, monkeypatch, capsys):
    from weights_cache import write_hub_checkpoint

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:     # the weights are checked before the data
        main([])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--weights-backbone vgg16_reducedfc.pth" in err
    write_hub_checkpoint("vgg16_reducedfc.pth", {"0.weight": torch.zeros(1)})
    with pytest.raises(SystemExit) as exit_info:
        main([])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "dataset root not found: data/VOCdevkit" in err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_voc(tmp_path_factory.mktemp("data") / "voc")


def _run(dataset, tmp_path, *extra):
    return main(["--dataset_root", str(dataset), *TINY_ARGS, "--output-dir", str(tmp_path / "runs"), *extra])


def test_an_interrupted_run_resumes_to_the_same_labeled_set(dataset, tmp_path, monkeypatch, capsys, tiny_run):
    from object_detection.task import DetectionTask

    straight = tiny_run("--strategy", "loss_prediction")     # the end-to-end test's run
    expected = PoolState.load(straight / "pool.npz").labeled_at
    expected_rows = read_metrics_csv(straight / "metrics.csv")
    restore = interrupt_on_call(monkeypatch, DetectionTask, "evaluate", call=2)
    with pytest.raises(SystemExit) as exit_info:
        _run(dataset, tmp_path / "b", "--strategy", "loss_prediction")
    assert exit_info.value.code == 130 and "run the same command again" in capsys.readouterr().err
    restore()
    resumed = _run(dataset, tmp_path / "b", "--strategy", "loss_prediction")
    assert "resuming" in capsys.readouterr().out
    np.testing.assert_array_equal(PoolState.load(resumed / "pool.npz").labeled_at, expected)
    assert read_metrics_csv(resumed / "metrics.csv")[1]["mAP"] == pytest.approx(expected_rows[1]["mAP"], abs=1e-6)


def test_rank_mode_scores_a_folder_of_new_images(dataset, tmp_path):
    new = tmp_path / "new" / "batch1"
    new.mkdir(parents=True)
    for index, path in enumerate(sorted((dataset / "VOC2007" / "JPEGImages").glob("*.jpg"))[:5]):
        Image.open(path).save(new / f"new_{index}.jpg")
    run_dir = main(["--dataset_root", str(dataset), "--train-sets", "2007:trainval", "--width", "0.0625", "--from-scratch",
                    "--epochs", "1", "--batch-size", "4", "--no-progress", "--device", "cpu", "--strategy", "entropy",
                    "--images-per-cycle", "3", "--unlabeled-dir", str(tmp_path / "new"),
                    "--output-dir", str(tmp_path / "runs"), "--output_superannotate_csv_file", str(tmp_path / "up.csv")])
    names = [name for name, _ in read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")]
    assert len(names) == 3 and all(name.startswith("batch1/new_") for name in names)
    assert (tmp_path / "up.csv").read_text() == (run_dir / "priorities" / "cycle_00.csv").read_text()


def _damage(root, case):
    annotations = root / "VOC2007" / "Annotations"
    path = annotations / "000003.xml"
    text = path.read_text()
    if case == "outside":
        start = text.index("<xmax>") + len("<xmax>")
        path.write_text(text[:start] + "999" + text[text.index("</xmax>"):])
    elif case == "reversed":
        start = text.index("<xmax>") + len("<xmax>")
        path.write_text(text[:start] + "1" + text[text.index("</xmax>"):])
    elif case == "unknown class":
        start = text.index("<name>") + len("<name>")
        path.write_text(text[:start] + "giraffe" + text[text.index("</name>"):])
    elif case == "missing image":
        path = root / "VOC2007" / "JPEGImages" / "000003.jpg"
        path.unlink()
    elif case == "does not parse":
        path.write_text(text[:40])
    elif case == "corrupt image":
        path = root / "VOC2007" / "JPEGImages" / "000003.jpg"
        path.write_bytes(b"not a jpeg")
    return path


@pytest.mark.parametrize("case, message", [
    ("outside", "leaves the 80x64 image"), ("reversed", "xmax < xmin"), ("unknown class", "'giraffe'"),
    ("missing image", "image missing"), ("does not parse", "cannot parse annotation"),
    ("corrupt image", "cannot read image"),
])
def test_bad_input_stops_with_one_message_and_keeps_the_run(dataset, tmp_path, capsys, case, message):
    copy = tmp_path / "voc"
    shutil.copytree(dataset, copy)
    run_dir = _run(copy, tmp_path, "--cycles", "1")
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    path = _damage(copy, case)
    with pytest.raises(SystemExit) as exit_info:
        _run(copy, tmp_path, "--cycles", "2")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and path.name in err and "Traceback" not in err
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_an_image_without_objects_is_skipped_with_a_warning(dataset, tmp_path, capsys):
    copy = tmp_path / "voc"
    shutil.copytree(dataset, copy)
    path = copy / "VOC2007" / "Annotations" / "000002.xml"
    text = path.read_text()
    path.write_text(text[:text.index("<object>")] + "</annotation>\n")
    run_dir = _run(copy, tmp_path, "--cycles", "1")
    assert "warning: VOC2007 trainval: 1 image(s) with no object left out (000002)" in capsys.readouterr().err
    assert "000002.jpg" not in (run_dir / "priorities" / "cycle_00.csv").read_text()


def test_bad_flags(dataset, tmp_path, capsys):
    for flags, message in ((["--strategy", "bald", "--dropout", "0"], "--dropout > 0"),
                           (["--images-per-cycle", "50"], "larger than the unlabeled pool"),
                           (["--width", "2"], "--width must be in (0, 1]"),
                           (["--milestones", "a,b"], "--milestones"),
                           (["--strategy", "badge"], "'badge' reads distributions per image, but this "
                                                     "task's outputs are distributions per box"),
                           (["--clip-grad-norm", "0"], "--clip-grad-norm must be > 0")):
        with pytest.raises(SystemExit) as exit_info:
            _run(dataset, tmp_path, *flags)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_truncated_image_stops_the_run_before_anything_is_written(dataset, tmp_path, capsys, split):
    from interrupts import check_a_truncated_image_stops_the_run

    folder = "VOC2007/JPEGImages" if split == "train" else "VOC2007/JPEGImages"
    check_a_truncated_image_stops_the_run(_run, dataset, tmp_path, folder, "*.jpg",
                                          first=split == "train", capsys=capsys)


def test_the_reference_never_detaches_the_loss_modules_features():

    # the original's train.py never detaches: the detach epoch is past the last epoch
    from active_learning.strategies.loss_prediction import detach_epoch

    def detached_from(*argv):
        config = run_setup.loop_config(parse_args(["--strategy", "loss_prediction", *argv]), "cpu")
        return detach_epoch(config.options, config.epochs)

    config = run_setup.loop_config(parse_args(["--use_active_learning=True"]), "cpu")
    assert config.epochs == 300 and detach_epoch(config.options, config.epochs) >= 300
    # the CPU preset keeps the 60% of its measured benchmark runs; an explicit flag wins
    assert detached_from("--preset", "synthetic-cpu") == 12
    assert detached_from("--detach-epoch", "5") == 5


def test_a_cycle_trains_evaluates_and_scores_under_bf16(dataset, tmp_path):
    import csv
    import math

    run_dir = _run(dataset, tmp_path, "--strategy", "loss_prediction", "--amp", "bf16")
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert rows and all(math.isfinite(float(row["train_loss"])) for row in rows)
    assert (run_dir / "priorities" / "cycle_00.csv").is_file()


def test_a_mix_of_entropy_and_weighted_coreset_runs_end_to_end(dataset, tmp_path):
    run_dir = _run(dataset, tmp_path, "--strategy", "entropy", "--diversity", "coreset")
    assert run_dir.parent.name == "entropy+coreset"
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["n_labeled"] for row in rows] == [4, 6]
    assert len(read_entropies_csv(run_dir / "priorities" / "cycle_01.csv")) == 2
