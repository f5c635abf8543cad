"""Rank mode of classification/train.py: a user's labeled image folder plus a folder to rank."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from active_learning import PoolState
from active_learning.errors import ConfigError, DataError
from classification.datasets import CorruptImageWarning
from classification.folders import load_unlabeled_folder
from classification.train import main, parse_args


def _save(path, color, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(rng.normal(color, 20, (10, 10, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def _write_labeled(root, rng, per_class=6):
    for split, count in (("train", per_class), ("test", 2)):
        for label, color in (("cats", 40), ("dogs", 200)):
            for index in range(count):
                _save(root / split / label / f"{label}_{split}_{index}.png", color, rng)


def _write_unlabeled(root, rng):
    """9 readable images (3 at the top, 4 in batch2/, 2 in batch2/deeper/) and one corrupt file."""
    paths = [root / f"top_{i}.png" for i in range(3)] + [root / "batch2" / f"b2_{i}.jpg" for i in range(4)]
    paths += [root / "batch2" / "deeper" / f"deep_{i}.png" for i in range(2)]
    for i, path in enumerate(paths):
        _save(path, 40 if i % 2 else 200, rng)
    (root / "batch2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (root / "notes.txt").write_text("not an image")  # ignored: not an image extension
    return paths


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    _write_labeled(tmp_path / "pets", rng)
    paths = _write_unlabeled(tmp_path / "new", rng)
    return tmp_path, paths


def _args(tmp_path, *extra):
    return ["--dataset", "image_folder", "--data-dir", str(tmp_path / "pets"), "--unlabeled-dir",
            str(tmp_path / "new"), "--image-size", "8", "--width", "2", "--epochs", "1",
            "--batch-size", "4", "--mc-samples", "2", "--no-progress", "--device", "cpu",
            "--output-dir", str(tmp_path / "runs"), *extra]


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _check_csv(path, expected_rows, allowed_names):
    table = _read_csv(path)
    assert table[0] == ["name", "entropy_value"]
    body = table[1:]
    assert len(body) == expected_rows
    names = [name for name, _ in body]
    assert len(set(names)) == len(names) and set(names) <= set(allowed_names)
    values = [float(value) for _, value in body]
    assert values == sorted(values, reverse=True)
    assert all(0 <= value <= 1e6 and len(text.split(".")[1]) == 5 for value, (_, text) in zip(values, body))
    return names


@pytest.mark.parametrize("strategy", ["entropy", "loss_prediction"])
def test_rank_writes_the_top_k_unlabeled_images(folders, strategy, capsys):
    tmp_path, paths = folders
    with pytest.warns(CorruptImageWarning, match="broken.png"):
        run_dir = main(_args(tmp_path, "--strategy", strategy, "--images-per-cycle", "5"))
    assert run_dir == tmp_path / "runs" / "classification" / "image_folder_rank" / strategy / "seed0"
    csv_path = run_dir / "priorities" / "cycle_00.csv"
    names = _check_csv(csv_path, 5, [path.name for path in paths])
    assert str(csv_path) in capsys.readouterr().out

    state = PoolState.load(run_dir / "pool.npz")
    assert len(state) == 12 + 9 and state.finished_cycles == 1
    np.testing.assert_array_equal(state.labeled_up_to(0), np.arange(12))  # all of train/, only it
    assert (state.added_in(1) >= 12).all() and len(state.added_in(1)) == 5
    assert not (run_dir / "priorities" / "cycle_01.csv").exists()
    record = json.loads((run_dir / "args.json").read_text())
    assert record["task"]["unlabeled_dir"] == str((tmp_path / "new").resolve())
    assert record["loop"]["initial_size"] == 12 and record["loop"]["cycles"] == 1
    assert "broken.png" not in names and "notes.txt" not in names


@pytest.mark.filterwarnings("ignore::classification.datasets.CorruptImageWarning")
def test_rank_refuses_a_budget_larger_than_the_folder_and_ranks_it_all_on_request(folders, capsys):
    tmp_path, paths = folders
    with pytest.raises(SystemExit) as exit_info:   # K = 1000 of 9 images, as a simulation would
        main(_args(tmp_path, "--strategy", "margin", "--csv-names", "relpath", "--images-per-cycle", "1000"))
    assert exit_info.value.code == 2
    assert "larger than the unlabeled pool (9 = " in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    run_dir = main(_args(tmp_path, "--strategy", "margin", "--csv-names", "relpath", "--budget", "all"))
    names = _check_csv(run_dir / "priorities" / "cycle_00.csv", 9,
                       [path.relative_to(tmp_path / "new").as_posix() for path in paths])
    assert "batch2/deeper/deep_0.png" in names

    # The user labels the first two, moves them into train/, and runs the same command again.
    for name in names[:2]:
        (tmp_path / "new" / name).rename(tmp_path / "pets" / "train" / "cats" / name.replace("/", "_"))
    assert main(_args(tmp_path, "--strategy", "margin", "--csv-names", "relpath")) == run_dir   # all by default
    assert "replacing the previous ranking" in capsys.readouterr().out
    again = _check_csv(run_dir / "priorities" / "cycle_00.csv", 7, names[2:])
    assert sorted(again) == sorted(names[2:])
    assert len(PoolState.load(run_dir / "pool.npz").labeled_up_to(0)) == 14


def test_an_interrupted_new_ranking_keeps_the_previous_one(folders, monkeypatch, capsys):
    from classification.task import ClassificationTask

    tmp_path, _ = folders
    with pytest.warns(CorruptImageWarning, match="broken.png"):
        run_dir = main(_args(tmp_path, "--strategy", "entropy", "--images-per-cycle", "4"))
    before = {name: (run_dir / name).read_bytes()
              for name in ("pool.npz", "metrics.csv", "priorities/cycle_00.csv")}

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ClassificationTask, "evaluate", interrupted)
    with pytest.warns(CorruptImageWarning, match="broken.png"), pytest.raises(SystemExit) as exit_info:
        main(_args(tmp_path, "--strategy", "entropy", "--images-per-cycle", "4"))
    assert exit_info.value.code == 130
    assert "interrupted: the previous ranking, if any, is kept" in capsys.readouterr().err
    assert {name: (run_dir / name).read_bytes() for name in before} == before


def test_unlabeled_loader_reads_nested_folders_and_names_them(folders):
    tmp_path, paths = folders
    with pytest.warns(CorruptImageWarning, match="broken.png"):
        dataset, names = load_unlabeled_folder(tmp_path / "new", image_size=8, csv_names="relpath")
    assert names == sorted(path.relative_to(tmp_path / "new").as_posix() for path in paths)
    image, target = dataset[0]
    assert image.shape == (3, 8, 8) and target == -1


def test_unlabeled_folder_errors(tmp_path):
    rng = np.random.default_rng(1)
    with pytest.raises(DataError, match="missing"):
        load_unlabeled_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_unlabeled_folder(tmp_path / "empty")
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.png").write_bytes(b"garbage")
    with pytest.warns(CorruptImageWarning), pytest.raises(DataError, match="no readable image"):
        load_unlabeled_folder(tmp_path / "bad")
    _save(tmp_path / "twice" / "a" / "same.png", 10, rng)
    _save(tmp_path / "twice" / "b" / "same.png", 10, rng)
    with pytest.raises(DataError, match="--csv-names relpath"):
        load_unlabeled_folder(tmp_path / "twice")
    assert len(load_unlabeled_folder(tmp_path / "twice", csv_names="relpath")[1]) == 2


@pytest.mark.parametrize("extra, message", [
    (["--cycles", "2"], "label the selected images, move them into train/<class>/, and run again"),
    (["--initial-size", "4"], "--initial-size does not apply"),
    # a mix chooses a batch: ranking everything would silently be the plain strategy's order
    (["--strategy", "entropy", "--diversity", "coreset"], "--diversity and --random-fraction"),
    (["--strategy", "entropy", "--random-fraction", "0.2"], "choose a batch"),
])
def test_rank_flag_errors(folders, extra, message, capsys):
    tmp_path, _ = folders
    with pytest.raises(SystemExit) as exit_info:
        main(_args(tmp_path, *extra))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_args(_args(tmp_path, *extra))


def test_unlabeled_dir_needs_image_folder():
    with pytest.raises(ConfigError, match="--unlabeled-dir needs --dataset image_folder"):
        parse_args(["--dataset", "digits", "--unlabeled-dir", "somewhere"])


def test_rank_defaults_score_everything_in_one_cycle(tmp_path):
    args = parse_args(["--dataset", "image_folder", "--unlabeled-dir", str(tmp_path)])
    assert (args.cycles, args.subset, args.initial_size) == (1, 0, None)
    assert parse_args(["--dataset", "image_folder", "--unlabeled-dir", str(tmp_path), "--cycles", "1",
                       "--subset", "50"]).subset == 50
    assert parse_args([]).subset == 10000 and parse_args([]).cycles == 10


@pytest.mark.parametrize("unlabeled, message", [
    ("nowhere", "unlabeled image folder missing"),
    ("pets/train", "also labeled training images"),
])
def test_bad_unlabeled_folder_fails_before_anything_is_written(folders, unlabeled, message, capsys):
    tmp_path, _ = folders
    argv = _args(tmp_path)
    argv[argv.index("--unlabeled-dir") + 1] = str(tmp_path / unlabeled)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_labeled_files_of_the_same_name_in_two_class_folders_are_fine(folders):
    """Labeled names never reach the CSV: only the unlabeled ones must be unique."""
    tmp_path, paths = folders
    rng = np.random.default_rng(3)
    _save(tmp_path / "pets" / "train" / "cats" / "img_001.png", 40, rng)
    _save(tmp_path / "pets" / "train" / "dogs" / "img_001.png", 200, rng)
    with pytest.warns(CorruptImageWarning, match="broken.png"):
        run_dir = main(_args(tmp_path, "--strategy", "entropy", "--images-per-cycle", "9"))
    names = _check_csv(run_dir / "priorities" / "cycle_00.csv", 9, [path.name for path in paths])
    assert "img_001.png" not in names
