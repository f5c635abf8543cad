"""human_pose_estimation/train.py and tools/train.py end to end on a tiny COCO keypoints dataset."""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from active_learning import PoolState, run_setup
from active_learning.files.export import read_entropies_csv, read_metrics_csv
from active_learning.strategies.loss_prediction import detach_epoch
from human_pose_estimation.train import main, parse_args
from interrupts import interrupt_on_call
from pose_fixtures import TINY_ARGS, read_json, write_json, write_tiny_coco
from task_contract import *  # noqa: F403  the end-to-end contract, run on this task

TASK = "human_pose_estimation"
# one strategy of each kind of request the task accepts (task_contract.request_kind): every
# strategy runs end to end on classification
STRATEGIES = ["random", "loss_prediction", "heatmap_uncertainty", "mc_variance", "coreset",
              "mb_clustering"]

TASK_DIR = Path(__file__).resolve().parents[2] / "human_pose_estimation"
CONFIG = "experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml"
ORIGINAL_COMMANDS = {  # the original README's pose commands, as written (from human_pose_estimation/)
    f"python3 tools/train.py --cfg {CONFIG}": "random",
    f"python3 tools/train.py --cfg {CONFIG} --use_active_learning=True": "loss_prediction",
}


def _load_tools():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pose_tools_train", TASK_DIR / "tools" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("command, strategy", ORIGINAL_COMMANDS.items())
def test_the_original_commands_read_the_reference_yaml(command, strategy, monkeypatch):
    monkeypatch.chdir(TASK_DIR)
    argv, _ = _load_tools().build_argv(shlex.split(command)[2:])
    args = parse_args(argv)
    assert args.strategy == strategy
    assert args.weights_backbone == "hrnet_w32-36af842e.pth"     # MODEL.PRETRAINED, from torch.hub's cache
    assert (args.cycles, args.initial_size, args.images_per_cycle, args.subset) == (10, 5000, 5000, 25000)
    assert (args.arch, args.image_size, args.sigma) == ("hrnet_w32", "192,256", 2.0)
    assert (args.optimizer, args.lr, args.weight_decay, args.batch_size, args.eval_batch_size) == \
        ("adam", 1e-3, 0.0, 32, 32)
    assert (args.epochs, args.milestones, args.gamma) == (210, [170, 200], 0.1)
    # Learning Loss's options (set for any strategy, read by loss_prediction's)
    assert (args.lamda, detach_epoch(vars(args), args.epochs)) == (1e-4, 157)   # lambda 1e-4, detached at 75%
    assert (args.oks_threshold, args.in_vis_threshold) == (0.9, 0.2)     # TEST.OKS_THRE, IN_VIS_THRE
    assert (args.flip, args.flip_test, args.scale_factor, args.rotation_factor, args.half_body_probability) == \
        (True, True, 0.35, 45.0, 0.3)
    assert (args.dataset_root, args.train_set, args.test_set, args.output_dir) == \
        ("data/coco/", "train2017", "val2017", "output")


def test_the_loss_module_reads_detached_features_as_the_original_from_75_percent():
    """The original (its lib/core/function.py) detaches the loss module's features from epoch 75
    of its END_EPOCH 100 on: 75% of the epochs, which this task's protocol keeps at any length."""
    for epochs, detach in ((100, 75), (210, 157), (25, 18)):
        args = parse_args(["--epochs", str(epochs), "--strategy", "loss_prediction"])
        assert detach_epoch(run_setup.loop_config(args, "cpu").options, epochs) == detach
    args = parse_args(["--epochs", "100", "--detach-epoch", "40", "--strategy", "loss_prediction"])
    assert detach_epoch(run_setup.loop_config(args, "cpu").options, 100) == 40


def test_config_overrides_and_forwarded_flags(monkeypatch):
    monkeypatch.chdir(TASK_DIR)
    tools = _load_tools()
    argv, _ = tools.build_argv(["--cfg", CONFIG, "--dataDir", "/data", "--modelDir", "out",
                                "TRAIN.END_EPOCH", "20", "TRAIN.LR_STEP", "[10, 15]", "--cycles", "3",
                                "TRAIN.OPTIMIZER", "sgd", "--seed", "4"])
    args = parse_args(argv)
    assert (args.dataset_root, args.output_dir, args.epochs, args.milestones) == ("/data/data/coco/", "out", 20, [10, 15])
    assert (args.cycles, args.seed, args.optimizer, args.weight_decay) == (3, 4, "sgd", 1e-4)
    from human_pose_estimation.config import ConfigError, apply_overrides, load_config

    with pytest.raises(ConfigError, match="unknown configuration key TRAIN.NOPE"):
        apply_overrides(load_config(CONFIG), ["TRAIN.NOPE", "1"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        apply_overrides(load_config(CONFIG), ["TRAIN.LR"])


def test_the_commands_explain_missing_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--from-scratch"])
    assert exit_info.value.code == 2 and "dataset folder not found: data/coco" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_coco(tmp_path_factory.mktemp("data") / "coco")


def _run(dataset, tmp_path, *extra):
    return main(["--dataset-root", str(dataset), *TINY_ARGS, "--output-dir", str(tmp_path / "runs"), *extra])


def test_n_persons_counts_the_persons_of_the_labeled_images(dataset, tmp_path):
    from human_pose_estimation.coco import read_split

    run_dir = _run(dataset, tmp_path, "--cycles", "1")
    pool = read_split(dataset, "train2017")
    labeled = PoolState.load(run_dir / "pool.npz").added_in(0)     # what cycle 0 trained on
    expected = sum(1 for person in pool.persons if person.image in set(labeled.tolist()))
    assert read_metrics_csv(run_dir / "metrics.csv")[0]["n_persons"] == expected


def test_an_interrupted_run_resumes_to_the_same_labeled_set(dataset, tmp_path, monkeypatch, capsys, tiny_run):
    from human_pose_estimation.task import PoseTask

    straight = tiny_run("--strategy", "loss_prediction")     # the end-to-end test's run
    expected = PoolState.load(straight / "pool.npz").labeled_at
    expected_rows = read_metrics_csv(straight / "metrics.csv")
    restore = interrupt_on_call(monkeypatch, PoseTask, "evaluate", call=2)
    with pytest.raises(SystemExit) as exit_info:
        _run(dataset, tmp_path / "b", "--strategy", "loss_prediction")
    assert exit_info.value.code == 130 and "run the same command again" in capsys.readouterr().err
    restore()
    resumed = _run(dataset, tmp_path / "b", "--strategy", "loss_prediction")
    assert "resuming" in capsys.readouterr().out
    np.testing.assert_array_equal(PoolState.load(resumed / "pool.npz").labeled_at, expected)
    assert read_metrics_csv(resumed / "metrics.csv")[1]["AP"] == pytest.approx(expected_rows[1]["AP"], abs=1e-6)


def test_tools_train_runs_the_original_command_on_a_dataset(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(TASK_DIR)
    run_dir = _load_tools().main(["--cfg", CONFIG, "--use_active_learning=True", "--dataDir", str(dataset.parent),
                                  "--modelDir", str(tmp_path / "out"), "--logDir", str(tmp_path / "log"),
                                  "DATASET.ROOT", dataset.name, "TRAIN.END_EPOCH", "1", "WORKERS", "0",
                                  "--output_superannotate_csv_file", str(tmp_path / "up.csv"), *TINY_ARGS[:4],
                                  "--cycles", "1", "--initial-size", "4", "--images-per-cycle", "2",
                                  "--no-progress", "--device", "cpu", "--threads", "1", "--from-scratch"])
    assert run_dir.parts[-2:] == ("loss_prediction", "seed0") and str(tmp_path / "out") in str(run_dir)
    assert (tmp_path / "log" / "w32_256x192_adam_lr1e-3" / "metrics.csv").is_file()
    assert (tmp_path / "up.csv").read_text() == (run_dir / "priorities" / "cycle_00.csv").read_text()


def test_rank_mode_needs_person_boxes_and_ranks_images(dataset, tmp_path, capsys):
    new = tmp_path / "new"
    new.mkdir()
    sources = sorted((dataset / "images" / "val2017").glob("*.jpg"))
    for source in sources:
        shutil.copy(source, new / source.name)
    val = read_json(dataset / "annotations" / "person_keypoints_val2017.json")
    detections = [{"image_id": note["image_id"], "category_id": 1, "bbox": note["bbox"], "score": 0.9}
                  for note in val["annotations"]]
    write_json(tmp_path / "boxes.json", detections)
    common = ["--dataset-root", str(dataset), *TINY_ARGS[:8], "--no-progress", "--device", "cpu", "--from-scratch",
              "--unlabeled-dir", str(new), "--output-dir", str(tmp_path / "runs"), "--images-per-cycle", "3"]
    with pytest.raises(SystemExit) as exit_info:
        main(common)
    assert exit_info.value.code == 2 and "--unlabeled-dir needs --person-boxes" in capsys.readouterr().err
    run_dir = main([*common, "--person-boxes", str(tmp_path / "boxes.json"), "--strategy", "heatmap_uncertainty"])
    table = read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")
    assert len(table) == 3 and {name for name, _ in table} <= {source.name for source in sources}
    scores = [score for _, score in table]
    assert scores == sorted(scores, reverse=True)


def _damage(root: Path, case: str) -> str:
    path = root / "annotations" / "person_keypoints_train2017.json"
    document = read_json(path)
    note = document["annotations"][0]
    if case == "no keypoints":
        del note["keypoints"]
    elif case == "wrong length":
        note["keypoints"] = note["keypoints"][:-3]
    elif case == "missing image":
        image = next(image for image in document["images"] if image["id"] == note["image_id"])
        (root / "images" / "train2017" / image["file_name"]).unlink()
        return image["file_name"]
    elif case == "unreadable image":
        image = next(image for image in document["images"] if image["id"] == note["image_id"])
        (root / "images" / "train2017" / image["file_name"]).write_bytes(b"not a jpeg")
        return image["file_name"]
    elif case == "not json":
        path.write_text("{")
        return path.name
    write_json(path, document)
    return f"annotation {note['id']}"


@pytest.mark.parametrize("case, message", [
    ("no keypoints", "has no 'keypoints'"), ("wrong length", "has 48 keypoint values, expected 51"),
    ("missing image", "image missing"), ("unreadable image", "cannot read image"), ("not json", "is not a JSON"),
])
def test_bad_input_stops_with_one_message_and_keeps_the_run(dataset, tmp_path, capsys, case, message):
    copy = tmp_path / "coco"
    shutil.copytree(dataset, copy)
    run_dir = _run(copy, tmp_path, "--cycles", "1")
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    named = _damage(copy, case)
    with pytest.raises(SystemExit) as exit_info:
        _run(copy, tmp_path, "--cycles", "2")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and named in err and "Traceback" not in err
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_crowds_zero_areas_and_boxes_outside_the_image_are_skipped_with_a_warning(dataset, tmp_path, capsys):
    copy = tmp_path / "coco"
    shutil.copytree(dataset, copy)
    path = copy / "annotations" / "person_keypoints_train2017.json"
    document = read_json(path)
    document["annotations"][0]["bbox"][0] = 10_000       # right of the image
    document["annotations"][1]["iscrowd"] = 1
    document["annotations"][2]["area"] = 0
    write_json(path, document)
    _run(copy, tmp_path, "--cycles", "1")
    err = capsys.readouterr().err
    assert "skipped 1 person(s) (crowd), 1 person(s) (zero area), 1 person(s) (box outside the image)" in err


def test_bad_flags(dataset, tmp_path, capsys):
    for flags, message in ((["--strategy", "mc_variance", "--dropout", "0"], "--dropout > 0"),
                           (["--images-per-cycle", "50"], "larger than the unlabeled pool"),
                           (["--image-size", "100,128"], "multiples of 32"),
                           (["--strategy", "entropy"], "reads class distributions, but this task's outputs are heatmaps"),
                           (["--strategy", "badge"], "reads distributions per image, but this task's outputs are heatmaps"),
                           (["--strategy", "random_superpixels"], "this task selects whole images"),
                           (["--person-boxes", "x.json"], "--person-boxes needs --unlabeled-dir")):
        with pytest.raises(SystemExit) as exit_info:
            _run(dataset, tmp_path, *flags)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_images_score_is_the_max_of_its_persons_heatmap_uncertainty(dataset, tmp_path):
    """The CSV value of each chosen image, recomputed from the cycle's saved model: the maximum
    over the image's persons of 1 - mean joint peak (the default --unit-reduction max)."""
    import torch

    from active_learning.strategies.uncertainty import heatmap_uncertainty
    from human_pose_estimation.build import build

    argv = ["--dataset-root", str(dataset), *TINY_ARGS, "--output-dir", str(tmp_path / "runs"),
            "--strategy", "heatmap_uncertainty", "--cycles", "1", "--images-per-cycle", "3", "--save-checkpoints"]
    run_dir = main(argv)
    task = build(parse_args(argv)).adapter
    model = task.build_model()
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "cycle_00.pt", weights_only=False)["model"])
    model.eval()
    names = {image.name: index for index, image in enumerate(task.pool.images)}
    table = read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")
    for name, value in table:
        persons = task.selection_units().samples_of(np.array([names[name]]))
        crops = torch.stack([task.pool_set[int(p)][0] for p in persons])
        with torch.no_grad():
            scores = heatmap_uncertainty(model(crops))
        assert value == pytest.approx(scores.max().item(), abs=2e-5)


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_truncated_image_stops_the_run_before_anything_is_written(dataset, tmp_path, capsys, split):
    from interrupts import check_a_truncated_image_stops_the_run

    folder = "images/train2017" if split == "train" else "images/val2017"
    check_a_truncated_image_stops_the_run(_run, dataset, tmp_path, folder, "*.jpg",
                                          first=split == "train", capsys=capsys)


def test_the_selection_picture_says_when_it_draws_no_skeleton(dataset, tmp_path, monkeypatch):
    from active_learning.drawing import figures
    from human_pose_estimation import overlay
    from human_pose_estimation.build import build

    task = build(parse_args(["--dataset-root", str(dataset), *TINY_ARGS, "--output-dir", str(tmp_path)])).adapter
    model = task.build_model()
    titles = []
    monkeypatch.setattr(figures, "save_figure", lambda figure, path: titles.extend(
        axis.get_title() for axis in figure.axes if axis.get_title()))
    confident = np.full(17, 0.9)
    for maxima, expected in ((np.zeros(17), "no predicted joint above confidence 0.2"),
                             (confident, "predicted skeletons")):
        monkeypatch.setattr(task, "predict_persons", lambda model_, persons, m=maxima: (
            np.zeros((len(persons), 17, 2)), np.tile(m, (len(persons), 1))))
        titles.clear()
        overlay.draw_selection(task, np.array([0, 1]), np.array([0.5, 0.25]), tmp_path / "p.png", model=model)
        assert titles and all(expected in title for title in titles)


def test_a_cycle_trains_evaluates_and_scores_under_bf16(dataset, tmp_path):
    import csv
    import math

    run_dir = _run(dataset, tmp_path, "--strategy", "loss_prediction", "--amp", "bf16")
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert rows and all(math.isfinite(float(row["train_loss"])) for row in rows)
    assert (run_dir / "priorities" / "cycle_00.csv").is_file()


def test_a_config_without_init_weights_that_names_a_model_file_parses():
    from human_pose_estimation.config import config_to_argv
    from human_pose_estimation.train import parse_args

    config = {"MODEL": {"INIT_WEIGHTS": False, "PRETRAINED": "models/imagenet/hrnet_w32-36af842e.pth"},
              "TEST": {"MODEL_FILE": "trained.pth"}}
    args = parse_args(config_to_argv(config))
    assert args.weights == "trained.pth" and args.weights_backbone is None


def test_a_mix_of_heatmap_uncertainty_knearest_and_a_passive_share_runs_end_to_end(dataset,
                                                                                  tmp_path):
    run_dir = _run(dataset, tmp_path, "--strategy", "heatmap_uncertainty", "--diversity",
                   "knearest", "--random-fraction", "0.5")
    assert run_dir.parent.name == "heatmap_uncertainty+knearest+random0.5"
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["n_labeled"] for row in rows] == [4, 6]          # images, as every pose run
    assert len(read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")) == 2
