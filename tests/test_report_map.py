"""The report's map points (``loop/report_map.py``): which units each cycle samples, their
embeddings and classes against the model's own, the file the runner writes, ``--no-report-map``,
and the report page that draws them (its map image cached between rewrites)."""
from __future__ import annotations

import json
import os
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from active_learning.files.embeddings import read_embeddings_file, write_embeddings_file
from active_learning.files.export import read_entropies_csv, read_metrics_csv
from active_learning.loop.config import LoopConfig
from active_learning.loop.report_map import map_points, map_refusal, map_sample
from active_learning.loop.runner import run_active_learning
from active_learning.reports import embedding_map
from active_learning.reports.class_histogram import class_counts
from active_learning.reports.run_folder import report_for_run
from active_learning.strategies import CLASS_DISTRIBUTIONS, PIXEL_DISTRIBUTIONS
from toy_adapters import (
    ToyClassificationAdapter,
    ToyDenseAdapter,
    ToyGroupedAdapter,
    ToyRegionAdapter,
    outputs_and_embeddings,
)

CPU = torch.device("cpu")
DIGITS = ["--dataset", "digits", "--width", "2", "--cycles", "1", "--initial-size", "40",
          "--images-per-cycle", "12", "--subset", "60", "--epochs", "1", "--batch-size", "16",
          "--no-progress", "--device", "cpu", "--strategy", "entropy"]


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def page(index):
    parser = Images()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.images, " ".join(" ".join(parser.text).split())


def _config(**overrides) -> LoopConfig:
    values = dict(strategy="entropy", cycles=1, initial_size=20, budget=6, subset_size=30,
                  epochs=1, batch_size=16, eval_batch_size=32, progress=False, seed=3)
    values.update(overrides)
    return LoopConfig(**values)


# ---- the sample ------------------------------------------------------------------------------

def test_the_sample_keeps_every_chosen_unit_and_at_most_n_of_the_others():
    labeled, candidates, chosen = np.arange(10), np.arange(10, 40), np.array([30, 12, 15])
    ids, status, totals = map_sample(labeled, candidates, chosen, per_status=5, seed=1)
    groups = {kind: ids[status == kind] for kind in ("labeled", "unlabeled", "chosen")}
    assert groups["chosen"].tolist() == [12, 15, 30]
    assert len(groups["labeled"]) == 5 and set(groups["labeled"]) <= set(labeled)
    # the unlabeled points are candidates that were not chosen
    assert len(groups["unlabeled"]) == 5
    assert set(groups["unlabeled"]) <= set(candidates) - {12, 15, 30}
    assert totals == {"labeled": 10, "unlabeled": 27, "chosen": 3}
    assert status.tolist()[:5] == ["labeled"] * 5 and status.tolist()[-3:] == ["chosen"] * 3
    # seeded: the same draw again, another with another seed
    again = map_sample(labeled, candidates, chosen, per_status=5, seed=1)[0]
    other = map_sample(labeled, candidates, chosen, per_status=5, seed=2)[0]
    np.testing.assert_array_equal(ids, again)
    assert not np.array_equal(ids, other)
    # small sets are kept whole; a choice larger than twice N is sampled too (a round of all)
    ids, status, _ = map_sample(np.arange(3), np.arange(3, 8), np.array([3]), per_status=5, seed=0)
    assert ids.tolist() == [0, 1, 2, 4, 5, 6, 7, 3]
    ids, status, totals = map_sample(np.arange(2), np.arange(2, 40), np.arange(2, 40),
                                     per_status=4, seed=0)
    assert (status == "chosen").sum() == 8 and (status == "unlabeled").sum() == 0
    assert totals["chosen"] == 38


def test_only_superpixels_refuse_a_map():
    assert map_refusal(ToyClassificationAdapter().selection_units()) is None
    assert map_refusal(ToyGroupedAdapter().selection_units()) is None
    reason = map_refusal(ToyRegionAdapter().selection_units())
    assert reason is not None and "no per-region embedding" in reason


# ---- the points, against the model -----------------------------------------------------------

def test_points_are_the_models_embeddings_and_classes_of_each_unit():
    adapter = ToyClassificationAdapter(n_train=120)
    torch.manual_seed(0)
    model = adapter.build_model()
    labeled, candidates = np.arange(0, 60, 3), np.arange(61, 120, 2)
    chosen = np.array([101, 63, 77])
    points = map_points(adapter, model, adapter.selection_units(), labeled, candidates, chosen,
                        _config(eval_batch_size=7), CPU, cycle=0, per_status=8)
    assert [int((points.status == kind).sum()) for kind in ("labeled", "unlabeled", "chosen")] \
        == [8, 8, 3]
    assert points.totals == {"labeled": 20, "unlabeled": 27, "chosen": 3}
    outputs, embeddings = outputs_and_embeddings(adapter, model, points.units)
    np.testing.assert_allclose(points.embeddings, embeddings.numpy(), rtol=1e-5, atol=1e-6)
    truth = adapter.train_set.tensors[1].numpy()[points.units]
    guess = outputs.argmax(1).numpy()
    is_labeled = points.status == "labeled"
    # labeled units by their label, the others by the model's class
    np.testing.assert_array_equal(points.classes[is_labeled], truth[is_labeled])
    np.testing.assert_array_equal(points.classes[~is_labeled], guess[~is_labeled])
    np.testing.assert_array_equal(points.predicted, ~is_labeled)
    assert points.note == ""


def test_a_unit_of_several_samples_is_their_mean_and_has_no_class():
    adapter = ToyGroupedAdapter(n_images=30)
    units = adapter.selection_units()
    torch.manual_seed(0)
    model = adapter.build_model()
    selectable = np.flatnonzero(units.selectable())
    points = map_points(adapter, model, units, selectable[:6], selectable[6:], selectable[[7, 9]],
                        _config(), CPU, cycle=0)
    assert points.classes is None and points.predicted is None
    assert "several samples" in points.note
    _, embeddings = outputs_and_embeddings(adapter, model, np.arange(units.n_samples))
    for unit, row in zip(points.units, points.embeddings, strict=True):
        samples = np.flatnonzero(units.unit_of_sample == unit)
        np.testing.assert_allclose(row, embeddings[samples].mean(0).numpy(), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("declared", [PIXEL_DISTRIBUTIONS, CLASS_DISTRIBUTIONS])
def test_per_pixel_outputs_have_no_class_per_point(declared):
    adapter = ToyDenseAdapter(n_train=20)
    adapter.output_kind = declared          # the toy adapter keeps the base class's declaration
    points = map_points(adapter, adapter.build_model(), adapter.selection_units(), np.arange(5),
                        np.arange(5, 20), np.array([6]), _config(), CPU, cycle=0)
    assert points.classes is None and points.predicted is None
    assert ("segmentation labels pixels" if declared == PIXEL_DISTRIBUTIONS
            else "not one class distribution per image") in points.note
    assert len(points.units) == 20 and points.embeddings.shape == (20, 8)


# ---- the run folder --------------------------------------------------------------------------

def test_a_run_writes_each_cycles_points_where_the_choice_was_made(tmp_path):
    adapter = ToyClassificationAdapter(n_train=60)
    run_dir = tmp_path / "run"
    run_active_learning(adapter, _config(cycles=2), run_dir, report_map=500)
    for cycle, n_labeled in ((0, 20), (1, 26)):
        points = read_embeddings_file(run_dir / "embeddings" / f"cycle_{cycle:02d}.npz")
        chosen = [name for name, _ in read_entropies_csv(
            run_dir / "priorities" / f"cycle_{cycle:02d}.csv")]
        assert sorted(adapter.item_name(int(unit)) for unit in
                      points.units[points.status == "chosen"]) == sorted(chosen)
        assert points.totals == {"labeled": n_labeled, "unlabeled": 24, "chosen": 6}
    assert "map_seconds" in read_metrics_csv(run_dir / "metrics.csv")[0]
    assert json.loads((run_dir / "args.json").read_text())["report"] == {"map_points": 500}


def test_the_cycles_candidates_are_drawn_once_for_the_choice_and_the_map(tmp_path, monkeypatch):
    """One seeded draw per cycle, handed to the selection and to the map (not two draws that
    agree only because they share a seed)."""
    from active_learning.loop import candidates, runner, selection

    draws, selected, mapped = [], [], []
    original_draw, original_select, original_map = (candidates.draw_candidates,
                                                    runner.select_next, runner.map_points)

    def draw(*args, **kwargs):
        draws.append(original_draw(*args, **kwargs))
        return draws[-1]

    def select(*args, **kwargs):
        selected.append(kwargs["candidates"])
        return original_select(*args, **kwargs)

    def points(adapter, model, units, labeled, unit_candidates, *args, **kwargs):
        mapped.append(unit_candidates)
        return original_map(adapter, model, units, labeled, unit_candidates, *args, **kwargs)

    for module in (candidates, runner, selection):
        monkeypatch.setattr(module, "draw_candidates", draw)
    monkeypatch.setattr(runner, "select_next", select)
    monkeypatch.setattr(runner, "map_points", points)
    run_active_learning(ToyClassificationAdapter(n_train=60), _config(cycles=2), tmp_path / "run",
                        report_map=500)
    assert len(draws) == 2 and len(selected) == 2 and len(mapped) == 2
    for drawn, chosen_among, on_the_map in zip(draws, selected, mapped):
        assert chosen_among is drawn and on_the_map is drawn.units
        assert len(drawn.units) == 30 and drawn.budget == 6


def test_a_superpixel_run_writes_no_points_and_its_page_says_why(tmp_path):
    regions = tmp_path / "regions"
    run_active_learning(ToyRegionAdapter(n_train=12), _config(
        strategy="random_superpixels", initial_size=4, budget=3, subset_size=0), regions,
        report_map=500)
    assert not (regions / "embeddings").exists()
    record = json.loads((regions / "args.json").read_text())["report"]
    assert "no per-region embedding" in record["map_left_out"]
    images, text = page(report_for_run(regions))
    assert "Left out: region units have no per-region embedding" in text
    assert not any("map" in source for source in images)


def test_a_resumed_run_drops_the_points_of_a_cycle_that_did_not_commit(tmp_path):
    from active_learning.loop.runner import _remove_uncommitted

    folder = tmp_path / "embeddings"
    folder.mkdir()
    for cycle in range(3):
        (folder / f"cycle_{cycle:02d}.npz").write_bytes(b"x")
    _remove_uncommitted(tmp_path, finished_cycles=2)
    assert sorted(path.name for path in folder.iterdir()) == ["cycle_00.npz", "cycle_01.npz"]


def test_a_negative_map_size_is_refused(tmp_path):
    from active_learning.errors import ConfigError

    with pytest.raises(ConfigError, match="report_map must be >= 0"):
        run_active_learning(ToyClassificationAdapter(n_train=40), _config(), tmp_path / "r",
                            report_map=-1)


# ---- through the command line ----------------------------------------------------------------

def test_a_classification_run_maps_its_cycle_and_its_page_shows_map_and_classes(tmp_path):
    pytest.importorskip("sklearn")
    from classification.data import load_classification_data
    from classification.train import main

    run_dir = main([*DIGITS, "--output-dir", str(tmp_path)])
    points = read_embeddings_file(run_dir / "embeddings" / "cycle_00.npz")
    counts = {kind: int((points.status == kind).sum()) for kind in ("labeled", "chosen",
                                                                     "unlabeled")}
    assert counts == {"labeled": 40, "chosen": 12, "unlabeled": 48}
    assert points.embeddings.shape == (100, 16)               # ResNet-18 width 2: 8 x 2
    assert points.class_names == [str(digit) for digit in range(10)]
    data = load_classification_data("digits", None)
    names = data.names
    chosen = [name for name, _ in read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")]
    assert sorted(names[unit] for unit in points.units[points.status == "chosen"]) == \
        sorted(chosen)
    labeled = points.status == "labeled"
    targets = np.array([int(data.train_eval[int(unit)][1]) for unit in points.units[labeled]])
    np.testing.assert_array_equal(points.classes[labeled], targets)
    assert (points.predicted == ~labeled).all()
    report = run_dir / "report"
    images, text = page(report / "index.html")
    for name in ("img/s00_map.png", "img/s00_classes.png"):
        assert name in images and (report / name).stat().st_size > 0
    assert "chosen (predicted)" in text and "by the model's predicted class" in text


def test_no_report_map_writes_no_points_and_the_page_says_so(tmp_path):
    from classification.train import main

    run_dir = main([*DIGITS, "--output-dir", str(tmp_path), "--no-report-map"])
    assert not (run_dir / "embeddings").exists()
    assert json.loads((run_dir / "args.json").read_text())["report"] == {"map_points": 0}
    assert "map_seconds" not in read_metrics_csv(run_dir / "metrics.csv")[0]
    images, text = page(run_dir / "report" / "index.html")
    assert "Left out: the run was made with --no-report-map." in text
    assert "img/s00_map.png" not in images
    # not part of the protocol: the run goes on with the map
    main([*DIGITS, "--output-dir", str(tmp_path), "--cycles", "2"])
    assert (run_dir / "embeddings" / "cycle_01.npz").is_file()


# ---- the page --------------------------------------------------------------------------------

def test_the_map_and_histogram_are_drawn_once_per_points_file(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    from report_fixtures import make_run_folder

    run = make_run_folder(tmp_path / "runs", tmp_path / "pool")
    calls = []
    tsne = embedding_map.tsne_coordinates

    def counting(points, seed=0):
        calls.append(len(points))
        return tsne(points, seed)

    monkeypatch.setattr(embedding_map, "tsne_coordinates", counting)
    image = run / "report" / "img" / "s01_map.png"
    histogram = run / "report" / "img" / "s01_classes.png"
    report_for_run(run, max_map_points=30)
    assert len(calls) == 1 and image.stat().st_size > 0
    drawn, counted = image.stat().st_mtime_ns, histogram.stat().st_mtime_ns
    report_for_run(run, max_map_points=30)                   # the same points: kept
    assert len(calls) == 1 and image.stat().st_mtime_ns == drawn
    assert histogram.stat().st_mtime_ns == counted           # the same counts: kept too
    report_for_run(run, max_map_points=20)                   # other settings: drawn again
    assert calls[-1] == 20
    points_file = run / "embeddings" / "cycle_01.npz"
    later = image.stat().st_mtime_ns + 10 ** 9
    os.utime(points_file, ns=(later, later))                 # newer points: drawn again
    report_for_run(run, max_map_points=20)
    assert len(calls) == 3 and histogram.stat().st_mtime_ns == counted
    points = read_embeddings_file(points_file)               # other classes: other counts
    write_embeddings_file(points_file, points.embeddings, points.status,
                          np.zeros(len(points.status), dtype=int))
    report_for_run(run, max_map_points=20)
    assert histogram.stat().st_mtime_ns != counted


def test_class_counts_name_a_set_counted_from_predictions():
    classes = np.array([0, 1, 1, 2, 0, -1])
    status = np.array(["labeled", "labeled", "chosen", "chosen", "unlabeled", "chosen"])
    counts = class_counts(classes, status, 3, predicted=status != "labeled")
    assert list(counts) == ["labeled", "chosen (predicted)"]
    assert counts["labeled"].tolist() == [1, 1, 0] and counts["chosen (predicted)"].tolist() == \
        [0, 1, 1]
    assert list(class_counts(classes, status, 3)) == ["labeled", "chosen"]


def test_the_loop_imports_no_report_module():
    # The loop writes the points file (files/embeddings.py) and the report reads it: the loop
    # sits below the report, and an import of it, even inside a function, is an upward arrow.
    import ast
    from pathlib import Path

    import active_learning.loop

    found = []
    for path in sorted(Path(active_learning.loop.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [])
            found += [f"{path.name}: {name}" for name in names
                      if name.startswith("active_learning.reports")]
    assert not found
