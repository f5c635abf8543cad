"""Mixed precision: autocast for the network only, fp32 for what is computed from its outputs,
loss scaling for fp16 with the gradients unscaled before clipping."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torch import nn

from active_learning.adapter import train_one_epoch
from active_learning.loop.config import LoopConfig
from active_learning.loop.scoring import score_candidates
from active_learning.precision import autocast, full_precision, grad_scaler, to_float
from active_learning.strategies import get_strategy
from toy_adapters import ToyClassificationAdapter, make_blobs

CPU = torch.device("cpu")


def test_to_float_casts_half_tensors_wherever_they_are_and_nothing_else():
    Pair = collections.namedtuple("Pair", "a b")
    half, ints = torch.ones(2, dtype=torch.bfloat16), torch.ones(2, dtype=torch.int64)
    value = {"boxes": [half, (half.half(), ints)], "pair": Pair(half, "name"),
             "fp64": torch.ones(1, dtype=torch.float64)}
    cast = to_float(value)
    assert cast["boxes"][0].dtype == torch.float32 and cast["boxes"][1][0].dtype == torch.float32
    assert cast["boxes"][1][1].dtype == torch.int64 and isinstance(cast["boxes"][1], tuple)
    assert isinstance(cast["pair"], Pair) and cast["pair"].a.dtype == torch.float32
    assert cast["pair"].b == "name" and cast["fp64"].dtype == torch.float64


def test_autocast_runs_the_layers_in_half_and_full_precision_switches_it_off():
    layer = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast(CPU, None):
        assert layer(x).dtype == torch.float32
    with autocast(CPU, "bf16"):
        assert layer(x).dtype == torch.bfloat16
        with full_precision(CPU):
            assert layer(x).dtype == torch.float32
    with pytest.raises(ValueError, match="amp must be one of"):
        autocast(CPU, "fp8")


def test_only_fp16_scales_the_loss():
    assert grad_scaler(CPU, "fp16").is_enabled()
    assert not grad_scaler(CPU, "bf16").is_enabled() and not grad_scaler(CPU, None).is_enabled()


def _one_step(amp, max_grad_norm):
    adapter = ToyClassificationAdapter()
    torch.manual_seed(0)
    model = adapter.build_model()
    model.dropout.p = 0.0
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    inputs, targets = make_blobs(16, 3, seed=5)
    stats = train_one_epoch(adapter, model, None, [(inputs, targets)], optimizer, epoch=0,
                            config=LoopConfig(amp=amp), device=CPU, max_grad_norm=max_grad_norm,
                            scaler=grad_scaler(CPU, amp))
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return stats, after - before


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_a_mixed_precision_step_clips_the_true_gradient(amp):
    # With lr 1 and no momentum the step is the clipped gradient itself: its norm must be the
    # clipping norm. Clipping the scaled fp16 gradient (65,536 times the true one) and
    # unscaling afterwards would make the step 65,536 times smaller.
    stats, step = _one_step(amp, max_grad_norm=1e-3)
    assert np.isfinite(stats["loss"])
    assert step.norm().item() == pytest.approx(1e-3, rel=1e-2)


def test_a_bf16_step_follows_the_fp32_step():
    _, full = _one_step(None, max_grad_norm=None)
    _, half = _one_step("bf16", max_grad_norm=None)
    cosine = torch.nn.functional.cosine_similarity(full, half, dim=0).item()
    assert cosine > 0.99 and half.norm().item() == pytest.approx(full.norm().item(), rel=0.05)


@pytest.mark.parametrize("strategy", ["entropy", "bald"])
def test_scores_under_bf16_are_fp32_scores_up_to_bf16_rounding(strategy):
    adapter = ToyClassificationAdapter()
    torch.manual_seed(0)
    model = adapter.build_model()
    samples = np.arange(40)
    scores = {}
    for amp in (None, "bf16"):
        torch.manual_seed(1)     # the same dropout masks for the MC passes
        config = LoopConfig(strategy=strategy, amp=amp, mc_samples=4, eval_batch_size=16,
                            progress=False)
        computed = score_candidates(adapter, model, None, get_strategy(strategy), samples,
                                    config, CPU)
        scores[amp] = computed["scores"]
    assert scores["bf16"].dtype == np.float64
    np.testing.assert_allclose(scores["bf16"], scores[None], atol=0.03)
    assert not np.array_equal(scores["bf16"], scores[None])     # the forward did run in bf16


def test_a_classification_run_trains_evaluates_and_scores_under_amp_and_resumes_without(tmp_path):
    from active_learning.files.export import read_metrics_csv
    from classification.train import main

    tiny = ["--dataset", "digits", "--width", "2", "--epochs", "1", "--batch-size", "16",
            "--initial-size", "40", "--images-per-cycle", "10", "--subset", "30",
            "--strategy", "bald", "--mc-samples", "3", "--no-progress", "--output-dir",
            str(tmp_path)]
    run_dir = main([*tiny, "--cycles", "1", "--amp"])
    run_dir = main([*tiny, "--cycles", "2"])     # how a run computes is not what it is
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert [row["n_labeled"] for row in rows] == [40, 50]
    assert all(0 <= row["accuracy"] <= 1 for row in rows)


def test_memory_format_makes_image_batches_channels_last_and_leaves_the_rest():
    from active_learning.precision import memory_format

    images, vectors = torch.randn(2, 3, 4, 5), torch.randn(2, 3)
    converted = memory_format((images, vectors), channels_last=True)
    assert converted[0].is_contiguous(memory_format=torch.channels_last)
    assert not images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(converted[0], images) and converted[1] is vectors
    assert memory_format(images, channels_last=False) is images


def test_a_channels_last_run_computes_what_the_default_layout_computes(tmp_path, monkeypatch):
    """Same labeled set, the same metrics up to float rounding; the model's convolutions get
    NHWC weights and NHWC batches."""
    from active_learning.loop.config import LoopConfig
    from active_learning.loop.runner import run_active_learning
    from toy_adapters import ToyClassificationAdapter

    seen = []
    original = torch.nn.Conv2d.forward

    def recording(self, inputs):
        if self.in_channels > 1:   # with one channel, both layouts are the same memory
            seen.append((self.weight.is_contiguous(memory_format=torch.channels_last),
                         inputs.is_contiguous(memory_format=torch.channels_last)))
        return original(self, inputs)

    rows = {}
    for layout in (False, True):
        seen.clear()
        monkeypatch.setattr(torch.nn.Conv2d, "forward", recording)
        config = LoopConfig(strategy="entropy", cycles=2, initial_size=20, budget=8,
                            subset_size=0, epochs=2, batch_size=8, eval_batch_size=16,
                            progress=False, channels_last=layout)
        rows[layout] = run_active_learning(ToyClassificationAdapter(), config,
                                           tmp_path / str(layout))
        monkeypatch.setattr(torch.nn.Conv2d, "forward", original)
        assert seen and all(weights == inputs == layout for weights, inputs in seen)
    np.testing.assert_array_equal(np.load(tmp_path / "False" / "pool.npz")["labeled_at"],
                                  np.load(tmp_path / "True" / "pool.npz")["labeled_at"])
    for plain, nhwc in zip(rows[False], rows[True], strict=True):
        assert nhwc["accuracy"] == pytest.approx(plain["accuracy"], abs=1e-6)
