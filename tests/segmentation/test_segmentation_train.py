"""segmentation/train.py end to end on a tiny Cityscapes-format dataset the tests write."""
from __future__ import annotations

import csv
import re
import shlex

import numpy as np
import pytest
from PIL import Image

from active_learning import PoolState
from active_learning.files.export import read_entropies_csv, read_metrics_csv
from interrupts import interrupt_on_call
from seg_fixtures import TINY_ARGS, write_tiny_cityscapes
from segmentation.train import main, parse_args
from task_contract import *  # noqa: F403  the end-to-end contract, run on this task

TASK = "segmentation"
# one strategy of each kind of request the task accepts (task_contract.request_kind): every
# strategy runs end to end on classification
STRATEGIES = ["random", "loss_prediction", "entropy", "mc_entropy", "mc_variance", "variation_ratio", "bald", "coreset",
              "mb_outliers_glosh", "mb_outliers_mean_least_confidence", "active_transfer_learning",
              "hidden_uncertainty"]

ORIGINAL_COMMANDS = [  # the original README's segmentation commands, as written
    "train -d datasets/cityscapes -c 19 -s 896 --arch drn_d_22 --batch-size 4 --epochs 250 --lr 0.01 "
    "--momentum 0.9 --step 100",
    "train -d datasets/cityscapes -c 19 -s 896 --arch drn_d_22 --batch-size 4 --epochs 250 --lr 0.01 "
    "--momentum 0.9 --step 100 --use-loss-prediction-al=True --lamda=0.01",
    "train -d datasets/cityscapes -c 19 -s 896 --arch drn_d_22 --batch-size 4 --epochs 250 --lr 0.01 "
    "--momentum 0.9 --step 100 --mc-dropout=True --choose-images-with-highest-uncertainty=True",
    "train -d datasets/cityscapes -c 19 -s 896 --arch drn_d_22 --batch-size 4 --epochs 250 --lr 0.01 "
    "--momentum 0.9 --step 100 --mc-dropout=True --choose-images-with-highest-uncertainty=True "
    "--use-variance-as-uncertainty=True",
    "train -d datasets/cityscapes -c 19 -s 896 --arch drn_d_22 --batch-size 4 --epochs 250 --lr 0.01 "
    "--momentum 0.9 --step 100 --mc-dropout=True --entropy-superpixels=True",
    "train -d datasets/cityscapes -c 19 -s 896 --arch drn_d_22 --batch-size 4 --epochs 250 --lr 0.01 "
    "--momentum 0.9 --step 100 --mc-dropout=True --entropy-superpixels=True --use-variance-as-uncertainty=True",
]


@pytest.mark.parametrize("command, strategy", list(zip(ORIGINAL_COMMANDS, [
    "random", "loss_prediction", "mc_entropy", "mc_variance", "mc_entropy_superpixels",
    "mc_variance_superpixels"])))
def test_the_original_commands_parse(command, strategy):
    args = parse_args(shlex.split(command))
    assert args.strategy == strategy
    assert (args.data_dir, args.classes, args.crop_size, args.arch) == ("datasets/cityscapes", 19, 896, "drn_d_22")
    assert (args.batch_size, args.epochs, args.lr, args.momentum, args.step) == (4, 250, 0.01, 0.9, 100)
    assert args.lamda == 0.01 and args.mc_samples == 10 and args.images_per_cycle == 150
    assert args.superpixels == strategy.endswith("_superpixels")


def test_other_original_flags():
    assert parse_args(["--random-superpixels=True"]).strategy == "random_superpixels"
    assert parse_args(["--choose_images_with_highest_loss"]).strategy == "loss_prediction"
    assert parse_args(["-j", "3", "--superpixels-per-image", "50"]).workers == 3
    with pytest.raises(SystemExit):
        parse_args(["--mc-dropout", "--random-superpixels"])  # random samples no dropout


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_cityscapes(tmp_path_factory.mktemp("data") / "cs")


def _run(dataset, tmp_path, *extra):
    # --weights replaces the whole model, the default backbone start with it; --from-scratch
    # next to it would be refused
    tiny = [arg for arg in TINY_ARGS if not (arg == "--from-scratch" and "--weights" in extra)]
    return main(["-d", str(dataset), *tiny, "--output-dir", str(tmp_path / "runs"), *extra])


@pytest.mark.parametrize("strategy", ["random_superpixels", "mc_entropy_superpixels",
                                      "mc_variance_superpixels", "bald_superpixels"])
def test_superpixel_modes_end_to_end(dataset, tmp_path, strategy):
    # superpixel runs draw no map (nothing to embed per region): the page says why, at no cost
    run_dir = _run(dataset, tmp_path, "--strategy", strategy, "--no-report-map", "false")
    rows = read_metrics_csv(run_dir / "metrics.csv")
    state = PoolState.load(run_dir / "pool.npz")
    initial = rows[0]["n_labeled"]
    assert rows[0]["n_images"] == 4 and rows[1]["n_labeled"] == initial + 6
    assert rows[1]["labeled_pixel_fraction"] >= rows[1]["superpixel_pixel_fraction"] - 1e-9
    assert rows[1]["labeled_pixel_fraction"] > rows[0]["labeled_pixel_fraction"]
    chosen = []
    for cycle in range(2):
        with open(run_dir / "regions" / f"cycle_{cycle:02d}.csv", newline="") as handle:
            table = list(csv.reader(handle))
        assert table[0] == ["name", "region_id", "score"] and len(table) == 7
        chosen += [(name, int(region)) for name, region, _ in table[1:]]
        assert (run_dir / "selections" / f"cycle_{cycle:02d}.png").stat().st_size > 0
    assert len(set(chosen)) == len(chosen)                     # never the same superpixel twice
    assert len(state.labeled_indices) == initial + 12
    maps = list((run_dir / "regions" / "maps").rglob("*.png"))
    assert {path.name for path in maps} >= {name.replace(".png", ".png") for name, _ in chosen}
    # a superpixel has no embedding of its own: no map, and the page says why
    assert not (run_dir / "embeddings").exists()
    assert "Left out: region units have no per-region embedding" in \
        (run_dir / "report" / "index.html").read_text()


@pytest.mark.parametrize("strategy, extra", [
    ("cb_ratio_superpixels", ()),
    ("ripu_superpixels", ("--region-label", "dominant")),
    ("class_balanced_random_superpixels", ("--max-regions-per-image", "1")),
])
def test_the_region_context_strategies_end_to_end(dataset, tmp_path, strategy, extra):
    run_dir = _run(dataset, tmp_path, "--strategy", strategy, *extra)
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert rows[1]["n_labeled"] == rows[0]["n_labeled"] + 6
    assert rows[0]["n_clicks"] > 0 and rows[1]["n_pixels"] > rows[0]["n_pixels"]
    if "dominant" in extra:        # six superpixels, one click each
        assert rows[1]["n_clicks"] == rows[0]["n_clicks"] + 6
    with open(run_dir / "regions" / "cycle_00.csv", newline="") as handle:
        names = [name for name, _, _ in list(csv.reader(handle))[1:]]
    assert len(names) == 6
    if "--max-regions-per-image" in extra:    # at most one superpixel of each image
        assert len(set(names)) == 6


def test_an_interrupted_superpixel_run_resumes_to_the_same_labeled_set(dataset, tmp_path, monkeypatch, capsys):
    from segmentation.task import SegmentationTask

    straight = _run(dataset, tmp_path / "a", "--strategy", "mc_entropy_superpixels")
    expected = PoolState.load(straight / "pool.npz").labeled_at
    restore = interrupt_on_call(monkeypatch, SegmentationTask, "evaluate", call=2)
    with pytest.raises(SystemExit) as exit_info:
        _run(dataset, tmp_path / "b", "--strategy", "mc_entropy_superpixels")
    assert exit_info.value.code == 130 and "run the same command again" in capsys.readouterr().err
    restore()
    resumed = _run(dataset, tmp_path / "b", "--strategy", "mc_entropy_superpixels")
    assert "resuming" in capsys.readouterr().out
    np.testing.assert_array_equal(PoolState.load(resumed / "pool.npz").labeled_at, expected)
    # the paid cost is a function of labeled_at (pool.npz), not of what a process saw before
    costs = [[(row["n_clicks"], row["n_pixels"]) for row in read_metrics_csv(run / "metrics.csv")]
             for run in (straight, resumed)]
    assert costs[0] == costs[1] and len(costs[0]) >= 2
    assert all(later[0] >= earlier[0] for earlier, later in zip(costs[0], costs[0][1:]))


def test_rank_mode_scores_a_folder_of_new_images(dataset, tmp_path):
    new = tmp_path / "new" / "street"
    new.mkdir(parents=True)
    for index, path in enumerate(sorted((dataset / "leftImg8bit" / "val").rglob("*.png"))):
        Image.open(path).save(new / f"new_{index}.png")
    args = ["-d", str(dataset), "train", "-s", "0", "--width", "0.125", "--epochs", "1", "--batch-size", "4",
            "--eval-batch-size", "4", "--superpixels-per-cycle", "6", "--superpixels-per-image", "12",
            "--mc-samples", "2", "--no-progress", "--device", "cpu", "--from-scratch",
            "--strategy", "mc_entropy_superpixels",
            "--unlabeled-dir", str(tmp_path / "new"), "--output-dir", str(tmp_path / "runs"),
            "--output_superannotate_csv_file", str(tmp_path / "upload.csv")]
    run_dir = main(args)
    names = [name for name, _ in read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")]
    assert names and all(name.startswith("street/new_") for name in names)
    assert (tmp_path / "upload.csv").read_text() == (run_dir / "priorities" / "cycle_00.csv").read_text()
    with open(run_dir / "regions" / "cycle_00.csv", newline="") as handle:
        assert len(list(csv.reader(handle))) == 7


@pytest.mark.parametrize("damage, message", [
    ("labels", "outside the Cityscapes table"),
    ("instances", "no instance map"),
    ("missing", "data folder missing"),
])
def test_bad_input_is_one_message_and_keeps_the_run(dataset, tmp_path, capsys, damage, message):
    import shutil

    copy = tmp_path / "cs"
    shutil.copytree(dataset, copy)
    run_dir = _run(copy, tmp_path, "--strategy", "mc_entropy_superpixels", "--cycles", "1")
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    if damage == "labels":
        path = sorted(copy.rglob("*_gtFine_labelIds.png"))[0]
        Image.fromarray(np.full((32, 64), 40, dtype=np.uint8)).save(path)
    elif damage == "instances":
        path = sorted(copy.rglob("*_gtFine_instanceIds.png"))[0]
        path.unlink()
    else:
        shutil.rmtree(copy)
        path = copy
    with pytest.raises(SystemExit) as exit_info:
        _run(copy, tmp_path, "--strategy", "mc_entropy_superpixels", "--cycles", "2")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and path.name in err
    assert "Traceback" not in err
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_image_and_superpixel_runs_start_from_the_same_images(dataset, tmp_path):
    images = _run(dataset, tmp_path, "--strategy", "random", "--cycles", "1")
    regions = _run(dataset, tmp_path, "--strategy", "random_superpixels", "--cycles", "1")
    first_images = read_metrics_csv(images / "metrics.csv")[0]
    first_regions = read_metrics_csv(regions / "metrics.csv")[0]
    assert first_regions["n_images"] == first_images["n_images"] == 4
    assert first_regions["labeled_pixel_fraction"] == pytest.approx(first_images["labeled_pixel_fraction"])
    assert first_regions["mIoU"] == pytest.approx(first_images["mIoU"])   # same labels, same seed


def test_a_superpixel_budget_larger_than_the_pool_names_its_own_flag(dataset, tmp_path, capsys):
    # 12 training images of 12 superpixels at most each; 4 initial images hold some of them
    with pytest.raises(SystemExit) as exit_info:
        _run(dataset, tmp_path, "--strategy", "mc_entropy_superpixels", "--superpixels-per-cycle", "100000")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: --superpixels-per-cycle 100000 is larger")
    pool, initial = (int(number) for number in re.search(r"\((\d+) = (\d+) superpixels - (\d+) initial\)",
                                                         err).groups()[1:])
    assert initial < pool and "--images-per-cycle" not in err
    assert not (tmp_path / "runs").exists()    # refused before anything is written there


def _copy_sample(root, source_stem: str, new_stem: str, delete: bool = False) -> None:
    """Add a training image (a copy of ``source_stem``'s files under ``new_stem``), or delete one."""
    import shutil

    for path in sorted(root.rglob(f"{source_stem}_*")):
        if "train" not in path.parts:
            continue
        if delete:
            path.unlink()
        else:
            shutil.copy(path, path.with_name(path.name.replace(source_stem, new_stem)))


def _train_stems(root) -> list[str]:
    return sorted(path.name.replace("_leftImg8bit.png", "") for path in (root / "leftImg8bit" / "train").rglob("*.png"))


def test_a_resume_on_a_changed_dataset_of_the_same_size_is_refused_naming_the_images(dataset, tmp_path, capsys):
    import shutil

    copy = tmp_path / "cs"
    shutil.copytree(dataset, copy)
    run_dir = _run(copy, tmp_path, "--strategy", "entropy")
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    stems = _train_stems(copy)
    _copy_sample(copy, stems[0], "zzz_000000_000001")          # one image added ...
    _copy_sample(copy, stems[-1], "", delete=True)             # ... another deleted: the same count
    with pytest.raises(SystemExit) as exit_info:
        _run(copy, tmp_path, "--strategy", "entropy", "--cycles", "3")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "made on another dataset: 1 gone" in err
    assert stems[-1] in err and "zzz_000000_000001" in err and "Traceback" not in err
    with pytest.raises(SystemExit):                            # images are gone: new images cannot help
        _run(copy, tmp_path, "--strategy", "entropy", "--cycles", "3", "--allow-new-images")
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_allow_new_images_keeps_the_labels_on_the_same_images(dataset, tmp_path, capsys):
    import shutil

    copy = tmp_path / "cs"
    shutil.copytree(dataset, copy)
    run_dir = _run(copy, tmp_path, "--strategy", "entropy")
    state = PoolState.load(run_dir / "pool.npz")
    labeled = {str(state.item_names[index]): int(state.labeled_at[index]) for index in state.labeled_indices}
    _copy_sample(copy, _train_stems(copy)[0], "aaa_000000_000001")   # sorts first: every index shifts
    with pytest.raises(SystemExit):
        _run(copy, tmp_path, "--strategy", "entropy", "--cycles", "3")
    assert "--allow-new-images" in capsys.readouterr().err
    _run(copy, tmp_path, "--strategy", "entropy", "--cycles", "3", "--allow-new-images")
    resumed = PoolState.load(run_dir / "pool.npz")
    assert resumed.finished_cycles == 3 and len(resumed) == len(state) + 1
    names = resumed.item_names.tolist()
    for name, cycle in labeled.items():                      # every old label on the same image
        assert resumed.labeled_at[names.index(name)] == cycle
    assert len(read_metrics_csv(run_dir / "metrics.csv")) == 3


def test_rank_mode_takes_a_folder_of_mixed_sizes_and_ranks_it_all(dataset, tmp_path, capsys):
    new = tmp_path / "new"
    new.mkdir()
    for index, path in enumerate(sorted((dataset / "leftImg8bit" / "val").rglob("*.png"))):
        image = Image.open(path)
        image.resize((image.width // (1 + index % 2), image.height // (1 + index % 2))).save(new / f"n{index}.png")
    args = ["-d", str(dataset), "train", "-s", "0", "--width", "0.125", "--epochs", "1", "--batch-size", "4",
            "--eval-batch-size", "4", "--no-progress", "--device", "cpu", "--from-scratch",
            "--strategy", "entropy",
            "--budget", "all", "--unlabeled-dir", str(new), "--output-dir", str(tmp_path / "runs")]
    run_dir = main(args)
    assert "scoring and evaluating them one at a time" in capsys.readouterr().out
    names = [name for name, _ in read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")]
    assert sorted(names) == sorted(path.name for path in new.iterdir())      # every image, ranked


def test_training_images_of_different_sizes_without_a_crop_name_two_of_them(dataset, tmp_path, capsys):
    import shutil

    copy = tmp_path / "cs"
    shutil.copytree(dataset, copy)
    image_path = sorted((copy / "leftImg8bit" / "train").rglob("*.png"))[0]
    for path in [image_path, *sorted(copy.rglob(image_path.name.replace("_leftImg8bit.png", "_gtFine_*")))]:
        picture = Image.open(path)
        picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST).save(path)
    with pytest.raises(SystemExit):
        _run(copy, tmp_path)
    err = capsys.readouterr().err
    assert err.startswith("error: the training images differ in size") and image_path.name in err


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_truncated_image_stops_the_run_before_anything_is_written(dataset, tmp_path, capsys, split):
    from interrupts import check_a_truncated_image_stops_the_run

    folder = "leftImg8bit/train" if split == "train" else "leftImg8bit/val"
    check_a_truncated_image_stops_the_run(_run, dataset, tmp_path, folder, "*.png",
                                          first=split == "train", capsys=capsys)


def test_the_image_picture_shows_the_models_per_pixel_entropy(dataset, tmp_path):
    import torch

    from segmentation.build import build
    from segmentation.overlay import _pixel_entropy

    task = build(parse_args(["-d", str(dataset), *TINY_ARGS, "--output-dir", str(tmp_path)])).adapter
    model = task.build_model().eval()
    from segmentation.data import normalize, read_image

    image = normalize(read_image(task.samples[2].image), task.mean, task.std)[None]
    with torch.inference_mode():
        probs = torch.softmax(model(image), dim=1)[0].double()                      # [C, H, W]
    expected = -(probs * torch.log(probs)).sum(0).numpy()
    np.testing.assert_allclose(_pixel_entropy(task, model, 2), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("extra, message", [
    (["--strategy", "badge"], "'badge' reads distributions per image, but this task's outputs are distributions per pixel"),
    (["--weights", "WEIGHTS"], "weights.pth: not a weights file"),
])
def test_refusals_come_before_anything_is_written(dataset, tmp_path, capsys, extra, message):
    weights = tmp_path / "weights.pth"
    weights.write_text("not a checkpoint\n")
    with pytest.raises(SystemExit) as exit_info:
        _run(dataset, tmp_path, *[str(weights) if item == "WEIGHTS" else item for item in extra])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_a_cycle_trains_evaluates_and_scores_under_bf16(dataset, tmp_path):
    import csv
    import math

    run_dir = _run(dataset, tmp_path, "--strategy", "loss_prediction", "--amp", "bf16")
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert rows and all(math.isfinite(float(row["train_loss"])) for row in rows)
    assert (run_dir / "priorities" / "cycle_00.csv").is_file()


def test_a_mix_of_mc_entropy_knearest_and_a_passive_share_runs_end_to_end(dataset, tmp_path):
    run_dir = _run(dataset, tmp_path, "--strategy", "mc_entropy", "--diversity", "knearest",
                   "--random-fraction", "0.5")
    assert run_dir.parent.name == "mc_entropy+knearest+random0.5"
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["n_labeled"] for row in rows] == [4, 6]
    state = PoolState.load(run_dir / "pool.npz")
    assert all(len(state.added_in(cycle + 1)) == 2 for cycle in range(2))


def test_a_superpixel_run_saved_before_item_names_resumes_records_them_and_then_checks_them(
        dataset, tmp_path, capsys, caplog):
    from pathlib import Path

    from active_learning.loop.superpixels import load_region_map, save_region_map

    cache = tmp_path / "cache"
    extra = ("--strategy", "random_superpixels", "--cache-dir", str(cache))
    run_dir = _run(dataset, tmp_path, *extra, "--cycles", "1")
    state = PoolState.load(run_dir / "pool.npz")
    names = state.item_names.tolist()
    maps = [cache / "watershed_12" / Path(name).with_suffix(".png") for name in names]
    regions = [len(np.bincount(load_region_map(path).ravel())) for path in maps]  # by hand
    assert state.item_units.tolist() == regions and sum(regions) == len(state) > len(names)
    # pool.npz as a run wrote it before item names and units were recorded
    np.savez(run_dir / "pool.npz", labeled_at=state.labeled_at,
             finished_cycles=np.array(state.finished_cycles))
    assert PoolState.load(run_dir / "pool.npz").item_names is None
    caplog.clear()
    _run(dataset, tmp_path, *extra, "--cycles", "2")
    assert "recorded without its items' names" in caplog.text
    resumed = PoolState.load(run_dir / "pool.npz")
    assert resumed.finished_cycles == 2 and len(resumed) == len(state)
    np.testing.assert_array_equal(resumed.labeled_up_to(0), state.labeled_up_to(0))
    assert resumed.item_names.tolist() == names and resumed.item_units.tolist() == regions
    # One image loses a superpixel, another gains one: the pool's unit count stays the same, so
    # only the units recorded per image tell that the region ids now name other pixels.
    merged = load_region_map(maps[0])
    merged[merged == merged.max()] = merged.max() - 1
    save_region_map(merged, maps[0])
    split = load_region_map(maps[1])
    largest = int(np.bincount(split.ravel()).argmax())
    split[tuple(np.argwhere(split == largest)[0])] = split.max() + 1
    save_region_map(split, maps[1])
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    with pytest.raises(SystemExit) as exit_info:
        _run(dataset, tmp_path, *extra, "--cycles", "3")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert f"image {names[0]} had {regions[0]} units in this run and has {regions[0] - 1} now" in err
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before
