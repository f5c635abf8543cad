"""The end-to-end contract every task's train.py keeps: one test, run on each task.

Each task's ``test_<task>_train.py`` imports the tests below and names its task (``TASK``) and
the strategies it runs end to end (``STRATEGIES``); ``tests/conftest.py`` parametrizes
``strategy`` with them. A task's module holds its own tiny runs (``tiny_run``, one per set of
flags, shared by the tests that read it), and the test files stay one per task so that the
suite's workers share them out.

What a task runs end to end: every kind of request a strategy makes of it (what the loop must
compute for each candidate, a loss module, the labeled items' embeddings, a fit on the labeled
items, a held-out share, a presample, regions), each once; a strategy's own arithmetic is
tested on its own and end to end on classification, which runs every strategy.
``test_the_strategies_cover_every_kind_of_request_the_task_accepts`` keeps the lists honest as
strategies are added.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from active_learning import PoolState, get_strategy, list_strategies
from active_learning.files.export import read_entropies_csv, read_metrics_csv
from active_learning.strategies import (
    BOX_DISTRIBUTIONS,
    CLASS_DISTRIBUTIONS,
    HEATMAPS,
    PIXEL_DISTRIBUTIONS,
)

__all__ = ["dataset", "every_strategy_but", "spec", "task", "task_main", "test_every_strategy_end_to_end",
           "test_the_strategies_cover_every_kind_of_request_the_task_accepts", "tiny_run"]


@dataclass(frozen=True)
class TaskSpec:
    """How the contract runs one task: its module, its tiny dataset and flags, what it counts."""

    module: str
    write_dataset: Callable[[Path], Path]
    args: Callable[[Path], list[str]]           # dataset -> the tiny run's flags, output aside
    metric: str
    labeled: list[int]                          # n_labeled of cycles 0 and 1
    output_kind: str
    units: str                                  # the SelectionUnits class the task selects with
    extra: Callable[[str], list[str]] = lambda strategy: []   # flags a strategy needs here
    check: Callable[..., None] = lambda strategy, dataset, run_dir, rows, state: None
    picture_width: int | None = 100             # selections/cycle_XX.png per cycle, wider than


def _classification_data(root: Path) -> Path:
    return root   # digits come with scikit-learn


def _classification_args(dataset: Path) -> list[str]:
    return ["--no-report-map", "--dataset", "digits", "--width", "2", "--cycles", "2",
            "--initial-size", "40", "--images-per-cycle", "12", "--subset", "60", "--epochs", "2",
            "--batch-size", "16", "--mc-samples", "3", "--no-progress", "--device", "cpu"]


def _classification_extra(strategy: str) -> list[str]:
    if strategy in ("mc_entropy", "bald", "variation_ratio", "mc_variance"):
        return ["--dropout", "0.3"]
    if strategy == "discriminative":   # its discriminator's training: test_discriminative.py
        return ["--dal-max-epochs", "3"]
    return []


def check_priorities(run_dir, names, state, cycles: int, budget: int | None = None) -> None:
    """Each cycle's priority CSV names exactly the images labeled next (``budget`` rows when
    given), best first, values with 5 decimals; the learning curve is a PNG."""
    for cycle in range(cycles):
        lines = (run_dir / "priorities" / f"cycle_{cycle:02d}.csv").read_text().splitlines()
        assert lines[0] == "name,entropy_value"
        body = [line.rsplit(",", 1) for line in lines[1:]]
        assert budget is None or len(body) == budget
        assert sorted(name for name, _ in body) == sorted(names[i] for i in state.added_in(cycle + 1))
        values = [float(value) for _, value in body]
        assert values == sorted(values, reverse=True)
        assert all(0 <= value <= 1e6 and len(text.split(".")[1]) == 5 for value, (_, text)
                   in zip(values, body))
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _classification_check(strategy, dataset, run_dir, rows, state):
    from classification.data import load_classification_data

    names = load_classification_data("digits", None).names
    assert run_dir.parts[-4:-2] == ("classification", "digits")
    assert all(0 <= row["accuracy"] <= 1 for row in rows)
    assert len(state.labeled_indices) == 64 == len(np.unique(state.labeled_indices))
    check_priorities(run_dir, names, state, cycles=2)
    page = (run_dir / "report" / "index.html").read_text()   # the run's page, linking its CSVs
    assert "priorities/cycle_00.csv" in page and "priorities/cycle_01.csv" in page


def _segmentation_data(root: Path) -> Path:
    from seg_fixtures import write_tiny_cityscapes

    return write_tiny_cityscapes(root / "cs")


def _segmentation_args(dataset: Path) -> list[str]:
    from seg_fixtures import TINY_ARGS

    return ["-d", str(dataset), *TINY_ARGS]


def _segmentation_extra(strategy: str) -> list[str]:
    # the report's map (its t-SNE takes seconds) for three strategies of different needs
    return ["--no-report-map", "false"] if strategy in SEGMENTATION_MAPS else []


SEGMENTATION_MAPS = ("entropy", "coreset", "hidden_uncertainty")


def _segmentation_check(strategy, dataset, run_dir, rows, state):
    from active_learning.files.embeddings import read_embeddings_file

    assert [row["labeled_pixel_fraction"] for row in rows] == pytest.approx([4 / 12, 6 / 12])
    for cycle in range(2):
        names = [name for name, _ in read_entropies_csv(run_dir / "priorities" / f"cycle_{cycle:02d}.csv")]
        assert all(name.endswith("_leftImg8bit.png") for name in names)
    if strategy not in SEGMENTATION_MAPS:
        assert not (run_dir / "embeddings").exists()
        return
    # the report's map points of each cycle, whatever the strategy computed; no class per image
    for cycle, labeled in ((0, 4), (1, 6)):
        points = read_embeddings_file(run_dir / "embeddings" / f"cycle_{cycle:02d}.npz")
        assert [int((points.status == kind).sum()) for kind in ("labeled", "chosen", "unlabeled")] \
            == [labeled, 2, 12 - labeled - 2]
        assert points.classes is None and points.note.startswith("No classes: segmentation")
    if strategy == "entropy":
        page = (run_dir / "report" / "index.html").read_text()
        assert 'src="img/s01_map.png"' in page and "No classes: segmentation labels pixels" in page
        assert (run_dir / "report" / "img" / "s01_map.png").stat().st_size > 0


def _detection_data(root: Path) -> Path:
    from det_fixtures import write_tiny_voc

    return write_tiny_voc(root / "voc")


def _detection_args(dataset: Path) -> list[str]:
    from det_fixtures import TINY_ARGS

    return ["--dataset_root", str(dataset), *TINY_ARGS]


def _detection_check(strategy, dataset, run_dir, rows, state):
    assert all(0 <= row["mAP_area"] <= 1 for row in rows)
    assert {f"AP_{name}" for name in ("tshirt", "bag")} <= set(rows[0])
    for cycle in range(2):
        names = [name for name, _ in read_entropies_csv(run_dir / "priorities" / f"cycle_{cycle:02d}.csv")]
        assert all(name.endswith(".jpg") and len(name) == 10 for name in names)


def _pose_data(root: Path) -> Path:
    from pose_fixtures import write_tiny_coco

    return write_tiny_coco(root / "coco")


def _pose_args(dataset: Path) -> list[str]:
    from pose_fixtures import TINY_ARGS

    return ["--dataset-root", str(dataset), *TINY_ARGS]


def _pose_check(strategy, dataset, run_dir, rows, state):
    from pose_fixtures import read_json

    coco = read_json(dataset / "annotations" / "person_keypoints_train2017.json")
    persons_per_image: dict = {}
    for note in coco["annotations"]:
        persons_per_image[note["image_id"]] = persons_per_image.get(note["image_id"], 0) + 1
    names = {image["file_name"]: persons_per_image.get(image["id"], 0) for image in coco["images"]}
    for cycle in range(2):
        chosen = [name for name, _ in read_entropies_csv(run_dir / "priorities" / f"cycle_{cycle:02d}.csv")]
        assert all(name in names and names[name] > 0 for name in chosen)
    assert rows[0]["n_persons"] >= 4 and rows[1]["n_persons"] > rows[0]["n_persons"]


def _dal(strategy: str) -> list[str]:
    return ["--dal-max-epochs", "2"] if strategy == "discriminative" else []


TASKS = {
    "classification": TaskSpec("classification.train", _classification_data, _classification_args,
                               "accuracy", [40, 52], CLASS_DISTRIBUTIONS, "SelectionUnits",
                               extra=_classification_extra, check=_classification_check,
                               picture_width=None),
    "segmentation": TaskSpec("segmentation.train", _segmentation_data, _segmentation_args, "mIoU",
                             [4, 6], PIXEL_DISTRIBUTIONS, "SelectionUnits",
                             extra=_segmentation_extra, check=_segmentation_check,
                             picture_width=0),
    "object_detection": TaskSpec("object_detection.train", _detection_data, _detection_args, "mAP",
                                 [4, 6], BOX_DISTRIBUTIONS, "SelectionUnits", extra=_dal,
                                 check=_detection_check),
    "human_pose_estimation": TaskSpec("human_pose_estimation.train", _pose_data, _pose_args, "AP",
                                      [4, 6], HEATMAPS, "GroupedUnits", extra=_dal,
                                      check=_pose_check),
}


def every_strategy_but(*left_out: str) -> list[str]:
    return [name for name in list_strategies() if name not in left_out]


def request_kind(name: str) -> tuple:
    """What a strategy asks of a task: two strategies of the same kind run the same task code
    (they differ only in what they compute from it)."""
    strategy = get_strategy(name)
    # The fields are read directly, so a renamed one fails here rather than reading as "absent".
    return (tuple(sorted(strategy.needs)), tuple(sorted(strategy.mc_statistics or ())),
            strategy.companion is not None, bool(strategy.needs_labeled_embeddings),
            strategy.fit_labeled is not None, strategy.held_out_fraction > 0,
            strategy.presample is not None, bool(strategy.region_level),
            strategy.select_set is not None)


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def task(request) -> str:
    return request.module.TASK


@pytest.fixture(scope="module")
def spec(task) -> TaskSpec:
    return TASKS[task]


@pytest.fixture(scope="module")
def dataset(spec, tmp_path_factory) -> Path:
    return spec.write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def task_main(spec):
    return importlib.import_module(spec.module).main


@pytest.fixture(scope="module")
def tiny_run(spec, dataset, task_main, tmp_path_factory):
    """``tiny_run(*flags)``: the run folder of the task's tiny run with ``flags``, made once per
    module; tests that change a run copy it first."""
    made: dict[tuple[str, ...], Path] = {}

    def run(*flags: str) -> Path:
        if flags not in made:
            output = tmp_path_factory.mktemp("tiny_run")
            made[flags] = task_main([*spec.args(dataset), "--output-dir", str(output), *flags])
        return made[flags]

    return run


# -------------------------------------------------------------------------------------- tests
def test_every_strategy_end_to_end(spec, dataset, tiny_run, strategy):
    run_dir = tiny_run("--strategy", strategy, *spec.extra(strategy))
    assert run_dir.parts[-2:] == (strategy, "seed0")
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["cycle"] for row in rows] == [0, 1]
    assert [row["n_labeled"] for row in rows] == spec.labeled
    assert all(0 <= row[spec.metric] <= 1 for row in rows)
    state = PoolState.load(run_dir / "pool.npz")
    budget = spec.labeled[1] - spec.labeled[0]
    chosen = []
    for cycle in range(2):
        names = [name for name, _ in read_entropies_csv(run_dir / "priorities" / f"cycle_{cycle:02d}.csv")]
        assert len(names) == budget == len(state.added_in(cycle + 1))
        chosen += names
        if spec.picture_width is not None:
            picture = run_dir / "selections" / f"cycle_{cycle:02d}.png"
            assert Image.open(picture).size[0] > spec.picture_width
    assert len(set(chosen)) == 2 * budget                    # never the same image twice
    if strategy == "loss_prediction":
        assert "ranking_accuracy" in rows[0] and "kendall_tau" in rows[0]
    spec.check(strategy, dataset, run_dir, rows, state)


def test_the_strategies_cover_every_kind_of_request_the_task_accepts(task, spec, request):
    from active_learning.loop import units as units_module
    from active_learning.loop.compatibility import strategy_refusal

    units = getattr(units_module, spec.units)
    listed = request.module.STRATEGIES
    accepted = [name for name in list_strategies()
                if strategy_refusal(get_strategy(name), spec.output_kind, units) is None]
    assert set(listed) <= set(accepted), sorted(set(listed) - set(accepted))
    missing = {request_kind(name) for name in accepted} - {request_kind(name) for name in listed}
    assert not missing, [name for name in accepted if request_kind(name) in missing]
