"""Streaming MC statistics give the batch formulas' scores while holding one pass at a time."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from active_learning.strategies import uncertainty
from active_learning.strategies.mc_dropout import MCDropoutSampler
from active_learning.strategies.mc_statistics import MCAccumulator, MCStatistics

SCORES = [uncertainty.mc_entropy, uncertainty.bald, uncertainty.variation_ratio,
          uncertainty.predictive_variance]


def _mc_probs(shape=(12, 3, 5, 6, 7), seed=0, sharpness=3.0):
    generator = torch.Generator().manual_seed(seed)
    logits = sharpness * torch.randn(*shape, generator=generator)
    return logits.softmax(dim=2)                                   # [T, N, C, H, W]


@pytest.mark.parametrize("score", SCORES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("reduction", ["none", "mean", "max"])
def test_streamed_scores_equal_the_batch_formulas(score, reduction):
    mc_probs = _mc_probs()
    streamed = score(MCStatistics.from_samples(mc_probs), reduction=reduction)
    torch.testing.assert_close(streamed, score(mc_probs, reduction=reduction), atol=1e-5, rtol=1e-5)


def test_variance_by_welford_matches_the_two_pass_variance_on_near_equal_samples():
    # Samples that barely differ: a sum-of-squares shortcut would cancel catastrophically.
    base = _mc_probs((1, 2, 4, 3, 3)).expand(20, -1, -1, -1, -1)
    noise = 1e-4 * torch.randn(20, 2, 4, 3, 3, generator=torch.Generator().manual_seed(1))
    mc_probs = (base + noise).clamp_min(0)
    mc_probs = mc_probs / mc_probs.sum(dim=2, keepdim=True)
    streamed = uncertainty.predictive_variance(MCStatistics.from_samples(mc_probs), reduction="none")
    expected = mc_probs.double().var(dim=0, unbiased=False).mean(dim=1).float()
    torch.testing.assert_close(streamed, expected, atol=1e-9, rtol=1e-3)


def test_votes_count_each_passes_argmax_by_hand():
    # One pixel, three classes, four passes voting 2, 0, 2, 1.
    passes = torch.tensor([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    stats = MCStatistics.from_samples(passes[:, None, :], statistics={"votes"})
    assert stats.votes.tolist() == [[1, 1, 2]]
    assert uncertainty.variation_ratio(stats).item() == pytest.approx(1 - 2 / 4)


def test_the_accumulated_state_does_not_grow_with_T():
    accumulator = MCAccumulator({"mean", "mean_entropy", "m2", "votes"})
    for probs in _mc_probs((30, 2, 4, 8, 8)):
        accumulator.update(probs)
    stats = accumulator.result()
    assert stats.n_samples == 30
    assert stats.mean.shape == stats.m2.shape == stats.votes.shape == (2, 4, 8, 8)
    assert stats.mean_entropy.shape == (2, 8, 8)


def test_a_score_asks_for_the_statistics_it_needs():
    stats = MCStatistics.from_samples(_mc_probs((3, 2, 3)), statistics={"mean"})
    with pytest.raises(ValueError, match="votes"):
        uncertainty.variation_ratio(stats)
    with pytest.raises(ValueError, match="unknown MC statistics"):
        MCAccumulator({"median"})


def test_sampler_passes_are_the_samples_one_at_a_time():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.5), nn.Conv2d(8, 4, 1))
    inputs = torch.randn(2, 3, 6, 6)
    sampler = MCDropoutSampler(model)
    torch.manual_seed(3)
    stacked = sampler.sample(inputs, 5, output_fn=lambda y: y.softmax(1))       # [5, 2, 4, 6, 6]
    torch.manual_seed(3)
    passes = list(sampler.passes(inputs, 5, output_fn=lambda y: y.softmax(1)))
    assert len(passes) == 5
    torch.testing.assert_close(torch.stack(passes), stacked)
    assert model.training  # the modes are restored once the passes are consumed
