"""The loop with grouped and region units, mid-cycle resume, and what a run leaves on disk."""
from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest

from active_learning import PoolState
from active_learning.files.export import read_entropies_csv, read_metrics_csv
from active_learning.loop.config import LoopConfig
from active_learning.loop.runner import run_active_learning
from active_learning.loop.superpixels import load_region_map
from active_learning.strategies import HEATMAPS
from toy_adapters import ToyClassificationAdapter, ToyGroupedAdapter, ToyRegionAdapter


def _config(strategy: str = "random", **overrides) -> LoopConfig:
    values = dict(strategy=strategy, cycles=3, initial_size=10, budget=6, subset_size=0, epochs=2,
                  batch_size=8, eval_batch_size=16, mc_samples=3, progress=False, seed=3)
    values.update(overrides)
    return LoopConfig(**values)


# ---- grouped units (pose-like) ------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["random", "entropy", "bald", "loss_prediction", "coreset",
                                      "discriminative"])
def test_grouped_units_count_images_and_never_pick_an_empty_or_labeled_one(tmp_path, strategy):
    adapter = ToyGroupedAdapter()
    config = _config(strategy, options={"max_epochs": 2, "n_sub_queries": 2}
                     if strategy == "discriminative" else {})
    rows = run_active_learning(adapter, config, tmp_path)
    state = PoolState.load(tmp_path / "pool.npz")
    assert len(state) == 60                                      # pool.npz counts images
    sizes = adapter.samples_per_image
    assert [row["n_labeled"] for row in rows] == [10, 16, 22]    # the budget counts images
    for cycle, row in enumerate(rows):
        labeled = state.labeled_up_to(cycle)
        assert row["n_persons"] == sizes[labeled].sum()
        assert (sizes[state.added_in(cycle + 1)] > 0).all()      # an image with no person: never
        names = [name for name, _ in read_entropies_csv(tmp_path / "priorities" / f"cycle_{cycle:02d}.csv")]
        assert sorted(names) == sorted(adapter.item_name(i) for i in state.added_in(cycle + 1))
    assert (sizes[state.labeled_indices] > 0).all()


def test_grouped_scores_pool_the_persons_of_each_image(tmp_path, monkeypatch):
    from active_learning.loop import scoring

    adapter = ToyGroupedAdapter()
    config = _config("entropy", cycles=1, unit_reduction="sum")
    seen = {}
    original = scoring.score_candidates

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        seen.update(result)
        return result

    monkeypatch.setattr(scoring, "score_candidates", recording)
    run_active_learning(adapter, config, tmp_path)
    # Every candidate image with persons got one pooled score; the chosen are the top 6 of them.
    state = PoolState.load(tmp_path / "pool.npz")
    candidates = np.flatnonzero((state.labeled_at != 0) & (adapter.samples_per_image > 0))
    np.testing.assert_array_equal(seen["unit_ids"], candidates)
    top = seen["unit_ids"][np.argsort(-seen["scores"], kind="stable")[:6]]
    assert sorted(top) == sorted(state.added_in(1))


def test_badge_is_refused_for_grouped_units_before_training(tmp_path):
    with pytest.raises(ValueError, match="gradient embedding per image"):
        run_active_learning(ToyGroupedAdapter(), _config("badge"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---- region units (superpixels) -----------------------------------------------------------


@pytest.mark.parametrize("strategy", ["random", "entropy", "mc_entropy", "bald", "mc_variance",
                                      "variation_ratio"])
def test_region_units_label_superpixels_once_and_write_region_files(tmp_path, strategy):
    adapter = ToyRegionAdapter()
    config = _config(strategy, initial_size=3, budget=8)   # 3 whole images, then 8 regions a cycle
    rows = run_active_learning(adapter, config, tmp_path)
    units = adapter.units
    state = PoolState.load(tmp_path / "pool.npz")
    assert len(state) == units.n_units == 20 * 4 + 20 * 2
    initial = state.labeled_up_to(0)
    initial_images = np.unique(units.unit_image[initial])
    assert len(initial_images) == 3
    np.testing.assert_array_equal(initial, units.units_of_items(initial_images))
    assert [row["n_labeled"] for row in rows] == [len(initial), len(initial) + 8, len(initial) + 16]
    for cycle, row in enumerate(rows):
        labeled = state.labeled_up_to(cycle)
        assert row["labeled_pixel_fraction"] == pytest.approx(units.region_pixels[labeled].sum() / (40 * 64))
        assert row["n_images"] == len(np.unique(units.unit_image[labeled]))
        chosen = state.added_in(cycle + 1)
        images, regions = units.image_and_region(chosen)
        with open(tmp_path / "regions" / f"cycle_{cycle:02d}.csv", newline="") as handle:
            table = list(csv.reader(handle))
        assert table[0] == ["name", "region_id", "score"]
        assert sorted((name, int(region)) for name, region, _ in table[1:]) == sorted(
            (adapter.item_name(int(i)), int(r)) for i, r in zip(images, regions))
        scores = [float(score) for _, _, score in table[1:]]
        assert scores == sorted(scores, reverse=True)
        # The priority CSV names each touched image once, scored by the sum of its regions'.
        priorities = dict(read_entropies_csv(tmp_path / "priorities" / f"cycle_{cycle:02d}.csv"))
        assert set(priorities) == {adapter.item_name(int(i)) for i in images}
        for name, value in priorities.items():
            assert value == pytest.approx(sum(float(s) for n, _, s in table[1:] if n == name),
                                          abs=5e-5)
    for image in np.unique(units.unit_image[state.labeled_indices][state.labeled_at[state.labeled_indices] > 0]):
        path = tmp_path / "regions" / "maps" / "city" / f"image_{image:04d}_leftImg8bit.png"
        np.testing.assert_array_equal(load_region_map(path), adapter.maps[image])


def test_region_scores_are_region_means_of_the_pixel_scores(tmp_path, monkeypatch):
    """The chosen superpixels are the top-k of per-region means of the per-pixel entropy."""
    import torch

    from active_learning.loop import selection
    from active_learning.strategies import uncertainty

    adapter = ToyRegionAdapter()
    config = _config("entropy", cycles=1, initial_size=3, budget=8)
    captured = {}
    original = selection.select_next

    def recording(adapter_, model, loss_module, state, cycle, config_, device, **options):
        captured["model"] = model
        captured["state"] = PoolState(state.labeled_at.copy())
        return original(adapter_, model, loss_module, state, cycle, config_, device, **options)

    monkeypatch.setattr(selection, "select_next", recording)
    monkeypatch.setattr("active_learning.loop.runner.select_next", recording)
    run_active_learning(adapter, config, tmp_path)
    model = captured["model"].eval()
    images = adapter.pool_set.tensors[0]
    with torch.inference_mode():
        pixel = uncertainty.entropy(model(images).softmax(1), reduction="none").numpy()   # [N, H, W]
    expected = np.concatenate([[pixel[i][adapter.maps[i] == r].mean() for r in range(adapter.maps[i].max() + 1)]
                               for i in range(len(images))])
    unlabeled = captured["state"].unlabeled_indices
    best = unlabeled[np.argsort(-expected[unlabeled], kind="stable")[:8]]
    assert sorted(PoolState.load(tmp_path / "pool.npz").added_in(1)) == sorted(best)


@pytest.mark.parametrize("strategy, message", [("coreset", "scores whole images"),
                                               ("loss_prediction", "scores whole images")])
def test_image_level_strategies_are_refused_for_region_units(tmp_path, strategy, message):
    with pytest.raises(ValueError, match=message):
        run_active_learning(ToyRegionAdapter(), _config(strategy), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---- crashes, resume, seeds ---------------------------------------------------------------


class CrashingAdapter(ToyClassificationAdapter):
    """Raises KeyboardInterrupt in the training epoch ``crash_epoch`` of ``crash_cycle``."""

    def __init__(self, crash_cycle: int | None = None, crash_epoch: int = 0) -> None:
        super().__init__()
        self.crash_cycle, self.crash_epoch = crash_cycle, crash_epoch
        self.cycle = -1
        self.epochs_run: list[tuple[int, int]] = []

    def build_model(self):
        self.cycle += 1
        return super().build_model()

    def train_one_epoch(self, model, loss_module, loader, optimizer, *, epoch, config, device):
        if (self.cycle, epoch) == (self.crash_cycle, self.crash_epoch):
            raise KeyboardInterrupt("simulated Ctrl-C")
        self.epochs_run.append((self.cycle, epoch))
        return super().train_one_epoch(model, loss_module, loader, optimizer, epoch=epoch,
                                       config=config, device=device)


@pytest.mark.parametrize("strategy", ["loss_prediction", "bald"])
def test_resume_inside_a_cycle_ends_with_the_same_labeled_set(tmp_path, strategy, caplog):
    config = _config(strategy, cycles=2, epochs=6, save_checkpoints=True, checkpoint_every=2,
                     subset_size=40, budget=10, initial_size=20)
    straight = CrashingAdapter()
    straight_rows = run_active_learning(straight, config, tmp_path / "straight")
    expected = PoolState.load(tmp_path / "straight" / "pool.npz").labeled_at

    crashing = CrashingAdapter(crash_cycle=1, crash_epoch=5)
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(crashing, config, tmp_path / "resumed")
    assert (tmp_path / "resumed" / "checkpoints" / "in_progress.pt").exists()
    resumed = CrashingAdapter()
    resumed.cycle = 0  # the next build_model call is cycle 1's
    with caplog.at_level(logging.INFO, logger="active_learning"):
        rows = run_active_learning(resumed, config, tmp_path / "resumed")
    assert "resuming training at epoch 4" in caplog.text
    assert resumed.epochs_run == [(1, 4), (1, 5)]                  # only the epochs left
    np.testing.assert_array_equal(PoolState.load(tmp_path / "resumed" / "pool.npz").labeled_at, expected)
    for key in ("accuracy", "train_loss"):
        assert rows[1][key] == pytest.approx(straight_rows[1][key], rel=1e-5)
    assert not (tmp_path / "resumed" / "checkpoints" / "in_progress.pt").exists()


def test_an_in_cycle_checkpoint_of_another_protocol_is_ignored(tmp_path, caplog):
    config = _config("entropy", cycles=1, epochs=4, save_checkpoints=True, checkpoint_every=1)
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(CrashingAdapter(crash_cycle=0, crash_epoch=3), config, tmp_path)
    other = _config("entropy", cycles=1, epochs=4, save_checkpoints=True, checkpoint_every=1, batch_size=4)
    adapter = CrashingAdapter()
    with caplog.at_level(logging.INFO, logger="active_learning"):
        run_active_learning(adapter, other, tmp_path)
    assert "belongs to another cycle or protocol" in caplog.text
    assert adapter.epochs_run == [(0, e) for e in range(4)]


def test_every_cycle_and_stage_draws_from_its_own_seed():
    """A derivation that ignored the cycle would pass every resume test (all reruns agree)."""
    from active_learning.loop.config import derive_seed

    seeds = [derive_seed(7, cycle, stage) for cycle in range(6) for stage in range(5)]
    assert len(set(seeds)) == 30
    assert derive_seed(7, 3, 2) == derive_seed(7, 3, 2) and derive_seed(8, 3, 2) != derive_seed(7, 3, 2)


def test_a_crash_while_writing_the_priority_csv_is_redone_on_rerun(tmp_path, monkeypatch):
    import active_learning.files.export as export

    config = _config("entropy", cycles=3, subset_size=40)
    run_active_learning(ToyClassificationAdapter(), config, tmp_path / "straight")
    expected = PoolState.load(tmp_path / "straight" / "pool.npz").labeled_at

    original = export.atomic_write_text

    def dying(path, text):
        if str(path).endswith("cycle_01.csv"):
            original(str(path) + ".partial", text[: len(text) // 2])   # a torn write elsewhere
            raise KeyboardInterrupt("killed while writing")
        original(path, text)

    monkeypatch.setattr(export, "atomic_write_text", dying)
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(ToyClassificationAdapter(), config, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / "priorities" / "cycle_01.csv").exists()
    assert PoolState.load(tmp_path / "resumed" / "pool.npz").finished_cycles == 1
    monkeypatch.setattr(export, "atomic_write_text", original)
    run_active_learning(ToyClassificationAdapter(), config, tmp_path / "resumed")
    assert len(read_entropies_csv(tmp_path / "resumed" / "priorities" / "cycle_01.csv")) == 6
    np.testing.assert_array_equal(PoolState.load(tmp_path / "resumed" / "pool.npz").labeled_at, expected)


def test_a_failed_rerun_leaves_the_args_json_of_the_files_beside_it(tmp_path):
    run_active_learning(ToyClassificationAdapter(), _config("entropy", cycles=1), tmp_path)
    crashing = ToyClassificationAdapter()
    crashing.fail_in_cycle = 0  # the rerun's first evaluation (cycle 1) dies
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(crashing, _config("entropy", cycles=3), tmp_path)
    record = json.loads((tmp_path / "args.json").read_text())
    assert record["loop"]["cycles"] == 1
    assert record["metric"] == {"name": "accuracy", "higher_is_better": True}
    assert record["units"]["kind"] == "samples"


def test_cycles_that_would_exhaust_the_pool_are_refused_up_front(tmp_path):
    # 120 items: 10 + 6 per cycle labels them all by cycle 19, so at most 20 cycles train on new labels.
    with pytest.raises(ValueError, match="use at most 20 cycles"):
        run_active_learning(ToyClassificationAdapter(), _config("random", cycles=21), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_loss_prediction_records_how_well_the_module_ranks(tmp_path):
    rows = run_active_learning(ToyClassificationAdapter(), _config("loss_prediction", cycles=2),
                               tmp_path)
    for row in rows:
        assert 0.0 <= row["ranking_accuracy"] <= 1.0 and -1.0 <= row["kendall_tau"] <= 1.0
    assert "ranking_accuracy" in read_metrics_csv(tmp_path / "metrics.csv")[0]
    plain = run_active_learning(ToyClassificationAdapter(), _config("entropy", cycles=1),
                                tmp_path / "plain")
    assert "ranking_accuracy" not in plain[0]


def test_loss_prediction_records_how_well_the_entropy_ranks_the_same_losses(tmp_path):
    rows = run_active_learning(ToyClassificationAdapter(), _config("loss_prediction", cycles=2),
                               tmp_path)
    for row in rows:  # the reference the module must beat, on the same test losses
        assert 0.0 <= row["entropy_ranking_accuracy"] <= 1.0
        assert -1.0 <= row["entropy_kendall_tau"] <= 1.0
        assert row["entropy_ranking_accuracy"] != row["ranking_accuracy"]


@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_predicted_and_true_losses_give_the_entropy_by_hand(reduction):
    import torch
    from torch.utils.data import DataLoader

    from active_learning.loop.loss_ranking import predicted_and_true_losses
    from active_learning.strategies.loss_prediction import LossPredictionModule
    from toy_adapters import ToyDenseAdapter

    adapter = ToyDenseAdapter(n_test=10)
    torch.manual_seed(0)
    model = adapter.build_model()
    module = LossPredictionModule([8, 8])
    loader = DataLoader(adapter.test_set, batch_size=4)
    predicted, true, entropy = predicted_and_true_losses(adapter, model, module, loader,
                                                         torch.device("cpu"), reduction=reduction)
    inputs, targets = adapter.test_set.tensors
    with torch.no_grad():
        probs = model(inputs).softmax(dim=1).double()                     # [10, 2, 8, 8]
    pixel_entropy = -(probs * probs.log()).sum(dim=1).flatten(1)          # [10, 64]
    expected = pixel_entropy.mean(1) if reduction == "mean" else pixel_entropy.max(1).values
    np.testing.assert_allclose(entropy, expected.numpy(), rtol=1e-4)
    assert predicted.shape == true.shape == (10,)

    adapter.output_kind = HEATMAPS  # no class distribution: no entropy reference
    assert predicted_and_true_losses(adapter, model, module, loader, torch.device("cpu"))[2] is None


def test_the_loss_modules_settings_are_the_protocol_of_loss_prediction_runs_only(tmp_path):
    assert "options" not in _config("entropy").protocol()   # no option: a protocol as before
    from active_learning.errors import RunMismatchError

    run_active_learning(ToyClassificationAdapter(), _config("loss_prediction", cycles=1), tmp_path / "lp")
    with pytest.raises(RunMismatchError, match="loss_prediction option loss_pool_size: 1 -> 6"):
        run_active_learning(ToyClassificationAdapter(),
                            _config("loss_prediction", cycles=2, options={"loss_pool_size": 6}), tmp_path / "lp")
