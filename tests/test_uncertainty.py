"""Uncertainty scores: exact values and rankings on hand-made distributions."""

import math

import numpy as np
import pytest
import torch

from active_learning.strategies.uncertainty import (
    bald,
    check_probabilities,
    entropy,
    least_confidence,
    margin,
    mc_entropy,
    predictive_variance,
    ratio,
    reduce_dense,
    variation_ratio,
)

SINGLE_SAMPLE_SCORES = [least_confidence, margin, ratio, entropy]
MC_SCORES = [mc_entropy, bald, variation_ratio, predictive_variance]

# Three rows from most to least certain: peaked, medium, uniform.
RANKED_ROWS = torch.tensor(
    [
        [0.98, 0.01, 0.01],
        [0.6, 0.3, 0.1],
        [1 / 3, 1 / 3, 1 / 3],
    ]
)


def test_hand_values_single_row():
    p = torch.tensor([[0.6, 0.3, 0.1]])
    assert least_confidence(p).item() == pytest.approx(0.4, abs=1e-6)
    assert margin(p).item() == pytest.approx(0.7, abs=1e-6)
    assert ratio(p).item() == pytest.approx(0.5, abs=1e-6)
    expected_h = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    assert entropy(p).item() == pytest.approx(expected_h, abs=1e-6)


def test_entropy_two_class_and_zero_probability():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    h = entropy(p)
    assert h[0].item() == pytest.approx(math.log(2), abs=1e-6)
    assert h[1].item() == 0.0  # 0 log 0 = 0, not NaN


@pytest.mark.parametrize("score", SINGLE_SAMPLE_SCORES)
def test_uniform_ranks_above_peaked(score):
    s = score(RANKED_ROWS)
    assert s.dtype == torch.float32 and s.shape == (3,)
    # Ascending certainty order 0 (peaked) < 1 < 2 (uniform) for every score.
    assert torch.argsort(s).tolist() == [0, 1, 2]


def test_uniform_row_extremes():
    u = torch.full((1, 4), 0.25)
    assert least_confidence(u).item() == pytest.approx(0.75)
    assert margin(u).item() == pytest.approx(1.0)
    assert ratio(u).item() == pytest.approx(1.0)
    assert entropy(u).item() == pytest.approx(math.log(4), abs=1e-6)


def test_numpy_input_float64():
    p = np.array([[0.6, 0.3, 0.1], [0.5, 0.5, 0.0]], dtype=np.float64)
    s = margin(p)
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float32
    torch.testing.assert_close(s, torch.tensor([0.7, 1.0]))
    mc = np.stack([p, p])  # [T=2, N=2, C=3]
    torch.testing.assert_close(bald(mc), torch.zeros(2))


# ---- dense inputs -----------------------------------------------------------------------


def _dense_probs() -> torch.Tensor:
    """[N=2, C=2, H=1, W=2] with per-pixel class-0 probabilities chosen by hand."""
    p0 = torch.tensor([[[0.5, 0.9]], [[0.8, 0.7]]])  # [N, H, W]
    return torch.stack([p0, 1 - p0], dim=1)  # [N, C, H, W]


def test_dense_reductions_least_confidence():
    p = _dense_probs()
    per_pixel = torch.tensor([[[0.5, 0.1]], [[0.2, 0.3]]])  # 1 - max(p0, 1-p0), by hand
    torch.testing.assert_close(least_confidence(p, reduction="none"), per_pixel)
    torch.testing.assert_close(least_confidence(p, reduction="mean"), torch.tensor([0.3, 0.25]))
    torch.testing.assert_close(least_confidence(p, reduction="max"), torch.tensor([0.5, 0.3]))


def test_dense_reductions_entropy_margin_ratio():
    p = _dense_probs()

    def h2(q):
        return -(q * math.log(q) + (1 - q) * math.log(1 - q))

    ent = torch.tensor([[[h2(0.5), h2(0.9)]], [[h2(0.8), h2(0.7)]]])
    torch.testing.assert_close(entropy(p, reduction="none"), ent)
    torch.testing.assert_close(entropy(p, reduction="max"), ent.flatten(1).amax(1))
    # margin = 1 - |2 p0 - 1|, ratio = min / max, per pixel.
    torch.testing.assert_close(margin(p, reduction="mean"), torch.tensor([(1.0 + 0.2) / 2, (0.4 + 0.6) / 2]))
    torch.testing.assert_close(ratio(p, reduction="max"), torch.tensor([1.0, 0.3 / 0.7]))


def test_mc_dense_none_shape():
    mc = torch.softmax(torch.randn(5, 2, 3, 4, 6), dim=2)  # [T, N, C, H, W]
    for score in MC_SCORES:
        assert score(mc, reduction="none").shape == (2, 4, 6)
        assert score(mc).shape == (2,)


def test_reduce_dense():
    s = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    torch.testing.assert_close(reduce_dense(s, "mean"), torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(reduce_dense(s, "max"), torch.tensor([3.0, 2.0]))
    assert reduce_dense(s, "none") is s
    flat = torch.tensor([1.0, 2.0])
    assert reduce_dense(flat, "max") is flat
    with pytest.raises(ValueError, match="reduction"):
        reduce_dense(s, "sum")
    with pytest.raises(ValueError, match="reduction"):
        entropy(RANKED_ROWS, reduction="median")


# ---- MC scores --------------------------------------------------------------------------


def test_bald_zero_when_samples_agree_positive_when_they_disagree():
    agree = torch.tensor([[0.5, 0.5], [0.5, 0.5]]).unsqueeze(1)  # [T=2, N=1, C=2]
    disagree = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).unsqueeze(1)  # same mean [0.5, 0.5]
    assert bald(agree).item() == pytest.approx(0.0, abs=1e-7)
    # H(mean) = ln 2, each sample has entropy 0.
    assert bald(disagree).item() == pytest.approx(math.log(2), abs=1e-6)
    # Both have the same predictive entropy: only BALD tells them apart.
    assert mc_entropy(agree).item() == pytest.approx(mc_entropy(disagree).item())


def test_bald_brute_force():
    torch.manual_seed(0)
    mc = torch.softmax(torch.randn(7, 4, 3, dtype=torch.float64), dim=2)  # [T, N, C]
    expected = []
    for n in range(4):
        mean = [sum(mc[t, n, c].item() for t in range(7)) / 7 for c in range(3)]
        h_mean = -sum(m * math.log(m) for m in mean)
        h_each = [-sum(mc[t, n, c].item() * math.log(mc[t, n, c].item()) for c in range(3)) for t in range(7)]
        expected.append(h_mean - sum(h_each) / 7)
    torch.testing.assert_close(bald(mc), torch.tensor(expected, dtype=torch.float32))


def test_mc_entropy_hand_value():
    mc = torch.tensor([[[0.9, 0.1]], [[0.5, 0.5]]])  # [T=2, N=1, C=2]; mean [0.7, 0.3]
    expected = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    assert mc_entropy(mc).item() == pytest.approx(expected, abs=1e-6)


def test_variation_ratio_counts():
    # N=3 samples over T=4 passes: argmax votes [0,0,0,0], [0,0,1,1], [0,1,2,2].
    votes = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 2], [0, 1, 2]])  # [T, N]
    mc = torch.nn.functional.one_hot(votes, 3).float() * 0.7 + 0.1  # [T, N, C], rows sum to 1
    torch.testing.assert_close(variation_ratio(mc), torch.tensor([0.0, 0.5, 0.5]))
    votes5 = torch.tensor([[1], [1], [1], [0], [2]])  # modal class 1 with 3 of 5 votes
    mc5 = torch.nn.functional.one_hot(votes5, 3).float() * 0.7 + 0.1
    assert variation_ratio(mc5).item() == pytest.approx(1 - 3 / 5)


def test_predictive_variance_hand_value():
    mc = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # each class: values {1, 0} -> variance 0.25
    assert predictive_variance(mc).item() == pytest.approx(0.25)
    same = torch.tensor([[[0.3, 0.7]], [[0.3, 0.7]]])
    assert predictive_variance(same).item() == pytest.approx(0.0)


def test_mc_rankings():
    # N=3: all samples agree (certain), mild disagreement, full disagreement.
    certain = [[0.9, 0.1]] * 4
    mild = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1]]
    wild = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    mc = torch.tensor([certain, mild, wild]).transpose(0, 1)  # [T=4, N=3, C=2]
    for score in MC_SCORES:
        assert torch.argsort(score(mc)).tolist() == [0, 1, 2], score.__name__


# ---- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("score", SINGLE_SAMPLE_SCORES)
def test_single_scores_reject_bad_input(score):
    nan = torch.tensor([[0.5, float("nan")]])
    with pytest.raises(ValueError, match="probs"):
        score(nan)
    logits = torch.tensor([[2.0, 1.0]])  # non-negative but not normalised
    with pytest.raises(ValueError, match="probs.*sum to 1"):
        score(logits)
    with pytest.raises(ValueError, match="probs"):
        score(torch.tensor([0.5, 0.5]))  # no batch dimension
    with pytest.raises(ValueError, match="probs"):
        score(torch.tensor([[1.5, -0.5]]))  # sums to 1 but negative


@pytest.mark.parametrize("score", MC_SCORES)
def test_mc_scores_reject_bad_input(score):
    with pytest.raises(ValueError, match="mc_probs"):
        score(torch.full((2, 3, 4), float("inf")))
    with pytest.raises(ValueError, match="mc_probs.*sum to 1"):
        score(torch.full((2, 3, 4), 0.5))
    with pytest.raises(ValueError, match="mc_probs"):
        score(torch.full((3, 4), 0.25))  # [N, C] passed where [T, N, C] expected


def test_check_probabilities_tolerance_and_dtype():
    p = check_probabilities(np.array([[0.5, 0.5005]]), atol=1e-3)
    assert isinstance(p, torch.Tensor) and p.is_floating_point()
    with pytest.raises(ValueError, match="my_arg"):
        check_probabilities(np.array([[0.5, 0.51]]), name="my_arg")
    assert check_probabilities(torch.tensor([[1, 0]])).dtype == torch.float32
